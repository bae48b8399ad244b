/* `chartreuse template|install|upgrade`: runs Helm with chartreuse as its post-renderer in
 * the form the Helm major needs, and tells the post-renderer what Helm doesn't: the
 * release name and the namespace. */
#include "cmd.h"
#include "log.h"
#include "proc.h"
#include "util.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

#define HELM4_PLUGIN "chartreuse-post-render"

/* Helm flags of install/upgrade/template that take a separate value; every other flag is
 * a switch. Needed to find the release name among the positional arguments. */
static const char *const value_flags[] = {
	"-f", "--values", "--set", "--set-string", "--set-file", "--set-json", "--set-literal",
	"-n", "--namespace", "--version", "--repo", "--timeout", "--description",
	"--kube-context", "--kubeconfig", "--kube-apiserver", "--kube-as-user", "--kube-as-group",
	"--kube-ca-file", "--kube-token", "--kube-tls-server-name", "--burst-limit", "--qps",
	"-o", "--output", "-a", "--api-versions", "--kube-version", "--name-template",
	"--output-dir", "-s", "--show-only", "--ca-file", "--cert-file", "--key-file", "--keyring",
	"--username", "--password", "--history-max", "-l", "--labels", "--registry-config",
	"--repository-cache", "--repository-config", "--post-renderer", "--post-renderer-args",
	"--max-history", "--release-name", NULL,
};

static bool takes_value(const char *flag)
{
	for (const char *const *f = value_flags; *f; f++)
		if (!strcmp(*f, flag))
			return true;
	return false;
}

struct wrap {
	const char *release;
	const char *namespace;
	char **helm_args;
	size_t n_helm, cap_helm;
	char **pr_args; /* arguments for the post-renderer */
	size_t n_pr, cap_pr;
};

static void push(char ***v, size_t *n, size_t *cap, char *s)
{
	XGROW(*v, *n + 1, *cap);
	(*v)[(*n)++] = s;
}

static int parse(int argc, char **argv, struct wrap *w)
{
	int positionals = 0;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v;
		int r;
		const char *pr_flag = NULL;
		if ((r = cr_opt_value(argc, argv, &i, "--chartreuse-config", &v)))
			pr_flag = "--config";
		else if ((r = cr_opt_value(argc, argv, &i, "--chartreuse-set", &v)))
			pr_flag = "--set";
		if (r < 0)
			return 2;
		if (pr_flag) {
			push(&w->pr_args, &w->n_pr, &w->cap_pr, xasprintf("%s=%s", pr_flag, v));
			continue;
		}
		if (!strcmp(a, "--post-renderer") || !strncmp(a, "--post-renderer=", 16)) {
			cr_error("%s: chartreuse is the post-renderer here; run helm itself to use "
				 "another one", argv[0]);
			return 2;
		}
		push(&w->helm_args, &w->n_helm, &w->cap_helm, xstrdup(a));
		if (a[0] != '-' || !a[1]) {
			if (positionals++ == 0)
				w->release = a;
			continue;
		}
		if (!strcmp(a, "-n") || !strcmp(a, "--namespace")) {
			if (i + 1 < argc)
				w->namespace = argv[i + 1];
		} else if (!strncmp(a, "--namespace=", 12)) {
			w->namespace = a + 12;
		} else if (!strncmp(a, "-n", 2) && a[2]) {
			w->namespace = a + 2;
		}
		if (!strchr(a, '=') && takes_value(a) && i + 1 < argc)
			push(&w->helm_args, &w->n_helm, &w->cap_helm, xstrdup(argv[++i]));
	}
	if (positionals < 2) {
		cr_error("%s: give the release name and the chart (helm %s NAME CHART ...); "
			 "chartreuse needs the name to label and find the release", argv[0],
			 argv[0]);
		return 2;
	}
	return 0;
}

static int helm_major(const char *helm)
{
	char *argv[] = { (char *)helm, "version", "--template", "{{.Version}}", NULL };
	struct cr_buf out = { 0 };
	int rc = cr_run_capture(argv, &out);
	int major = -1;
	if (rc == 0 && out.data && out.data[0] == 'v')
		major = atoi(out.data + 1);
	if (rc == 0 && major < 3)
		cr_error("cannot tell the Helm version from `%s version`: %s", helm,
			 out.data ? out.data : "(no output)");
	cr_buf_free(&out);
	return rc == 0 ? major : -1;
}

/* Helm 4 shows only "plugin ... exited with error" for a failing post-renderer: run it with
 * an error file the post-renderer also writes to, and show that file if Helm fails. */
static int run_showing_plugin_errors(char **argv)
{
	const char *tmp = getenv("TMPDIR");
	char *path = xasprintf("%s/chartreuse-error-XXXXXX", tmp && *tmp ? tmp : "/tmp");
	int fd = mkstemp(path);
	if (fd < 0) {
		cr_error("cannot create a temporary file in %s: %s", tmp ? tmp : "/tmp",
			 strerror(errno));
		free(path);
		return 1;
	}
	close(fd);
	setenv("CHARTREUSE_ERROR_FILE", path, 1);
	pid_t pid;
	int status = 0, rc = 1;
	int err = posix_spawnp(&pid, argv[0], NULL, NULL, argv, environ);
	if (err) {
		cr_error("cannot run %s: %s", argv[0], strerror(err));
	} else {
		while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
			;
		rc = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
	}
	struct cr_buf msg = { 0 };
	if (rc && cr_read_file(path, &msg) == 0 && msg.len)
		cr_write_all(2, msg.data, msg.len);
	cr_buf_free(&msg);
	unlink(path);
	free(path);
	return rc;
}

static bool given(const struct wrap *w, const char *flag)
{
	size_t n = strlen(flag);
	for (size_t i = 0; i < w->n_helm; i++)
		if (!strncmp(w->helm_args[i], flag, n) &&
		    (!w->helm_args[i][n] || w->helm_args[i][n] == '='))
			return true;
	return false;
}

/* Helm 4 applies server-side; a migration scales Deployments through their scale
 * subresource, which makes chartreuse a manager of spec.replicas. Helm's next apply of a
 * different count (the chart's replicas after a before-deployment migration left them at 0)
 * then conflicts with chartreuse. The chart's count is meant to win. */
static bool needs_force_conflicts(const char *cmd, const struct wrap *w, int major)
{
	return major >= 4 && (!strcmp(cmd, "upgrade") || !strcmp(cmd, "install")) &&
	       !given(w, "--force-conflicts");
}

static int exec_helm(const char *helm, const char *cmd, struct wrap *w, int major)
{
	char **argv = NULL;
	size_t n = 0, cap = 0;
	push(&argv, &n, &cap, xstrdup(helm));
	push(&argv, &n, &cap, xstrdup(cmd));
	for (size_t i = 0; i < w->n_helm; i++)
		push(&argv, &n, &cap, xstrdup(w->helm_args[i]));
	if (needs_force_conflicts(cmd, w, major))
		push(&argv, &n, &cap, xstrdup("--force-conflicts"));
	push(&argv, &n, &cap, xstrdup("--post-renderer"));
	if (major >= 4) {
		push(&argv, &n, &cap, xstrdup(HELM4_PLUGIN));
	} else {
		char *self = cr_self_exe();
		if (!self) {
			cr_error("cannot find the chartreuse executable (/proc/self/exe)");
			return 1;
		}
		push(&argv, &n, &cap, self);
		push(&argv, &n, &cap, xstrdup("--post-renderer-args"));
		push(&argv, &n, &cap, xstrdup("post-render"));
	}
	char *own[] = { xasprintf("--release=%s", w->release),
			xasprintf("--namespace=%s", w->namespace) };
	for (size_t i = 0; i < 2; i++) {
		push(&argv, &n, &cap, xstrdup("--post-renderer-args"));
		push(&argv, &n, &cap, own[i]);
	}
	for (size_t i = 0; i < w->n_pr; i++) {
		push(&argv, &n, &cap, xstrdup("--post-renderer-args"));
		push(&argv, &n, &cap, xstrdup(w->pr_args[i]));
	}
	push(&argv, &n, &cap, NULL);
	fflush(stdout);
	int rc = 1;
	if (major >= 4) {
		rc = run_showing_plugin_errors(argv);
	} else {
		execvp(helm, argv);
		cr_error("cannot run %s: %s", helm, strerror(errno));
	}
	for (size_t i = 0; argv[i]; i++)
		free(argv[i]);
	free(argv);
	return rc;
}

int cmd_helm_wrapper(int argc, char **argv)
{
	for (int i = 1; i < argc; i++)
		if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help"))
			return cr_usage(argv[0], 0);
	struct wrap w = { 0 };
	int rc = parse(argc, argv, &w);
	if (!rc) {
		const char *helm = getenv("HELM_BIN");
		if (!helm || !*helm)
			helm = "helm";
		if (!w.namespace)
			w.namespace = getenv("HELM_NAMESPACE");
		if (!w.namespace || !*w.namespace)
			w.namespace = "default";
		int major = helm_major(helm);
		rc = major < 0 ? 1 : exec_helm(helm, argv[0], &w, major);
	}
	for (size_t i = 0; i < w.n_helm; i++)
		free(w.helm_args[i]);
	for (size_t i = 0; i < w.n_pr; i++)
		free(w.pr_args[i]);
	free(w.helm_args);
	free(w.pr_args);
	return rc;
}
