#include "pods.h"
#include "config.h"
#include "json.h"
#include "k8s.h"
#include "labels.h"
#include "log.h"
#include "proc.h"
#include "util.h"
#include "ytree.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define PROGRESS_EVERY_S 5.0
#define MAX_WORKERS 8 /* parallel API calls; an API server throttles a client beyond */

struct cr_pods {
	const struct cr_config *cfg;
	struct cr_k8s *k;
	const char *ns;
	/* The workers' clients, kept from the stop to the start: their connections too. */
	struct cr_k8s *workers[MAX_WORKERS];
};

/* What the ExpectedDeploymentScales say now; k is the client of the thread using it. */
struct plan {
	struct cr_pods *s;
	struct cr_k8s *k;
	struct cr_pods_target *t;
	size_t n;
};

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static long number(struct fy_node *n, long def)
{
	char *s = yt_strdup(n);
	long v = s ? strtol(s, NULL, 10) : def;
	free(s);
	return v;
}

static bool known(const struct cr_pods_target *t, size_t n, const char *deployment)
{
	for (size_t i = 0; i < n; i++)
		if (!strcmp(t[i].deployment, deployment))
			return true;
	return false;
}

void cr_pods_targets_add(struct fy_node *list, struct cr_pods_target **t, size_t *n)
{
	void *it = NULL;
	struct fy_node *item;
	while ((item = fy_node_sequence_iterate(yt_get(list, "items"), &it))) {
		struct fy_node *spec = yt_get(item, "spec");
		char *name = yt_strdup(yt_get(spec, "deploymentName"));
		if (name && !known(*t, *n, name)) {
			*t = xrealloc(*t, (*n + 1) * sizeof(**t));
			(*t)[(*n)++] = (struct cr_pods_target){
				name, number(yt_get(spec, "expectedScale"), 0),
				number(yt_get(spec, "priority"), 0)
			};
		} else {
			free(name);
		}
	}
}

/* ExpectedDeploymentScales labelled with the release, under either label. */
static int add_targets(struct cr_k8s *k, const char *ns, const char *selector,
		       struct cr_pods_target **t, size_t *n)
{
	char *path = xasprintf("/apis/wiremind.io/v1/namespaces/%s/expecteddeploymentscales", ns);
	struct fy_document *d = NULL;
	int rc = cr_k8s_list(k, path, selector, &d);
	free(path);
	if (rc)
		return -1;
	cr_pods_targets_add(fy_document_root(d), t, n);
	fy_document_destroy(d);
	return 0;
}

static int by_priority(const void *a, const void *b)
{
	const struct cr_pods_target *x = a, *y = b;
	if (x->priority != y->priority)
		return x->priority > y->priority ? -1 : 1;
	return strcmp(x->deployment, y->deployment);
}

int cr_pods_targets(struct cr_k8s *k, const char *ns, const char *release,
		    struct cr_pods_target **out, size_t *n)
{
	*out = NULL;
	*n = 0;
	char *instance = xasprintf("app.kubernetes.io/instance=%s", release);
	char *legacy = xasprintf("release=%s", release);
	int rc = add_targets(k, ns, instance, out, n);
	if (!rc)
		rc = add_targets(k, ns, legacy, out, n);
	free(instance);
	free(legacy);
	if (rc) {
		cr_pods_targets_free(*out, *n);
		*out = NULL;
		*n = 0;
	} else if (*n) {
		qsort(*out, *n, sizeof(**out), by_priority);
	}
	return rc;
}

void cr_pods_targets_free(struct cr_pods_target *t, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(t[i].deployment);
	free(t);
}

static void plan_free(struct plan *p)
{
	cr_pods_targets_free(p->t, p->n);
}

struct cr_pods *cr_pods_open(const struct cr_config *cfg)
{
	struct cr_k8s_options opts = { 0 };
	return cr_pods_open_with(cfg, &opts);
}

struct cr_pods *cr_pods_open_with(const struct cr_config *cfg,
				  const struct cr_k8s_options *given)
{
	if (!cr_nonempty(cfg->release)) {
		cr_error("stopping pods needs the release name (release, CHARTREUSE_RELEASE_NAME)");
		return NULL;
	}
	struct cr_k8s_options opts = *given;
	if (!opts.namespace)
		opts.namespace = cfg->namespace;
	struct cr_k8s *k = cr_k8s_new(&opts);
	if (!k)
		return NULL;
	struct cr_pods *s = xcalloc(1, sizeof(*s));
	s->cfg = cfg;
	s->k = k;
	s->ns = cr_k8s_namespace(k);
	return s;
}

void cr_pods_close(struct cr_pods *s)
{
	if (!s)
		return;
	for (size_t i = 0; i < MAX_WORKERS; i++)
		cr_k8s_free(s->workers[i]);
	cr_k8s_free(s->k);
	free(s);
}

static int plan_load(struct plan *p, struct cr_pods *s)
{
	memset(p, 0, sizeof(*p));
	p->s = s;
	p->k = s->k;
	return cr_pods_targets(p->k, s->ns, s->cfg->release, &p->t, &p->n);
}

/* --- one Deployment ------------------------------------------------------------------------ */

static char *deployment_path(const struct plan *p, const char *name, const char *sub)
{
	return xasprintf("/apis/apps/v1/namespaces/%s/deployments/%s%s%s", p->s->ns, name,
			 sub ? "/" : "", sub ? sub : "");
}

/* flags beyond CR_K8S_IDEMPOTENT (CR_K8S_ABSENT_OK); *out as cr_k8s_patch's. */
static int merge_patch_as(struct plan *p, const char *path, struct fy_document *patch,
			  unsigned flags, struct fy_document **out)
{
	int rc = cr_k8s_patch(p->k, path, CR_K8S_PATCH_MERGE, fy_document_root(patch),
			      CR_K8S_IDEMPOTENT | flags, out);
	fy_document_destroy(patch);
	return rc;
}

static int merge_patch(struct plan *p, const char *path, struct fy_document *patch)
{
	return merge_patch_as(p, path, patch, 0, NULL);
}

static struct fy_document *new_patch(struct fy_node **root)
{
	struct fy_document *d = fy_document_create(NULL);
	*root = yt_map(d);
	fy_document_set_root(d, *root);
	return d;
}

/* CR_K8S_NOT_FOUND when there is no such Deployment. *scale (if set): the Scale as it
 * now is, whose status.selector selects the Deployment's Pods. */
static int scale_to(struct plan *p, const char *name, long replicas, struct fy_document **scale)
{
	struct fy_node *root;
	struct fy_document *d = new_patch(&root);
	yt_set(yt_child_map(root, "spec"), "replicas", yt_int(d, replicas));
	char *path = deployment_path(p, name, "scale");
	int rc = merge_patch_as(p, path, d, CR_K8S_ABSENT_OK, scale);
	free(path);
	return rc;
}

/* value NULL removes the annotation. CR_K8S_NOT_FOUND when there is no such object. */
static int annotate(struct plan *p, const char *path, const char *key, const char *value)
{
	struct fy_node *root;
	struct fy_document *d = new_patch(&root);
	struct fy_node *ann = yt_child_map(yt_child_map(root, "metadata"), "annotations");
	yt_set(ann, key, value ? yt_str(d, value) : fy_node_create_scalar(d, "null", 4));
	return merge_patch_as(p, path, d, CR_K8S_ABSENT_OK, NULL);
}

/* --- HPAs ---------------------------------------------------------------------------------- */

/* What pausing and resuming one HPA needs, read before the work is shared out (a tree is
 * not shared between threads). */
struct hpa {
	char *name;
	char *target;	/* the Deployment it scales */
	char *behavior;	/* spec.behavior as JSON, "null" when none */
	char *recorded;	/* the annotation of a paused HPA, NULL when not paused */
};

struct hpas {
	struct hpa *v;
	size_t n;
};

static void hpas_free(struct hpas *h)
{
	for (size_t i = 0; i < h->n; i++) {
		free(h->v[i].name);
		free(h->v[i].target);
		free(h->v[i].behavior);
		free(h->v[i].recorded);
	}
	free(h->v);
	memset(h, 0, sizeof(*h));
}

static int hpas_load(struct plan *p, struct hpas *out)
{
	char *path = xasprintf("/apis/autoscaling/v2/namespaces/%s/horizontalpodautoscalers",
			       p->s->ns);
	struct fy_document *d = NULL;
	int rc = cr_k8s_list(p->k, path, NULL, &d);
	free(path);
	void *it = NULL;
	struct fy_node *hpa;
	while (!rc && (hpa = fy_node_sequence_iterate(yt_get(fy_document_root(d), "items"), &it))) {
		struct fy_node *ref = yt_path(hpa, "/spec/scaleTargetRef");
		char *kind = yt_strdup(yt_get(ref, "kind"));
		if (cr_streq(kind, "Deployment")) {
			struct fy_node *rec = yt_get(yt_path(hpa, "/metadata/annotations"),
						     CR_HPA_BEHAVIOR_ANNOTATION);
			char *behavior = cr_json_string(yt_path(hpa, "/spec/behavior"));
			out->v = xrealloc(out->v, (out->n + 1) * sizeof(*out->v));
			out->v[out->n++] = (struct hpa){
				yt_strdup(yt_path(hpa, "/metadata/name")), yt_strdup(yt_get(ref, "name")),
				behavior ? behavior : xstrdup("null"), rec ? yt_strdup(rec) : NULL
			};
		}
		free(kind);
	}
	if (d)
		fy_document_destroy(d);
	return rc;
}

static char *hpa_path(const struct plan *p, const struct hpa *h)
{
	return xasprintf("/apis/autoscaling/v2/namespaces/%s/horizontalpodautoscalers/%s", p->s->ns,
			 h->name ? h->name : "");
}

/* Disabled scale-up, the previous behaviour kept in an annotation; a second pause keeps
 * the first record. */
static int pause_hpa(struct plan *p, const struct hpa *h)
{
	if (h->recorded)
		return 0;
	struct fy_node *root;
	struct fy_document *d = new_patch(&root);
	yt_set_str(yt_child_map(yt_child_map(root, "metadata"), "annotations"),
		   CR_HPA_BEHAVIOR_ANNOTATION, h->behavior);
	struct fy_node *up = yt_child_map(yt_child_map(yt_child_map(root, "spec"), "behavior"),
					  "scaleUp");
	yt_set_str(up, "selectPolicy", "Disabled");
	char *path = hpa_path(p, h);
	int rc = merge_patch(p, path, d);
	free(path);
	return rc;
}

/* The behaviour as it was, exactly: a JSON patch replaces the whole field (a merge patch
 * would keep the Disabled policy merged into it). */
static int resume_hpa(struct plan *p, const struct hpa *h)
{
	if (!h->recorded)
		return 0;
	struct fy_document *before = cr_json_parse(h->recorded, strlen(h->recorded),
						   "the recorded HPA behaviour");
	if (!before)
		return -1;
	struct fy_document *d = fy_document_create(NULL);
	struct fy_node *ops = yt_seq(d);
	fy_document_set_root(d, ops);
	struct fy_node *op = yt_map(d);
	struct fy_node *value = fy_document_root(before);
	bool had = value && !yt_is_null(value);
	yt_set_str(op, "op", had ? "replace" : "remove");
	yt_set_str(op, "path", "/spec/behavior");
	if (had)
		yt_set(op, "value", fy_node_copy(d, value));
	yt_append(ops, op);
	struct fy_node *del = yt_map(d);
	yt_set_str(del, "op", "remove");
	yt_set_str(del, "path", "/metadata/annotations/chartreuse.wiremind.io~1hpa-behavior-before");
	yt_append(ops, del);
	char *path = hpa_path(p, h);
	int rc = cr_k8s_patch(p->k, path, CR_K8S_PATCH_JSON, ops, CR_K8S_IDEMPOTENT, NULL);
	free(path);
	fy_document_destroy(d);
	fy_document_destroy(before);
	return rc;
}

static int for_each_hpa_of(struct plan *p, const struct hpas *h, const char *deployment,
			   int (*fn)(struct plan *, const struct hpa *))
{
	int rc = 0;
	for (size_t i = 0; !rc && i < h->n; i++)
		if (cr_streq(h->v[i].target, deployment))
			rc = fn(p, &h->v[i]);
	return rc;
}

/* --- one Deployment, in a worker ------------------------------------------------------------ */

struct item {
	const struct cr_pods_target *t;
	const struct hpas *hpas;
	struct cr_selector *selector; /* the Pods of the Deployment */
	bool missing;		      /* no such Deployment */
	bool touched;		      /* recorded as taken in charge */
	int rc;
};

/* The Scale a PATCH returned says which Pods are the Deployment's. */
static int read_selector(struct item *it, struct fy_document *scale)
{
	char *text = yt_strdup(yt_path(fy_document_root(scale), "/status/selector"));
	if (!cr_nonempty(text)) {
		cr_error("the Scale of Deployment %s has no status.selector: its Pods can't be "
			 "waited for", it->t->deployment);
		free(text);
		return -1;
	}
	it->selector = cr_selector_parse(text);
	free(text);
	return it->selector ? 0 : -1;
}

/* Before any group is scaled down, every Deployment is recorded as taken in charge and
 * its HPAs paused, all in parallel: from then on a restore brings everything back, and
 * each group only waits for its own scale calls. SPEC §2 pauses a group's HPAs just
 * before that group; up front, a call that can't be made (a 403 on one HPA) fails the run
 * before any Pod is stopped (README, "Why every HPA is paused up front"). */
static void take_charge(struct plan *p, struct item *it)
{
	char *path = deployment_path(p, it->t->deployment, NULL);
	it->rc = annotate(p, path, CR_STOPPED_ANNOTATION, "true");
	free(path);
	if (it->rc == CR_K8S_NOT_FOUND) {
		it->missing = true;
		it->rc = 0;
	} else if (!it->rc) {
		it->touched = true;
		it->rc = for_each_hpa_of(p, it->hpas, it->t->deployment, pause_hpa);
	}
}

static void scale_down(struct plan *p, struct item *it)
{
	if (it->missing)
		return;
	struct fy_document *scale = NULL;
	it->rc = scale_to(p, it->t->deployment, 0, &scale);
	if (!it->rc)
		it->rc = read_selector(it, scale);
	else if (it->rc == CR_K8S_NOT_FOUND) /* deleted meanwhile: nothing to wait for */
		it->rc = 0;
	if (scale)
		fy_document_destroy(scale);
}

/* CR_K8S_NOT_FOUND when there is no such Deployment. */
static int read_stopped_mark(struct plan *p, const char *path, bool *marked)
{
	struct fy_document *d = NULL;
	int rc = cr_k8s_get(p->k, path, &d);
	*marked = !rc && yt_get(yt_path(fy_document_root(d), "/metadata/annotations"),
				CR_STOPPED_ANNOTATION);
	if (d)
		fy_document_destroy(d);
	return rc;
}

/* Only a Deployment chartreuse stopped (and marked so before its scale-down) is scaled
 * back: any other is left at the scale its HPA or its owner gave it. Its HPAs get their
 * recorded behaviour back either way. */
static void start_item(struct plan *p, struct item *it)
{
	char *path = deployment_path(p, it->t->deployment, NULL);
	bool marked = false;
	it->rc = read_stopped_mark(p, path, &marked);
	if (it->rc == CR_K8S_NOT_FOUND)
		it->missing = true; /* warned about when stopping; nothing to start */
	if (!it->rc && marked)
		it->rc = scale_to(p, it->t->deployment, it->t->expected, NULL);
	if (!it->rc && !it->missing)
		it->rc = for_each_hpa_of(p, it->hpas, it->t->deployment, resume_hpa);
	if (!it->rc && marked)
		it->rc = annotate(p, path, CR_STOPPED_ANNOTATION, NULL);
	if (it->rc == CR_K8S_NOT_FOUND) /* deleted meanwhile */
		it->rc = 0;
	free(path);
}

/* Items shared out to up to MAX_WORKERS threads, each with its own client (a client is
 * one connection and not thread-safe). */
struct pool {
	struct plan *p;
	struct item *items;
	size_t n, next;
	void (*fn)(struct plan *, struct item *);
	pthread_mutex_t lock;
};

struct worker {
	struct pool *pool;
	struct plan plan;
	pthread_t thread;
};

static void *work(void *arg)
{
	struct worker *w = arg;
	struct pool *pool = w->pool;
	for (;;) {
		pthread_mutex_lock(&pool->lock);
		size_t i = pool->next++;
		pthread_mutex_unlock(&pool->lock);
		if (i >= pool->n)
			return NULL;
		pool->fn(&w->plan, &pool->items[i]);
	}
}

static void run_parallel(struct plan *p, struct item *items, size_t n,
			 void (*fn)(struct plan *, struct item *))
{
	struct pool pool = { p, items, n, 0, fn, PTHREAD_MUTEX_INITIALIZER };
	size_t n_workers = n < MAX_WORKERS ? n : MAX_WORKERS;
	struct worker w[MAX_WORKERS] = { 0 };
	struct cr_k8s **clients = p->s->workers;
	size_t started = 0;
	for (size_t i = 1; i < n_workers; i++) {
		if (!clients[i] && !(clients[i] = cr_k8s_dup(p->k)))
			break;
		w[i].pool = &pool;
		w[i].plan = *p;
		w[i].plan.k = clients[i];
		if (pthread_create(&w[i].thread, NULL, work, &w[i]))
			break;
		started = i;
	}
	/* This thread works too, with the plan's own client: with one item, no thread. */
	w[0].pool = &pool;
	w[0].plan = *p;
	work(&w[0]);
	for (size_t i = 1; i <= started; i++)
		pthread_join(w[i].thread, NULL);
	pthread_mutex_destroy(&pool.lock);
}

static struct item *items_of(const struct plan *p, size_t from, size_t to,
			     const struct hpas *h)
{
	struct item *items = xcalloc(to - from, sizeof(*items));
	for (size_t i = from; i < to; i++)
		items[i - from] = (struct item){ .t = &p->t[i], .hpas = h };
	return items;
}

static void items_free(struct item *items, size_t n)
{
	for (size_t i = 0; i < n; i++)
		cr_selector_free(items[i].selector);
	free(items);
}

/* --- waiting for Pods ------------------------------------------------------------------------ */

/* The Pods of a group that still count, kept current from one list and then the watch
 * events that follow it (no re-listing, no polling). */
struct group_wait {
	const struct item *items;
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
		if (w->items[i].selector && cr_selector_matches(w->items[i].selector, labels))
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

static int list_pods(struct plan *p, struct group_wait *w)
{
	char *path = xasprintf("/api/v1/namespaces/%s/pods", p->s->ns);
	struct fy_document *d = NULL;
	int rc = cr_k8s_list(p->k, path, NULL, &d);
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

static int watch_pods(struct plan *p, struct group_wait *w, long timeout_ms)
{
	char *path = xasprintf("/api/v1/namespaces/%s/pods?allowWatchBookmarks=true&"
			       "resourceVersion=%s", p->s->ns, w->rv ? w->rv : "0");
	int rc = cr_k8s_watch(p->k, path, on_pod_event, w, timeout_ms);
	free(path);
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

static int wait_group_gone(struct plan *p, const struct item *items, size_t n, long priority,
			   long timeout_s)
{
	struct group_wait w = { .items = items, .n = n, .relist = true };
	double start = now_s(), noted = start;
	int rc = -1;
	for (;;) {
		if (w.relist && list_pods(p, &w))
			break;
		if (!w.live.n) {
			rc = 0;
			break;
		}
		double t = now_s();
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
		if (t - noted >= PROGRESS_EVERY_S) {
			cr_info("priority group %ld: %zu pods left (%.0f s)", priority, w.live.n,
				t - start);
			noted = t;
		}
		double until = start + (double)timeout_s - t;
		double slice = until < PROGRESS_EVERY_S ? until : PROGRESS_EVERY_S;
		if (watch_pods(p, &w, (long)(slice * 1000) + 1))
			break;
	}
	cr_strlist_free(&w.live);
	free(w.rv);
	return rc;
}

/* --- stop and start ------------------------------------------------------------------------- */

/* -1 if any item failed (each failure was reported), after warning of missing ones. */
static int any_failed(const struct item *items, size_t n, bool warn_missing)
{
	int rc = 0;
	for (size_t i = 0; i < n; i++) {
		if (warn_missing && items[i].missing && !items[i].rc)
			cr_warn("Deployment %s (named by an ExpectedDeploymentScale) does not exist",
				items[i].t->deployment);
		rc |= items[i].rc;
	}
	return rc ? -1 : 0;
}

static bool any_touched(const struct item *items, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (items[i].touched)
			return true;
	return false;
}

static int stop_group(struct plan *p, struct item *items, size_t n, long timeout_s)
{
	long priority = items[0].t->priority;
	cr_info("stopping priority group %ld (%zu Deployments)", priority, n);
	run_parallel(p, items, n, scale_down);
	int rc = any_failed(items, n, false);
	if (!rc)
		rc = wait_group_gone(p, items, n, priority, timeout_s);
	return rc;
}

char *cr_pods_restore_command(const char *release, const char *ns)
{
	return xasprintf("chartreuse restore --release %s --namespace %s", release ? release : "?",
			 ns ? ns : "?");
}

static int stop_by_group(struct plan *p, struct item *items, long timeout_s)
{
	int rc = 0;
	for (size_t from = 0; !rc && from < p->n;) {
		size_t to = from;
		while (to < p->n && p->t[to].priority == p->t[from].priority)
			to++;
		rc = stop_group(p, items + from, to - from, timeout_s);
		from = to;
	}
	return rc;
}

enum cr_pods_stop cr_pods_stop(struct cr_pods *s, char **restore)
{
	struct plan p;
	int rc = plan_load(&p, s);
	bool changed = false;
	if (restore)
		*restore = cr_pods_restore_command(s->cfg->release, s->ns);
	if (!rc && !p.n)
		cr_info("release %s has no ExpectedDeploymentScale: no pods to stop", s->cfg->release);
	struct hpas h = { 0 };
	struct item *items = NULL;
	if (!rc && p.n) {
		rc = hpas_load(&p, &h);
		items = items_of(&p, 0, p.n, &h);
	}
	if (!rc && p.n) {
		run_parallel(&p, items, p.n, take_charge);
		rc = any_failed(items, p.n, true);
		changed = any_touched(items, p.n);
	}
	if (!rc && p.n)
		rc = stop_by_group(&p, items, s->cfg->stop_pods_timeout);
	if (items)
		items_free(items, p.n);
	hpas_free(&h);
	plan_free(&p);
	if (!rc)
		return CR_PODS_STOPPED;
	return changed ? CR_PODS_PARTLY : CR_PODS_UNTOUCHED;
}

int cr_pods_start(struct cr_pods *s)
{
	struct plan p;
	int rc = plan_load(&p, s);
	struct hpas h = { 0 };
	if (!rc && p.n)
		rc = hpas_load(&p, &h);
	/* Every Deployment gets its chance even if one fails: a start is what brings the
	 * service back. */
	if (!rc && p.n) {
		struct item *items = items_of(&p, 0, p.n, &h);
		run_parallel(&p, items, p.n, start_item);
		rc = any_failed(items, p.n, false);
		items_free(items, p.n);
		if (!rc)
			cr_info("started %zu Deployments of release %s", p.n, s->cfg->release);
	}
	hpas_free(&h);
	plan_free(&p);
	return rc;
}
