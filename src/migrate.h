/* migrate: the migration of every configured database — decide from the revision graph
 * and the version table whether anything is left to apply, hold a per-database advisory
 * lock from the decision to the end so two migrations never run at once, stop the pods if
 * anything will run, run Alembic, check the result against the graph, start the pods. */
#ifndef CR_MIGRATE_H
#define CR_MIGRATE_H

#include <stdbool.h>

#include "util.h"

struct cr_config;

struct cr_migrate_options {
	bool dry_run;	      /* decide and print, change nothing */
	int connect_timeout;  /* seconds */
	int lock_timeout;     /* seconds to wait for another migration of the same database */
	bool start_pods_after; /* false in before-deployment mode during an upgrade */
};

int cr_migrate(const struct cr_config *cfg, const struct cr_migrate_options *o);

/* The decision for one database, as a pure function (the empty-database rule, then what
 * the graph says). */
enum cr_decision { CR_UP_TO_DATE, CR_EMPTY_LEFT_ALONE, CR_NEEDED };
enum cr_decision cr_migrate_decide(const struct cr_strlist *tables, const char *version_table,
				   bool allow_empty, const struct cr_strlist *missing);

/* The URL of database i at run time: $CHARTREUSE_DB_<i>_URL (from the Job's Secret), else
 * the configured url, else one built from the parts; the password from
 * $CHARTREUSE_DB_<i>_PASSWORD when the URL has none. NULL (reported) when nothing says. */
char *cr_migrate_database_url(const struct cr_config *cfg, size_t i);

#endif
