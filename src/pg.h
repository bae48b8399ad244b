/* pg: PostgreSQL through libpq, as chartreuse needs it — connect from a URL written for
 * SQLAlchemy, list tables, read Alembic's version table, hold an advisory lock, wait for
 * the server. Every error names the database and shows its URL masked. */
#ifndef CR_PG_H
#define CR_PG_H

#include <stdbool.h>

#include "util.h"

struct cr_pg;

/* Connects to url ("postgresql://", "postgresql+psycopg2://", "postgres://"; percent-
 * encoded user and password; query parameters such as sslmode are libpq's), with
 * application_name=chartreuse and connect_timeout = timeout_s (libpq's minimum is 2;
 * 0 = no limit). `name` is the database's name in the config, used in messages. The
 * URL's password is registered as a secret (cr_secret_add) first. */
int cr_pg_connect(const char *name, const char *url, int timeout_s, struct cr_pg **out);
void cr_pg_close(struct cr_pg *pg);

/* The user tables (schema-qualified "schema.table"), outside pg_catalog and
 * information_schema. */
int cr_pg_tables(struct cr_pg *pg, struct cr_strlist *out);

/* The revisions stored in Alembic's version table (schema may be NULL); a missing table
 * means none. */
int cr_pg_stored_revisions(struct cr_pg *pg, const char *schema, const char *table,
			   struct cr_strlist *out);
/* Whether Alembic could write its version table (schema may be NULL): the server takes
 * writes, and the role may read, insert, update and delete in the table, or create it
 * where Alembic would. 0 when so; 1 when not (reported: what is missing); -1 on an error
 * (reported). */
int cr_pg_version_table_writable(struct cr_pg *pg, const char *schema, const char *table);

/* Ends the other sessions named application_name (pg_terminate_backend: the server rolls
 * back what they had not committed); how many, or -1 (reported). */
int cr_pg_end_sessions(struct cr_pg *pg, const char *application_name);

/* The stored revisions once no transaction that changed the version table is in flight:
 * the table is locked in SHARE mode (waiting up to timeout_s for writers to commit or roll
 * back) for the read. What a failed migration left is only known after this. */
int cr_pg_settled_revisions(struct cr_pg *pg, const char *schema, const char *table,
			    int timeout_s, struct cr_strlist *out);

/* Session advisory lock on key, waiting at most timeout_s seconds.
 * 0: held; 1: still taken by someone else at the deadline; -1: error (reported). */
int cr_pg_lock(struct cr_pg *pg, long long key, int timeout_s);
int cr_pg_unlock(struct cr_pg *pg, long long key);

/* Runs one SQL statement with text parameters and no result rows. */
int cr_pg_exec(struct cr_pg *pg, const char *sql, int n_params, const char *const *params);

/* Whether a postgres-operator (Patroni) database is set up: inside a transaction that is
 * rolled back, the <db>_owner role creates a table, <db>_writer inserts into it and
 * <db>_reader reads it (default privileges in place). 1: ready; 0: not yet (*why, caller
 * frees, says what failed); -1: the connection is gone. Silent. */
int cr_pg_patroni_ready(struct cr_pg *pg, char **why);

/* Waits until the server at url accepts connections (PQping), up to timeout_s seconds,
 * printing progress every few seconds. 0 when it answers (even if it would refuse these
 * credentials), -1 at the deadline or for a URL libpq can't use (reported). */
int cr_pg_wait(const char *name, const char *url, int timeout_s);

/* The libpq form of a SQLAlchemy URL: "+driver" removed from the scheme (and an unencoded
 * '@' inside the password encoded, as SQLAlchemy reads it). NULL when url is not a
 * postgres/postgresql URL. Caller frees. */
char *cr_pg_libpq_url(const char *url);

#endif
