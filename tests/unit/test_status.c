#include "json.h"
#include "status.h"
#include "unit.h"

#include <stdlib.h>
#include <string.h>

/* The outcome of the Job written as JSON, and its detail ("" when none). */
static void check_outcome(const char *job, const char *want, const char *want_detail)
{
	struct fy_document *d = cr_json_parse(job, strlen(job), "job");
	CHECK(d != NULL);
	if (!d)
		return;
	char *detail = NULL;
	CHECK_STR(cr_status_job_outcome(fy_document_root(d), &detail), want);
	CHECK_STR(detail ? detail : "", want_detail);
	free(detail);
	fy_document_destroy(d);
}

TEST(job_outcome_from_conditions)
{
	check_outcome("{\"status\": {\"failed\": 1, \"conditions\": [{\"type\": \"Failed\", "
		      "\"status\": \"True\", \"reason\": \"BackoffLimitExceeded\", "
		      "\"message\": \"Job has reached the specified backoff limit\"}]}}",
		      "failed", "BackoffLimitExceeded: Job has reached the specified backoff limit");
	/* While the pods finish, Kubernetes 1.31+ sets FailureTarget / SuccessCriteriaMet
	 * before Failed / Complete. */
	check_outcome("{\"status\": {\"active\": 1, \"conditions\": [{\"type\": \"FailureTarget\","
		      " \"status\": \"True\", \"reason\": \"DeadlineExceeded\"}]}}",
		      "failed", "DeadlineExceeded");
	check_outcome("{\"status\": {\"conditions\": [{\"type\": \"SuccessCriteriaMet\", "
		      "\"status\": \"True\"}, {\"type\": \"Complete\", \"status\": \"True\"}]}}",
		      "succeeded", "");
	/* A condition that is not True decides nothing. */
	check_outcome("{\"status\": {\"active\": 1, \"conditions\": [{\"type\": \"Failed\", "
		      "\"status\": \"False\"}]}}",
		      "running", "");
}

TEST(job_outcome_from_counters)
{
	check_outcome("{\"status\": {\"succeeded\": 1}}", "succeeded", "");
	check_outcome("{\"spec\": {\"completions\": 3}, \"status\": {\"succeeded\": 2, "
		      "\"active\": 1}}",
		      "running", "");
	check_outcome("{\"spec\": {\"backoffLimit\": 0}, \"status\": {\"failed\": 1}}", "failed",
		      "1 failed pods");
	/* Under the default backoffLimit (6), a failed pod is retried. */
	check_outcome("{\"status\": {\"failed\": 2}}", "running", "");
	check_outcome("{\"status\": {\"failed\": 7}}", "failed", "7 failed pods");
	check_outcome("{\"spec\": {\"suspend\": true}}", "suspended", "");
	check_outcome("{\"metadata\": {\"name\": \"j\"}}", "pending", "");
}
