/* alembic: the ini as ConfigParser reads it, revision scripts as Python runs them (or
 * "uncertain"), the graph and what is missing. Projects are written into temporary
 * directories. alembic_print_heads and alembic_write_ini_from_env serve
 * tests/test_alembic_heads.py and do nothing unless their environment variables are set. */
#include "revgraph.h"
#include "file.h"
#include "log.h"
#include "unit.h"
#include "util.h"

#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>


/* Writes dir/rel, creating the directories on the way. */
static void put(const char *dir, const char *rel, const char *text)
{
	char *path = xasprintf("%s/%s", dir, rel);
	for (char *s = strchr(path + strlen(dir) + 1, '/'); s; s = strchr(s + 1, '/')) {
		*s = '\0';
		mkdir(path, 0700);
		*s = '/';
	}
	FILE *f = fopen(path, "w");
	if (!f || fputs(text, f) < 0 || fclose(f) != 0) {
		perror(path);
		abort();
	}
	free(path);
}

static void put_rev(const char *dir, const char *name, const char *id, const char *down,
		    const char *more)
{
	char *rel = xasprintf("versions/%s", name);
	char *text = xasprintf("revision = '%s'\ndown_revision = %s\n%s", id, down, more);
	put(dir, rel, text);
	free(rel);
	free(text);
}

static char *slurp(const char *path)
{
	struct cr_buf b = { 0 };
	if (cr_read_file(path, &b) < 0)
		return NULL;
	return cr_buf_detach(&b, NULL);
}

/* An empty project: alembic.ini with script_location = the directory itself. */
static char *new_project(void)
{
	char *dir = unit_tmpdir("cr-alembic");
	put(dir, "alembic.ini", "[alembic]\nscript_location = %(here)s\n");
	put(dir, "versions/README", "not a script\n");
	return dir;
}

static int load_graph(const char *dir, struct cr_revgraph *g, char **why)
{
	struct cr_alembic_project p;
	if (cr_alembic_load(dir, "alembic.ini", NULL, &p) != 0)
		return -2;
	int rc = cr_revgraph_load(&p, g, why);
	cr_alembic_free(&p);
	return rc;
}

/* Loads a project made of one script with this text. */
static int load_script(const char *text, struct cr_revgraph *g, char **why)
{
	char *dir = new_project();
	put(dir, "versions/one.py", text);
	cr_log_mute(true);
	int rc = load_graph(dir, g, why);
	cr_log_mute(false);
	unit_drop_dir(dir);
	return rc;
}

static const char *joined(const struct cr_strlist *l)
{
	static char buf[1024];
	buf[0] = '\0';
	for (size_t i = 0; i < l->n; i++) {
		if (i)
			strcat(buf, ",");
		strncat(buf, l->items[i], sizeof(buf) - strlen(buf) - 2);
	}
	return buf;
}

/* Adds a stub revision for every id of the comma-separated list (so that the script under
 * test links). */
static void put_stubs(const char *dir, const char *ids)
{
	for (const char *s = ids; *s;) {
		size_t n = strcspn(s, ",");
		char *id = xstrndup(s, n), *name = xasprintf("stub_%s.py", id);
		put_rev(dir, name, id, "None", "");
		free(name);
		free(id);
		s += n + (s[n] == ',');
	}
}

/* The script must read as the revision `id`: down list, depends_on and labels joined. */
static void check_script(const char *text, const char *id, const char *down, const char *deps,
			 const char *labels)
{
	char *dir = new_project();
	put(dir, "versions/one.py", text);
	put_stubs(dir, down);
	put_stubs(dir, deps);
	struct cr_revgraph g;
	char *why = NULL;
	int rc = load_graph(dir, &g, &why);
	const struct cr_revision *r = NULL;
	for (size_t i = 0; rc == 0 && i < g.n; i++)
		if (strstr(g.revs[i].path, "/one.py"))
			r = &g.revs[i];
	CHECK(rc == 0 && r);
	if (r) {
		CHECK_STR(r->id, id);
		CHECK_STR(joined(&r->down), down);
		CHECK_STR(joined(&r->depends_on), deps);
		CHECK_STR(joined(&r->branch_labels), labels);
	} else {
		fprintf(stderr, "  rc %d, why: %s\n  script: %s\n", rc, why ? why : "-", text);
	}
	free(why);
	cr_revgraph_free(&g);
	unit_drop_dir(dir);
}

/* The script must be "uncertain", with a reason that contains `reason`. */
static void check_uncertain(const char *text, const char *reason)
{
	struct cr_revgraph g;
	char *why = NULL;
	int rc = load_script(text, &g, &why);
	CHECK(rc == 1);
	CHECK(why && strstr(why, reason));
	if (rc != 1 || !why || !strstr(why, reason))
		fprintf(stderr, "  rc %d, why: %s\n  script: %s\n", rc, why ? why : "-", text);
	CHECK(g.n == 0 && g.revs == NULL);
	free(why);
	cr_revgraph_free(&g);
}

/* ---- ini ------------------------------------------------------------------------------ */

TEST(alembic_ini_follows_configparser)
{
	char *dir = unit_tmpdir("cr-alembic");
	put(dir, "alembic.ini",
	    "# a comment\n"
	    "[DEFAULT]\n"
	    "base = %(here)s/app\n"
	    "\n"
	    "[alembic]\n"
	    "; another comment\n"
	    "Script_Location: %(base)s/migrations\n"
	    "version_locations = %(base)s/v1\n"
	    "    # a comment inside the value\n"
	    "\n"
	    "    %(here)s/v2,%(here)s/v3\n"
	    "version_table = ver%%sion\n"
	    "  [deeper than the option: a continuation line]\n"
	    "recursive_version_locations = true\n");
	put(dir, "app/migrations/env.py", "");
	struct cr_alembic_project p;
	CHECK(cr_alembic_load(dir, "alembic.ini", NULL, &p) == 0);
	char *want = xasprintf("%s/app/migrations", dir);
	CHECK_STR(p.script_location, want);
	free(want);
	/* legacy split: spaces and commas only, so the line break stays inside a path */
	CHECK(p.version_locations.n == 2);
	if (p.version_locations.n == 2) {
		want = xasprintf("%s/app/v1\n\n%s/v2", dir, dir);
		CHECK_STR(p.version_locations.items[0], want);
		free(want);
		want = xasprintf("%s/v3", dir);
		CHECK_STR(p.version_locations.items[1], want);
		free(want);
	}
	CHECK_STR(p.version_table, "ver%sion\n[deeper than the option: a continuation line]");
	CHECK(p.version_table_schema == NULL);
	CHECK(p.recursive_version_locations);
	CHECK(p.unsupported == NULL);
	cr_alembic_free(&p);
	unit_drop_dir(dir);
}

static void check_locations(const char *options, const char *want_rel)
{
	char *dir = unit_tmpdir("cr-alembic");
	char *ini = xasprintf("[alembic]\nscript_location = .\n%s", options);
	put(dir, "alembic.ini", ini);
	struct cr_alembic_project p;
	CHECK(cr_alembic_load(dir, "alembic.ini", NULL, &p) == 0);
	struct cr_buf want = { 0 };
	for (const char *s = want_rel; *s;) {
		size_t n = strcspn(s, "|");
		cr_buf_printf(&want, "%s%s%s%.*s", want.len ? "," : "", dir, n ? "/" : "",
			      (int)n, s);
		s += n + (s[n] == '|');
	}
	CHECK_STR(joined(&p.version_locations), want.data);
	cr_buf_free(&want);
	cr_alembic_free(&p);
	free(ini);
	unit_drop_dir(dir);
}

TEST(alembic_ini_version_location_separators)
{
	check_locations("", "versions");
	check_locations("version_locations =\n", "versions");
	check_locations("version_locations = a b,  c\n", "a|b|c");
	check_locations("version_locations = a ,b\n", "a||b"); /* "" is the directory */
	check_locations("version_locations = a:b c\nversion_path_separator = os\n", "a|b c");
	check_locations("version_locations = a;b c\nversion_path_separator = ;\n", "a|b c");
	check_locations("version_locations = a b\nversion_path_separator = space\n", "a|b");
	check_locations("version_locations = a\n  b c\nversion_path_separator = newline\n",
			"a|b c");
	check_locations("version_locations = a;b c\npath_separator = ;\n"
			"version_path_separator = space\n", "a|b c");
}

TEST(alembic_ini_absolute_locations_are_normalised)
{
	char *dir = unit_tmpdir("cr-alembic");
	put(dir, "alembic.ini", "[alembic]\nscript_location = %(here)s/./a/../\n"
				"version_locations = /abs//x/./y/..:rel\npath_separator = os\n");
	struct cr_alembic_project p;
	CHECK(cr_alembic_load(dir, "alembic.ini", NULL, &p) == 0);
	CHECK_STR(p.script_location, dir);
	char *want = xasprintf("/abs/x,%s/rel", dir);
	CHECK_STR(joined(&p.version_locations), want);
	free(want);
	cr_alembic_free(&p);
	unit_drop_dir(dir);
}

static void check_ini_error(const char *ini, const char *section)
{
	char *dir = unit_tmpdir("cr-alembic");
	if (ini)
		put(dir, "alembic.ini", ini);
	struct cr_alembic_project p;
	cr_log_mute(true);
	int rc = cr_alembic_load(dir, "alembic.ini", section, &p);
	cr_log_mute(false);
	CHECK(rc == -1);
	if (rc != -1)
		fprintf(stderr, "  accepted: %s\n", ini ? ini : "(no file)");
	CHECK(p.ini_path == NULL && p.script_location == NULL);
	cr_alembic_free(&p);
	unit_drop_dir(dir);
}

TEST(alembic_ini_errors)
{
	check_ini_error(NULL, NULL);
	check_ini_error("[other]\nscript_location = .\n", NULL);
	check_ini_error("[alembic]\nscript_location = .\n", "second");
	check_ini_error("[alembic]\nsqlalchemy.url = x\n", NULL);
	check_ini_error("[alembic]\nscript_location = %(here)s/nowhere\n", NULL);
	check_ini_error("[alembic]\nscript_location =\n", NULL);
	check_ini_error("script_location = .\n[alembic]\n", NULL);
	check_ini_error("[alembic]\nscript_location = .\nScript_location = .\n", NULL);
	check_ini_error("[alembic]\nscript_location = .\n[alembic]\n", NULL);
	check_ini_error("[alembic]\nscript_location = .\njust words\n", NULL);
	check_ini_error("[alembic]\nscript_location = 100%\n", NULL);
	check_ini_error("[alembic]\nscript_location = %(nope)s\n", NULL);
	check_ini_error("[alembic]\nscript_location = %(a)s\na = %(b)s\nb = %(a)s\n", NULL);
	check_ini_error("[alembic]\nscript_location = .\nversion_locations = a\n"
			"version_path_separator = comma\n", NULL);
}

TEST(alembic_named_section_and_relative_config)
{
	char *dir = unit_tmpdir("cr-alembic");
	put(dir, "conf/db.ini", "[alembic]\nscript_location = nowhere\n\n"
				"[second]\nscript_location = mig\nversion_table_schema = s\n");
	put(dir, "mig/versions/x.txt", "");
	struct cr_alembic_project p;
	CHECK(cr_alembic_load(dir, "conf/../conf/db.ini", "second", &p) == 0);
	char *want = xasprintf("%s/conf/db.ini", dir);
	CHECK_STR(p.ini_path, want);
	free(want);
	want = xasprintf("%s/mig", dir); /* relative to where Alembic runs, not to the ini */
	CHECK_STR(p.script_location, want);
	free(want);
	CHECK_STR(p.section, "second");
	CHECK_STR(p.version_table, "alembic_version");
	CHECK_STR(p.version_table_schema, "s");
	cr_alembic_free(&p);
	unit_drop_dir(dir);
}

TEST(alembic_sourceless_is_left_to_alembic)
{
	char *dir = unit_tmpdir("cr-alembic");
	put(dir, "alembic.ini", "[alembic]\nscript_location = .\nsourceless = true\n");
	struct cr_alembic_project p;
	CHECK(cr_alembic_load(dir, "alembic.ini", NULL, &p) == 0);
	CHECK(p.unsupported && strstr(p.unsupported, "sourceless"));
	struct cr_revgraph g;
	char *why = NULL;
	CHECK(cr_revgraph_load(&p, &g, &why) == 1);
	CHECK(why && strstr(why, "sourceless"));
	free(why);
	cr_revgraph_free(&g);
	cr_alembic_free(&p);
	unit_drop_dir(dir);
}

/* Writes the files named in `files` (space-separated, relative; "x/" makes a folder). */
static void put_files(const char *dir, const char *files)
{
	for (const char *f = files; *f;) {
		size_t n = strcspn(f, " ");
		char *rel = f[n - 1] == '/' ? xasprintf("%.*skeep", (int)n, f) : xstrndup(f, n);
		put(dir, rel, "");
		free(rel);
		f += n + (f[n] == ' ');
	}
}

/* "a,b" -> "<dir>/a,<dir>/b" */
static char *under(const char *dir, const char *rels)
{
	struct cr_buf b = { 0 };
	for (const char *s = rels; *s;) {
		size_t n = strcspn(s, ",");
		cr_buf_printf(&b, "%s%s/%.*s", b.len ? "," : "", dir, (int)n, s);
		s += n + (s[n] == ',');
	}
	return cr_buf_detach(&b, NULL);
}

/* A project whose [alembic] section holds `options`, with `files`: script_location must be
 * <dir>/<want> and the version locations want_versions (NULL: <want>/versions), or, with
 * want NULL, the project unsupported for a reason containing `reason`. */
static void check_package(const char *options, const char *files, const char *want,
			  const char *want_versions, const char *reason)
{
	char *dir = unit_tmpdir("cr-alembic");
	char *ini = xasprintf("[alembic]\n%s", options);
	put(dir, "alembic.ini", ini);
	put_files(dir, files);
	struct cr_alembic_project p;
	CHECK(cr_alembic_load(dir, "alembic.ini", NULL, &p) == 0);
	if (want) {
		char *abs = under(dir, want);
		CHECK_STR(p.script_location, abs);
		free(abs);
		char *versions = want_versions ? xstrdup(want_versions)
					       : xasprintf("%s/versions", want);
		abs = under(dir, versions);
		CHECK_STR(joined(&p.version_locations), abs);
		free(abs);
		free(versions);
		CHECK(p.unsupported == NULL);
		if (p.unsupported)
			fprintf(stderr, "  unsupported: %s\n", p.unsupported);
	} else {
		bool ok = p.unsupported && strstr(p.unsupported, reason) &&
			  strstr(p.unsupported, "package resource");
		CHECK(ok);
		if (!ok)
			fprintf(stderr, "  options: %s  unsupported: %s\n", options,
				p.unsupported ? p.unsupported : "(none)");
	}
	cr_alembic_free(&p);
	free(ini);
	unit_drop_dir(dir);
}

TEST(alembic_package_locations_found_without_doubt)
{
	const char *app = "myapp/__init__.py myapp/migrations/";
	check_package("script_location = myapp:migrations\nprepend_sys_path = .\n", app,
		      "myapp/migrations", NULL, NULL);
	/* the legacy split of prepend_sys_path: spaces, commas, colons; entries that do not
	 * exist are skipped, as Python does */
	check_package("script_location = myapp:migrations\nprepend_sys_path = a, b:.\n", app,
		      "myapp/migrations", NULL, NULL);
	check_package("script_location = myapp:migrations\nprepend_sys_path = a:.\n"
		      "path_separator = os\n", app, "myapp/migrations", NULL, NULL);
	check_package("script_location = a.b:mig\nprepend_sys_path = src\n",
		      "src/a/__init__.py src/a/b/__init__.py src/a/b/mig/", "src/a/b/mig", NULL,
		      NULL);
	check_package("script_location = a:x:y\nprepend_sys_path = %(here)s\n",
		      "a/__init__.py a/x/y/", "a/x/y", NULL, NULL);
	/* pathlib's "/": an absolute part replaces what comes before it */
	check_package("script_location = a:%(here)s/elsewhere\nprepend_sys_path = .\n",
		      "a/__init__.py elsewhere/", "elsewhere", NULL, NULL);
	check_package("script_location = mig\nprepend_sys_path = .\n"
		      "version_locations = a:v1 a:v2 mig/versions\n",
		      "a/__init__.py mig/", "mig", "a/v1,a/v2,mig/versions", NULL);
}

TEST(alembic_package_locations_in_doubt_are_left_to_alembic)
{
	const char *app = "myapp/__init__.py myapp/migrations/";
	check_package("script_location = myapp:migrations\n", app, NULL, NULL,
		      "without prepend_sys_path");
	check_package("script_location = email:migrations\nprepend_sys_path = .\n",
		      "email/__init__.py email/migrations/", NULL, NULL,
		      "email may name a module the alembic command has already imported");
	check_package("script_location = _app:migrations\nprepend_sys_path = .\n",
		      "_app/__init__.py _app/migrations/", NULL, NULL, "may name a module");
	check_package("script_location = sqlalchemy:migrations\nprepend_sys_path = .\n",
		      "sqlalchemy/__init__.py", NULL, NULL, "may name a module");
	check_package("script_location = my-app:migrations\nprepend_sys_path = .\n", "", NULL,
		      NULL, "my-app is not a package name");
	check_package("script_location = :migrations\nprepend_sys_path = .\n", "", NULL, NULL,
		      "is not a package name");
	check_package("script_location = myapp:migrations\nprepend_sys_path = .\n", "", NULL,
		      NULL, "myapp is not under prepend_sys_path");
	check_package("script_location = myapp:migrations\nprepend_sys_path = .\n",
		      "myapp.py myapp/migrations/", NULL, NULL, "myapp is a module");
	check_package("script_location = myapp:migrations\nprepend_sys_path = .\n",
		      "myapp/migrations/", NULL, NULL, "myapp has no __init__.py");
	check_package("script_location = myapp:migrations\nprepend_sys_path = . b\n",
		      "myapp/__init__.py myapp/migrations/ b/myapp.py", NULL, NULL,
		      "found in several prepend_sys_path folders");
	check_package("script_location = myapp:migrations\nprepend_sys_path = app.zip .\n",
		      "app.zip myapp/__init__.py myapp/migrations/", NULL, NULL, "zip");
	check_package("script_location = a.b:migrations\nprepend_sys_path = .\n",
		      "a/__init__.py a/b/migrations/", NULL, NULL, "a.b is not a regular package");
	check_package("script_location = myapp:migrations\nprepend_sys_path = a b\n"
		      "path_separator = os\n", "a/myapp/__init__.py a/myapp/migrations/", NULL,
		      NULL, "is split one way by Alembic 1.8 and another");
	check_package("script_location = mig\nprepend_sys_path = .\nversion_locations = x:v\n",
		      "mig/", NULL, NULL, "version location x:v");
}

TEST(alembic_package_init_that_moves_the_package_is_in_doubt)
{
	static const char *const inits[] = {
		"__path__ = __import__('pkgutil').extend_path(__path__, __name__)\n",
		"import sys\nsys.modules[__name__] = object()\n",
		"__spec__ = None\n",
	};
	for (size_t i = 0; i < sizeof(inits) / sizeof(*inits); i++) {
		char *dir = unit_tmpdir("cr-alembic");
		put(dir, "alembic.ini", "[alembic]\nscript_location = a.b:migrations\n"
					"prepend_sys_path = .\n");
		put(dir, "a/__init__.py", i ? "" : inits[i]);
		put(dir, "a/b/__init__.py", inits[i]);
		put(dir, "a/b/migrations/versions/x.txt", "");
		struct cr_alembic_project p;
		CHECK(cr_alembic_load(dir, "alembic.ini", NULL, &p) == 0);
		CHECK(p.unsupported && strstr(p.unsupported, "mentions"));
		cr_alembic_free(&p);
		unit_drop_dir(dir);
	}
}

TEST(alembic_package_location_that_does_not_exist_is_an_error)
{
	char *dir = unit_tmpdir("cr-alembic");
	put(dir, "alembic.ini", "[alembic]\nscript_location = a:nowhere\nprepend_sys_path = .\n");
	put(dir, "a/__init__.py", "");
	struct cr_alembic_project p;
	cr_log_mute(true);
	CHECK(cr_alembic_load(dir, "alembic.ini", NULL, &p) == -1);
	cr_log_mute(false);
	CHECK(p.script_location == NULL);
	unit_drop_dir(dir);
}

/* ---- revision scripts ----------------------------------------------------------------- */

TEST(alembic_script_values)
{
	check_script("revision = 'ab12'\ndown_revision = None\n", "ab12", "", "", "");
	check_script("revision = \"ab12\"\ndown_revision = r'x1'\nbranch_labels = u'lab'\n"
		     "depends_on = ['d1', \"d2\",]\n",
		     "ab12", "x1", "d1,d2", "lab");
	check_script("revision = '''ab12'''\ndown_revision = \"\"\"x\"\"\"\n", "ab12", "x", "",
		     "");
	check_script("revision = 'a'\ndown_revision = ()\nbranch_labels = []\n", "a", "", "",
		     "");
	check_script("revision = 'a'\ndown_revision = 'x', 'y'\n", "a", "x,y", "", "");
	check_script("revision = 'a'\ndown_revision = ('x')\n", "a", "x", "", "");
	check_script("revision = 'a'; down_revision = 'x';\n", "a", "x", "", "");
	check_script("revision = \\\n    'a'\ndown_revision = None  # the first\n", "a", "", "",
		     "");
	check_script("revision = 'a'\r\ndown_revision = (\r\n  'x',\r\n  'y')\r\n", "a", "x,y",
		     "", "");
	check_script("\xef\xbb\xbfrevision = 'a'\ndown_revision = None\n", "a", "", "", "");
	check_script("revision = r'a\\b'\ndown_revision = None\n", "a\\b", "", "", "");
}

TEST(alembic_script_type_annotations)
{
	check_script("from typing import Sequence, Union\n\n"
		     "revision: str = 'm1'\n"
		     "down_revision: Union[str, Sequence[str], None] = (\n"
		     "    'a1',  # the first branch\n"
		     "    # a comment line inside the tuple\n"
		     "    'b1',\n"
		     ")\n"
		     "branch_labels: Union[str, Sequence[str], None] = None\n"
		     "depends_on: Union[str, Sequence[str], None] = 'c1'\n",
		     "m1", "a1,b1", "c1", "");
	check_uncertain("revision: str\ndown_revision = None\n", "revision is set");
}

TEST(alembic_script_ignores_docstrings_comments_and_bodies)
{
	check_script("\"\"\"create things\n\nRevision ID: zzz9\nRevises: yyy8\n\"\"\"\n"
		     "revision = 'real1'\ndown_revision = 'real0'\n",
		     "real1", "real0", "", "");
	check_script("# revision = 'fake'\nrevision = 'a'\n#down_revision = 'fake'\n"
		     "down_revision = None\n",
		     "a", "", "", "");
	check_script("'''\nrevision = \"fake\"\ndown_revision = 'f'\n'''\n"
		     "x = \"\"\"revision = 'fake2' \\\"\"\" \"\"\"\n"
		     "revision = 'a'\ndown_revision = None\n",
		     "a", "", "", "");
	check_script("revision = 'a'\ndown_revision = None\n\n"
		     "def upgrade():\n    revision = 'local'\n    down_revision = 1\n\n"
		     "async def f(): revision = 2\n"
		     "class K:\n    x = 1\n    def m(self, revision=None):\n"
		     "        return revision\n"
		     "@decorate(revision='kw')\ndef g():\n    pass\n"
		     "op.revision = 'attribute'\n"
		     "print(f(depends_on='keyword'))\n",
		     "a", "", "", "");
	/* function bodies run only when called, and without `global` rebind only locals;
	 * nonlocal never reaches the module */
	check_script("revision = 'a'\ndown_revision = None\n"
		     "def f():\n    global other\n    other = revision = 1\n"
		     "    class K:\n        depends_on = 2\n"
		     "    def g():\n        nonlocal revision\n        revision = 3\n"
		     "    for branch_labels in []:\n        pass\n"
		     "    return f\"{revision}\"\n"
		     "f()\n",
		     "a", "", "", "");
	check_script("import sqlalchemy as sa\nfrom alembic import op\n"
		     "if TYPE_CHECKING:\n    from x import y\n"
		     "revision = 'a'\ndown_revision = None\n",
		     "a", "", "", "");
}

/* The script, after `revision = 'a'` and `down_revision = None`, must be uncertain. */
static void check_rebinding(const char *code, const char *reason)
{
	char *text = xasprintf("revision = 'a'\ndown_revision = None\n%s", code);
	check_uncertain(text, reason);
	free(text);
}

TEST(alembic_script_code_that_runs_at_import_is_uncertain)
{
	/* class bodies run at import */
	check_rebinding("class K:\n    global revision\n    revision = 'b'\n",
			"revision is set or used in a class body, which runs at import");
	check_rebinding("class K:\n    revision = 'attr'\n", "in a class body");
	check_rebinding("class K: revision = 'attr'\n", "in a class body");
	check_rebinding("class K:\n    if x:\n        globals()['revision'] = 'b'\n",
			"globals can change module variables (used in a class body");
	check_rebinding("class K((revision := 'b').__class__):\n    pass\n",
			"in a class's bases");
	check_rebinding("class depends_on:\n    pass\n", "depends_on is rebound by a class");
	/* decorators, default values and annotations run at import */
	check_rebinding("@(lambda f: globals().update(revision='b') or f)\ndef g():\n    pass\n",
			"globals can change module variables (used in a decorator");
	check_rebinding("@register(revision := 'b')\nclass K:\n    pass\n",
			"revision is set or used in a decorator");
	check_rebinding("def f(x=(revision := 'b')):\n    pass\n", "in a def's defaults");
	check_rebinding("async def f(x: (down_revision := None)) -> None: pass\n",
			"down_revision is set or used in a def's defaults or annotations");
	check_rebinding("def f(\n    x=vars(),\n):\n    pass\n", "vars can change");
	check_rebinding("def revision():\n    pass\n", "revision is rebound by a def");
	check_rebinding("if True:\n    def __getattr__(name):\n        return 'b'\n",
			"__getattr__");
	check_rebinding("f = lambda x=(revision := 'b'): x\n", "revision is set or used");
	/* global in a function that may be called at import */
	check_rebinding("def f():\n    global revision\n    revision = 'b'\nf()\n",
			"a function declares revision global");
	check_rebinding("def f(): global x, branch_labels; branch_labels = 'b'\n",
			"a function declares branch_labels global");
	check_rebinding("def f():\n    def g():\n        if x:\n            global depends_on\n",
			"a function declares depends_on global");
	check_rebinding("def f():\n    globals()['revision'] = 'b'\nf()\n",
			"globals can change module variables (used in a function");
	check_rebinding("def f():\n    exec('revision = 1')\n", "exec can change");
	check_rebinding("def f():\n    sys._getframe().f_globals['revision'] = 2\n",
			"f_globals can change");
	/* every other statement that binds a name */
	check_rebinding("print(revision := 'b')\n", "revision is set or used");
	check_rebinding("(revision := 'b')\n", "revision is set or used");
	check_rebinding("[revision := c for c in 'b']\n", "revision is set or used");
	check_rebinding("with open('x') as revision:\n    pass\n",
			"revision is set or used in a block that runs at import");
	check_rebinding("import os as revision\n", "revision is set or used");
	check_rebinding("from os import path as depends_on\n", "depends_on is set or used");
	check_rebinding("exec('revision = 1')\n", "exec can change module variables");
	check_rebinding("a, revision = 1, 'b'\n", "revision is set or used");
	check_rebinding("[revision] = ['b']\n", "revision is set or used");
	check_rebinding("del revision\n", "revision is set or used");
	check_rebinding("type revision = str\n", "revision is set or used");
	check_rebinding("try:\n    pass\nfinally:\n    revision = 'b'\n",
			"revision is set or used in a block that runs at import");
	check_rebinding("while x:\n    down_revision = 'b'\n", "down_revision is set or used");
	check_rebinding("match x:\n    case revision:\n        pass\n", "revision is set or used");
	check_rebinding("vars()['revision'] = 'b'\n", "vars can change");
	check_rebinding("locals()['revision'] = 'b'\n", "locals can change");
	check_rebinding("setattr(m, 'revision', 'b')\n", "setattr can change");
	check_rebinding("delattr(m, 'revision')\n", "delattr can change");
	check_rebinding("m.__dict__['revision'] = 'b'\n", "__dict__ can change");
	check_rebinding("eval('0')\n", "eval can change");
	check_rebinding("(lambda: 0).__globals__['revision'] = 'b'\n", "__globals__ can change");
	check_rebinding("sys._getframe().f_locals['revision'] = 'b'\n", "f_locals can change");
	check_rebinding("sys.modules[__name__].revision = 'b'\n", "modules can change");
	check_rebinding("__getattr__ = lambda name: 'b'\n", "__getattr__ can change");
	check_rebinding("x = f'{(revision := \"b\")}'\n",
			"revision is set or used in an f-string's replacement field");
	check_rebinding("x = f'''{\n  f\"{globals()}\"}'''\n", "globals can change");
	/* Python 3.12 nests same quotes: the assignment after the f-string is code */
	check_rebinding("x = f\"{\"#\"}\"; revision = 'b'\n", "revision is assigned twice");
	/* what Python refuses */
	check_rebinding("  x = 1\n", "unexpected indentation");
	check_rebinding("if x:\nrevision = 'b'\n", "no indented body");
	check_rebinding("if x:\n", "no indented body");
	check_rebinding("x = f'{1:'\n", "not closed");
	check_rebinding("x = f'a}b'\n", "single '}'");
	check_rebinding("x = f'{\\x}'\n", "backslash");
	check_rebinding("x = f'{)}'\n", "closes a bracket");
	struct cr_buf deep = { 0 };
	for (int i = 0; i < 100; i++)
		cr_buf_printf(&deep, "%*sif x:\n", i, "");
	cr_buf_printf(&deep, "%*spass\n", 100, "");
	check_rebinding(deep.data, "nest too deeply");
	cr_buf_free(&deep);
}

/* PEP 701 f-strings (Python 3.12) read right: what follows them is read as code. */
TEST(alembic_script_fstrings)
{
	static const char *const fstrings[] = {
		"f\"{f'{x}'}\"",
		"f\"{x!r:>{w}}\"",
		"f\"{x!r}\" f'{x=}' f'{x = !s:^10}' f\"{x!=y}\"",
		"f'''{x:{w}.{p}}''' F\"\"\"{'''\"'''}\"\"\"",
		"f\"{\"a\" + f\"{x}\" + f\"{f\"{y}\"}\"}\"",
		"rf\"\\N{x}\" f\"\\N{BULLET} {x}\" f\"\\{x}\" f'{{revision}}'",
		"f\"{x:'>10}\" f'{x:\"^5}' f\"{x:{{w}}}\"",
		"f\"{ {'a': 1}['a'] }\" f'{(lambda: 1)()}' f'{a[1:2]}'",
		"f\"{x # revision = 'fake'\n}\"",
		"f\"\"\"{\n  x\n}\n\"\"\"",
		"(Rb'{', BR\"}\", '{' + r\"}\")",
	};
	for (size_t i = 0; i < sizeof(fstrings) / sizeof(*fstrings); i++) {
		char *text = xasprintf("s = %s\nrevision = 'a'\ndown_revision = 'b'\n",
				       fstrings[i]);
		check_script(text, "a", "b", "", "");
		free(text);
	}
}

TEST(alembic_script_uncertain_values)
{
	check_uncertain("revision = 'ab' + 'cd'\ndown_revision = None\n", "not a string");
	check_uncertain("revision = 'ab' 'cd'\ndown_revision = None\n", "not a string");
	check_uncertain("revision = f'ab{x}'\ndown_revision = None\n", "not a string");
	check_uncertain("revision = b'ab'\ndown_revision = None\n", "not a string");
	check_uncertain("revision = 'a\\x41'\ndown_revision = None\n", "not a string");
	check_uncertain("revision = ''\ndown_revision = None\n", "not a string");
	check_uncertain("revision = REV\ndown_revision = None\n", "not a string");
	check_uncertain("revision = make()\ndown_revision = None\n", "not a string");
	check_uncertain("revision = 'a'\ndown_revision = ('x', None)\n", "down_revision is not");
	check_uncertain("revision = 'a'\ndown_revision = ('x', ('y',))\n", "down_revision is not");
	check_uncertain("revision = ('a',)\ndown_revision = None\n", "revision is not a string");
	check_uncertain("revision = None\ndown_revision = None\n", "revision is not a string");
	check_uncertain("revision = 'a'\ndown_revision = None\nrevision = 'b'\n",
			"revision is assigned twice");
	check_uncertain("revision = down_revision = 'a'\n", "not a string");
	check_uncertain("revision, down_revision = 'a', None\n", "revision is set");
	check_uncertain("revision = 'a'\ndown_revision = None\nrevision += 'b'\n",
			"revision is set");
	check_uncertain("if x:\n    revision = 'a'\nelse:\n    revision = 'b'\n"
			"down_revision = None\n",
			"revision is set");
	check_uncertain("for revision in 'ab': pass\ndown_revision = None\n", "revision is set");
	check_uncertain("revision = 'a'\ndown_revision = None\nglobals()['revision'] = 'b'\n",
			"globals");
	check_uncertain("revision = 'a'\ndown_revision = None\nfrom x import *\n",
			"star import");
	check_uncertain("from x import revision\ndown_revision = None\n", "revision is set");
	check_uncertain("revision = 'a'\ndown_revision = None\ndef __getattr__(n):\n    pass\n",
			"__getattr__");
	check_uncertain("revision = 'a@b'\ndown_revision = None\n", "refuses");
	check_uncertain("revision = 'a\ndown_revision = None\n", "not terminated");
	check_uncertain("revision = 'a'\ndown_revision = None\nx = '''\n", "not terminated");
}

TEST(alembic_script_without_the_variables)
{
	/* Alembic imports every *.py in versions/ and fails on one without them */
	check_uncertain("import os\n\ndef helper():\n    return 1\n", "no module-level revision");
	check_uncertain("revision = 'a'\n", "no module-level down_revision");
	/* ...except the legacy "<hex>.py" naming */
	char *dir = new_project();
	put(dir, "versions/ab12.py", "down_revision = None\n");
	struct cr_revgraph g;
	char *why = NULL;
	CHECK(load_graph(dir, &g, &why) == 0);
	CHECK(g.n == 1 && strcmp(g.revs[0].id, "ab12") == 0);
	cr_revgraph_free(&g);
	unit_drop_dir(dir);
}

/* ---- which files ---------------------------------------------------------------------- */

TEST(alembic_which_files_are_scripts)
{
	char *dir = new_project();
	put_rev(dir, "a.py", "a", "None", "");
	put_rev(dir, "sub/b.py", "b", "'a'", "");
	put_rev(dir, "sub/deeper/c.py", "c", "'b'", "");
	put_rev(dir, "__pycache__/d.py", "d", "'c'", "");
	put_rev(dir, ".hidden.py", "h", "'a'", "");
	put(dir, "versions/__init__.py", "");
	put(dir, "versions/__init__old.py", "");
	put(dir, "versions/.#a.py", "emacs lock");
	put(dir, "versions/notes.txt", "revision = 'txt'\n");
	put(dir, "versions/a.pyc", "");
	struct cr_revgraph g;
	char *why = NULL;
	CHECK(load_graph(dir, &g, &why) == 0);
	CHECK_STR(joined(&g.heads), "h"); /* .hidden.py is loaded, as Alembic does */
	cr_revgraph_free(&g);

	put(dir, "alembic.ini", "[alembic]\nscript_location = %(here)s\n"
				"recursive_version_locations = true\n");
	CHECK(load_graph(dir, &g, &why) == 0);
	CHECK_STR(joined(&g.heads), "c,h");
	cr_revgraph_free(&g);

	/* the same file through two locations and a symlink counts once */
	char *link = xasprintf("%s/versions/again.py", dir), *target = xasprintf("%s/versions/a.py", dir);
	CHECK(symlink(target, link) == 0);
	put(dir, "alembic.ini", "[alembic]\nscript_location = .\n"
				"version_locations = %(here)s/versions %(here)s/./versions "
				"%(here)s/absent\n");
	CHECK(load_graph(dir, &g, &why) == 0);
	CHECK(g.n == 2);
	cr_revgraph_free(&g);
	free(link);
	free(target);
	unit_drop_dir(dir);
}

TEST(alembic_missing_versions_directory_is_an_empty_history)
{
	char *dir = unit_tmpdir("cr-alembic");
	put(dir, "alembic.ini", "[alembic]\nscript_location = %(here)s\n");
	struct cr_revgraph g;
	char *why = NULL;
	CHECK(load_graph(dir, &g, &why) == 0);
	CHECK(g.n == 0 && g.heads.n == 0);
	struct cr_strlist stored = { 0 }, missing;
	CHECK(cr_revgraph_missing(&g, &stored, &missing) == 0 && missing.n == 0);
	cr_strlist_add(&stored, "x");
	cr_log_mute(true);
	CHECK(cr_revgraph_missing(&g, &stored, &missing) == -1);
	cr_log_mute(false);
	cr_strlist_free(&stored);
	cr_revgraph_free(&g);
	unit_drop_dir(dir);
}

/* ---- the graph ------------------------------------------------------------------------ */

static void check_graph_error(const char *const *revs)
{
	char *dir = new_project();
	for (size_t i = 0; revs[i]; i += 4)
		put_rev(dir, revs[i], revs[i + 1], revs[i + 2], revs[i + 3]);
	struct cr_revgraph g;
	char *why = NULL;
	cr_log_mute(true);
	int rc = load_graph(dir, &g, &why);
	cr_log_mute(false);
	CHECK(rc == -1);
	if (rc != -1)
		fprintf(stderr, "  accepted a graph starting with %s\n", revs[0]);
	CHECK(g.n == 0 && g.links == NULL);
	free(why);
	cr_revgraph_free(&g);
	unit_drop_dir(dir);
}

TEST(alembic_graph_errors)
{
	static const char *const unknown_down[] = { "a.py", "a", "None", "",
						    "c.py", "c", "'b'", "", NULL };
	static const char *const cycle[] = { "a.py", "a", "None", "", "b.py", "b", "'c'", "",
					     "c.py", "c", "'b'", "", NULL };
	static const char *const self[] = { "a.py", "a", "'a'", "", NULL };
	static const char *const dep_cycle[] = { "a.py", "a", "None", "depends_on = 'b'\n",
						 "b.py", "b", "'a'", "", NULL };
	static const char *const twice[] = { "a.py", "a", "None", "", "b.py", "a", "None", "",
					     NULL };
	static const char *const unknown_dep[] = { "a.py", "a", "None", "depends_on = 'zz'\n",
						   NULL };
	static const char *const label_twice[] = { "a.py", "a", "None", "branch_labels = 'x'\n",
						   "b.py", "b", "None", "branch_labels = 'x'\n",
						   NULL };
	static const char *const label_is_id[] = { "a.py", "a", "None", "branch_labels = 'b'\n",
						   "b.py", "b", "None", "", NULL };
	check_graph_error(unknown_down);
	check_graph_error(cycle);
	check_graph_error(self);
	check_graph_error(dep_cycle);
	check_graph_error(twice);
	check_graph_error(unknown_dep);
	check_graph_error(label_twice);
	check_graph_error(label_is_id);
}

TEST(alembic_graph_down_revision_as_branch_label_is_left_to_alembic)
{
	char *dir = new_project();
	put_rev(dir, "a.py", "a", "None", "branch_labels = ('lab',)\n");
	put_rev(dir, "b.py", "b", "'lab'", "");
	struct cr_revgraph g;
	char *why = NULL;
	CHECK(load_graph(dir, &g, &why) == 1);
	CHECK(why && strstr(why, "branch label"));
	free(why);
	cr_revgraph_free(&g);
	unit_drop_dir(dir);
}

/* base <- a1 <- a2, base <- b1 (and, with merge, m merging a2 and b1) */
static char *branchy_project(bool merge)
{
	char *dir = new_project();
	put_rev(dir, "base.py", "base", "None", "");
	put_rev(dir, "a1.py", "a1", "'base'", "");
	put_rev(dir, "a2.py", "a2", "'a1'", "");
	put_rev(dir, "b1.py", "b1", "'base'", "");
	if (merge)
		put_rev(dir, "m.py", "m", "('a2', 'b1')", "");
	return dir;
}

/* A: a1 <- a2; B: b1 <- b2, b2 depends_on a2; b1 depends on A's label */
static char *depends_project(void)
{
	char *dir = new_project();
	put_rev(dir, "a1.py", "a1", "None", "branch_labels = 'alpha'\n");
	put_rev(dir, "a2.py", "a2", "'a1'", "");
	put_rev(dir, "b1.py", "b1", "None", "depends_on = 'alpha'\n");
	put_rev(dir, "b2.py", "b2", "'b1'", "depends_on = ['a2']\n");
	return dir;
}

TEST(alembic_graph_heads)
{
	struct cr_revgraph g;
	char *why = NULL;
	char *dir = branchy_project(false);
	CHECK(load_graph(dir, &g, &why) == 0);
	CHECK_STR(joined(&g.heads), "a2,b1");
	cr_revgraph_free(&g);
	unit_drop_dir(dir);

	dir = branchy_project(true);
	CHECK(load_graph(dir, &g, &why) == 0);
	CHECK_STR(joined(&g.heads), "m");
	cr_revgraph_free(&g);
	unit_drop_dir(dir);

	/* a2 is only depended on: still a head for Alembic (an "effective head") */
	dir = depends_project();
	CHECK(load_graph(dir, &g, &why) == 0);
	CHECK_STR(joined(&g.heads), "a2,b2");
	cr_revgraph_free(&g);
	unit_drop_dir(dir);
}

static void check_missing(const char *dir, const char *stored_csv, const char *want)
{
	struct cr_revgraph g;
	char *why = NULL;
	CHECK(load_graph(dir, &g, &why) == 0);
	struct cr_strlist stored = { 0 }, missing = { 0 };
	for (const char *s = stored_csv; *s;) {
		size_t n = strcspn(s, ",");
		char *id = xstrndup(s, n);
		cr_strlist_add(&stored, id);
		free(id);
		s += n + (s[n] == ',');
	}
	cr_log_mute(true);
	int rc = cr_revgraph_missing(&g, &stored, &missing);
	cr_log_mute(false);
	if (want) {
		CHECK(rc == 0);
		CHECK_STR(joined(&missing), want);
	} else {
		CHECK(rc == -1);
		CHECK(missing.n == 0);
	}
	cr_strlist_free(&stored);
	cr_strlist_free(&missing);
	cr_revgraph_free(&g);
}

TEST(alembic_missing_revisions)
{
	char *dir = branchy_project(true);
	check_missing(dir, "", "base,a1,a2,b1,m");
	check_missing(dir, "a1", "a2,b1,m");
	check_missing(dir, "a2,b1", "m");
	check_missing(dir, "b1", "a1,a2,m");
	check_missing(dir, "m", "");
	check_missing(dir, "zz", NULL);
	unit_drop_dir(dir);

	/* after `upgrade heads` the table holds b2 only: a2 is applied through depends_on */
	dir = depends_project();
	check_missing(dir, "b2", "");
	check_missing(dir, "a2", "b1,b2");
	check_missing(dir, "a1", "a2,b1,b2");
	check_missing(dir, "b1", "a2,b2"); /* b1 needed a1 (alpha), not a2 */
	check_missing(dir, "", "a1,a2,b1,b2");
	unit_drop_dir(dir);
}

TEST(alembic_long_history_is_linear_work)
{
	enum { N = 3000 };
	char *dir = new_project();
	for (int i = 1; i <= N; i++) {
		char name[32], id[16], down[20];
		snprintf(name, sizeof(name), "%05d_step.py", i);
		snprintf(id, sizeof(id), "%012x", i);
		if (i > 1)
			snprintf(down, sizeof(down), "'%012x'", i - 1);
		else
			strcpy(down, "None");
		put_rev(dir, name, id, down, "\ndef upgrade():\n    op.create_table('t')\n");
	}
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	struct cr_revgraph g;
	char *why = NULL;
	CHECK(load_graph(dir, &g, &why) == 0);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	CHECK(g.n == N);
	char head[16];
	snprintf(head, sizeof(head), "%012x", N);
	CHECK_STR(joined(&g.heads), head);
	struct cr_strlist stored = { 0 }, missing;
	cr_strlist_add(&stored, head);
	CHECK(cr_revgraph_missing(&g, &stored, &missing) == 0 && missing.n == 0);
	cr_strlist_free(&stored);
	cr_strlist_add(&stored, "000000000001");
	CHECK(cr_revgraph_missing(&g, &stored, &missing) == 0 && missing.n == N - 1);
	CHECK(missing.n == N - 1 && strcmp(missing.items[0], "000000000002") == 0);
	cr_strlist_free(&missing);
	cr_strlist_free(&stored);
	double s = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
	CHECK(s < 5.0); /* generous: sanitizers and valgrind run this too */
	cr_revgraph_free(&g);
	unit_drop_dir(dir);
}

/* ---- the ini copy --------------------------------------------------------------------- */

static char *write_copy(const char *dir, const char *ini, const char *url)
{
	put(dir, "alembic.ini", ini);
	struct cr_alembic_project p;
	CHECK(cr_alembic_load(dir, "alembic.ini", NULL, &p) == 0);
	char *path = xasprintf("%s/copy.ini", dir);
	unlink(path);
	CHECK(cr_alembic_write_ini(&p, url, path) == 0);
	cr_alembic_free(&p);
	char *text = slurp(path);
	free(path);
	return text;
}

TEST(alembic_write_ini_sets_the_url_and_keeps_here)
{
	char *dir = unit_tmpdir("cr-alembic");
	char *text = write_copy(dir, "[alembic]\nscript_location = %(here)s\n"
				     "sqlalchemy.url = driver://old\n  continued\n"
				     "# comment\nafter = 1\n",
				"postgresql://u:p%40ss%w@h/db");
	char *want = xasprintf("[alembic]\nscript_location = %%(here)s\n"
			       "sqlalchemy.url = postgresql://u:p%%%%40ss%%%%w@h/db\n"
			       "# comment\nafter = 1\n\n[DEFAULT]\nhere = %s\n", dir);
	CHECK_STR(text, want);
	free(want);
	free(text);

	/* absent: added at the end of the section, indented like the next header so that it
	 * can't be taken for a continuation line, nor make the header one */
	text = write_copy(dir, "[DEFAULT]\nhere = /elsewhere\n[alembic]\n  script_location = .\n"
			       "  [other]\nx = 1\n",
			  "sqlite:///x");
	CHECK_STR(text, "[DEFAULT]\nhere = /elsewhere\n[alembic]\n  script_location = .\n"
			"  sqlalchemy.url = sqlite:///x\n  [other]\nx = 1\n");
	free(text);

	text = write_copy(dir, "[alembic]\nscript_location = .", "sqlite:///y");
	want = xasprintf("[alembic]\nscript_location = .\nsqlalchemy.url = sqlite:///y\n\n"
			 "[DEFAULT]\nhere = %s\n", dir);
	CHECK_STR(text, want);
	free(want);
	free(text);
	unit_drop_dir(dir);
}

TEST(alembic_write_ini_is_private_and_new)
{
	char *dir = unit_tmpdir("cr-alembic");
	put(dir, "alembic.ini", "[alembic]\nscript_location = .\n");
	struct cr_alembic_project p;
	CHECK(cr_alembic_load(dir, "alembic.ini", NULL, &p) == 0);
	char *path = xasprintf("%s/copy.ini", dir);
	mode_t old = umask(0);
	CHECK(cr_alembic_write_ini(&p, "sqlite://", path) == 0);
	umask(old);
	struct stat st;
	CHECK(stat(path, &st) == 0 && (st.st_mode & 0777) == 0600);
	cr_log_mute(true);
	CHECK(cr_alembic_write_ini(&p, "sqlite://", path) == -1); /* exists */
	unlink(path);
	CHECK(cr_alembic_write_ini(&p, "sqlite://a\nb", path) == -1);
	CHECK(cr_alembic_write_ini(&p, " sqlite://", path) == -1);
	cr_log_mute(false);
	CHECK(access(path, F_OK) != 0);
	free(path);
	cr_alembic_free(&p);
	unit_drop_dir(dir);
}

TEST(alembic_write_ini_copy_reads_like_the_original)
{
	char *dir = unit_tmpdir("cr-alembic");
	put(dir, "alembic.ini", "[alembic]\nscript_location = %(here)s/mig\n"
				"version_locations = %(here)s/v1 %(here)s/v2\n");
	put(dir, "mig/env.py", "");
	struct cr_alembic_project p, q;
	CHECK(cr_alembic_load(dir, "alembic.ini", NULL, &p) == 0);
	char *sub = xasprintf("%s/elsewhere", dir);
	mkdir(sub, 0700);
	char *path = xasprintf("%s/copy.ini", sub);
	CHECK(cr_alembic_write_ini(&p, "sqlite://", path) == 0);
	CHECK(cr_alembic_load(sub, "copy.ini", NULL, &q) == 0);
	CHECK_STR(q.script_location, p.script_location);
	CHECK_STR(joined(&q.version_locations), joined(&p.version_locations));
	cr_alembic_free(&q);
	cr_alembic_free(&p);
	free(path);
	free(sub);
	unit_drop_dir(dir);
}

/* ---- helpers for tests/test_alembic_heads.py ------------------------------------------- */

/* CR_ALEMBIC_HEADS_DIR (CR_ALEMBIC_INI, CR_ALEMBIC_SECTION): prints "HEAD <id>" lines, or
 * "UNCERTAIN <why>" / "ERROR"; with CR_ALEMBIC_STORED (comma-separated ids, maybe empty)
 * also "MISSING <id>" lines. Never fails: the Python test judges the output. */
TEST(alembic_print_heads)
{
	const char *dir = getenv("CR_ALEMBIC_HEADS_DIR");
	if (!dir)
		return;
	const char *ini = getenv("CR_ALEMBIC_INI"), *stored_csv = getenv("CR_ALEMBIC_STORED");
	struct cr_alembic_project p;
	if (cr_alembic_load(dir, ini ? ini : "alembic.ini", getenv("CR_ALEMBIC_SECTION"), &p)) {
		printf("ERROR\n");
		return;
	}
	struct cr_revgraph g;
	char *why = NULL;
	int rc = cr_revgraph_load(&p, &g, &why);
	if (rc == 1)
		printf("UNCERTAIN %s\n", why);
	else if (rc < 0)
		printf("ERROR\n");
	for (size_t i = 0; i < g.heads.n; i++)
		printf("HEAD %s\n", g.heads.items[i]);
	if (rc == 0 && stored_csv) {
		struct cr_strlist stored = { 0 }, missing;
		char *copy = xstrdup(stored_csv);
		for (char *s = copy, *id; (id = strsep(&s, ","));)
			if (*id)
				cr_strlist_add(&stored, id);
		free(copy);
		if (cr_revgraph_missing(&g, &stored, &missing) == 0)
			for (size_t i = 0; i < missing.n; i++)
				printf("MISSING %s\n", missing.items[i]);
		else
			printf("ERROR\n");
		cr_strlist_free(&stored);
		cr_strlist_free(&missing);
	}
	free(why);
	cr_revgraph_free(&g);
	cr_alembic_free(&p);
}

/* CR_ALEMBIC_WRITE_INI=<path> with CR_ALEMBIC_HEADS_DIR and CR_ALEMBIC_URL: writes the
 * copy of the project's ini there. */
TEST(alembic_write_ini_from_env)
{
	const char *dir = getenv("CR_ALEMBIC_HEADS_DIR"), *out = getenv("CR_ALEMBIC_WRITE_INI");
	const char *url = getenv("CR_ALEMBIC_URL");
	if (!dir || !out || !url)
		return;
	const char *ini = getenv("CR_ALEMBIC_INI");
	struct cr_alembic_project p;
	if (cr_alembic_load(dir, ini ? ini : "alembic.ini", getenv("CR_ALEMBIC_SECTION"), &p) ||
	    cr_alembic_write_ini(&p, url, out))
		printf("ERROR\n");
	cr_alembic_free(&p);
}
