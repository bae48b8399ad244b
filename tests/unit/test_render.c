#include "config.h"
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
