/* jobs: a Job through the Kubernetes API, the way Helm runs a hook Job: delete the one
 * left from before and wait until it is gone, create, watch until Complete or Failed.
 * Used by the eslembic follow-up Job and by the Helm 3 wrapper, which runs the migration
 * Jobs itself because Helm 3 ignores hooks in a post-renderer's output. */
#ifndef CR_JOBS_H
#define CR_JOBS_H

#include <libfyaml.h>
#include <stdbool.h>

struct cr_k8s;
struct cr_buf;

/* "/apis/batch/v1/namespaces/<ns>/jobs[/<name>]" (name may be NULL). Caller frees. */
char *cr_job_path(const char *ns, const char *name);

/* Finished: no active Pods and a Complete or Failed condition that is True. Otherwise
 * *why says what is missing. */
bool cr_job_finished(struct fy_node *job, const char **why);
/* "Complete", "Failed" or NULL: the True condition of a finished Job. */
const char *cr_job_outcome(struct fy_node *job);

/* Deletes the Job with its Pods in the background; uid (may be NULL) makes it delete only
 * that Job. 0 also when it is already gone; -1 after reporting. */
int cr_job_delete(struct cr_k8s *k, const char *ns, const char *name, const char *uid);

/* Until the Job is gone (uid, when set: that Job), looking twice a second (a Job deleted
 * in the background goes at once unless a finalizer holds it; watching Jobs may not be
 * granted). `what` prefixes the messages. 0, or -1 after reporting. */
int cr_job_wait_gone(struct cr_k8s *k, const char *ns, const char *name, const char *uid,
		     long timeout_s, const char *what);

/* Helm's hook run of one Job document: delete a Job of that name (before-hook-creation),
 * create it, watch it until it finishes or timeout_ms passes, delete it when it completed
 * (hook-succeeded). Returns 0 when it completed; -1 when it failed, timed out or could
 * not be run, reported (naming the Job, with the tail of its Pod's log when the API
 * serves it); a failed Job is kept for inspection. */
int cr_job_run_hook(struct cr_k8s *k, struct fy_node *job, long timeout_ms, const char *what);

#endif
