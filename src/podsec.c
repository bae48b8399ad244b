#include "podsec.h"
#include "config.h"
#include "ytree.h"

void cr_pod_security(struct fy_node *pod, const struct cr_config *cfg)
{
	struct fy_node *sc = yt_child_map(pod, "securityContext");
	yt_set_str(yt_child_map(sc, "seccompProfile"), "type", "RuntimeDefault");
	/* The user's mapping is taken as given, even if weaker: admission then decides. */
	if (yt_is_map(cfg->pod_security_context))
		cr_config_overlay(sc, cfg->pod_security_context);
}

void cr_container_security(struct fy_node *c, const struct cr_config *cfg, bool app)
{
	struct fy_document *d = fy_node_document(c);
	struct fy_node *sc = yt_child_map(c, "securityContext");
	yt_set(sc, "allowPrivilegeEscalation", yt_bool(d, false));
	yt_append(yt_child_seq(yt_child_map(sc, "capabilities"), "drop"), yt_str(d, "ALL"));
	yt_set(sc, "runAsNonRoot", yt_bool(d, true));
	if (app && yt_is_map(cfg->security_context))
		cr_config_overlay(sc, cfg->security_context);
}
