/* pod_wait: until a group's Pods are gone (pod_wait.h). */
#include "pod_wait.h"
#include "k8s.h"
#include "labels.h"
#include "log.h"
#include "proc.h"
#include "util.h"
#include "ytree.h"

#include <stdlib.h>
#include <string.h>

/* The Pods of a group that still count, kept current from one list and then the watch
 * events that follow it (no re-listing, no polling). */
struct group_wait {
	struct cr_selector *const *selectors; /* NULL where a Deployment has none */
	size_t n;
	struct cr_strlist live; /* names */
	char *rv;		/* where the watch resumes */
	bool relist;		/* the watch said the resourceVersion is gone */
};

/* A Pod of one of the group's Deployments that is not Failed. */
static bool pod_counts(const struct group_wait *w, struct fy_node *pod)
{
	char *phase = yt_strdup(yt_path(pod, "/status/phase"));
	bool failed = cr_streq(phase, "Failed");
	free(phase);
	struct fy_node *labels = yt_path(pod, "/metadata/labels");
	for (size_t i = 0; !failed && i < w->n; i++)
		if (w->selectors[i] && cr_selector_matches(w->selectors[i], labels))
			return true;
	return false;
}

static void forget(struct cr_strlist *l, const char *s)
{
	for (size_t i = 0; i < l->n; i++)
		if (!strcmp(l->items[i], s)) {
			free(l->items[i]);
			l->items[i] = l->items[--l->n];
			return;
		}
}

static void note_pod(struct group_wait *w, bool deleted, struct fy_node *pod)
{
	char *name = yt_strdup(yt_path(pod, "/metadata/name"));
	if (!name)
		return;
	if (deleted || !pod_counts(w, pod))
		forget(&w->live, name);
	else if (!cr_strlist_has(&w->live, name))
		cr_strlist_add(&w->live, name);
	free(name);
}

static int list_pods(struct cr_k8s *k, const char *ns, struct group_wait *w)
{
	char *path = cr_k8s_path("/api/v1", ns, "pods", NULL, NULL);
	struct fy_document *d = NULL;
	int rc = cr_k8s_list(k, path, NULL, 0, &d);
	free(path);
	if (rc)
		return -1;
	cr_strlist_free(&w->live);
	void *it = NULL;
	struct fy_node *pod;
	while ((pod = fy_node_sequence_iterate(yt_get(fy_document_root(d), "items"), &it)))
		note_pod(w, false, pod);
	free(w->rv);
	w->rv = yt_strdup(yt_path(fy_document_root(d), "/metadata/resourceVersion"));
	w->relist = false;
	fy_document_destroy(d);
	return 0;
}

static int on_pod_event(const char *type, struct fy_node *pod, void *user)
{
	struct group_wait *w = user;
	char *rv = yt_strdup(yt_path(pod, "/metadata/resourceVersion"));
	if (rv) {
		free(w->rv);
		w->rv = rv;
	}
	if (!strcmp(type, "BOOKMARK"))
		return 0;
	note_pod(w, !strcmp(type, "DELETED"), pod);
	return w->live.n == 0; /* stop as soon as the group is gone */
}

static int watch_pods(struct cr_k8s *k, const char *ns, struct group_wait *w,
		      long timeout_ms)
{
	struct cr_buf path = { 0 };
	char *base = cr_k8s_path("/api/v1", ns, "pods", NULL, NULL);
	if (base) {
		cr_buf_adds(&path, base);
		cr_k8s_query_add(&path, "allowWatchBookmarks", "true");
		cr_k8s_query_add(&path, "resourceVersion", w->rv ? w->rv : "0");
		free(base);
	}
	int rc = cr_k8s_watch(k, path.data, on_pod_event, w, timeout_ms);
	cr_buf_free(&path);
	if (rc == CR_K8S_WATCH_GONE)
		w->relist = true;
	return rc < 0 ? -1 : 0;
}

/* "a, b, c and 4 more", sorted (the order of the events is not the reader's). */
static int by_name(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static char *some_names(struct cr_strlist *l, size_t most)
{
	qsort(l->items, l->n, sizeof(*l->items), by_name);
	struct cr_buf b = { 0 };
	for (size_t i = 0; i < l->n && i < most; i++)
		cr_buf_printf(&b, "%s%s", i ? ", " : "", l->items[i]);
	if (l->n > most)
		cr_buf_printf(&b, " and %zu more", l->n - most);
	return cr_buf_detach(&b, NULL);
}

int cr_pods_wait_gone(struct cr_k8s *k, const char *ns, struct cr_selector *const *selectors,
		      size_t n, long priority, long timeout_s)
{
	struct group_wait w = { .selectors = selectors, .n = n, .relist = true };
	struct cr_progress prog = cr_progress_start();
	double start = prog.start;
	int rc = -1;
	for (;;) {
		if (w.relist && list_pods(k, ns, &w))
			break;
		if (!w.live.n) {
			rc = 0;
			break;
		}
		double t = cr_now_s();
		if (t - start >= (double)timeout_s) {
			char *names = some_names(&w.live, 3);
			cr_error("priority group %ld: %zu pods still running after %ld s "
				 "(stopPodsTimeout): %s", priority, w.live.n, timeout_s, names);
			free(names);
			break;
		}
		if (cr_terminated()) {
			cr_error("priority group %ld: interrupted while %zu pods were stopping",
				 priority, w.live.n);
			break;
		}
		double waited = cr_progress_due(&prog);
		if (waited)
			cr_info("priority group %ld: %zu pods left (%.0f s)", priority, w.live.n,
				waited);
		double until = start + (double)timeout_s - t;
		double slice = until < prog.next - t ? until : prog.next - t;
		if (watch_pods(k, ns, &w, (long)(slice * 1000) + 1))
			break;
	}
	cr_strlist_free(&w.live);
	free(w.rv);
	return rc;
}

