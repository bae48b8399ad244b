/* job_config: the settings of the commands a migration Job runs (`migrate`, `status`):
 * from --config FILE (the Job mounts its ConfigMap's config.yaml) or, without it, from the
 * reference tool's environment variables (CHARTREUSE_ALEMBIC_URL, CHARTREUSE_RELEASE_NAME,
 * ..., and the multi-database file named by CHARTREUSE_MULTI_CONFIG_PATH). */
#ifndef CR_JOB_CONFIG_H
#define CR_JOB_CONFIG_H

#include <stddef.h>

struct cr_config;

/* Where the settings come from and what the command line says over them. */
struct cr_job_config_args {
	const char *path;	  /* NULL: the environment */
	const char *const *sets; /* --set arguments, applied in order after the file */
	size_t n_sets;
	const char *release, *namespace; /* NULL: as the settings say */
};

/* Loads the settings from a->path, or from the environment when it is NULL, then applies
 * the --set arguments and the release and namespace given. *source (caller frees, always
 * set) names where they came from, for messages. cfg can be given to cr_config_free
 * whatever the outcome. 0, or -1 (reported). */
int cr_job_config_load(const struct cr_job_config_args *a, struct cr_config *cfg,
		       char **source);

#endif
