#include "pods.h"
#include "config.h"
#include "json.h"
#include "k8s.h"
#include "log.h"
#include "util.h"
#include "ytree.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define PROGRESS_EVERY_S 5.0

struct plan {
	struct cr_k8s *k;
	const char *ns;
	const char *release;
	struct cr_pods_target *t;
	size_t n;
	bool stopped_any; /* something was changed: a restore has something to bring back */
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
	void *it = NULL;
	struct fy_node *item;
	while ((item = fy_node_sequence_iterate(yt_get(fy_document_root(d), "items"), &it))) {
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
	if (p->k)
		cr_k8s_free(p->k);
}

static int plan_load(struct plan *p, const struct cr_config *cfg)
{
	memset(p, 0, sizeof(*p));
	p->release = cfg->release;
	p->ns = cfg->namespace;
	struct cr_k8s_options opts = { .namespace = cfg->namespace };
	p->k = cr_k8s_new(&opts);
	if (!p->k)
		return -1;
	p->ns = cr_k8s_namespace(p->k);
	if (!cr_nonempty(p->release)) {
		cr_error("stopping pods needs the release name (release, CHARTREUSE_RELEASE_NAME)");
		return -1;
	}
	return cr_pods_targets(p->k, p->ns, p->release, &p->t, &p->n);
}

/* --- one Deployment ------------------------------------------------------------------------ */

static char *deployment_path(const struct plan *p, const char *name, const char *sub)
{
	return xasprintf("/apis/apps/v1/namespaces/%s/deployments/%s%s%s", p->ns, name,
			 sub ? "/" : "", sub ? sub : "");
}

static int merge_patch(struct plan *p, const char *path, struct fy_document *patch)
{
	int rc = cr_k8s_patch(p->k, path, CR_K8S_PATCH_MERGE, fy_document_root(patch),
			      CR_K8S_IDEMPOTENT, NULL);
	fy_document_destroy(patch);
	return rc;
}

static struct fy_document *new_patch(struct fy_node **root)
{
	struct fy_document *d = fy_document_create(NULL);
	*root = yt_map(d);
	fy_document_set_root(d, *root);
	return d;
}

static int scale_to(struct plan *p, const char *name, long replicas)
{
	struct fy_node *root;
	struct fy_document *d = new_patch(&root);
	yt_set(yt_child_map(root, "spec"), "replicas", yt_int(d, replicas));
	char *path = deployment_path(p, name, "scale");
	int rc = merge_patch(p, path, d);
	free(path);
	return rc;
}

/* value NULL removes the annotation. */
static int annotate(struct plan *p, const char *path, const char *key, const char *value)
{
	struct fy_node *root;
	struct fy_document *d = new_patch(&root);
	struct fy_node *ann = yt_child_map(yt_child_map(root, "metadata"), "annotations");
	yt_set(ann, key, value ? yt_str(d, value) : fy_node_create_scalar(d, "null", 4));
	return merge_patch(p, path, d);
}

/* --- HPAs ---------------------------------------------------------------------------------- */

static int for_each_hpa(struct plan *p, const char *deployment,
			int (*fn)(struct plan *, struct fy_node *hpa))
{
	char *path = xasprintf("/apis/autoscaling/v2/namespaces/%s/horizontalpodautoscalers",
			       p->ns);
	struct fy_document *d = NULL;
	int rc = cr_k8s_list(p->k, path, NULL, &d);
	free(path);
	void *it = NULL;
	struct fy_node *hpa;
	while (!rc && (hpa = fy_node_sequence_iterate(yt_get(fy_document_root(d), "items"), &it))) {
		struct fy_node *ref = yt_path(hpa, "/spec/scaleTargetRef");
		char *kind = yt_strdup(yt_get(ref, "kind")), *name = yt_strdup(yt_get(ref, "name"));
		if (cr_streq(kind, "Deployment") && cr_streq(name, deployment))
			rc = fn(p, hpa);
		free(kind);
		free(name);
	}
	if (d)
		fy_document_destroy(d);
	return rc;
}

static char *hpa_path(const struct plan *p, struct fy_node *hpa)
{
	char *name = yt_strdup(yt_path(hpa, "/metadata/name"));
	char *path = xasprintf("/apis/autoscaling/v2/namespaces/%s/horizontalpodautoscalers/%s",
			       p->ns, name ? name : "");
	free(name);
	return path;
}

/* Disabled scale-up, the previous behaviour (JSON, "null" when none) kept in an
 * annotation; a second pause keeps the first record. */
static int pause_hpa(struct plan *p, struct fy_node *hpa)
{
	if (yt_get(yt_path(hpa, "/metadata/annotations"), CR_HPA_BEHAVIOR_ANNOTATION))
		return 0;
	char *before = cr_json_string(yt_path(hpa, "/spec/behavior"));
	struct fy_node *root;
	struct fy_document *d = new_patch(&root);
	yt_set_str(yt_child_map(yt_child_map(root, "metadata"), "annotations"),
		   CR_HPA_BEHAVIOR_ANNOTATION, before ? before : "null");
	struct fy_node *up = yt_child_map(yt_child_map(yt_child_map(root, "spec"), "behavior"),
					  "scaleUp");
	yt_set_str(up, "selectPolicy", "Disabled");
	char *path = hpa_path(p, hpa);
	int rc = merge_patch(p, path, d);
	free(path);
	free(before);
	return rc;
}

/* The behaviour as it was, exactly: a JSON patch replaces the whole field (a merge patch
 * would keep the Disabled policy merged into it). */
static int resume_hpa(struct plan *p, struct fy_node *hpa)
{
	struct fy_node *ann = yt_get(yt_path(hpa, "/metadata/annotations"),
				     CR_HPA_BEHAVIOR_ANNOTATION);
	if (!ann)
		return 0;
	size_t len;
	const char *text = yt_scalar(ann, &len);
	struct fy_document *before = cr_json_parse(text, len, "the recorded HPA behaviour");
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
	char *path = hpa_path(p, hpa);
	int rc = cr_k8s_patch(p->k, path, CR_K8S_PATCH_JSON, ops, CR_K8S_IDEMPOTENT, NULL);
	free(path);
	fy_document_destroy(d);
	fy_document_destroy(before);
	return rc;
}

/* --- waiting for Pods ------------------------------------------------------------------------ */

/* "k=v,k2=v2" from spec.selector.matchLabels; NULL (reported) when there is none. */
static char *pod_selector(struct plan *p, const char *name)
{
	char *path = deployment_path(p, name, NULL);
	struct fy_document *d = NULL;
	int rc = cr_k8s_get(p->k, path, &d);
	free(path);
	if (rc == CR_K8S_NOT_FOUND) {
		cr_warn("Deployment %s (named by an ExpectedDeploymentScale) does not exist", name);
		return xstrdup("");
	}
	if (rc)
		return NULL;
	struct cr_buf sel = { 0 };
	struct fy_node *labels = yt_path(fy_document_root(d), "/spec/selector/matchLabels");
	void *it = NULL;
	struct fy_node_pair *pair;
	while ((pair = fy_node_mapping_iterate(labels, &it))) {
		char *k = yt_strdup(fy_node_pair_key(pair)), *v = yt_strdup(fy_node_pair_value(pair));
		cr_buf_printf(&sel, "%s%s=%s", sel.len ? "," : "", k ? k : "", v ? v : "");
		free(k);
		free(v);
	}
	fy_document_destroy(d);
	return sel.data ? cr_buf_detach(&sel, NULL) : xstrdup("");
}

/* Pods matching selector that still count (not Failed); -1 on error. */
static long live_pods(struct plan *p, const char *selector, char **resource_version)
{
	char *path = xasprintf("/api/v1/namespaces/%s/pods", p->ns);
	struct fy_document *d = NULL;
	long n = cr_k8s_list(p->k, path, selector, &d) ? -1 : 0;
	free(path);
	if (n < 0)
		return -1;
	void *it = NULL;
	struct fy_node *pod;
	while ((pod = fy_node_sequence_iterate(yt_get(fy_document_root(d), "items"), &it))) {
		char *phase = yt_strdup(yt_path(pod, "/status/phase"));
		n += !cr_streq(phase, "Failed");
		free(phase);
	}
	free(*resource_version);
	*resource_version = yt_strdup(yt_path(fy_document_root(d), "/metadata/resourceVersion"));
	fy_document_destroy(d);
	return n;
}

static int stop_on_event(const char *type, struct fy_node *object, void *user)
{
	(void)type;
	(void)object;
	(void)user;
	return 1; /* any change: count again */
}

static long group_pods(struct plan *p, char **selectors, size_t n, char **rv)
{
	long total = 0;
	for (size_t i = 0; i < n && total >= 0; i++) {
		if (!*selectors[i])
			continue;
		long c = live_pods(p, selectors[i], rv);
		total = c < 0 ? -1 : total + c;
	}
	return total;
}

/* Until no Pod of the group is left: count, then sleep on a watch of the namespace's
 * Pods until something changes (no polling), with a deadline and progress lines. */
static int wait_group_gone(struct plan *p, char **selectors, size_t n, long priority,
			   long timeout_s)
{
	double start = now_s(), noted = start;
	char *rv = NULL;
	int rc = -1;
	for (;;) {
		long left = group_pods(p, selectors, n, &rv);
		if (left <= 0) {
			rc = left == 0 ? 0 : -1;
			break;
		}
		double t = now_s();
		if (t - start >= (double)timeout_s) {
			cr_error("priority group %ld: %ld pods still running after %ld s", priority,
				 left, timeout_s);
			break;
		}
		if (t - noted >= PROGRESS_EVERY_S) {
			cr_info("priority group %ld: %ld pods left (%.0f s)", priority, left, t - start);
			noted = t;
		}
		char *path = xasprintf("/api/v1/namespaces/%s/pods?resourceVersion=%s", p->ns,
				       rv ? rv : "0");
		cr_k8s_watch(p->k, path, stop_on_event, NULL, 2000);
		free(path);
	}
	free(rv);
	return rc;
}

/* --- stop and start ------------------------------------------------------------------------- */

static int stop_one(struct plan *p, const struct cr_pods_target *t)
{
	char *path = deployment_path(p, t->deployment, NULL);
	int rc = for_each_hpa(p, t->deployment, pause_hpa);
	if (!rc)
		rc = annotate(p, path, CR_STOPPED_ANNOTATION, "true");
	if (!rc)
		rc = scale_to(p, t->deployment, 0);
	free(path);
	return rc;
}

static int stop_group(struct plan *p, size_t from, size_t to, long timeout_s)
{
	char **selectors = xcalloc(to - from, sizeof(*selectors));
	int rc = 0;
	cr_info("stopping priority group %ld (%zu Deployments)", p->t[from].priority, to - from);
	for (size_t i = from; !rc && i < to; i++) {
		selectors[i - from] = pod_selector(p, p->t[i].deployment);
		if (!selectors[i - from])
			rc = -1;
		else if (*selectors[i - from]) { /* "": no such Deployment, nothing to stop */
			p->stopped_any = true;
			rc = stop_one(p, &p->t[i]);
		}
	}
	if (!rc)
		rc = wait_group_gone(p, selectors, to - from, p->t[from].priority, timeout_s);
	for (size_t i = 0; i < to - from; i++)
		free(selectors[i]);
	free(selectors);
	return rc;
}

int cr_pods_stop(const struct cr_config *cfg)
{
	struct plan p;
	int rc = plan_load(&p, cfg);
	if (!rc && !p.n)
		cr_info("release %s has no ExpectedDeploymentScale: no pods to stop", p.release);
	for (size_t from = 0; !rc && from < p.n;) {
		size_t to = from;
		while (to < p.n && p.t[to].priority == p.t[from].priority)
			to++;
		rc = stop_group(&p, from, to, cfg->stop_pods_timeout);
		from = to;
	}
	if (rc && p.stopped_any)
		cr_error("the pods were not all stopped; bring back what was: chartreuse restore "
			 "--release %s --namespace %s", p.release, p.ns);
	plan_free(&p);
	return rc;
}

static int start_one(struct plan *p, const struct cr_pods_target *t)
{
	char *path = deployment_path(p, t->deployment, NULL);
	struct fy_document *d = NULL;
	int rc = cr_k8s_get(p->k, path, &d);
	if (d)
		fy_document_destroy(d);
	if (rc == CR_K8S_NOT_FOUND) {
		free(path);
		return 0; /* warned about when stopping; nothing to start */
	}
	if (!rc)
		rc = scale_to(p, t->deployment, t->expected);
	if (!rc)
		rc = for_each_hpa(p, t->deployment, resume_hpa);
	if (!rc)
		rc = annotate(p, path, CR_STOPPED_ANNOTATION, NULL);
	free(path);
	return rc;
}

int cr_pods_start(const struct cr_config *cfg)
{
	struct plan p;
	int rc = plan_load(&p, cfg);
	int failed = rc;
	/* Every Deployment gets its chance even if one fails: a start is what brings the
	 * service back. */
	for (size_t i = 0; !rc && i < p.n; i++)
		failed |= start_one(&p, &p.t[i]);
	if (!rc && p.n)
		cr_info("started %zu Deployments of release %s", p.n, p.release);
	plan_free(&p);
	return failed ? -1 : 0;
}
