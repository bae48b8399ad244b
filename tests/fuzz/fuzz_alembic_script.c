/* Alembic revision scripts as src/alembic.c reads them without Python (the tokenizer,
 * the module-level assignments of revision / down_revision / branch_labels /
 * depends_on), linked into the revision graph (ids, labels, cycles, heads), and what is
 * left to apply for a database at some revision.
 *
 * Input: up to 16 scripts separated by a line "#### next script ####"; each is written
 * to versions/<two hex digits>.py (hex names, so Alembic's legacy "id from the file
 * name" rule is reached too). */
#include "revgraph.h"
#include "fuzz.h"

#include <sys/stat.h>

#define MAX_SCRIPTS 16
#define SEPARATOR "\n#### next script ####\n"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct cr_alembic_project p;
	static char *versions;
	if (!versions) {
		fz_quiet();
		versions = fz_path("versions");
		mkdir(versions, 0700);
		p.script_location = xstrdup(fz_dir());
		p.section = xstrdup("alembic");
		p.version_table = xstrdup("alembic_version");
		cr_strlist_add(&p.version_locations, versions);
	}
	struct fz_piece s[MAX_SCRIPTS];
	size_t n = fz_split(data, size, SEPARATOR, s, MAX_SCRIPTS);
	for (size_t i = 0; i < MAX_SCRIPTS; i++) {
		char name[32];
		snprintf(name, sizeof(name), "versions/%02zx.py", i);
		if (i < n) {
			free(fz_write(name, s[i].s, s[i].len));
		} else {
			char *path = fz_path(name);
			unlink(path);
			free(path);
		}
	}
	struct cr_revgraph g;
	char *why = NULL;
	if (cr_revgraph_load(&p, &g, &why) == 0) {
		/* A database at nothing, at the first head, and at every revision at once. */
		struct cr_strlist stored = { 0 }, missing;
		if (cr_revgraph_missing(&g, &stored, &missing) == 0 && missing.n != g.n)
			abort(); /* an empty database misses every revision */
		cr_strlist_free(&missing);
		if (g.heads.n) {
			cr_strlist_add(&stored, g.heads.items[0]);
			if (cr_revgraph_missing(&g, &stored, &missing) == 0 && missing.n >= g.n)
				abort(); /* a head is applied, at least */
			cr_strlist_free(&missing);
		}
		cr_strlist_free(&stored);
		for (size_t i = 0; i < g.n; i++)
			cr_strlist_add(&stored, g.revs[i].id);
		cr_strlist_add(&stored, "not-a-revision");
		cr_revgraph_missing(&g, &stored, &missing);
		cr_strlist_free(&missing);
		cr_strlist_free(&stored);
		cr_revgraph_free(&g);
	}
	free(why);
	return 0;
}
