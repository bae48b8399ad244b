/* access: the Kubernetes API calls each enabled feature of a migration makes, as RBAC rules.
 * The Role chartreuse renders grants exactly these (render.c), and `migrate` asks the API
 * server about each before anything is stopped (SelfSubjectAccessReview), so a refused
 * call is found with the service still up. */
#ifndef CR_ACCESS_H
#define CR_ACCESS_H

#include <stddef.h>

struct cr_config;
struct cr_k8s;

#define CR_ACCESS_MAX_VERBS 3
#define CR_ACCESS_MAX_RULES 16 /* more than the table holds */

struct cr_access_rule {
	const char *group, *resource; /* resource may name a subresource: "deployments/scale" */
	const char *verbs[CR_ACCESS_MAX_VERBS];
	const char *why;
};

/* The rules cfg's features need, in a fixed order: at most max into out; their count. */
size_t cr_access_rules(const struct cr_config *cfg, const struct cr_access_rule **out,
		       size_t max);

/* Asks the API server whether this client may make every call of the rules in ns. 0 when
 * all are allowed; -1 when one is not (each refusal reported: verb, resource, namespace,
 * why the run needs it) or the server could not be asked (reported). */
int cr_access_check(struct cr_k8s *k, const char *ns, const struct cr_config *cfg);

#endif
