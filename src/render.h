/* render: the objects a migration needs, built from the skeletons in templates/ and one
 * config: ServiceAccount, Role, RoleBinding, Secret, ConfigMap, the migration Job(s) and,
 * where pods must be brought back after the deployment, the restore Job. */
#ifndef CR_RENDER_H
#define CR_RENDER_H

#include <stdbool.h>
#include <stddef.h>

struct cr_app_security;
struct cr_buf;
struct cr_config;
struct cr_database;

/* Appends the injected documents, each starting with "---" and a "# Source:" line. */
int cr_render(const struct cr_config *cfg, struct cr_buf *out);
/* The same, the containers running the application image as app says its Deployment runs
 * them (app may be NULL). For the Helm 3 wrapper, which runs the Jobs itself (Helm 3
 * ignores hook annotations in a post-renderer's output): the companions (ServiceAccount,
 * Role, RoleBinding, Secret, ConfigMap) go to out without hook annotations, as release
 * resources; the Jobs, with theirs, go to jobs only, after a copy of the companions. */
int cr_render_split(const struct cr_config *cfg, const struct cr_app_security *app,
		    struct cr_buf *out, struct cr_buf *jobs);


/* "<release>-<name>[-<suffix>]", kept within Kubernetes' 63-character limit by shortening
 * the release part and adding a stable hash of the full name. */
char *cr_object_name(const char *release, const char *name, const char *suffix);

/* The SQLAlchemy URL of a database configured by components; the password is
 * percent-encoded and left out when with_password is false. */
char *cr_database_url(const struct cr_database *db, bool with_password);

/* Environment variable names the Job uses for database i: CHARTREUSE_DB_<i>_<what>. */
char *cr_database_env(size_t i, const char *what);

#endif
