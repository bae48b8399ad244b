#include "k8s.h"
#include "http.h"
#include "json.h"
#include "kubeconfig.h"
#include "file.h"
#include "log.h"
#include "names.h"
#include "proc.h"
#include "url.h"
#include "util.h"
#include "ytree.h"

#include <curl/curl.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define UPDATE_TRIES 10
#define RETRY_AFTER_MAX_S 60

struct watch;

struct cr_k8s {
	struct cr_kcfg cfg;
	CURL *curl;
	long connect_timeout_ms, timeout_ms, base_ms, cap_ms;
	int tries;
	unsigned long long rng;
	/* A token file's current token, and what the file looked like when it was read. */
	char *file_token;
	struct stat file_st;
	/* The exec plugin's credential, and whether its certificate is set on the handle. */
	struct cr_exec_cred cred;
	bool have_cred, cred_cert_set;
	/* One attempt's answer. */
	struct cr_buf body;
	long retry_after_s;
	bool headers_ended; /* the blank line after the headers came */
	struct watch *watch;
	long last_status;
	char errbuf[CURL_ERROR_SIZE];
};

/* --- set-up ------------------------------------------------------------------------------ */

static size_t on_body(char *data, size_t size, size_t n, void *user);
static size_t on_header(char *data, size_t size, size_t n, void *user);

static bool setup_handle(struct cr_k8s *k)
{
	const struct cr_kcfg *cfg = &k->cfg;
	struct cr_http_tls tls = {
		.ca_file = cfg->ca_file, .ca_data = &cfg->ca_data, .insecure = cfg->insecure,
		.cert_file = cfg->cert_file, .key_file = cfg->key_file,
		.cert_data = &cfg->cert_data, .key_data = &cfg->key_data,
		.proxy = cfg->proxy, .username = cfg->username, .password = cfg->password,
	};
	struct cr_http_options o = { "kubernetes", cfg->origin, k->connect_timeout_ms, &tls,
				     k->errbuf };
	CURL *c = k->curl = cr_http_new(&o);
	if (!c)
		return false;
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, k);
	curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(c, CURLOPT_HEADERDATA, k);
	return true;
}

/* $CHARTREUSE_KUBE_REQUEST_TIMEOUT (seconds, like kubectl's --request-timeout): a slow
 * API server should fail a request sooner than the default minute. */
static long timeout_from_env(long def)
{
	const char *v = getenv("CHARTREUSE_KUBE_REQUEST_TIMEOUT");
	char *end;
	double s = v && *v ? strtod(v, &end) : 0;
	if (!v || !*v)
		return def;
	if (*end || s <= 0 || s > 3600) {
		cr_warn("CHARTREUSE_KUBE_REQUEST_TIMEOUT=%s is not a number of seconds (0-3600]: "
			"using %ld s", v, def / 1000);
		return def;
	}
	return (long)(s * 1000);
}

static long or_default(long v, long def)
{
	return v > 0 ? v : def;
}

static struct cr_k8s *client_new(const struct cr_k8s_options *o)
{
	static const struct cr_k8s_options none;
	if (!o)
		o = &none;
	struct cr_k8s *k = xcalloc(1, sizeof(*k));
	k->connect_timeout_ms = or_default(o->connect_timeout_ms, 10000);
	k->timeout_ms = or_default(o->timeout_ms, timeout_from_env(60000));
	k->tries = (int)or_default(o->tries, 6);
	k->base_ms = or_default(o->retry_base_ms, 200);
	k->cap_ms = or_default(o->retry_cap_ms, 5000);
	k->rng = (unsigned long long)time(NULL) ^ ((unsigned long long)getpid() << 32) ^
		 (unsigned long long)(uintptr_t)k;
	return k;
}

struct cr_k8s *cr_k8s_new(const struct cr_k8s_options *opts)
{
	struct cr_k8s *k = client_new(opts);
	if (cr_kcfg_load(opts, &k->cfg) || !setup_handle(k)) {
		cr_k8s_free(k);
		return NULL;
	}
	return k;
}

struct cr_k8s *cr_k8s_dup(const struct cr_k8s *src)
{
	struct cr_k8s *k = client_new(NULL);
	k->connect_timeout_ms = src->connect_timeout_ms;
	k->timeout_ms = src->timeout_ms;
	k->tries = src->tries;
	k->base_ms = src->base_ms;
	k->cap_ms = src->cap_ms;
	cr_kcfg_copy(&k->cfg, &src->cfg);
	/* The credential is shared so that an exec plugin does not run once per thread. */
	if (src->have_cred) {
		cr_exec_cred_copy(&k->cred, &src->cred);
		k->have_cred = true;
	}
	if (!setup_handle(k)) {
		cr_k8s_free(k);
		return NULL;
	}
	return k;
}

void cr_k8s_free(struct cr_k8s *k)
{
	if (!k)
		return;
	cr_http_free(k->curl);
	cr_kcfg_free(&k->cfg);
	free(k->file_token);
	cr_exec_cred_free(&k->cred);
	cr_buf_free(&k->body);
	free(k);
}

const char *cr_k8s_namespace(const struct cr_k8s *k)
{
	return k->cfg.namespace;
}

const char *cr_k8s_server(const struct cr_k8s *k)
{
	return k->cfg.server;
}

const char *cr_k8s_origin(const struct cr_k8s *k)
{
	return k->cfg.origin;
}

/* --- credentials ------------------------------------------------------------------------- */

static bool same_file_state(const struct stat *a, const struct stat *b)
{
	return a->st_dev == b->st_dev && a->st_ino == b->st_ino && a->st_size == b->st_size &&
	       a->st_mtim.tv_sec == b->st_mtim.tv_sec && a->st_mtim.tv_nsec == b->st_mtim.tv_nsec;
}

/* Service-account tokens rotate: the file is read again whenever it looks different (the
 * kubelet swaps a symlink, so the inode changes), and when `force` (after a 401). */
static int token_from_file(struct cr_k8s *k, bool force)
{
	const char *path = k->cfg.token_file;
	struct stat st;
	if (stat(path, &st)) {
		if (k->file_token)
			return 0; /* keep the last good token; the server will say if it is stale */
		cr_error("kubernetes: cannot read the token file %s: %s", path, strerror(errno));
		return -1;
	}
	if (k->file_token && !force && same_file_state(&st, &k->file_st))
		return 0;
	struct cr_buf b = { 0 };
	int rc = cr_read_file(path, &b);
	size_t len = b.len;
	while (!rc && len && (b.data[len - 1] == '\n' || b.data[len - 1] == '\r' ||
			      b.data[len - 1] == ' '))
		b.data[--len] = '\0';
	if (!rc && !len) {
		cr_error("kubernetes: the token file %s is empty", path);
		rc = -1;
	}
	if (!rc) {
		cr_secret_add(b.data);
		free(k->file_token);
		k->file_token = cr_buf_detach(&b, NULL);
		k->file_st = st;
	}
	cr_buf_free(&b);
	return rc;
}

static bool cred_valid(const struct cr_k8s *k)
{
	return k->have_cred && (k->cred.expiry == 0 || time(NULL) < k->cred.expiry);
}

/* Runs the exec plugin when there is no credential yet, it expired, or `force`. */
static int cred_from_exec(struct cr_k8s *k, bool force)
{
	if (!force && cred_valid(k))
		return 0;
	struct cr_exec_cred fresh;
	if (cr_exec_run(&k->cfg, &fresh))
		return -1;
	cr_exec_cred_free(&k->cred);
	k->cred = fresh;
	k->have_cred = true;
	k->cred_cert_set = false;
	return 0;
}

static int apply_exec_cert(struct cr_k8s *k)
{
	if (k->cred_cert_set || !k->cred.cert.len)
		return 0;
	if (!cr_http_client_cert(k->curl, &k->cred.cert, &k->cred.key, "kubernetes"))
		return -1;
	k->cred_cert_set = true;
	return 0;
}

static bool can_refresh(const struct cr_k8s *k)
{
	return k->cfg.exec || (!cr_nonempty(k->cfg.token) && k->cfg.token_file);
}

/* The bearer token for the next request (NULL: none), refreshing it when needed. */
static int current_token(struct cr_k8s *k, bool force, const char **token)
{
	*token = NULL;
	if (k->cfg.exec) {
		if (cred_from_exec(k, force) || apply_exec_cert(k))
			return -1;
		*token = k->cred.token;
	} else if (cr_nonempty(k->cfg.token)) {
		*token = k->cfg.token;
	} else if (k->cfg.token_file) {
		if (token_from_file(k, force))
			return -1;
		*token = k->file_token;
	}
	return 0;
}

/* --- one attempt ------------------------------------------------------------------------- */

struct watch {
	const char *path;
	cr_k8s_event_fn event;
	void *user;
	struct cr_buf line;
	bool stopped, gone, failed;
};

static long response_code(struct cr_k8s *k)
{
	long status = 0;
	curl_easy_getinfo(k->curl, CURLINFO_RESPONSE_CODE, &status);
	return status;
}

static bool watch_line(struct watch *w, const char *line, size_t len);

/* Feeds complete lines to the watch; false to abort the transfer. */
static bool watch_feed(struct watch *w, const char *data, size_t len)
{
	size_t start = 0, scan = w->line.len; /* what was kept has no newline */
	cr_buf_add(&w->line, data, len);
	char *nl;
	while ((nl = memchr(w->line.data + scan, '\n', w->line.len - scan))) {
		size_t n = (size_t)(nl - (w->line.data + start));
		if (!watch_line(w, w->line.data + start, n))
			return false;
		start = scan = start + n + 1;
	}
	memmove(w->line.data, w->line.data + start, w->line.len - start);
	w->line.len -= start;
	w->line.data[w->line.len] = '\0';
	return true;
}

static size_t on_body(char *data, size_t size, size_t n, void *user)
{
	struct cr_k8s *k = user;
	size_t len = size * n;
	long status = response_code(k);
	if (k->watch && status >= 200 && status < 300)
		return watch_feed(k->watch, data, len) ? len : 0;
	cr_buf_add(&k->body, data, len);
	return len;
}

/* Retry-After in seconds (the HTTP-date form is ignored: backoff applies then). */
static size_t on_header(char *data, size_t size, size_t n, void *user)
{
	struct cr_k8s *k = user;
	size_t len = size * n;
	static const char name[] = "retry-after:";
	if ((len == 2 && data[0] == '\r' && data[1] == '\n') || (len == 1 && data[0] == '\n'))
		k->headers_ended = true;
	if (len > sizeof(name) - 1 && !strncasecmp(data, name, sizeof(name) - 1)) {
		char *copy = xstrndup(data + sizeof(name) - 1, len - (sizeof(name) - 1));
		char *end;
		long v = strtol(copy, &end, 10);
		while (*end == ' ' || *end == '\r' || *end == '\n' || *end == '\t')
			end++;
		if (end != copy && !*end && v >= 0)
			k->retry_after_s = v;
		free(copy);
	}
	return len;
}

static void set_method(CURL *c, const char *method, const char *body)
{
	bool get = !strcmp(method, "GET");
	curl_easy_setopt(c, CURLOPT_HTTPGET, 1L); /* clears the last request's body */
	curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, get ? NULL : method);
	if (body || !strcmp(method, "POST") || !strcmp(method, "PUT") || !strcmp(method, "PATCH")) {
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, body ? body : "");
		curl_off_t len = body ? (curl_off_t)strlen(body) : 0;
		curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, len);
	}
}

static struct curl_slist *request_headers(const char *content_type, const char *token, bool body)
{
	struct curl_slist *h = curl_slist_append(NULL, "Accept: application/json");
	h = curl_slist_append(h, "Expect:"); /* no 100-continue round trip for large bodies */
	if (body) { /* else libcurl would say application/x-www-form-urlencoded */
		char *ct = xasprintf("Content-Type: %s",
				     content_type ? content_type : "application/json");
		h = curl_slist_append(h, ct);
		free(ct);
	}
	if (token) {
		char *auth = xasprintf("Authorization: Bearer %s", token);
		h = curl_slist_append(h, auth);
		free(auth);
	}
	return h;
}

struct req {
	const char *method, *path, *content_type, *body;
	unsigned flags;
	long timeout_ms;  /* per attempt, 0: none */
	long deadline_ms; /* monotonic; 0: none (a watch's own time limit) */
	/* outcome of the last attempt */
	CURLcode rc;
	long status;
	int tries;
};

static long now_ms(void)
{
	return (long)(cr_now_s() * 1000.0);
}

static void set_timeout(CURL *c, struct req *r)
{
	long t = r->timeout_ms;
	if (r->deadline_ms) {
		long left = r->deadline_ms - now_ms();
		t = left > 0 ? left : 1;
	}
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, t);
}

/* One HTTP exchange; -1 if the credentials could not be had (reported). */
static int attempt(struct cr_k8s *k, struct req *r)
{
	const char *token;
	if (current_token(k, false, &token))
		return -1;
	cr_buf_reset(&k->body);
	k->retry_after_s = -1;
	k->headers_ended = false;
	k->errbuf[0] = '\0';
	char *url = xasprintf("%s%s%s", k->cfg.server, r->path[0] == '/' ? "" : "/", r->path);
	struct curl_slist *h = request_headers(r->content_type, token, r->body != NULL);
	curl_easy_setopt(k->curl, CURLOPT_URL, url);
	curl_easy_setopt(k->curl, CURLOPT_HTTPHEADER, h);
	set_timeout(k->curl, r);
	set_method(k->curl, r->method, r->body);
	r->rc = curl_easy_perform(k->curl);
	r->status = response_code(k);
	if (r->rc == CURLE_OK && !k->headers_ended) {
		/* libcurl takes a connection closed inside the headers for an answer */
		r->rc = CURLE_PARTIAL_FILE;
		snprintf(k->errbuf, sizeof(k->errbuf), "the answer ended inside its headers");
	}
	r->tries++;
	curl_easy_setopt(k->curl, CURLOPT_HTTPHEADER, NULL);
	curl_slist_free_all(h);
	free(url);
	return 0;
}

/* --- retries ------------------------------------------------------------------------------ */

static bool idempotent(const struct req *r)
{
	return !strcmp(r->method, "GET") || !strcmp(r->method, "PUT") ||
	       !strcmp(r->method, "DELETE") || !strcmp(r->method, "HEAD") ||
	       (r->flags & CR_K8S_IDEMPOTENT);
}

/* The connection was never made: nothing was sent, any verb may try again. */
static bool failed_before_sending(CURLcode rc)
{
	return rc == CURLE_COULDNT_RESOLVE_HOST || rc == CURLE_COULDNT_RESOLVE_PROXY ||
	       rc == CURLE_COULDNT_CONNECT;
}

/* Failures that another try may not see; certificate and usage errors are not. */
static bool transient(CURLcode rc)
{
	switch (rc) {
	case CURLE_COULDNT_RESOLVE_HOST:
	case CURLE_COULDNT_RESOLVE_PROXY:
	case CURLE_COULDNT_CONNECT:
	case CURLE_OPERATION_TIMEDOUT:
	case CURLE_GOT_NOTHING:
	case CURLE_SEND_ERROR:
	case CURLE_RECV_ERROR:
	case CURLE_PARTIAL_FILE:
	case CURLE_SSL_CONNECT_ERROR:
	case CURLE_HTTP2:
	case CURLE_HTTP2_STREAM:
		return true;
	default:
		return false;
	}
}

static bool success(long status)
{
	return status >= 200 && status < 300;
}

static bool retryable(const struct cr_k8s *k, const struct req *r)
{
	if (k->watch && success(r->status))
		return false; /* the stream started: the caller resumes from what it saw */
	if (r->deadline_ms && now_ms() >= r->deadline_ms)
		return false;
	if (r->rc != CURLE_OK)
		return failed_before_sending(r->rc) || (idempotent(r) && transient(r->rc));
	bool busy = r->status == 429 || (r->status >= 500 && r->status != 501 && r->status != 505);
	return busy && idempotent(r);
}

static unsigned long long next_random(struct cr_k8s *k)
{
	/* xorshift64*: jitter only needs to keep clients from retrying in step */
	k->rng ^= k->rng >> 12;
	k->rng ^= k->rng << 25;
	k->rng ^= k->rng >> 27;
	return k->rng * 2685821657736338717ULL;
}

/* Milliseconds before the next try after `done` tries: the server's Retry-After, else
 * exponential backoff with jitter (half the step fixed, half random). */
static long backoff_ms(struct cr_k8s *k, int done)
{
	if (k->retry_after_s > 0) {
		long s = k->retry_after_s;
		return (s > RETRY_AFTER_MAX_S ? RETRY_AFTER_MAX_S : s) * 1000;
	}
	long step = k->base_ms;
	for (int i = 1; i < done && step < k->cap_ms; i++)
		step *= 2;
	if (step > k->cap_ms)
		step = k->cap_ms;
	return step / 2 + (long)(next_random(k) % (unsigned long long)(step / 2 + 1));
}

static char *failure_text(struct cr_k8s *k, const struct req *r)
{
	if (r->rc != CURLE_OK)
		return xasprintf("%s: %s", k->cfg.server,
				 k->errbuf[0] ? k->errbuf : curl_easy_strerror(r->rc));
	return xasprintf("%ld", r->status);
}

/* A 401 with credentials that can be fetched again: the token may have rotated under a
 * file that looks unchanged, or an exec credential was revoked early. Once per call. */
static bool refresh_after_401(struct cr_k8s *k, const struct req *r, bool *refreshed)
{
	if (r->rc != CURLE_OK || r->status != 401 || !can_refresh(k) || *refreshed)
		return false;
	*refreshed = true;
	return true;
}

/* Tries until an answer that is final or the tries run out; the caller looks at r->rc and
 * r->status. -1 only when credentials could not be had (reported). */
static int perform(struct cr_k8s *k, struct req *r)
{
	bool refreshed = false;
	for (;;) {
		if (attempt(k, r))
			return -1;
		if (refresh_after_401(k, r, &refreshed)) {
			const char *token;
			if (current_token(k, true, &token))
				return -1;
			continue;
		}
		if (!retryable(k, r) || r->tries >= k->tries)
			return 0;
		long wait = backoff_ms(k, r->tries);
		char *why = failure_text(k, r);
		cr_warn("kubernetes: %s %s: %s; retrying in %.1f s (attempt %d of %d)", r->method,
			r->path, why, wait / 1000.0, r->tries + 1, k->tries);
		free(why);
		cr_sleep_ms(wait, false); /* the retry that brings the service back up may be it */
	}
}

static void report_transport(struct cr_k8s *k, const struct req *r)
{
	char *why = failure_text(k, r);
	if (r->tries > 1)
		cr_error("kubernetes: %s %s: %s (after %d attempts)", r->method, r->path, why,
			 r->tries);
	else
		cr_error("kubernetes: %s %s: %s", r->method, r->path, why);
	free(why);
}

/* --- requests ----------------------------------------------------------------------------- */

char *cr_k8s_path(const char *api, const char *ns, const char *resource, const char *name,
		  const char *sub)
{
	if (ns && cr_check_name("kubernetes", "the namespace", ns, CR_NAME_LABEL, CR_NAME_MAX))
		return NULL;
	if (name && cr_check_name("kubernetes", resource, name, CR_NAME_SUBDOMAIN, 253))
		return NULL;
	struct cr_buf b = { 0 };
	cr_buf_adds(&b, api);
	if (ns)
		cr_buf_printf(&b, "/namespaces/%s", ns);
	cr_buf_printf(&b, "/%s", resource);
	if (name)
		cr_buf_printf(&b, "/%s", name);
	if (name && sub)
		cr_buf_printf(&b, "/%s", sub);
	return cr_buf_detach(&b, NULL);
}

void cr_k8s_query_add(struct cr_buf *path, const char *key, const char *value)
{
	if (!path->data)
		return;
	cr_buf_printf(path, "%c%s=", strchr(path->data, '?') ? '&' : '?', key);
	cr_percent_encode(path, value);
}

static const char *status_phrase(long status)
{
	static const struct {
		long code;
		const char *text;
	} phrases[] = {
		{ 400, "Bad Request" },	    { 401, "Unauthorized" },	 { 403, "Forbidden" },
		{ 404, "Not Found" },	    { 405, "Method Not Allowed" }, { 409, "Conflict" },
		{ 410, "Gone" },	    { 415, "Unsupported Media Type" },
		{ 422, "Unprocessable Entity" }, { 429, "Too Many Requests" },
		{ 500, "Internal Server Error" }, { 502, "Bad Gateway" },
		{ 503, "Service Unavailable" }, { 504, "Gateway Timeout" },
	};
	for (size_t i = 0; i < sizeof(phrases) / sizeof(phrases[0]); i++)
		if (phrases[i].code == status)
			return phrases[i].text;
	return NULL;
}

/* The one-line error: the Status object's reason and message when the answer is one, the
 * start of the answer's text otherwise. */
static char *error_line(const char *method, const char *path, long status,
			struct fy_node *root, const struct cr_buf *text)
{
	char *reason = yt_strdup(yt_get(root, "reason"));
	char *message = yt_strdup(yt_get(root, "message"));
	struct cr_buf b = { 0 };
	cr_buf_printf(&b, "kubernetes: %s %s: %ld", method, path, status);
	const char *label = cr_nonempty(reason) ? reason : status_phrase(status);
	if (label)
		cr_buf_printf(&b, " %s", label);
	if (cr_nonempty(message)) {
		cr_buf_printf(&b, ": %s", message);
	} else if (!root && text && text->len) {
		size_t start = 0, len = text->len;
		while (start < len && (text->data[start] == ' ' || text->data[start] == '\n'))
			start++;
		while (len > start && (text->data[len - 1] == ' ' || text->data[len - 1] == '\n'))
			len--;
		if (len > start)
			cr_buf_printf(&b, ": %.*s", (int)(len - start > 300 ? 300 : len - start),
				      text->data + start);
	}
	free(reason);
	free(message);
	return cr_buf_detach(&b, NULL);
}

char *cr_k8s_error_line(const char *method, const char *path, long status,
			struct fy_document *response)
{
	return error_line(method, path, status, response ? fy_document_root(response) : NULL,
			  NULL);
}

void cr_k8s_report(const char *method, const char *path, long status,
		   struct fy_document *response)
{
	char *line = cr_k8s_error_line(method, path, status, response);
	cr_error("%s", line);
	free(line);
}

/* The answer's JSON. A success must be JSON when it has a body; an error's body is only
 * looked into for a Status. */
static int parse_body(struct cr_k8s *k, const struct req *r, struct fy_document **doc)
{
	*doc = NULL;
	if (!k->body.len)
		return 0;
	char *origin = xasprintf("kubernetes: %s %s: %ld answer", r->method, r->path, r->status);
	bool ok = success(r->status);
	if (!ok)
		cr_log_mute(true);
	*doc = cr_json_parse(k->body.data, k->body.len, origin);
	if (!ok)
		cr_log_mute(false);
	free(origin);
	return ok && !*doc ? -1 : 0;
}

/* Performs r: its HTTP status (also kept as the client's last), or -1 when no answer came
 * or a 2xx answer is not JSON (reported). *kind (if set) then says CR_K8S_TRANSIENT or
 * CR_K8S_ERROR. */
static long request(struct cr_k8s *k, struct req *r, struct fy_document **out, int *kind)
{
	if (out)
		*out = NULL;
	if (kind)
		*kind = CR_K8S_ERROR;
	k->last_status = 0;
	if (!r->path || perform(k, r))
		return -1; /* no path: cr_k8s_path reported why */
	if (r->rc != CURLE_OK) {
		report_transport(k, r);
		if (kind)
			*kind = transient(r->rc) ? CR_K8S_TRANSIENT : CR_K8S_ERROR;
		return -1;
	}
	k->last_status = r->status;
	struct fy_document *doc;
	if (parse_body(k, r, &doc))
		return -1;
	if (out)
		*out = doc;
	else
		fy_document_destroy(doc);
	return r->status;
}

long cr_k8s_request(struct cr_k8s *k, const char *method, const char *path,
		    const char *content_type, const char *body, unsigned flags,
		    struct fy_document **out)
{
	struct req r = { method, path, content_type, body, flags, k->timeout_ms, 0, 0, 0, 0 };
	return request(k, &r, out, NULL);
}

long cr_k8s_last_status(const struct cr_k8s *k)
{
	return k->last_status;
}

const char *cr_k8s_rc_name(int rc)
{
	switch (rc) {
	case CR_K8S_OK:
		return "ok";
	case CR_K8S_NOT_FOUND:
		return "not found";
	case CR_K8S_CONFLICT:
		return "conflict";
	case CR_K8S_TEST_FAILED:
		return "precondition test failed";
	case CR_K8S_INVALID:
		return "invalid";
	case CR_K8S_FORBIDDEN:
		return "forbidden";
	case CR_K8S_TRANSIENT:
		return "transient failure";
	default:
		return "error";
	}
}

/* The kind of an HTTP failure. */
static int kind_of(long status)
{
	switch (status) {
	case 403:
		return CR_K8S_FORBIDDEN;
	case 404:
		return CR_K8S_NOT_FOUND;
	case 409:
		return CR_K8S_CONFLICT;
	case 422:
		return CR_K8S_INVALID;
	default:
		return status == 429 || status >= 500 ? CR_K8S_TRANSIENT : CR_K8S_ERROR;
	}
}

int cr_k8s_get_text(struct cr_k8s *k, const char *path, struct cr_buf *out)
{
	struct req r = { "GET", path, NULL, NULL, 0, k->timeout_ms, 0, 0, 0, 0 };
	k->last_status = 0;
	if (!path || perform(k, &r))
		return CR_K8S_ERROR;
	if (r.rc != CURLE_OK) {
		report_transport(k, &r);
		return transient(r.rc) ? CR_K8S_TRANSIENT : CR_K8S_ERROR;
	}
	k->last_status = r.status;
	if (k->body.len)
		cr_buf_add(out, k->body.data, k->body.len);
	return success(r.status) ? CR_K8S_OK : kind_of(r.status);
}

static void report_answer(struct cr_k8s *k, const struct req *r, struct fy_document *doc)
{
	char *line = error_line(r->method, r->path, r->status,
				doc ? fy_document_root(doc) : NULL, &k->body);
	cr_error("%s", line);
	free(line);
}

/* An answered failure: the expected outcomes (flags) silent, any other reported. */
static int answered_failure(struct cr_k8s *k, const struct req *r, unsigned flags,
			    struct fy_document *doc)
{
	int kind = kind_of(r->status);
	if ((kind == CR_K8S_NOT_FOUND && (flags & CR_K8S_ABSENT_OK)) ||
	    (kind == CR_K8S_CONFLICT && (flags & CR_K8S_CONFLICT_OK)))
		return kind;
	report_answer(k, r, doc);
	return kind;
}

static int call(struct cr_k8s *k, const char *method, const char *path,
		const char *content_type, struct fy_node *obj, unsigned flags,
		struct fy_document **out)
{
	char *body = NULL;
	if (out)
		*out = NULL;
	if (obj && !(body = cr_json_string(obj)))
		return CR_K8S_ERROR;
	struct fy_document *doc = NULL;
	struct req r = { method, path, content_type, body, flags, k->timeout_ms, 0, 0, 0, 0 };
	int kind;
	long status = request(k, &r, &doc, &kind);
	if (body)
		explicit_bzero(body, strlen(body)); /* a Secret's body holds its data */
	free(body);
	int rc = status < 0 ? kind : CR_K8S_OK;
	if (status >= 0 && !success(status))
		rc = answered_failure(k, &r, flags, doc);
	if (!rc && out) {
		*out = doc;
		doc = NULL;
	}
	fy_document_destroy(doc);
	return rc;
}

int cr_k8s_get(struct cr_k8s *k, const char *path, struct fy_document **out)
{
	return call(k, "GET", path, NULL, NULL, CR_K8S_ABSENT_OK, out);
}

int cr_k8s_list(struct cr_k8s *k, const char *path, const char *selector, unsigned flags,
		struct fy_document **out)
{
	if (!path || !cr_nonempty(selector))
		return call(k, "GET", path, NULL, NULL, flags, out);
	struct cr_buf p = { 0 };
	cr_buf_adds(&p, path);
	cr_k8s_query_add(&p, "labelSelector", selector);
	int rc = call(k, "GET", p.data, NULL, NULL, flags, out);
	cr_buf_free(&p);
	return rc;
}

int cr_k8s_post(struct cr_k8s *k, const char *path, struct fy_node *obj, unsigned flags,
		struct fy_document **out)
{
	return call(k, "POST", path, "application/json", obj, flags, out);
}

int cr_k8s_put(struct cr_k8s *k, const char *path, struct fy_node *obj,
	       struct fy_document **out)
{
	return call(k, "PUT", path, "application/json", obj, 0, out);
}

int cr_k8s_delete(struct cr_k8s *k, const char *path, struct fy_node *options,
		  struct fy_document **out)
{
	return call(k, "DELETE", path, options ? "application/json" : NULL, options,
		    CR_K8S_ABSENT_OK, out);
}

/* --- JSON patch preconditions ------------------------------------------------------------ */

/* The node at an RFC 6901 pointer ("/metadata/annotations/a~1b"), NULL when absent. */
static struct fy_node *at_pointer(struct fy_node *n, const char *pointer)
{
	if (!*pointer)
		return n;
	if (*pointer != '/')
		return NULL;
	struct cr_buf token = { 0 };
	const char *p = pointer + 1;
	for (; *p && *p != '/'; p++) {
		if (p[0] == '~' && (p[1] == '0' || p[1] == '1'))
			cr_buf_addc(&token, *++p == '1' ? '/' : '~');
		else
			cr_buf_addc(&token, *p);
	}
	cr_buf_add(&token, "", 0);
	struct fy_node *next = NULL;
	if (yt_is_map(n)) {
		next = yt_get(n, token.data);
	} else if (yt_is_seq(n)) {
		char *end;
		long i = strtol(token.data, &end, 10);
		if (token.len && !*end && i >= 0 && token.data[0] != '-')
			next = fy_node_sequence_get_by_index(n, (int)i);
	}
	cr_buf_free(&token);
	return next ? at_pointer(next, p) : NULL;
}

static bool same_json(struct fy_node *a, struct fy_node *b)
{
	char *x = cr_json_string(a), *y = cr_json_string(b);
	bool same = x && y && !strcmp(x, y);
	free(x);
	free(y);
	return same;
}

/* Whether a "test" op of ops fails on obj (RFC 6902: the value must be there, and equal). */
static bool a_test_fails(struct fy_node *ops, struct fy_node *obj)
{
	void *it = NULL;
	struct fy_node *op;
	while ((op = fy_node_sequence_iterate(ops, &it))) {
		if (!yt_scalar_is(yt_get(op, "op"), "test"))
			continue;
		char *pointer = yt_strdup(yt_get(op, "path"));
		struct fy_node *there = pointer ? at_pointer(obj, pointer) : NULL;
		free(pointer);
		if (!there || !same_json(there, yt_get(op, "value")))
			return true;
	}
	return false;
}

/* A 422 to a JSON patch: a test that failed, or a refusal of the result (the Status does
 * not tell them apart: SPEC §6). The object as it now is decides. */
static int json_patch_refused(struct cr_k8s *k, const struct req *r, struct fy_node *ops,
			      unsigned flags, struct fy_document *answer)
{
	cr_log_mute(true);
	struct fy_document *now = NULL;
	int rc = cr_k8s_get(k, r->path, &now);
	cr_log_mute(false);
	if (rc == CR_K8S_NOT_FOUND && (flags & CR_K8S_ABSENT_OK)) {
		fy_document_destroy(now);
		return CR_K8S_NOT_FOUND;
	}
	bool failed = !rc && a_test_fails(ops, fy_document_root(now));
	fy_document_destroy(now);
	if (failed)
		return CR_K8S_TEST_FAILED;
	report_answer(k, r, answer);
	return CR_K8S_INVALID;
}

int cr_k8s_patch(struct cr_k8s *k, const char *path, enum cr_k8s_patch type,
		 struct fy_node *patch, unsigned flags, struct fy_document **out)
{
	static const char *const types[] = {
		[CR_K8S_PATCH_MERGE] = "application/merge-patch+json",
		[CR_K8S_PATCH_STRATEGIC] = "application/strategic-merge-patch+json",
		[CR_K8S_PATCH_JSON] = "application/json-patch+json",
	};
	if (type != CR_K8S_PATCH_JSON)
		return call(k, "PATCH", path, types[type], patch, flags, out);
	if (out)
		*out = NULL;
	char *body = cr_json_string(patch);
	if (!body)
		return CR_K8S_ERROR;
	struct fy_document *doc = NULL;
	struct req r = { "PATCH", path, types[type], body, flags, k->timeout_ms, 0, 0, 0, 0 };
	int kind;
	long status = request(k, &r, &doc, &kind);
	free(body);
	int rc = status < 0 ? kind : CR_K8S_OK;
	if (status == 422)
		rc = json_patch_refused(k, &r, patch, flags, doc);
	else if (status >= 0 && !success(status))
		rc = answered_failure(k, &r, flags, doc);
	if (!rc && out) {
		*out = doc;
		doc = NULL;
	}
	fy_document_destroy(doc);
	return rc;
}

/* --- read-modify-write ------------------------------------------------------------------- */

/* One round: CR_K8S_OK done, CR_K8S_CONFLICT (go again), or another failure. */
static int update_once(struct cr_k8s *k, const char *path, cr_k8s_change_fn change,
		       void *user, struct fy_document **out)
{
	struct fy_document *cur;
	int rc = cr_k8s_get(k, path, &cur);
	if (rc)
		return rc;
	int changed = change(fy_document_root(cur), user);
	if (changed != 0) {
		if (changed > 0 && out)
			*out = cur;
		else
			fy_document_destroy(cur);
		return changed > 0 ? CR_K8S_OK : CR_K8S_ERROR;
	}
	rc = call(k, "PUT", path, "application/json", fy_document_root(cur), CR_K8S_CONFLICT_OK,
		  out);
	fy_document_destroy(cur);
	return rc;
}

int cr_k8s_update(struct cr_k8s *k, const char *path, cr_k8s_change_fn change, void *user,
		  struct fy_document **out)
{
	if (out)
		*out = NULL;
	for (int i = 0; i < UPDATE_TRIES; i++) {
		int rc = update_once(k, path, change, user, out);
		if (rc != CR_K8S_CONFLICT)
			return rc;
	}
	cr_error("kubernetes: PUT %s: 409 Conflict %d times in a row: the object keeps "
		 "changing under us",
		 path, UPDATE_TRIES);
	return CR_K8S_CONFLICT;
}

/* --- watch ------------------------------------------------------------------------------- */

static void watch_error_event(struct watch *w, struct fy_node *status)
{
	char *code = yt_strdup(yt_get(status, "code"));
	if (cr_streq(code, "410")) {
		w->gone = true;
	} else {
		char *line = error_line("watch", w->path, code ? strtol(code, NULL, 10) : 0, status,
					NULL);
		cr_error("%s", line);
		free(line);
		w->failed = true;
	}
	free(code);
}

/* One event line; false to stop reading. */
static bool watch_line(struct watch *w, const char *line, size_t len)
{
	while (len && (line[len - 1] == '\r' || line[len - 1] == ' '))
		len--;
	if (!len)
		return true;
	char *origin = xasprintf("kubernetes: watch %s: event", w->path);
	struct fy_document *d = cr_json_parse(line, len, origin);
	free(origin);
	struct fy_node *root = d ? fy_document_root(d) : NULL;
	char *type = yt_strdup(yt_get(root, "type"));
	struct fy_node *object = yt_get(root, "object");
	if (!d) {
		w->failed = true;
	} else if (!type || !object) {
		cr_error("kubernetes: watch %s: an event without type or object", w->path);
		w->failed = true;
	} else if (!strcmp(type, "ERROR")) {
		watch_error_event(w, object);
	} else if (w->event(type, object, w->user)) {
		w->stopped = true;
	}
	free(type);
	fy_document_destroy(d);
	return !w->stopped && !w->gone && !w->failed;
}

static int watch_outcome(struct cr_k8s *k, struct watch *w, const struct req *r)
{
	/* A last event without its newline counts only when the stream ended cleanly: after a
	 * transport error it is the start of an event that was cut. */
	if (r->rc == CURLE_OK && success(r->status) && !w->stopped && !w->gone && !w->failed &&
	    w->line.len)
		watch_line(w, w->line.data, w->line.len);
	if (w->failed)
		return -1;
	if (w->gone)
		return CR_K8S_WATCH_GONE;
	if (w->stopped)
		return CR_K8S_WATCH_STOPPED;
	bool timed_out = r->rc == CURLE_OPERATION_TIMEDOUT && r->deadline_ms &&
			 now_ms() >= r->deadline_ms - 5;
	if (timed_out && (success(r->status) || r->status == 0))
		return CR_K8S_WATCH_TIMEOUT;
	if (success(r->status))
		return CR_K8S_WATCH_ENDED; /* closed or broken: either way, resume */
	if (r->rc != CURLE_OK) {
		report_transport(k, r);
		return -1;
	}
	if (r->status == 410)
		return CR_K8S_WATCH_GONE;
	struct fy_document *doc = NULL;
	cr_log_mute(true);
	if (k->body.len)
		doc = cr_json_parse(k->body.data, k->body.len, "watch");
	cr_log_mute(false);
	char *line = error_line("GET", r->path, r->status, doc ? fy_document_root(doc) : NULL,
				&k->body);
	cr_error("%s", line);
	free(line);
	fy_document_destroy(doc);
	return -1;
}

int cr_k8s_watch(struct cr_k8s *k, const char *path, cr_k8s_event_fn event, void *user,
		 long timeout_ms)
{
	if (!path)
		return CR_K8S_ERROR; /* cr_k8s_path reported why */
	const char *q = strchr(path, '?');
	bool has_watch = q && (strstr(q, "?watch=") || strstr(q, "&watch="));
	char *full = has_watch ? xstrdup(path) : xasprintf("%s%swatch=1", path, q ? "&" : "?");
	struct watch w = { .path = full, .event = event, .user = user };
	struct req r = { "GET", full, NULL, NULL, 0, 0, 0, 0, 0, 0 };
	if (timeout_ms > 0)
		r.deadline_ms = now_ms() + timeout_ms;
	k->watch = &w;
	int rc = perform(k, &r);
	k->watch = NULL;
	if (!rc)
		rc = watch_outcome(k, &w, &r);
	cr_buf_free(&w.line);
	free(full);
	return rc;
}
