/* pods: stopping the release's Deployments before a migration and starting them after.
 * The Kubernetes client that does it comes with the Kubernetes issue; until then a
 * migration that must stop pods fails clearly instead of running with pods up. */
#ifndef CR_PODS_H
#define CR_PODS_H

struct cr_config;

/* Scales the release's Deployments to 0, by priority group; 0 on success. */
int cr_pods_stop(const struct cr_config *cfg);
/* Brings them back to their expected scales; 0 on success. */
int cr_pods_start(const struct cr_config *cfg);

#endif
