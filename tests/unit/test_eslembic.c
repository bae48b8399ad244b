#include "eslembic.h"
#include "json.h"
#include "unit.h"

#include <stdbool.h>
#include <string.h>

TEST(eslembic_current_is_at_head_only_with_a_head_marker)
{
	CHECK(cr_eslembic_at_head("a1b2 (head)\n"));
	CHECK(cr_eslembic_at_head("INFO  [eslembic] Context\nc3 (head)\n"));
	CHECK(!cr_eslembic_at_head("a1b2\n"));
	CHECK(!cr_eslembic_at_head("")); /* nothing applied yet */
	CHECK(!cr_eslembic_at_head(NULL));
	CHECK(!cr_eslembic_at_head("a1 (effective head)\n"));
}

static bool finished(const char *json, const char **why)
{
	struct fy_document *d = cr_json_parse(json, strlen(json), "test");
	*why = NULL;
	bool f = cr_eslembic_job_finished(fy_document_root(d), why);
	fy_document_destroy(d);
	return f;
}

TEST(eslembic_follow_up_job_counts_as_running_until_a_final_condition)
{
	const char *why;
	CHECK(finished("{\"status\": {\"succeeded\": 1, \"conditions\": [{\"type\": "
		       "\"SuccessCriteriaMet\", \"status\": \"True\"}, {\"type\": \"Complete\", "
		       "\"status\": \"True\"}]}}", &why));
	CHECK(finished("{\"status\": {\"failed\": 1, \"conditions\": [{\"type\": \"Failed\", "
		       "\"status\": \"True\"}]}}", &why));
	CHECK(!finished("{\"status\": {\"active\": 1}}", &why));
	CHECK_STR(why, "it has active Pods");
	CHECK(!finished("{\"metadata\": {\"name\": \"x\"}}", &why));
	CHECK_STR(why, "it has no Complete or Failed condition yet");
	/* A final condition that is not True yet, or Pods still active: running. */
	CHECK(!finished("{\"status\": {\"conditions\": [{\"type\": \"Failed\", \"status\": "
			"\"False\"}]}}", &why));
	CHECK(!finished("{\"status\": {\"active\": 2, \"conditions\": [{\"type\": \"Complete\", "
			"\"status\": \"True\"}]}}", &why));
}
