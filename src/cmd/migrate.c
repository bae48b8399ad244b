/* `chartreuse migrate`: run inside the migration Job (or from a workstation). Settings come
 * from --config (the Job mounts its ConfigMap's config.yaml) or, without it, from the
 * environment variables of the reference tool. */
#include "cmd.h"
#include "config.h"
#include "eslembic.h"
#include "log.h"
#include "migrate.h"
#include "proc.h"
#include "util.h"
#include "ytree.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct options {
	const char *config;
	struct cr_migrate_options m;
};

static int seconds_option(const char *name, const char *v, int *out)
{
	char *end;
	long s = strtol(v, &end, 10);
	if (!*v || *end || s < 0 || s > 86400) {
		cr_error("migrate: %s expects a number of seconds, got %s", name, v);
		return -1;
	}
	*out = (int)s;
	return 0;
}

static int parse_options(int argc, char **argv, struct options *o)
{
	for (int i = 1; i < argc; i++) {
		const char *v;
		int r = 0;
		if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help"))
			return cr_usage("migrate", 0) - 1;
		if (!strcmp(argv[i], "--dry-run"))
			o->m.dry_run = true;
		else if ((r = cr_opt_value(argc, argv, &i, "--config", &v)) != 0)
			o->config = v;
		else if ((r = cr_opt_value(argc, argv, &i, "--lock-timeout", &v)) != 0)
			r = r < 0 ? r : seconds_option("--lock-timeout", v, &o->m.lock_timeout);
		else if ((r = cr_opt_value(argc, argv, &i, "--connect-timeout", &v)) != 0)
			r = r < 0 ? r : seconds_option("--connect-timeout", v, &o->m.connect_timeout);
		else {
			cr_error("migrate: unknown argument %s (see chartreuse migrate --help)", argv[i]);
			return 2;
		}
		if (r < 0)
			return 2;
	}
	return 0;
}

/* The reference tool read "" as false and any other string as true; false/0/no/off are
 * false here too. */
static const char *env_bool(const char *name)
{
	const char *v = getenv(name);
	bool b;
	if (!v)
		return NULL;
	if (!cr_parse_bool(v, &b))
		b = true;
	return b ? "true" : "false";
}

static int set_from_env(struct fy_node *root, const char *key, const char *env, bool is_bool)
{
	const char *v = is_bool ? env_bool(env) : getenv(env);
	if (!v)
		return 0;
	char *assignment = xasprintf("%s=%s", key, v);
	int rc = cr_config_set(root, assignment);
	if (rc)
		cr_error("environment variable %s is not usable (see the line above)", env);
	free(assignment);
	return rc;
}

/* The reference tool's multi-database file: databases: {<name>: {snake_case keys}}. */
static const struct {
	const char *reference, *ours;
} multi_keys[] = {
	{ "dialect", "dialect" },
	{ "user", "user" },
	{ "password", "password" },
	{ "host", "host" },
	{ "port", "port" },
	{ "database", "database" },
	{ "alembic_directory_path", "alembicDirectory" },
	{ "alembic_config_file_path", "alembicConfigFile" },
	{ "alembic_section_name", "alembicSection" },
	{ "allow_migration_for_empty_database", "allowMigrationFromEmptyDatabase" },
	{ "additional_parameters", "additionalParameters" },
};

static const char *our_key(const char *reference)
{
	for (size_t i = 0; i < sizeof(multi_keys) / sizeof(multi_keys[0]); i++)
		if (!strcmp(multi_keys[i].reference, reference))
			return multi_keys[i].ours;
	return NULL;
}

static int convert_multi_entry(struct fy_node *dbs, struct fy_node *name, struct fy_node *entry,
			       const char *source)
{
	struct fy_document *d = fy_node_document(dbs);
	struct fy_node *out = yt_map(d);
	yt_append(dbs, out);
	yt_set(out, "name", fy_node_copy(d, name));
	char *db = yt_strdup(name);
	int rc = 0;
	if (!yt_is_map(entry)) {
		cr_error("%s:%d: databases.%s: expected a mapping", source, yt_line(entry),
			 db ? db : "?");
		rc = -1;
	}
	void *it = NULL;
	struct fy_node_pair *p;
	while (!rc && (p = fy_node_mapping_iterate(entry, &it))) {
		char *key = yt_strdup(fy_node_pair_key(p));
		const char *ours = key ? our_key(key) : NULL;
		if (ours) {
			yt_set(out, ours, fy_node_copy(d, fy_node_pair_value(p)));
		} else {
			cr_error("%s:%d: databases.%s.%s: unknown key", source,
				 yt_line(fy_node_pair_key(p)), db ? db : "?", key ? key : "?");
			rc = -1;
		}
		free(key);
	}
	free(db);
	return rc;
}

static int read_multi_config(struct fy_node *root, const char *path)
{
	struct cr_buf text = { 0 };
	char *source = xasprintf("CHARTREUSE_MULTI_CONFIG_PATH %s", path);
	struct fy_document *multi = NULL;
	int rc = -1;
	if (cr_read_file(path, &text) == 0)
		multi = yt_parse(text.data, text.len, source, 0);
	struct fy_node *dbs = multi ? yt_get(fy_document_root(multi), "databases") : NULL;
	if (multi && !yt_is_map(dbs)) {
		cr_error("%s: expected databases: {<name>: {...}}", source);
	} else if (multi) {
		struct fy_node *seq = yt_child_seq(root, "databases");
		void *it = NULL;
		struct fy_node_pair *p;
		rc = 0;
		while (!rc && (p = fy_node_mapping_iterate(dbs, &it)))
			rc = convert_multi_entry(seq, fy_node_pair_key(p), fy_node_pair_value(p),
						 source);
	}
	if (multi)
		fy_document_destroy(multi);
	cr_buf_free(&text);
	free(source);
	return rc;
}

/* Settings from the reference tool's environment variables. */
static struct fy_document *config_from_env(void)
{
	struct fy_document *d = fy_document_create(NULL);
	struct fy_node *root = yt_map(d);
	fy_document_set_root(d, root);
	const char *multi = getenv("CHARTREUSE_MULTI_CONFIG_PATH");
	if (cr_nonempty(multi) && read_multi_config(root, multi)) {
		fy_document_destroy(d);
		return NULL;
	}
	/* scope: what a database-level variable applies to */
	enum { GLOBAL, SINGLE, EVERY };
	static const struct {
		const char *key, *env;
		bool is_bool;
		int scope;
	} vars[] = {
		{ "release", "CHARTREUSE_RELEASE_NAME", false, GLOBAL },
		{ "namespace", "CHARTREUSE_NAMESPACE", false, GLOBAL },
		{ "stopPods", "CHARTREUSE_ENABLE_STOP_PODS", true, GLOBAL },
		{ "upgradeBeforeDeployment", "CHARTREUSE_UPGRADE_BEFORE_DEPLOYMENT", true, GLOBAL },
		{ "eslembic.url", "CHARTREUSE_ESLEMBIC_URL", false, GLOBAL },
		{ "eslembic.cleanIndex", "CHARTREUSE_ESLEMBIC_ENABLE_CLEAN", true, GLOBAL },
		{ "eslembic.migrate", "CHARTREUSE_ESLEMBIC_ENABLE_MIGRATE", true, GLOBAL },
		{ "eslembic.directory", "CHARTREUSE_ESLEMBIC_DIRECTORY_PATH", false, GLOBAL },
		/* the eslembic follow-up Job's image, pull secret and priority class */
		{ "image.repository", "CHARTREUSE_MIGRATE_CONTAINER_IMAGE", false, GLOBAL },
		{ "image.pullSecret", "CHARTREUSE_MIGRATE_IMAGE_PULL_SECRET", false, GLOBAL },
		{ "priorityClassName", "CHARTREUSE_UPGRADE_PRIORITYCLASS_NAME", false, GLOBAL },
		{ "url", "CHARTREUSE_ALEMBIC_URL", false, SINGLE },
		{ "alembicDirectory", "CHARTREUSE_ALEMBIC_DIRECTORY_PATH", false, SINGLE },
		{ "alembicConfigFile", "CHARTREUSE_ALEMBIC_CONFIG_FILE_PATH", false, SINGLE },
		{ "allowMigrationFromEmptyDatabase",
		  "CHARTREUSE_ALEMBIC_ALLOW_MIGRATION_FOR_EMPTY_DATABASE", true, SINGLE },
		{ "additionalParameters", "CHARTREUSE_ALEMBIC_ADDITIONAL_PARAMETERS", false, SINGLE },
		{ "patroni", "CHARTREUSE_PATRONI_POSTGRESQL", true, EVERY },
		{ "patroniWaitTimeout", "CHARTREUSE_ALEMBIC_POSTGRES_WAIT_CONFIGURED_TIMEOUT", false,
		  EVERY },
	};
	struct fy_node *dbs = yt_get(root, "databases");
	size_t n_multi = yt_is_seq(dbs) ? (size_t)fy_node_sequence_item_count(dbs) : 0;
	int rc = 0;
	for (size_t i = 0; !rc && i < sizeof(vars) / sizeof(vars[0]); i++) {
		if (vars[i].scope == GLOBAL) {
			rc = set_from_env(root, vars[i].key, vars[i].env, vars[i].is_bool);
			continue;
		}
		/* With a multi-database file, the single-database variables don't apply. */
		size_t n = vars[i].scope == SINGLE ? (n_multi ? 0 : 1) : (n_multi ? n_multi : 1);
		for (size_t k = 0; !rc && k < n; k++) {
			char *key = xasprintf("databases[%zu].%s", k, vars[i].key);
			rc = set_from_env(root, key, vars[i].env, vars[i].is_bool);
			free(key);
		}
	}
	if (rc) {
		fy_document_destroy(d);
		return NULL;
	}
	return d;
}

static struct fy_document *config_from_file(const char *path, char **source)
{
	struct cr_buf text = { 0 };
	*source = xasprintf("config file %s", path);
	struct fy_document *d = NULL;
	if (cr_read_file(path, &text) == 0)
		d = yt_parse(text.data, text.len, *source, 0);
	cr_buf_free(&text);
	return d;
}

/* major.minor of two versions differ? */
static bool other_release_line(const char *a, const char *b)
{
	const char *da = strchr(a, '.'), *db = strchr(b, '.');
	size_t la = da ? strcspn(da + 1, ".") + (size_t)(da + 1 - a) : strlen(a);
	size_t lb = db ? strcspn(db + 1, ".") + (size_t)(db + 1 - b) : strlen(b);
	return la != lb || strncmp(a, b, la) != 0;
}

static int check_version(void)
{
	const char *expected = getenv("CHARTREUSE_EXPECTED_VERSION");
	if (!cr_nonempty(expected) || !other_release_line(expected, CHARTREUSE_VERSION))
		return 0;
	cr_error("this Job was rendered by chartreuse %s but runs chartreuse %s: major.minor "
		 "must match (use the chartreuse image of the version that rendered it)",
		 expected, CHARTREUSE_VERSION);
	return -1;
}

static bool helm_is_install(void)
{
	bool b = false;
	const char *v = getenv("HELM_IS_INSTALL");
	return v && (!cr_parse_bool(v, &b) || b);
}

int cmd_migrate(int argc, char **argv)
{
	struct options o = { .m = { .connect_timeout = 10, .lock_timeout = 1800 } };
	int rc = parse_options(argc, argv, &o);
	if (rc)
		return rc < 0 ? 0 : rc;
	if (check_version())
		return 1;
	char *source = NULL;
	struct fy_document *d = o.config ? config_from_file(o.config, &source) : config_from_env();
	if (!source)
		source = xstrdup("environment");
	struct cr_config cfg;
	rc = d ? cr_config_load(&cfg, d, source) : -1;
	if (!rc && !cfg.n_databases && !cr_eslembic_configured(&cfg)) {
		cr_error("%s: nothing to migrate: no database (set CHARTREUSE_ALEMBIC_URL or use "
			 "--config) and no eslembic (CHARTREUSE_ESLEMBIC_URL)", source);
		rc = -1;
	}
	if (!rc) {
		o.m.start_pods_after = !cfg.upgrade_before_deployment || helm_is_install();
		cr_proc_catch_termination();
		rc = cr_migrate(&cfg, &o.m);
	}
	if (d)
		cr_config_free(&cfg);
	free(source);
	cr_secrets_clear();
	if (cr_terminated())
		return 128 + cr_terminated(); /* what a shell reports for a killed command */
	return rc ? 1 : 0;
}
