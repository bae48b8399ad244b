#include "eslembic.h"
#include "config.h"
#include "jobs.h"
#include "json.h"
#include "k8s.h"
#include "file.h"
#include "log.h"
#include "podspec.h"
#include "proc.h"
#include "render.h"
#include "templates.h"
#include "util.h"
#include "ytree.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>


#define URL_ENV "CHARTREUSE_ESLEMBIC_URL"
#define URLS_ENV "ELASTICSEARCH_URLS"
#define GONE_TIMEOUT_S 300

enum es_outcome { ES_UP_TO_DATE, ES_NEEDED, ES_MIGRATED, ES_FAILED };

struct cr_eslembic_run {
	const struct cr_config *cfg;
	char *url;		/* with its password */
	const char *program;
	enum es_outcome outcome;
	char *why;		/* failure, for the summary */
	bool follow_up;		/* eslembic.migrate or eslembic.cleanIndex */
	char *job_name;		/* <release>-<name>-migrate */
	struct cr_k8s *k;	/* made when the Job has to be looked at */
	const char *ns;
	char *created;		/* the summary's note on the follow-up Job */
	char *state;		/* what `eslembic current` said, log lines left out */
	bool ran;		/* `eslembic upgrade head` was run */
	bool unchanged;		/* after a failed upgrade: `current` says what it said before */
};

static void fail(struct cr_eslembic_run *es, const char *why)
{
	es->outcome = ES_FAILED;
	free(es->why);
	es->why = xstrdup(why);
}

bool cr_eslembic_configured(const struct cr_config *cfg)
{
	return cr_config_uses_eslembic(cfg) || cr_nonempty(getenv(URL_ENV));
}

/* --- the URL and its password ------------------------------------------------------------- */

/* The password of every URL in a comma-separated list, as written and decoded, so that
 * eslembic printing it in any form is masked (the log masks "://user:pw@" on its own). */
static void register_passwords(const char *urls)
{
	char *copy = xstrdup(urls);
	char *save = NULL;
	for (char *u = strtok_r(copy, ", \t", &save); u; u = strtok_r(NULL, ", \t", &save))
		cr_secret_add_url_password(u);
	explicit_bzero(copy, strlen(copy));
	free(copy);
}

/* The reference rewrote elasticsearch_urls in eslembic.ini with sed; chartreuse leaves
 * the file alone (no password on disk, read-only images work). A fixed address there would
 * quietly win over the configured one, so say so. */
static void warn_fixed_ini_url(const struct cr_eslembic_run *es)
{
	char *path = xasprintf("%s/eslembic.ini", es->cfg->eslembic.directory);
	struct cr_buf text = { 0 };
	cr_log_mute(true);
	int rc = access(path, R_OK) == 0 ? cr_read_file(path, &text) : -1;
	cr_log_mute(false);
	for (char *line = rc == 0 ? text.data : NULL; line && *line;) {
		char *end = strchr(line, '\n');
		if (end)
			*end = '\0';
		char *p = line + strspn(line, " \t");
		if (!strncmp(p, "elasticsearch_urls", 18)) {
			p += 18 + strspn(p + 18, " \t");
			if (*p == '=' || *p == ':') {
				p++;
				p += strspn(p, " \t");
				size_t n = strcspn(p, "\r");
				while (n && (p[n - 1] == ' ' || p[n - 1] == '\t'))
					n--;
				if (n && !memchr(p, '$', n) && !strstr(p, "%("))
					cr_warn("eslembic: %s sets elasticsearch_urls = %.*s; chartreuse "
						"gives eslembic the configured URL in its environment ("
						URLS_ENV ", " URL_ENV ") and does not rewrite the file: "
						"make the project read it from there",
						path, (int)n, p);
			}
		}
		line = end ? end + 1 : NULL;
	}
	if (text.data)
		explicit_bzero(text.data, text.len);
	cr_buf_free(&text);
	free(path);
}

/* --- running eslembic --------------------------------------------------------------------- */

/* Both URL variables, whatever this environment had: the only way the URL reaches it. */
static void child_env(const char *url, struct cr_env *e)
{
	char *set[] = { xasprintf(URL_ENV "=%s", url), xasprintf(URLS_ENV "=%s", url) };
	cr_env_with(e, (const char *const *)set, 2);
	for (size_t i = 0; i < 2; i++) {
		explicit_bzero(set[i], strlen(set[i]));
		free(set[i]);
	}
}

static void log_line(const char *line, void *user)
{
	(void)user;
	cr_info("[eslembic] %s", line);
}

/* `<program> <args...>` in the eslembic directory, output (stdout and stderr) streamed and
 * kept in *out. The exit status (128 + a signal that ended it), or -1 (reported) if it
 * could not run. */
static int run_cli(const struct cr_eslembic_run *es, const char *const *args, struct cr_buf *out)
{
	struct cr_argv argv = { 0 };
	cr_argv_push(&argv, es->program);
	for (; *args; args++)
		cr_argv_push(&argv, *args);
	struct cr_env env;
	child_env(es->url, &env);
	char *what = xasprintf("eslembic %s", argv.v[1]);
	struct cr_child c = { .argv = argv.v, .envp = env.envp,
			      .cwd = es->cfg->eslembic.directory, .what = what,
			      .merge_stderr = true, .own_group = true };
	int status = cr_child_capture(&c, out, log_line, NULL);
	free(what);
	cr_env_free(&env);
	cr_argv_free(&argv);
	return status;
}

bool cr_eslembic_at_head(const char *output)
{
	return output && strstr(output, "(head)") != NULL;
}

static bool log_line_of_a_level(const char *line)
{
	static const char *const levels[] = { "DEBUG ", "INFO ", "WARNING ", "WARN ", "ERROR " };
	for (size_t i = 0; i < sizeof(levels) / sizeof(levels[0]); i++)
		if (!strncmp(line, levels[i], strlen(levels[i])))
			return true;
	return false;
}

/* The lines of `eslembic current` that say where the indices are. */
static char *state_of(const char *output)
{
	struct cr_buf state = { 0 };
	for (const char *line = output; line && *line;) {
		size_t len = strcspn(line, "\n");
		if (len && !log_line_of_a_level(line)) {
			cr_buf_add(&state, line, len);
			cr_buf_addc(&state, '\n');
		}
		line += len + (line[len] == '\n');
	}
	return cr_buf_detach(&state, NULL);
}

static void decide(struct cr_eslembic_run *es)
{
	static const char *const args[] = { "current", NULL };
	struct cr_buf out = { 0 };
	int rc = run_cli(es, args, &out);
	if (rc == 0) {
		free(es->state);
		es->state = state_of(out.data);
	}
	if (rc != 0) {
		if (rc > 0)
			cr_error("eslembic: `eslembic current` exited %d", rc);
		fail(es, "its state could not be read (eslembic current failed)");
	} else if (cr_eslembic_at_head(out.data)) {
		es->outcome = ES_UP_TO_DATE;
		cr_info("eslembic: at its head");
	} else {
		es->outcome = ES_NEEDED;
		cr_info("eslembic: not at its head (no \"(head)\" in eslembic current): an upgrade "
			"is needed");
	}
	cr_buf_free(&out);
}

/* --- the follow-up Job: looking at it ---------------------------------------------------- */

bool cr_eslembic_job_finished(struct fy_node *job, const char **why)
{
	return cr_job_finished(job, why);
}

static char *jobs_path(const struct cr_eslembic_run *es, const char *name)
{
	return cr_job_path(es->ns, name);
}

static int connect_api(struct cr_eslembic_run *es)
{
	if (es->k)
		return 0;
	struct cr_k8s_options opts = { .namespace = es->cfg->namespace };
	es->k = cr_k8s_new(&opts);
	if (!es->k) {
		cr_error("eslembic: the Kubernetes API is needed to look for the follow-up Job %s "
			 "(see the line above)", es->job_name);
		return -1;
	}
	es->ns = cr_k8s_namespace(es->k);
	return 0;
}

enum job_state { JOB_ABSENT, JOB_FINISHED, JOB_RUNNING, JOB_ERROR };

/* The follow-up Job as it is now; *uid (caller frees) when it exists, *why when it runs. */
static enum job_state job_state(struct cr_eslembic_run *es, char **uid, const char **why)
{
	*uid = NULL;
	char *path = jobs_path(es, es->job_name);
	struct fy_document *d = NULL;
	int rc = cr_k8s_get(es->k, path, &d);
	free(path);
	if (rc == CR_K8S_NOT_FOUND)
		return JOB_ABSENT;
	if (rc)
		return JOB_ERROR;
	struct fy_node *job = fy_document_root(d);
	*uid = yt_strdup(yt_path(job, "/metadata/uid"));
	enum job_state s = cr_eslembic_job_finished(job, why) ? JOB_FINISHED : JOB_RUNNING;
	fy_document_destroy(d);
	return s;
}

/* 0 when no follow-up Job runs; -1 (reported) when one does or it can't be known. */
static int check_none_running(struct cr_eslembic_run *es, bool early)
{
	if (connect_api(es))
		return -1;
	char *uid;
	const char *why = NULL;
	enum job_state s = job_state(es, &uid, &why);
	free(uid);
	if (s == JOB_RUNNING)
		cr_error("eslembic: the Job %s (eslembic migrate/clean of an earlier migration) is "
			 "still running (%s): the indices are never upgraded under it. %s Wait for "
			 "it to finish (or delete it: kubectl delete job %s -n %s), then migrate "
			 "again",
			 es->job_name, why,
			 early ? "This migration is refused and nothing was changed."
			       : "eslembic upgrade head was not run.",
			 es->job_name, es->ns);
	else if (s == JOB_ERROR)
		cr_error("eslembic: cannot tell whether the follow-up Job %s is running (see the "
			 "line above)%s", es->job_name,
			 early ? ": this migration is refused and nothing was changed" : "");
	else if (s == JOB_FINISHED && early && es->follow_up)
		cr_info("eslembic: the finished Job %s will be replaced after the upgrade",
			es->job_name);
	return s == JOB_RUNNING || s == JOB_ERROR ? -1 : 0;
}

/* --- the follow-up Job: replacing it ------------------------------------------------------ */

/* Deletes the finished Job `uid` (only that one: a uid precondition) with its Pods in the
 * background. */
static int delete_job(struct cr_eslembic_run *es, const char *uid)
{
	return cr_job_delete(es->k, es->ns, es->job_name, uid);
}

static int wait_gone(struct cr_eslembic_run *es, const char *uid)
{
	return cr_job_wait_gone(es->k, es->ns, es->job_name, uid, GONE_TIMEOUT_S, "eslembic");
}

/* Argo CD tracks an application's objects by app.kubernetes.io/instance (its default
 * instanceLabelKey): an object with that label that is not in the manifests is extraneous
 * and pruned. The follow-up Job is not in the manifests, so with Argo CD it carries only
 * chartreuse.wiremind.io/release. */
static void set_labels(const struct cr_eslembic_run *es, struct fy_node *labels,
		       struct fy_node *user)
{
	if (yt_is_map(user))
		cr_config_overlay(labels, user);
	cr_podspec_labels(labels, es->cfg, "eslembic-migrate", "chartreuse",
			  !cr_streq(es->cfg->deployment_method, "argocd"));
	yt_set_str(labels, "chartreuse.wiremind.io/release", es->cfg->release);
}

/* One step of the Job: `<program> migrate` or `<program> clean`. */
static struct fy_node *step(const struct cr_eslembic_run *es, struct fy_document *d,
			    const char *command, const char *secret)
{
	const struct cr_config *cfg = es->cfg;
	struct fy_node *c = cr_podspec_container(d, "container-eslembic.yaml", &cfg->image, cfg,
						 NULL);
	char *name = xasprintf("eslembic-%s", command);
	yt_set_str(c, "name", name);
	free(name);
	struct fy_node *cmd = yt_seq(d);
	yt_append(cmd, yt_str(d, es->program));
	yt_append(cmd, yt_str(d, command));
	yt_set(c, "command", cmd);
	yt_set_str(c, "workingDir", cfg->eslembic.directory);
	struct fy_node *env = yt_child_seq(c, "env");
	yt_append(env, cr_env_secret(d, URL_ENV, secret, URL_ENV));
	yt_append(env, cr_env_secret(d, URLS_ENV, secret, URL_ENV));
	cr_podspec_app_settings(c, cfg);
	return c;
}

/* The Job, from its skeleton: the application image in the eslembic directory, `migrate`
 * then `clean` (an init container runs first, and the second starts only if it
 * succeeded), the user's scheduling, env and volumes; nothing that lives only as long as
 * the migration's Helm hooks (its ServiceAccount, Secret, ConfigMap). */
static struct fy_document *job_document(const struct cr_eslembic_run *es, const char *secret)
{
	const struct cr_config *cfg = es->cfg;
	struct fy_document *d = cr_template_load("job-eslembic-migrate.yaml");
	struct fy_node *root = fy_document_root(d);
	struct fy_node *md = yt_child_map(root, "metadata");
	yt_set_str(md, "name", es->job_name);
	yt_set_str(md, "namespace", es->ns);
	set_labels(es, yt_child_map(md, "labels"), cfg->metadata.labels);
	struct fy_node *ann = yt_child_map(md, "annotations");
	if (yt_is_map(cfg->metadata.annotations))
		cr_config_overlay(ann, cfg->metadata.annotations);
	yt_set_str(ann, "chartreuse.wiremind.io/version", CHARTREUSE_VERSION);
	yt_set(yt_child_map(root, "spec"), "ttlSecondsAfterFinished",
	       yt_int(d, cfg->ttl_seconds_after_finished));
	struct fy_node *tmeta = yt_path(root, "/spec/template/metadata");
	set_labels(es, yt_child_map(tmeta, "labels"), cfg->pod_labels);
	if (yt_is_map(cfg->pod_annotations))
		cr_config_overlay(yt_child_map(tmeta, "annotations"), cfg->pod_annotations);
	struct fy_node *pod = yt_path(root, "/spec/template/spec");
	if (!cfg->service_account.create && cr_nonempty(cfg->service_account.name))
		yt_set_str(pod, "serviceAccountName", cfg->service_account.name);
	cr_podspec_scheduling(pod, cfg, NULL, false);
	bool both = cfg->eslembic.migrate && cfg->eslembic.clean_index;
	if (cfg->eslembic.migrate)
		yt_append(yt_child_seq(pod, both ? "initContainers" : "containers"),
			  step(es, d, "migrate", secret));
	if (cfg->eslembic.clean_index)
		yt_append(yt_child_seq(pod, "containers"), step(es, d, "clean", secret));
	if (!both)
		yt_del(pod, "initContainers");
	if (yt_is_seq(cfg->volumes) && fy_node_sequence_item_count(cfg->volumes))
		yt_append_copies(yt_child_seq(pod, "volumes"), cfg->volumes);
	return d;
}

/* The Secret the Job reads the URL from, owned by the Job: the garbage collector removes
 * it with the Job (ttlSecondsAfterFinished, or the next migration's delete). */
static int create_secret(struct cr_eslembic_run *es, const char *name, const char *job_uid)
{
	struct fy_document *d = yt_document();
	struct fy_node *root = yt_map(d);
	fy_document_set_root(d, root);
	yt_set_str(root, "apiVersion", "v1");
	yt_set_str(root, "kind", "Secret");
	struct fy_node *md = yt_child_map(root, "metadata");
	yt_set_str(md, "name", name);
	yt_set_str(md, "namespace", es->ns);
	set_labels(es, yt_child_map(md, "labels"), es->cfg->metadata.labels);
	struct fy_node *owner = yt_map(d);
	yt_set_str(owner, "apiVersion", "batch/v1");
	yt_set_str(owner, "kind", "Job");
	yt_set_str(owner, "name", es->job_name);
	yt_set_str(owner, "uid", job_uid);
	yt_append(yt_child_seq(md, "ownerReferences"), owner);
	yt_set_str(root, "type", "Opaque");
	struct cr_buf b64 = { 0 };
	cr_base64(&b64, es->url, strlen(es->url));
	yt_set_str(yt_child_map(root, "data"), URL_ENV, b64.data ? b64.data : "");
	if (b64.data)
		explicit_bzero(b64.data, b64.len);
	cr_buf_free(&b64);
	char *path = cr_k8s_path("/api/v1", es->ns, "secrets", NULL, NULL);
	int rc = cr_k8s_post(es->k, path, root, 0, NULL);
	free(path);
	fy_document_destroy(d);
	return rc;
}

static unsigned random_suffix(void)
{
	unsigned v = 0;
	if (getrandom(&v, sizeof(v), 0) != (ssize_t)sizeof(v))
		v = (unsigned)time(NULL) ^ ((unsigned)getpid() << 16);
	return v;
}

static const char *steps_text(const struct cr_config *cfg)
{
	return cfg->eslembic.migrate && cfg->eslembic.clean_index ? "eslembic migrate, then clean"
	       : cfg->eslembic.migrate			       ? "eslembic migrate"
								       : "eslembic clean";
}

/* Replaces a finished follow-up Job and creates the new one with its Secret. */
static int create_follow_up(struct cr_eslembic_run *es)
{
	char *uid;
	const char *why = NULL;
	enum job_state s = job_state(es, &uid, &why);
	int rc = 0;
	if (s == JOB_RUNNING) {
		cr_error("eslembic: the Job %s started again meanwhile (%s): not replaced",
			 es->job_name, why);
		rc = -1;
	} else if (s == JOB_ERROR) {
		rc = -1;
	} else if (s == JOB_FINISHED) {
		cr_info("eslembic: deleting the finished Job %s", es->job_name);
		rc = delete_job(es, uid);
		if (!rc)
			rc = wait_gone(es, uid);
	}
	free(uid);
	if (rc)
		return -1;
	char *secret = xasprintf("%s-%08x", es->job_name, random_suffix());
	struct fy_document *job = job_document(es, secret);
	char *path = jobs_path(es, NULL);
	struct fy_document *made = NULL;
	rc = cr_k8s_post(es->k, path, fy_document_root(job), 0, &made);
	free(path);
	fy_document_destroy(job);
	char *new_uid = made ? yt_strdup(yt_path(fy_document_root(made), "/metadata/uid")) : NULL;
	if (made)
		fy_document_destroy(made);
	if (!rc && !new_uid) {
		cr_error("eslembic: the API returned the Job %s without a uid", es->job_name);
		rc = -1;
	}
	if (!rc && create_secret(es, secret, new_uid)) {
		/* A Job whose Secret never comes would wait forever and block every later
		 * migration: take it back. */
		cr_error("eslembic: the Secret of the Job %s could not be created: deleting the "
			 "Job again", es->job_name);
		delete_job(es, new_uid);
		rc = -1;
	}
	if (!rc) {
		cr_info("eslembic: created the Job %s (%s)", es->job_name, steps_text(es->cfg));
		es->created = xasprintf("follow-up Job %s created (%s)", es->job_name,
					steps_text(es->cfg));
	}
	free(new_uid);
	free(secret);
	return rc;
}

/* --- the steps ------------------------------------------------------------------------------ */

/* What the Job check and the follow-up need, before anything is done. */
static int check_before(struct cr_eslembic_run *es)
{
	const struct cr_config *cfg = es->cfg;
	if (!cr_nonempty(cfg->release)) {
		cr_error("eslembic: the follow-up Job is named after the release, which is unknown: "
			 "set release (CHARTREUSE_RELEASE_NAME); nothing was changed");
		return -1;
	}
	if (es->follow_up && !cr_nonempty(cfg->image.repository)) {
		cr_error("eslembic: the follow-up Job (eslembic.migrate / eslembic.cleanIndex) runs "
			 "the application image: set image.repository "
			 "(CHARTREUSE_MIGRATE_CONTAINER_IMAGE); nothing was changed");
		return -1;
	}
	return check_none_running(es, true);
}

int cr_eslembic_prepare(const struct cr_config *cfg, bool dry_run, struct cr_eslembic_run **out)
{
	*out = NULL;
	if (!cr_eslembic_configured(cfg))
		return 0;
	struct cr_eslembic_run *es = xcalloc(1, sizeof(*es));
	*out = es;
	es->cfg = cfg;
	es->follow_up = cfg->eslembic.migrate || cfg->eslembic.clean_index;
	const char *prog = getenv("CHARTREUSE_ESLEMBIC");
	es->program = cr_nonempty(prog) ? prog : "eslembic";
	if (cr_nonempty(cfg->release))
		es->job_name = cr_object_name(cfg->release, cfg->metadata.name, "migrate");
	const char *env_url = getenv(URL_ENV);
	if (cr_nonempty(env_url) || cr_nonempty(cfg->eslembic.url)) {
		es->url = xstrdup(cr_nonempty(env_url) ? env_url : cfg->eslembic.url);
	} else {
		cr_error("eslembic: no URL: set " URL_ENV " (the Job gets it from its Secret) or "
			 "eslembic.url");
		fail(es, "no URL");
		return 0;
	}
	register_passwords(es->url);
	warn_fixed_ini_url(es);
	decide(es);
	if (es->outcome != ES_NEEDED || dry_run)
		return 0;
	return check_before(es);
}

bool cr_eslembic_needed(const struct cr_eslembic_run *es)
{
	return es && es->outcome == ES_NEEDED;
}

void cr_eslembic_not_run(struct cr_eslembic_run *es, const char *why)
{
	if (cr_eslembic_needed(es))
		fail(es, why);
}

/* After a failure: does `eslembic current` still say what it said before? */
static void check_unchanged(struct cr_eslembic_run *es)
{
	static const char *const args[] = { "current", NULL };
	char *before = es->state ? xstrdup(es->state) : NULL;
	struct cr_buf out = { 0 };
	int rc = run_cli(es, args, &out);
	char *now = rc == 0 ? state_of(out.data) : NULL;
	es->unchanged = before && now && !strcmp(before, now);
	if (es->unchanged)
		cr_info("eslembic: the indices are unchanged by the failed upgrade");
	else
		cr_error("eslembic: the failed upgrade %s the indices", now ? "changed" :
			 "may have changed (eslembic current failed)");
	free(now);
	free(before);
	cr_buf_free(&out);
}

bool cr_eslembic_unchanged(const struct cr_eslembic_run *es)
{
	return !es || !es->ran || es->outcome != ES_FAILED || es->unchanged;
}

void cr_eslembic_upgrade(struct cr_eslembic_run *es)
{
	if (!cr_eslembic_needed(es))
		return;
	/* The lock-free window since the decision: one more look at the follow-up Job. */
	if (check_none_running(es, false)) {
		fail(es, "not run: the follow-up Job runs, or could not be looked at");
		return;
	}
	static const char *const upgrade[] = { "upgrade", "head", NULL };
	cr_info("eslembic: running eslembic upgrade head");
	struct cr_buf out = { 0 };
	es->ran = true;
	int rc = run_cli(es, upgrade, &out);
	cr_buf_free(&out);
	if (rc != 0) {
		char *why = cr_terminated()
				    ? xasprintf("eslembic upgrade head interrupted by signal %d",
						cr_terminated())
				    : xasprintf("eslembic upgrade head failed (exit %d)", rc);
		cr_error("eslembic: %s", why);
		fail(es, why);
		free(why);
		check_unchanged(es);
		return;
	}
	decide(es); /* verify, as for a database */
	if (es->outcome == ES_NEEDED) {
		cr_error("eslembic: eslembic upgrade head succeeded but eslembic current shows no "
			 "(head)");
		fail(es, "not at its head after the upgrade");
	}
	if (es->outcome == ES_FAILED)
		return;
	es->outcome = ES_MIGRATED;
	if (es->follow_up && create_follow_up(es))
		fail(es, "upgraded, but the follow-up Job could not be created");
}

void cr_eslembic_report(const struct cr_eslembic_run *es, bool dry_run)
{
	if (!es)
		return;
	struct cr_buf line = { 0 };
	cr_buf_adds(&line, "eslembic: ");
	switch (es->outcome) {
	case ES_UP_TO_DATE:
		cr_buf_adds(&line, "up to date, nothing to do");
		break;
	case ES_NEEDED:
		cr_buf_adds(&line, dry_run ? "migration needed" : "migration needed, not run");
		break;
	case ES_MIGRATED:
		cr_buf_adds(&line, "migrated");
		if (es->created)
			cr_buf_printf(&line, "; %s", es->created);
		break;
	case ES_FAILED:
		cr_buf_printf(&line, "FAILED (%s)", es->why ? es->why : "?");
		break;
	}
	if (dry_run) {
		char *masked = cr_mask(line.data);
		printf("%s\n", masked);
		fflush(stdout);
		free(masked);
	} else {
		cr_info("%s", line.data);
	}
	cr_buf_free(&line);
}

const char *cr_eslembic_outcome_name(const struct cr_eslembic_run *es)
{
	switch (es->outcome) {
	case ES_UP_TO_DATE:
		return "up-to-date";
	case ES_NEEDED:
		return "migration-needed";
	case ES_MIGRATED:
		return "migrated";
	default:
		return "failed";
	}
}

bool cr_eslembic_failed(const struct cr_eslembic_run *es)
{
	return es && es->outcome == ES_FAILED;
}

void cr_eslembic_free(struct cr_eslembic_run *es)
{
	if (!es)
		return;
	if (es->url)
		explicit_bzero(es->url, strlen(es->url));
	free(es->url);
	free(es->why);
	free(es->job_name);
	free(es->created);
	free(es->state);
	if (es->k)
		cr_k8s_free(es->k);
	free(es);
}
