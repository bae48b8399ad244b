/* k8s_write: the preconditioned writes of the Kubernetes client (k8s.h). */
#include "k8s.h"
#include "log.h"
#include "util.h"
#include "ytree.h"

#include <stdlib.h>
#include <string.h>

int cr_k8s_patch_rv(struct cr_k8s *k, const char *path, struct fy_document *patch,
		    struct fy_document **out)
{
	int rc = cr_k8s_patch(k, path, CR_K8S_PATCH_MERGE, fy_document_root(patch),
			      CR_K8S_IDEMPOTENT | CR_K8S_CONFLICT_OK | CR_K8S_ABSENT_OK, out);
	fy_document_destroy(patch);
	if (!rc && out && !*out) {
		cr_error("kubernetes: PATCH %s: %ld with no object in the answer", path,
			 cr_k8s_last_status(k));
		rc = CR_K8S_ERROR;
	}
	return rc;
}

int cr_k8s_patch_wanted(struct cr_k8s *k, const char *path, cr_k8s_want_fn fill, void *user,
			struct fy_document **out)
{
	for (int i = 0; i < CR_K8S_WRITE_TRIES; i++) {
		struct fy_document *cur = NULL;
		int rc = cr_k8s_get(k, path, &cur);
		if (rc)
			return rc;
		struct fy_node *obj = fy_document_root(cur), *root;
		struct fy_document *d = yt_map_document(&root);
		if (!fill(obj, root, user)) {
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
		rc = cr_k8s_patch_rv(k, path, d, out);
		if (rc != CR_K8S_CONFLICT)
			return rc;
	}
	cr_error("kubernetes: PATCH %s: 409 Conflict %d times in a row: the object keeps "
		 "changing under us", path, CR_K8S_WRITE_TRIES);
	return CR_K8S_CONFLICT;
}

int cr_k8s_patch_tested(struct cr_k8s *k, const char *path, struct fy_document *ops)
{
	int rc = cr_k8s_patch(k, path, CR_K8S_PATCH_JSON, fy_document_root(ops),
			      CR_K8S_IDEMPOTENT | CR_K8S_ABSENT_OK, NULL);
	fy_document_destroy(ops);
	return rc;
}

int cr_k8s_may(struct cr_k8s *k, const char *ns, const struct cr_k8s_access *a, char **why)
{
	*why = NULL;
	struct fy_node *root;
	struct fy_document *d = yt_map_document(&root);
	yt_set_str(root, "apiVersion", "authorization.k8s.io/v1");
	yt_set_str(root, "kind", "SelfSubjectAccessReview");
	struct fy_node *attrs = yt_child_map(yt_child_map(root, "spec"), "resourceAttributes");
	yt_set_str(attrs, "namespace", ns);
	yt_set_str(attrs, "group", a->group);
	const char *slash = strchr(a->resource, '/');
	if (slash) {
		char *resource = xstrndup(a->resource, (size_t)(slash - a->resource));
		yt_set_str(attrs, "resource", resource);
		yt_set_str(attrs, "subresource", slash + 1);
		free(resource);
	} else {
		yt_set_str(attrs, "resource", a->resource);
	}
	yt_set_str(attrs, "verb", a->verb);
	struct fy_document *answer = NULL;
	cr_log_mute(true); /* the caller says what could not be asked */
	int rc = cr_k8s_post(k, "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews", root, 0,
			     &answer);
	cr_log_mute(false);
	fy_document_destroy(d);
	if (rc) {
		if (answer)
			fy_document_destroy(answer);
		return -1;
	}
	struct fy_node *status = yt_get(fy_document_root(answer), "status");
	int allowed = yt_scalar_is(yt_get(status, "allowed"), "true");
	if (!allowed)
		*why = yt_strdup(yt_get(status, "reason"));
	fy_document_destroy(answer);
	return allowed;
}
