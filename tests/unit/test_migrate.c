#include "migrate.h"
#include "unit.h"
#include "util.h"

#include <stdlib.h>

static struct cr_strlist list(const char *const *items)
{
	struct cr_strlist l = { 0 };
	for (; *items; items++)
		cr_strlist_add(&l, *items);
	return l;
}

TEST(decide_applies_the_empty_database_rule_first)
{
	const char *const only_version[] = { "public.alembic_version", NULL };
	const char *const with_data[] = { "public.alembic_version", "app.customer", NULL };
	const char *const none[] = { NULL };
	const char *const one[] = { "ab12", NULL };
	struct cr_strlist t1 = list(only_version), t2 = list(with_data), t0 = list(none);
	struct cr_strlist missing = list(one), nothing = list(none);
	CHECK(cr_migrate_decide(&t1, "alembic_version", false, &missing) == CR_EMPTY_LEFT_ALONE);
	CHECK(cr_migrate_decide(&t0, "alembic_version", false, &missing) == CR_EMPTY_LEFT_ALONE);
	CHECK(cr_migrate_decide(&t1, "alembic_version", true, &missing) == CR_NEEDED);
	CHECK(cr_migrate_decide(&t2, "alembic_version", false, &missing) == CR_NEEDED);
	CHECK(cr_migrate_decide(&t2, "alembic_version", false, &nothing) == CR_UP_TO_DATE);
	cr_strlist_free(&t0);
	cr_strlist_free(&t1);
	cr_strlist_free(&t2);
	cr_strlist_free(&missing);
}
