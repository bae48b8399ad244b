/* pods: stopping the release's Deployments before a migration and starting them after,
 * as the ExpectedDeploymentScale objects of the release say (SPEC §2): groups by priority,
 * highest first; each group's HPAs neutralised (scaleUp selectPolicy Disabled, the previous
 * behaviour kept in an annotation), its Deployments scaled to 0 through the scale
 * subresource, and the next group only once the group's Pods are gone (Failed ones don't
 * count). The stopped state is recorded in annotations, so starting (and `restore`) is
 * idempotent and heals a run that was killed. */
#ifndef CR_PODS_H
#define CR_PODS_H

#include <libfyaml.h>
#include <stdbool.h>
#include <stddef.h>

#include "json.h"
#include "util.h"

struct cr_config;
struct cr_k8s;
struct cr_k8s_options;

/* The marks of a stop: on each Deployment taken in charge, and on each paused HPA (holding
 * its spec.behavior from before, and the one the pause left, as JSON). `status` reads
 * them too. */
#define CR_STOPPED_ANNOTATION "chartreuse.wiremind.io/stopped"
#define CR_STOPPED_POINTER "/metadata/annotations/chartreuse.wiremind.io~1stopped" /* RFC 6901 */
#define CR_HPA_BEHAVIOR_ANNOTATION "chartreuse.wiremind.io/hpa-behavior-before"
#define CR_HPA_PAUSED_ANNOTATION "chartreuse.wiremind.io/hpa-behavior-paused"

/* Where the shipped CRD of ExpectedDeploymentScale is, for a command a user can paste. */
#define CR_PODS_CRD_FILE \
	"\"$(helm env HELM_PLUGINS)/chartreuse/deploy/crd-expecteddeploymentscales.yaml\""

struct cr_pods;

/* A session with the cluster for cfg's release (cfg must outlive it); NULL (reported) when
 * there is no release name or no usable Kubernetes configuration. The connections it
 * opens are kept until cr_pods_close. */
struct cr_pods *cr_pods_open(const struct cr_config *cfg);
/* The same with the cluster chosen by opts (kubeconfig, context: `restore`'s options);
 * opts->namespace NULL means cfg->namespace. */
struct cr_pods *cr_pods_open_with(const struct cr_config *cfg,
				  const struct cr_k8s_options *opts);
void cr_pods_close(struct cr_pods *s);
/* Before anything is stopped: the cluster answers, the release's ExpectedDeploymentScales
 * can be read (their CRD is installed), and this account may make every call the run
 * will make (access.h). 0, or -1 (reported). */
int cr_pods_check(struct cr_pods *s);

/* Scales the release's Deployments to 0, by priority group. First every Deployment is
 * annotated as taken in charge and its HPAs paused (all in parallel), then each group in
 * turn is scaled down (in parallel) and its Pods waited for. A termination request
 * (cr_terminated) ends the wait with a failure. *restore (if restore is set; caller
 * frees) gets the command that brings back what was stopped, for a failure's messages. */
enum cr_pods_stop {
	CR_PODS_STOPPED = 0,
	CR_PODS_UNTOUCHED = -1, /* failed before changing anything */
	CR_PODS_PARTLY = -2,	/* failed after changing some (recorded: start brings back) */
};
enum cr_pods_stop cr_pods_stop(struct cr_pods *s, char **restore);
/* Brings every Deployment back to its expected scale, gives the HPAs their behaviour back
 * and removes the marks (in parallel); 0 on success. */
int cr_pods_start(struct cr_pods *s);

/* An Event on the Pod this process runs in (the migration Job's; events.h), through this
 * session's client: nothing outside a Pod. */
void cr_pods_event(struct cr_pods *s, bool warning, const char *reason, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

/* What `restore` did. */
struct cr_pods_restored {
	size_t tracked;			/* Deployments the release's ExpectedDeploymentScales name */
	struct cr_strlist deployments; /* scaled back: chartreuse had stopped them */
	struct cr_strlist hpas;	/* given back the behaviour they had before a pause */
	int release;			/* none tracked: enum cr_release_found (release.h) */
};
/* cr_pods_start, telling what it brought back (its Events say Restored); with no
 * ExpectedDeploymentScale, whether the release exists at all. 0, or -1 (reported). Free
 * *out with cr_pods_restored_free. */
int cr_pods_restore(struct cr_pods *s, struct cr_pods_restored *out);
void cr_pods_restored_free(struct cr_pods_restored *r);
/* r as -o says (table: one line, then one per thing brought back). 0, or -1 (reported). */
int cr_pods_restored_render(const struct cr_pods_restored *r, const struct cr_pods *s,
			    enum cr_format f, struct cr_buf *out);
/* The namespace the session works in. */
const char *cr_pods_namespace(const struct cr_pods *s);

/* One Deployment named by an ExpectedDeploymentScale of the release. */
struct cr_pods_target {
	char *deployment;
	char *eds, *eds_uid; /* the ExpectedDeploymentScale naming it, for its Events */
	long expected; /* spec.expectedScale */
	long priority; /* spec.priority, default 0 */
};

/* The release's targets in namespace ns: the ExpectedDeploymentScales labelled
 * app.kubernetes.io/instance=<release> or release=<release> (the first naming a Deployment
 * wins), highest priority first, then by name. *out is NULL when there are none.
 * 0, or -1 (reported). */
int cr_pods_targets(struct cr_k8s *k, const char *ns, const char *release,
		    struct cr_pods_target **out, size_t *n);
void cr_pods_targets_free(struct cr_pods_target *t, size_t n);
/* Adds the Deployments named by the items of an ExpectedDeploymentScaleList (as the API
 * answered it) that *t does not name yet; reads nothing else, so it is a pure function. */
void cr_pods_targets_add(struct fy_node *list, struct cr_pods_target **t, size_t *n);

/* "chartreuse restore --release R --namespace NS"; caller frees. */
char *cr_pods_restore_command(const char *release, const char *ns);

#endif
