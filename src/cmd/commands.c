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
	"Injects the migration objects into rendered manifests (Helm's post-renderer).\n\n"
	"Reads rendered manifests on stdin and writes them unchanged to stdout, followed by the\n"
	"objects a migration needs (ServiceAccount, Role, RoleBinding, Secret, ConfigMap and\n"
	"the migration Job). A ChartreuseConfig document in the input configures it and is\n"
	"removed from the output. Precedence, highest first: --set, --config files, the\n"
	"chart's ChartreuseConfig document, inference from the manifests, defaults.\n"
	"Invoked as chartreuse-post-render, or with no command, post-render options and\n"
	"manifests on stdin (Helm 3's --post-renderer-args), it post-renders too.\n\n"
	"Options:\n"
	"  --release NAME        Helm release name (default: from app.kubernetes.io/instance)\n"
	"  --namespace NS        namespace (default: from the objects' metadata.namespace)\n"
	"  --config FILE         a ChartreuseConfig file; later files override earlier ones\n"
	"  --set KEY=VALUE       settings as Helm's --set reads them (KEY=VALUE,KEY=VALUE; \\,\n"
	"                        in a value), e.g. --set upgradeBeforeDeployment=true or\n"
	"                        --set databases[0].host=db (highest precedence)\n"
	"  --set-string KEY=VALUE  the same, every value kept a string (after all --set)\n"
	"  --hooks-to FILE       (the Helm 3 wrapper's) write the Jobs to FILE instead, after a\n"
	"                        copy of their companions, which go to stdout without hook\n"
	"                        annotations: Helm 3 ignores hooks in a post-renderer's output\n\n"
	"Exit status:\n"
	"  0  the manifests and the injected objects written\n"
	"  1  any error: nothing written to stdout, so Helm applies nothing\n"
	"  2  bad usage\n";

static const char version_usage[] =
	"usage: chartreuse version [--short]\n"
	"       chartreuse --version\n\n"
	"Prints the version.\n\n"
	"The migration Job refuses to run a chartreuse whose major.minor differs from the one\n"
	"that rendered it.\n\n"
	"Options:\n"
	"  --short               the version number alone\n\n"
	"Exit status:\n"
	"  0  printed\n"
	"  2  bad usage\n";

static const char helm_usage[] =
	"usage: chartreuse template|install|upgrade [helm arguments...]\n"
	"                  [--chartreuse-config FILE]... [--chartreuse-set KEY=VALUE]...\n"
	"                  [--chartreuse-set-string KEY=VALUE]...\n\n"
	"Runs helm template|install|upgrade with chartreuse as post-renderer.\n\n"
	"Runs $HELM_BIN (or helm) with the given arguments and chartreuse as post-renderer, in\n"
	"the form its major version needs (Helm 3: the executable; Helm 4: the\n"
	"chartreuse-post-render plugin), passing the release name and namespace along.\n"
	"Under Helm 3, install and upgrade run the migration Jobs themselves, as Helm would\n"
	"run hooks (Helm 3 runs none from a post-renderer): after Helm for post-install and\n"
	"post-upgrade, before it (after a --dry-run pass) for pre-upgrade.\n"
	"As a Helm plugin: helm chartreuse upgrade --install myapp ./chart -n prod\n\n"
	"Options (every other argument goes to helm):\n"
	"  --chartreuse-config FILE      post-render --config FILE\n"
	"  --chartreuse-set KEY=VALUE    post-render --set KEY=VALUE\n"
	"  --chartreuse-set-string KEY=VALUE  post-render --set-string KEY=VALUE\n\n"
	"Exit status:\n"
	"  0  helm and the migration Jobs it runs (Helm 3) succeeded\n"
	"  N  helm's exit status when helm failed; 1 when a migration Job failed\n"
	"  2  bad usage\n";

/* Every help text has one layout: usage line(s); a one-line description; what it does;
 * an Options table (the shared release and cluster options in the same words); Exit
 * status, one line per code. */
#define CLUSTER_OPTIONS                                                                    \
	"  RELEASE               the Helm release (also --release NAME; default: release in\n" \
	"                        --config, or CHARTREUSE_RELEASE_NAME)\n"                        \
	"  -n, --namespace NS    default: HELM_NAMESPACE (helm chartreuse ... -n NS sets it),\n" \
	"                        else namespace in --config, else the context's\n"               \
	"  --kube-context CTX    default: HELM_KUBECONTEXT, else the current context\n"          \
	"  --kubeconfig FILE     default: KUBECONFIG, ~/.kube/config, or in-cluster\n"           \
	"  --config FILE         settings (the Job's config.yaml); without it, the reference\n"  \
	"                        tool's CHARTREUSE_* environment variables\n"                    \
	"  --set KEY=VALUE       a setting over --config, as Helm's --set reads it (repeatable)\n"
#define OUTPUT_OPTION                                                                      \
	"  -o, --output FORMAT   table (default), json or yaml: the same data\n"

static const char migrate_usage[] =
	"usage: chartreuse migrate [RELEASE] [-n NS] [--kube-context CTX] [--kubeconfig FILE]\n"
	"                          [--config FILE] [--set KEY=VALUE]...\n"
	"                          [--dry-run [-o FORMAT] [--detailed-exitcode]]\n"
	"                          [--lock-timeout SECONDS] [--connect-timeout SECONDS]\n\n"
	"Brings every database to its Alembic heads, stopping the release's Deployments meanwhile.\n\n"
	"For each database: read the Alembic project and its revision graph, read the version\n"
	"table, and decide whether any revision is not applied yet. If one is, check first what\n"
	"could fail with the service down (every revision script compiles in the Python that\n"
	"runs Alembic, the version table can be written, the lock is held, the cluster and the\n"
	"ExpectedDeploymentScales can be read), then stop the release's Deployments\n"
	"(stopPods), run `alembic upgrade head` (heads with several), check that the database\n"
	"is at the heads, start the Deployments again.\n"
	"With eslembic (eslembic.url or urlSecret, or $CHARTREUSE_ESLEMBIC_URL), `eslembic\n"
	"current` decides too and `eslembic upgrade head` runs after the databases while the\n"
	"pods are stopped; eslembic.migrate or eslembic.cleanIndex then create the Job\n"
	"<release>-chartreuse-migrate (refused while an earlier one still runs).\n"
	"Database URLs: $CHARTREUSE_DB_<i>_URL (from the Job's Secret), else the config's url\n"
	"or parts; $CHARTREUSE_DB_<i>_PASSWORD fills in a URL without a password.\n\n"
	"Options:\n" CLUSTER_OPTIONS
	"  --dry-run             run the same checks, print the decision per database and\n"
	"                        change nothing\n"
	"  -o, --output FORMAT   with --dry-run: table (default), json or yaml\n"
	"  --detailed-exitcode   with --dry-run: exit 2 when a migration is pending, to gate a\n"
	"                        pipeline (Terraform's convention)\n"
	"  --lock-timeout S      wait at most S seconds for another migration of the same\n"
	"                        database to finish (default 1800)\n"
	"  --connect-timeout S   PostgreSQL connection timeout (default 10)\n\n"
	"Exit status:\n"
	"  0    every database at its heads (or left alone by rule); --dry-run: decided\n"
	"  1    a database or eslembic failed, or a check before the migration failed (each\n"
	"       outcome reported), or the settings are unusable; with --detailed-exitcode,\n"
	"       bad usage too\n"
	"  2    bad usage; with --detailed-exitcode: a dry run found a migration to make\n"
	"  128+N  killed by signal N before it finished (a restore brings the pods back)\n";
static const char status_usage[] =
	"usage: chartreuse status [RELEASE] [-n NS] [--kube-context CTX] [--kubeconfig FILE]\n"
	"                         [--config FILE] [--set KEY=VALUE]... [-o table|json|yaml]\n"
	"                         [--connect-timeout SECONDS]\n\n"
	"Shows where the release stands, changing nothing; the exit status is the verdict.\n\n"
	"  - each database: the revisions stored in its version table, the heads of its Alembic\n"
	"    project, and what is not applied (decided as `migrate` decides; no lock is taken);\n"
	"  - each Deployment named by the release's ExpectedDeploymentScales: priority,\n"
	"    expected scale, desired and ready replicas, whether an HPA of it is paused and\n"
	"    whether chartreuse stopped it;\n"
	"  - the newest migration Job (and restore Job) of the release and its outcome.\n"
	"Database URLs as for migrate. Passwords never appear in the output.\n\n"
	"Options:\n" CLUSTER_OPTIONS OUTPUT_OPTION
	"  --connect-timeout S   PostgreSQL connection timeout (default 10)\n\n"
	"Exit status:\n"
	"  0  every database at its heads (or empty and left alone by rule), every tracked\n"
	"     Deployment running (not stopped by chartreuse, no paused HPA, not below its\n"
	"     expectedScale (with an HPA: not at 0), every desired replica ready), and no\n"
	"     newest migration or restore Job failed or unfinished\n"
	"  1  attention: a migration is needed, a database is at a revision the scripts don't\n"
	"     know, a Deployment is missing, stopped, paused, scaled down or not ready, or the\n"
	"     newest migration or restore Job failed or has not finished (listed as problems)\n"
	"  2  bad usage or configuration\n"
	"  3  nothing wrong found, but part of the state was not checked: no database\n"
	"     configured, a database or the Kubernetes API unreachable, an Alembic project\n"
	"     unreadable; 1 wins over 3\n"
	"  4  no release named RELEASE in the namespace (no Helm release record and no\n"
	"     ExpectedDeploymentScale), or no such namespace; nothing on stdout\n";
static const char wait_usage[] =
	"usage: chartreuse wait postgres [--name NAME] (--url URL | --url-env VAR)\n"
	"                                [--timeout SECONDS]\n"
	"       chartreuse wait elasticsearch (--url URL | --url-env VAR) [--timeout SECONDS]\n\n"
	"Waits until a PostgreSQL server or an Elasticsearch cluster answers.\n\n"
	"PostgreSQL: until the server at URL answers (whether or not it would accept these\n"
	"credentials). Elasticsearch: until the cluster reports status yellow or green\n"
	"(_cluster/health?wait_for_status=yellow). It tries every second; the migration Job's\n"
	"init containers run it. The URL is shown with its password masked.\n\n"
	"Options:\n"
	"  --name NAME       the database's name in messages (default: main)\n"
	"  --url URL         postgresql://user:password@host:port/database (a SQLAlchemy URL\n"
	"                    such as postgresql+psycopg2://... works too)\n"
	"  --url-env VAR     read the URL from the environment variable VAR instead, so that\n"
	"                    the password is not on the command line. When the URL has no\n"
	"                    password and VAR_PASSWORD is set (VAR's _URL suffix replaced by\n"
	"                    _PASSWORD), that password is used.\n"
	"  --timeout SECONDS give up after this long (default: 60)\n\n"
	"Exit status:\n"
	"  0  the server answers\n"
	"  1  the deadline passed (with the reason)\n"
	"  2  bad usage\n";
static const char restore_usage[] =
	"usage: chartreuse restore [RELEASE] [-n NS] [--kube-context CTX] [--kubeconfig FILE]\n"
	"                          [--config FILE] [--set KEY=VALUE]... [-o table|json|yaml]\n\n"
	"Brings back what a migration stopped.\n\n"
	"Every Deployment named by the release's ExpectedDeploymentScales that chartreuse\n"
	"stopped goes back to its expectedScale, and every HPA chartreuse paused gets back the\n"
	"behaviour it had. The restore Job runs it after a before-deployment upgrade; run it by\n"
	"hand to heal a migration that was killed. Running it twice changes nothing; with\n"
	"nothing stopped it says so.\n\n"
	"Options:\n" CLUSTER_OPTIONS OUTPUT_OPTION "\n"
	"Exit status:\n"
	"  0  everything is back, or nothing was stopped (the output says which)\n"
	"  1  something could not be brought back (each failure reported; run it again)\n"
	"  2  bad usage or configuration\n"
	"  4  no release named RELEASE in the namespace (no Helm release record and no\n"
	"     ExpectedDeploymentScale), or no such namespace\n";
static const char completion_usage[] =
	"usage: chartreuse completion bash|zsh\n\n"
	"Prints a shell completion script for the commands and their options.\n\n"
	"  bash: source <(chartreuse completion bash)   (e.g. in ~/.bashrc)\n"
	"  zsh:  source <(chartreuse completion zsh)    (after compinit)\n\n"
	"Options:\n"
	"  bash|zsh              the shell\n\n"
	"Exit status:\n"
	"  0  printed\n"
	"  2  bad usage (another shell)\n";

#define MIGRATE_OPTIONS CR_CLI_OPTIONS " --dry-run --output -o --lock-timeout --connect-timeout"
#define STATUS_OPTIONS CR_CLI_OPTIONS " --output -o --connect-timeout"
#define RESTORE_OPTIONS CR_CLI_OPTIONS " --output -o"
#define POST_RENDER_OPTIONS "--release --namespace --config --set --set-string --hooks-to --help"
#define HELM_OPTIONS "--chartreuse-config --chartreuse-set --chartreuse-set-string --help"

const struct cr_command cr_commands[] = {
	{ "post-render", cmd_post_render, "inject the migration objects into rendered manifests",
	  post_render_usage, POST_RENDER_OPTIONS },
	{ "template", cmd_helm_wrapper, "helm template with chartreuse as post-renderer",
	  helm_usage, HELM_OPTIONS },
	{ "install", cmd_helm_wrapper, "helm install with chartreuse as post-renderer",
	  helm_usage, HELM_OPTIONS },
	{ "upgrade", cmd_helm_wrapper, "helm upgrade with chartreuse as post-renderer",
	  helm_usage, HELM_OPTIONS },
	{ "migrate", cmd_migrate, "decide, stop pods, run Alembic, start pods", migrate_usage,
	  MIGRATE_OPTIONS },
	{ "status", cmd_status, "where databases, Deployments and migration Jobs stand",
	  status_usage, STATUS_OPTIONS },
	{ "wait", cmd_wait, "wait until PostgreSQL or Elasticsearch answers", wait_usage,
	  "postgres elasticsearch --name --url --url-env --timeout --help" },
	{ "restore", cmd_restore, "bring back what a migration stopped", restore_usage,
	  RESTORE_OPTIONS },
	{ "completion", cmd_completion, "print a bash or zsh completion script",
	  completion_usage, "bash zsh" },
	{ "version", cmd_version, "print the version (also chartreuse --version)", version_usage,
	  "--short --help" },
	{ NULL, NULL, NULL, NULL, NULL },
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
