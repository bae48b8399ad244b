/* http: every libcurl handle chartreuse opens (the Kubernetes API, Elasticsearch) is made
 * here, so all share one set of safety settings: a CA that the configuration names is the
 * only trust anchor (the system store no longer counts), verification can't be switched
 * off while a CA is named (kubectl refuses that too), no signals (handles live in worker
 * threads), only http and https, no redirects followed. */
#ifndef CR_HTTP_H
#define CR_HTTP_H

#include <curl/curl.h>
#include <stdbool.h>

struct cr_buf;

struct cr_http_tls {
	const char *ca_file;	      /* the only trust anchor when set */
	const struct cr_buf *ca_data; /* PEM; the same, and wins over ca_file */
	bool insecure;		      /* no verification at all (refused with a CA) */
	const char *cert_file, *key_file;	   /* client certificate, as files... */
	const struct cr_buf *cert_data, *key_data; /* ...or PEM text, which wins */
	const char *proxy;
	const char *username, *password; /* HTTP basic authentication */
};

struct cr_http_options {
	const char *what;	       /* "kubernetes", "elasticsearch": starts every message */
	const char *origin;	       /* where the settings came from, for the refusal */
	long connect_timeout_ms;
	const struct cr_http_tls *tls; /* NULL: the system's CAs, no client certificate */
	char *errbuf;		       /* CURL_ERROR_SIZE bytes for libcurl's details, or NULL */
};

/* A handle with those settings, or NULL after reporting. Free it with cr_http_free. */
CURL *cr_http_new(const struct cr_http_options *o);
void cr_http_free(CURL *c);

/* Replaces the client certificate and key with PEM text (an exec plugin's credential). */
bool cr_http_client_cert(CURL *c, const struct cr_buf *cert, const struct cr_buf *key,
			 const char *what);

#endif
