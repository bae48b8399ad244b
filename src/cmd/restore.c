/* `chartreuse restore`: brings back what a migration stopped — every Deployment of the
 * release to its expectedScale, every paused HPA to its recorded behaviour. The restore
 * Job runs it after a before-deployment upgrade; by hand it heals a run that was killed.
 * Idempotent: a second run changes nothing. */
#include "cmd.h"
#include "config.h"
#include "k8s.h"
#include "log.h"
#include "proc.h"
#include "pods.h"
#include "util.h"
#include "ytree.h"

#include <stdlib.h>
#include <string.h>

struct options {
	const char *release, *namespace, *context, *kubeconfig;
};

/* One option at argv[*i]: 1 taken, 0 not an option of ours, -1 bad value (reported). */
static int one_option(int argc, char **argv, int *i, struct options *o)
{
	static const char *const names[] = { "--release", "--namespace", "--kube-context",
					     "--kubeconfig" };
	const char **fields[] = { &o->release, &o->namespace, &o->context, &o->kubeconfig };
	for (size_t n = 0; n < sizeof(names) / sizeof(names[0]); n++) {
		int r = cr_opt_value(argc, argv, i, names[n], fields[n]);
		if (r)
			return r;
	}
	return 0;
}

/* Under Helm (`helm chartreuse restore`), -n and --kube-context never reach the plugin:
 * Helm takes them and passes HELM_NAMESPACE and HELM_KUBECONTEXT, as for `status`. An
 * empty value counts as not given. */
static const char *given_or_env(const char *given, const char *var)
{
	const char *v = getenv(var);
	return cr_nonempty(given) ? given : cr_nonempty(v) ? v : NULL;
}

int cmd_restore(int argc, char **argv)
{
	struct options o = { 0 };
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help"))
			return cr_usage("restore", 0);
		int r = one_option(argc, argv, &i, &o);
		if (r < 0)
			return 2;
		if (!r) {
			cr_error("restore: unknown argument %s (see chartreuse restore --help)", argv[i]);
			return 2;
		}
	}
	if (!cr_nonempty(o.release)) {
		cr_error("restore: --release NAME is required");
		return 2;
	}
	const char *namespace = given_or_env(o.namespace, "HELM_NAMESPACE");
	struct cr_k8s_options ko = {
		.kubeconfig = cr_nonempty(o.kubeconfig) ? o.kubeconfig : NULL,
		.context = given_or_env(o.context, "HELM_KUBECONTEXT"),
	};
	struct fy_document *d = yt_document();
	struct fy_node *root = yt_map(d);
	fy_document_set_root(d, root);
	yt_set_str(root, "release", o.release);
	if (namespace)
		yt_set_str(root, "namespace", namespace);
	struct cr_config cfg;
	if (cr_config_load(&cfg, d, "restore")) {
		cr_config_free(&cfg);
		return 2;
	}
	/* A restore is what brings the service back: a termination request lets it finish. */
	cr_proc_catch_termination();
	struct cr_pods *pods = cr_pods_open_with(&cfg, &ko);
	int rc = pods ? cr_pods_restore(pods) : -1;
	cr_pods_close(pods);
	if (cr_terminated())
		cr_info("restore: signal %d received; finished the restore first", cr_terminated());
	cr_config_free(&cfg);
	return rc ? 1 : 0;
}
