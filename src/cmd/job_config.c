/* job_config: where the commands of a migration Job find their settings. Moved out of
 * `migrate` so that `status` reads databases exactly as `migrate` does. */
#include "job_config.h"
#include "config.h"
#include "file.h"
#include "log.h"
#include "util.h"
#include "ytree.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

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
	struct fy_document *d = yt_document();
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

int cr_job_config_load(const struct cr_job_config_args *a, struct cr_config *cfg,
		       char **source)
{
	*source = NULL;
	struct fy_document *d = a->path ? config_from_file(a->path, source) : config_from_env();
	if (!*source)
		*source = xstrdup("environment");
	bool ok = d != NULL;
	struct fy_node *root = d ? fy_document_root(d) : NULL;
	if (ok && !root && (a->n_sets || a->release || a->namespace)) {
		root = yt_map(d); /* an empty file */
		fy_document_set_root(d, root);
	}
	/* a root that is no mapping is left for cr_config_load to refuse */
	bool map = root && yt_is_map(root);
	for (size_t i = 0; ok && map && i < a->n_sets; i++)
		ok = !cr_config_set_arg(root, a->sets[i], false);
	if (ok && map && a->release)
		yt_set_str(root, "release", a->release);
	if (ok && map && a->namespace)
		yt_set_str(root, "namespace", a->namespace);
	if (!ok) {
		if (d)
			fy_document_destroy(d);
		memset(cfg, 0, sizeof(*cfg));
		return -1;
	}
	return cr_config_load(cfg, d, *source);
}
