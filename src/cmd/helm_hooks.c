#include "helm_hooks.h"
#include "jobs.h"
#include "k8s.h"
#include "file.h"
#include "log.h"
#include "manifest.h"
#include "util.h"
#include "ytree.h"

#include <stdlib.h>
#include <string.h>

struct hook_doc {
	struct fy_document *doc;
	char *kind, *name;
	char *phases; /* helm.sh/hook of a Job; NULL for a companion */
	long weight;
};

struct cr_hooks {
	struct hook_doc *docs;
	size_t n;
	char *origin;
};

static struct fy_node *annotation(struct fy_node *obj, const char *key)
{
	return yt_get(yt_path(obj, "/metadata/annotations"), key);
}

static int load_doc(struct cr_hooks *h, const char *data, const struct cr_doc *d)
{
	char *origin = xasprintf("%s (document %d)", h->origin, d->number);
	struct fy_document *doc = yt_parse(data + d->start, d->end - d->start, origin,
					   cr_line_of(data, d->start) - 1);
	free(origin);
	if (!doc)
		return -1;
	struct fy_node *root = fy_document_root(doc);
	if (!root) { /* an empty document */
		fy_document_destroy(doc);
		return 0;
	}
	struct hook_doc *hd = &h->docs[h->n++];
	hd->doc = doc;
	hd->kind = yt_strdup(yt_get(root, "kind"));
	hd->name = yt_strdup(yt_path(root, "/metadata/name"));
	if (cr_streq(hd->kind, "Job")) {
		hd->phases = yt_strdup(annotation(root, "helm.sh/hook"));
		char *w = yt_strdup(annotation(root, "helm.sh/hook-weight"));
		hd->weight = w ? strtol(w, NULL, 10) : 0;
		free(w);
	}
	if (!hd->kind || !hd->name || (cr_streq(hd->kind, "Job") && !hd->phases)) {
		cr_error("%s (document %d): not an object chartreuse writes there (kind, name, "
			 "helm.sh/hook)", h->origin, d->number);
		return -1;
	}
	return 0;
}

struct cr_hooks *cr_hooks_load(const char *path)
{
	struct cr_buf text = { 0 };
	struct cr_manifest m = { 0 };
	struct cr_hooks *h = xcalloc(1, sizeof(*h));
	h->origin = xstrdup(path);
	int rc = cr_read_file(path, &text);
	if (!rc && text.len)
		cr_manifest_split(text.data, text.len, path, &m);
	if (!rc && m.n_docs)
		h->docs = xcalloc(m.n_docs, sizeof(*h->docs));
	for (size_t i = 0; !rc && i < m.n_docs; i++)
		rc = load_doc(h, text.data, &m.docs[i]);
	cr_manifest_free(&m);
	if (text.data) /* the Secret's data is in there */
		explicit_bzero(text.data, text.len);
	cr_buf_free(&text);
	if (rc) {
		cr_hooks_free(h);
		return NULL;
	}
	return h;
}

void cr_hooks_free(struct cr_hooks *h)
{
	if (!h)
		return;
	for (size_t i = 0; i < h->n; i++) {
		if (h->docs[i].doc)
			fy_document_destroy(h->docs[i].doc);
		free(h->docs[i].kind);
		free(h->docs[i].name);
		free(h->docs[i].phases);
	}
	free(h->docs);
	free(h->origin);
	free(h);
}

/* Whether the comma-separated list has phase. */
static bool in_list(const char *list, const char *phase)
{
	size_t n = strlen(phase);
	for (const char *p = list; p && *p;) {
		p += strspn(p, " ");
		size_t len = strcspn(p, ",");
		size_t end = len;
		while (end && p[end - 1] == ' ')
			end--;
		if (end == n && !strncmp(p, phase, n))
			return true;
		p += len + (p[len] == ',');
	}
	return false;
}

static bool is_hook_of(const struct hook_doc *d, const char *phase)
{
	return d->phases && in_list(d->phases, phase);
}

bool cr_hooks_has(const struct cr_hooks *h, const char *phase)
{
	for (size_t i = 0; i < h->n; i++)
		if (is_hook_of(&h->docs[i], phase))
			return true;
	return false;
}

/* --- companions ---------------------------------------------------------------------------- */

/* The path of a companion (name NULL: its collection); NULL for a kind render does not
 * emit (reported) or a name that is no Kubernetes name (reported). */
static char *companion_path(const char *kind, const char *ns, const char *name)
{
	static const struct {
		const char *kind, *prefix, *plural;
	} kinds[] = {
		{ "ServiceAccount", "/api/v1", "serviceaccounts" },
		{ "Secret", "/api/v1", "secrets" },
		{ "ConfigMap", "/api/v1", "configmaps" },
		{ "Role", "/apis/rbac.authorization.k8s.io/v1", "roles" },
		{ "RoleBinding", "/apis/rbac.authorization.k8s.io/v1", "rolebindings" },
	};
	for (size_t i = 0; i < sizeof(kinds) / sizeof(*kinds); i++)
		if (!strcmp(kinds[i].kind, kind))
			return cr_k8s_path(kinds[i].prefix, ns, kinds[i].plural, name, NULL);
	cr_error("helm hooks: cannot apply a %s (%s): not a kind chartreuse writes", kind, name);
	return NULL;
}

/* Helm adopts an existing object into the release it applies only with these marks;
 * without them it refuses to touch what it did not create. */
static void mark_for_helm(struct fy_node *obj, const char *release, const char *ns)
{
	struct fy_node *md = yt_child_map(obj, "metadata");
	struct fy_node *ann = yt_child_map(md, "annotations");
	yt_set_str(ann, "meta.helm.sh/release-name", release);
	yt_set_str(ann, "meta.helm.sh/release-namespace", ns);
	yt_set_str(yt_child_map(md, "labels"), "app.kubernetes.io/managed-by", "Helm");
}

static int apply_one(struct cr_k8s *k, const struct hook_doc *d, const char *release,
		     const char *ns)
{
	struct fy_node *obj = fy_document_root(d->doc);
	char *obj_ns = yt_strdup(yt_path(obj, "/metadata/namespace"));
	char *base = companion_path(d->kind, obj_ns ? obj_ns : ns, NULL);
	char *path = base ? companion_path(d->kind, obj_ns ? obj_ns : ns, d->name) : NULL;
	free(obj_ns);
	if (!path) {
		free(base);
		return -1;
	}
	mark_for_helm(obj, release, ns);
	struct fy_document *live = NULL;
	int rc = cr_k8s_get(k, path, &live);
	if (rc == CR_K8S_NOT_FOUND) {
		rc = cr_k8s_post(k, base, obj, 0, NULL);
	} else if (!rc) {
		/* A replacement: the resourceVersion makes the server refuse a stale one. */
		char *rv = yt_strdup(yt_path(fy_document_root(live), "/metadata/resourceVersion"));
		if (rv)
			yt_set_str(yt_child_map(obj, "metadata"), "resourceVersion", rv);
		free(rv);
		rc = cr_k8s_put(k, path, obj, NULL);
		yt_del(yt_child_map(obj, "metadata"), "resourceVersion");
	}
	if (live)
		fy_document_destroy(live);
	free(path);
	free(base);
	return rc ? -1 : 0;
}

int cr_hooks_apply_companions(const struct cr_hooks *h, struct cr_k8s *k, const char *release,
			      const char *ns)
{
	for (size_t i = 0; i < h->n; i++)
		if (!h->docs[i].phases && apply_one(k, &h->docs[i], release, ns)) {
			cr_error("helm hooks: the %s %s the migration Job needs could not be "
				 "applied (see above); nothing was changed by Helm", h->docs[i].kind,
				 h->docs[i].name);
			return -1;
		}
	return 0;
}

/* --- Jobs ---------------------------------------------------------------------------------- */

static int by_weight_then_name(const void *a, const void *b)
{
	const struct hook_doc *x = *(const struct hook_doc *const *)a;
	const struct hook_doc *y = *(const struct hook_doc *const *)b;
	if (x->weight != y->weight)
		return x->weight < y->weight ? -1 : 1;
	return strcmp(x->name, y->name);
}

int cr_hooks_run(const struct cr_hooks *h, struct cr_k8s *k, const char *phase, long timeout_ms)
{
	const struct hook_doc **jobs = xcalloc(h->n + 1, sizeof(*jobs));
	size_t n = 0;
	for (size_t i = 0; i < h->n; i++)
		if (is_hook_of(&h->docs[i], phase))
			jobs[n++] = &h->docs[i];
	qsort(jobs, n, sizeof(*jobs), by_weight_then_name);
	char *what = xasprintf("%s hook", phase);
	int rc = 0;
	for (size_t i = 0; !rc && i < n; i++)
		rc = cr_job_run_hook(k, fy_document_root(jobs[i]->doc), timeout_ms, what);
	free(what);
	free(jobs);
	return rc;
}

long cr_go_duration_ms(const char *s)
{
	static const struct {
		const char *unit;
		double ms;
	} units[] = { { "ns", 1e-6 }, { "us", 1e-3 }, { "µs", 1e-3 }, { "ms", 1 },
		      { "s", 1e3 },   { "m", 6e4 },   { "h", 3.6e6 } };
	if (!s || !*s)
		return -1;
	if (!strcmp(s, "0"))
		return 0;
	double total = 0;
	while (*s) {
		char *end;
		double v = strtod(s, &end);
		if (end == s || v < 0)
			return -1;
		/* the longest unit that matches: "ms" rather than "m" */
		size_t best = 0, unit = 0;
		for (size_t i = 0; i < sizeof(units) / sizeof(*units); i++) {
			size_t len = strlen(units[i].unit);
			if (!strncmp(end, units[i].unit, len) && len > best) {
				best = len;
				unit = i;
			}
		}
		if (!best)
			return -1;
		total += v * units[unit].ms;
		s = end + best;
	}
	return (long)total;
}
