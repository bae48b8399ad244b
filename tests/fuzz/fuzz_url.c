/* The URL module (src/url.c): one reading of a URL for every client.
 *
 * Input: the URL, then a NUL and a password to add. Oracle beyond the sanitizers: the
 * normalized URL reads back as the same user, password (the URL's own, else the one
 * added), host, port and rest; every offset lies inside the URL, in order. Not checked: a
 * password added to a URL whose path holds an '@' before any '?' (url.h says why). */
#include "fuzz.h"
#include "url.h"

static char *part(const char *s, bool has, size_t off, size_t len)
{
	if (!has)
		return NULL;
	struct cr_buf b = { 0 };
	cr_buf_add(&b, "", 0);
	cr_percent_decode(&b, s + off, len);
	return cr_buf_detach(&b, NULL);
}

static void same(const char *what, const char *a, const char *b, const char *url)
{
	if ((a == NULL) != (b == NULL) || (a && strcmp(a, b))) {
		fprintf(stderr, "%s differs for %s: \"%s\" vs \"%s\"\n", what, url, a ? a : "(none)",
			b ? b : "(none)");
		abort();
	}
}

static void check_bounds(const struct cr_url *u, size_t len)
{
	if (u->len != len || u->user_off + u->user_len > len || u->pw_off + u->pw_len > len ||
	    u->host_off + u->host_len > u->rest_off || u->rest_off > len ||
	    (u->port_len && u->port_off + u->port_len > u->rest_off) ||
	    (u->has_user && u->user_off + u->user_len > u->host_off))
		abort();
}

static bool at_in_path(const char *url, const struct cr_url *u)
{
	const char *rest = url + u->rest_off;
	const char *at = strchr(rest, '@'), *q = strchr(rest, '?');
	return at && (!q || at < q);
}

static void compare(const char *url, const struct cr_url *u, const char *other,
		    const char *password)
{
	struct cr_url v;
	if (!cr_url_split(other, strlen(other), &v))
		abort();
	check_bounds(&v, strlen(other));
	char *a, *b;
	same("user", a = part(url, u->has_user, u->user_off, u->user_len),
	     b = part(other, v.has_user, v.user_off, v.user_len), url);
	free(a);
	free(b);
	char *want = part(url, u->has_password, u->pw_off, u->pw_len);
	if (!want && u->has_user && cr_nonempty(password))
		want = xstrdup(password);
	same("password", want, b = part(other, v.has_password, v.pw_off, v.pw_len), url);
	free(want);
	free(b);
	same("host", a = part(url, true, u->host_off, u->host_len),
	     b = part(other, true, v.host_off, v.host_len), url);
	free(a);
	free(b);
	same("port", a = part(url, true, u->port_off, u->port_len),
	     b = part(other, true, v.port_off, v.port_len), url);
	free(a);
	free(b);
	same("rest", url + u->rest_off, other + v.rest_off, url);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *url = xstrndup((const char *)data, size);
	const char *nul = memchr(data, '\0', size);
	char *password = nul ? xstrndup(nul + 1, size - (size_t)(nul + 1 - (const char *)data))
			     : NULL;
	struct cr_url u;
	size_t len = strlen(url);
	if (cr_url_split(url, len, &u)) {
		check_bounds(&u, len);
		bool adds = u.has_user && !u.has_password && cr_nonempty(password);
		char *n = cr_url_normalized(url, password);
		if (!adds || !at_in_path(url, &u))
			compare(url, &u, n, password);
		free(n);
	}
	free(url);
	free(password);
	return 0;
}
