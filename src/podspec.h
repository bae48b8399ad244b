/* podspec: what every Job chartreuse makes shares, the migration and restore Jobs it
 * renders and eslembic's follow-up Job it creates through the API: containers from their
 * skeletons, env entries, the labels, and the user's pod and container settings. */
#ifndef CR_PODSPEC_H
#define CR_PODSPEC_H

#include <stdbool.h>

struct cr_app_security;
struct cr_config;
struct cr_image;
struct fy_document;
struct fy_node;

/* "repository[:tag]": the reference a container of the image names. Caller frees. */
char *cr_image_ref(const struct cr_image *img);

/* A container from the skeleton tpl (templates/) running img, with the securityContext
 * podsec gives a container running the application image (cfg->image; app may be NULL) or
 * one of chartreuse's own. */
struct fy_node *cr_podspec_container(struct fy_document *d, const char *tpl,
				     const struct cr_image *img, const struct cr_config *cfg,
				     const struct cr_app_security *app);
/* Appends the user's env, envFrom, resources and volumeMounts to a container running the
 * application image, after the entries chartreuse gave it. */
void cr_podspec_app_settings(struct fy_node *c, const struct cr_config *cfg);
/* The pod's priorityClassName, image pull secrets (that of chartreuseImage too when
 * helper_image), nodeSelector, tolerations, affinity and securityContext. */
void cr_podspec_scheduling(struct fy_node *pod, const struct cr_config *cfg,
			   const struct cr_app_security *app, bool helper_image);
/* The labels of a chartreuse object: name, instance (unless !instance), component,
 * managed-by, version, migration. */
void cr_podspec_labels(struct fy_node *labels, const struct cr_config *cfg,
		       const char *component, const char *managed_by, bool instance);

/* env entries: a value, a Secret's key, a field of the Pod (downward API). */
struct fy_node *cr_env_value(struct fy_document *d, const char *name, const char *value);
struct fy_node *cr_env_secret(struct fy_document *d, const char *name, const char *secret,
			      const char *key);
struct fy_node *cr_env_field(struct fy_document *d, const char *name, const char *path);

#endif
