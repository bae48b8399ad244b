/* pods: stopping the release's Deployments before a migration and starting them after,
 * as the ExpectedDeploymentScale objects of the release say (SPEC §2): groups by priority,
 * highest first; each group's HPAs neutralised (scaleUp selectPolicy Disabled, the previous
 * behaviour kept in an annotation), its Deployments scaled to 0 through the scale
 * subresource, and the next group only once the group's Pods are gone (Failed ones don't
 * count). The stopped state is recorded in annotations, so starting (and `restore`) is
 * idempotent and heals a run that was killed. */
#ifndef CR_PODS_H
#define CR_PODS_H

#include <stddef.h>

struct cr_config;
struct cr_k8s;

/* The marks of a stop: on each stopped Deployment, and on each paused HPA (holding its
 * spec.behavior from before, as JSON). `status` reads them too. */
#define CR_STOPPED_ANNOTATION "chartreuse.wiremind.io/stopped"
#define CR_HPA_BEHAVIOR_ANNOTATION "chartreuse.wiremind.io/hpa-behavior-before"

/* Scales the release's Deployments to 0, by priority group; 0 on success. */
int cr_pods_stop(const struct cr_config *cfg);
/* Brings them back to their expected scales and gives the HPAs their behaviour back;
 * 0 on success. */
int cr_pods_start(const struct cr_config *cfg);

/* One Deployment named by an ExpectedDeploymentScale of the release. */
struct cr_pods_target {
	char *deployment;
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

#endif
