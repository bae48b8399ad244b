/* `chartreuse status [RELEASE]` (= `helm chartreuse status`): where the release's databases,
 * Deployments and migration Jobs stand, without changing anything. The exit status is the
 * verdict, so that scripts can wait on it (see status_usage in commands.c). */
#include "cmd.h"
#include "config.h"
#include "k8s.h"
#include "log.h"
#include "status.h"
#include "util.h"

#include <stdlib.h>
#include <string.h>

struct own {
	struct cr_cli *cli;
	int connect_timeout;
};

static int own_option(int argc, char **argv, int *i, void *user)
{
	struct own *o = user;
	const char *v;
	int r = cr_opt_value(argc, argv, i, "--connect-timeout", &v);
	if (r <= 0)
		return r;
	return cr_cli_seconds(o->cli, "--connect-timeout", v, 3600, &o->connect_timeout) ? -1 : 1;
}

static int run(const struct cr_cli *c, const struct own *o, const struct cr_config *cfg)
{
	struct cr_k8s_options ko = { 0 };
	cr_cli_k8s(c, &ko);
	struct cr_status_options so = {
		.cfg = cfg,
		.release = cfg->release,
		.namespace = cr_nonempty(cfg->namespace) ? cfg->namespace : NULL,
		.kubeconfig = ko.kubeconfig,
		.context = ko.context,
		.connect_timeout = o->connect_timeout,
	};
	if (!cr_nonempty(so.release)) {
		cr_error("status: which release? Give RELEASE (or release in --config, or "
			 "CHARTREUSE_RELEASE_NAME); see chartreuse status --help");
		return 2;
	}
	struct cr_status *s = cr_status_read(&so);
	struct cr_buf out = { 0 };
	int rc = cr_status_render(s, c->format, &out) ? CR_STATUS_UNKNOWN : cr_status_verdict(s);
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
	struct cr_cli c = { .command = "status", .takes_output = true };
	struct own o = { .cli = &c, .connect_timeout = 10 };
	int rc = cr_cli_parse(&c, argc, argv, own_option, &o);
	if (rc) {
		cr_cli_free(&c);
		return rc == 1 ? 0 : rc;
	}
	struct cr_config cfg;
	rc = cr_cli_config(&c, &cfg, NULL) ? 2 : run(&c, &o, &cfg);
	cr_config_free(&cfg);
	cr_cli_free(&c);
	return rc;
}
