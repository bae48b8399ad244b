/* status: where a release's migrations stand, read without changing anything.
 *
 * - each configured database: the revisions stored in its version table, the heads of its
 *   Alembic project and what is not applied, decided as `migrate` decides (its own read
 *   path, without the lock, without running Alembic unless the scripts can only be read
 *   through `alembic heads`);
 * - each Deployment the release's ExpectedDeploymentScales track: priority, expected scale,
 *   desired and ready replicas, whether chartreuse stopped it or paused one of its HPAs;
 * - the newest migration (and restore) Job of the release and its outcome.
 *
 * One model, filled once, rendered as a table, JSON or YAML, with a verdict that becomes
 * the exit status. Nothing here writes to a database or to the cluster. */
#ifndef CR_STATUS_H
#define CR_STATUS_H

#include <libfyaml.h>

#include "json.h"

struct cr_buf;
struct cr_config;

/* The verdict, which is also the exit status of `chartreuse status` (2 is bad usage). */
enum cr_status_verdict {
	CR_STATUS_OK = 0,	 /* every database at its heads, every Deployment running */
	CR_STATUS_ATTENTION = 1, /* something is known to be not so (listed as problems) */
	CR_STATUS_UNKNOWN = 3,	 /* nothing found wrong, but part of the state was unread */
	CR_STATUS_ABSENT = 4,	 /* no such release, or no such namespace: nothing to show */
};

struct cr_status_options {
	const struct cr_config *cfg; /* its databases (none: that section is skipped) */
	const char *release;	     /* required */
	const char *namespace;	     /* NULL: the kubeconfig context's (in-cluster: the Pod's) */
	const char *kubeconfig;	     /* NULL: KUBECONFIG, ~/.kube/config or in-cluster */
	const char *context;	     /* NULL: the current context */
	int connect_timeout;	     /* PostgreSQL, seconds */
};

struct cr_status;

/* Reads everything; what cannot be read is recorded in the model (and reported on stderr
 * as it happens), never fatal. */
struct cr_status *cr_status_read(const struct cr_status_options *o);
enum cr_status_verdict cr_status_verdict(const struct cr_status *s);
/* Appends the model in the given format (nothing for CR_STATUS_ABSENT, which was reported
 * as one line when read). 0, or -1 (reported). */
int cr_status_render(const struct cr_status *s, enum cr_format f, struct cr_buf *out);
void cr_status_free(struct cr_status *s);

/* The outcome of a Job object: "succeeded", "failed", "running", "pending" or "suspended",
 * from its conditions first, then its counters. *detail (caller frees; NULL when there is
 * nothing to add) is the deciding condition's reason and message, or the failure count. */
const char *cr_status_job_outcome(struct fy_node *job, char **detail);

#endif
