#include "pods.h"
#include "access.h"
#include "config.h"
#include "events.h"
#include "hpa.h"
#include "k8s.h"
#include "labels.h"
#include "log.h"
#include "names.h"
#include "pod_wait.h"
#include "proc.h"
#include "release.h"
#include "url.h"
#include "util.h"
#include "ytree.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
		if (name && !cr_dns_name_ok(name, CR_NAME_SUBDOMAIN, 253)) {
			char *eds = yt_strdup(yt_path(item, "/metadata/name"));
			cr_warn("ExpectedDeploymentScale %s: deploymentName \"%s\" is not a valid "
				"name (%s), so no Deployment has it: skipped", eds ? eds : "?", name,
				cr_name_rule_text(CR_NAME_SUBDOMAIN));
			free(eds);
			free(name);
		} else if (name && !known(*t, *n, name)) {
			*t = xrealloc(*t, (*n + 1) * sizeof(**t));
			(*t)[(*n)++] = (struct cr_pods_target){
				name, yt_strdup(yt_path(item, "/metadata/name")),
				yt_strdup(yt_path(item, "/metadata/uid")),
				number(yt_get(spec, "expectedScale"), 0),
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
	char *path = cr_k8s_path("/apis/wiremind.io/v1", ns, "expecteddeploymentscales", NULL,
				 NULL);
	struct fy_document *d = NULL;
	int rc = cr_k8s_list(k, path, selector, CR_K8S_ABSENT_OK, &d);
	if (rc == CR_K8S_NOT_FOUND)
		cr_error("kubernetes: GET %s: 404: the ExpectedDeploymentScale CRD is not "
			 "installed; install it with: kubectl apply -f %s", path, CR_PODS_CRD_FILE);
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
	for (size_t i = 0; i < n; i++) {
		free(t[i].deployment);
		free(t[i].eds);
		free(t[i].eds_uid);
	}
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

int cr_pods_check(struct cr_pods *s)
{
	struct cr_pods_target *t;
	size_t n;
	int rc = cr_pods_targets(s->k, s->ns, s->cfg->release, &t, &n);
	if (!rc)
		cr_pods_targets_free(t, n);
	if (!rc)
		rc = cr_access_check(s->k, s->ns, s->cfg);
	return rc;
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
	return cr_k8s_path("/apis/apps/v1", p->s->ns, "deployments", name, sub);
}

/* The writes below carry preconditions (k8s.h, "Preconditioned writes"): a copy the
 * client gave up on that lands late changes nothing. */

static bool fill_replicas(struct fy_node *scale, struct fy_node *patch, void *user)
{
	const long *replicas = user;
	char *now = yt_strdup(yt_path(scale, "/spec/replicas"));
	bool differs = !now || strtol(now, NULL, 10) != *replicas;
	free(now);
	if (differs)
		yt_set(yt_child_map(patch, "spec"), "replicas",
		       yt_int(fy_node_document(patch), *replicas));
	return differs;
}

/* CR_K8S_NOT_FOUND when there is no such Deployment. *scale (if set): the Scale as it
 * now is, whose status.selector selects the Deployment's Pods. */
static int scale_to(struct plan *p, const char *name, long replicas, struct fy_document **scale)
{
	char *path = deployment_path(p, name, "scale");
	int rc = cr_k8s_patch_wanted(p->k, path, fill_replicas, &replicas, scale);
	free(path);
	return rc;
}

/* "op" at the stopped mark (value NULL: none), appended to ops. */
static void mark_op(struct fy_node *ops, const char *op, const char *value)
{
	struct fy_document *d = fy_node_document(ops);
	struct fy_node *o = yt_map(d);
	yt_set_str(o, "op", op);
	yt_set_str(o, "path", CR_STOPPED_POINTER);
	if (value)
		yt_set_str(o, "value", value);
	yt_append(ops, o);
}

/* The stopped mark, conditioned on metadata.generation (docs/design.md, "Preconditioned
 * writes"). CR_K8S_NOT_FOUND when there is no such Deployment. */
static int mark(struct plan *p, const char *path)
{
	for (int i = 0; i < CR_K8S_WRITE_TRIES; i++) {
		struct fy_document *cur = NULL;
		int rc = cr_k8s_get(p->k, path, &cur);
		if (rc)
			return rc;
		struct fy_node *obj = fy_document_root(cur);
		struct fy_node *ann = yt_path(obj, "/metadata/annotations");
		bool marked = yt_get(ann, CR_STOPPED_ANNOTATION) != NULL;
		char *gen = yt_strdup(yt_path(obj, "/metadata/generation"));
		fy_document_destroy(cur);
		if (marked) {
			free(gen);
			return 0;
		}
		struct fy_document *d = yt_document();
		struct fy_node *ops = yt_seq(d);
		fy_document_set_root(d, ops);
		if (gen) {
			struct fy_node *test = yt_map(d);
			yt_set_str(test, "op", "test");
			yt_set_str(test, "path", "/metadata/generation");
			yt_set(test, "value", yt_int(d, strtol(gen, NULL, 10)));
			yt_append(ops, test);
		}
		free(gen);
		if (ann) {
			mark_op(ops, "add", "true");
		} else {
			struct fy_node *add = yt_map(d);
			yt_set_str(add, "op", "add");
			yt_set_str(add, "path", "/metadata/annotations");
			yt_set_str(yt_child_map(add, "value"), CR_STOPPED_ANNOTATION, "true");
			yt_append(ops, add);
		}
		rc = cr_k8s_patch_tested(p->k, path, d);
		if (rc != CR_K8S_TEST_FAILED)
			return rc;
	}
	cr_error("kubernetes: PATCH %s: the Deployment keeps changing under us (%d tries)", path,
		 CR_K8S_WRITE_TRIES);
	return CR_K8S_CONFLICT;
}

/* The stopped mark's removal, conditioned on the mark itself (docs/design.md,
 * "Preconditioned writes"). CR_K8S_NOT_FOUND when there is no such Deployment. */
static int unmark(struct plan *p, const char *path)
{
	struct fy_document *d = yt_document();
	struct fy_node *ops = yt_seq(d);
	fy_document_set_root(d, ops);
	mark_op(ops, "test", "true");
	mark_op(ops, "remove", NULL);
	int rc = cr_k8s_patch_tested(p->k, path, d);
	return rc == CR_K8S_TEST_FAILED ? CR_K8S_OK : rc; /* no mark: nothing to remove */
}

/* --- one Deployment, in a worker ------------------------------------------------------------ */

struct item {
	const struct cr_pods_target *t;
	const struct cr_hpas *hpas;
	struct cr_selector *selector; /* the Pods of the Deployment */
	bool missing;		      /* no such Deployment */
	bool marked;		      /* stopped by chartreuse: scaled back by a start */
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
	it->rc = mark(p, path);
	free(path);
	if (it->rc == CR_K8S_NOT_FOUND) {
		it->missing = true;
		it->rc = 0;
	} else if (!it->rc) {
		it->touched = true;
		it->rc = cr_hpas_pause(p->k, p->s->ns, it->hpas, it->t->deployment);
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
	it->marked = marked;
	if (it->rc == CR_K8S_NOT_FOUND)
		it->missing = true; /* warned about when stopping; nothing to start */
	if (!it->rc && marked)
		it->rc = scale_to(p, it->t->deployment, it->t->expected, NULL);
	if (!it->rc && !it->missing)
		it->rc = cr_hpas_resume(p->k, p->s->ns, it->hpas, it->t->deployment);
	if (!it->rc && marked)
		it->rc = unmark(p, path);
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
			     const struct cr_hpas *h)
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

/* The group's Pods gone (pod_wait.h). */
static int wait_gone(struct plan *p, const struct item *items, size_t n, long priority,
		     long timeout_s)
{
	struct cr_selector **selectors = xcalloc(n ? n : 1, sizeof(*selectors));
	for (size_t i = 0; i < n; i++)
		selectors[i] = items[i].selector;
	int rc = cr_pods_wait_gone(p->k, p->s->ns, selectors, n, priority, timeout_s);
	free(selectors);
	return rc;
}

/* --- Events ------------------------------------------------------------------------------ */

void cr_pods_event(struct cr_pods *s, bool warning, const char *reason, const char *fmt, ...)
{
	const struct cr_event_about *pod = cr_event_own_pod();
	if (!s || !pod)
		return;
	va_list ap;
	va_start(ap, fmt);
	char *message = xvasprintf(fmt, ap);
	va_end(ap);
	cr_event(s->k, s->ns, pod, warning, reason, "%s", message);
	free(message);
}

/* One Event on each ExpectedDeploymentScale of the items, naming its Deployment. Called
 * between the rounds of parallel calls, from the plan's own thread. */
static void item_event(struct plan *p, const struct item *it, bool warning, const char *reason,
		       const char *what)
{
	const struct cr_pods_target *t = it->t;
	struct cr_event_about eds = { "wiremind.io/v1", "ExpectedDeploymentScale", t->eds,
				      t->eds_uid };
	cr_event(p->k, p->s->ns, &eds, warning, reason, "Deployment %s: %s", t->deployment, what);
}

static void items_event(struct plan *p, const struct item *items, size_t n, bool warning,
			const char *reason, const char *what)
{
	for (size_t i = 0; i < n; i++)
		item_event(p, &items[i], warning, reason, what);
}

/* After a start: an Event for each Deployment brought back or that failed; none for one
 * chartreuse had not stopped. Returns how many got one. */
static size_t started_events(struct plan *p, const struct item *items, size_t n,
			     const char *reason)
{
	size_t told = 0;
	for (size_t i = 0; i < n; i++) {
		if (items[i].rc)
			item_event(p, &items[i], true, "StartFailed", "could not be started");
		else if (items[i].marked)
			item_event(p, &items[i], false, reason, "back at its expected scale");
		told += items[i].rc || items[i].marked;
	}
	return told;
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
	cr_pods_event(p->s, false, "Stopping", "stopping priority group %ld (%zu Deployments) "
		      "for the migration", priority, n);
	items_event(p, items, n, false, "Stopping", "scaling to 0 for the migration");
	run_parallel(p, items, n, scale_down);
	int rc = any_failed(items, n, false);
	if (!rc)
		rc = wait_gone(p, items, n, priority, timeout_s);
	if (rc) {
		cr_pods_event(p->s, true, "StopFailed", "priority group %ld could not be stopped",
			      priority);
		items_event(p, items, n, true, "StopFailed", "its group could not be stopped");
	} else {
		cr_pods_event(p->s, false, "Stopped", "priority group %ld stopped", priority);
		items_event(p, items, n, false, "Stopped", "no Pod left");
	}
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
	struct cr_hpas h = { 0 };
	struct item *items = NULL;
	if (!rc && p.n) {
		rc = cr_hpas_load(p.k, s->ns, &h);
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
	cr_hpas_free(&h);
	plan_free(&p);
	if (!rc)
		return CR_PODS_STOPPED;
	return changed ? CR_PODS_PARTLY : CR_PODS_UNTOUCHED;
}

/* What each started item brought back, into out (NULL: nothing kept). */
static void note_started(const struct item *items, size_t n, const struct cr_hpas *h,
			 struct cr_pods_restored *out)
{
	for (size_t i = 0; out && i < n; i++) {
		if (items[i].rc || items[i].missing)
			continue;
		if (items[i].marked)
			cr_strlist_add(&out->deployments, items[i].t->deployment);
		for (size_t k = 0; k < h->n; k++)
			if (cr_streq(h->v[k].target, items[i].t->deployment) &&
			    (h->v[k].recorded || h->v[k].paused))
				cr_strlist_add(&out->hpas, h->v[k].name);
	}
}

/* reason: the Events' word for success ("Started", "Restored"). */
static int start_all(struct cr_pods *s, struct plan *p, struct cr_pods_restored *out,
		     const char *reason)
{
	struct cr_hpas h = { 0 };
	int rc = cr_hpas_load(p->k, s->ns, &h);
	/* Every Deployment gets its chance even if one fails: a start is what brings the
	 * service back. */
	if (!rc) {
		struct item *items = items_of(p, 0, p->n, &h);
		run_parallel(p, items, p->n, start_item);
		rc = any_failed(items, p->n, false);
		note_started(items, p->n, &h, out);
		size_t told = started_events(p, items, p->n, reason);
		items_free(items, p->n);
		if (!rc)
			cr_info("started %zu Deployments of release %s", p->n, s->cfg->release);
		if (rc)
			cr_pods_event(s, true, "StartFailed", "not every Deployment of release %s "
				      "could be started", s->cfg->release);
		else if (told)
			cr_pods_event(s, false, reason, "%zu Deployments of release %s back at their "
				      "expected scale", told, s->cfg->release);
	}
	cr_hpas_free(&h);
	return rc;
}

int cr_pods_start(struct cr_pods *s)
{
	struct plan p;
	int rc = plan_load(&p, s);
	if (!rc && p.n)
		rc = start_all(s, &p, NULL, "Started");
	plan_free(&p);
	return rc;
}

int cr_pods_restore(struct cr_pods *s, struct cr_pods_restored *out)
{
	memset(out, 0, sizeof(*out));
	struct plan p;
	int rc = plan_load(&p, s);
	out->tracked = p.n;
	if (!rc && p.n)
		rc = start_all(s, &p, out, "Restored");
	else if (!rc)
		out->release = cr_release_find(s->k, s->ns, s->cfg->release);
	plan_free(&p);
	return rc || out->release < 0 ? -1 : 0;
}

void cr_pods_restored_free(struct cr_pods_restored *r)
{
	cr_strlist_free(&r->deployments);
	cr_strlist_free(&r->hpas);
}

static struct fy_node *names_node(struct fy_document *d, const struct cr_strlist *l)
{
	struct fy_node *seq = yt_seq(d);
	for (size_t i = 0; i < l->n; i++)
		yt_append(seq, yt_str(d, l->items[i]));
	return seq;
}

static void names_lines(struct cr_buf *out, const char *what, const struct cr_strlist *l,
			const char *done)
{
	for (size_t i = 0; i < l->n; i++)
		cr_buf_printf(out, "  %s %s: %s\n", what, l->items[i], done);
}

int cr_pods_restored_render(const struct cr_pods_restored *r, const struct cr_pods *s,
			    enum cr_format f, struct cr_buf *out)
{
	const char *release = s->cfg->release, *ns = s->ns;
	bool nothing = !r->deployments.n && !r->hpas.n;
	if (f == CR_FORMAT_TABLE) {
		cr_buf_printf(out, "Release %s in namespace %s: ", release, ns);
		if (!r->tracked)
			cr_buf_adds(out, "no ExpectedDeploymentScale: nothing to restore\n");
		else if (nothing)
			cr_buf_printf(out, "nothing was stopped (%zu Deployments tracked, none "
				      "stopped by chartreuse, no HPA paused)\n", r->tracked);
		else
			cr_buf_adds(out, "restored\n");
		names_lines(out, "Deployment", &r->deployments, "scaled back to its expectedScale");
		names_lines(out, "HPA", &r->hpas, "its behaviour given back");
		return 0;
	}
	struct fy_document *d = yt_document();
	struct fy_node *root = yt_map(d);
	fy_document_set_root(d, root);
	yt_set_str(root, "release", release);
	yt_set_str(root, "namespace", ns);
	yt_set(root, "trackedDeployments", yt_int(d, (long)r->tracked));
	yt_set(root, "nothingStopped", yt_bool(d, nothing));
	yt_set(root, "restoredDeployments", names_node(d, &r->deployments));
	yt_set(root, "resumedHpas", names_node(d, &r->hpas));
	int rc = cr_format_emit(d, f, out);
	fy_document_destroy(d);
	return rc;
}

const char *cr_pods_namespace(const struct cr_pods *s)
{
	return s->ns;
}
