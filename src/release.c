#include "release.h"
#include "k8s.h"
#include "names.h"
#include "util.h"
#include "ytree.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

/* GET path, errors unreported: the HTTP status, or -1 when no answer came (reported). */
static long get_quiet(struct cr_k8s *k, const char *path, struct fy_document **out)
{
	return cr_k8s_request(k, "GET", path, NULL, NULL, CR_K8S_IDEMPOTENT, out);
}

static int report_failure(const char *path, long st, struct fy_document *doc)
{
	if (st >= 0)
		cr_k8s_report("GET", path, st, doc);
	return -1;
}

static int namespace_state(struct cr_k8s *k, const char *ns)
{
	char *path = cr_k8s_path("/api/v1", NULL, "namespaces", ns, NULL);
	struct fy_document *doc = NULL;
	long st = path ? get_quiet(k, path, &doc) : -1;
	int rc = st == 404 ? CR_RELEASE_NO_NAMESPACE
		 : st / 100 == 2 || st == 403 ? CR_RELEASE_FOUND /* 403: go on and look inside */
					       : report_failure(path, st, doc);
	if (doc)
		fy_document_destroy(doc);
	free(path);
	return rc;
}

static int records_state(struct cr_k8s *k, const char *ns, const char *release)
{
	/* Helm's storage driver: Secrets by default (HELM_DRIVER unset or "secret"). */
	const char *driver = getenv("HELM_DRIVER");
	bool configmaps = driver && (!strcmp(driver, "configmap") || !strcmp(driver, "configmaps"));
	char *path = cr_k8s_path("/api/v1", ns, configmaps ? "configmaps" : "secrets", NULL, NULL);
	if (!path)
		return -1;
	struct cr_buf url = { 0 };
	cr_buf_adds(&url, path);
	char *selector = xasprintf("owner=helm,name=%s", release);
	cr_k8s_query_add(&url, "labelSelector", selector);
	cr_k8s_query_add(&url, "limit", "1");
	struct fy_document *doc = NULL;
	long st = get_quiet(k, url.data, &doc);
	int rc;
	if (st / 100 == 2)
		rc = fy_node_sequence_item_count(yt_get(fy_document_root(doc), "items")) > 0
			     ? CR_RELEASE_FOUND
			     : CR_RELEASE_ABSENT;
	else if (st == 403)
		rc = CR_RELEASE_UNKNOWN;
	else
		rc = report_failure(path, st, doc);
	if (doc)
		fy_document_destroy(doc);
	free(selector);
	cr_buf_free(&url);
	free(path);
	return rc;
}

int cr_release_find(struct cr_k8s *k, const char *ns, const char *release)
{
	/* Helm takes no release name that is not a label value: no record can carry it. */
	if (!cr_label_value_ok(release) || !*release)
		return CR_RELEASE_ABSENT;
	int rc = namespace_state(k, ns);
	return rc ? rc : records_state(k, ns, release);
}

char *cr_release_absent_text(int found, const char *ns, const char *release)
{
	if (found == CR_RELEASE_NO_NAMESPACE)
		return xasprintf("no namespace named %s (release %s): check -n/--namespace and "
				 "--kube-context", ns, release);
	return xasprintf("no release named %s in namespace %s (no Helm release record, no "
			 "ExpectedDeploymentScale): check the name with helm list -n %s",
			 release, ns, ns);
}
