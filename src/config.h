/* config: the settings of one migration (what the injected objects need and what `migrate`
 * reads back), their schema, and how they are gathered from their sources, highest
 * precedence first: --set arguments, config files, a ChartreuseConfig document in the
 * chart's output, inference from the manifests, defaults. */
#ifndef CR_CONFIG_H
#define CR_CONFIG_H

#include <libfyaml.h>
#include <stdbool.h>
#include <stddef.h>

#include "util.h"

#define CR_CONFIG_API_VERSION "chartreuse.wiremind.io/v1"
#define CR_CONFIG_KIND "ChartreuseConfig"

struct cr_secret_ref {
	char *name;
	char *key;
};

struct cr_image {
	char *repository;
	char *tag;
	char *pull_policy;
	char *pull_secret;
	char *delivery; /* chartreuseImage only: "copy" or "baked" */
};

struct cr_database {
	char *name;
	char *dialect;
	char *host;
	long port;
	char *user;
	char *password;
	struct cr_secret_ref password_secret;
	char *url;
	struct cr_secret_ref url_secret;
	char *database;
	char *alembic_directory;
	char *alembic_config_file;
	char *alembic_section;
	bool allow_migration_from_empty_database;
	struct cr_strlist additional_parameters;
	bool patroni;
	long patroni_wait_timeout;
};

struct cr_eslembic {
	char *url;
	struct cr_secret_ref url_secret;
	char *directory;
	bool clean_index;
	bool migrate;
};

struct cr_argocd {
	char *hook;
	long sync_wave;
};

struct cr_metadata {
	char *name;
	struct fy_node *labels;
	struct fy_node *annotations;
};

struct cr_service_account {
	bool create;
	char *name;
};

struct cr_rbac {
	bool create;
};

struct cr_config {
	char *api_version;
	char *kind;
	struct cr_metadata metadata;
	char *release;
	char *namespace;
	char *deployment_method; /* "helm" or "argocd" */
	struct cr_argocd argocd;
	bool upgrade_before_deployment;
	bool stop_pods;
	bool restore_pods;
	char *upgrade_job_weight;
	long stop_pods_timeout;
	long wait_timeout;
	long ttl_seconds_after_finished;
	long active_deadline_seconds; /* 0: none */
	struct cr_image image;
	struct cr_image chartreuse_image;
	struct cr_database *databases;
	size_t n_databases;
	struct cr_eslembic eslembic;
	struct cr_rbac rbac;
	struct cr_service_account service_account;
	char *priority_class_name;
	struct fy_node *resources, *node_selector, *tolerations, *affinity;
	struct fy_node *pod_security_context, *security_context;
	struct fy_node *pod_annotations, *pod_labels;
	struct fy_node *env, *env_from, *volumes, *volume_mounts;

	struct fy_document *doc; /* the merged tree; owns the free-form nodes above */
};

/* Checks a parsed source against the schema; errors name `source`, the line (plus
 * line_base, for documents cut out of a stream) and the key path. */
int cr_config_validate(struct fy_node *root, const char *source, int line_base);

/* Overlays src onto dst (dst's document gets copies): mappings merge key by key, anything
 * else is replaced. */
void cr_config_overlay(struct fy_node *dst, struct fy_node *src);

/* Applies one --set argument onto the tree, read as Helm reads it (README, "--set"):
 * assignments "a.b[0].c=value" separated by commas ("\," in a value), "{x,y}" lists, "null"
 * to unset. A schema key gets its schema type (an empty value is refused); a value inside
 * a free-form setting is typed as Helm types it, except where Kubernetes wants a string
 * (labels, annotations, env[].value, ...). as_string (--set-string): every value a string.
 * Errors never show a value that could be secret. */
int cr_config_set_arg(struct fy_node *root, const char *arg, bool as_string);
/* One "a.b[0].c=value" whose value is taken whole (commas, backslashes, "null" and all),
 * converted to the type the schema gives that key: migrate's environment variables. */
int cr_config_set(struct fy_node *root, const char *assignment);

/* Fills cfg from the merged tree (taking ownership of doc), applying defaults and the
 * cross-field rules (a database needs a host or a URL, names are unique, ...). */
int cr_config_load(struct cr_config *cfg, struct fy_document *doc, const char *source);
void cr_config_free(struct cr_config *cfg);
/* What rendering needs beyond a valid config: a release, a namespace, an application
 * image, and where each database is. */
int cr_config_check_for_render(const struct cr_config *cfg, const char *source);

bool cr_config_uses_eslembic(const struct cr_config *cfg);

/* Whether the migration runs before the new version is deployed, so that the pods it
 * stops are brought back by the deployment (and the restore Job), not by the migration:
 * upgradeBeforeDeployment under Helm, any hook but PostSync under Argo CD. */
bool cr_config_migrates_before_deployment(const struct cr_config *cfg);

/* True for "true/false"-like words as the reference tool read them; sets *out. */
bool cr_parse_bool(const char *s, bool *out);

#endif
