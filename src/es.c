#include "es.h"
#include "http.h"
#include "log.h"
#include "proc.h"
#include "url.h"
#include "util.h"
#include "ytree.h"

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static size_t collect(char *data, size_t size, size_t n, void *buf)
{
	cr_buf_add(buf, data, size * n);
	return size * n;
}

/* The "status" of a health answer, or NULL. Caller frees. */
static char *health_status(const struct cr_buf *body)
{
	if (!body->len)
		return NULL;
	cr_log_mute(true); /* an HTML error page is no reason for a second message */
	struct fy_document *d = yt_parse(body->data, body->len, "health", 0);
	cr_log_mute(false);
	char *status = d ? yt_strdup(yt_get(fy_document_root(d), "status")) : NULL;
	if (d)
		fy_document_destroy(d);
	return status;
}

/* One try: true when the cluster is yellow or green; *why says otherwise. */
static bool cluster_ready(CURL *curl, const char *health_url, char **why)
{
	struct cr_buf body = { 0 };
	curl_easy_setopt(curl, CURLOPT_URL, health_url);
	curl_easy_setopt(curl, CURLOPT_WRITEDATA, &body);
	CURLcode rc = curl_easy_perform(curl);
	long code = 0;
	curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &code);
	char *status = rc == CURLE_OK ? health_status(&body) : NULL;
	bool ready = code == 200 && status && (!strcmp(status, "yellow") || !strcmp(status, "green"));
	free(*why);
	if (rc != CURLE_OK)
		*why = xstrdup(curl_easy_strerror(rc));
	else if (!ready)
		*why = xasprintf("HTTP %ld, status %s", code, status ? status : "unknown");
	else
		*why = NULL;
	free(status);
	cr_buf_free(&body);
	return ready;
}

/* libcurl gets the URL with its userinfo encoded, as the URL module reads it. */
static char *health_url_of(const char *url)
{
	char *same = cr_url_normalized(url, NULL);
	size_t n = strlen(same);
	while (n && same[n - 1] == '/')
		n--;
	char *health = xasprintf("%.*s/_cluster/health?wait_for_status=yellow&timeout=5s",
				 (int)n, same);
	explicit_bzero(same, strlen(same));
	free(same);
	return health;
}

int cr_es_wait(const char *url, int timeout_s)
{
	cr_secret_add_url_password(url);
	struct cr_http_options o = { "elasticsearch", NULL, 5000, NULL, NULL };
	CURL *curl = cr_http_new(&o);
	if (!curl)
		return -1;
	char *health = health_url_of(url);
	curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, collect);
	curl_easy_setopt(curl, CURLOPT_TIMEOUT, 10L);
	struct cr_progress prog = cr_progress_start();
	bool told = false;
	char *why = NULL;
	int rc = -1;
	for (;;) {
		if (cluster_ready(curl, health, &why)) {
			cr_info("elasticsearch: the cluster is ready");
			rc = 0;
			break;
		}
		if (cr_now_s() - prog.start >= (double)timeout_s) {
			cr_error("elasticsearch (%s): not ready after %d s: %s", url, timeout_s,
				 why ? why : "no answer");
			break;
		}
		if (cr_terminated()) {
			cr_error("elasticsearch (%s): interrupted (signal %d) while waiting", url,
				 cr_terminated());
			break;
		}
		double waited = cr_progress_due(&prog);
		if (!told || waited)
			cr_info("elasticsearch: waiting for the cluster (%.0f s of %d s): %s", waited,
				timeout_s, why ? why : "");
		told = true;
		cr_sleep_ms(1000, true); /* a termination request ends it: seen above */
	}
	free(why);
	explicit_bzero(health, strlen(health));
	free(health);
	cr_http_free(curl);
	return rc;
}
