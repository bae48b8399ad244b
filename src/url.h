/* url: the one reading of "scheme://user:password@host:port/path?query" that every module
 * uses: where the userinfo, the password and the host are, by SQLAlchemy's rule for a
 * password written unencoded (SPEC §6: it may hold '/', ':', '#', '?', and '@'); and the
 * forms built from that reading (a password added, the userinfo percent-encoded so that
 * libpq, SQLAlchemy and libcurl read the same user and password, a host bracketed). */
#ifndef CR_URL_H
#define CR_URL_H

#include <stdbool.h>
#include <stddef.h>

struct cr_buf;

/* Offsets into the URL; a part that is absent has length 0 and its has_ flag false. */
struct cr_url {
	size_t scheme_len; /* [0, scheme_len), before "://" */
	bool has_user;	   /* a userinfo, ended by '@' */
	size_t user_off, user_len;
	bool has_password;
	size_t pw_off, pw_len;
	size_t host_off, host_len; /* an IPv6 literal with its brackets */
	size_t port_off, port_len; /* after the ':' */
	size_t rest_off;	   /* the path, query and fragment: from '/', '?', '#' or the end */
	size_t len;
};

/* Splits s[0, len); false when it does not start with "scheme://".
 * The userinfo: the user runs to the first ':' or '/'; after a ':', the password runs to
 * the first '@' after which the text up to the next '?' holds no other '@' (so '@', '/',
 * '?' and '#' may stand in a password unencoded; a password holding both '@' and '?' must
 * be percent-encoded; an empty one is none). Without a ':', the user runs to the last '@'
 * before the first '/'. */
bool cr_url_split(const char *s, size_t len, struct cr_url *u);
/* The same for text whose "://" is at s + scheme_len, whatever stands before it (a URL
 * found inside a message). */
void cr_url_split_after(const char *s, size_t len, size_t scheme_len, struct cr_url *u);

/* The user and the password, percent-decoded; NULL when absent. Caller frees. */
char *cr_url_user(const char *s, const struct cr_url *u);
char *cr_url_password(const char *s, const struct cr_url *u);

/* url as every client reads it alike: the scheme kept, the user and password
 * percent-encoded where a parser could stop ('@', ':', '/', '?', '#', '[', ']', blanks,
 * and a '%' that starts no %XX), and `password` (percent-encoded) added when the URL has a
 * user and no password (then an '@' in the path before any '?' would be read as part of
 * the password: such a URL must carry its own). A string that is not a URL is copied.
 * Caller frees. */
char *cr_url_normalized(const char *url, const char *password);

/* Appends s with every byte outside RFC 3986's unreserved set as %XX. */
void cr_percent_encode(struct cr_buf *out, const char *s);
/* Appends s[0, len) with each %XX decoded (a '%' that starts no %XX is kept). */
void cr_percent_decode(struct cr_buf *out, const char *s, size_t len);
/* Appends host (bracketed when it is an IPv6 literal) and, when port is set, ":port". */
void cr_url_add_host(struct cr_buf *out, const char *host, const char *port);

#endif
