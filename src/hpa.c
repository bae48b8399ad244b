/* hpa: the HorizontalPodAutoscalers of the Deployments being stopped, paused and resumed
 * (hpa.h; docs/design.md, "Pausing an HPA"). */
#include "hpa.h"
#include "json.h"
#include "k8s.h"
#include "log.h"
#include "pods.h"
#include "util.h"
#include "ytree.h"

#include <stdlib.h>
#include <string.h>

static void hpa_clear(struct cr_hpa *h)
{
	free(h->name);
	free(h->target);
	free(h->rv);
	free(h->behavior);
	free(h->recorded);
	free(h->paused);
	memset(h, 0, sizeof(*h));
}

void cr_hpas_free(struct cr_hpas *h)
{
	for (size_t i = 0; i < h->n; i++)
		hpa_clear(&h->v[i]);
	free(h->v);
	memset(h, 0, sizeof(*h));
}

/* -1 after reporting (a behaviour with no JSON form). */
static int hpa_read(struct fy_node *obj, struct cr_hpa *h)
{
	struct fy_node *ann = yt_path(obj, "/metadata/annotations");
	char *behavior = cr_json_string(yt_path(obj, "/spec/behavior"));
	if (!behavior)
		return -1;
	*h = (struct cr_hpa){
		yt_strdup(yt_path(obj, "/metadata/name")),
		yt_strdup(yt_path(obj, "/spec/scaleTargetRef/name")),
		yt_strdup(yt_path(obj, "/metadata/resourceVersion")),
		behavior,
		yt_strdup(yt_get(ann, CR_HPA_BEHAVIOR_ANNOTATION)),
		yt_strdup(yt_get(ann, CR_HPA_PAUSED_ANNOTATION)),
	};
	return 0;
}

int cr_hpas_load(struct cr_k8s *k, const char *ns, struct cr_hpas *out)
{
	char *path = cr_k8s_path("/apis/autoscaling/v2", ns, "horizontalpodautoscalers",
				 NULL, NULL);
	struct fy_document *d = NULL;
	int rc = cr_k8s_list(k, path, NULL, 0, &d);
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

static char *hpa_path(const char *ns, const char *name)
{
	return cr_k8s_path("/apis/autoscaling/v2", ns, "horizontalpodautoscalers", name,
			   NULL);
}

/* h (cleared first) as the HPA now is: 0, CR_K8S_NOT_FOUND, or -1 after reporting. Read
 * by listing it by name: the Role grants list on HPAs, not get (SPEC's verbs). */
static int hpa_get(struct cr_k8s *k, const char *ns, const char *name, struct cr_hpa *h)
{
	hpa_clear(h);
	struct cr_buf path = { 0 };
	char *base = hpa_path(ns, NULL);
	if (base) {
		char *field = xasprintf("metadata.name=%s", name);
		cr_buf_adds(&path, base);
		cr_k8s_query_add(&path, "fieldSelector", field);
		free(field);
		free(base);
	}
	struct fy_document *d = NULL;
	int rc = cr_k8s_list(k, path.data, NULL, 0, &d);
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

/* The merge patch (RFC 7386), built in d, that turns from into to; NULL when they are the
 * same. Lists are replaced whole, as a merge patch does. */
static struct fy_node *merge_diff(struct fy_document *d, struct fy_node *from, struct fy_node *to)
{
	if (absent(to))
		return absent(from) ? NULL : yt_null(d);
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
			yt_set(patch, key, yt_null(d));
		free(key);
	}
	return patch;
}

/* Scale-up disabled and both behaviours recorded. An HPA paused by an earlier run keeps
 * the first record; one whose pause was not recorded gets its behaviour recorded now. */
static int pause_once(struct cr_k8s *k, const char *ns, const struct cr_hpa *h)
{
	struct fy_document *cur = parse_behavior(h->behavior, "the behaviour of an HPA");
	if (!cur)
		return -1;
	bool off = up_disabled(fy_document_root(cur));
	fy_document_destroy(cur);
	if (h->recorded && h->paused && off)
		return 0;
	char *path = hpa_path(ns, h->name);
	char *left = NULL; /* the behaviour the pause left */
	int rc = 0;
	if (!h->recorded || !off) {
		struct fy_node *root;
		struct fy_document *d = yt_map_document(&root);
		struct fy_node *meta = yt_child_map(root, "metadata");
		if (h->rv)
			yt_set_str(meta, "resourceVersion", h->rv);
		if (!h->recorded)
			yt_set_str(yt_child_map(meta, "annotations"), CR_HPA_BEHAVIOR_ANNOTATION,
				   h->behavior);
		struct fy_node *behavior = yt_child_map(yt_child_map(root, "spec"), "behavior");
		yt_set_str(yt_child_map(behavior, "scaleUp"), "selectPolicy", "Disabled");
		struct fy_document *now = NULL;
		rc = cr_k8s_patch_rv(k, path, d, &now);
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
		struct fy_document *d = yt_map_document(&root);
		struct fy_node *meta = yt_child_map(root, "metadata");
		if (h->recorded && off && h->rv)
			yt_set_str(meta, "resourceVersion", h->rv);
		yt_set_str(yt_child_map(meta, "annotations"), CR_HPA_PAUSED_ANNOTATION, left);
		rc = cr_k8s_patch_rv(k, path, d, NULL);
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
	fy_document_set_root(d, absent(cur) ? yt_null(d) : fy_node_copy(d, cur));
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
		fy_document_set_root(d, yt_null(d));
	return d;
}

/* The recorded behaviour back (exactly, or only scale-up when someone else changed the
 * behaviour since the pause), chartreuse's annotations removed. */
static int resume_once(struct cr_k8s *k, const char *ns, const struct cr_hpa *h)
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
		struct fy_document *d = yt_map_document(&root);
		struct fy_node *meta = yt_child_map(root, "metadata");
		if (h->rv)
			yt_set_str(meta, "resourceVersion", h->rv);
		struct fy_node *ann = yt_child_map(meta, "annotations");
		yt_set(ann, CR_HPA_BEHAVIOR_ANNOTATION, yt_null(d));
		yt_set(ann, CR_HPA_PAUSED_ANNOTATION, yt_null(d));
		struct fy_node *diff = merge_diff(d, now, target);
		if (diff)
			yt_set(yt_child_map(root, "spec"), "behavior", diff);
		char *path = hpa_path(ns, h->name);
		rc = cr_k8s_patch_rv(k, path, d, NULL);
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
static int hpa_retry(struct cr_k8s *k, const char *ns, const struct cr_hpa *listed,
		     int (*once)(struct cr_k8s *, const char *, const struct cr_hpa *))
{
	int rc = once(k, ns, listed);
	struct cr_hpa h = { 0 };
	for (int i = 1; rc == CR_K8S_CONFLICT && i < CR_K8S_WRITE_TRIES; i++) {
		rc = hpa_get(k, ns, listed->name, &h);
		if (!rc)
			rc = once(k, ns, &h);
	}
	hpa_clear(&h);
	if (rc == CR_K8S_CONFLICT) {
		cr_error("kubernetes: HorizontalPodAutoscaler %s: 409 Conflict %d times in a row: it "
			 "keeps changing under us", listed->name, CR_K8S_WRITE_TRIES);
		return rc;
	}
	return rc == CR_K8S_NOT_FOUND ? 0 : rc;
}

static int each_of(struct cr_k8s *k, const char *ns, const struct cr_hpas *h,
		   const char *deployment,
		   int (*once)(struct cr_k8s *, const char *, const struct cr_hpa *))
{
	int rc = 0;
	for (size_t i = 0; !rc && i < h->n; i++)
		if (cr_streq(h->v[i].target, deployment))
			rc = hpa_retry(k, ns, &h->v[i], once);
	return rc;
}

int cr_hpas_pause(struct cr_k8s *k, const char *ns, const struct cr_hpas *h,
		  const char *deployment)
{
	return each_of(k, ns, h, deployment, pause_once);
}

int cr_hpas_resume(struct cr_k8s *k, const char *ns, const struct cr_hpas *h,
		   const char *deployment)
{
	return each_of(k, ns, h, deployment, resume_once);
}
