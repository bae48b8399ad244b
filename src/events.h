/* events: Kubernetes Events (core/v1) that tell what a migration does, recorded on the
 * objects it acts on — the migration Job's Pod and each ExpectedDeploymentScale — so that
 * `kubectl describe` and Argo CD show its progress. Best effort: an Event that can't be
 * recorded is a warning, never a failure of the migration, and the run goes on without
 * Events (no retry delays on every step of a cluster that refuses them). */
#ifndef CR_EVENTS_H
#define CR_EVENTS_H

#include <stdbool.h>

struct cr_k8s;

/* What an Event is about: an object of the namespace. uid may be NULL. */
struct cr_event_about {
	const char *api_version, *kind, *name, *uid;
};

/* Records one Event in ns. reason: CamelCase, one word ("Stopping"); warning: type
 * Warning, else Normal. The message is masked and cut to what the API server takes. */
void cr_event(struct cr_k8s *k, const char *ns, const struct cr_event_about *about,
	      bool warning, const char *reason, const char *fmt, ...)
	__attribute__((format(printf, 6, 7)));

/* The Pod this process runs in, from the downward API's POD_NAME and POD_UID (the
 * migration Job sets them); NULL outside a Pod. */
const struct cr_event_about *cr_event_own_pod(void);

#endif
