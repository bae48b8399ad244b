#include "cmd/helm_hooks.h"
#include "jobs.h"
#include "json.h"
#include "unit.h"
#include "util.h"

#include <stdlib.h>
#include <string.h>

TEST(helm_timeouts_are_go_durations)
{
	CHECK(cr_go_duration_ms("300s") == 300000);
	CHECK(cr_go_duration_ms("5m") == 300000);
	CHECK(cr_go_duration_ms("5m0s") == 300000);
	CHECK(cr_go_duration_ms("1h2m3.5s") == 3723500);
	CHECK(cr_go_duration_ms("250ms") == 250);
	CHECK(cr_go_duration_ms("0") == 0);
	CHECK(cr_go_duration_ms("") == -1);
	CHECK(cr_go_duration_ms("5") == -1); /* Go wants a unit */
	CHECK(cr_go_duration_ms("5x") == -1);
	CHECK(cr_go_duration_ms("-1s") == -1);
	CHECK(cr_go_duration_ms(NULL) == -1);
}

static const char *outcome_of(const char *json)
{
	struct fy_document *d = cr_json_parse(json, strlen(json), "test");
	const char *o = cr_job_outcome(fy_document_root(d));
	fy_document_destroy(d);
	return o;
}

TEST(a_job_outcome_is_its_final_true_condition)
{
	CHECK_STR(outcome_of("{\"status\": {\"conditions\": [{\"type\": \"Complete\", "
			     "\"status\": \"True\"}]}}"), "Complete");
	CHECK_STR(outcome_of("{\"status\": {\"conditions\": [{\"type\": \"FailureTarget\", "
			     "\"status\": \"True\"}, {\"type\": \"Failed\", \"status\": \"True\"}]}}"),
		  "Failed");
	CHECK(!outcome_of("{\"status\": {\"active\": 1, \"conditions\": [{\"type\": \"Failed\", "
			  "\"status\": \"True\"}]}}"));
	CHECK(!outcome_of("{\"status\": {\"conditions\": [{\"type\": \"Complete\", "
			  "\"status\": \"False\"}]}}"));
}

static struct cr_hooks *load_text(const char *dir, const char *text)
{
	char *path = xasprintf("%s/hooks.yaml", dir);
	FILE *f = fopen(path, "w");
	fputs(text, f);
	fclose(f);
	struct cr_hooks *h = cr_hooks_load(path);
	free(path);
	return h;
}

TEST(hooks_file_phases_are_matched_as_list_items)
{
	char *dir = unit_tmpdir("hooks");
	struct cr_hooks *h = load_text(dir,
		"---\n# Source: chartreuse/templates/configmap.yaml\n"
		"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a-b}\n"
		"---\napiVersion: batch/v1\nkind: Job\nmetadata:\n  name: a-b-upgrade\n"
		"  annotations: {helm.sh/hook: 'post-install, post-upgrade', "
		"helm.sh/hook-weight: '2'}\n");
	CHECK(h != NULL);
	CHECK(h && cr_hooks_has(h, "post-install"));
	CHECK(h && cr_hooks_has(h, "post-upgrade"));
	CHECK(h && !cr_hooks_has(h, "pre-upgrade"));
	CHECK(h && !cr_hooks_has(h, "post"));
	cr_hooks_free(h);
	/* An empty file (no migration rendered) has no hooks. */
	h = load_text(dir, "");
	CHECK(h && !cr_hooks_has(h, "post-install"));
	cr_hooks_free(h);
	unit_drop_dir(dir);
}

TEST(hooks_file_job_without_hook_annotation_is_refused)
{
	char *dir = unit_tmpdir("hooks");
	struct cr_hooks *h = load_text(dir, "apiVersion: batch/v1\nkind: Job\n"
					    "metadata: {name: x}\n");
	CHECK(h == NULL);
	cr_hooks_free(h);
	unit_drop_dir(dir);
}
