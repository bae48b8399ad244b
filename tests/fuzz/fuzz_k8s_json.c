/* Answers of the Kubernetes API (and of exec credential plugins): JSON parsed by
 * src/json.c, then read by what reads such answers — an error's Status (the one-line
 * message), a Job's status (status and the eslembic follow-up Job), an
 * ExpectedDeploymentScaleList (the Deployments to stop), the label selectors of Scale
 * objects matched against labels, and an ExecCredential.
 *
 * Oracle beyond the sanitizers: what cr_json_emit writes from a parsed answer must parse
 * again and be written the same way a second time. */
#include "eslembic.h"
#include "fuzz.h"
#include "json.h"
#include "k8s.h"
#include "kubeconfig.h"
#include "labels.h"
#include "pods.h"
#include "status.h"
#include "ytree.h"

static void round_trip(struct fy_node *root)
{
	char *once = cr_json_string(root);
	if (!once)
		return; /* not representable (an alias, a key that is not a string, not UTF-8) */
	struct fy_document *again = cr_json_parse(once, strlen(once), "re-parse");
	if (!again) {
		fprintf(stderr, "cr_json_emit wrote JSON that does not parse: %s\n", once);
		abort();
	}
	char *twice = cr_json_string(fy_document_root(again));
	if (!twice || strcmp(once, twice) != 0) {
		fprintf(stderr, "JSON written twice differs:\n%s\n%s\n", once, twice ? twice : "(null)");
		abort();
	}
	free(twice);
	fy_document_destroy(again);
	free(once);
}

static void selectors(struct fy_node *list)
{
	void *it = NULL;
	struct fy_node *item;
	while ((item = fy_node_sequence_iterate(yt_get(list, "items"), &it))) {
		char *text = yt_strdup(yt_path(item, "/status/selector"));
		struct cr_selector *s = text ? cr_selector_parse(text) : NULL;
		void *jt = NULL;
		struct fy_node *other;
		while (s && (other = fy_node_sequence_iterate(yt_get(list, "items"), &jt)))
			cr_selector_matches(s, yt_path(other, "/metadata/labels"));
		cr_selector_free(s);
		free(text);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	fz_quiet();
	struct fy_document *d = cr_json_parse((const char *)data, size, "fuzz answer");
	if (d) {
		struct fy_node *root = fy_document_root(d);
		round_trip(root);
		free(cr_k8s_error_line("GET", "/apis/batch/v1/namespaces/x/jobs", 422, d));
		char *detail = NULL;
		cr_status_job_outcome(root, &detail);
		free(detail);
		const char *why = NULL;
		cr_eslembic_job_finished(root, &why);
		struct cr_pods_target *t = NULL;
		size_t n = 0;
		cr_pods_targets_add(root, &t, &n);
		cr_pods_targets_add(root, &t, &n); /* the second label's list: nothing new */
		cr_pods_targets_free(t, n);
		selectors(root);
		fy_document_destroy(d);
	}
	struct cr_exec_cred cred;
	if (cr_exec_parse((const char *)data, size, "client.authentication.k8s.io/v1",
			  "fuzz plugin", &cred) == 0)
		cr_exec_cred_free(&cred);
	cr_secrets_clear();
	return 0;
}
