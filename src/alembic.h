/* alembic: an Alembic project read natively, as Alembic itself would read it — the ini
 * file and its section, where the revision scripts live — and the copy of the ini handed
 * to Alembic. The scripts and their graph: revgraph.h. */
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

#endif
