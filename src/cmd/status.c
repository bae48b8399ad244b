/* `chartreuse status [RELEASE]` (= `helm chartreuse status`): where the release's databases,
 * Deployments and migration Jobs stand, without changing anything. The exit status is the
 * verdict, so that scripts can wait on it (see status_usage in commands.c). */
#include "cmd.h"
#include "config.h"
#include "job_config.h"
#include "log.h"
#include "status.h"
#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct options {
	const char *release, *namespace, *context, *kubeconfig, *config;
	enum cr_status_format format;
	int connect_timeout;
};

static int format_option(const char *v, enum cr_status_format *out)
{
	static const struct {
		const char *name;
		enum cr_status_format format;
	} formats[] = { { "table", CR_STATUS_TABLE }, { "json", CR_STATUS_JSON },
			{ "yaml", CR_STATUS_YAML } };
	for (size_t i = 0; i < sizeof(formats) / sizeof(formats[0]); i++)
		if (!strcmp(v, formats[i].name)) {
			*out = formats[i].format;
			return 0;
		}
	cr_error("status: -o expects table, json or yaml, got %s", v);
	return -1;
}

static int timeout_option(const char *v, int *out)
{
	char *end;
	long s = strtol(v, &end, 10);
	if (!*v || *end || s < 0 || s > 3600) {
		cr_error("status: --connect-timeout expects a number of seconds, got %s", v);
		return -1;
	}
	*out = (int)s;
	return 0;
}

/* One option at argv[*i]: 1 taken, 0 not an option of ours, -1 bad value (reported). */
static int one_option(int argc, char **argv, int *i, struct options *o)
{
	const char *v;
	int r;
	if ((r = cr_opt_value(argc, argv, i, "-o", &v)) ||
	    (r = cr_opt_value(argc, argv, i, "--output", &v)))
		return r < 0 || format_option(v, &o->format) ? -1 : 1;
	if ((r = cr_opt_value(argc, argv, i, "-n", &v)) ||
	    (r = cr_opt_value(argc, argv, i, "--namespace", &v))) {
		o->namespace = v;
		return r;
	}
	if ((r = cr_opt_value(argc, argv, i, "--kube-context", &v))) {
		o->context = v;
		return r;
	}
	if ((r = cr_opt_value(argc, argv, i, "--kubeconfig", &v))) {
		o->kubeconfig = v;
		return r;
	}
	if ((r = cr_opt_value(argc, argv, i, "--config", &v))) {
		o->config = v;
		return r;
	}
	if ((r = cr_opt_value(argc, argv, i, "--connect-timeout", &v)))
		return r < 0 || timeout_option(v, &o->connect_timeout) ? -1 : 1;
	/* -ojson and -nprod, as kubectl and helm accept them */
	if (!strncmp(argv[*i], "-o", 2) && argv[*i][2])
		return format_option(argv[*i] + 2, &o->format) ? -1 : 1;
	if (!strncmp(argv[*i], "-n", 2) && argv[*i][2]) {
		o->namespace = argv[*i] + 2;
		return 1;
	}
	return 0;
}

/* 0 to go on, 1 when --help was shown, 2 on bad usage. */
static int parse_options(int argc, char **argv, struct options *o)
{
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help"))
			return cr_usage("status", 0) + 1;
		int r = one_option(argc, argv, &i, o);
		if (r < 0)
			return 2;
		if (r)
			continue;
		if (argv[i][0] == '-' || o->release) {
			cr_error("status: unexpected argument %s (see chartreuse status --help)",
				 argv[i]);
			return 2;
		}
		o->release = argv[i];
	}
	return 0;
}

/* Under Helm, -n and --kube-context never reach the plugin: Helm takes them and passes
 * HELM_NAMESPACE (always set: -n, else the context's namespace) and HELM_KUBECONTEXT. */
static const char *from_env(const char *given, const char *var)
{
	const char *v = getenv(var);
	return given ? given : cr_nonempty(v) ? v : NULL;
}

static int run(const struct options *o, const struct cr_config *cfg)
{
	struct cr_status_options so = {
		.cfg = cfg,
		.release = o->release ? o->release : cfg->release,
		.namespace = from_env(o->namespace, "HELM_NAMESPACE"),
		.kubeconfig = o->kubeconfig,
		.context = from_env(o->context, "HELM_KUBECONTEXT"),
		.connect_timeout = o->connect_timeout,
	};
	if (!so.namespace && cr_nonempty(cfg->namespace))
		so.namespace = cfg->namespace;
	if (!cr_nonempty(so.release)) {
		cr_error("status: which release? Give RELEASE (or release in --config, or "
			 "CHARTREUSE_RELEASE_NAME)");
		return 2;
	}
	struct cr_status *s = cr_status_read(&so);
	struct cr_buf out = { 0 };
	int rc = cr_status_render(s, o->format, &out) ? CR_STATUS_UNKNOWN : cr_status_verdict(s);
	if (out.len && cr_write_all(1, out.data, out.len) < 0) {
		cr_error("status: cannot write to stdout");
		rc = CR_STATUS_UNKNOWN;
	}
	cr_buf_free(&out);
	cr_status_free(s);
	return rc;
}

int cmd_status(int argc, char **argv)
{
	struct options o = { .format = CR_STATUS_TABLE, .connect_timeout = 10 };
	int rc = parse_options(argc, argv, &o);
	if (rc)
		return rc == 1 ? 0 : rc;
	char *source = NULL;
	struct cr_config cfg;
	rc = cr_job_config_load(o.config, &cfg, &source) ? 2 : run(&o, &cfg);
	cr_config_free(&cfg);
	free(source);
	return rc;
}
