#include "http.h"
#include "log.h"
#include "util.h"

#include <stdio.h>
#include <string.h>

static bool set_ok(CURLcode rc, const char *who, const char *what)
{
	if (rc == CURLE_OK)
		return true;
	cr_error("%s: libcurl cannot %s: %s", who, what, curl_easy_strerror(rc));
	return false;
}

static bool set_blob(CURL *c, CURLoption opt, const struct cr_buf *b, const char *who,
		     const char *what)
{
	struct curl_blob blob = { b->data, b->len, CURL_BLOB_COPY };
	return set_ok(curl_easy_setopt(c, opt, &blob), who, what);
}

static bool has(const struct cr_buf *b)
{
	return b && b->len;
}

/* A named CA replaces libcurl's defaults (the system bundle and its hashed directory): with
 * either left in place, any CA the image trusts could stand in for the API server. */
static bool set_trust(CURL *c, const struct cr_http_options *o)
{
	const struct cr_http_tls *t = o->tls;
	bool named = has(t->ca_data) || cr_nonempty(t->ca_file);
	if (t->insecure && named) {
		cr_error("%s: %s: specifying a root certificates file with the insecure flag is not "
			 "allowed (remove insecure-skip-tls-verify or the certificate authority)",
			 o->what, o->origin ? o->origin : "the configuration");
		return false;
	}
	if (t->insecure) {
		curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 0L);
		curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 0L);
		return true;
	}
	if (!named)
		return true;
	if (!set_ok(curl_easy_setopt(c, CURLOPT_CAPATH, NULL), o->what, "drop the system CAs"))
		return false;
	if (has(t->ca_data))
		return set_ok(curl_easy_setopt(c, CURLOPT_CAINFO, NULL), o->what,
			      "drop the system CAs") &&
		       set_blob(c, CURLOPT_CAINFO_BLOB, t->ca_data, o->what, "use inline CA data");
	return set_ok(curl_easy_setopt(c, CURLOPT_CAINFO, t->ca_file), o->what, "use a CA file");
}

static bool set_identity(CURL *c, const struct cr_http_options *o)
{
	const struct cr_http_tls *t = o->tls;
	bool ok = true;
	if (has(t->cert_data))
		ok = set_blob(c, CURLOPT_SSLCERT_BLOB, t->cert_data, o->what,
			      "use inline client certificates");
	else if (t->cert_file)
		ok = set_ok(curl_easy_setopt(c, CURLOPT_SSLCERT, t->cert_file), o->what,
			    "use a client certificate");
	if (ok && has(t->key_data))
		ok = set_blob(c, CURLOPT_SSLKEY_BLOB, t->key_data, o->what, "use inline client keys");
	else if (ok && t->key_file)
		ok = set_ok(curl_easy_setopt(c, CURLOPT_SSLKEY, t->key_file), o->what,
			    "use a client key");
	if (ok && t->proxy)
		ok = set_ok(curl_easy_setopt(c, CURLOPT_PROXY, t->proxy), o->what, "use a proxy");
	if (ok && t->username) {
		curl_easy_setopt(c, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
		curl_easy_setopt(c, CURLOPT_USERNAME, t->username);
		curl_easy_setopt(c, CURLOPT_PASSWORD, t->password ? t->password : "");
	}
	return ok;
}

CURL *cr_http_new(const struct cr_http_options *o)
{
	curl_global_init(CURL_GLOBAL_DEFAULT); /* counted: cr_http_free undoes it */
	CURL *c = curl_easy_init();
	if (!c) {
		cr_error("%s: cannot start libcurl", o->what);
		curl_global_cleanup();
		return NULL;
	}
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_USERAGENT, "chartreuse/" CHARTREUSE_VERSION);
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "https,http");
	curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(c, CURLOPT_ACCEPT_ENCODING, "");
	curl_easy_setopt(c, CURLOPT_TCP_KEEPALIVE, 1L);
	if (o->connect_timeout_ms > 0)
		curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, o->connect_timeout_ms);
	if (o->errbuf) {
		o->errbuf[0] = '\0';
		curl_easy_setopt(c, CURLOPT_ERRORBUFFER, o->errbuf);
	}
	if (o->tls && (!set_trust(c, o) || !set_identity(c, o))) {
		cr_http_free(c);
		return NULL;
	}
	return c;
}

void cr_http_free(CURL *c)
{
	if (!c)
		return;
	curl_easy_cleanup(c);
	curl_global_cleanup();
}

bool cr_http_client_cert(CURL *c, const struct cr_buf *cert, const struct cr_buf *key,
			 const char *what)
{
	return set_blob(c, CURLOPT_SSLCERT_BLOB, cert, what, "use inline client certificates") &&
	       set_blob(c, CURLOPT_SSLKEY_BLOB, key, what, "use inline client keys");
}
