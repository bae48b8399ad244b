/* migrate: the migration of every configured database — decide from the revision graph
 * and the version table whether anything is left to apply, hold a per-database advisory
 * lock from the decision to the end so two migrations never run at once, stop the pods if
 * anything will run, run Alembic, check the result against the graph, start the pods. */
#ifndef CR_MIGRATE_H
#define CR_MIGRATE_H

#include <stdbool.h>

#include "json.h"
#include "util.h"

struct cr_alembic_call;
struct cr_k8s_options;
struct cr_config;
struct cr_database;
struct cr_revgraph;

struct cr_migrate_options {
	bool dry_run;	      /* decide and print, change nothing */
	int connect_timeout;  /* seconds */
	int lock_timeout;     /* seconds to wait for another migration of the same database */
	bool start_pods_after; /* false in before-deployment mode during an upgrade */
	enum cr_format format; /* of the dry run's decisions on stdout */
	const struct cr_k8s_options *k8s; /* the cluster (NULL: KUBECONFIG or in-cluster) */
};

/* Decides for every database, checks before anything is stopped what could fail with the
 * service down, then stops, migrates and starts (SPEC §2). 0 when everything is where it
 * should be; 1 for a dry run that found a migration to make (every check passed); -1
 * after a failure (reported). */
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

/* The reading half of a migration, shared with `status` (which changes nothing). */

/* The alembic arguments that go before the command for db: its additionalParameters, and
 * -x patroni_postgresql=yes in Patroni mode. Appended to extra. */
void cr_migrate_alembic_extra(const struct cr_database *db, struct cr_strlist *extra);

/* The heads of call->project: from the graph of its scripts when they can be read with
 * certainty (*native true, g filled), else from `alembic heads` run as call says (after a
 * warning saying why). Appended to heads. 0, or -1 (reported). */
int cr_migrate_heads(const struct cr_alembic_call *call, struct cr_revgraph *g, bool *native,
		     struct cr_strlist *heads);

/* What is not applied, as text. Without the graph (native false) only the heads that are
 * not stored are known to be missing: their ancestors may be too, and the text says so
 * instead of listing the heads as if they were all. */
void cr_migrate_missing_text(struct cr_buf *b, const struct cr_strlist *missing, bool native,
			     size_t max);

/* What is not applied to a database whose version table holds stored: from the graph g,
 * or without one (NULL) every head that is not stored. *missing is overwritten (free it
 * first). 0, or -1 when a stored revision is unknown to the scripts (reported). */
int cr_migrate_missing(const struct cr_revgraph *g, const struct cr_strlist *heads,
		       const struct cr_strlist *stored, struct cr_strlist *missing);

#endif
