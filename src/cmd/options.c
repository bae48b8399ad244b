/* The release and cluster options of migrate, status and restore: one parser, one meaning
 * of each option and of Helm's variables under `helm chartreuse`. */
#include "cmd.h"
#include "config.h"
#include "job_config.h"
#include "k8s.h"
#include "log.h"
#include "util.h"

#include <stdlib.h>
#include <string.h>

static int format_option(const struct cr_cli *c, const char *v, enum cr_format *out)
{
	static const struct {
		const char *name;
		enum cr_format format;
	} formats[] = { { "table", CR_FORMAT_TABLE }, { "json", CR_FORMAT_JSON },
			{ "yaml", CR_FORMAT_YAML } };
	for (size_t i = 0; i < sizeof(formats) / sizeof(formats[0]); i++)
		if (!strcmp(v, formats[i].name)) {
			*out = formats[i].format;
			return 1;
		}
	cr_error("%s: -o expects table, json or yaml, got %s", c->command, v);
	return -1;
}

int cr_cli_seconds(const struct cr_cli *c, const char *name, const char *v, long max, int *out)
{
	char *end;
	long s = strtol(v, &end, 10);
	if (!*v || *end || s < 0 || s > max) {
		cr_error("%s: %s expects a number of seconds (0 to %ld), got %s", c->command, name,
			 max, v);
		return -1;
	}
	*out = (int)s;
	return 0;
}

/* One shared option at argv[*i]: 1 taken, 0 not one, -1 bad value (reported). */
static int shared_option(struct cr_cli *c, int argc, char **argv, int *i)
{
	static const struct {
		const char *name;
		size_t field;
	} values[] = {
		{ "--namespace", offsetof(struct cr_cli, namespace) },
		{ "-n", offsetof(struct cr_cli, namespace) },
		{ "--kube-context", offsetof(struct cr_cli, context) },
		{ "--kubeconfig", offsetof(struct cr_cli, kubeconfig) },
		{ "--config", offsetof(struct cr_cli, config) },
		{ "--release", offsetof(struct cr_cli, release) },
	};
	const char *v;
	int r;
	for (size_t n = 0; n < sizeof(values) / sizeof(values[0]); n++)
		if ((r = cr_opt_value(argc, argv, i, values[n].name, &v))) {
			*(const char **)((char *)c + values[n].field) = v;
			return r;
		}
	if ((r = cr_opt_value(argc, argv, i, "--set", &v))) {
		if (r > 0) {
			XGROW(c->sets, c->n_sets + 1, c->cap_sets);
			c->sets[c->n_sets++] = v;
		}
		return r;
	}
	if (!c->takes_output)
		return 0;
	if ((r = cr_opt_value(argc, argv, i, "-o", &v)) ||
	    (r = cr_opt_value(argc, argv, i, "--output", &v)) ||
	    (!strncmp(argv[*i], "-o", 2) && argv[*i][2] && (v = argv[*i] + 2, r = 1))) {
		c->format_given = true;
		return r < 0 ? r : format_option(c, v, &c->format);
	}
	return 0;
}

int cr_cli_parse(struct cr_cli *c, int argc, char **argv, cr_cli_option_fn own, void *user)
{
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (!strcmp(a, "-h") || !strcmp(a, "--help"))
			return cr_usage(c->command, 0) + 1;
		int r = shared_option(c, argc, argv, &i);
		if (!r && own)
			r = own(argc, argv, &i, user);
		/* -nprod, as kubectl and helm accept it */
		if (!r && !strncmp(a, "-n", 2) && a[2] && a[2] != '-') {
			c->namespace = a + 2;
			r = 1;
		}
		if (r < 0)
			return 2;
		if (r)
			continue;
		if (a[0] == '-' && a[1]) {
			cr_error("%s: unknown option %s; see chartreuse %s --help", c->command, a,
				 c->command);
			return 2;
		}
		if (c->release) {
			cr_error("%s: unexpected argument %s: the release is %s already; see "
				 "chartreuse %s --help", c->command, a, c->release, c->command);
			return 2;
		}
		c->release = a;
	}
	return 0;
}

/* Under Helm, -n and --kube-context never reach the plugin: Helm takes them and passes
 * HELM_NAMESPACE (always set: -n, else the context's namespace) and HELM_KUBECONTEXT. An
 * empty value counts as not given. */
static const char *given_or_env(const char *given, const char *var)
{
	const char *v = getenv(var);
	return cr_nonempty(given) ? given : cr_nonempty(v) ? v : NULL;
}

int cr_cli_config(const struct cr_cli *c, struct cr_config *cfg, char **source)
{
	struct cr_job_config_args a = {
		.path = c->config,
		.sets = c->sets,
		.n_sets = c->n_sets,
		.release = cr_nonempty(c->release) ? c->release : NULL,
		.namespace = given_or_env(c->namespace, "HELM_NAMESPACE"),
	};
	char *where = NULL;
	int rc = cr_job_config_load(&a, cfg, &where);
	if (source)
		*source = where;
	else
		free(where);
	return rc;
}

void cr_cli_k8s(const struct cr_cli *c, struct cr_k8s_options *ko)
{
	ko->kubeconfig = cr_nonempty(c->kubeconfig) ? c->kubeconfig : NULL;
	ko->context = given_or_env(c->context, "HELM_KUBECONTEXT");
}

void cr_cli_free(struct cr_cli *c)
{
	free(c->sets);
	c->sets = NULL;
	c->n_sets = c->cap_sets = 0;
}
