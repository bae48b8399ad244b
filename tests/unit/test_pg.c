/* pg: URL conversion without a server; the rest against the real PostgreSQL that
 * tests/test_pg.py starts. The pg_live_* tests pass without doing anything unless
 * CR_TEST_PG_URL is set (test_unit.py runs them bare, test_pg.py with a database):
 *   CR_TEST_PG_URL       URL of an empty database owned by the URL's user
 *   CR_TEST_PG_PASSWORD  that user's password, decoded (must end up masked)
 *   CR_TEST_PG_BAD_URL   the same URL with a wrong password */
#include "log.h"
#include "pg.h"
#include "unit.h"
#include "util.h"

#include <stdlib.h>
#include <time.h>

static void check_libpq_url(const char *url, const char *want)
{
	char *got = cr_pg_libpq_url(url);
	if (want)
		CHECK_STR(got, want);
	else
		CHECK(got == NULL);
	free(got);
}

TEST(pg_libpq_url_drops_the_sqlalchemy_driver)
{
	check_libpq_url("postgresql+psycopg2://u:p%40w@db:5432/app?sslmode=require",
			"postgresql://u:p%40w@db:5432/app?sslmode=require");
	check_libpq_url("postgresql+asyncpg://u@db/app", "postgresql://u@db/app");
	check_libpq_url("postgresql://u:p@db/app", "postgresql://u:p@db/app");
	check_libpq_url("postgres://u:p@db/app", "postgresql://u:p@db/app");
	check_libpq_url("PostgreSQL+pg8000://db/app", "postgresql://db/app");
	check_libpq_url("postgresql:///app?host=/run/postgresql",
			"postgresql:///app?host=/run/postgresql");
}

TEST(pg_libpq_url_encodes_an_unencoded_at_in_the_password)
{
	/* SQLAlchemy splits user info at the last '@', libpq at the first */
	check_libpq_url("postgresql://u:p@ss@db/app", "postgresql://u:p%40ss@db/app");
	check_libpq_url("postgresql://u:p@db/app?options=a@b", "postgresql://u:p@db/app?options=a@b");
}

TEST(pg_libpq_url_refuses_other_databases)
{
	check_libpq_url("mysql+pymysql://u:p@db/app", NULL);
	check_libpq_url("sqlite:///app.db", NULL);
	check_libpq_url("postgresqlx://db/app", NULL);
	check_libpq_url("host=db dbname=app", NULL);
	check_libpq_url("", NULL);
}

TEST(pg_connect_masks_the_password_even_when_it_fails)
{
	struct cr_pg *pg = (struct cr_pg *)1;
	/* Port 1 on the loopback refuses at once. */
	CHECK(cr_pg_connect("x", "postgresql://u:s3cr%40t%20pw@127.0.0.1:1/app", 2, &pg) < 0);
	CHECK(pg == NULL);
	char *m = cr_mask("s3cr@t pw and s3cr%40t%20pw");
	CHECK_STR(m, "*** and ***");
	free(m);
	cr_secrets_clear();
}

TEST(pg_wait_refuses_a_url_libpq_cannot_use)
{
	CHECK(cr_pg_wait("x", "mysql://u:p@db/app", 5) < 0);
	CHECK(cr_pg_wait("x", "postgresql://u:p@127.0.0.1:1/app?nonsense=1", 60) < 0);
	cr_secrets_clear();
}

/* --- against a server -------------------------------------------------------------- */

static const char *live_url(void)
{
	const char *url = getenv("CR_TEST_PG_URL");
	return url && *url ? url : NULL;
}

static struct cr_pg *live_connect(void)
{
	struct cr_pg *pg = NULL;
	CHECK(cr_pg_connect("live", live_url(), 10, &pg) == 0);
	return pg;
}

static int exec(struct cr_pg *pg, const char *sql)
{
	return cr_pg_exec(pg, sql, 0, NULL);
}

static double seconds(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

TEST(pg_live_connects_as_chartreuse_and_masks_the_password)
{
	if (!live_url())
		return;
	struct cr_pg *pg = live_connect();
	if (!pg)
		return;
	CHECK(exec(pg, "DO $$ BEGIN IF current_setting('application_name') <> 'chartreuse' "
		       "THEN RAISE EXCEPTION 'application_name is %', "
		       "current_setting('application_name'); END IF; END $$") == 0);
	char *m = cr_mask(getenv("CR_TEST_PG_PASSWORD"));
	CHECK_STR(m, "***");
	free(m);
	cr_pg_close(pg);
	cr_secrets_clear();
}

TEST(pg_live_wrong_password_is_one_masked_line)
{
	const char *bad = getenv("CR_TEST_PG_BAD_URL");
	if (!live_url() || !bad)
		return;
	struct cr_pg *pg = NULL;
	CHECK(cr_pg_connect("live", bad, 10, &pg) < 0);
	CHECK(pg == NULL);
	cr_secrets_clear();
}

TEST(pg_live_stored_revisions)
{
	if (!live_url())
		return;
	struct cr_pg *pg = live_connect();
	if (!pg)
		return;
	struct cr_strlist revs = { 0 };
	CHECK(cr_pg_stored_revisions(pg, NULL, "alembic_version", &revs) == 0);
	CHECK(cr_pg_stored_revisions(pg, "no_such_schema", "alembic_version", &revs) == 0);
	CHECK(revs.n == 0);

	CHECK(exec(pg, "CREATE TABLE alembic_version (version_num varchar(32) PRIMARY KEY)") ==
	      0);
	CHECK(exec(pg, "INSERT INTO alembic_version VALUES ('ab12')") == 0);
	CHECK(cr_pg_stored_revisions(pg, NULL, "alembic_version", &revs) == 0);
	CHECK(revs.n == 1 && cr_strlist_has(&revs, "ab12"));
	cr_strlist_free(&revs);

	/* Names from the config are data: quotes, dots, spaces and a semicolon stay names. */
	CHECK(exec(pg, "CREATE SCHEMA \"My \"\"Schema\"\".x\"") == 0);
	CHECK(exec(pg, "CREATE TABLE \"My \"\"Schema\"\".x\".\"versions; DROP TABLE x\" "
		       "(version_num varchar(32) PRIMARY KEY)") == 0);
	const char *insert = "INSERT INTO \"My \"\"Schema\"\".x\".\"versions; DROP TABLE x\" "
			     "VALUES ($1), ($2)";
	const char *params[] = { "cd34", "ef56" };
	CHECK(cr_pg_exec(pg, insert, 2, params) == 0);
	CHECK(cr_pg_stored_revisions(pg, "My \"Schema\".x", "versions; DROP TABLE x", &revs) ==
	      0);
	CHECK(revs.n == 2 && cr_strlist_has(&revs, "cd34") && cr_strlist_has(&revs, "ef56"));
	cr_strlist_free(&revs);
	/* The unqualified name follows search_path, as Alembic's does. */
	CHECK(exec(pg, "SET search_path TO \"My \"\"Schema\"\".x\"") == 0);
	CHECK(cr_pg_stored_revisions(pg, NULL, "alembic_version", &revs) == 0);
	CHECK(revs.n == 0);
	cr_pg_close(pg);
	cr_secrets_clear();
}

TEST(pg_live_tables)
{
	if (!live_url())
		return;
	struct cr_pg *pg = live_connect();
	if (!pg)
		return;
	struct cr_strlist t = { 0 };
	CHECK(cr_pg_tables(pg, &t) == 0);
	CHECK(t.n == 0);
	CHECK(exec(pg, "CREATE TABLE alembic_version (version_num varchar(32))") == 0);
	CHECK(exec(pg, "CREATE SCHEMA app") == 0);
	CHECK(exec(pg, "CREATE TABLE app.\"Big Table\" (id int)") == 0);
	CHECK(exec(pg, "CREATE TABLE events (id int) PARTITION BY RANGE (id)") == 0);
	CHECK(exec(pg, "CREATE TABLE events_1 PARTITION OF events FOR VALUES FROM (0) TO (9)") ==
	      0);
	/* Not tables of the application: */
	CHECK(exec(pg, "CREATE VIEW v AS SELECT 1 AS one") == 0);
	CHECK(exec(pg, "CREATE SEQUENCE s") == 0);
	CHECK(exec(pg, "CREATE TEMPORARY TABLE scratch (id int)") == 0);
	CHECK(cr_pg_tables(pg, &t) == 0);
	CHECK(t.n == 4);
	CHECK(cr_strlist_has(&t, "public.alembic_version"));
	CHECK(cr_strlist_has(&t, "app.Big Table"));
	CHECK(cr_strlist_has(&t, "public.events"));
	CHECK(cr_strlist_has(&t, "public.events_1"));
	cr_strlist_free(&t);
	cr_pg_close(pg);
	cr_secrets_clear();
}

TEST(pg_live_exec_reports_statement_and_sqlstate)
{
	if (!live_url())
		return;
	struct cr_pg *pg = live_connect();
	if (!pg)
		return;
	CHECK(exec(pg, "SELECT * FROM no_such_table") < 0);
	/* A notice goes through the log too (test_pg.py checks both lines). */
	CHECK(exec(pg, "DROP TABLE IF EXISTS no_such_table") == 0);
	cr_pg_close(pg);
	cr_secrets_clear();
}

TEST(pg_live_lock_contention)
{
	if (!live_url())
		return;
	struct cr_pg *a = live_connect(), *b = live_connect();
	if (!a || !b)
		goto out;
	const long long key = 0x6368617274LL;
	CHECK(cr_pg_lock(a, key, 0) == 0);
	double t0 = seconds();
	CHECK(cr_pg_lock(b, key, 1) == 1); /* still taken at b's deadline */
	double waited = seconds() - t0;
	CHECK(waited >= 0.95 && waited < 5);
	CHECK(cr_pg_unlock(a, key) == 0);
	CHECK(cr_pg_lock(b, key, 1) == 0);
	CHECK(cr_pg_lock(a, key, 0) == 1);
	CHECK(cr_pg_unlock(b, key) == 0);
	CHECK(cr_pg_unlock(b, key) < 0); /* not held any more: reported */
	/* The lock belongs to the session: a migration that dies releases it. */
	CHECK(cr_pg_lock(a, key, 0) == 0);
	cr_pg_close(a);
	a = NULL;
	CHECK(cr_pg_lock(b, key, 5) == 0);
out:
	cr_pg_close(a);
	cr_pg_close(b);
	cr_secrets_clear();
}
