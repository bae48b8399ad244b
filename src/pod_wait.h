/* pod_wait: waiting until the Pods of a priority group's Deployments are gone — one list,
 * then the watch events that follow it (resumed where a broken stream left off, listed
 * again after 410 Gone), with a progress line every few seconds. A Failed Pod does not
 * count: nothing deletes it after its Deployment is scaled to 0. */
#ifndef CR_POD_WAIT_H
#define CR_POD_WAIT_H

#include <stddef.h>

struct cr_k8s;
struct cr_selector;

/* selectors[i]: the Pods of the group's i-th Deployment (NULL: none to wait for). 0 once
 * none is left; -1 (reported: how many, which) at timeout_s, at a termination request, or
 * when the Pods can't be listed or watched. */
int cr_pods_wait_gone(struct cr_k8s *k, const char *ns, struct cr_selector *const *selectors,
		      size_t n, long priority, long timeout_s);

#endif
