/* alembic.ini as src/alembic.c reads it (ConfigParser's syntax, interpolation, the
 * project's section, script_location and version_locations), then the copy chartreuse
 * hands Alembic with sqlalchemy.url pointed at the database (cr_alembic_ini_copy).
 *
 * Oracle beyond the sanitizers: the copy must load again, as the same project. The
 * directory has a `migrations` subdirectory so that the usual script_location exists, and
 * a package `app` (app/__init__.py) for package:path locations such as app:../migrations
 * with prepend_sys_path = . to be found. */
#include "alembic.h"
#include "fuzz.h"

#include <sys/stat.h>

#define URL "postgresql://app:p%40ss%25w0rd@db:5432/app"

static void same_or_abort(const char *what, const char *a, const char *b)
{
	if ((a == NULL) != (b == NULL) || (a && strcmp(a, b) != 0)) {
		fprintf(stderr, "the ini copy reads back with another %s: %s / %s\n", what,
			a ? a : "(none)", b ? b : "(none)");
		abort();
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	fz_quiet();
	char *migrations = fz_path("migrations"), *app = fz_path("app");
	mkdir(migrations, 0700);
	mkdir(app, 0700);
	free(fz_write("app/__init__.py", "", 0));
	free(migrations);
	free(app);
	char *ini = fz_write("alembic.ini", data, size);
	struct cr_alembic_project p;
	if (cr_alembic_load(fz_dir(), "alembic.ini", NULL, &p) == 0) {
		struct cr_buf copy = { 0 };
		if (cr_alembic_ini_copy(&p, URL, &copy) == 0) {
			char *path = fz_write("copy.ini", copy.data, copy.len);
			struct cr_alembic_project q;
			if (cr_alembic_load(fz_dir(), "copy.ini", NULL, &q) != 0) {
				fprintf(stderr, "the ini copy does not load:\n%s\n", copy.data);
				abort();
			}
			same_or_abort("script_location", p.script_location, q.script_location);
			same_or_abort("version_table", p.version_table, q.version_table);
			same_or_abort("version_table_schema", p.version_table_schema,
				      q.version_table_schema);
			if (p.version_locations.n != q.version_locations.n)
				same_or_abort("version_locations", "n", "another n");
			cr_alembic_free(&q);
			free(path);
		}
		cr_buf_free(&copy);
		cr_alembic_free(&p);
	}
	/* Another section name, as -n / alembicSection gives one. */
	if (cr_alembic_load(fz_dir(), "alembic.ini", "second", &p) == 0)
		cr_alembic_free(&p);
	free(ini);
	return 0;
}
