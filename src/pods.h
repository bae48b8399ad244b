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

/* Scales the release's Deployments to 0, by priority group; 0 on success. */
int cr_pods_stop(const struct cr_config *cfg);
/* Brings them back to their expected scales and gives the HPAs their behaviour back;
 * 0 on success. */
int cr_pods_start(const struct cr_config *cfg);

#endif
