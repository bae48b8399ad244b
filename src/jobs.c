#include "jobs.h"
#include "json.h"
#include "k8s.h"
#include "log.h"
#include "proc.h"
#include "util.h"
#include "ytree.h"

#include <stdlib.h>
#include <string.h>

#define GONE_TIMEOUT_S 300
#define LOG_TAIL_LINES 20

static long number(struct fy_node *n)
{
	char *s = yt_strdup(n);
	long v = s ? strtol(s, NULL, 10) : 0;
	free(s);
	return v;
}

char *cr_job_path(const char *ns, const char *name)
{
	return cr_k8s_path("/apis/batch/v1", ns, "jobs", name, NULL);
}

/* The True condition among Complete and Failed, NULL if none. */
static struct fy_node *final_condition(struct fy_node *job)
{
	void *it = NULL;
	struct fy_node *c;
	while ((c = fy_node_sequence_iterate(yt_path(job, "/status/conditions"), &it))) {
		char *type = yt_strdup(yt_get(c, "type")), *st = yt_strdup(yt_get(c, "status"));
		bool done = (cr_streq(type, "Complete") || cr_streq(type, "Failed")) &&
			    cr_streq(st, "True");
		free(type);
		free(st);
		if (done)
			return c;
	}
	return NULL;
}

bool cr_job_finished(struct fy_node *job, const char **why)
{
	if (number(yt_path(job, "/status/active")) > 0) {
		*why = "it has active Pods";
		return false;
	}
	if (final_condition(job))
		return true;
	*why = "it has no Complete or Failed condition yet";
	return false;
}

const char *cr_job_outcome(struct fy_node *job)
{
	const char *why;
	if (!cr_job_finished(job, &why))
		return NULL;
	char *type = yt_strdup(yt_get(final_condition(job), "type"));
	const char *outcome = cr_streq(type, "Complete") ? "Complete" : "Failed";
	free(type);
	return outcome;
}

int cr_job_delete(struct cr_k8s *k, const char *ns, const char *name, const char *uid)
{
	struct fy_document *d = yt_document();
	struct fy_node *root = yt_map(d);
	fy_document_set_root(d, root);
	yt_set_str(root, "apiVersion", "v1");
	yt_set_str(root, "kind", "DeleteOptions");
	yt_set_str(root, "propagationPolicy", "Background");
	if (uid)
		yt_set_str(yt_child_map(root, "preconditions"), "uid", uid);
	char *path = cr_job_path(ns, name);
	int rc = cr_k8s_delete(k, path, root, NULL);
	fy_document_destroy(d);
	free(path);
	return rc == CR_K8S_OK || rc == CR_K8S_NOT_FOUND ? 0 : -1;
}

int cr_job_wait_gone(struct cr_k8s *k, const char *ns, const char *name, const char *uid,
		     long timeout_s, const char *what)
{
	char *path = cr_job_path(ns, name);
	struct cr_progress prog = cr_progress_start();
	int rc = 1;
	while (rc > 0) {
		struct fy_document *d = NULL;
		int st = cr_k8s_get(k, path, &d);
		char *now_uid = d ? yt_strdup(yt_path(fy_document_root(d), "/metadata/uid")) : NULL;
		if (d)
			fy_document_destroy(d);
		if (st == CR_K8S_NOT_FOUND) {
			rc = 0;
		} else if (st) {
			rc = -1;
		} else if (uid && !cr_streq(now_uid, uid)) {
			cr_error("%s: another Job %s was created while the old one was being deleted",
				 what, name);
			rc = -1;
		} else if (cr_now_s() - prog.start >= (double)timeout_s) {
			cr_error("%s: the Job %s is still there %ld s after its deletion "
				 "(finalizers?)", what, name, timeout_s);
			rc = -1;
		} else {
			double waited = cr_progress_due(&prog);
			if (waited)
				cr_info("%s: waiting for the old Job %s to go (%.0f s)", what, name,
					waited);
			if (cr_sleep_ms(500, true)) {
				cr_error("%s: interrupted (signal %d) while waiting for the old Job %s "
					 "to go", what, cr_terminated(), name);
				rc = -1;
			}
		}
		free(now_uid);
	}
	free(path);
	return rc;
}

/* --- running one as a hook ------------------------------------------------------------ */

struct hook_run {
	struct cr_k8s *k;
	const char *ns, *name, *what;
	char *rv;	/* last resourceVersion seen, to watch on from */
	char *outcome;	/* "Complete" or "Failed" once finished */
	char *reason;	/* the final condition's reason and message */
	bool deleted;
	long active;	/* status.active: its Pods running */
};

static void note_job(struct hook_run *h, struct fy_node *job)
{
	char *rv = yt_strdup(yt_path(job, "/metadata/resourceVersion"));
	if (rv) {
		free(h->rv);
		h->rv = rv;
	}
	h->active = number(yt_path(job, "/status/active"));
	const char *outcome = cr_job_outcome(job);
	if (!outcome)
		return;
	struct fy_node *c = final_condition(job);
	char *reason = yt_strdup(yt_get(c, "reason")), *message = yt_strdup(yt_get(c, "message"));
	h->outcome = xstrdup(outcome);
	h->reason = xasprintf("%s%s%s", reason ? reason : outcome, message ? ": " : "",
			      message ? message : "");
	free(reason);
	free(message);
}

static int on_job_event(const char *type, struct fy_node *job, void *user)
{
	struct hook_run *h = user;
	if (!strcmp(type, "BOOKMARK")) {
		note_job(h, job);
		return 0;
	}
	char *name = yt_strdup(yt_path(job, "/metadata/name"));
	bool ours = cr_streq(name, h->name);
	free(name);
	if (!ours)
		return 0;
	if (!strcmp(type, "DELETED")) {
		h->deleted = true;
		return 1;
	}
	note_job(h, job);
	return h->outcome != NULL;
}

/* After the watch ended without an outcome: the Job as it is now. */
static int look_again(struct hook_run *h)
{
	char *path = cr_job_path(h->ns, h->name);
	struct fy_document *d = NULL;
	int rc = cr_k8s_get(h->k, path, &d);
	free(path);
	if (rc == CR_K8S_NOT_FOUND)
		h->deleted = true;
	else if (!rc)
		note_job(h, fy_document_root(d));
	if (d)
		fy_document_destroy(d);
	return rc == CR_K8S_NOT_FOUND ? 0 : rc;
}

/* Watches the Job until it finishes, is deleted, or the deadline passes (-1, reported). */
static int watch_job(struct hook_run *h, long timeout_ms)
{
	struct cr_progress prog = cr_progress_start();
	double deadline = prog.start + (double)timeout_ms / 1000.0;
	while (!h->outcome && !h->deleted) {
		double waited = cr_progress_due(&prog);
		if (waited)
			cr_info("%s: waiting for the Job %s (%.0f s of %ld s): %ld Pod%s active",
				h->what, h->name, waited, timeout_ms / 1000, h->active,
				h->active == 1 ? "" : "s");
		double now = cr_now_s();
		long left = (long)((deadline - now) * 1000.0);
		if (left <= 0) {
			cr_error("%s: the Job %s did not finish within %ld s; it is left running: "
				 "kubectl describe job %s -n %s", h->what, h->name, timeout_ms / 1000,
				 h->name, h->ns);
			return -1;
		}
		struct cr_buf path = { 0 };
		char *base = cr_job_path(h->ns, NULL);
		if (base) {
			cr_buf_adds(&path, base);
			char *field = xasprintf("metadata.name=%s", h->name);
			cr_k8s_query_add(&path, "fieldSelector", field);
			free(field);
			cr_k8s_query_add(&path, "allowWatchBookmarks", "true");
			if (h->rv)
				cr_k8s_query_add(&path, "resourceVersion", h->rv);
		}
		long until_due = (long)((prog.next - now) * 1000.0) + 1;
		int rc = cr_k8s_watch(h->k, path.data, on_job_event, h,
				      until_due < left ? until_due : left);
		cr_buf_free(&path);
		free(base);
		if (rc < 0)
			return -1;
		if (!h->outcome && !h->deleted && rc != CR_K8S_WATCH_TIMEOUT && look_again(h))
			return -1;
	}
	if (h->deleted && !h->outcome) {
		cr_error("%s: the Job %s was deleted by someone else before it finished", h->what,
			 h->name);
		return -1;
	}
	return 0;
}

/* The newest Pod of the Job, by the label the Job controller gives its Pods. */
static char *pod_of(const struct hook_run *h)
{
	char *path = cr_k8s_path("/api/v1", h->ns, "pods", NULL, NULL);
	char *selector = xasprintf("job-name=%s", h->name);
	struct fy_document *d = NULL;
	cr_log_mute(true);
	int rc = cr_k8s_list(h->k, path, selector, 0, &d);
	cr_log_mute(false);
	char *pod = NULL, *newest = NULL;
	void *it = NULL;
	struct fy_node *p;
	while (!rc && (p = fy_node_sequence_iterate(yt_get(fy_document_root(d), "items"), &it))) {
		char *made = yt_strdup(yt_path(p, "/metadata/creationTimestamp"));
		if (!pod || (made && newest && strcmp(made, newest) >= 0)) {
			free(pod);
			free(newest);
			pod = yt_strdup(yt_path(p, "/metadata/name"));
			newest = made;
		} else {
			free(made);
		}
	}
	free(newest);
	if (d)
		fy_document_destroy(d);
	free(selector);
	free(path);
	return pod;
}

/* Appends the log's lines, each one masked (a secret this process knows, a URL's password)
 * and kept a line of its own: cr_mask() of the whole would make the log one line. */
static void add_masked_lines(struct cr_buf *out, const char *text)
{
	for (const char *p = text; *p;) {
		size_t n = strcspn(p, "\n");
		char *line = xstrndup(p, n);
		cr_mask_into(out, line);
		cr_buf_addc(out, '\n');
		free(line);
		p += n + (p[n] == '\n');
	}
}

/* The failure in one line, then the tail of the Pod's log when the API gives it (a
 * restricted user may not be allowed pods/log: then where to look). */
static void report_failure(const struct hook_run *h)
{
	char *pod = pod_of(h);
	struct cr_buf log = { 0 };
	int st = CR_K8S_ERROR;
	if (pod) {
		char *pods = cr_k8s_path("/api/v1", h->ns, "pods", pod, "log");
		char *path = pods ? xasprintf("%s?tailLines=%d", pods, LOG_TAIL_LINES) : NULL;
		cr_log_mute(true);
		st = cr_k8s_get_text(h->k, path, &log);
		cr_log_mute(false);
		free(path);
		free(pods);
	}
	bool have_log = st == CR_K8S_OK && log.len;
	char *where = have_log ? xstrdup(", the end of its Pod's log follows")
			       : xasprintf(": kubectl logs job/%s -n %s", h->name, h->ns);
	cr_error("%s: the Job %s failed (%s); it is kept for inspection%s", h->what, h->name,
		 h->reason ? h->reason : "Failed", where);
	free(where);
	if (have_log) {
		struct cr_buf out = { 0 };
		char *head = xasprintf("--- %s (last %d lines)\n", pod, LOG_TAIL_LINES);
		cr_buf_adds(&out, head);
		add_masked_lines(&out, log.data);
		cr_buf_adds(&out, "---\n");
		if (cr_write_all(2, out.data, out.len) < 0) {
			/* stderr is gone: nothing left to report to. */
		}
		free(head);
		cr_buf_free(&out);
	}
	cr_buf_free(&log);
	free(pod);
}

/* Helm's before-hook-creation: a Job of that name goes first, whatever its state. */
static int delete_existing(struct hook_run *h)
{
	char *path = cr_job_path(h->ns, h->name);
	struct fy_document *d = NULL;
	int rc = cr_k8s_get(h->k, path, &d);
	free(path);
	char *uid = d ? yt_strdup(yt_path(fy_document_root(d), "/metadata/uid")) : NULL;
	if (d)
		fy_document_destroy(d);
	if (!rc) {
		cr_info("%s: deleting the Job %s left from before", h->what, h->name);
		rc = cr_job_delete(h->k, h->ns, h->name, uid) ||
		     cr_job_wait_gone(h->k, h->ns, h->name, uid, GONE_TIMEOUT_S, h->what);
	}
	free(uid);
	return rc == CR_K8S_NOT_FOUND ? 0 : rc ? -1 : 0;
}

static int create(struct hook_run *h, struct fy_node *job, char **uid)
{
	char *path = cr_job_path(h->ns, NULL);
	struct fy_document *made = NULL;
	int rc = cr_k8s_post(h->k, path, job, 0, &made);
	free(path);
	if (made) {
		*uid = yt_strdup(yt_path(fy_document_root(made), "/metadata/uid"));
		note_job(h, fy_document_root(made));
		fy_document_destroy(made);
	}
	return rc;
}

int cr_job_run_hook(struct cr_k8s *k, struct fy_node *job, long timeout_ms, const char *what)
{
	struct hook_run h = { .k = k, .what = what };
	char *name = yt_strdup(yt_path(job, "/metadata/name"));
	char *ns = yt_strdup(yt_path(job, "/metadata/namespace"));
	h.name = name ? name : "";
	h.ns = ns ? ns : cr_k8s_namespace(k);
	char *uid = NULL;
	int rc = delete_existing(&h);
	if (!rc)
		rc = create(&h, job, &uid);
	if (!rc) {
		cr_info("%s: created the Job %s, waiting for it", what, h.name);
		rc = watch_job(&h, timeout_ms);
	}
	if (!rc && strcmp(h.outcome, "Complete")) {
		report_failure(&h);
		rc = -1;
	} else if (!rc) {
		cr_info("%s: the Job %s completed; deleting it", what, h.name);
		rc = cr_job_delete(k, h.ns, h.name, uid) ||
		     cr_job_wait_gone(k, h.ns, h.name, uid, GONE_TIMEOUT_S, what) ? -1 : 0;
	}
	free(uid);
	free(h.rv);
	free(h.outcome);
	free(h.reason);
	free(name);
	free(ns);
	return rc;
}
