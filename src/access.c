/* access: the API calls of each feature, as RBAC rules (access.h). */
#include "access.h"
#include "config.h"
#include "k8s.h"
#include "log.h"
#include "util.h"

#include <stdbool.h>
#include <stdlib.h>

enum need {
	NEED_STOP_PODS, /* stopPods: migrate stops and starts, restore starts */
	NEED_ESLEMBIC,	/* eslembic: migrate looks whether a follow-up Job still runs */
	NEED_FOLLOW_UP, /* eslembic.migrate/cleanIndex: it replaces that Job, with its Secret */
};

static const struct {
	enum need need;
	struct cr_access_rule rule;
} RULES[] = {
	{ NEED_STOP_PODS, { "wiremind.io", "expecteddeploymentscales", { "list" },
			    "to find the release's Deployments" } },
	{ NEED_STOP_PODS, { "apps", "deployments", { "get", "patch" },
			    "to mark a Deployment stopped, and unmark it" } },
	{ NEED_STOP_PODS, { "apps", "deployments/scale", { "get", "patch" },
			    "to scale the Deployments down and back" } },
	{ NEED_STOP_PODS, { "autoscaling", "horizontalpodautoscalers", { "list", "patch" },
			    "to pause and resume their HPAs" } },
	{ NEED_STOP_PODS, { "", "pods", { "list", "watch" }, "to wait until their Pods are gone" } },
	{ NEED_STOP_PODS, { "", "events", { "create" }, "to record its progress as Events" } },
	{ NEED_ESLEMBIC, { "batch", "jobs", { "get" }, "to see whether a follow-up Job still runs" } },
	{ NEED_FOLLOW_UP, { "batch", "jobs", { "create", "delete" },
			    "to replace the eslembic follow-up Job" } },
	{ NEED_FOLLOW_UP, { "", "secrets", { "create" }, "to hand the follow-up Job its URL" } },
};

static bool needed(const struct cr_config *cfg, enum need need)
{
	switch (need) {
	case NEED_STOP_PODS:
		return cfg->stop_pods;
	case NEED_ESLEMBIC:
		return cr_config_uses_eslembic(cfg);
	case NEED_FOLLOW_UP:
		return cr_config_uses_eslembic(cfg) &&
		       (cfg->eslembic.migrate || cfg->eslembic.clean_index);
	}
	return false;
}

_Static_assert(sizeof(RULES) / sizeof(RULES[0]) <= CR_ACCESS_MAX_RULES, "CR_ACCESS_MAX_RULES");

size_t cr_access_rules(const struct cr_config *cfg, const struct cr_access_rule **out,
		       size_t max)
{
	size_t n = 0;
	for (size_t i = 0; i < sizeof(RULES) / sizeof(RULES[0]); i++)
		if (needed(cfg, RULES[i].need) && n < max)
			out[n++] = &RULES[i].rule;
	return n;
}

int cr_access_check(struct cr_k8s *k, const char *ns, const struct cr_config *cfg)
{
	const struct cr_access_rule *rules[CR_ACCESS_MAX_RULES];
	size_t n = cr_access_rules(cfg, rules, CR_ACCESS_MAX_RULES);
	bool refused = false;
	for (size_t i = 0; i < n; i++)
		for (size_t v = 0; v < CR_ACCESS_MAX_VERBS && rules[i]->verbs[v]; v++) {
			struct cr_k8s_access a = { rules[i]->group, rules[i]->resource,
						   rules[i]->verbs[v] };
			char *why = NULL;
			int may = cr_k8s_may(k, ns, &a, &why);
			if (may < 0) {
				/* An extra safety, not a condition: without it the calls themselves
				 * still fail safely. */
				cr_warn("kubernetes: cannot ask the API server what this account may do "
					"(SelfSubjectAccessReview: %ld): its permissions are not checked "
					"beforehand", cr_k8s_last_status(k));
				return 0;
			}
			if (may == 0) {
				cr_error("kubernetes: this account may not %s \"%s\" in API group \"%s\" "
					 "in namespace %s%s%s; the migration needs it %s: grant it (the Role "
					 "chartreuse renders does)", a.verb, a.resource, a.group, ns,
					 why ? ": " : "", why ? why : "", rules[i]->why);
				refused = true;
			}
			free(why);
		}
	return refused ? -1 : 0;
}
