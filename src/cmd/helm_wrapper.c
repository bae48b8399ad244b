/* `chartreuse template|install|upgrade`: runs Helm with chartreuse as its post-renderer in
 * the form the Helm major needs, and tells the post-renderer what Helm doesn't: the
 * release name and the namespace. Under Helm 3, which runs no hook a post-renderer adds,
 * install and upgrade also run the migration Jobs as Helm would (helm_hooks.h). */
#include "cmd.h"
#include "helm_hooks.h"
#include "json.h"
#include "k8s.h"
#include "file.h"
#include "log.h"
#include "proc.h"
#include "util.h"
#include "ytree.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

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

/* Helm 4's upgrade --server-side takes true|false|auto; install's is a switch. */
static bool upgrade_value_flag(const char *cmd, const char *flag)
{
	return !strcmp(cmd, "upgrade") && !strcmp(flag, "--server-side");
}

struct wrap {
	const char *release;
	const char *namespace;
	struct cr_argv helm; /* Helm's own arguments, as given */
	struct cr_argv pr;   /* arguments for the post-renderer */
};

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
		else if ((r = cr_opt_value(argc, argv, &i, "--chartreuse-set-string", &v)))
			pr_flag = "--set-string";
		if (r < 0)
			return 2;
		if (pr_flag) {
			cr_argv_pushf(&w->pr, "%s=%s", pr_flag, v);
			continue;
		}
		if (!strcmp(a, "--post-renderer") || !strncmp(a, "--post-renderer=", 16)) {
			cr_error("%s: chartreuse is the post-renderer here; run helm itself to use "
				 "another one", argv[0]);
			return 2;
		}
		cr_argv_push(&w->helm, a);
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
		if (!strchr(a, '=') && (takes_value(a) || upgrade_value_flag(argv[0], a)) &&
		    i + 1 < argc)
			cr_argv_push(&w->helm, argv[++i]);
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
	struct cr_child c = { .argv = argv };
	int rc = cr_child_capture(&c, &out, NULL, NULL);
	int major = -1;
	if (rc == 0 && out.data && out.data[0] == 'v')
		major = atoi(out.data + 1);
	if (rc == 0 && major < 3)
		cr_error("cannot tell the Helm version from `%s version`: %s", helm,
			 out.data ? out.data : "(no output)");
	cr_buf_free(&out);
	return rc == 0 ? major : -1;
}

/* A new empty file in $TMPDIR (mode 0600, mkstemp's); NULL after reporting. */
static char *temp_file(const char *prefix)
{
	const char *tmp = getenv("TMPDIR");
	char *path = xasprintf("%s/%s-XXXXXX", tmp && *tmp ? tmp : "/tmp", prefix);
	int fd = mkstemp(path);
	if (fd < 0) {
		cr_error("cannot create a temporary file in %s: %s", tmp ? tmp : "/tmp",
			 strerror(errno));
		free(path);
		return NULL;
	}
	close(fd);
	return path;
}

/* Runs argv, output inherited: its exit status (128 + signal if killed), 1 if it could not
 * run (reported). */
static int spawn_wait(char **argv)
{
	struct cr_child c = { .argv = argv };
	int rc = cr_child_run(&c);
	return rc < 0 ? 1 : rc;
}

/* Helm 4 shows only "plugin ... exited with error" for a failing post-renderer: run it with
 * an error file the post-renderer also writes to, and show that file if Helm fails. */
static int run_showing_plugin_errors(char **argv)
{
	char *path = temp_file("chartreuse-error");
	if (!path)
		return 1;
	setenv("CHARTREUSE_ERROR_FILE", path, 1);
	int rc = spawn_wait(argv);
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
	for (size_t i = 0; i < w->helm.n; i++)
		if (!strncmp(w->helm.v[i], flag, n) &&
		    (!w->helm.v[i][n] || w->helm.v[i][n] == '='))
			return true;
	return false;
}

/* Helm's argv with chartreuse as post-renderer; `extra` (may be NULL) is one more Helm
 * flag, hooks_to (may be NULL) the post-renderer's --hooks-to file. -1 after reporting. */
static int helm_argv(const char *helm, const char *cmd, const struct wrap *w, int major,
		     const char *extra, const char *hooks_to, struct cr_argv *argv)
{
	cr_argv_push(argv, helm);
	cr_argv_push(argv, cmd);
	for (size_t i = 0; i < w->helm.n; i++)
		cr_argv_push(argv, w->helm.v[i]);
	if (extra)
		cr_argv_push(argv, extra);
	cr_argv_push(argv, "--post-renderer");
	if (major >= 4) {
		cr_argv_push(argv, HELM4_PLUGIN);
	} else {
		char *self = cr_self_exe();
		if (!self) {
			cr_error("cannot find the chartreuse executable (/proc/self/exe)");
			cr_argv_free(argv);
			return -1;
		}
		cr_argv_push(argv, self);
		free(self);
		cr_argv_push(argv, "--post-renderer-args");
		cr_argv_push(argv, "post-render");
	}
	cr_argv_push(argv, "--post-renderer-args");
	cr_argv_pushf(argv, "--release=%s", w->release);
	cr_argv_push(argv, "--post-renderer-args");
	cr_argv_pushf(argv, "--namespace=%s", w->namespace);
	if (hooks_to) {
		cr_argv_push(argv, "--post-renderer-args");
		cr_argv_pushf(argv, "--hooks-to=%s", hooks_to);
	}
	for (size_t i = 0; i < w->pr.n; i++) {
		cr_argv_push(argv, "--post-renderer-args");
		cr_argv_push(argv, w->pr.v[i]);
	}
	return 0;
}

/* --- Helm 3: the wrapper runs the hook Jobs -------------------------------------------- */

/* The value of a Helm flag the user gave ("--flag v" or "--flag=v"), NULL if not given. */
static const char *flag_value(const struct wrap *w, const char *flag)
{
	size_t n = strlen(flag);
	for (size_t i = 0; i < w->helm.n; i++) {
		const char *a = w->helm.v[i];
		if (!strcmp(a, flag) && i + 1 < w->helm.n)
			return w->helm.v[i + 1];
		if (!strncmp(a, flag, n) && a[n] == '=')
			return a + n + 1;
	}
	return NULL;
}

/* Helm 3 runs hooks for install and upgrade; a dry run runs none, nor do we. */
static bool runs_hooks(const char *cmd, const struct wrap *w, int major)
{
	return major == 3 && (!strcmp(cmd, "install") || !strcmp(cmd, "upgrade")) &&
	       !given(w, "--dry-run");
}

/* The cluster Helm talks to: its kubeconfig, context and namespace. */
static struct cr_k8s *connect_like_helm(const struct wrap *w, struct cr_k8s **k)
{
	if (*k)
		return *k;
	const char *context = flag_value(w, "--kube-context");
	if (!context)
		context = getenv("HELM_KUBECONTEXT");
	struct cr_k8s_options o = { .kubeconfig = flag_value(w, "--kubeconfig"),
				    .context = context && *context ? context : NULL,
				    .namespace = w->namespace };
	*k = cr_k8s_new(&o);
	return *k;
}

/* Helm's --timeout bounds each hook; 5 minutes is its default. */
static long hook_timeout_ms(const struct wrap *w)
{
	const char *v = flag_value(w, "--timeout");
	long ms = v ? cr_go_duration_ms(v) : -1;
	return ms > 0 ? ms : 5 * 60 * 1000L;
}

/* Pushes RELEASE, its namespace and the cluster options the user gave Helm: a query of
 * the release (`helm status`, `helm get metadata`) asks the cluster Helm will change. */
static void push_release_and_cluster(const struct wrap *w, struct cr_argv *argv)
{
	cr_argv_push(argv, w->release);
	cr_argv_push(argv, "--namespace");
	cr_argv_push(argv, w->namespace);
	for (size_t i = 0; i < w->helm.n; i++) {
		const char *a = w->helm.v[i];
		if (strncmp(a, "--kube", 6))
			continue;
		cr_argv_push(argv, a);
		if (!strchr(a, '=') && takes_value(a) && i + 1 < w->helm.n)
			cr_argv_push(argv, w->helm.v[++i]);
	}
}

/* `helm upgrade --install` installs when there is no release: then the hooks are
 * post-install ones. Asked of Helm itself (`helm status`), quietly. */
static bool release_exists(const char *helm, const struct wrap *w)
{
	if (!given(w, "--install") && !given(w, "-i"))
		return true; /* plain upgrade: Helm fails without one */
	struct cr_argv argv = { 0 };
	cr_argv_push(&argv, helm);
	cr_argv_push(&argv, "status");
	push_release_and_cluster(w, &argv);
	struct cr_buf out = { 0 };
	struct cr_child c = { .argv = argv.v, .what = "helm status", .merge_stderr = true };
	int status = cr_child_capture(&c, &out, NULL, NULL);
	cr_buf_free(&out);
	cr_argv_free(&argv);
	return status == 0;
}

/* Runs the Jobs of FILE of one phase; with companions, applies those first. */
static int run_phase(const struct wrap *w, const char *file, const char *phase,
		     bool companions, struct cr_k8s **k)
{
	struct cr_hooks *h = cr_hooks_load(file);
	int rc = h ? 0 : -1;
	if (!rc && cr_hooks_has(h, phase)) {
		cr_info("running the %s hook Jobs (Helm 3 runs none from a post-renderer)", phase);
		rc = connect_like_helm(w, k) ? 0 : -1;
		if (!rc && companions)
			rc = cr_hooks_apply_companions(h, *k, w->release, w->namespace);
		if (!rc)
			rc = cr_hooks_run(h, *k, phase, hook_timeout_ms(w));
		if (rc && companions)
			cr_error("the %s hooks failed: helm upgrade was not run, the release is "
				 "unchanged", phase);
		else if (rc)
			cr_error("the %s hooks failed: Helm 3 has recorded the release as "
				 "deployed (Helm itself would have marked it failed)", phase);
	}
	cr_hooks_free(h);
	return rc ? 1 : 0;
}

/* Before the real upgrade: the same upgrade as a dry run renders the Jobs (Helm 3 post-
 * renders on a dry run too; its output, with the release's Secrets, is dropped), and the
 * pre-upgrade ones run with their companions applied. */
static int pre_upgrade(const char *helm, const struct wrap *w, const char *file,
		       struct cr_k8s **k)
{
	struct cr_argv argv = { 0 };
	if (helm_argv(helm, "upgrade", w, 3, "--dry-run", file, &argv))
		return 1;
	struct cr_buf out = { 0 };
	struct cr_child c = { .argv = argv.v };
	int rc = cr_child_capture(&c, &out, NULL, NULL);
	if (out.data)
		explicit_bzero(out.data, out.len);
	cr_buf_free(&out);
	cr_argv_free(&argv);
	if (rc) {
		cr_error("helm upgrade --dry-run (to find the pre-upgrade hooks) failed%s",
			 rc > 0 ? ": see Helm's message above" : "");
		return rc > 0 ? rc : 1;
	}
	return run_phase(w, file, "pre-upgrade", true, k);
}

/* Helm 3 install/upgrade: Helm applies the release, the wrapper runs the hook Jobs the
 * post-renderer put in a file (pre-upgrade ones before Helm, after a dry run; post-install
 * or post-upgrade ones after it). The exit status is Helm's, or 1 when a hook failed. */
static int helm3_with_hooks(const char *helm, const char *cmd, const struct wrap *w)
{
	char *file = temp_file("chartreuse-hooks");
	if (!file)
		return 1;
	struct cr_k8s *k = NULL;
	const char *after = "post-install";
	int rc = 0;
	if (!strcmp(cmd, "upgrade") && release_exists(helm, w)) {
		after = "post-upgrade";
		rc = pre_upgrade(helm, w, file, &k);
	}
	/* Only what the real run renders may run after it, even if Helm never started the
	 * post-renderer (which replaces the file's content). */
	if (!rc && truncate(file, 0)) {
		cr_error("cannot empty %s: %s", file, strerror(errno));
		rc = 1;
	}
	if (!rc) {
		struct cr_argv argv = { 0 };
		rc = helm_argv(helm, cmd, w, 3, NULL, file, &argv) ? 1 : spawn_wait(argv.v);
		cr_argv_free(&argv);
	}
	if (!rc)
		rc = run_phase(w, file, after, false, &k);
	cr_k8s_free(k);
	unlink(file);
	free(file);
	return rc;
}

/* --- Helm 4: --force-conflicts with server-side apply only ------------------------------ */

/* Go's strconv.ParseBool, as cobra reads a switch's value: 1 true, 0 false, -1 neither. */
static int go_bool(const char *v)
{
	static const char *const yes[] = { "1", "t", "T", "TRUE", "true", "True", NULL };
	static const char *const no[] = { "0", "f", "F", "FALSE", "false", "False", NULL };
	for (int i = 0; yes[i]; i++)
		if (!strcmp(v, yes[i]))
			return 1;
	for (int i = 0; no[i]; i++)
		if (!strcmp(v, no[i]))
			return 0;
	return -1;
}

/* The user's --server-side (the last one, as cobra takes it), NULL if not given. Install's
 * is a switch: alone it means "true". */
static const char *server_side_flag(const char *cmd, const struct wrap *w)
{
	const char *v = NULL;
	for (size_t i = 0; i < w->helm.n; i++) {
		const char *a = w->helm.v[i];
		if (!strncmp(a, "--server-side=", 14))
			v = a + 14;
		else if (!strcmp(a, "--server-side"))
			v = upgrade_value_flag(cmd, a) ? (i + 1 < w->helm.n ? w->helm.v[++i] : NULL)
						       : "true";
	}
	return v;
}

enum last_revision { LAST_ERROR = -1, LAST_NONE, LAST_CLIENT_SIDE, LAST_SERVER_SIDE };

/* How the release's last revision was applied, as Helm 4 records it and reads it for
 * `--server-side=auto` (`helm get metadata`: applyMethod "ssa" or "csa"; none when Helm 3
 * wrote the revision, which is client-side). LAST_NONE: no release, or its last revision
 * was uninstalled (`upgrade --install` then installs). */
static enum last_revision last_revision(const char *helm, const struct wrap *w)
{
	struct cr_argv argv = { 0 };
	cr_argv_push(&argv, helm);
	cr_argv_push(&argv, "get");
	cr_argv_push(&argv, "metadata");
	push_release_and_cluster(w, &argv);
	cr_argv_push(&argv, "--output");
	cr_argv_push(&argv, "json");
	struct cr_buf out = { 0 };
	struct cr_child c = { .argv = argv.v, .what = "helm get metadata", .merge_stderr = true };
	int rc = cr_child_capture(&c, &out, NULL, NULL);
	cr_argv_free(&argv);
	enum last_revision last = LAST_ERROR;
	const char *text = out.data ? out.data : "";
	/* The JSON is one line; Helm's warnings (kubeconfig permissions...) may come first. */
	const char *json = text[0] == '{' ? text : strstr(text, "\n{");
	json = json && *json == '\n' ? json + 1 : json;
	if (rc == 0 && json) {
		struct fy_document *d = cr_json_parse(json, strcspn(json, "\n"),
						      "helm get metadata --output json");
		struct fy_node *root = d ? fy_document_root(d) : NULL;
		if (root && yt_is_map(root)) {
			struct fy_node *method = yt_get(root, "applyMethod");
			if (yt_scalar_is(yt_get(root, "status"), "uninstalled"))
				last = LAST_NONE;
			else
				last = method && yt_scalar_is(method, "ssa") ? LAST_SERVER_SIDE
									     : LAST_CLIENT_SIDE;
		}
		fy_document_destroy(d);
	} else if (rc > 0 && strstr(text, "release: not found")) {
		last = LAST_NONE;
	}
	if (last == LAST_ERROR) {
		size_t len = strlen(text);
		while (len && (text[len - 1] == '\n' || text[len - 1] == ' '))
			len--;
		cr_error("cannot read how release %s in namespace %s was last applied (helm get "
			 "metadata, for Helm 4's --server-side=auto; nothing was changed): %.*s",
			 w->release, w->namespace, (int)len, len ? text : "no output");
	}
	cr_buf_free(&out);
	return last;
}

/* Whether Helm 4 applies this install/upgrade server-side, decided as Helm decides:
 * install's --server-side is a switch, on by default; upgrade's is true, false or auto
 * (the default): the method of the release's last revision, and server-side when there is
 * none to upgrade and --install installs. 1, 0, or -1 after reporting. */
static int applies_server_side(const char *helm, const char *cmd, const struct wrap *w)
{
	const char *v = server_side_flag(cmd, w);
	if (!strcmp(cmd, "install"))
		return !v || go_bool(v) == 1; /* not a boolean: Helm refuses it itself */
	if (v && strcmp(v, "auto"))
		return !strcmp(v, "true");
	switch (last_revision(helm, w)) {
	case LAST_SERVER_SIDE:
		return 1;
	case LAST_CLIENT_SIDE:
		return 0;
	case LAST_NONE:
		return given(w, "--install") || given(w, "-i");
	default:
		return -1;
	}
}

/* Helm 4 applies server-side; a migration scales Deployments through their scale
 * subresource, which makes chartreuse a manager of spec.replicas. Helm's next server-side
 * apply of a different count (the chart's replicas after a before-deployment migration left
 * them at 0) then conflicts with chartreuse; the chart's count is meant to win. Helm 4
 * refuses --force-conflicts with client-side apply (a release Helm 3 applied last stays
 * client-side), where a three-way patch puts the count back without it. 1, 0, or -1 after
 * reporting. */
static int needs_force_conflicts(const char *helm, const char *cmd, const struct wrap *w,
				 int major)
{
	if (major < 4 || (strcmp(cmd, "upgrade") && strcmp(cmd, "install")) ||
	    given(w, "--force-conflicts"))
		return 0;
	/* Helm refuses --force-conflicts beside these */
	if (given(w, "--force-replace") || given(w, "--force"))
		return 0;
	return applies_server_side(helm, cmd, w);
}

static int exec_helm(const char *helm, const char *cmd, struct wrap *w, int major)
{
	fflush(stdout);
	if (runs_hooks(cmd, w, major))
		return helm3_with_hooks(helm, cmd, w);
	int force = needs_force_conflicts(helm, cmd, w, major);
	if (force < 0)
		return 1;
	struct cr_argv argv = { 0 };
	if (helm_argv(helm, cmd, w, major, force ? "--force-conflicts" : NULL, NULL, &argv))
		return 1;
	int rc = major >= 4 ? run_showing_plugin_errors(argv.v) : spawn_wait(argv.v);
	cr_argv_free(&argv);
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
	cr_argv_free(&w.helm);
	cr_argv_free(&w.pr);
	return rc;
}
