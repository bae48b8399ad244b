#include "config.h"
#include "names.h"
#include "render.h"
#include "unit.h"
#include "util.h"

#include <stdlib.h>

TEST(object_names_fit_in_63_characters)
{
	char *n = cr_object_name("demo", "chartreuse", "upgrade");
	CHECK_STR(n, "demo-chartreuse-upgrade");
	free(n);
	const char *long_release =
		"a-very-long-release-name-that-goes-on-and-on-beyond-any-reasonable-size";
	char *a = cr_object_name(long_release, "chartreuse", "upgrade");
	char *b = cr_object_name(long_release, "chartreuse", "restore");
	CHECK(strlen(a) <= 63);
	CHECK(strcmp(a, b) != 0);
	CHECK(strstr(a, "-chartreuse-upgrade") != NULL);
	char *again = cr_object_name(long_release, "chartreuse", "upgrade");
	CHECK_STR(again, a);
	free(a);
	free(b);
	free(again);
}

TEST(database_url_percent_encodes_credentials)
{
	struct cr_database db = { 0 };
	db.dialect = "postgresql";
	db.user = "app user";
	db.password = "p@ss:/?#%'\" w";
	db.host = "db";
	db.port = 5432;
	db.database = "my/db";
	char *u = cr_database_url(&db, true);
	CHECK_STR(u, "postgresql://app%20user:p%40ss%3A%2F%3F%23%25%27%22%20w@db:5432/my%2Fdb");
	free(u);
	u = cr_database_url(&db, false);
	CHECK_STR(u, "postgresql://app%20user@db:5432/my%2Fdb");
	free(u);
}

TEST(object_names_never_end_a_cut_with_a_dot_or_dash)
{
	/* Cut where the release has a '.' (or '-'): the hash's '-' must not follow it. */
	const char *const releases[] = {
		"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.bbbbbbbbbbbbbbbbbb", /* '.' at 35 */
		"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.bbbbbbbbbb", /* '.' at 43 */
		"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-bbbbbbbbbbbbbbbbbb", /* '-' at 35 */
		NULL,
	};
	const char *const suffixes[] = { "upgrade", "install", "restore", NULL };
	for (const char *const *r = releases; *r; r++) {
		CHECK(cr_dns_name_ok(*r, CR_NAME_SUBDOMAIN, 53));
		char *base = cr_object_name(*r, "chartreuse", NULL);
		CHECK(cr_dns_name_ok(base, CR_NAME_SUBDOMAIN, 63));
		free(base);
		for (const char *const *s = suffixes; *s; s++) {
			char *n = cr_object_name(*r, "chartreuse", *s);
			CHECK(cr_dns_name_ok(n, CR_NAME_SUBDOMAIN, 63));
			CHECK(strstr(n, "--") == NULL);
			free(n);
		}
	}
	const char *m63 = "mmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmm";
	char *m = cr_object_name("demo", m63, "upgrade");
	CHECK(strlen(m) <= 63 && cr_dns_name_ok(m, CR_NAME_SUBDOMAIN, 63));
	free(m);
}
