/* job_config: the settings of the commands a migration Job runs (`migrate`, `status`):
 * from --config FILE (the Job mounts its ConfigMap's config.yaml) or, without it, from the
 * reference tool's environment variables (CHARTREUSE_ALEMBIC_URL, CHARTREUSE_RELEASE_NAME,
 * ..., and the multi-database file named by CHARTREUSE_MULTI_CONFIG_PATH). */
#ifndef CR_JOB_CONFIG_H
#define CR_JOB_CONFIG_H

struct cr_config;

/* Loads the settings from the file at path, or from the environment when path is NULL.
 * *source (caller frees, always set) names where they came from, for messages. cfg can be
 * given to cr_config_free whatever the outcome. 0, or -1 (reported). */
int cr_job_config_load(const char *path, struct cr_config *cfg, char **source);

#endif
