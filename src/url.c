#include "url.h"
#include "util.h"

#include <ctype.h>
#include <string.h>

static bool scheme_char(char c)
{
	return isalnum((unsigned char)c) || c == '+' || c == '-' || c == '.' || c == '_';
}

static size_t span_not(const char *s, size_t from, size_t len, const char *stop)
{
	size_t i = from;
	while (i < len && !memchr(stop, s[i], strlen(stop)))
		i++;
	return i;
}

static const char *find(const char *s, size_t from, size_t len, char c)
{
	return from < len ? memchr(s + from, c, len - from) : NULL;
}

/* The '@' that ends a password starting at `from`: the first one after which the text up to
 * the next '?' holds no other '@'. */
static const char *password_end(const char *s, size_t from, size_t len)
{
	for (const char *at = find(s, from, len, '@'); at; at = find(s, (size_t)(at - s) + 1, len, '@')) {
		size_t next = (size_t)(at - s) + 1;
		size_t q = span_not(s, next, len, "?");
		if (!find(s, next, q, '@'))
			return at;
	}
	return NULL;
}

static const char *last_at(const char *s, size_t from, size_t to)
{
	const char *at = NULL;
	for (size_t i = from; i < to; i++)
		if (s[i] == '@')
			at = s + i;
	return at;
}

static void split_host(const char *s, size_t from, size_t len, struct cr_url *u)
{
	size_t i = from;
	if (i < len && s[i] == '[') {
		const char *close = find(s, i, span_not(s, i, len, "/?#"), ']');
		i = close ? (size_t)(close - s) + 1 : span_not(s, i, len, "/?#");
	} else {
		i = span_not(s, i, len, ":/?#");
	}
	u->host_off = from;
	u->host_len = i - from;
	if (i < len && s[i] == ':') {
		u->port_off = i + 1;
		i = span_not(s, i + 1, len, "/?#");
		u->port_len = i - u->port_off;
	}
	u->rest_off = i;
}

bool cr_url_split(const char *s, size_t len, struct cr_url *u)
{
	size_t n = 0;
	while (n < len && scheme_char(s[n]))
		n++;
	if (!n || len - n < 3 || memcmp(s + n, "://", 3) != 0) {
		memset(u, 0, sizeof(*u));
		return false;
	}
	cr_url_split_after(s, len, n, u);
	return true;
}

void cr_url_split_after(const char *s, size_t len, size_t scheme_len, struct cr_url *u)
{
	memset(u, 0, sizeof(*u));
	u->scheme_len = scheme_len;
	u->len = len;
	size_t auth = scheme_len + 3, user_end = span_not(s, auth, len, ":/");
	const char *at = user_end < len && s[user_end] == ':' ? password_end(s, user_end + 1, len)
							       : NULL;
	if (at) {
		/* "user:@host": no password, as libpq reads it (pw_off still says a ':' stood) */
		u->pw_off = user_end + 1;
		u->pw_len = (size_t)(at - s) - u->pw_off;
		u->has_password = u->pw_len > 0;
	} else if ((at = last_at(s, auth, user_end))) {
		user_end = (size_t)(at - s);
	}
	if (at) {
		u->has_user = true;
		u->user_off = auth;
		u->user_len = user_end - auth;
	}
	split_host(s, at ? (size_t)(at - s) + 1 : auth, len, u);
}

static char *decoded(const char *s, size_t off, size_t len)
{
	struct cr_buf b = { 0 };
	cr_buf_reserve(&b, len);
	cr_percent_decode(&b, s + off, len);
	return cr_buf_detach(&b, NULL);
}

char *cr_url_user(const char *s, const struct cr_url *u)
{
	return u->has_user ? decoded(s, u->user_off, u->user_len) : NULL;
}

char *cr_url_password(const char *s, const struct cr_url *u)
{
	return u->has_password ? decoded(s, u->pw_off, u->pw_len) : NULL;
}

static int hex_value(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = (char)tolower((unsigned char)c);
	return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* s[i] starts a %XX escape. */
static bool escape_at(const char *s, size_t i, size_t len)
{
	return i + 2 < len && s[i] == '%' && hex_value(s[i + 1]) >= 0 && hex_value(s[i + 2]) >= 0;
}

void cr_percent_decode(struct cr_buf *out, const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		if (escape_at(s, i, len)) {
			cr_buf_addc(out, (char)(hex_value(s[i + 1]) * 16 + hex_value(s[i + 2])));
			i += 2;
		} else {
			cr_buf_addc(out, s[i]);
		}
	}
}

/* Userinfo text as every parser reads it: an escape stays, a byte where one could stop
 * (or that is not text) becomes one. */
static void add_userinfo_part(struct cr_buf *out, const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		bool stop = strchr("@:/?#[]% ", c) != NULL || c < 0x20 || c == 0x7f;
		if (c == '%' && escape_at(s, i, len))
			stop = false;
		if (stop)
			cr_buf_printf(out, "%%%02X", c);
		else
			cr_buf_addc(out, (char)c);
	}
}

void cr_percent_encode(struct cr_buf *out, const char *s)
{
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~')
			cr_buf_addc(out, (char)c);
		else
			cr_buf_printf(out, "%%%02X", c);
	}
}

char *cr_url_normalized(const char *url, const char *password)
{
	struct cr_url u;
	size_t len = strlen(url);
	if (!cr_url_split(url, len, &u) || !u.has_user)
		return xstrdup(url);
	struct cr_buf b = { 0 };
	cr_buf_add(&b, url, u.user_off);
	add_userinfo_part(&b, url + u.user_off, u.user_len);
	if (u.has_password) {
		cr_buf_addc(&b, ':');
		add_userinfo_part(&b, url + u.pw_off, u.pw_len);
	} else if (cr_nonempty(password)) {
		cr_buf_addc(&b, ':');
		cr_percent_encode(&b, password);
	} else if (u.pw_off) {
		cr_buf_addc(&b, ':'); /* "user:@": the ':' decides where the user ends */
	}
	cr_buf_addc(&b, '@');
	cr_buf_adds(&b, url + u.host_off);
	return cr_buf_detach(&b, NULL);
}

void cr_url_add_host(struct cr_buf *out, const char *host, const char *port)
{
	bool v6 = strchr(host, ':') && host[0] != '[';
	cr_buf_printf(out, "%s%s%s", v6 ? "[" : "", host, v6 ? "]" : "");
	if (cr_nonempty(port))
		cr_buf_printf(out, ":%s", port);
}
