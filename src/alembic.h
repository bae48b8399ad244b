/* alembic: an Alembic project read natively, as Alembic itself would read it — the ini
 * file and its section, where the revision scripts live, the scripts' identifiers and
 * links, the revision graph and its heads — so that "is anything left to apply?" is
 * answered without starting Python. */
#ifndef CR_ALEMBIC_H
#define CR_ALEMBIC_H

#include <stdbool.h>
#include <stddef.h>

#include "util.h"

struct cr_alembic_project {
	/* Absolute: the directory Alembic runs in (alembicDirectory). Alembic resolves a
	 * relative script_location, version location or prepend_sys_path entry against its
	 * working directory, not against the ini's folder: the reader resolves them against
	 * this, and cr_alembic_cli starts Alembic here, so both see the same scripts. */
	char *directory;
	char *ini_path;		    /* absolute; %(here)s is its folder */
	char *section;		    /* "alembic" unless -n names another */
	char *script_location;	    /* absolute, %(here)s resolved, a package:path found */
	struct cr_strlist version_locations; /* absolute directories holding revision scripts */
	bool recursive_version_locations;
	char *version_table;	    /* default alembic_version */
	char *version_table_schema; /* NULL: the connection's search_path */
	/* Set when the project is valid for Alembic but its scripts can't be read natively
	 * (a package:path location whose folder is not certain, sourceless = true):
	 * cr_revgraph_load then returns 1 with this reason. version_table and the ini itself
	 * are still usable. */
	char *unsupported;
};

/* Reads <directory>/<config_file> (config_file may be absolute), section `section` (NULL:
 * "alembic"), as `alembic -c <config_file>` run in `directory` reads it. A package:path
 * location is resolved when the package is a regular package in exactly one
 * prepend_sys_path folder (else `unsupported` says why). Errors name the file and the key;
 * on error *out is left zeroed. */
int cr_alembic_load(const char *directory, const char *config_file, const char *section,
		    struct cr_alembic_project *out);
void cr_alembic_free(struct cr_alembic_project *p);

/* Writes a copy of the project's ini in which %(here)s still means the original directory
 * (a `here` key is added to [DEFAULT], which ConfigParser prefers to the default Alembic
 * passes) and sqlalchemy.url (in the project's section) is url, escaped for configparser
 * interpolation; the file is created 0600 at `path` and must not exist. Alembic run with
 * `-c path` then behaves as with the original file, without the password ever being
 * written next to the project or put on a command line. */
int cr_alembic_write_ini(const struct cr_alembic_project *p, const char *url, const char *path);
/* The same text, appended to out (which then holds the password: wipe it). */
int cr_alembic_ini_copy(const struct cr_alembic_project *p, const char *url,
			struct cr_buf *out);

struct cr_revision {
	char *id;
	struct cr_strlist down;		/* down_revision: none, one, or several (merge) */
	struct cr_strlist depends_on;	/* revision ids or branch labels */
	struct cr_strlist branch_labels;
	char *path;			/* the script */
};

struct cr_revgraph_links;

struct cr_revgraph {
	struct cr_revision *revs;
	size_t n;
	struct cr_strlist heads;	/* revisions nothing else revises (sorted) */
	struct cr_revgraph_links *links; /* private: id index, resolved edges, order */
};

/* Reads every revision script of the project and links them. Both free functions accept a
 * zeroed struct, and a failed load leaves one.
 * Returns 0 on success; -1 when the graph is broken (unknown down_revision, cycle,
 * duplicate id: reported, naming the files); 1 when some script cannot be read with
 * certainty (a computed value, an unusual construct): *why (caller frees) says which
 * file and why, so the caller can fall back to `alembic heads`. */
int cr_revgraph_load(const struct cr_alembic_project *p, struct cr_revgraph *g, char **why);
void cr_revgraph_free(struct cr_revgraph *g);

/* The revisions not yet applied to a database whose version table holds `stored`: every
 * revision that is not `stored` or an ancestor of it through down_revision and
 * depends_on, parents before children, ties by id (*missing is overwritten). A stored id
 * the scripts don't know is an error (returns -1, reported). */
int cr_revgraph_missing(const struct cr_revgraph *g, const struct cr_strlist *stored,
			struct cr_strlist *missing);

#endif
