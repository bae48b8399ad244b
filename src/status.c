#include "status.h"
#include "revgraph.h"
#include "alembic_cli.h"
#include "config.h"
#include "json.h"
#include "k8s.h"
#include "log.h"
#include "migrate.h"
#include "pg.h"
#include "pods.h"
#include "release.h"
#include "util.h"
#include "ytree.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MIGRATION_LABEL "chartreuse.wiremind.io/migration"
#define COMPONENT_LABEL "app.kubernetes.io/component"
#define LIST_MAX 8 /* revisions shown in a problem line; the JSON has them all */

/* --- the model ----------------------------------------------------------------------------- */

enum db_state {
	DB_UP_TO_DATE,
	DB_EMPTY,
	DB_NEEDED,
	DB_UNKNOWN_REVISION,
	DB_UNREACHABLE,
	DB_UNREADABLE,
};

static const struct {
	const char *name;
	enum cr_status_verdict verdict;
} db_states[] = {
	[DB_UP_TO_DATE] = { "up-to-date", CR_STATUS_OK },
	/* migrate leaves such a database alone by rule: nothing is expected of it */
	[DB_EMPTY] = { "empty-left-alone", CR_STATUS_OK },
	[DB_NEEDED] = { "migration-needed", CR_STATUS_ATTENTION },
	/* the database is at a revision the scripts don't define: migrate would fail */
	[DB_UNKNOWN_REVISION] = { "unknown-revision", CR_STATUS_ATTENTION },
	[DB_UNREACHABLE] = { "unreachable", CR_STATUS_UNKNOWN },
	[DB_UNREADABLE] = { "unreadable", CR_STATUS_UNKNOWN },
};

struct db {
	char *name;
	char *url; /* masked */
	enum db_state state;
	char *error; /* masked, why the state is not known */
	const char *heads_from; /* "scripts", "alembic heads", NULL: unknown */
	struct cr_strlist stored, heads, missing;
	bool have_stored, have_missing;
	bool missing_complete; /* from the graph: every revision not applied, not only heads */
};

enum dep_state {
	DEP_RUNNING,
	DEP_IDLE,
	DEP_MISSING,
	DEP_STOPPED,
	DEP_PAUSED,
	DEP_SCALED_DOWN,
	DEP_NOT_READY,
};

static const struct {
	const char *name;
	bool ok;
} dep_states[] = {
	[DEP_RUNNING] = { "running", true },
	[DEP_IDLE] = { "idle", true }, /* expectedScale 0, and at 0 */
	[DEP_MISSING] = { "missing", false },
	[DEP_STOPPED] = { "stopped", false },
	[DEP_PAUSED] = { "hpa-paused", false },
	[DEP_SCALED_DOWN] = { "scaled-down", false },
	[DEP_NOT_READY] = { "not-ready", false },
};

struct deployment {
	char *name;
	long priority, expected;
	bool exists;
	long replicas, ready;
	bool stopped;		 /* chartreuse's annotation is on it */
	struct cr_strlist hpas;	 /* HPAs targeting it */
	struct cr_strlist paused; /* those chartreuse paused */
	enum dep_state state;
};

struct job {
	char *name, *migration, *component, *created;
	const char *outcome;
	char *detail;
};

struct cr_status {
	char *release, *namespace, *server;
	struct db *dbs;
	size_t n_dbs;
	char *db_note; /* why there is no database section */
	bool k8s_read; /* deployments and jobs were read */
	char *k8s_error;
	struct deployment *deps;
	size_t n_deps;
	char *deps_note;
	struct job *jobs;
	size_t n_jobs;
	char *jobs_note;
	struct cr_strlist problems;
	enum cr_status_verdict verdict;
};

static void problem(struct cr_status *s, enum cr_status_verdict v, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* A known problem outweighs an unreadable part: the answer is "no" either way, and the
 * problem says why. */
static void problem(struct cr_status *s, enum cr_status_verdict v, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	char *text = xvasprintf(fmt, ap);
	va_end(ap);
	char *masked = cr_mask(text);
	cr_strlist_add(&s->problems, masked);
	free(masked);
	free(text);
	if (v == CR_STATUS_ATTENTION || (v == CR_STATUS_UNKNOWN && s->verdict == CR_STATUS_OK))
		s->verdict = v;
}

/* The message just reported, to show in the output too. */
static char *last_error(const char *fallback)
{
	const char *e = cr_log_last_error();
	return xstrdup(e ? e : fallback);
}


/* --- databases ----------------------------------------------------------------------------- */

struct db_read {
	const struct cr_database *cfg;
	char *url;
	struct cr_alembic_project project;
	struct cr_revgraph graph;
	bool native;
	struct cr_strlist extra;
	char *project_error; /* the project or its heads could not be read */
};

static void read_heads(struct db_read *r, struct db *d)
{
	const struct cr_database *db = r->cfg;
	if (cr_alembic_load(db->alembic_directory, db->alembic_config_file, db->alembic_section,
			    &r->project)) {
		r->project_error = last_error("its Alembic project could not be read");
		return;
	}
	cr_migrate_alembic_extra(db, &r->extra);
	struct cr_alembic_call call = { db->name, &r->project, r->url, &r->extra };
	if (cr_migrate_heads(&call, &r->graph, &r->native, &d->heads)) {
		r->project_error = last_error("the heads of its Alembic project could not be read");
		cr_strlist_free(&d->heads);
		return;
	}
	d->heads_from = r->native ? "scripts" : "alembic heads";
	d->missing_complete = r->native;
}

/* Takes error; also (may be NULL) is an earlier failure worth keeping. */
static void db_fail(struct db *d, enum db_state state, char *error, const char *also)
{
	d->state = state;
	d->error = error;
	if (also) {
		d->error = xasprintf("%s; %s", error, also);
		free(error);
	}
}

/* What is missing, and migrate's decision, once the stored revisions are known. */
static void decide(struct db_read *r, struct db *d, const struct cr_strlist *tables,
		   const char *table)
{
	if (r->project_error) {
		db_fail(d, DB_UNREADABLE, xstrdup(r->project_error), NULL);
		return;
	}
	if (cr_migrate_missing(r->native ? &r->graph : NULL, &d->heads, &d->stored,
			       &d->missing)) {
		db_fail(d, DB_UNKNOWN_REVISION, last_error("a stored revision is unknown"), NULL);
		return;
	}
	d->have_missing = true;
	switch (cr_migrate_decide(tables, table, r->cfg->allow_migration_from_empty_database,
				  &d->missing)) {
	case CR_UP_TO_DATE:
		d->state = DB_UP_TO_DATE;
		break;
	case CR_EMPTY_LEFT_ALONE:
		d->state = DB_EMPTY;
		break;
	case CR_NEEDED:
		d->state = DB_NEEDED;
		break;
	}
}

/* Stored revisions, then what is missing and migrate's decision. Read-only: no lock (a
 * migration running meanwhile shows as what it has applied so far). */
static void read_stored(struct db_read *r, struct db *d, int connect_timeout)
{
	const char *table = r->project.version_table ? r->project.version_table
						     : "alembic_version";
	struct cr_pg *pg = NULL;
	struct cr_strlist tables = { 0 };
	if (cr_pg_connect(d->name, r->url, connect_timeout, &pg)) {
		db_fail(d, DB_UNREACHABLE, last_error("cannot connect"), r->project_error);
		return;
	}
	if (cr_pg_tables(pg, &tables) ||
	    cr_pg_stored_revisions(pg, r->project.version_table_schema, table, &d->stored)) {
		cr_strlist_free(&d->stored);
		db_fail(d, DB_UNREADABLE, last_error("its version table could not be read"),
			r->project_error);
	} else {
		d->have_stored = true;
		decide(r, d, &tables, table);
	}
	cr_strlist_free(&tables);
	cr_pg_close(pg);
}

static void read_database(const struct cr_status_options *o, size_t i, struct db *d)
{
	struct db_read r = { .cfg = &o->cfg->databases[i] };
	d->name = xstrdup(r.cfg->name);
	r.url = cr_migrate_database_url(o->cfg, i);
	if (!r.url) {
		db_fail(d, DB_UNREADABLE, last_error("no URL"), NULL);
		return;
	}
	d->url = cr_mask(r.url);
	read_heads(&r, d);
	read_stored(&r, d, o->connect_timeout);
	cr_alembic_free(&r.project);
	cr_revgraph_free(&r.graph);
	cr_strlist_free(&r.extra);
	free(r.project_error);
	free(r.url);
}

/* "database x: ..." unless the message names the database already. */
static void db_problem(struct cr_status *s, const struct db *d)
{
	enum cr_status_verdict v = db_states[d->state].verdict;
	if (v == CR_STATUS_OK)
		return;
	if (d->state == DB_NEEDED) {
		struct cr_buf m = { 0 };
		cr_migrate_missing_text(&m, &d->missing, d->missing_complete, LIST_MAX);
		problem(s, v, "database %s: migration needed: not applied %s", d->name, m.data);
		cr_buf_free(&m);
		return;
	}
	char *prefix = xasprintf("database %s", d->name);
	size_t n = strlen(prefix);
	if (!strncmp(d->error, prefix, n) && (d->error[n] == ' ' || d->error[n] == ':'))
		problem(s, v, "%s", d->error);
	else
		problem(s, v, "database %s: %s: %s", d->name, db_states[d->state].name, d->error);
	free(prefix);
}

static void read_databases(struct cr_status *s, const struct cr_status_options *o)
{
	if (!o->cfg || !o->cfg->n_databases) {
		s->db_note = xstrdup("no database configured: pass --config FILE (the migration "
				     "Job's config.yaml) or set CHARTREUSE_ALEMBIC_URL");
		/* Nothing checked is no verdict: "at its heads" would be a guess. */
		problem(s, CR_STATUS_UNKNOWN, "databases: none checked (none configured)");
		return;
	}
	s->n_dbs = o->cfg->n_databases;
	s->dbs = xcalloc(s->n_dbs, sizeof(*s->dbs));
	for (size_t i = 0; i < s->n_dbs; i++) {
		read_database(o, i, &s->dbs[i]);
		db_problem(s, &s->dbs[i]);
	}
}

/* --- Deployments --------------------------------------------------------------------------- */

static long number_at(struct fy_node *root, const char *path, long def)
{
	char *s = yt_strdup(yt_path(root, path));
	char *end = NULL;
	long v = s ? strtol(s, &end, 10) : def;
	if (s && (end == s || *end))
		v = def;
	free(s);
	return v;
}

static bool has_annotation(struct fy_node *obj, const char *key)
{
	return yt_get(yt_path(obj, "/metadata/annotations"), key) != NULL;
}

static enum dep_state dep_state_of(const struct deployment *d)
{
	if (!d->exists)
		return DEP_MISSING;
	if (d->stopped)
		return DEP_STOPPED;
	if (d->paused.n)
		return DEP_PAUSED;
	/* With an HPA, any scale above 0 may be right; without one, the expected scale is. */
	if (d->expected > 0 && (d->replicas == 0 || (!d->hpas.n && d->replicas < d->expected)))
		return DEP_SCALED_DOWN;
	if (d->ready < d->replicas)
		return DEP_NOT_READY;
	return d->replicas ? DEP_RUNNING : DEP_IDLE;
}

static int read_deployment(struct cr_k8s *k, const char *ns, struct deployment *d)
{
	char *path = cr_k8s_path("/apis/apps/v1", ns, "deployments", d->name, NULL);
	struct fy_document *doc = NULL;
	int rc = cr_k8s_get(k, path, &doc);
	free(path);
	if (rc == CR_K8S_NOT_FOUND)
		return 0;
	if (rc)
		return -1;
	struct fy_node *root = fy_document_root(doc);
	d->exists = true;
	d->replicas = number_at(root, "/spec/replicas", 1); /* the API's default */
	d->ready = number_at(root, "/status/readyReplicas", 0);
	d->stopped = has_annotation(root, CR_STOPPED_ANNOTATION);
	fy_document_destroy(doc);
	return 0;
}

static struct deployment *deployment_named(struct cr_status *s, const char *name)
{
	for (size_t i = 0; name && i < s->n_deps; i++)
		if (!strcmp(s->deps[i].name, name))
			return &s->deps[i];
	return NULL;
}

/* One list of the namespace's HPAs, each matched to the Deployment it targets. */
static int read_hpas(struct cr_status *s, struct cr_k8s *k)
{
	char *path = cr_k8s_path("/apis/autoscaling/v2", s->namespace, "horizontalpodautoscalers",
				 NULL, NULL);
	struct fy_document *doc = NULL;
	int rc = cr_k8s_list(k, path, NULL, 0, &doc);
	free(path);
	if (rc)
		return -1;
	void *it = NULL;
	struct fy_node *hpa;
	while ((hpa = fy_node_sequence_iterate(yt_get(fy_document_root(doc), "items"), &it))) {
		struct fy_node *ref = yt_path(hpa, "/spec/scaleTargetRef");
		char *kind = yt_strdup(yt_get(ref, "kind")), *target = yt_strdup(yt_get(ref, "name"));
		char *name = yt_strdup(yt_path(hpa, "/metadata/name"));
		struct deployment *d = cr_streq(kind, "Deployment") ? deployment_named(s, target)
								    : NULL;
		if (d && name) {
			cr_strlist_add(&d->hpas, name);
			if (has_annotation(hpa, CR_HPA_BEHAVIOR_ANNOTATION))
				cr_strlist_add(&d->paused, name);
		}
		free(kind);
		free(target);
		free(name);
	}
	fy_document_destroy(doc);
	return 0;
}

static void dep_problem(struct cr_status *s, const struct deployment *d)
{
	const char *n = d->name;
	switch (d->state) {
	case DEP_MISSING:
		problem(s, CR_STATUS_ATTENTION,
			"Deployment %s (named by an ExpectedDeploymentScale) does not exist", n);
		break;
	case DEP_STOPPED:
		problem(s, CR_STATUS_ATTENTION,
			"Deployment %s is stopped by chartreuse (a migration is running or awaits its "
			"restore Job, or was interrupted: chartreuse restore --release %s "
			"--namespace %s brings it back)", n, s->release, s->namespace);
		break;
	case DEP_PAUSED:
		problem(s, CR_STATUS_ATTENTION,
			"Deployment %s: chartreuse paused the scale-up of its HPA %s (chartreuse "
			"restore --release %s --namespace %s gives it back)", n, d->paused.items[0],
			s->release, s->namespace);
		break;
	case DEP_SCALED_DOWN:
		problem(s, CR_STATUS_ATTENTION, "Deployment %s: %ld replicas, expected %ld", n,
			d->replicas, d->expected);
		break;
	case DEP_NOT_READY:
		problem(s, CR_STATUS_ATTENTION, "Deployment %s: %ld of %ld replicas ready", n, d->ready,
			d->replicas);
		break;
	default:
		break;
	}
}

/* A release with no ExpectedDeploymentScale must still be one Helm knows: a typo in its
 * name would otherwise read as a release with nothing to report. */
static int check_release(struct cr_status *s, struct cr_k8s *k)
{
	int found = cr_release_find(k, s->namespace, s->release);
	if (found < 0)
		return -1;
	if (found == CR_RELEASE_UNKNOWN)
		problem(s, CR_STATUS_UNKNOWN, "release %s: no ExpectedDeploymentScale, and listing "
			"Helm's release records in namespace %s is forbidden: cannot tell whether "
			"it exists", s->release, s->namespace);
	if (found == CR_RELEASE_ABSENT || found == CR_RELEASE_NO_NAMESPACE) {
		char *text = cr_release_absent_text(found, s->namespace, s->release);
		cr_error("status: %s", text);
		free(text);
		s->verdict = CR_STATUS_ABSENT;
	}
	return 0;
}

static int read_deployments(struct cr_status *s, struct cr_k8s *k)
{
	struct cr_pods_target *t = NULL;
	size_t n = 0;
	if (cr_pods_targets(k, s->namespace, s->release, &t, &n))
		return -1;
	s->deps = xcalloc(n ? n : 1, sizeof(*s->deps));
	s->n_deps = n;
	for (size_t i = 0; i < n; i++)
		s->deps[i] = (struct deployment){ .name = xstrdup(t[i].deployment),
						  .priority = t[i].priority,
						  .expected = t[i].expected };
	cr_pods_targets_free(t, n);
	if (!n)
		s->deps_note = xasprintf("release %s has no ExpectedDeploymentScale: no Deployment "
					 "is tracked", s->release);
	int rc = n ? 0 : check_release(s, k);
	for (size_t i = 0; !rc && i < n; i++)
		rc = read_deployment(k, s->namespace, &s->deps[i]);
	if (!rc && n)
		rc = read_hpas(s, k);
	return rc;
}

/* --- Jobs ---------------------------------------------------------------------------------- */

static bool condition_true(struct fy_node *c, const char *type)
{
	char *t = yt_strdup(yt_get(c, "type")), *st = yt_strdup(yt_get(c, "status"));
	bool yes = cr_streq(t, type) && cr_streq(st, "True");
	free(t);
	free(st);
	return yes;
}

static char *condition_detail(struct fy_node *c)
{
	char *reason = yt_strdup(yt_get(c, "reason")), *message = yt_strdup(yt_get(c, "message"));
	char *detail = NULL;
	if (cr_nonempty(reason) && cr_nonempty(message))
		detail = xasprintf("%s: %s", reason, message);
	else if (cr_nonempty(reason) || cr_nonempty(message))
		detail = xstrdup(cr_nonempty(reason) ? reason : message);
	free(reason);
	free(message);
	return detail;
}

const char *cr_status_job_outcome(struct fy_node *job, char **detail)
{
	*detail = NULL;
	void *it = NULL;
	struct fy_node *c;
	/* Conditions first: they are the Job controller's verdict (FailureTarget and
	 * SuccessCriteriaMet come before Failed and Complete, while the pods finish). */
	while ((c = fy_node_sequence_iterate(yt_path(job, "/status/conditions"), &it))) {
		if (condition_true(c, "Failed") || condition_true(c, "FailureTarget")) {
			*detail = condition_detail(c);
			return "failed";
		}
		if (condition_true(c, "Complete") || condition_true(c, "SuccessCriteriaMet"))
			return "succeeded";
	}
	long succeeded = number_at(job, "/status/succeeded", 0);
	long failed = number_at(job, "/status/failed", 0);
	if (succeeded > 0 && succeeded >= number_at(job, "/spec/completions", 1))
		return "succeeded";
	if (failed > number_at(job, "/spec/backoffLimit", 6)) {
		*detail = xasprintf("%ld failed pods", failed);
		return "failed";
	}
	char *suspend = yt_strdup(yt_path(job, "/spec/suspend"));
	bool suspended = cr_streq(suspend, "true");
	free(suspend);
	if (suspended)
		return "suspended";
	return number_at(job, "/status/active", 0) > 0 || failed > 0 ? "running" : "pending";
}

static char *label(struct fy_node *obj, const char *key, const char *def)
{
	char *v = yt_strdup(yt_get(yt_path(obj, "/metadata/labels"), key));
	return v ? v : xstrdup(def);
}

static void job_free(struct job *j)
{
	free(j->name);
	free(j->migration);
	free(j->component);
	free(j->created);
	free(j->detail);
}

static bool newer(const struct job *a, const struct job *b)
{
	int c = strcmp(a->created, b->created); /* RFC 3339 in UTC: text order is time order */
	return c > 0 || (c == 0 && strcmp(a->name, b->name) > 0);
}

/* The newest Job for each migration (a ChartreuseConfig) and kind (migration, restore):
 * an older failure that a newer run replaced is history, not state. */
static void keep_newest(struct cr_status *s, struct job *j)
{
	for (size_t i = 0; i < s->n_jobs; i++) {
		struct job *o = &s->jobs[i];
		if (strcmp(o->migration, j->migration) || strcmp(o->component, j->component))
			continue;
		if (newer(j, o)) {
			job_free(o);
			*o = *j;
		} else {
			job_free(j);
		}
		return;
	}
	s->jobs = xrealloc(s->jobs, (s->n_jobs + 1) * sizeof(*s->jobs));
	s->jobs[s->n_jobs++] = *j;
}

static int by_migration_then_kind(const void *a, const void *b)
{
	const struct job *x = a, *y = b;
	int c = strcmp(x->migration, y->migration);
	return c ? c : strcmp(x->component, y->component);
}

static void job_problem(struct cr_status *s, const struct job *j)
{
	const char *o = j->outcome;
	if (!strcmp(o, "succeeded"))
		return;
	if (!strcmp(o, "failed"))
		problem(s, CR_STATUS_ATTENTION, "Job %s (%s) failed%s%s", j->name, j->component,
			j->detail ? ": " : "", j->detail ? j->detail : "");
	else
		problem(s, CR_STATUS_ATTENTION, "Job %s (%s) is %s", j->name, j->component,
			!strcmp(o, "running") ? "still running" : o);
}

static int read_jobs(struct cr_status *s, struct cr_k8s *k)
{
	char *path = cr_k8s_path("/apis/batch/v1", s->namespace, "jobs", NULL, NULL);
	char *selector = xasprintf("app.kubernetes.io/name=chartreuse,"
				   "app.kubernetes.io/instance=%s", s->release);
	struct fy_document *doc = NULL;
	int rc = cr_k8s_list(k, path, selector, 0, &doc);
	free(path);
	free(selector);
	if (rc)
		return -1;
	void *it = NULL;
	struct fy_node *item;
	while ((item = fy_node_sequence_iterate(yt_get(fy_document_root(doc), "items"), &it))) {
		char *name = yt_strdup(yt_path(item, "/metadata/name"));
		char *created = yt_strdup(yt_path(item, "/metadata/creationTimestamp"));
		struct job j = { .name = name ? name : xstrdup("?"),
				 .created = created ? created : xstrdup(""),
				 .migration = label(item, MIGRATION_LABEL, ""),
				 .component = label(item, COMPONENT_LABEL, "migration") };
		j.outcome = cr_status_job_outcome(item, &j.detail);
		keep_newest(s, &j);
	}
	fy_document_destroy(doc);
	if (s->n_jobs)
		qsort(s->jobs, s->n_jobs, sizeof(*s->jobs), by_migration_then_kind);
	else
		s->jobs_note = xasprintf("no migration Job of release %s is left (Helm deletes a "
					 "hook Job that succeeded)", s->release);
	return 0;
}

/* --- Kubernetes ---------------------------------------------------------------------------- */

/* Interactive: fail fast rather than retry for a minute. */
static struct cr_k8s *connect_cluster(const struct cr_status_options *o)
{
	struct cr_k8s_options ko = {
		.kubeconfig = o->kubeconfig,
		.context = o->context,
		.namespace = o->namespace,
		.connect_timeout_ms = 5000,
		.timeout_ms = 20000,
		.tries = 3,
	};
	return cr_k8s_new(&ko);
}

/* After the first failure nothing more is asked: an unreachable server would make every
 * later request wait for its own timeouts. */
static void read_cluster(struct cr_status *s, const struct cr_status_options *o)
{
	struct cr_k8s *k = connect_cluster(o);
	int rc = k ? 0 : -1;
	if (k) {
		free(s->namespace);
		s->namespace = xstrdup(cr_k8s_namespace(k));
		s->server = xstrdup(cr_k8s_server(k));
		rc = read_deployments(s, k);
	}
	if (s->verdict == CR_STATUS_ABSENT) {
		cr_k8s_free(k);
		return;
	}
	if (!rc)
		rc = read_jobs(s, k);
	if (rc) {
		s->k8s_error = last_error("the Kubernetes API could not be read");
		/* the client's messages mostly name it already */
		problem(s, CR_STATUS_UNKNOWN, "%s%s",
			strncmp(s->k8s_error, "kubernetes", 10) ? "kubernetes: " : "",
			s->k8s_error);
	} else {
		/* Judged only once both were read: a section shown as unread has no problems. */
		s->k8s_read = true;
		for (size_t i = 0; i < s->n_deps; i++) {
			s->deps[i].state = dep_state_of(&s->deps[i]);
			dep_problem(s, &s->deps[i]);
		}
		for (size_t i = 0; i < s->n_jobs; i++)
			job_problem(s, &s->jobs[i]);
	}
	cr_k8s_free(k);
}

struct cr_status *cr_status_read(const struct cr_status_options *o)
{
	struct cr_status *s = xcalloc(1, sizeof(*s));
	s->release = xstrdup(o->release);
	s->namespace = o->namespace ? xstrdup(o->namespace) : NULL;
	/* The cluster first: for a release that does not exist there is nothing to read. */
	read_cluster(s, o);
	if (s->verdict == CR_STATUS_ABSENT)
		return s;
	struct cr_strlist k8s_problems = s->problems; /* listed after the databases' */
	memset(&s->problems, 0, sizeof(s->problems));
	read_databases(s, o);
	for (size_t i = 0; i < k8s_problems.n; i++)
		cr_strlist_add(&s->problems, k8s_problems.items[i]);
	cr_strlist_free(&k8s_problems);
	return s;
}

enum cr_status_verdict cr_status_verdict(const struct cr_status *s)
{
	return s->verdict;
}

void cr_status_free(struct cr_status *s)
{
	if (!s)
		return;
	for (size_t i = 0; i < s->n_dbs; i++) {
		struct db *d = &s->dbs[i];
		free(d->name);
		free(d->url);
		free(d->error);
		cr_strlist_free(&d->stored);
		cr_strlist_free(&d->heads);
		cr_strlist_free(&d->missing);
	}
	free(s->dbs);
	for (size_t i = 0; i < s->n_deps; i++) {
		free(s->deps[i].name);
		cr_strlist_free(&s->deps[i].hpas);
		cr_strlist_free(&s->deps[i].paused);
	}
	free(s->deps);
	for (size_t i = 0; i < s->n_jobs; i++)
		job_free(&s->jobs[i]);
	free(s->jobs);
	free(s->release);
	free(s->namespace);
	free(s->server);
	free(s->db_note);
	free(s->k8s_error);
	free(s->deps_note);
	free(s->jobs_note);
	cr_strlist_free(&s->problems);
	free(s);
}

/* --- JSON and YAML: one tree ------------------------------------------------------------- */

static const char *verdict_name(enum cr_status_verdict v)
{
	return v == CR_STATUS_OK ? "ok" : v == CR_STATUS_ATTENTION ? "attention" : "unknown";
}

static struct fy_node *null_node(struct fy_document *d)
{
	return fy_node_create_scalar(d, "null", 4);
}

static struct fy_node *str_or_null(struct fy_document *d, const char *s)
{
	return s ? yt_str(d, s) : null_node(d);
}

static struct fy_node *list_node(struct fy_document *d, const struct cr_strlist *l, bool known)
{
	if (!known)
		return null_node(d);
	struct fy_node *seq = yt_seq(d);
	for (size_t i = 0; i < l->n; i++)
		yt_append(seq, yt_str(d, l->items[i]));
	return seq;
}

static struct fy_node *db_node(struct fy_document *doc, const struct db *d)
{
	struct fy_node *m = yt_map(doc);
	yt_set(m, "name", yt_str(doc, d->name));
	yt_set(m, "url", str_or_null(doc, d->url));
	yt_set(m, "state", yt_str(doc, db_states[d->state].name));
	yt_set(m, "ok", yt_bool(doc, db_states[d->state].verdict == CR_STATUS_OK));
	yt_set(m, "storedRevisions", list_node(doc, &d->stored, d->have_stored));
	yt_set(m, "heads", list_node(doc, &d->heads, d->heads_from != NULL));
	yt_set(m, "headsFrom", str_or_null(doc, d->heads_from));
	yt_set(m, "notApplied", list_node(doc, &d->missing, d->have_missing));
	/* false: the scripts were read through `alembic heads`, so only the heads not stored
	 * are known to be missing; revisions before them may be too */
	yt_set(m, "notAppliedComplete",
	       d->have_missing ? yt_bool(doc, d->missing_complete) : null_node(doc));
	yt_set(m, "error", str_or_null(doc, d->error));
	return m;
}

static struct fy_node *dep_node(struct fy_document *doc, const struct deployment *d)
{
	struct fy_node *m = yt_map(doc);
	yt_set(m, "name", yt_str(doc, d->name));
	yt_set(m, "priority", yt_int(doc, d->priority));
	yt_set(m, "expectedScale", yt_int(doc, d->expected));
	yt_set(m, "exists", yt_bool(doc, d->exists));
	yt_set(m, "replicas", d->exists ? yt_int(doc, d->replicas) : null_node(doc));
	yt_set(m, "readyReplicas", d->exists ? yt_int(doc, d->ready) : null_node(doc));
	yt_set(m, "stoppedByChartreuse", yt_bool(doc, d->stopped));
	struct fy_node *hpas = yt_seq(doc);
	for (size_t i = 0; i < d->hpas.n; i++) {
		struct fy_node *h = yt_map(doc);
		yt_set(h, "name", yt_str(doc, d->hpas.items[i]));
		yt_set(h, "paused", yt_bool(doc, cr_strlist_has(&d->paused, d->hpas.items[i])));
		yt_append(hpas, h);
	}
	yt_set(m, "hpas", hpas);
	yt_set(m, "hpaPaused", yt_bool(doc, d->paused.n > 0));
	yt_set(m, "state", yt_str(doc, dep_states[d->state].name));
	yt_set(m, "ok", yt_bool(doc, dep_states[d->state].ok));
	return m;
}

static struct fy_node *job_node(struct fy_document *doc, const struct job *j)
{
	struct fy_node *m = yt_map(doc);
	yt_set(m, "name", yt_str(doc, j->name));
	yt_set(m, "migration", yt_str(doc, j->migration));
	yt_set(m, "component", yt_str(doc, j->component));
	yt_set(m, "created", yt_str(doc, j->created));
	yt_set(m, "outcome", yt_str(doc, j->outcome));
	yt_set(m, "detail", str_or_null(doc, j->detail));
	yt_set(m, "ok", yt_bool(doc, !strcmp(j->outcome, "succeeded")));
	return m;
}

static struct fy_node *section(struct fy_document *doc, bool read, size_t n, const void *items,
			       size_t size, struct fy_node *(*node)(struct fy_document *,
								    const void *))
{
	if (!read)
		return null_node(doc);
	struct fy_node *seq = yt_seq(doc);
	for (size_t i = 0; i < n; i++)
		yt_append(seq, node(doc, (const char *)items + i * size));
	return seq;
}

static struct fy_node *db_item(struct fy_document *doc, const void *p)
{
	return db_node(doc, p);
}

static struct fy_node *dep_item(struct fy_document *doc, const void *p)
{
	return dep_node(doc, p);
}

static struct fy_node *job_item(struct fy_document *doc, const void *p)
{
	return job_node(doc, p);
}

static void add_note(struct fy_node *notes, const char *note)
{
	if (note)
		yt_append(notes, yt_str(fy_node_document(notes), note));
}

static struct fy_document *status_tree(const struct cr_status *s)
{
	struct fy_document *doc = yt_document();
	struct fy_node *root = yt_map(doc);
	fy_document_set_root(doc, root);
	yt_set(root, "release", yt_str(doc, s->release));
	yt_set(root, "namespace", str_or_null(doc, s->namespace));
	yt_set(root, "server", str_or_null(doc, s->server));
	yt_set(root, "verdict", yt_str(doc, verdict_name(s->verdict)));
	yt_set(root, "exitCode", yt_int(doc, s->verdict));
	yt_set(root, "problems", list_node(doc, &s->problems, true));
	struct fy_node *notes = yt_seq(doc);
	add_note(notes, s->db_note);
	add_note(notes, s->deps_note);
	add_note(notes, s->jobs_note);
	yt_set(root, "notes", notes);
	yt_set(root, "databases",
	       section(doc, s->db_note == NULL, s->n_dbs, s->dbs, sizeof(*s->dbs), db_item));
	yt_set(root, "kubernetesError", str_or_null(doc, s->k8s_error));
	yt_set(root, "deployments",
	       section(doc, s->k8s_read, s->n_deps, s->deps, sizeof(*s->deps), dep_item));
	yt_set(root, "jobs",
	       section(doc, s->k8s_read, s->n_jobs, s->jobs, sizeof(*s->jobs), job_item));
	return doc;
}

/* --- the table ----------------------------------------------------------------------------- */

struct table {
	size_t cols;
	struct cr_strlist cells;
};

static void cell(struct table *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void cell(struct table *t, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	char *text = xvasprintf(fmt, ap);
	va_end(ap);
	cr_strlist_add(&t->cells, text);
	free(text);
}

/* Display width: UTF-8 continuation bytes take no column. */
static size_t width(const char *s)
{
	size_t w = 0;
	for (; *s; s++)
		w += ((unsigned char)*s & 0xc0) != 0x80;
	return w;
}

static void table_print(struct table *t, struct cr_buf *out)
{
	size_t *w = xcalloc(t->cols, sizeof(*w));
	for (size_t i = 0; i < t->cells.n; i++) {
		size_t cw = width(t->cells.items[i]);
		if (cw > w[i % t->cols])
			w[i % t->cols] = cw;
	}
	for (size_t i = 0; i < t->cells.n; i++) {
		size_t c = i % t->cols;
		cr_buf_adds(out, t->cells.items[i]);
		if (c + 1 == t->cols) {
			cr_buf_addc(out, '\n');
			continue;
		}
		for (size_t pad = width(t->cells.items[i]); pad < w[c] + 2; pad++)
			cr_buf_addc(out, ' ');
	}
	free(w);
	cr_strlist_free(&t->cells);
}

/* A list in a cell: "?" when unknown. */
static void list_cell(struct table *t, const struct cr_strlist *l, bool known)
{
	struct cr_buf b = { 0 };
	if (known)
		cr_strlist_text(&b, l, 3);
	cell(t, "%s", known ? b.data : "?");
	cr_buf_free(&b);
}

static void db_table(const struct cr_status *s, struct cr_buf *out)
{
	if (s->db_note) {
		cr_buf_printf(out, "Databases: %s\n", s->db_note);
		return;
	}
	struct table t = { .cols = 5 };
	cell(&t, "DATABASE");
	cell(&t, "STATE");
	cell(&t, "STORED");
	cell(&t, "HEADS");
	cell(&t, "NOT APPLIED");
	for (size_t i = 0; i < s->n_dbs; i++) {
		const struct db *d = &s->dbs[i];
		cell(&t, "%s", d->name);
		cell(&t, "%s", db_states[d->state].name);
		list_cell(&t, &d->stored, d->have_stored);
		list_cell(&t, &d->heads, d->heads_from != NULL);
		if (d->have_missing && !d->missing_complete && d->missing.n) {
			struct cr_buf b = { 0 };
			cr_buf_adds(&b, "at least ");
			cr_strlist_text(&b, &d->missing, 3);
			cell(&t, "%s", b.data);
			cr_buf_free(&b);
		} else {
			list_cell(&t, &d->missing, d->have_missing);
		}
	}
	table_print(&t, out);
}

static void hpa_cell(struct table *t, const struct deployment *d)
{
	struct cr_buf b = { 0 };
	for (size_t i = 0; i < d->hpas.n; i++)
		cr_buf_printf(&b, "%s%s%s", i ? ", " : "", d->hpas.items[i],
			      cr_strlist_has(&d->paused, d->hpas.items[i]) ? " (paused)" : "");
	cell(t, "%s", b.data ? b.data : "-");
	cr_buf_free(&b);
}

static void deployments_table(const struct cr_status *s, struct cr_buf *out)
{
	if (s->deps_note) {
		cr_buf_printf(out, "Deployments: %s\n", s->deps_note);
		return;
	}
	struct table t = { .cols = 7 };
	const char *heads[] = { "DEPLOYMENT", "PRIORITY", "EXPECTED", "DESIRED",
				"READY",      "HPA",	  "STATE" };
	for (size_t i = 0; i < 7; i++)
		cell(&t, "%s", heads[i]);
	for (size_t i = 0; i < s->n_deps; i++) {
		const struct deployment *d = &s->deps[i];
		cell(&t, "%s", d->name);
		cell(&t, "%ld", d->priority);
		cell(&t, "%ld", d->expected);
		if (d->exists) {
			cell(&t, "%ld", d->replicas);
			cell(&t, "%ld", d->ready);
		} else {
			cell(&t, "-");
			cell(&t, "-");
		}
		hpa_cell(&t, d);
		cell(&t, "%s", dep_states[d->state].name);
	}
	table_print(&t, out);
}

static void jobs_table(const struct cr_status *s, struct cr_buf *out)
{
	if (s->jobs_note) {
		cr_buf_printf(out, "Jobs: %s\n", s->jobs_note);
		return;
	}
	struct table t = { .cols = 4 };
	cell(&t, "JOB");
	cell(&t, "KIND");
	cell(&t, "CREATED");
	cell(&t, "OUTCOME");
	for (size_t i = 0; i < s->n_jobs; i++) {
		const struct job *j = &s->jobs[i];
		cell(&t, "%s", j->name);
		cell(&t, "%s", j->component);
		cell(&t, "%s", j->created);
		cell(&t, "%s%s%s%s", j->outcome, j->detail ? " (" : "", j->detail ? j->detail : "",
		     j->detail ? ")" : "");
	}
	table_print(&t, out);
}

static void table_render(const struct cr_status *s, struct cr_buf *out)
{
	cr_buf_printf(out, "Release %s in namespace %s", s->release,
		      s->namespace ? s->namespace : "(unknown)");
	if (s->server)
		cr_buf_printf(out, " (%s)", s->server);
	cr_buf_adds(out, "\n\n");
	db_table(s, out);
	cr_buf_addc(out, '\n');
	if (s->k8s_read) {
		deployments_table(s, out);
		cr_buf_addc(out, '\n');
		jobs_table(s, out);
	} else {
		cr_buf_printf(out, "Kubernetes: not read: %s\n", s->k8s_error);
	}
	if (s->problems.n) {
		cr_buf_adds(out, "\nProblems:\n");
		for (size_t i = 0; i < s->problems.n; i++)
			cr_buf_printf(out, "  - %s\n", s->problems.items[i]);
	}
	static const char *const verdicts[] = {
		[CR_STATUS_OK] = "everything at its heads and running",
		[CR_STATUS_ATTENTION] = "attention needed",
		[CR_STATUS_UNKNOWN] = "unknown: part of the state could not be read",
	};
	cr_buf_printf(out, "\nStatus: %s (exit %d)\n", verdicts[s->verdict], (int)s->verdict);
}

int cr_status_render(const struct cr_status *s, enum cr_format f, struct cr_buf *out)
{
	if (s->verdict == CR_STATUS_ABSENT)
		return 0;
	if (f == CR_FORMAT_TABLE) {
		table_render(s, out);
		return 0;
	}
	struct fy_document *doc = status_tree(s);
	int rc = cr_format_emit(doc, f, out);
	fy_document_destroy(doc);
	return rc;
}
