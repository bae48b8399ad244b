#include "migrate.h"
#include "revgraph.h"
#include "alembic_cli.h"
#include "config.h"
#include "eslembic.h"
#include "json.h"
#include "k8s.h"
#include "log.h"
#include "pg.h"
#include "pods.h"
#include "podsec.h"
#include "proc.h"
#include "render.h"
#include "url.h"
#include "ytree.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

enum outcome { O_PENDING, O_UP_TO_DATE, O_LEFT_ALONE, O_NEEDED, O_MIGRATED, O_FAILED };

struct db_run {
	const struct cr_database *db;
	size_t index;
	char *url;
	struct cr_alembic_project project;
	struct cr_revgraph graph;
	bool native;		/* the graph was read from the scripts */
	struct cr_strlist heads; /* native or from `alembic heads` */
	struct cr_pg *pg;
	long long lock_key;
	bool locked;
	struct cr_strlist stored, missing;
	struct cr_strlist extra; /* alembic arguments before the command */
	enum outcome outcome;
	bool ran;		/* Alembic was asked to upgrade */
	bool unchanged;		/* after a failed upgrade: verifiably at the revisions of before */
	char *why;		/* failure, for the summary */
	struct cr_strlist applied; /* what the upgrade was to apply (the missing before it) */
	double alembic_s;	   /* how long Alembic ran */
};

char *cr_migrate_database_url(const struct cr_config *cfg, size_t i)
{
	const struct cr_database *db = &cfg->databases[i];
	char *url_var = cr_database_env(i, "URL"), *pw_var = cr_database_env(i, "PASSWORD");
	const char *env_url = getenv(url_var), *env_pw = getenv(pw_var);
	const char *password = cr_nonempty(env_pw) ? env_pw : db->password;
	char *url = NULL;
	if (cr_nonempty(env_url))
		url = cr_url_normalized(env_url, password);
	else if (cr_nonempty(db->url))
		url = cr_url_normalized(db->url, password);
	else if (cr_nonempty(db->host) && cr_nonempty(db->user) && cr_nonempty(db->database)) {
		char *bare = cr_database_url(db, false);
		url = cr_url_normalized(bare, password);
		free(bare);
	} else
		cr_error("database %s: no URL: set %s (the Job gets it from its Secret), url, or "
			 "host, user and database", db->name, url_var);
	cr_secret_add(password);
	free(url_var);
	free(pw_var);
	return url;
}

enum cr_decision cr_migrate_decide(const struct cr_strlist *tables, const char *version_table,
				   bool allow_empty, const struct cr_strlist *missing)
{
	if (!allow_empty) {
		bool empty = true;
		for (size_t i = 0; empty && i < tables->n; i++) {
			const char *dot = strrchr(tables->items[i], '.');
			empty = strcmp(dot ? dot + 1 : tables->items[i], version_table) == 0;
		}
		if (empty)
			return CR_EMPTY_LEFT_ALONE;
	}
	return missing->n ? CR_NEEDED : CR_UP_TO_DATE;
}


void cr_migrate_missing_text(struct cr_buf *b, const struct cr_strlist *missing, bool native,
			     size_t max)
{
	if (!native && missing->n)
		cr_buf_adds(b, "at least ");
	cr_strlist_text(b, missing, max);
	if (!native && missing->n)
		cr_buf_adds(b, " (the heads not stored; which revisions before them are missing "
			       "is unknown: the scripts were not read natively)");
}

static void missing_text(struct cr_buf *b, const struct db_run *d)
{
	cr_migrate_missing_text(b, &d->missing, d->native, 8);
}

static void fail(struct db_run *d, const char *why)
{
	d->outcome = O_FAILED;
	free(d->why);
	d->why = xstrdup(why);
}

static long long lock_key_of(const struct cr_alembic_project *p)
{
	char *name = xasprintf("%s.%s", p->version_table_schema ? p->version_table_schema : "",
			       p->version_table);
	long long key = ((long long)cr_fnv1a("chartreuse", 10) << 31) ^
			cr_fnv1a(name, strlen(name));
	free(name);
	return key;
}

static struct cr_alembic_call call_of(struct db_run *d)
{
	return (struct cr_alembic_call){ d->db->name, &d->project, d->url, &d->extra };
}

void cr_migrate_alembic_extra(const struct cr_database *db, struct cr_strlist *extra)
{
	for (size_t i = 0; i < db->additional_parameters.n; i++)
		cr_strlist_add(extra, db->additional_parameters.items[i]);
	if (db->patroni) {
		cr_strlist_add(extra, "-x");
		cr_strlist_add(extra, "patroni_postgresql=yes");
	}
}

int cr_migrate_heads(const struct cr_alembic_call *call, struct cr_revgraph *g, bool *native,
		     struct cr_strlist *heads)
{
	char *why = NULL;
	int rc = cr_revgraph_load(call->project, g, &why);
	*native = rc == 0;
	if (rc < 0)
		return -1;
	if (rc == 0) {
		for (size_t i = 0; i < g->heads.n; i++)
			cr_strlist_add(heads, g->heads.items[i]);
		return 0;
	}
	cr_warn("database %s: %s; asking `alembic heads` instead", call->db_name, why);
	free(why);
	return cr_alembic_cli_heads(call, heads);
}

/* Without the graph, anything that is a head and not stored is taken as missing. This can
 * only err towards running Alembic, which then finds nothing to do. */
int cr_migrate_missing(const struct cr_revgraph *g, const struct cr_strlist *heads,
		       const struct cr_strlist *stored, struct cr_strlist *missing)
{
	if (g)
		return cr_revgraph_missing(g, stored, missing);
	memset(missing, 0, sizeof(*missing));
	for (size_t i = 0; i < heads->n; i++)
		if (!cr_strlist_has(stored, heads->items[i]))
			cr_strlist_add(missing, heads->items[i]);
	return 0;
}

/* The project and its graph; heads from `alembic heads` when the scripts can't be read
 * natively with certainty. */
static int read_project(struct db_run *d)
{
	const struct cr_database *db = d->db;
	if (cr_alembic_load(db->alembic_directory, db->alembic_config_file, db->alembic_section,
			    &d->project))
		return -1;
	cr_migrate_alembic_extra(db, &d->extra);
	d->lock_key = lock_key_of(&d->project);
	struct cr_alembic_call c = call_of(d);
	return cr_migrate_heads(&c, &d->graph, &d->native, &d->heads);
}

static int read_state(struct db_run *d)
{
	cr_strlist_free(&d->stored);
	cr_strlist_free(&d->missing);
	if (cr_pg_stored_revisions(d->pg, d->project.version_table_schema,
				   d->project.version_table, &d->stored))
		return -1;
	return cr_migrate_missing(d->native ? &d->graph : NULL, &d->heads, &d->stored,
				  &d->missing);
}

static int decide(struct db_run *d)
{
	struct cr_strlist tables = { 0 };
	int rc = cr_pg_tables(d->pg, &tables);
	if (!rc)
		rc = read_state(d);
	if (rc) {
		cr_strlist_free(&tables);
		return -1;
	}
	struct cr_buf stored = { 0 }, heads = { 0 }, missing = { 0 };
	cr_strlist_text(&stored, &d->stored, 8);
	cr_strlist_text(&heads, &d->heads, 8);
	missing_text(&missing, d);
	cr_info("database %s: stored %s; heads %s%s; not applied %s", d->db->name, stored.data,
		heads.data, d->native ? "" : " (from `alembic heads`)", missing.data);
	switch (cr_migrate_decide(&tables, d->project.version_table,
				  d->db->allow_migration_from_empty_database, &d->missing)) {
	case CR_UP_TO_DATE:
		d->outcome = O_UP_TO_DATE;
		break;
	case CR_EMPTY_LEFT_ALONE:
		d->outcome = O_LEFT_ALONE;
		break;
	case CR_NEEDED:
		d->outcome = O_NEEDED;
		break;
	}
	cr_buf_free(&stored);
	cr_buf_free(&heads);
	cr_buf_free(&missing);
	cr_strlist_free(&tables);
	return 0;
}

/* The operator creates the roles and default privileges some time after the database;
 * migrating before that would leave tables the application cannot use. */
static int wait_patroni_configured(struct db_run *d)
{
	struct cr_progress prog = cr_progress_start();
	char *why = NULL;
	int ready;
	while ((ready = cr_pg_patroni_ready(d->pg, &why)) == 0) {
		if (cr_now_s() - prog.start >= (double)d->db->patroni_wait_timeout)
			break;
		double waited = cr_progress_due(&prog);
		if (waited)
			cr_info("database %s: waiting for the postgres-operator to set up its roles "
				"(%.0f s): %s", d->db->name, waited, why ? why : "");
		if (cr_sleep_ms(1000, true)) {
			cr_error("database %s: interrupted (signal %d) while waiting for the "
				 "postgres-operator", d->db->name, cr_terminated());
			ready = -2;
			break;
		}
	}
	if (ready == 0)
		cr_error("database %s: the postgres-operator roles and default privileges are not "
			 "in place after %ld s: %s", d->db->name, d->db->patroni_wait_timeout,
			 why ? why : "");
	else if (ready == -1)
		cr_error("database %s: the connection was lost while checking the "
			 "postgres-operator roles", d->db->name);
	free(why);
	return ready == 1 ? 0 : -1;
}

static void prepare(struct db_run *d, const struct cr_migrate_options *o)
{
	if (read_project(d)) {
		fail(d, "its Alembic project could not be read");
		return;
	}
	if (cr_pg_connect(d->db->name, d->url, o->connect_timeout, &d->pg)) {
		fail(d, "cannot connect");
		return;
	}
	if (d->db->patroni && wait_patroni_configured(d)) {
		fail(d, "postgres-operator roles not ready");
		return;
	}
	if (!o->dry_run) {
		int rc = cr_pg_lock(d->pg, d->lock_key, o->lock_timeout);
		if (rc) {
			if (rc > 0)
				cr_error("database %s: another migration still holds the lock after "
					 "%d s", d->db->name, o->lock_timeout);
			fail(d, "lock not obtained");
			return;
		}
		d->locked = true;
	}
	if (decide(d))
		fail(d, "its state could not be read");
}

/* The revision whose script appears last in a traceback in Alembic's output (Alembic only
 * logs "Running upgrade" lines when env.py configures logging), else the last one it
 * said it was running. */
static const char *failed_revision(const struct db_run *d, const struct cr_alembic_result *res)
{
	const char *best = NULL;
	const char *best_at = NULL;
	for (size_t i = 0; d->native && res->output.data && i < d->graph.n; i++) {
		const char *path = d->graph.revs[i].path;
		for (const char *at = res->output.data; (at = strstr(at, path)); at++)
			if (at > best_at) {
				best_at = at;
				best = d->graph.revs[i].id;
			}
	}
	return best ? best : res->last_upgrade;
}

static bool same_set(const struct cr_strlist *a, const struct cr_strlist *b)
{
	if (a->n != b->n)
		return false;
	for (size_t i = 0; i < a->n; i++)
		if (!cr_strlist_has(b, a->items[i]))
			return false;
	return true;
}

/* The session's connection, or a new one if the failure took it away (its lock went
 * with it). */
/* A restarting server is a common reason for the connection to be gone: it gets this long
 * to come back before the state is given up as unknown (and the pods left stopped). */
#define SERVER_BACK_TIMEOUT_S 60

static int reconnect_if_lost(struct db_run *d, const struct cr_migrate_options *o)
{
	cr_log_mute(true);
	int alive = cr_pg_exec(d->pg, "SELECT 1", 0, NULL) == 0;
	cr_log_mute(false);
	if (alive)
		return 0;
	cr_pg_close(d->pg);
	d->pg = NULL;
	d->locked = false;
	cr_info("database %s: the connection was lost; connecting again", d->db->name);
	if (cr_pg_wait(d->db->name, d->url, SERVER_BACK_TIMEOUT_S))
		return -1;
	return cr_pg_connect(d->db->name, d->url, o->connect_timeout, &d->pg);
}

/* A killed Alembic leaves its server session running its last statement, holding its
 * transaction open until the server notices: ended here, so that it rolls back now. */
static void end_alembic_sessions(struct db_run *d)
{
	char *name = cr_alembic_cli_session_name();
	int n = name ? cr_pg_end_sessions(d->pg, name) : 0;
	if (n > 0)
		cr_info("database %s: ended %d session%s Alembic left behind", d->db->name, n,
			n == 1 ? "" : "s");
	free(name);
}

/* The version table once Alembic's transaction, if one is still in flight, has ended. */
static int settled_state(struct db_run *d, const struct cr_migrate_options *o,
			 struct cr_strlist *now)
{
	if (reconnect_if_lost(d, o))
		return -1;
	end_alembic_sessions(d);
	const struct cr_alembic_project *p = &d->project;
	return cr_pg_settled_revisions(d->pg, p->version_table_schema, p->version_table,
				       o->connect_timeout, now);
}

/* Nothing of the graph missing from these stored revisions (known only with the graph). */
static bool at_heads(struct db_run *d, const struct cr_strlist *stored)
{
	struct cr_strlist missing = { 0 };
	bool none = d->native && cr_revgraph_missing(&d->graph, stored, &missing) == 0 &&
		    missing.n == 0;
	cr_strlist_free(&missing);
	return none;
}

/* After a failure: is the database exactly where it was, or (Alembic was stopped after
 * its last commit) at its heads? Anything not proven counts as changed. */
static void judge_failure(struct db_run *d, const struct cr_migrate_options *o,
			  const struct cr_strlist *before)
{
	struct cr_strlist now = { 0 };
	if (settled_state(d, o, &now)) {
		cr_error("database %s: its revisions after the failure cannot be read: counted as "
			 "changed", d->db->name);
		return;
	}
	struct cr_buf b = { 0 }, a = { 0 };
	cr_strlist_text(&b, before, 8);
	cr_strlist_text(&a, &now, 8);
	d->unchanged = same_set(&now, before);
	if (d->unchanged) {
		cr_info("database %s: unchanged by the failed upgrade (still at %s)", d->db->name,
			b.data);
	} else if (at_heads(d, &now)) {
		cr_warn("database %s: alembic did not finish cleanly, but the database is at its "
			"heads (%s): counted as migrated", d->db->name, a.data);
		d->outcome = O_MIGRATED;
	} else {
		cr_error("database %s: the failed upgrade changed it: it was at %s, it is at %s",
			 d->db->name, b.data, a.data);
	}
	cr_buf_free(&b);
	cr_buf_free(&a);
	cr_strlist_free(&now);
}

static void upgrade(struct db_run *d, const struct cr_migrate_options *o, struct cr_pods *pods)
{
	const char *target = d->heads.n > 1 ? "heads" : "head";
	const char *const args[] = { "upgrade", target, NULL };
	struct cr_strlist before = { 0 };
	for (size_t i = 0; i < d->stored.n; i++)
		cr_strlist_add(&before, d->stored.items[i]);
	cr_info("database %s: running alembic upgrade %s", d->db->name, target);
	struct cr_buf todo = { 0 };
	cr_strlist_text(&todo, &d->missing, 8);
	cr_pods_event(pods, false, "Migrating", "database %s: alembic upgrade %s (%s)",
		      d->db->name, target, todo.data);
	cr_buf_free(&todo);
	d->ran = true;
	for (size_t i = 0; i < d->missing.n; i++)
		cr_strlist_add(&d->applied, d->missing.items[i]);
	struct cr_alembic_call c = call_of(d);
	struct cr_alembic_result res;
	double t0 = cr_now_s();
	int rc = cr_alembic_cli(&c, args, &res);
	d->alembic_s = cr_now_s() - t0;
	if (rc != 0) {
		const char *rev = failed_revision(d, &res);
		char *why = cr_terminated() ? xasprintf("alembic upgrade interrupted by signal %d",
							cr_terminated())
			    : rev ? xasprintf("alembic upgrade failed at revision %s (exit %d)", rev,
					      rc)
				  : xasprintf("alembic upgrade failed (exit %d)", rc);
		cr_error("database %s: %s", d->db->name, why);
		fail(d, why);
		free(why);
		judge_failure(d, o, &before);
	} else if (reconnect_if_lost(d, o) || read_state(d)) {
		fail(d, "its state after the upgrade could not be read");
	} else if (d->native && d->missing.n) {
		struct cr_buf m = { 0 };
		cr_strlist_text(&m, &d->missing, 8);
		cr_error("database %s: alembic succeeded but revisions are still not applied: %s",
			 d->db->name, m.data);
		fail(d, "not at the heads after the upgrade");
		cr_buf_free(&m);
	} else {
		d->outcome = O_MIGRATED;
	}
	if (d->outcome == O_MIGRATED)
		cr_pods_event(pods, false, "Migrated", "database %s: migrated in %.1f s",
			      d->db->name, d->alembic_s);
	else
		cr_pods_event(pods, true, "MigrationFailed", "database %s: %s", d->db->name,
			      d->why ? d->why : "failed");
	cr_strlist_free(&before);
	cr_alembic_result_free(&res);
}

static const char *outcome_text(const struct db_run *d, bool dry_run)
{
	switch (d->outcome) {
	case O_UP_TO_DATE:
		return "up to date, nothing to do";
	case O_LEFT_ALONE:
		return "empty and allowMigrationFromEmptyDatabase is off: left alone";
	case O_NEEDED:
		return dry_run ? "migration needed" : "migration needed, not run";
	case O_MIGRATED:
		return "migrated";
	default:
		return "FAILED";
	}
}

static const char *outcome_name(enum outcome o)
{
	static const char *const names[] = {
		[O_PENDING] = "failed", [O_UP_TO_DATE] = "up-to-date",
		[O_LEFT_ALONE] = "empty-left-alone", [O_NEEDED] = "migration-needed",
		[O_MIGRATED] = "migrated", [O_FAILED] = "failed",
	};
	return names[o];
}

/* The dry run's decisions as data (-o json|yaml), the text lines' content. */
static int report_tree(const struct db_run *runs, size_t n, const struct cr_eslembic_run *es,
		       enum cr_format f)
{
	struct fy_document *doc = yt_document();
	struct fy_node *root = yt_map(doc);
	fy_document_set_root(doc, root);
	yt_set(root, "dryRun", yt_bool(doc, true));
	struct fy_node *dbs = yt_child_seq(root, "databases");
	for (size_t i = 0; i < n; i++) {
		const struct db_run *d = &runs[i];
		struct fy_node *m = yt_map(doc);
		yt_set_str(m, "name", d->db->name);
		yt_set_str(m, "decision", outcome_name(d->outcome));
		struct fy_node *missing = yt_seq(doc);
		for (size_t k = 0; d->outcome == O_NEEDED && k < d->missing.n; k++)
			yt_append(missing, yt_str(doc, d->missing.items[k]));
		yt_set(m, "notApplied", missing);
		/* false: from `alembic heads`, only the heads not stored are known missing */
		yt_set(m, "notAppliedComplete", yt_bool(doc, d->native));
		if (d->outcome == O_FAILED && d->why) {
			char *masked = cr_mask(d->why);
			yt_set_str(m, "error", masked);
			free(masked);
		}
		yt_append(dbs, m);
	}
	if (es)
		yt_set_str(root, "eslembic", cr_eslembic_outcome_name(es));
	struct cr_buf out = { 0 };
	int rc = cr_format_emit(doc, f, &out);
	fy_document_destroy(doc);
	if (!rc && cr_write_all(1, out.data, out.len) < 0) {
		cr_error("migrate: cannot write to stdout");
		rc = -1;
	}
	cr_buf_free(&out);
	return rc;
}

static void report(struct db_run *runs, size_t n, bool dry_run)
{
	for (size_t i = 0; i < n; i++) {
		struct db_run *d = &runs[i];
		struct cr_buf line = { 0 };
		cr_buf_printf(&line, "%s: %s", d->db->name, outcome_text(d, dry_run));
		if (d->outcome == O_NEEDED) {
			cr_buf_adds(&line, " (not applied: ");
			missing_text(&line, d);
			cr_buf_adds(&line, ")");
		} else if (d->outcome == O_MIGRATED && d->ran) {
			cr_buf_adds(&line, " (applied ");
			cr_strlist_text(&line, &d->applied, 8);
			cr_buf_printf(&line, "; alembic took %.1f s)", d->alembic_s);
		} else if (d->outcome == O_FAILED && d->why) {
			cr_buf_printf(&line, " (%s)", d->why);
		}
		if (dry_run) {
			char *masked = cr_mask(line.data);
			printf("%s\n", masked);
			free(masked);
		} else {
			cr_info("%s", line.data);
		}
		cr_buf_free(&line);
	}
	fflush(stdout);
}

static void release(struct db_run *d)
{
	if (d->locked)
		cr_pg_unlock(d->pg, d->lock_key);
	if (d->pg)
		cr_pg_close(d->pg);
	cr_alembic_free(&d->project);
	cr_revgraph_free(&d->graph);
	cr_strlist_free(&d->heads);
	cr_strlist_free(&d->stored);
	cr_strlist_free(&d->missing);
	cr_strlist_free(&d->extra);
	cr_strlist_free(&d->applied);
	free(d->url);
	free(d->why);
}

static size_t count(const struct db_run *runs, size_t n, enum outcome o)
{
	size_t k = 0;
	for (size_t i = 0; i < n; i++)
		k += runs[i].outcome == o;
	return k;
}

/* The pods may come back after a failure only if no database (nor the indices) is left
 * somewhere between its old revisions and its heads. */
static bool safe_to_start(const struct db_run *runs, size_t n,
			  const struct cr_eslembic_run *es)
{
	for (size_t i = 0; i < n; i++)
		if (runs[i].ran && runs[i].outcome == O_FAILED && !runs[i].unchanged)
			return false;
	return cr_eslembic_unchanged(es);
}

/* 0 when the pods are where they should be; -1 when some were left stopped (the way
 * back was printed). */
static int start_after(struct cr_pods *pods, struct db_run *runs, size_t n,
		       struct cr_eslembic_run *es, const struct cr_migrate_options *o,
		       const char *restore)
{
	const char *way_back = restore ? restore : "chartreuse restore";
	bool failed = count(runs, n, O_FAILED) > 0 || cr_eslembic_failed(es);
	if (!failed && !o->start_pods_after)
		return 0;
	if (failed && !safe_to_start(runs, n, es)) {
		cr_error("the pods stay stopped: a store was changed by a failed migration and "
			 "the old pods may not work with it; once it is repaired, bring them back "
			 "with: %s", way_back);
		return -1;
	}
	/* After a failure even in before-deployment mode: the failed hook stops the upgrade,
	 * so no new pods are coming. */
	if (failed)
		cr_info("nothing was changed: starting the pods again");
	if (cr_pods_start(pods)) {
		cr_error("the pods could not all be started; bring them back with: %s", way_back);
		return -1;
	}
	return 0;
}

/* Before anything is stopped, what would otherwise fail with the service down: every
 * revision script compiles, the version table can be written, the lock is held; with
 * stopPods, the cluster answers and the release's ExpectedDeploymentScales can be read.
 * 0 when all hold; -1 when one failed (reported, and nothing was changed). *pods gets the
 * cluster session the run goes on with. */
static int preflight(const struct cr_config *cfg, struct db_run *runs, size_t n,
		     const struct cr_migrate_options *o, struct cr_pods **pods)
{
	int bad = 0;
	for (size_t i = 0; i < n; i++) {
		struct db_run *d = &runs[i];
		if (d->outcome != O_NEEDED)
			continue;
		const struct cr_alembic_project *p = &d->project;
		/* Without the graph `alembic heads` ran: Alembic imported every script already. */
		if (d->native && cr_alembic_cli_compile(d->db->name, &d->graph) == 1)
			bad = -1;
		if (cr_pg_version_table_writable(d->pg, p->version_table_schema, p->version_table))
			bad = -1;
		if (!o->dry_run && !d->locked) {
			cr_error("database %s: its migration lock is not held", d->db->name);
			bad = -1;
		}
	}
	if (cfg->stop_pods) {
		static const struct cr_k8s_options from_environment;
		*pods = cr_pods_open_with(cfg, o->k8s ? o->k8s : &from_environment);
		if (!*pods || cr_pods_check(*pods)) {
			cr_error("stopping the release's Deployments needs the cluster (above); to "
				 "migrate the databases without stopping them, set stopPods: false");
			bad = -1;
		}
	}
	return bad;
}

/* The summary's line on the service: how long it was down, from the first scale-down to
 * the last Deployment back (or still down, or left for the new release to start). */
static void report_downtime(double down_s, int left_down, const struct cr_migrate_options *o)
{
	if (left_down)
		cr_info("the release's Deployments are still stopped (%.1f s so far)", down_s);
	else if (o->start_pods_after)
		cr_info("the release's Deployments were down for %.1f s", down_s);
	else
		cr_info("the release's Deployments stay stopped for the new release to start "
			"(stopped %.1f s ago)", down_s);
}

static void not_run(struct db_run *runs, size_t n, struct cr_eslembic_run *es,
		    const char *why)
{
	for (size_t i = 0; i < n; i++)
		if (runs[i].outcome == O_NEEDED)
			fail(&runs[i], why);
	cr_eslembic_not_run(es, why);
}

/* 0, or -1 when pods were left stopped. pods: NULL without stopPods. */
static int migrate_needed(struct cr_pods *pods, struct db_run *runs, size_t n,
			  struct cr_eslembic_run *es, const struct cr_migrate_options *o)
{
	char *restore = NULL;
	int rc = 0;
	double stopping = cr_now_s();
	enum cr_pods_stop stop = pods ? cr_pods_stop(pods, &restore) : CR_PODS_STOPPED;
	if (stop != CR_PODS_STOPPED) {
		not_run(runs, n, es, "not run: the pods could not be stopped");
		if (stop == CR_PODS_PARTLY)
			rc = start_after(pods, runs, n, es, o, restore);
		free(restore);
		return rc;
	}
	for (size_t i = 0; i < n; i++) {
		if (runs[i].outcome != O_NEEDED)
			continue;
		if (cr_terminated()) {
			cr_error("database %s: interrupted (signal %d): alembic not run",
				 runs[i].db->name, cr_terminated());
			fail(&runs[i], "not run: interrupted");
		} else {
			upgrade(&runs[i], o, pods);
		}
	}
	if (cr_terminated())
		cr_eslembic_not_run(es, "not run: interrupted");
	else
		cr_eslembic_upgrade(es); /* after the databases, pods still stopped */
	if (pods)
		rc = start_after(pods, runs, n, es, o, restore);
	if (pods)
		report_downtime(cr_now_s() - stopping, rc, o);
	free(restore);
	return rc;
}

int cr_migrate(const struct cr_config *cfg, const struct cr_migrate_options *o)
{
	cr_podsec_report();
	/* Elasticsearch first: a running follow-up Job refuses the migration before anything
	 * is done. NULL when eslembic is not configured. */
	struct cr_eslembic_run *es = NULL;
	if (cr_eslembic_prepare(cfg, o->dry_run, &es)) {
		cr_eslembic_free(es);
		return -1;
	}
	size_t n = cfg->n_databases;
	struct db_run *runs = xcalloc(n, sizeof(*runs));
	for (size_t i = 0; i < n; i++) {
		runs[i].db = &cfg->databases[i];
		runs[i].index = i;
		runs[i].url = cr_migrate_database_url(cfg, i);
		if (!runs[i].url)
			fail(&runs[i], "no URL");
		else
			prepare(&runs[i], o);
	}
	int pods_left_down = 0;
	bool pending = count(runs, n, O_NEEDED) || cr_eslembic_needed(es);
	struct cr_pods *pods = NULL;
	if (pending && preflight(cfg, runs, n, o, &pods)) {
		cr_error("a check before the migration failed: nothing was stopped or changed");
		not_run(runs, n, es, "not run: a check before the migration failed");
	} else if (pending && !o->dry_run) {
		if (cr_terminated()) {
			cr_error("interrupted before the migration started: nothing was changed");
			not_run(runs, n, es, "not run: interrupted");
		} else {
			pods_left_down = migrate_needed(pods, runs, n, es, o);
		}
	}
	cr_pods_close(pods);
	int failed = 0;
	if (o->dry_run && o->format != CR_FORMAT_TABLE) {
		failed = report_tree(runs, n, es, o->format);
	} else {
		report(runs, n, o->dry_run);
		cr_eslembic_report(es, o->dry_run);
	}
	failed = failed || count(runs, n, O_FAILED) > 0 || cr_eslembic_failed(es) ||
		 pods_left_down;
	pending = count(runs, n, O_NEEDED) || cr_eslembic_needed(es);
	for (size_t i = 0; i < n; i++)
		release(&runs[i]);
	free(runs);
	cr_eslembic_free(es);
	return failed ? -1 : pending && o->dry_run ? 1 : 0;
}
