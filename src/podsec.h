/* podsec: the securityContext of every Pod chartreuse creates (the migration Jobs, the
 * restore Job, eslembic's follow-up Job), so that each passes Pod Security "restricted". */
#ifndef CR_PODSEC_H
#define CR_PODSEC_H

#include <stdbool.h>

struct cr_config;
struct fy_node;

/* Sets pod's securityContext: seccompProfile RuntimeDefault, then podSecurityContext. */
void cr_pod_security(struct fy_node *pod, const struct cr_config *cfg);
/* Sets container c's securityContext: no privilege escalation, every capability dropped,
 * runAsNonRoot (no runAsUser: the image's numeric USER is verified by the kubelet); for
 * the containers running the application image (app), then the securityContext setting. */
void cr_container_security(struct fy_node *c, const struct cr_config *cfg, bool app);

#endif
