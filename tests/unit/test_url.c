/* src/url.c: one table of hostile URLs, read as SQLAlchemy reads them (tests/test_url.py
 * checks the same reading against SQLAlchemy and libpq themselves, through url_cli). */
#include "unit.h"
#include "url.h"
#include "util.h"

#include <stdio.h>
#include <stdlib.h>

struct split_case {
	const char *url, *user, *password, *host, *port, *rest;
};

static const struct split_case cases[] = {
	{ "postgresql://app:pw@db:5432/x", "app", "pw", "db", "5432", "/x" },
	{ "postgresql://app:pa/ss@db/x", "app", "pa/ss", "db", NULL, "/x" },
	{ "postgresql://app:p@ss@db/x", "app", "p@ss", "db", NULL, "/x" },
	{ "postgresql://app:a@b/c@db/x", "app", "a@b/c", "db", NULL, "/x" },
	{ "postgresql://app:p#w?x@db/x?sslmode=require", "app", "p#w?x", "db", NULL,
	  "/x?sslmode=require" },
	{ "postgresql://app:p:q@db/x", "app", "p:q", "db", NULL, "/x" },
	{ "postgresql://app:pw@db/x?application_name=a@b", "app", "pw", "db", NULL,
	  "/x?application_name=a@b" },
	{ "postgresql://app@db/x", "app", NULL, "db", NULL, "/x" },
	{ "postgresql://db/x?x=a@b", NULL, NULL, "db", NULL, "/x?x=a@b" },
	{ "postgresql://app:pw@[::1]:5432/x", "app", "pw", "[::1]", "5432", "/x" },
	{ "postgresql://[fe80::1]/x", NULL, NULL, "[fe80::1]", NULL, "/x" },
	{ "postgresql://app:p%40w@db/x", "app", "p@w", "db", NULL, "/x" },
	{ "postgresql://a%40b:100%@db/x", "a@b", "100%", "db", NULL, "/x" },
	{ "postgresql://app:@db/x", "app", NULL, "db", NULL, "/x" },
	{ "postgresql+psycopg2://app:pw@db", "app", "pw", "db", NULL, "" },
	{ "postgresql:///x?host=/run/postgresql", NULL, NULL, "", NULL, "/x?host=/run/postgresql" },
	{ "https://elastic:s/cr@t@es:9200", "elastic", "s/cr@t", "es", "9200", "" },
};

static void check_part(bool has, const char *s, size_t off, size_t len, const char *want,
		       const char *url, const char *what)
{
	if (!want) {
		if (has) {
			fprintf(stderr, "%s: %s: want none, got \"%.*s\"\n", url, what, (int)len,
				s + off);
			unit_failures++;
		}
		return;
	}
	struct cr_buf b = { 0 };
	cr_buf_add(&b, "", 0);
	if (has)
		cr_percent_decode(&b, s + off, len);
	if (!has || strcmp(b.data, want)) {
		fprintf(stderr, "%s: %s: want \"%s\", got %s\"%s\"\n", url, what, want,
			has ? "" : "none ", b.data);
		unit_failures++;
	}
	cr_buf_free(&b);
}

TEST(url_split_reads_userinfo_as_sqlalchemy_does)
{
	for (size_t i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
		const struct split_case *c = &cases[i];
		struct cr_url u;
		CHECK(cr_url_split(c->url, strlen(c->url), &u));
		check_part(u.has_user, c->url, u.user_off, u.user_len, c->user, c->url, "user");
		check_part(u.has_password, c->url, u.pw_off, u.pw_len, c->password, c->url,
			   "password");
		check_part(true, c->url, u.host_off, u.host_len, c->host, c->url, "host");
		check_part(u.port_len > 0, c->url, u.port_off, u.port_len, c->port, c->url,
			   "port");
		CHECK_STR(c->url + u.rest_off, c->rest);
	}
}

TEST(url_split_refuses_what_is_no_url)
{
	static const char *const no[] = { "", "db:5432", "://x", "postgresql:/x", "a b://x",
					  "postgresql:", NULL };
	for (const char *const *s = no; *s; s++) {
		struct cr_url u;
		CHECK(!cr_url_split(*s, strlen(*s), &u));
	}
}

static void check_normalized(const char *url, const char *password, const char *want)
{
	char *got = cr_url_normalized(url, password);
	CHECK_STR(got, want);
	free(got);
}

TEST(url_normalized_encodes_where_a_parser_could_stop)
{
	check_normalized("postgresql://app@db:5432/x?sslmode=require", "p@ss:/ w",
			 "postgresql://app:p%40ss%3A%2F%20w@db:5432/x?sslmode=require");
	check_normalized("postgresql://app:old@db/x", "new", "postgresql://app:old@db/x");
	check_normalized("postgresql://db/x", "pw", "postgresql://db/x");
	check_normalized("postgresql://app@db/x", NULL, "postgresql://app@db/x");
	check_normalized("postgresql://app:pa/ss@db/x", NULL, "postgresql://app:pa%2Fss@db/x");
	check_normalized("postgresql://app:p@s#s@db/x?a=b@c", NULL,
			 "postgresql://app:p%40s%23s@db/x?a=b@c");
	/* an escape stays one; a '%' that starts none becomes one */
	check_normalized("postgresql://app:p%40w%zz100%@db/x", NULL,
			 "postgresql://app:p%40w%25zz100%25@db/x");
	check_normalized("postgresql://a@b:p:q@db/x", NULL, "postgresql://a%40b:p%3Aq@db/x");
	check_normalized("not a url", "pw", "not a url");
}

TEST(url_add_host_brackets_ipv6)
{
	struct cr_buf b = { 0 };
	cr_url_add_host(&b, "::1", "443");
	cr_buf_adds(&b, " ");
	cr_url_add_host(&b, "[::1]", NULL);
	cr_buf_adds(&b, " ");
	cr_url_add_host(&b, "db.example", "5432");
	CHECK_STR(b.data, "[::1]:443 [::1] db.example:5432");
	cr_buf_free(&b);
}

/* For tests/test_url.py: each line of CR_URL_TEST_INPUT is split and printed as
 * "user\tpassword\thost\tport\trest\tnormalized" (decoded; "-" for an absent part). */
static void print_part(bool has, const char *s, size_t off, size_t len)
{
	if (!has) {
		fputs("-", stdout);
		return;
	}
	struct cr_buf b = { 0 };
	cr_buf_add(&b, "", 0);
	cr_percent_decode(&b, s + off, len);
	fputs(b.data, stdout);
	cr_buf_free(&b);
}

TEST(url_cli)
{
	const char *in = getenv("CR_URL_TEST_INPUT");
	if (!in)
		return;
	char *copy = xstrdup(in), *save = NULL;
	for (char *line = strtok_r(copy, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		struct cr_url u;
		if (!cr_url_split(line, strlen(line), &u)) {
			puts("not-a-url");
			continue;
		}
		print_part(u.has_user, line, u.user_off, u.user_len);
		putchar('\t');
		print_part(u.has_password, line, u.pw_off, u.pw_len);
		putchar('\t');
		print_part(true, line, u.host_off, u.host_len);
		putchar('\t');
		print_part(u.port_len > 0, line, u.port_off, u.port_len);
		char *n = cr_url_normalized(line, NULL);
		printf("\t%s\t%s\n", line + u.rest_off, n);
		free(n);
	}
	free(copy);
}
