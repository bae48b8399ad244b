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

/* Scales the release's Deployments to 0, by priority group, the Deployments of a group in
 * parallel. A termination request (cr_terminated) ends the wait for the Pods with a
 * failure. *restore (if restore is set; caller frees) gets the command that brings back
 * what was stopped, for the messages of a failure. */
enum cr_pods_stop {
	CR_PODS_STOPPED = 0,
	CR_PODS_UNTOUCHED = -1, /* failed before changing anything */
	CR_PODS_PARTLY = -2,	/* failed after changing some (recorded: start brings back) */
};
enum cr_pods_stop cr_pods_stop(const struct cr_config *cfg, char **restore);
/* Brings them back to their expected scales and gives the HPAs their behaviour back;
 * 0 on success. */
int cr_pods_start(const struct cr_config *cfg);

/* "chartreuse restore --release R --namespace NS"; caller frees. */
char *cr_pods_restore_command(const char *release, const char *ns);

#endif
