/* `chartreuse migrate`: run inside the migration Job (or from a workstation). Settings come
 * from --config (the Job mounts its ConfigMap's config.yaml) or, without it, from the
 * environment variables of the reference tool. */
#include "cmd.h"
#include "config.h"
#include "eslembic.h"
#include "job_config.h"
#include "log.h"
#include "migrate.h"
#include "proc.h"
#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct options {
	const char *config;
	bool detailed_exitcode;
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
		else if (!strcmp(argv[i], "--detailed-exitcode"))
			o->detailed_exitcode = true;
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
	if (o->detailed_exitcode && !o->m.dry_run) {
		cr_error("migrate: --detailed-exitcode goes with --dry-run (see chartreuse migrate "
			 "--help)");
		return 2;
	}
	return 0;
}

/* With --detailed-exitcode, 2 means "a migration is pending": a usage error must not say so. */
static bool asks_detailed_exitcode(int argc, char **argv)
{
	for (int i = 1; i < argc; i++)
		if (!strcmp(argv[i], "--detailed-exitcode"))
			return true;
	return false;
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
		return rc < 0 ? 0 : asks_detailed_exitcode(argc, argv) ? 1 : rc;
	if (check_version())
		return 1;
	char *source = NULL;
	struct cr_config cfg;
	rc = cr_job_config_load(o.config, &cfg, &source);
	if (!rc && !cfg.n_databases && !cr_eslembic_configured(&cfg)) {
		cr_error("%s: nothing to migrate: no database (set CHARTREUSE_ALEMBIC_URL or use "
			 "--config) and no eslembic (CHARTREUSE_ESLEMBIC_URL)", source);
		rc = -1;
	}
	if (!rc) {
		o.m.start_pods_after =
			!cr_config_migrates_before_deployment(&cfg) || helm_is_install();
		cr_proc_catch_termination();
		rc = cr_migrate(&cfg, &o.m);
	}
	cr_config_free(&cfg);
	free(source);
	if (cr_terminated() && rc < 0)
		return 128 + cr_terminated(); /* what a shell reports for a killed command */
	if (cr_terminated()) /* it came as the last step ran: nothing was cut short */
		cr_info("signal %d received as the migration finished: it had completed",
			cr_terminated());
	/* Terraform's convention: 0 nothing to do, 1 an error, 2 changes to make. */
	return rc < 0 ? 1 : rc > 0 && o.detailed_exitcode ? 2 : 0;
}
