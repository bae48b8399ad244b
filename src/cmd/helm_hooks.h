/* helm_hooks: the Helm 3 wrapper's stand-in for Helm's hooks. Helm 3 ignores hook
 * annotations in a post-renderer's output, so `post-render --hooks-to FILE` writes the Jobs
 * (and a copy of their companions) to FILE, and the wrapper runs them as Helm would. */
#ifndef CR_HELM_HOOKS_H
#define CR_HELM_HOOKS_H

#include <stdbool.h>

struct cr_hooks;
struct cr_k8s;

/* Reads FILE. NULL after reporting. */
struct cr_hooks *cr_hooks_load(const char *path);
void cr_hooks_free(struct cr_hooks *h);

/* Whether a Job of FILE is a hook of phase (pre-upgrade, post-install, ...). */
bool cr_hooks_has(const struct cr_hooks *h, const char *phase);

/* Creates or replaces the companions (ServiceAccount, Role, RoleBinding, Secret,
 * ConfigMap) of FILE, marked as belonging to the release so that Helm adopts them when it
 * applies the same objects. 0, or -1 after reporting. */
int cr_hooks_apply_companions(const struct cr_hooks *h, struct cr_k8s *k, const char *release,
			      const char *ns);

/* Runs the Jobs of one phase in hook-weight order (then by name, as Helm), each as Helm runs
 * a hook Job (cr_job_run_hook), stopping at the first failure. 0, or -1 after reporting. */
int cr_hooks_run(const struct cr_hooks *h, struct cr_k8s *k, const char *phase, long timeout_ms);

/* A Go duration as Helm's --timeout takes it ("300s", "5m", "1h2m3.5s") in milliseconds;
 * -1 when it is not one. */
long cr_go_duration_ms(const char *s);

#endif
