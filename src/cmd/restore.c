/* `chartreuse restore [RELEASE]`: brings back what a migration stopped — every Deployment of
 * the release to its expectedScale, every paused HPA to its recorded behaviour. The restore
 * Job runs it after a before-deployment upgrade; by hand it heals a run that was killed.
 * Idempotent: a second run changes nothing (and says that nothing was stopped). */
#include "cmd.h"
#include "config.h"
#include "k8s.h"
#include "log.h"
#include "pods.h"
#include "proc.h"
#include "release.h"
#include "util.h"

#include <stdlib.h>

/* 0 done (or nothing to do), 1 failed, 4 no such release or namespace. */
static int restore(const struct cr_cli *c, const struct cr_config *cfg)
{
	struct cr_k8s_options ko = { 0 };
	cr_cli_k8s(c, &ko);
	/* A restore is what brings the service back: a termination request lets it finish. */
	cr_proc_catch_termination();
	struct cr_pods *pods = cr_pods_open_with(cfg, &ko);
	struct cr_pods_restored r = { 0 };
	int rc = pods && !cr_pods_restore(pods, &r) ? 0 : 1;
	if (!rc && (r.release == CR_RELEASE_ABSENT || r.release == CR_RELEASE_NO_NAMESPACE)) {
		char *text = cr_release_absent_text(r.release, cr_pods_namespace(pods), cfg->release);
		cr_error("restore: %s", text);
		free(text);
		rc = 4;
	}
	struct cr_buf out = { 0 };
	if (!rc && cr_pods_restored_render(&r, pods, c->format, &out))
		rc = 1;
	if (!rc && cr_write_all(1, out.data, out.len) < 0) {
		cr_error("restore: cannot write to stdout");
		rc = 1;
	}
	cr_buf_free(&out);
	cr_pods_restored_free(&r);
	cr_pods_close(pods);
	if (cr_terminated())
		cr_info("restore: signal %d received; finished the restore first", cr_terminated());
	return rc;
}

int cmd_restore(int argc, char **argv)
{
	struct cr_cli c = { .command = "restore", .takes_output = true };
	int rc = cr_cli_parse(&c, argc, argv, NULL, NULL);
	if (rc) {
		cr_cli_free(&c);
		return rc == 1 ? 0 : rc;
	}
	struct cr_config cfg;
	if (cr_cli_config(&c, &cfg, NULL)) {
		rc = 2;
	} else if (!cr_nonempty(cfg.release)) {
		cr_error("restore: which release? Give RELEASE (or --release NAME, release in "
			 "--config, CHARTREUSE_RELEASE_NAME); see chartreuse restore --help");
		rc = 2;
	} else {
		rc = restore(&c, &cfg);
	}
	cr_config_free(&cfg);
	cr_cli_free(&c);
	return rc;
}
