/* podsec: the securityContext of every Pod chartreuse creates (the migration Jobs, the
 * restore Job, eslembic's follow-up Job), so that each passes Pod Security "restricted",
 * and the migration container runs as the application's own Deployment runs its image. */
#ifndef CR_PODSEC_H
#define CR_PODSEC_H

#include <stdbool.h>

struct cr_config;
struct cr_manifest;
struct fy_document;
struct fy_node;

/* The migration container's environment names where its securityContext came from
 * ("Deployment <name>", or "none"): the Job's log says it. */
#define CR_SECURITY_FROM_ENV "CHARTREUSE_SECURITY_CONTEXT_FROM"

/* How the application's Deployment runs the image the migration runs. */
struct cr_app_security {
	char *deployment;		 /* its name; NULL when no Deployment runs the image */
	struct fy_document *doc;	 /* owns the copies below */
	struct fy_node *pod, *container; /* its securityContext mappings, NULL when unset */
};

/* The first Deployment of the manifests with a container running image, found without
 * parsing the documents that cannot be one. A Deployment that does not read as YAML is
 * passed over: validating the chart's documents is Helm's job. */
void cr_app_security_find(const struct cr_manifest *m, const char *image,
			  struct cr_app_security *app);
void cr_app_security_free(struct cr_app_security *app);

/* Sets pod's securityContext: seccompProfile RuntimeDefault, then the application pod's
 * (app may be NULL) but for who it runs as, then podSecurityContext. */
void cr_pod_security(struct fy_node *pod, const struct cr_config *cfg,
		     const struct cr_app_security *app);
/* Sets the securityContext of a container of chartreuse's own: no privilege escalation,
 * every capability dropped, runAsNonRoot (no runAsUser: the image's numeric USER is
 * verified by the kubelet). */
void cr_container_security(struct fy_node *c);
/* The same for a container running the application image, then, when the application's
 * Deployment was found, who its pod runs as and its container's securityContext (in
 * place of runAsNonRoot: the user is the application's), then the securityContext setting. */
void cr_app_container_security(struct fy_node *c, const struct cr_config *cfg,
			       const struct cr_app_security *app);

/* In the Job: logs where the migration container's securityContext came from. */
void cr_podsec_report(void);

#endif
