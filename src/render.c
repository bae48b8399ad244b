#include "render.h"
#include "access.h"
#include "config.h"
#include "log.h"
#include "names.h"
#include "podsec.h"
#include "podspec.h"
#include "templates.h"
#include "url.h"
#include "util.h"
#include "ytree.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#define BINARY_MOUNT "/chartreuse"

enum job_kind {
	JOB_AFTER,   /* helm, after the deployment: post-install,post-upgrade */
	JOB_UPGRADE, /* helm, before the deployment: pre-upgrade */
	JOB_INSTALL, /* helm, before the deployment, first install: post-install */
	JOB_ARGOCD,  /* argocd hook */
	JOB_RESTORE, /* brings pods back after a before-deployment migration */
};

struct render {
	const struct cr_config *cfg;
	const struct cr_app_security *app; /* how the application's Deployment runs; or NULL */
	struct cr_buf *out;
	char *base;	   /* <release>-<name>: SA, Role, RoleBinding, Secret, ConfigMap */
	char *sa_name;
	bool argocd;
	bool before;	   /* the migration runs before the new Deployments are applied */
	bool copy_binary;  /* chartreuseImage.delivery is "copy" */
	bool restore;	   /* a restore Job is emitted */
	const char *companion_events;
	struct cr_buf *jobs_out; /* Helm 3 wrapper: Jobs (and copies of the companions) go
				  * here, the companions to out as plain release resources */
	struct cr_strlist wait_names; /* the wait-postgres init containers', per database */
};

/* What the messages about generated names name as their source. */
#define RENDERING "rendering"

char *cr_object_name(const char *release, const char *name, const char *suffix)
{
	char *full = suffix && *suffix ? xasprintf("%s-%s-%s", release, name, suffix)
				       : xasprintf("%s-%s", release, name);
	size_t len = strlen(full);
	if (len <= CR_NAME_MAX)
		return full;
	/* Keep the distinctive tail (which object it is) and shorten the release part; when
	 * the tail alone is too long, keep the start of the whole name. */
	char *tail = suffix && *suffix ? xasprintf("-%s-%s", name, suffix) : xasprintf("-%s", name);
	unsigned h = cr_fnv1a(full, len);
	const char *head = release;
	size_t keep = CR_NAME_MAX - 9 - strlen(tail);
	if (strlen(tail) + 9 + 1 > CR_NAME_MAX) {
		head = full;
		keep = CR_NAME_MAX - 9;
		tail[0] = '\0';
	}
	/* The cut must not leave a '-' or '.' before the hash's '-' ("a.-1f2e3d4c"). */
	while (keep && (head[keep - 1] == '-' || head[keep - 1] == '.'))
		keep--;
	char *out = xasprintf("%.*s-%08x%s", (int)keep, head, h, tail);
	free(tail);
	free(full);
	return out;
}

char *cr_database_url(const struct cr_database *db, bool with_password)
{
	struct cr_buf b = { 0 };
	cr_buf_printf(&b, "%s://", db->dialect);
	cr_percent_encode(&b, db->user);
	if (with_password && db->password && *db->password) {
		cr_buf_addc(&b, ':');
		cr_percent_encode(&b, db->password);
	}
	cr_buf_addc(&b, '@');
	char *port = xasprintf("%ld", db->port);
	cr_url_add_host(&b, db->host, port);
	free(port);
	cr_buf_addc(&b, '/');
	cr_percent_encode(&b, db->database);
	return cr_buf_detach(&b, NULL);
}

char *cr_database_env(size_t i, const char *what)
{
	return xasprintf("CHARTREUSE_DB_%zu_%s", i, what);
}

/* --- small builders ------------------------------------------------------------------------ */

/* The image of the containers that only run chartreuse; with "baked" delivery the
 * application image already carries it. */
static const struct cr_image *helper_image(const struct render *r)
{
	return r->copy_binary ? &r->cfg->chartreuse_image : &r->cfg->image;
}

static void merge_copies(struct fy_node *map, struct fy_node *items)
{
	if (yt_is_map(items))
		cr_config_overlay(map, items);
}

/* --- metadata ------------------------------------------------------------------------------ */

static void set_labels(struct render *r, struct fy_node *labels, const char *component)
{
	cr_podspec_labels(labels, r->cfg, component, "Helm", true);
}

static const char *helm_job_events(enum job_kind kind)
{
	switch (kind) {
	case JOB_UPGRADE:
		return "pre-upgrade";
	case JOB_INSTALL:
		return "post-install";
	case JOB_RESTORE:
		return "post-upgrade";
	default:
		return "post-install,post-upgrade";
	}
}

/* Hook annotations; a companion (kind < 0) exists before the Jobs and goes with them. */
static void set_hook(struct render *r, struct fy_node *ann, int kind)
{
	const struct cr_config *cfg = r->cfg;
	bool companion = kind < 0;
	if (companion && r->jobs_out)
		return; /* a release resource, there before the wrapper runs the Jobs */
	if (r->argocd) {
		const char *hook = kind == JOB_RESTORE ? "PostSync" : cfg->argocd.hook;
		long wave = cfg->argocd.sync_wave - (companion ? 1 : 0);
		char *w = xasprintf("%ld", kind == JOB_RESTORE ? cfg->argocd.sync_wave : wave);
		yt_set_str(ann, "argocd.argoproj.io/hook", hook);
		yt_set_str(ann, "argocd.argoproj.io/hook-delete-policy", "BeforeHookCreation");
		yt_set_str(ann, "argocd.argoproj.io/sync-wave", w);
		free(w);
		return;
	}
	yt_set_str(ann, "helm.sh/hook", companion ? r->companion_events
						  : helm_job_events((enum job_kind)kind));
	yt_set_str(ann, "helm.sh/hook-weight", companion ? "-1" : cfg->upgrade_job_weight);
	yt_set_str(ann, "helm.sh/hook-delete-policy",
		   companion ? "before-hook-creation,hook-succeeded,hook-failed"
			     : "before-hook-creation,hook-succeeded");
	/* Helm 4 (HIP-0019) then prints the failed Job's Pod log, the migration's own error
	 * (already masked by chartreuse), with its failure; Helm 3 ignores it. */
	if (!companion)
		yt_set_str(ann, "helm.sh/hook-output-log-policy", "hook-failed");
}

static void set_metadata(struct render *r, struct fy_node *root, const char *name,
			 const char *component, int hook_kind)
{
	struct fy_node *md = yt_child_map(root, "metadata");
	yt_set_str(md, "name", name);
	yt_set_str(md, "namespace", r->cfg->namespace);
	struct fy_node *labels = yt_child_map(md, "labels");
	merge_copies(labels, r->cfg->metadata.labels);
	set_labels(r, labels, component);
	struct fy_node *ann = yt_child_map(md, "annotations");
	merge_copies(ann, r->cfg->metadata.annotations);
	set_hook(r, ann, hook_kind);
}

/* --- output -------------------------------------------------------------------------------- */

static int emit_to(struct cr_buf *out, struct fy_document *d, const char *template_name)
{
	cr_buf_printf(out, "---\n# Source: chartreuse/templates/%s\n", template_name);
	return yt_emit_document(d, out);
}

/* With jobs_out the Jobs go there only; the companions go to both, so that the wrapper
 * can apply them before a pre-upgrade Job, when Helm has not applied them yet. */
static int emit(struct render *r, struct fy_document *d, const char *template_name, bool job)
{
	if (!r->jobs_out)
		return emit_to(r->out, d, template_name);
	if (job)
		return emit_to(r->jobs_out, d, template_name);
	return emit_to(r->out, d, template_name) || emit_to(r->jobs_out, d, template_name);
}

/* Loads a skeleton, lets fill() complete it, emits it. */
static int object(struct render *r, const char *tpl, const char *name, const char *component,
		  int hook_kind, void (*fill)(struct render *, struct fy_document *, const void *),
		  const void *arg)
{
	struct fy_document *d = cr_template_load(tpl);
	set_metadata(r, fy_document_root(d), name, component, hook_kind);
	if (fill)
		fill(r, d, arg);
	int rc = emit(r, d, tpl, hook_kind >= 0);
	fy_document_destroy(d);
	return rc;
}

static void fill_rolebinding(struct render *r, struct fy_document *d, const void *arg)
{
	struct fy_node *root = fy_document_root(d);
	yt_set_str(yt_path(root, "/roleRef"), "name", r->base);
	(void)arg;
	void *it = NULL;
	struct fy_node *subject = fy_node_sequence_iterate(yt_get(root, "subjects"), &it);
	yt_set_str(subject, "name", r->sa_name);
	yt_set_str(subject, "namespace", r->cfg->namespace);
}

/* The Role: each API call the Job makes, granted only when the feature that makes it is on
 * (access.h: the same table migrate checks before anything stops). The wrapper's and
 * `status`' calls run with the user's credentials, not the Job's. */
static void fill_role(struct render *r, struct fy_document *d, const void *arg)
{
	(void)arg;
	struct fy_node *rules = yt_get(fy_document_root(d), "rules");
	const struct cr_access_rule *needed[CR_ACCESS_MAX_RULES];
	size_t n = cr_access_rules(r->cfg, needed, CR_ACCESS_MAX_RULES);
	for (size_t i = 0; i < n; i++) {
		struct fy_node *rule = yt_map(d);
		yt_append(yt_child_seq(rule, "apiGroups"), yt_str(d, needed[i]->group));
		yt_append(yt_child_seq(rule, "resources"), yt_str(d, needed[i]->resource));
		struct fy_node *verbs = yt_child_seq(rule, "verbs");
		for (size_t v = 0; v < CR_ACCESS_MAX_VERBS && needed[i]->verbs[v]; v++)
			yt_append(verbs, yt_str(d, needed[i]->verbs[v]));
		yt_append(rules, rule);
	}
}

/* The database's URL is in our Secret (else in the user's, named by urlSecret). */
static bool inline_secret(const struct cr_database *db)
{
	return !cr_nonempty(db->url_secret.name);
}

static void add_secret_entry(struct fy_node *data, const char *key, const char *value)
{
	struct cr_buf b64 = { 0 };
	cr_base64(&b64, value, strlen(value));
	yt_set_str(data, key, b64.data ? b64.data : "");
	cr_buf_free(&b64);
}

static void fill_secret(struct render *r, struct fy_document *d, const void *arg)
{
	const struct cr_config *cfg = r->cfg;
	struct fy_node *data = yt_child_map(fy_document_root(d), "data");
	(void)arg;
	for (size_t i = 0; i < cfg->n_databases; i++) {
		const struct cr_database *db = &cfg->databases[i];
		if (!inline_secret(db))
			continue;
		char *key = cr_database_env(i, "URL");
		char *url = cr_nonempty(db->url) ? xstrdup(db->url) : cr_database_url(db, true);
		add_secret_entry(data, key, url);
		free(url);
		free(key);
	}
	if (cr_nonempty(cfg->eslembic.url))
		add_secret_entry(data, "CHARTREUSE_ESLEMBIC_URL", cfg->eslembic.url);
}

static bool secret_has_entries(const struct cr_config *cfg)
{
	for (size_t i = 0; i < cfg->n_databases; i++)
		if (inline_secret(&cfg->databases[i]))
			return true;
	return cr_nonempty(cfg->eslembic.url);
}

/* The runtime config: the merged settings minus anything secret, plus what was inferred. */
static void fill_configmap(struct render *r, struct fy_document *d, const void *arg)
{
	const struct cr_config *cfg = r->cfg;
	(void)arg;
	struct fy_document *rt = yt_document();
	struct fy_node *root = fy_node_copy(rt, fy_document_root(cfg->doc));
	fy_document_set_root(rt, root);
	yt_set_str(root, "apiVersion", CR_CONFIG_API_VERSION);
	yt_set_str(root, "kind", CR_CONFIG_KIND);
	yt_set_str(root, "release", cfg->release);
	yt_set_str(root, "namespace", cfg->namespace);
	yt_set_str(yt_child_map(root, "metadata"), "name", cfg->metadata.name);
	struct fy_node *dbs = yt_get(root, "databases");
	void *it = NULL;
	struct fy_node *db;
	size_t i = 0;
	while (yt_is_seq(dbs) && (db = fy_node_sequence_iterate(dbs, &it))) {
		yt_del(db, "password");
		yt_del(db, "url");
		yt_set_str(db, "name", cfg->databases[i++].name);
	}
	struct fy_node *es = yt_get(root, "eslembic");
	if (yt_is_map(es))
		yt_del(es, "url");
	struct cr_buf text = { 0 };
	if (yt_emit_document(rt, &text) == 0)
		yt_set_str(yt_child_map(fy_document_root(d), "data"), "config.yaml", text.data);
	cr_buf_free(&text);
	fy_document_destroy(rt);
}

/* --- Jobs ---------------------------------------------------------------------------------- */

static void add_database_env(struct render *r, struct fy_node *env)
{
	const struct cr_config *cfg = r->cfg;
	struct fy_document *d = fy_node_document(env);
	for (size_t i = 0; i < cfg->n_databases; i++) {
		const struct cr_database *db = &cfg->databases[i];
		char *url = cr_database_env(i, "URL");
		if (inline_secret(db))
			yt_append(env, cr_env_secret(d, url, r->base, url));
		else
			yt_append(env, cr_env_secret(d, url, db->url_secret.name, db->url_secret.key));
		if (cr_nonempty(db->password_secret.name)) {
			char *pw = cr_database_env(i, "PASSWORD");
			yt_append(env, cr_env_secret(d, pw, db->password_secret.name,
						  db->password_secret.key));
			free(pw);
		}
		free(url);
	}
	if (cr_nonempty(cfg->eslembic.url))
		yt_append(env, cr_env_secret(d, "CHARTREUSE_ESLEMBIC_URL", r->base,
					  "CHARTREUSE_ESLEMBIC_URL"));
	else if (cr_nonempty(cfg->eslembic.url_secret.name))
		yt_append(env, cr_env_secret(d, "CHARTREUSE_ESLEMBIC_URL", cfg->eslembic.url_secret.name,
					  cfg->eslembic.url_secret.key));
}

static struct fy_node *container(const struct render *r, struct fy_document *job,
				 const char *tpl, const struct cr_image *img)
{
	return cr_podspec_container(job, tpl, img, r->cfg, r->app);
}

/* Points the application container's command at the copied binary and mounts it. */
static void run_copied_binary(struct fy_node *c)
{
	void *it = NULL;
	struct fy_node *cmd = yt_get(c, "command");
	struct fy_node *first = fy_node_sequence_iterate(cmd, &it);
	struct fy_node *bin = yt_str(fy_node_document(c), BINARY_MOUNT "/bin/chartreuse");
	fy_node_sequence_insert_after(cmd, first, bin);
	fy_node_free(fy_node_sequence_remove(cmd, first));
	struct fy_node *mount = yt_map(fy_node_document(c));
	yt_set_str(mount, "name", "chartreuse-binary");
	yt_set_str(mount, "mountPath", BINARY_MOUNT);
	yt_set(mount, "readOnly", yt_bool(fy_node_document(c), true));
	yt_append(yt_child_seq(c, "volumeMounts"), mount);
}

static void add_args(struct fy_node *c, const char *const *args)
{
	struct fy_node *seq = yt_child_seq(c, "args");
	for (; *args; args++)
		yt_append(seq, yt_str(fy_node_document(c), *args));
}

/* "<prefix>-<name as a DNS label>"; `taken` holds the names used so far, since two names
 * may map to one label ("a_b", "a-b"): the index keeps them apart. */
static char *container_name(const char *prefix, const char *name, size_t index,
			    struct cr_strlist *taken)
{
	struct cr_buf b = { 0 };
	cr_buf_printf(&b, "%s-", prefix);
	for (const char *p = name; *p && b.len < CR_NAME_MAX - 8; p++) {
		unsigned char c = (unsigned char)tolower((unsigned char)*p);
		cr_buf_addc(&b, isalnum(c) ? (char)c : '-');
	}
	while (b.len && b.data[b.len - 1] == '-')
		b.data[--b.len] = '\0';
	if (cr_strlist_has(taken, b.data))
		cr_buf_printf(&b, "-%zu", index);
	cr_strlist_add(taken, b.data);
	return cr_buf_detach(&b, NULL);
}

/* Copies into dst the entries of env named a or b: a wait container gets the same secret
 * references as the main container, for its own service only. */
static void copy_env(struct fy_node *dst, struct fy_node *env, const char *a, const char *b)
{
	void *it = NULL;
	struct fy_node *e;
	while ((e = fy_node_sequence_iterate(env, &it))) {
		char *n = yt_strdup(yt_get(e, "name"));
		if (cr_streq(n, a) || cr_streq(n, b))
			yt_append(dst, fy_node_copy(fy_node_document(dst), e));
		free(n);
	}
}

static void add_init_containers(struct render *r, struct fy_document *d, struct fy_node *inits,
				struct fy_node *env)
{
	const struct cr_config *cfg = r->cfg;
	const struct cr_image *helper = helper_image(r);
	char timeout[32];
	snprintf(timeout, sizeof(timeout), "%ld", cfg->wait_timeout);
	if (r->copy_binary)
		yt_append(inits, container(r, d, "container-copy-binary.yaml",
					   &cfg->chartreuse_image));
	for (size_t i = 0; i < cfg->n_databases; i++) {
		struct fy_node *c = container(r, d, "container-wait-postgres.yaml", helper);
		char *url_env = cr_database_env(i, "URL");
		char *pw_env = cr_database_env(i, "PASSWORD");
		yt_set_str(c, "name", r->wait_names.items[i]);
		const char *args[] = { "--name", cfg->databases[i].name, "--url-env", url_env,
				       "--timeout", timeout, NULL };
		add_args(c, args);
		copy_env(yt_child_seq(c, "env"), env, url_env, pw_env);
		yt_append(inits, c);
		free(pw_env);
		free(url_env);
	}
	if (cr_config_uses_eslembic(cfg)) {
		struct fy_node *c = container(r, d, "container-wait-elasticsearch.yaml", helper);
		const char *args[] = { "--url-env", "CHARTREUSE_ESLEMBIC_URL", "--timeout", timeout,
				       NULL };
		add_args(c, args);
		copy_env(yt_child_seq(c, "env"), env, "CHARTREUSE_ESLEMBIC_URL", NULL);
		yt_append(inits, c);
	}
}

static void fill_pod_common(struct render *r, struct fy_document *d, const char *component)
{
	const struct cr_config *cfg = r->cfg;
	struct fy_node *root = fy_document_root(d);
	struct fy_node *spec = yt_path(root, "/spec");
	yt_set(spec, "ttlSecondsAfterFinished", yt_int(d, cfg->ttl_seconds_after_finished));
	struct fy_node *tmeta = yt_path(root, "/spec/template/metadata");
	struct fy_node *plabels = yt_child_map(tmeta, "labels");
	merge_copies(plabels, cfg->pod_labels);
	set_labels(r, plabels, component);
	merge_copies(yt_child_map(tmeta, "annotations"), cfg->pod_annotations);
	struct fy_node *pod = yt_path(root, "/spec/template/spec");
	yt_set_str(pod, "serviceAccountName", r->sa_name);
	cr_podspec_scheduling(pod, cfg, r->app, true);
	yt_set_str(yt_child_map(yt_path(root, "/metadata"), "annotations"),
		   "chartreuse.wiremind.io/version", CHARTREUSE_VERSION);
}

static void add_volume(struct fy_node *volumes, const char *name, const char *kind,
		       const char *config_map)
{
	struct fy_document *d = fy_node_document(volumes);
	struct fy_node *v = yt_map(d);
	yt_set_str(v, "name", name);
	struct fy_node *src = yt_child_map(v, kind);
	if (config_map)
		yt_set_str(src, "name", config_map);
	yt_append(volumes, v);
}

/* The Pod's own name and uid, for the Events chartreuse records on it (events.h). */
static void add_own_pod_env(struct fy_document *d, struct fy_node *env)
{
	yt_append(env, cr_env_field(d, "POD_NAME", "metadata.name"));
	yt_append(env, cr_env_field(d, "POD_UID", "metadata.uid"));
}

static void fill_migration_job(struct render *r, struct fy_document *d, const void *arg)
{
	const struct cr_config *cfg = r->cfg;
	enum job_kind kind = *(const enum job_kind *)arg;
	struct fy_node *pod = yt_path(fy_document_root(d), "/spec/template/spec");
	fill_pod_common(r, d, "migration");
	if (cfg->active_deadline_seconds > 0)
		yt_set(yt_path(fy_document_root(d), "/spec"), "activeDeadlineSeconds",
		       yt_int(d, cfg->active_deadline_seconds));

	struct fy_node *c = container(r, d, "container-migrate.yaml", &cfg->image);
	if (r->copy_binary)
		run_copied_binary(c);
	struct fy_node *env = yt_child_seq(c, "env");
	add_database_env(r, env);
	yt_append(env, cr_env_field(d, "CHARTREUSE_NAMESPACE", "metadata.namespace"));
	add_own_pod_env(d, env);
	yt_append(env, cr_env_value(d, "CHARTREUSE_RELEASE_NAME", cfg->release));
	yt_append(env, cr_env_value(d, "CHARTREUSE_EXPECTED_VERSION", CHARTREUSE_VERSION));
	yt_append(env, cr_env_value(d, "CHARTREUSE_UPGRADE_BEFORE_DEPLOYMENT",
				 r->before ? "true" : "false"));
	if (kind == JOB_INSTALL || kind == JOB_UPGRADE)
		yt_append(env, cr_env_value(d, "HELM_IS_INSTALL", kind == JOB_INSTALL ? "true" : "false"));
	char *img = cr_image_ref(&cfg->image);
	yt_append(env, cr_env_value(d, "CHARTREUSE_MIGRATE_CONTAINER_IMAGE", img));
	free(img);
	char *from = r->app && r->app->deployment ? xasprintf("Deployment %s", r->app->deployment)
						  : xstrdup("none");
	yt_append(env, cr_env_value(d, CR_SECURITY_FROM_ENV, from));
	free(from);
	if (cr_nonempty(cfg->image.pull_secret))
		yt_append(env, cr_env_value(d, "CHARTREUSE_MIGRATE_IMAGE_PULL_SECRET",
					 cfg->image.pull_secret));
	if (cr_nonempty(cfg->priority_class_name))
		yt_append(env, cr_env_value(d, "CHARTREUSE_UPGRADE_PRIORITYCLASS_NAME",
					 cfg->priority_class_name));
	cr_podspec_app_settings(c, cfg);

	add_init_containers(r, d, yt_child_seq(pod, "initContainers"), env);
	yt_append(yt_child_seq(pod, "containers"), c);

	struct fy_node *volumes = yt_child_seq(pod, "volumes");
	add_volume(volumes, "chartreuse-config", "configMap", r->base);
	if (r->copy_binary)
		add_volume(volumes, "chartreuse-binary", "emptyDir", NULL);
	yt_append_copies(volumes, cfg->volumes);
}

static void fill_restore_job(struct render *r, struct fy_document *d, const void *arg)
{
	const struct cr_config *cfg = r->cfg;
	(void)arg;
	struct fy_node *pod = yt_path(fy_document_root(d), "/spec/template/spec");
	fill_pod_common(r, d, "restore");
	yt_del(pod, "initContainers");
	yt_del(pod, "volumes");
	struct fy_node *c = container(r, d, "container-restore.yaml", helper_image(r));
	const char *args[] = { "--release", cfg->release, "--namespace", cfg->namespace, NULL };
	add_args(c, args);
	add_own_pod_env(d, yt_child_seq(c, "env"));
	yt_set_copy(c, "resources", cfg->resources);
	yt_append(yt_child_seq(pod, "containers"), c);
}

/* --- the whole set ------------------------------------------------------------------------- */

static int render_jobs(struct render *r)
{
	const struct cr_config *cfg = r->cfg;
	static const enum job_kind after = JOB_AFTER, upgrade = JOB_UPGRADE, install = JOB_INSTALL,
				   argo = JOB_ARGOCD;
	int rc = 0;
	char *upgrade_name = cr_object_name(cfg->release, cfg->metadata.name, "upgrade");
	char *install_name = cr_object_name(cfg->release, cfg->metadata.name, "install");
	char *restore_name = cr_object_name(cfg->release, cfg->metadata.name, "restore");
	/* A Job's name is also the value of its Pods' job-name label: 63 at most. */
	if (cr_check_name(RENDERING, "the Job name", upgrade_name, CR_NAME_SUBDOMAIN,
			  CR_NAME_MAX) ||
	    cr_check_name(RENDERING, "the Job name", install_name, CR_NAME_SUBDOMAIN,
			  CR_NAME_MAX) ||
	    cr_check_name(RENDERING, "the Job name", restore_name, CR_NAME_SUBDOMAIN,
			  CR_NAME_MAX))
		rc = -1;
	else if (r->argocd)
		rc = object(r, "job.yaml", upgrade_name, "migration", JOB_ARGOCD,
			    fill_migration_job, &argo);
	else if (!cfg->upgrade_before_deployment)
		rc = object(r, "job.yaml", upgrade_name, "migration", JOB_AFTER, fill_migration_job,
			    &after);
	else
		rc = object(r, "job.yaml", upgrade_name, "migration", JOB_UPGRADE,
			    fill_migration_job, &upgrade) ||
		     object(r, "job.yaml", install_name, "migration", JOB_INSTALL,
			    fill_migration_job, &install);
	if (!rc && r->restore)
		rc = object(r, "job.yaml", restore_name, "restore", JOB_RESTORE, fill_restore_job,
			    NULL);
	free(upgrade_name);
	free(install_name);
	free(restore_name);
	return rc;
}

/* The names of the companions and of the wait containers, made and checked before anything
 * is emitted (the Jobs' names are checked where they are made). */
static int make_names(struct render *r)
{
	const struct cr_config *cfg = r->cfg;
	if (cr_check_name(RENDERING, "the object name", r->base, CR_NAME_SUBDOMAIN, 253) ||
	    cr_check_name(RENDERING, "the ServiceAccount name", r->sa_name, CR_NAME_SUBDOMAIN, 253))
		return -1;
	struct cr_strlist taken = { 0 };
	int rc = 0;
	for (size_t i = 0; !rc && i < cfg->n_databases; i++) {
		char *name = container_name("wait-postgres", cfg->databases[i].name, i, &taken);
		rc = cr_check_name(RENDERING, "the container name", name, CR_NAME_LABEL,
				   CR_NAME_MAX);
		cr_strlist_add(&r->wait_names, name);
		free(name);
	}
	cr_strlist_free(&taken);
	return rc;
}

int cr_render(const struct cr_config *cfg, struct cr_buf *out)
{
	return cr_render_split(cfg, NULL, out, NULL);
}

int cr_render_split(const struct cr_config *cfg, const struct cr_app_security *app,
		    struct cr_buf *out, struct cr_buf *jobs)
{
	struct render r = { .cfg = cfg, .app = app, .out = out, .jobs_out = jobs };
	r.base = cr_object_name(cfg->release, cfg->metadata.name, NULL);
	r.sa_name = xstrdup(cr_nonempty(cfg->service_account.name) ? cfg->service_account.name
								 : r.base);
	r.argocd = strcmp(cfg->deployment_method, "argocd") == 0;
	if (r.argocd)
		r.jobs_out = NULL; /* Argo CD runs its own hooks, whatever Helm renders them */
	r.before = cr_config_migrates_before_deployment(cfg);
	r.copy_binary = strcmp(cfg->chartreuse_image.delivery, "copy") == 0;
	r.restore = r.before && cfg->stop_pods && cfg->restore_pods;
	r.companion_events = !cfg->upgrade_before_deployment ? "post-install,post-upgrade"
			     : r.restore ? "pre-upgrade,post-install,post-upgrade"
					 : "pre-upgrade,post-install";
	int rc = make_names(&r);
	if (!rc && cfg->service_account.create)
		rc = object(&r, "serviceaccount.yaml", r.sa_name, "rbac", -1, NULL, NULL);
	if (!rc && cfg->rbac.create)
		rc = object(&r, "role.yaml", r.base, "rbac", -1, fill_role, NULL) ||
		     object(&r, "rolebinding.yaml", r.base, "rbac", -1, fill_rolebinding, NULL);
	if (!rc && secret_has_entries(cfg))
		rc = object(&r, "secret.yaml", r.base, "config", -1, fill_secret, NULL);
	if (!rc)
		rc = object(&r, "configmap.yaml", r.base, "config", -1, fill_configmap, NULL);
	if (!rc)
		rc = render_jobs(&r);
	free(r.base);
	free(r.sa_name);
	cr_strlist_free(&r.wait_names);
	return rc;
}
