/* `chartreuse migrate`: run inside the migration Job (or from a workstation). Settings come
 * from --config (the Job mounts its ConfigMap's config.yaml) or, without it, from the
 * environment variables of the reference tool. */
#include "cmd.h"
#include "config.h"
#include "eslembic.h"
#include "k8s.h"
#include "log.h"
#include "migrate.h"
#include "proc.h"
#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct own {
	struct cr_cli *cli;
	bool detailed_exitcode;
	struct cr_migrate_options m;
};

static int own_option(int argc, char **argv, int *i, void *user)
{
	struct own *o = user;
	const char *v;
	int r;
	if (!strcmp(argv[*i], "--dry-run")) {
		o->m.dry_run = true;
		return 1;
	}
	if (!strcmp(argv[*i], "--detailed-exitcode")) {
		o->detailed_exitcode = true;
		return 1;
	}
	if ((r = cr_opt_value(argc, argv, i, "--lock-timeout", &v)))
		return r < 0 || cr_cli_seconds(o->cli, "--lock-timeout", v, 86400,
					       &o->m.lock_timeout) ? -1 : 1;
	if ((r = cr_opt_value(argc, argv, i, "--connect-timeout", &v)))
		return r < 0 || cr_cli_seconds(o->cli, "--connect-timeout", v, 86400,
					       &o->m.connect_timeout) ? -1 : 1;
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
	struct cr_cli c = { .command = "migrate", .takes_output = true };
	struct own o = { .cli = &c, .m = { .connect_timeout = 10, .lock_timeout = 1800 } };
	int rc = cr_cli_parse(&c, argc, argv, own_option, &o);
	if (!rc && c.format_given && !o.m.dry_run) {
		/* a real run reports as it goes, on stderr: there is no data to shape */
		cr_error("migrate: -o needs --dry-run; see chartreuse migrate --help");
		rc = 2;
	}
	if (!rc && o.detailed_exitcode && !o.m.dry_run) {
		cr_error("migrate: --detailed-exitcode goes with --dry-run; see chartreuse migrate "
			 "--help");
		rc = 2;
	}
	if (rc) {
		cr_cli_free(&c);
		return rc == 1 ? 0 : asks_detailed_exitcode(argc, argv) ? 1 : rc;
	}
	if (check_version()) {
		cr_cli_free(&c);
		return 1;
	}
	char *source = NULL;
	struct cr_config cfg;
	struct cr_k8s_options ko = { 0 };
	cr_cli_k8s(&c, &ko);
	o.m.k8s = &ko;
	o.m.format = c.format;
	rc = cr_cli_config(&c, &cfg, &source) ? -1 : 0; /* settings are the Job's: a failure */
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
	cr_cli_free(&c);
	free(source);
	if (cr_terminated() && rc < 0)
		return 128 + cr_terminated(); /* what a shell reports for a killed command */
	if (cr_terminated()) /* it came as the last step ran: nothing was cut short */
		cr_info("signal %d received as the migration finished: it had completed",
			cr_terminated());
	/* Terraform's convention: 0 nothing to do, 1 an error, 2 changes to make. */
	return rc < 0 ? 1 : rc > 0 && o.detailed_exitcode ? 2 : 0;
}
