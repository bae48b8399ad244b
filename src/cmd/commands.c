/* The command table, shared option helpers, and `version`. */
#include "cmd.h"
#include "log.h"
#include "util.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

static const char post_render_usage[] =
	"usage: chartreuse post-render [--release NAME] [--namespace NS] [--config FILE]...\n"
	"                              [--set KEY=VALUE]... [--set-string KEY=VALUE]...\n"
	"                              [--hooks-to FILE]\n\n"
	"Reads rendered manifests on stdin and writes them unchanged to stdout, followed by the\n"
	"objects a migration needs (ServiceAccount, Role, RoleBinding, Secret, ConfigMap and\n"
	"the migration Job). A ChartreuseConfig document in the input configures it and is\n"
	"removed from the output.\n\n"
	"  --release NAME      Helm release name (default: from app.kubernetes.io/instance)\n"
	"  --namespace NS      namespace (default: from the objects' metadata.namespace)\n"
	"  --config FILE       a ChartreuseConfig file; later files override earlier ones\n"
	"  --set KEY=VALUE     settings as Helm's --set reads them (KEY=VALUE,KEY=VALUE; \\,\n"
	"                      in a value), e.g. --set upgradeBeforeDeployment=true or\n"
	"                      --set databases[0].host=db (highest precedence)\n"
	"  --set-string KEY=VALUE  the same, every value kept a string (after all --set)\n"
	"  --hooks-to FILE     (the Helm 3 wrapper's) write the Jobs to FILE instead, after a\n"
	"                      copy of their companions, which go to stdout without hook\n"
	"                      annotations: Helm 3 ignores hooks in a post-renderer's output\n\n"
	"Precedence, highest first: --set, --config files, the chart's ChartreuseConfig\n"
	"document, inference from the manifests, defaults.\n"
	"Invoked as chartreuse-post-render, or with no command and manifests on stdin, it\n"
	"post-renders too. On any error it writes nothing to stdout and exits 1.\n";

static const char version_usage[] =
	"usage: chartreuse version [--short]\n\n"
	"Prints the version. The migration Job refuses to run a chartreuse whose major.minor\n"
	"differs from the one that rendered it.\n";

static const char helm_usage[] =
	"usage: chartreuse template|install|upgrade [helm arguments...]\n"
	"                  [--chartreuse-config FILE]... [--chartreuse-set KEY=VALUE]...\n"
	"                  [--chartreuse-set-string KEY=VALUE]...\n\n"
	"Runs $HELM_BIN (or helm) with the given arguments and chartreuse as post-renderer, in\n"
	"the form its major version needs (Helm 3: the executable; Helm 4: the\n"
	"chartreuse-post-render plugin), passing the release name and namespace along.\n"
	"Under Helm 3, install and upgrade run the migration Jobs themselves, as Helm would\n"
	"run hooks (Helm 3 runs none from a post-renderer): after Helm for post-install and\n"
	"post-upgrade, before it (after a --dry-run pass) for pre-upgrade.\n"
	"As a Helm plugin: helm chartreuse upgrade --install myapp ./chart -n prod\n";

static const char migrate_usage[] =
	"usage: chartreuse migrate [--config FILE] [--dry-run [--detailed-exitcode]]\n"
	"                          [--lock-timeout SECONDS] [--connect-timeout SECONDS]\n\n"
	"For each database: read the Alembic project and its revision graph, read the version\n"
	"table, and decide whether any revision is not applied yet. If one is, check first what\n"
	"could fail with the service down (every revision script compiles in the Python that\n"
	"runs Alembic, the version table can be written, the lock is held, the cluster and the\n"
	"ExpectedDeploymentScales can be read), then stop the release's Deployments\n"
	"(stopPods), run `alembic upgrade head` (heads with several), check that the database\n"
	"is at the heads, start the Deployments again.\n\n"
	"With eslembic (eslembic.url or urlSecret, or $CHARTREUSE_ESLEMBIC_URL), `eslembic\n"
	"current` in eslembic.directory decides too (up to date when it prints \"(head)\");\n"
	"`eslembic upgrade head` runs after the databases while the pods are stopped, and\n"
	"with eslembic.migrate or eslembic.cleanIndex the Job <release>-chartreuse-migrate\n"
	"(eslembic migrate, then clean) is then created through the API. While that Job still\n"
	"runs, a migration that would upgrade the indices is refused before anything is done;\n"
	"a finished one is deleted first. The URL reaches eslembic in its environment only\n"
	"(CHARTREUSE_ESLEMBIC_URL, ELASTICSEARCH_URLS).\n\n"
	"  --config FILE         settings (the Job mounts config.yaml); without it, the\n"
	"                        reference tool's CHARTREUSE_* environment variables\n"
	"  --dry-run             run the checks, print the decision per database and change\n"
	"                        nothing\n"
	"  --detailed-exitcode   with --dry-run: exit 2 when a migration is pending (0 nothing\n"
	"                        to do, 1 an error), to gate a pipeline\n"
	"  --lock-timeout S      wait at most S seconds for another migration of the same\n"
	"                        database to finish (default 1800)\n"
	"  --connect-timeout S   PostgreSQL connection timeout (default 10)\n\n"
	"Database URLs: $CHARTREUSE_DB_<i>_URL (from the Job's Secret), else the config's url\n"
	"or parts; $CHARTREUSE_DB_<i>_PASSWORD fills in a URL without a password.\n"
	"Exit status: 0 when every database is at its heads (or left alone by rule), 1 when\n"
	"any failed or a check failed (each database's outcome is reported); with\n"
	"--detailed-exitcode, 2 when a dry run found a migration to make; 128+N after signal N.\n";
static const char status_usage[] =
	"usage: chartreuse status [RELEASE] [-n NS] [--kube-context CTX] [--kubeconfig FILE]\n"
	"                         [--config FILE] [-o table|json|yaml]\n"
	"                         [--connect-timeout SECONDS]\n\n"
	"Shows, without changing anything, where the release stands:\n"
	"  - each database: the revisions stored in its version table, the heads of its Alembic\n"
	"    project, and what is not applied (decided as `migrate` decides; no lock is taken);\n"
	"  - each Deployment named by the release's ExpectedDeploymentScales: priority,\n"
	"    expected scale, desired and ready replicas, whether an HPA of it is paused and\n"
	"    whether chartreuse stopped it;\n"
	"  - the newest migration Job (and restore Job) of the release and its outcome.\n\n"
	"  RELEASE               the Helm release (default: release in --config, or\n"
	"                        CHARTREUSE_RELEASE_NAME)\n"
	"  -n, --namespace NS    default: HELM_NAMESPACE (helm chartreuse status -n NS sets\n"
	"                        it), else namespace in --config, else the context's\n"
	"  --kube-context CTX    default: HELM_KUBECONTEXT, else the current context\n"
	"  --kubeconfig FILE     default: KUBECONFIG, ~/.kube/config, or in-cluster\n"
	"  --config FILE         the databases, as for migrate (the Job's config.yaml); without\n"
	"                        it the reference tool's CHARTREUSE_* variables; with neither,\n"
	"                        the databases are skipped (and the output says so)\n"
	"  -o, --output FORMAT   table (default), json or yaml: the same data\n"
	"  --connect-timeout S   PostgreSQL connection timeout (default 10)\n\n"
	"Database URLs as for migrate: $CHARTREUSE_DB_<i>_URL, else the config's url or parts\n"
	"($CHARTREUSE_DB_<i>_PASSWORD). Passwords never appear in the output.\n\n"
	"Exit status:\n"
	"  0  every database at its heads (or empty and left alone by rule), every tracked\n"
	"     Deployment running (not stopped by chartreuse, no paused HPA, not below its\n"
	"     expectedScale (with an HPA: not at 0), every desired replica ready), and no\n"
	"     newest migration or restore Job failed or unfinished\n"
	"  1  attention: a migration is needed, a database is at a revision the scripts don't\n"
	"     know, a Deployment is missing, stopped, paused, scaled down or not ready, or the\n"
	"     newest migration or restore Job failed or has not finished (listed as problems)\n"
	"  2  bad usage or configuration\n"
	"  3  nothing wrong found, but part of the state could not be read (a database or the\n"
	"     Kubernetes API unreachable, an Alembic project unreadable); 1 wins over 3\n";
static const char wait_usage[] =
	"usage: chartreuse wait postgres [--name NAME] (--url URL | --url-env VAR)\n"
	"                                [--timeout SECONDS]\n"
	"       chartreuse wait elasticsearch (--url URL | --url-env VAR) [--timeout SECONDS]\n\n"
	"Waits until the PostgreSQL server at URL answers (whether or not it would accept\n"
	"these credentials), or until the Elasticsearch cluster at URL reports status yellow\n"
	"or green (_cluster/health?wait_for_status=yellow), trying every second. The\n"
	"migration Job's init containers run it.\n\n"
	"  --name NAME       the database's name in messages (default: main)\n"
	"  --url URL         postgresql://user:password@host:port/database (a SQLAlchemy URL\n"
	"                    such as postgresql+psycopg2://... works too)\n"
	"  --url-env VAR     read the URL from the environment variable VAR instead, so that\n"
	"                    the password is not on the command line. When the URL has no\n"
	"                    password and VAR_PASSWORD is set (VAR's _URL suffix replaced by\n"
	"                    _PASSWORD), that password is used.\n"
	"  --timeout SECONDS give up after this long (default: 60)\n\n"
	"Exits 0 when the server answers, 1 at the deadline (with the reason), 2 on bad\n"
	"usage. The URL is shown with its password masked.\n";
static const char restore_usage[] =
	"usage: chartreuse restore --release NAME [--namespace NS] [--kube-context CTX]\n"
	"                          [--kubeconfig FILE]\n\n"
	"Brings back what a migration stopped: every Deployment named by the release's\n"
	"ExpectedDeploymentScales to its expectedScale, and every HPA chartreuse paused to\n"
	"the behaviour it had. The restore Job runs it after a before-deployment upgrade; run\n"
	"it by hand to heal a migration that was killed. Running it twice changes nothing.\n\n"
	"  --release NAME        the Helm release (required)\n"
	"  --namespace NS        default: HELM_NAMESPACE (helm chartreuse restore -n NS sets\n"
	"                        it), else the context's namespace\n"
	"  --kube-context CTX    default: HELM_KUBECONTEXT, else the current context\n"
	"  --kubeconfig FILE     default: KUBECONFIG, ~/.kube/config, or in-cluster\n\n"
	"Exits 0 when everything is back, 1 when something could not be brought back (each\n"
	"failure reported; run it again), 2 on bad usage.\n";

const struct cr_command cr_commands[] = {
	{ "post-render", cmd_post_render, "inject the migration objects into rendered manifests",
	  post_render_usage },
	{ "template", cmd_helm_wrapper, "helm template with chartreuse as post-renderer",
	  helm_usage },
	{ "install", cmd_helm_wrapper, "helm install with chartreuse as post-renderer",
	  helm_usage },
	{ "upgrade", cmd_helm_wrapper, "helm upgrade with chartreuse as post-renderer",
	  helm_usage },
	{ "migrate", cmd_migrate, "decide, stop pods, run Alembic, start pods", migrate_usage },
	{ "status", cmd_status, "where databases, Deployments and migration Jobs stand",
	  status_usage },
	{ "wait", cmd_wait, "wait until PostgreSQL answers (Elasticsearch: not built yet)",
	  wait_usage },
	{ "restore", cmd_restore, "bring back what a migration stopped", restore_usage },
	{ "version", cmd_version, "print the version", version_usage },
	{ NULL, NULL, NULL, NULL },
};

int cr_usage(const char *command, int status)
{
	for (const struct cr_command *c = cr_commands; c->name; c++)
		if (!strcmp(c->name, command)) {
			fputs(c->usage, status ? stderr : stdout);
			return status;
		}
	cr_error("unknown command '%s' (see chartreuse --help)", command);
	return 2;
}

/* Values end up in YAML and JSON, which are UTF-8 text (and in messages). */
static int check_utf8(const char *name, const char *value)
{
	size_t len = strlen(value);
	if (cr_utf8_invalid_at(value, len) == len)
		return 1;
	cr_error("%s: the value is not UTF-8 text", name);
	return -1;
}

int cr_opt_value(int argc, char **argv, int *i, const char *name, const char **value)
{
	const char *arg = argv[*i];
	size_t n = strlen(name);
	if (strncmp(arg, name, n) != 0)
		return 0;
	if (arg[n] == '=') {
		*value = arg + n + 1;
		return check_utf8(name, *value);
	}
	if (arg[n] != '\0')
		return 0;
	if (*i + 1 >= argc) {
		cr_error("%s needs a value", name);
		return -1;
	}
	*value = argv[++*i];
	return check_utf8(name, *value);
}

int cmd_version(int argc, char **argv)
{
	bool short_form = false;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--short"))
			short_form = true;
		else if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help"))
			return cr_usage("version", 0);
		else {
			cr_error("version: unknown option %s", argv[i]);
			return 2;
		}
	}
	printf(short_form ? "%s\n" : "chartreuse %s\n", CHARTREUSE_VERSION);
	return 0;
}
