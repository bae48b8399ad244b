/* pg: the few things chartreuse asks PostgreSQL, through libpq. URLs are SQLAlchemy's, so
 * they are turned into libpq URIs here; their passwords are registered as secrets before
 * anything can print them, and every message goes through cr_error/cr_info (masked). */
#include "pg.h"
#include "log.h"
#include "proc.h"
#include "url.h"

#include <ctype.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

struct cr_pg {
	PGconn *conn;
	char *name; /* the database's name in the config, for messages */
	char *url;  /* as given; shown only through the masking log functions */
};

/* Seconds between two "still waiting" lines: often enough to show life in a pod's log,
 * rarely enough not to flood it. */
/* --- URLs ------------------------------------------------------------------------------ */

static bool scheme_is_postgres(const char *url, size_t scheme_len)
{
	const char *plus = memchr(url, '+', scheme_len); /* "+driver" is SQLAlchemy's */
	size_t n = plus ? (size_t)(plus - url) : scheme_len;
	return (n == 10 && !strncasecmp(url, "postgresql", n)) ||
	       (n == 8 && !strncasecmp(url, "postgres", n));
}

char *cr_pg_libpq_url(const char *url)
{
	struct cr_url u;
	if (!cr_url_split(url, strlen(url), &u) || !scheme_is_postgres(url, u.scheme_len))
		return NULL;
	char *same = cr_url_normalized(url, NULL);
	char *libpq = xasprintf("postgresql%s", same + u.scheme_len);
	explicit_bzero(same, strlen(same));
	free(same);
	return libpq;
}

/* Registers the URL's password as a secret, as written, decoded and as libpq reads it,
 * before anything (libpq's own messages included) can print it. */
static void register_password(const char *url, const char *libpq_url)
{
	cr_secret_add_url_password(url);
	PQconninfoOption *opts = libpq_url ? PQconninfoParse(libpq_url, NULL) : NULL;
	for (PQconninfoOption *o = opts; o && o->keyword; o++)
		if (!strcmp(o->keyword, "password"))
			cr_secret_add(o->val);
	PQconninfoFree(opts);
}

/* libpq URL of url, or NULL after reporting why it is not a PostgreSQL URL. The string
 * itself is shown only when it has the shape of a URL: otherwise masking could not tell
 * which part is the password. */
static char *checked_libpq_url(const char *name, const char *url)
{
	char *libpq_url = cr_pg_libpq_url(url);
	register_password(url, libpq_url);
	if (libpq_url)
		return libpq_url;
	struct cr_url u;
	if (!cr_url_split(url, strlen(url), &u))
		cr_error("database %s: the URL is not a PostgreSQL URL (postgresql://... expected)",
			 name);
	else
		cr_error("database %s (%s): not a PostgreSQL URL (scheme '%.*s')", name, url,
			 (int)u.scheme_len, url);
	return NULL;
}

/* --- connection parameters --------------------------------------------------------------- */

/* The keywords both connecting and pinging use. libpq keeps the last value of a keyword,
 * and the URL's settings take the place of "dbname": ours after it win over the URL's,
 * the one before it is only a default. */
struct conn_params {
	const char *keys[5];
	const char *values[5];
	char timeout[24];
};

static void conn_params_init(struct conn_params *p, const char *libpq_url, int timeout_s)
{
	snprintf(p->timeout, sizeof(p->timeout), "%d", timeout_s > 0 ? timeout_s : 0);
	size_t n = 0;
	/* libpq's default gssencmode=prefer probes for a Kerberos ticket on every TCP
	 * connection (a migration Job has none), and the Kerberos library keeps memory from
	 * that probe to the end of the process. Asking for GSS encryption in the URL or in
	 * PGGSSENCMODE still works. */
	if (!getenv("PGGSSENCMODE")) {
		p->keys[n] = "gssencmode";
		p->values[n++] = "disable";
	}
	p->keys[n] = "dbname";
	p->values[n++] = libpq_url;
	p->keys[n] = "application_name";
	p->values[n++] = "chartreuse";
	p->keys[n] = "connect_timeout";
	p->values[n++] = p->timeout;
	p->keys[n] = NULL;
	p->values[n] = NULL;
}

/* First line of a libpq message, without its trailing newline. Caller frees. */
static char *first_line(const char *msg)
{
	if (!msg)
		return xstrdup("(no message)");
	return xstrndup(msg, strcspn(msg, "\n"));
}

/* libpq prints server notices (e.g. "table ... does not exist, skipping") to stderr on
 * its own; route them through the log so they are masked and say which database. */
static void on_notice(void *arg, const PGresult *res)
{
	const struct cr_pg *pg = arg;
	const char *severity = PQresultErrorField(res, PG_DIAG_SEVERITY_NONLOCALIZED);
	const char *primary = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
	char *line = first_line(primary ? primary : PQresultErrorMessage(res));
	if (severity && !strcmp(severity, "WARNING"))
		cr_warn("database %s: %s", pg->name, line);
	else
		cr_info("database %s: %s", pg->name, line);
	free(line);
}

int cr_pg_connect(const char *name, const char *url, int timeout_s, struct cr_pg **out)
{
	*out = NULL;
	char *libpq_url = checked_libpq_url(name, url);
	if (!libpq_url)
		return -1;
	struct conn_params p;
	conn_params_init(&p, libpq_url, timeout_s);
	PGconn *conn = PQconnectdbParams(p.keys, p.values, 1);
	free(libpq_url);
	if (!conn) {
		cr_error("database %s (%s): cannot connect: out of memory", name, url);
		return -1;
	}
	if (PQstatus(conn) != CONNECTION_OK) {
		char *why = first_line(PQerrorMessage(conn));
		cr_error("database %s (%s): cannot connect: %s", name, url, why);
		free(why);
		PQfinish(conn);
		return -1;
	}
	struct cr_pg *pg = xcalloc(1, sizeof(*pg));
	pg->conn = conn;
	pg->name = xstrdup(name);
	pg->url = xstrdup(url);
	PQsetNoticeReceiver(conn, on_notice, pg);
	*out = pg;
	return 0;
}

void cr_pg_close(struct cr_pg *pg)
{
	if (!pg)
		return;
	PQfinish(pg->conn);
	free(pg->name);
	free(pg->url);
	free(pg);
}

/* --- statements ------------------------------------------------------------------------ */

/* The first words of a statement, enough to recognise it in a message. Caller frees. */
static char *sql_head(const char *sql)
{
	while (isspace((unsigned char)*sql))
		sql++;
	size_t n = 0;
	for (int words = 0; sql[n] && n < 60; n++)
		if (isspace((unsigned char)sql[n]) && ++words == 3)
			break;
	struct cr_buf b = { 0 };
	for (size_t i = 0; i < n; i++)
		cr_buf_addc(&b, isspace((unsigned char)sql[i]) ? ' ' : sql[i]);
	if (sql[n])
		cr_buf_adds(&b, " ...");
	return cr_buf_detach(&b, NULL);
}

static void report_failure(const struct cr_pg *pg, const char *sql, const PGresult *res)
{
	char *head = sql_head(sql);
	const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
	const char *primary = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;
	char *why = first_line(primary ? primary : PQerrorMessage(pg->conn));
	cr_error("database %s: %s: %s%s%s", pg->name, head, state ? state : "",
		 state ? " " : "", why);
	free(why);
	free(head);
}

/* Runs sql; the result when it succeeded, else NULL (reported). Parameters are text. */
static PGresult *run(struct cr_pg *pg, const char *sql, int n_params,
		     const char *const *params)
{
	PGresult *res = PQexecParams(pg->conn, sql, n_params, NULL, params, NULL, NULL, 0);
	ExecStatusType st = PQresultStatus(res);
	if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK)
		return res;
	report_failure(pg, sql, res);
	PQclear(res);
	return NULL;
}

int cr_pg_exec(struct cr_pg *pg, const char *sql, int n_params, const char *const *params)
{
	PGresult *res = run(pg, sql, n_params, params);
	PQclear(res);
	return res ? 0 : -1;
}

/* Runs a query whose rows have one column, adding its non-NULL values to out. */
static int query_column(struct cr_pg *pg, const char *sql, int n_params,
			const char *const *params, struct cr_strlist *out)
{
	PGresult *res = run(pg, sql, n_params, params);
	if (!res)
		return -1;
	for (int i = 0; i < PQntuples(res); i++)
		if (!PQgetisnull(res, i, 0))
			cr_strlist_add(out, PQgetvalue(res, i, 0));
	PQclear(res);
	return 0;
}

int cr_pg_tables(struct cr_pg *pg, struct cr_strlist *out)
{
	/* Ordinary and partitioned tables; other sessions' temporary schemas (pg_temp_N)
	 * are no more the application's data than pg_toast is. */
	static const char sql[] =
		"SELECT n.nspname || '.' || c.relname FROM pg_catalog.pg_class c "
		"JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace "
		"WHERE c.relkind IN ('r', 'p') "
		"AND n.nspname NOT IN ('pg_catalog', 'information_schema') "
		"AND n.nspname !~ '^pg_(toast|temp_)' ORDER BY 1";
	return query_column(pg, sql, 0, NULL, out);
}

/* "schema"."table" (or "table" without a schema), quoted by libpq: the names come from
 * the configuration and are data, not SQL. NULL after reporting. */
static char *quoted_table(struct cr_pg *pg, const char *schema, const char *table)
{
	char *t = PQescapeIdentifier(pg->conn, table, strlen(table));
	char *s = schema ? PQescapeIdentifier(pg->conn, schema, strlen(schema)) : NULL;
	char *q = NULL;
	if (!t || (schema && !s))
		cr_error("database %s: cannot quote the version table's name: %s", pg->name,
			 PQerrorMessage(pg->conn));
	else
		q = s ? xasprintf("%s.%s", s, t) : xstrdup(t);
	PQfreemem(t);
	PQfreemem(s);
	return q;
}

/* 1 when the (quoted) table exists, 0 when not, -1 after reporting an error. */
static int table_exists(struct cr_pg *pg, const char *quoted)
{
	const char *params[] = { quoted };
	PGresult *res = run(pg, "SELECT to_regclass($1) IS NOT NULL", 1, params);
	if (!res)
		return -1;
	int exists = PQntuples(res) == 1 && !strcmp(PQgetvalue(res, 0, 0), "t");
	PQclear(res);
	return exists;
}

int cr_pg_stored_revisions(struct cr_pg *pg, const char *schema, const char *table,
			   struct cr_strlist *out)
{
	char *quoted = quoted_table(pg, schema, table);
	if (!quoted)
		return -1;
	int rc = table_exists(pg, quoted);
	if (rc > 0) {
		char *sql = xasprintf("SELECT version_num FROM %s ORDER BY 1", quoted);
		rc = query_column(pg, sql, 0, NULL, out);
		free(sql);
	}
	free(quoted);
	return rc < 0 ? -1 : 0;
}

/* One text value of a one-row answer (caller frees), NULL when there is no row or it is
 * NULL; *failed on an error (reported). */
static char *query_value(struct cr_pg *pg, const char *sql, int n_params,
			 const char *const *params, bool *failed)
{
	PGresult *res = run(pg, sql, n_params, params);
	*failed = !res;
	char *v = res && PQntuples(res) == 1 && !PQgetisnull(res, 0, 0)
			  ? xstrdup(PQgetvalue(res, 0, 0))
			  : NULL;
	PQclear(res);
	return v;
}

/* What the session lacks to write the existing version table ("" when nothing). */
static const char LACKS_ON_TABLE[] =
	"SELECT concat_ws(', ', "
	"CASE WHEN NOT has_schema_privilege(c.relnamespace, 'USAGE') "
	"THEN 'USAGE on schema ' || quote_ident(n.nspname) END, "
	"CASE WHEN NOT has_table_privilege(c.oid, 'SELECT') THEN 'SELECT' END, "
	"CASE WHEN NOT has_table_privilege(c.oid, 'INSERT') THEN 'INSERT' END, "
	"CASE WHEN NOT has_table_privilege(c.oid, 'UPDATE') THEN 'UPDATE' END, "
	"CASE WHEN NOT has_table_privilege(c.oid, 'DELETE') THEN 'DELETE' END) "
	"FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace "
	"WHERE c.oid = to_regclass($1)";

/* Where Alembic would create it: the schema named, else the first of the search_path that
 * exists; "" when the session may create a table there. */
static const char LACKS_ON_SCHEMA[] =
	"SELECT CASE WHEN has_schema_privilege(n.oid, 'USAGE') AND "
	"has_schema_privilege(n.oid, 'CREATE') THEN '' "
	"ELSE 'CREATE on schema ' || quote_ident(n.nspname) END "
	"FROM pg_catalog.pg_namespace n WHERE n.nspname = coalesce($1, current_schema())";

int cr_pg_version_table_writable(struct cr_pg *pg, const char *schema, const char *table)
{
	bool failed;
	char *ro = query_value(pg, "SELECT current_setting('transaction_read_only')", 0, NULL,
			       &failed);
	if (failed)
		return -1;
	bool read_only = cr_streq(ro, "on");
	free(ro);
	if (read_only) {
		cr_error("database %s: the server takes no writes (transaction_read_only is on: "
			 "a standby, or a read-only role?): Alembic could not migrate it",
			 pg->name);
		return 1;
	}
	char *quoted = quoted_table(pg, schema, table);
	if (!quoted)
		return -1;
	const char *p1[] = { quoted };
	char *lacks = query_value(pg, LACKS_ON_TABLE, 1, p1, &failed);
	const char *p2[] = { schema };
	if (!failed && !lacks)
		lacks = query_value(pg, LACKS_ON_SCHEMA, 1, p2, &failed);
	int rc = failed ? -1 : 0;
	if (!failed && !lacks) {
		cr_error("database %s: %s", pg->name,
			 schema ? "the version table's schema does not exist (Alembic does not "
				  "create it)"
				: "no schema of the search_path exists to create the version table in");
		rc = 1;
	} else if (!failed && *lacks) {
		cr_error("database %s: the role cannot write Alembic's version table %s: it lacks "
			 "%s", pg->name, quoted, lacks);
		rc = 1;
	}
	free(lacks);
	free(quoted);
	return rc;
}

int cr_pg_end_sessions(struct cr_pg *pg, const char *application_name)
{
	const char *params[] = { application_name };
	PGresult *res = run(pg,
			    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
			    "WHERE application_name = $1 AND pid <> pg_backend_pid()",
			    1, params);
	if (!res)
		return -1;
	int n = atoi(PQgetvalue(res, 0, 0));
	PQclear(res);
	return n;
}

/* Whatever happens, the transaction ends: a failed statement leaves it aborted. */
static void end_transaction(struct cr_pg *pg)
{
	PGresult *res = PQexec(pg->conn, "ROLLBACK");
	PQclear(res);
}

int cr_pg_settled_revisions(struct cr_pg *pg, const char *schema, const char *table,
			    int timeout_s, struct cr_strlist *out)
{
	char *quoted = quoted_table(pg, schema, table);
	if (!quoted)
		return -1;
	char *timeout = xasprintf("%ds", timeout_s > 0 ? timeout_s : 1);
	const char *params[] = { timeout };
	int rc = cr_pg_exec(pg, "BEGIN", 0, NULL);
	if (!rc)
		rc = cr_pg_exec(pg, "SELECT set_config('lock_timeout', $1, true)", 1, params);
	if (!rc)
		rc = table_exists(pg, quoted);
	if (rc > 0) {
		char *lock = xasprintf("LOCK TABLE %s IN SHARE MODE", quoted);
		rc = cr_pg_exec(pg, lock, 0, NULL);
		free(lock);
		if (!rc) {
			char *sql = xasprintf("SELECT version_num FROM %s ORDER BY 1", quoted);
			rc = query_column(pg, sql, 0, NULL, out);
			free(sql);
		}
	}
	end_transaction(pg);
	free(timeout);
	free(quoted);
	return rc < 0 ? -1 : 0;
}

/* --- advisory lock ------------------------------------------------------------------- */

/* 1 when the lock was taken, 0 when someone else holds it, -1 after reporting. */
static int try_lock(struct cr_pg *pg, const char *key)
{
	const char *params[] = { key };
	PGresult *res = run(pg, "SELECT pg_try_advisory_lock($1::bigint)", 1, params);
	if (!res)
		return -1;
	int taken = !strcmp(PQgetvalue(res, 0, 0), "t");
	PQclear(res);
	return taken;
}

#define FIRST_PAUSE_S 0.2 /* short: the other migration may be about to finish */

int cr_pg_lock(struct cr_pg *pg, long long key, int timeout_s)
{
	char k[24];
	snprintf(k, sizeof(k), "%lld", key);
	struct cr_progress prog = cr_progress_start();
	double deadline = prog.start + (timeout_s > 0 ? timeout_s : 0);
	double pause = FIRST_PAUSE_S;
	bool told = false;
	for (;;) {
		int taken = try_lock(pg, k);
		if (taken != 0)
			return taken > 0 ? 0 : -1;
		double left = deadline - cr_now_s();
		if (left <= 0)
			return 1;
		if (cr_terminated()) {
			cr_error("database %s: interrupted while waiting for another migration's lock",
				 pg->name);
			return -1;
		}
		if (!told)
			cr_info("database %s: another migration holds its lock; waiting for it to "
				"finish (at most %d s)", pg->name, timeout_s);
		told = true;
		double waited = cr_progress_due(&prog);
		if (waited)
			cr_info("database %s: waiting for another migration's lock (%.0f s of %d s)",
				pg->name, waited, timeout_s);
		cr_sleep_ms((long)((pause < left ? pause : left) * 1000), true); /* a termination: above */
		pause = pause * 1.5 < 1.0 ? pause * 1.5 : 1.0;
	}
}

int cr_pg_unlock(struct cr_pg *pg, long long key)
{
	char k[24];
	snprintf(k, sizeof(k), "%lld", key);
	const char *params[] = { k };
	PGresult *res = run(pg, "SELECT pg_advisory_unlock($1::bigint)", 1, params);
	if (!res)
		return -1;
	int released = !strcmp(PQgetvalue(res, 0, 0), "t");
	PQclear(res);
	if (!released)
		cr_error("database %s: advisory lock %s was not held", pg->name, k);
	return released ? 0 : -1;
}

/* --- waiting for the server ---------------------------------------------------------- */

/* Why the server doesn't answer, in libpq's words (PQping says only that it doesn't).
 * Connecting once more may find it up after all: then "" is returned. Caller frees. */
static char *no_answer_reason(const char *libpq_url)
{
	struct conn_params p;
	conn_params_init(&p, libpq_url, 2);
	PGconn *conn = PQconnectdbParams(p.keys, p.values, 1);
	char *why = PQstatus(conn) == CONNECTION_OK ? xstrdup("")
						    : first_line(PQerrorMessage(conn));
	PQfinish(conn);
	return why;
}

/* One ping, its connect_timeout bounded by the time left (libpq's minimum is 2 s) and by
 * the progress interval. */
static PGPing ping(const char *libpq_url, double left)
{
	int t = left < 2 ? 2 : left > CR_PROGRESS_EVERY_S ? (int)CR_PROGRESS_EVERY_S : (int)left;
	struct conn_params p;
	conn_params_init(&p, libpq_url, t);
	return PQpingParams(p.keys, p.values, 1);
}

/* Pings until the server answers or the deadline: 0; -1 at the deadline; -2 when libpq
 * did not even try (parameters it can't use: waiting won't change them). */
static int ping_until(const char *name, const char *libpq_url, int timeout_s)
{
	struct cr_progress prog = cr_progress_start();
	double deadline = prog.start + (timeout_s > 0 ? timeout_s : 0);
	for (;;) {
		PGPing r = ping(libpq_url, deadline - cr_now_s());
		if (r == PQPING_OK)
			return 0;
		if (r == PQPING_NO_ATTEMPT)
			return -2;
		double left = deadline - cr_now_s();
		if (left <= 0)
			return -1;
		if (cr_terminated())
			return -3;
		double waited = cr_progress_due(&prog);
		if (waited)
			cr_info("database %s: no answer yet (%.0f s of %d s)", name, waited,
				timeout_s);
		cr_sleep_ms((long)((left < 1 ? left : 1) * 1000), true); /* a termination: above */
	}
}

int cr_pg_wait(const char *name, const char *url, int timeout_s)
{
	char *libpq_url = checked_libpq_url(name, url);
	if (!libpq_url)
		return -1;
	int rc = ping_until(name, libpq_url, timeout_s);
	if (rc == -2) {
		/* libpq didn't even try: the URL's parameters are wrong, connecting says how */
		char *why = no_answer_reason(libpq_url);
		cr_error("database %s (%s): %s", name, url, why);
		free(why);
		rc = -1;
	} else if (rc == -3) {
		cr_error("database %s: interrupted (signal %d) while waiting for the server", name,
			 cr_terminated());
		rc = -1;
	} else if (rc == -1) {
		char *why = no_answer_reason(libpq_url);
		if (!*why)
			rc = 0;
		else
			cr_error("database %s (%s): no answer after %d s: %s", name, url,
				 timeout_s, why);
		free(why);
	}
	if (rc == 0)
		cr_info("database %s: the server answers", name);
	free(libpq_url);
	return rc;
}

/* --- Patroni (postgres-operator) ------------------------------------------------------------ */

/* One step of the probe, silently; on failure *why gets the server's reason. */
static bool probe_step(struct cr_pg *pg, const char *sql, char **why)
{
	PGresult *res = PQexec(pg->conn, sql);
	ExecStatusType st = PQresultStatus(res);
	bool ok = st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK;
	if (!ok) {
		const char *primary = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
		free(*why);
		*why = first_line(primary ? primary : PQerrorMessage(pg->conn));
	}
	PQclear(res);
	return ok;
}

static char *quoted_role(struct cr_pg *pg, const char *db, const char *suffix)
{
	char *role = xasprintf("%s_%s", db, suffix);
	char *q = PQescapeIdentifier(pg->conn, role, strlen(role));
	char *out = xstrdup(q ? q : "\"\"");
	PQfreemem(q);
	free(role);
	return out;
}

int cr_pg_patroni_ready(struct cr_pg *pg, char **why)
{
	const char *db = PQdb(pg->conn);
	char *owner = quoted_role(pg, db, "owner"), *writer = quoted_role(pg, db, "writer"),
	     *reader = quoted_role(pg, db, "reader");
	char *steps[] = {
		xstrdup("BEGIN"),
		xasprintf("SET LOCAL ROLE %s", owner),
		xstrdup("CREATE TABLE chartreuse_patroni_probe (id integer)"),
		xasprintf("SET LOCAL ROLE %s", writer),
		xstrdup("INSERT INTO chartreuse_patroni_probe VALUES (1)"),
		xasprintf("SET LOCAL ROLE %s", reader),
		xstrdup("SELECT id FROM chartreuse_patroni_probe"),
	};
	size_t n = sizeof(steps) / sizeof(steps[0]);
	bool ok = true;
	for (size_t i = 0; i < n; i++) {
		ok = ok && probe_step(pg, steps[i], why);
		free(steps[i]);
	}
	char *ignored = NULL;
	probe_step(pg, "ROLLBACK", &ignored);
	free(ignored);
	free(owner);
	free(writer);
	free(reader);
	if (PQstatus(pg->conn) != CONNECTION_OK)
		return -1;
	return ok ? 1 : 0;
}
