/* render: the objects a migration needs, built from the skeletons in templates/ and one
 * config: ServiceAccount, Role, RoleBinding, Secret, ConfigMap, the migration Job(s) and,
 * where pods must be brought back after the deployment, the restore Job. */
#ifndef CR_RENDER_H
#define CR_RENDER_H

#include <stdbool.h>
#include <stddef.h>

struct cr_buf;
struct cr_config;
struct cr_database;

/* Appends the injected documents, each starting with "---" and a "# Source:" line. */
int cr_render(const struct cr_config *cfg, struct cr_buf *out);
/* For the Helm 3 wrapper, which runs the Jobs itself (Helm 3 ignores hook annotations in a
 * post-renderer's output): the companions (ServiceAccount, Role, RoleBinding, Secret,
 * ConfigMap) go to out without hook annotations, as release resources; the Jobs, with
 * theirs, go to jobs only, after a copy of the companions. jobs NULL: cr_render. */
int cr_render_split(const struct cr_config *cfg, struct cr_buf *out, struct cr_buf *jobs);

/* "<release>-<name>[-<suffix>]", kept within Kubernetes' 63-character limit by shortening
 * the release part and adding a stable hash of the full name. */
char *cr_object_name(const char *release, const char *name, const char *suffix);

/* Kubernetes' name rules, which the API server checks and a JSON schema can't say. A
 * DNS-1123 label: lower-case letters, digits and '-', alphanumeric at both ends; a
 * subdomain: labels joined by '.'. */
enum cr_name_rule { CR_NAME_LABEL, CR_NAME_SUBDOMAIN };
bool cr_dns_name_ok(const char *s, enum cr_name_rule rule, size_t max);
/* 0 when name follows the rule within max characters; else reports
 * "<source>: <what> "<name>" is not a valid name: <the rule>" and returns -1. */
int cr_check_name(const char *source, const char *what, const char *name,
		  enum cr_name_rule rule, size_t max);
/* A label value: empty, or at most 63 letters, digits, '-', '_' and '.', alphanumeric at
 * both ends. */
bool cr_label_value_ok(const char *s);
/* A label or annotation key: [DNS subdomain prefix '/'] then a name as a label value's,
 * not empty. */
bool cr_qualified_name_ok(const char *s);
/* An environment variable name as Kubernetes 1.32 takes it: printable ASCII but '='. */
bool cr_env_name_ok(const char *s);
/* A key of a Secret or ConfigMap: at most 253 letters, digits, '-', '_' and '.'. */
bool cr_secret_key_ok(const char *s);

/* The SQLAlchemy URL of a database configured by components; the password is
 * percent-encoded and left out when with_password is false. */
char *cr_database_url(const struct cr_database *db, bool with_password);

/* Environment variable names the Job uses for database i: CHARTREUSE_DB_<i>_<what>. */
char *cr_database_env(size_t i, const char *what);

#endif
