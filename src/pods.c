#include "pods.h"
#include "config.h"
#include "json.h"
#include "k8s.h"
#include "labels.h"
#include "log.h"
#include "names.h"
#include "proc.h"
#include "release.h"
#include "url.h"
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
	char *path = cr_k8s_path("/apis/wiremind.io/v1", ns, "expecteddeploymentscales", NULL,
				 NULL);
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
	return cr_k8s_path("/apis/apps/v1", p->s->ns, "deployments", name, sub);
}

static struct fy_document *new_patch(struct fy_node **root)
{
	struct fy_document *d = yt_document();
	*root = yt_map(d);
	fy_document_set_root(d, *root);
	return d;
}

/* --- writes that a late copy cannot undo ---------------------------------------------------
 * A write the client gave up on (a timeout) may still be applied by the server later, after
 * the retry and after whatever the run did next: a scale to 0 landing after the start would
 * leave a Deployment down and unmarked. So every write carries the resourceVersion of the
 * read it was decided from: the server refuses a stale one (409 Conflict), and the object
 * is read again and the write decided again. */
#define WRITE_TRIES 10

/* A merge patch (consumed) carrying a resourceVersion: CR_K8S_OK with *out (if set) the
 * object as it now is, CR_K8S_CONFLICT when the resourceVersion is stale,
 * CR_K8S_NOT_FOUND, or another failure (reported). Idempotent: a resent patch that did
 * land meets its own precondition and is refused. */
static int rv_patch(struct plan *p, const char *path, struct fy_document *patch,
		    struct fy_document **out)
{
	int rc = cr_k8s_patch(p->k, path, CR_K8S_PATCH_MERGE, fy_document_root(patch),
			      CR_K8S_IDEMPOTENT | CR_K8S_CONFLICT_OK | CR_K8S_ABSENT_OK, out);
	fy_document_destroy(patch);
	if (!rc && out && !*out) {
		cr_error("kubernetes: PATCH %s: %ld with no object in the answer", path,
			 cr_k8s_last_status(p->k));
		rc = CR_K8S_ERROR;
	}
	return rc;
}

/* Fills the merge patch that makes obj as wanted; false when it already is. */
struct want {
	bool (*fill)(const struct want *w, struct fy_node *obj, struct fy_document *d,
		     struct fy_node *patch);
	long replicas;
};

/* 0 with *out (if set) the object as it now is, CR_K8S_NOT_FOUND, or -1 after reporting. */
static int write_wanted(struct plan *p, const char *path, const struct want *w,
			struct fy_document **out)
{
	for (int i = 0; i < WRITE_TRIES; i++) {
		struct fy_document *cur = NULL;
		int rc = cr_k8s_get(p->k, path, &cur);
		if (rc)
			return rc;
		struct fy_node *obj = fy_document_root(cur), *root;
		struct fy_document *d = new_patch(&root);
		if (!w->fill(w, obj, d, root)) {
			fy_document_destroy(d);
			if (out)
				*out = cur;
			else
				fy_document_destroy(cur);
			return 0;
		}
		char *rv = yt_strdup(yt_path(obj, "/metadata/resourceVersion"));
		if (rv)
			yt_set_str(yt_child_map(root, "metadata"), "resourceVersion", rv);
		free(rv);
		fy_document_destroy(cur);
		rc = rv_patch(p, path, d, out);
		if (rc != CR_K8S_CONFLICT)
			return rc;
	}
	cr_error("kubernetes: PATCH %s: 409 Conflict %d times in a row: the object keeps "
		 "changing under us", path, WRITE_TRIES);
	return CR_K8S_CONFLICT;
}

static bool fill_replicas(const struct want *w, struct fy_node *scale, struct fy_document *d,
			  struct fy_node *patch)
{
	char *now = yt_strdup(yt_path(scale, "/spec/replicas"));
	bool differs = !now || strtol(now, NULL, 10) != w->replicas;
	free(now);
	if (differs)
		yt_set(yt_child_map(patch, "spec"), "replicas", yt_int(d, w->replicas));
	return differs;
}

/* CR_K8S_NOT_FOUND when there is no such Deployment. *scale (if set): the Scale as it
 * now is, whose status.selector selects the Deployment's Pods. */
static int scale_to(struct plan *p, const char *name, long replicas, struct fy_document **scale)
{
	struct want w = { .fill = fill_replicas, .replicas = replicas };
	char *path = deployment_path(p, name, "scale");
	int rc = write_wanted(p, path, &w, scale);
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

/* A JSON patch (consumed) that tests before it changes: CR_K8S_TEST_FAILED when a test
 * does not hold on the object (k8s.h: a refusal of the result is CR_K8S_INVALID). */
static int json_patch(struct plan *p, const char *path, struct fy_document *d)
{
	int rc = cr_k8s_patch(p->k, path, CR_K8S_PATCH_JSON, fy_document_root(d),
			      CR_K8S_IDEMPOTENT | CR_K8S_ABSENT_OK, NULL);
	fy_document_destroy(d);
	return rc;
}

/* The stopped mark is conditioned on the Deployment's metadata.generation, which only its
 * spec moves (not the status updates of Pods starting, which would make a resourceVersion
 * conflict): a copy that lands late, after the scale down and up moved the generation,
 * fails its test and changes nothing. CR_K8S_NOT_FOUND when there is no such Deployment. */
static int mark(struct plan *p, const char *path)
{
	for (int i = 0; i < WRITE_TRIES; i++) {
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
		rc = json_patch(p, path, d);
		if (rc != CR_K8S_TEST_FAILED)
			return rc;
	}
	cr_error("kubernetes: PATCH %s: the Deployment keeps changing under us (%d tries)", path,
		 WRITE_TRIES);
	return CR_K8S_CONFLICT;
}

/* The stopped mark's removal is conditioned on the mark itself (a JSON patch that tests it
 * first), for the same reason: a copy that lands late finds no mark, fails its test and
 * changes nothing. CR_K8S_NOT_FOUND when there is no such Deployment. */
static int unmark(struct plan *p, const char *path)
{
	struct fy_document *d = yt_document();
	struct fy_node *ops = yt_seq(d);
	fy_document_set_root(d, ops);
	mark_op(ops, "test", "true");
	mark_op(ops, "remove", NULL);
	int rc = json_patch(p, path, d);
	return rc == CR_K8S_TEST_FAILED ? CR_K8S_OK : rc; /* no mark: nothing to remove */
}

/* --- HPAs ---------------------------------------------------------------------------------- */

/* Pausing an HPA disables its scale-up (spec.behavior.scaleUp.selectPolicy: Disabled) and
 * records two behaviours in annotations: the one from before (CR_HPA_BEHAVIOR_ANNOTATION)
 * and the one the pause left, as the server answered it, defaults included
 * (CR_HPA_PAUSED_ANNOTATION). Resuming compares the HPA's behaviour with the second: the
 * same, nobody changed it and the first comes back exactly; different, someone did (in
 * before-deployment mode, the new chart version, applied between the pre-upgrade pause and
 * the post-upgrade restore) and only chartreuse's own change is taken back, so that theirs
 * stays. Why the behaviour and not metadata.generation: an API server maintains an HPA's
 * generation only with the HPAGeneration feature gate; elsewhere it never moves. Each
 * write computed from a read carries that read's resourceVersion: on 409 Conflict the HPA
 * is read again and the write computed again (README, "Stopping and starting pods"). */

/* What pausing and resuming one HPA needs, read before the work is shared out (a tree is
 * not shared between threads; each HPA is handled by the one worker of its Deployment). */
struct hpa {
	char *name;
	char *target;	/* the Deployment it scales */
	char *rv;	/* metadata.resourceVersion, as read */
	char *behavior;	/* spec.behavior as JSON, "null" when none */
	char *recorded;	/* the behaviour before the pause, NULL when not paused */
	char *paused;	/* the behaviour the pause left, NULL when not recorded (a pause by an
			 * older chartreuse, or one interrupted before it was recorded) */
};

struct hpas {
	struct hpa *v;
	size_t n;
};

static void hpa_clear(struct hpa *h)
{
	free(h->name);
	free(h->target);
	free(h->rv);
	free(h->behavior);
	free(h->recorded);
	free(h->paused);
	memset(h, 0, sizeof(*h));
}

static void hpas_free(struct hpas *h)
{
	for (size_t i = 0; i < h->n; i++)
		hpa_clear(&h->v[i]);
	free(h->v);
	memset(h, 0, sizeof(*h));
}

/* -1 after reporting (a behaviour with no JSON form). */
static int hpa_read(struct fy_node *obj, struct hpa *h)
{
	struct fy_node *ann = yt_path(obj, "/metadata/annotations");
	char *behavior = cr_json_string(yt_path(obj, "/spec/behavior"));
	if (!behavior)
		return -1;
	*h = (struct hpa){
		yt_strdup(yt_path(obj, "/metadata/name")),
		yt_strdup(yt_path(obj, "/spec/scaleTargetRef/name")),
		yt_strdup(yt_path(obj, "/metadata/resourceVersion")),
		behavior,
		yt_strdup(yt_get(ann, CR_HPA_BEHAVIOR_ANNOTATION)),
		yt_strdup(yt_get(ann, CR_HPA_PAUSED_ANNOTATION)),
	};
	return 0;
}

static int hpas_load(struct plan *p, struct hpas *out)
{
	char *path = cr_k8s_path("/apis/autoscaling/v2", p->s->ns, "horizontalpodautoscalers",
				 NULL, NULL);
	struct fy_document *d = NULL;
	int rc = cr_k8s_list(p->k, path, NULL, &d);
	free(path);
	void *it = NULL;
	struct fy_node *obj;
	while (!rc && (obj = fy_node_sequence_iterate(yt_get(fy_document_root(d), "items"), &it))) {
		char *kind = yt_strdup(yt_path(obj, "/spec/scaleTargetRef/kind"));
		if (cr_streq(kind, "Deployment")) {
			out->v = xrealloc(out->v, (out->n + 1) * sizeof(*out->v));
			rc = hpa_read(obj, &out->v[out->n]);
			if (!rc)
				out->n++;
		}
		free(kind);
	}
	if (d)
		fy_document_destroy(d);
	return rc;
}

static char *hpa_path(const struct plan *p, const char *name)
{
	return cr_k8s_path("/apis/autoscaling/v2", p->s->ns, "horizontalpodautoscalers", name,
			   NULL);
}

/* h (cleared first) as the HPA now is: 0, CR_K8S_NOT_FOUND, or -1 after reporting. Read
 * by listing it by name: the Role grants list on HPAs, not get (SPEC's verbs). */
static int hpa_get(struct plan *p, const char *name, struct hpa *h)
{
	hpa_clear(h);
	struct cr_buf path = { 0 };
	char *base = hpa_path(p, NULL);
	if (base) {
		char *field = xasprintf("metadata.name=%s", name);
		cr_buf_adds(&path, base);
		cr_k8s_query_add(&path, "fieldSelector", field);
		free(field);
		free(base);
	}
	struct fy_document *d = NULL;
	int rc = cr_k8s_list(p->k, path.data, NULL, &d);
	cr_buf_free(&path);
	struct fy_node *obj = rc ? NULL : yt_path(fy_document_root(d), "/items/0");
	if (!rc)
		rc = obj ? hpa_read(obj, h) : CR_K8S_NOT_FOUND;
	if (d)
		fy_document_destroy(d);
	return rc;
}

static struct fy_document *parse_behavior(const char *json, const char *what)
{
	return cr_json_parse(json, strlen(json), what);
}

static bool absent(struct fy_node *n)
{
	return !n || yt_is_null(n);
}

static bool up_disabled(struct fy_node *behavior)
{
	char *policy = yt_strdup(yt_path(behavior, "/scaleUp/selectPolicy"));
	bool off = cr_streq(policy, "Disabled");
	free(policy);
	return off;
}

static struct fy_node *null_node(struct fy_document *d)
{
	return fy_node_create_scalar(d, "null", 4);
}

/* The merge patch (RFC 7386), built in d, that turns from into to; NULL when they are the
 * same. Lists are replaced whole, as a merge patch does. */
static struct fy_node *merge_diff(struct fy_document *d, struct fy_node *from, struct fy_node *to)
{
	if (absent(to))
		return absent(from) ? NULL : null_node(d);
	if (!absent(from) && fy_node_compare(from, to))
		return NULL;
	if (!yt_is_map(from) || !yt_is_map(to))
		return fy_node_copy(d, to);
	struct fy_node *patch = yt_map(d);
	void *it = NULL;
	struct fy_node_pair *pair;
	while ((pair = fy_node_mapping_iterate(to, &it))) {
		char *key = yt_strdup(fy_node_pair_key(pair));
		struct fy_node *sub = key ? merge_diff(d, yt_get(from, key), fy_node_pair_value(pair))
					  : NULL;
		if (sub)
			yt_set(patch, key, sub);
		free(key);
	}
	it = NULL;
	while ((pair = fy_node_mapping_iterate(from, &it))) {
		char *key = yt_strdup(fy_node_pair_key(pair));
		if (key && !yt_get(to, key))
			yt_set(patch, key, null_node(d));
		free(key);
	}
	return patch;
}

/* Scale-up disabled and both behaviours recorded. An HPA paused by an earlier run keeps
 * the first record; one whose pause was not recorded gets its behaviour recorded now. */
static int pause_once(struct plan *p, const struct hpa *h)
{
	struct fy_document *cur = parse_behavior(h->behavior, "the behaviour of an HPA");
	if (!cur)
		return -1;
	bool off = up_disabled(fy_document_root(cur));
	fy_document_destroy(cur);
	if (h->recorded && h->paused && off)
		return 0;
	char *path = hpa_path(p, h->name);
	char *left = NULL; /* the behaviour the pause left */
	int rc = 0;
	if (!h->recorded || !off) {
		struct fy_node *root;
		struct fy_document *d = new_patch(&root);
		struct fy_node *meta = yt_child_map(root, "metadata");
		if (h->rv)
			yt_set_str(meta, "resourceVersion", h->rv);
		if (!h->recorded)
			yt_set_str(yt_child_map(meta, "annotations"), CR_HPA_BEHAVIOR_ANNOTATION,
				   h->behavior);
		struct fy_node *behavior = yt_child_map(yt_child_map(root, "spec"), "behavior");
		yt_set_str(yt_child_map(behavior, "scaleUp"), "selectPolicy", "Disabled");
		struct fy_document *now = NULL;
		rc = rv_patch(p, path, d, &now);
		if (!rc && !(left = cr_json_string(yt_path(fy_document_root(now), "/spec/behavior"))))
			rc = -1;
		if (now)
			fy_document_destroy(now);
	} else {
		left = xstrdup(h->behavior);
	}
	/* What the pause's answer says is recorded whatever happened since (a change made
	 * after the pause is someone else's); what was read is recorded only if it still is. */
	if (!rc) {
		struct fy_node *root;
		struct fy_document *d = new_patch(&root);
		struct fy_node *meta = yt_child_map(root, "metadata");
		if (h->recorded && off && h->rv)
			yt_set_str(meta, "resourceVersion", h->rv);
		yt_set_str(yt_child_map(meta, "annotations"), CR_HPA_PAUSED_ANNOTATION, left);
		rc = rv_patch(p, path, d, NULL);
	}
	free(left);
	free(path);
	return rc;
}

/* The behaviour as it is with only the pause taken back: scaleUp.selectPolicy, if still
 * Disabled, as it was before the pause, or removed when there was none, along with the
 * scaleUp and then the behaviour if that leaves them empty (an empty one means the
 * defaults, as an absent one does). A policy someone else set stays. */
static struct fy_document *undo_pause(struct fy_node *cur, struct fy_node *before)
{
	struct fy_document *d = yt_document();
	fy_document_set_root(d, absent(cur) ? null_node(d) : fy_node_copy(d, cur));
	struct fy_node *b = fy_document_root(d);
	if (!up_disabled(b))
		return d;
	struct fy_node *up = yt_get(b, "scaleUp");
	struct fy_node *was = yt_path(before, "/scaleUp/selectPolicy");
	if (!absent(was)) {
		yt_set(up, "selectPolicy", fy_node_copy(d, was));
		return d;
	}
	yt_del(up, "selectPolicy");
	if (fy_node_mapping_item_count(up) == 0)
		yt_del(b, "scaleUp");
	if (fy_node_mapping_item_count(b) == 0)
		fy_document_set_root(d, null_node(d));
	return d;
}

/* The recorded behaviour back (exactly, or only scale-up when someone else changed the
 * behaviour since the pause), chartreuse's annotations removed. */
static int resume_once(struct plan *p, const struct hpa *h)
{
	if (!h->recorded && !h->paused)
		return 0;
	struct fy_document *cur = parse_behavior(h->behavior, "the behaviour of an HPA");
	struct fy_document *before =
		h->recorded ? parse_behavior(h->recorded, "the recorded HPA behaviour") : NULL;
	struct fy_document *paused =
		h->paused ? parse_behavior(h->paused, "the recorded paused HPA behaviour") : NULL;
	struct fy_document *edited = NULL;
	int rc = -1;
	if (cur && (before || !h->recorded) && (paused || !h->paused)) {
		struct fy_node *now = fy_document_root(cur), *target = now;
		struct fy_node *then = paused ? fy_document_root(paused) : NULL;
		if (before && (!paused || (absent(now) ? absent(then) : fy_node_compare(now, then)))) {
			target = fy_document_root(before);
		} else if (before) {
			cr_info("HPA %s: its behaviour changed since it was paused: only its scale-up "
				"policy is set back, the rest is kept", h->name);
			edited = undo_pause(now, fy_document_root(before));
			target = fy_document_root(edited);
		}
		struct fy_node *root;
		struct fy_document *d = new_patch(&root);
		struct fy_node *meta = yt_child_map(root, "metadata");
		if (h->rv)
			yt_set_str(meta, "resourceVersion", h->rv);
		struct fy_node *ann = yt_child_map(meta, "annotations");
		yt_set(ann, CR_HPA_BEHAVIOR_ANNOTATION, null_node(d));
		yt_set(ann, CR_HPA_PAUSED_ANNOTATION, null_node(d));
		struct fy_node *diff = merge_diff(d, now, target);
		if (diff)
			yt_set(yt_child_map(root, "spec"), "behavior", diff);
		char *path = hpa_path(p, h->name);
		rc = rv_patch(p, path, d, NULL);
		free(path);
	}
	if (cur)
		fy_document_destroy(cur);
	if (before)
		fy_document_destroy(before);
	if (paused)
		fy_document_destroy(paused);
	if (edited)
		fy_document_destroy(edited);
	return rc;
}

/* once() on the HPA as listed, then, as long as the server answers 409 Conflict (the HPA
 * changed since it was read), on the HPA read again. An HPA deleted meanwhile needs
 * nothing. */
static int hpa_retry(struct plan *p, const struct hpa *listed,
		     int (*once)(struct plan *, const struct hpa *))
{
	int rc = once(p, listed);
	struct hpa h = { 0 };
	for (int i = 1; rc == CR_K8S_CONFLICT && i < WRITE_TRIES; i++) {
		rc = hpa_get(p, listed->name, &h);
		if (!rc)
			rc = once(p, &h);
	}
	hpa_clear(&h);
	if (rc == CR_K8S_CONFLICT) {
		cr_error("kubernetes: HorizontalPodAutoscaler %s: 409 Conflict %d times in a row: it "
			 "keeps changing under us", listed->name, WRITE_TRIES);
		return rc;
	}
	return rc == CR_K8S_NOT_FOUND ? 0 : rc;
}

static int pause_hpa(struct plan *p, const struct hpa *h)
{
	return hpa_retry(p, h, pause_once);
}

static int resume_hpa(struct plan *p, const struct hpa *h)
{
	return hpa_retry(p, h, resume_once);
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
	it->marked = marked;
	if (it->rc == CR_K8S_NOT_FOUND)
		it->missing = true; /* warned about when stopping; nothing to start */
	if (!it->rc && marked)
		it->rc = scale_to(p, it->t->deployment, it->t->expected, NULL);
	if (!it->rc && !it->missing)
		it->rc = for_each_hpa_of(p, it->hpas, it->t->deployment, resume_hpa);
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
	char *path = cr_k8s_path("/api/v1", p->s->ns, "pods", NULL, NULL);
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
	struct cr_buf path = { 0 };
	char *base = cr_k8s_path("/api/v1", p->s->ns, "pods", NULL, NULL);
	if (base) {
		cr_buf_adds(&path, base);
		cr_k8s_query_add(&path, "allowWatchBookmarks", "true");
		cr_k8s_query_add(&path, "resourceVersion", w->rv ? w->rv : "0");
		free(base);
	}
	int rc = cr_k8s_watch(p->k, path.data, on_pod_event, w, timeout_ms);
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

/* What each started item brought back, into out (NULL: nothing kept). */
static void note_started(const struct item *items, size_t n, const struct hpas *h,
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

static int start_all(struct cr_pods *s, struct plan *p, struct cr_pods_restored *out)
{
	struct hpas h = { 0 };
	int rc = hpas_load(p, &h);
	/* Every Deployment gets its chance even if one fails: a start is what brings the
	 * service back. */
	if (!rc) {
		struct item *items = items_of(p, 0, p->n, &h);
		run_parallel(p, items, p->n, start_item);
		rc = any_failed(items, p->n, false);
		note_started(items, p->n, &h, out);
		items_free(items, p->n);
		if (!rc)
			cr_info("started %zu Deployments of release %s", p->n, s->cfg->release);
	}
	hpas_free(&h);
	return rc;
}

int cr_pods_start(struct cr_pods *s)
{
	struct plan p;
	int rc = plan_load(&p, s);
	if (!rc && p.n)
		rc = start_all(s, &p, NULL);
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
		rc = start_all(s, &p, out);
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
