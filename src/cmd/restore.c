/* `chartreuse restore`: brings back what a migration stopped — every Deployment of the
 * release to its expectedScale, every paused HPA to its recorded behaviour. The restore
 * Job runs it after a before-deployment upgrade; by hand it heals a run that was killed.
 * Idempotent: a second run changes nothing. */
#include "cmd.h"
#include "config.h"
#include "log.h"
#include "proc.h"
#include "pods.h"
#include "util.h"
#include "ytree.h"

#include <string.h>

int cmd_restore(int argc, char **argv)
{
	const char *release = NULL, *namespace = NULL;
	for (int i = 1; i < argc; i++) {
		const char *v;
		int r = 0;
		if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help"))
			return cr_usage("restore", 0);
		if ((r = cr_opt_value(argc, argv, &i, "--release", &v)) > 0)
			release = v;
		else if (!r && (r = cr_opt_value(argc, argv, &i, "--namespace", &v)) > 0)
			namespace = v;
		if (r < 0)
			return 2;
		if (!r) {
			cr_error("restore: unknown argument %s (see chartreuse restore --help)", argv[i]);
			return 2;
		}
	}
	if (!cr_nonempty(release)) {
		cr_error("restore: --release NAME is required");
		return 2;
	}
	struct fy_document *d = fy_document_create(NULL);
	struct fy_node *root = yt_map(d);
	fy_document_set_root(d, root);
	yt_set_str(root, "release", release);
	if (cr_nonempty(namespace))
		yt_set_str(root, "namespace", namespace);
	struct cr_config cfg;
	int rc = cr_config_load(&cfg, d, "restore");
	/* A restore is what brings the service back: a termination request lets it finish. */
	cr_proc_catch_termination();
	struct cr_pods *pods = rc ? NULL : cr_pods_open(&cfg);
	rc = pods ? cr_pods_start(pods) : -1;
	cr_pods_close(pods);
	if (cr_terminated())
		cr_info("restore: signal %d received; finished the restore first", cr_terminated());
	cr_config_free(&cfg);
	cr_secrets_clear();
	return rc ? 1 : 0;
}
