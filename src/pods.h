/* pods: stopping the release's Deployments before a migration and starting them after,
 * as the ExpectedDeploymentScale objects of the release say (SPEC §2): groups by priority,
 * highest first; each group's HPAs neutralised (scaleUp selectPolicy Disabled, the previous
 * behaviour kept in an annotation), its Deployments scaled to 0 through the scale
 * subresource, and the next group only once the group's Pods are gone (Failed ones don't
 * count). The stopped state is recorded in annotations, so starting (and `restore`) is
 * idempotent and heals a run that was killed. */
#ifndef CR_PODS_H
#define CR_PODS_H

struct cr_config;

struct cr_pods;

/* A session with the cluster for cfg's release (cfg must outlive it); NULL (reported) when
 * there is no release name or no usable Kubernetes configuration. The connections it
 * opens are kept until cr_pods_close. */
struct cr_pods *cr_pods_open(const struct cr_config *cfg);
void cr_pods_close(struct cr_pods *s);

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

/* "chartreuse restore --release R --namespace NS"; caller frees. */
char *cr_pods_restore_command(const char *release, const char *ns);

#endif
