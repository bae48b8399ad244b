#include "kubeconfig.h"
#include "json.h"
#include "k8s.h"
#include "file.h"
#include "log.h"
#include "proc.h"
#include "url.h"
#include "ytree.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>


/* --- small parsers ---------------------------------------------------------------------- */

static int b64_value(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+' || c == '-')
		return 62;
	if (c == '/' || c == '_')
		return 63;
	return -1;
}

int cr_base64_decode(const char *s, size_t len, struct cr_buf *out)
{
	unsigned acc = 0;
	int bits = 0;
	size_t pad = 0;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		if (isspace(c))
			continue;
		if (c == '=') {
			pad++;
			continue;
		}
		int v = b64_value(c);
		if (v < 0 || pad)
			return -1; /* a stray byte, or data after the padding */
		acc = (acc << 6) | (unsigned)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			cr_buf_addc(out, (char)((acc >> bits) & 0xff));
		}
	}
	/* Leftover bits must be the zero fill of a final partial group, never a whole byte. */
	return bits >= 6 || pad > 2 ? -1 : 0;
}

static bool take_digits(const char **p, int n, int *out)
{
	int v = 0;
	for (int i = 0; i < n; i++, (*p)++) {
		if (!isdigit((unsigned char)**p))
			return false;
		v = v * 10 + (**p - '0');
	}
	*out = v;
	return true;
}

static bool take_char(const char **p, const char *one_of)
{
	if (!**p || !strchr(one_of, **p))
		return false;
	(*p)++;
	return true;
}

int cr_rfc3339(const char *s, time_t *out)
{
	struct tm tm = { 0 };
	const char *p = s;
	int y, mo, d, h, mi, sec, oh = 0, om = 0, sign = 0;
	if (!take_digits(&p, 4, &y) || !take_char(&p, "-") || !take_digits(&p, 2, &mo) ||
	    !take_char(&p, "-") || !take_digits(&p, 2, &d) || !take_char(&p, "Tt ") ||
	    !take_digits(&p, 2, &h) || !take_char(&p, ":") || !take_digits(&p, 2, &mi) ||
	    !take_char(&p, ":") || !take_digits(&p, 2, &sec))
		return -1;
	if (*p == '.')
		for (p++; isdigit((unsigned char)*p); p++)
			; /* fractions of a second do not matter for an expiry */
	if (take_char(&p, "Zz"))
		sign = 0;
	else if (*p == '+' || *p == '-') {
		sign = *p++ == '+' ? 1 : -1;
		if (!take_digits(&p, 2, &oh) || !take_char(&p, ":") || !take_digits(&p, 2, &om))
			return -1;
	} else
		return -1;
	if (*p || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 60)
		return -1;
	tm.tm_year = y - 1900;
	tm.tm_mon = mo - 1;
	tm.tm_mday = d;
	tm.tm_hour = h;
	tm.tm_min = mi;
	tm.tm_sec = sec;
	*out = timegm(&tm) - sign * (oh * 3600 + om * 60);
	return 0;
}

/* --- in-cluster ------------------------------------------------------------------------- */

static char *read_trimmed(const char *path)
{
	struct cr_buf b = { 0 };
	int fd_ok = access(path, R_OK) == 0;
	if (!fd_ok || cr_read_file(path, &b)) {
		cr_buf_free(&b);
		return NULL;
	}
	while (b.len && isspace((unsigned char)b.data[b.len - 1]))
		b.data[--b.len] = '\0';
	size_t start = 0;
	while (start < b.len && isspace((unsigned char)b.data[start]))
		start++;
	char *s = xstrdup(b.data + start);
	cr_buf_free(&b);
	return s;
}

int cr_kcfg_in_cluster(const char *dir, const char *namespace, struct cr_kcfg *cfg)
{
	const char *host = getenv("KUBERNETES_SERVICE_HOST");
	const char *port = getenv("KUBERNETES_SERVICE_PORT");
	if (!cr_nonempty(host) || !cr_nonempty(port)) {
		cr_error("kubernetes: in-cluster: KUBERNETES_SERVICE_HOST and "
			 "KUBERNETES_SERVICE_PORT must both be set");
		return -1;
	}
	memset(cfg, 0, sizeof(*cfg));
	cfg->origin = xstrdup("in-cluster");
	struct cr_buf server = { 0 };
	cr_buf_adds(&server, "https://");
	cr_url_add_host(&server, host, port);
	cfg->server = cr_buf_detach(&server, NULL);
	cfg->token_file = xasprintf("%s/token", dir);
	cfg->ca_file = xasprintf("%s/ca.crt", dir);
	for (char **f = (char *[]){ cfg->token_file, cfg->ca_file, NULL }; *f; f++)
		if (access(*f, R_OK)) {
			cr_error("kubernetes: in-cluster: cannot read %s: %s", *f,
				 strerror(errno));
			cr_kcfg_free(cfg);
			return -1;
		}
	char *ns_path = xasprintf("%s/namespace", dir);
	char *ns_file = read_trimmed(ns_path);
	free(ns_path);
	if (cr_nonempty(namespace))
		cfg->namespace = xstrdup(namespace);
	else if (cr_nonempty(ns_file))
		cfg->namespace = xstrdup(ns_file);
	else
		cfg->namespace = xstrdup("default");
	free(ns_file);
	return 0;
}

/* --- kubeconfig files ------------------------------------------------------------------- */

struct kfile {
	char *path, *dir;
	struct fy_document *doc;
};

struct kfiles {
	struct kfile *f;
	size_t n, cap;
};

static void kfiles_free(struct kfiles *fs)
{
	for (size_t i = 0; i < fs->n; i++) {
		free(fs->f[i].path);
		free(fs->f[i].dir);
		fy_document_destroy(fs->f[i].doc);
	}
	free(fs->f);
}

static bool blank(const struct cr_buf *b)
{
	for (size_t i = 0; i < b->len; i++)
		if (!isspace((unsigned char)b->data[i]))
			return false;
	return true;
}

static char *dir_of(const char *path)
{
	const char *slash = strrchr(path, '/');
	if (!slash)
		return xstrdup(".");
	return slash == path ? xstrdup("/") : xstrndup(path, (size_t)(slash - path));
}

/* Loads one file; a missing one is skipped (as kubectl does with KUBECONFIG lists) unless
 * it was named on its own. */
static int kfile_add(struct kfiles *fs, const char *path, bool must_exist)
{
	struct stat st;
	if (stat(path, &st) && errno == ENOENT && !must_exist)
		return 0;
	struct cr_buf text = { 0 };
	if (cr_read_file(path, &text)) {
		cr_buf_free(&text);
		return -1;
	}
	struct fy_document *doc = NULL;
	if (!blank(&text) && !(doc = yt_parse(text.data, text.len, path, 0))) {
		cr_buf_free(&text);
		return -1;
	}
	cr_buf_free(&text);
	XGROW(fs->f, fs->n + 1, fs->cap);
	fs->f[fs->n++] = (struct kfile){ xstrdup(path), dir_of(path), doc };
	return 0;
}

static int kfiles_load(struct kfiles *fs, const char *paths)
{
	bool single = !strchr(paths, ':');
	char *copy = xstrdup(paths), *save = NULL;
	int rc = 0;
	for (char *p = strtok_r(copy, ":", &save); p && !rc; p = strtok_r(NULL, ":", &save))
		rc = kfile_add(fs, p, single);
	free(copy);
	if (!rc && fs->n == 0) {
		cr_error("kubernetes: no kubeconfig file found (%s)", paths);
		rc = -1;
	}
	return rc;
}

static struct fy_node *kroot(const struct kfile *f)
{
	return f->doc ? fy_document_root(f->doc) : NULL; /* an empty file has no document */
}

/* The `kind` body of the entry called `name` in the first file that has one. */
static struct fy_node *find_named(const struct kfiles *fs, const char *list, const char *kind,
				  const char *name, const struct kfile **where)
{
	for (size_t i = 0; i < fs->n; i++) {
		struct fy_node *seq = yt_get(kroot(&fs->f[i]), list);
		void *it = NULL;
		struct fy_node *item;
		while (yt_is_seq(seq) && (item = fy_node_sequence_iterate(seq, &it))) {
			if (yt_scalar_is(yt_get(item, "name"), name)) {
				*where = &fs->f[i];
				struct fy_node *body = yt_get(item, kind);
				return body ? body : item; /* an entry without a body is empty */
			}
		}
	}
	return NULL;
}

/* Reads map[key] as a string (NULL when absent or null); -1 when it is not a scalar. */
static int get_str(struct fy_node *map, const char *key, const char *where, char **out)
{
	struct fy_node *n = yt_get(map, key);
	*out = NULL;
	if (!n || yt_is_null(n))
		return 0;
	if (!yt_is_scalar(n)) {
		cr_error("%s:%d: %s must be a string, not %s", where, yt_line(n), key, yt_kind(n));
		return -1;
	}
	*out = yt_strdup(n);
	return 0;
}

static bool get_bool(struct fy_node *map, const char *key)
{
	char *s = yt_strdup(yt_get(map, key));
	bool yes = s && !strcasecmp(s, "true");
	free(s);
	return yes;
}

/* A path from a kubeconfig, relative to that file's directory. */
static char *resolve(const struct kfile *f, char *p)
{
	if (!cr_nonempty(p) || p[0] == '/')
		return p;
	char *abs = xasprintf("%s/%s", f->dir, p);
	free(p);
	return abs;
}

/* key-data (base64) into *buf, else key (a file path) into *file. */
static int get_pem(struct fy_node *map, const char *key, const struct kfile *f,
		   struct cr_buf *buf, char **file)
{
	char *data_key = xasprintf("%s-data", key), *data = NULL;
	int rc = get_str(map, data_key, f->path, &data);
	if (!rc && cr_nonempty(data)) {
		if (cr_base64_decode(data, strlen(data), buf)) {
			cr_error("%s: %s is not valid base64", f->path, data_key);
			rc = -1;
		}
	} else if (!rc && !(rc = get_str(map, key, f->path, file)))
		*file = resolve(f, *file);
	free(data);
	free(data_key);
	return rc;
}

static int read_cluster(struct fy_node *c, const struct kfile *f, struct cr_kcfg *cfg)
{
	if (get_str(c, "server", f->path, &cfg->server) ||
	    get_str(c, "proxy-url", f->path, &cfg->proxy) ||
	    get_pem(c, "certificate-authority", f, &cfg->ca_data, &cfg->ca_file))
		return -1;
	cfg->insecure = get_bool(c, "insecure-skip-tls-verify");
	if (yt_get(c, "tls-server-name"))
		cr_warn("%s: tls-server-name is not supported: the server's certificate must name "
			"the host of %s",
			f->path, cfg->server ? cfg->server : "the server");
	if (!cr_nonempty(cfg->server)) {
		cr_error("%s: the cluster has no server", f->path);
		return -1;
	}
	size_t len = strlen(cfg->server);
	while (len > 1 && cfg->server[len - 1] == '/')
		cfg->server[--len] = '\0';
	return 0;
}

static int read_exec(struct fy_node *e, const struct kfile *f, struct cr_kcfg *cfg)
{
	struct cr_kcfg_exec *x = cfg->exec = xcalloc(1, sizeof(*x));
	if (get_str(e, "apiVersion", f->path, &x->api_version) ||
	    get_str(e, "command", f->path, &x->command) ||
	    get_str(e, "installHint", f->path, &x->install_hint))
		return -1;
	if (!cr_nonempty(x->command)) {
		cr_error("%s: users[].user.exec has no command", f->path);
		return -1;
	}
	/* A command with a '/' is a path, relative to the kubeconfig; a bare name is looked
	 * up in PATH (client-go does the same). */
	if (strchr(x->command, '/'))
		x->command = resolve(f, x->command);
	x->provide_cluster_info = get_bool(e, "provideClusterInfo");
	void *it = NULL;
	struct fy_node *n, *args = yt_get(e, "args"), *env = yt_get(e, "env");
	while (yt_is_seq(args) && (n = fy_node_sequence_iterate(args, &it))) {
		char *s = yt_strdup(n);
		cr_strlist_add(&x->args, s ? s : "");
		free(s);
	}
	it = NULL;
	while (yt_is_seq(env) && (n = fy_node_sequence_iterate(env, &it))) {
		char *name = yt_strdup(yt_get(n, "name")), *value = yt_strdup(yt_get(n, "value"));
		char *kv = xasprintf("%s=%s", name ? name : "", value ? value : "");
		cr_strlist_add(&x->env, kv);
		free(kv);
		free(name);
		free(value);
	}
	return 0;
}

static int read_user(struct fy_node *u, const struct kfile *f, struct cr_kcfg *cfg)
{
	if (get_str(u, "token", f->path, &cfg->token) ||
	    get_str(u, "tokenFile", f->path, &cfg->token_file) ||
	    get_str(u, "username", f->path, &cfg->username) ||
	    get_str(u, "password", f->path, &cfg->password) ||
	    get_pem(u, "client-certificate", f, &cfg->cert_data, &cfg->cert_file) ||
	    get_pem(u, "client-key", f, &cfg->key_data, &cfg->key_file))
		return -1;
	cfg->token_file = resolve(f, cfg->token_file);
	cr_secret_add(cfg->token);
	cr_secret_add(cfg->password);
	cr_secret_add(cfg->key_data.data);
	struct fy_node *ap = yt_get(u, "auth-provider");
	if (ap) {
		char *name = yt_strdup(yt_get(ap, "name"));
		cr_error("%s: auth-provider %s is not supported (it was removed from kubectl); "
			 "use an exec credential plugin",
			 f->path, name ? name : "?");
		free(name);
		return -1;
	}
	struct fy_node *e = yt_get(u, "exec");
	return yt_is_map(e) ? read_exec(e, f, cfg) : 0;
}

/* Caller frees. */
static char *first_current_context(const struct kfiles *fs)
{
	for (size_t i = 0; i < fs->n; i++) {
		char *c = yt_strdup(yt_get(kroot(&fs->f[i]), "current-context"));
		if (cr_nonempty(c))
			return c;
		free(c);
	}
	return NULL;
}

/* Finds the context's cluster and user and reads them into cfg. */
static int read_context(const struct kfiles *fs, const char *paths, const char *name,
			struct cr_kcfg *cfg)
{
	const struct kfile *cf = NULL, *kf = NULL, *uf = NULL;
	struct fy_node *ctx = find_named(fs, "contexts", "context", name, &cf);
	if (!ctx) {
		cr_error("kubernetes: context \"%s\" is not defined in %s", name, paths);
		return -1;
	}
	cfg->origin = xasprintf("%s, context %s", cf->path, name);
	char *cluster = NULL, *user = NULL, *ns = NULL;
	int rc = 0;
	if (get_str(ctx, "cluster", cf->path, &cluster) || get_str(ctx, "user", cf->path, &user) ||
	    get_str(ctx, "namespace", cf->path, &ns))
		rc = -1;
	struct fy_node *c = NULL, *u = NULL;
	if (!rc && cluster)
		c = find_named(fs, "clusters", "cluster", cluster, &kf);
	if (!rc && user)
		u = find_named(fs, "users", "user", user, &uf);
	if (!rc && !c) {
		cr_error("kubernetes: %s: cluster \"%s\" is not defined", cfg->origin,
			 cluster ? cluster : "");
		rc = -1;
	}
	if (!rc && user && !u) {
		cr_error("kubernetes: %s: user \"%s\" is not defined", cfg->origin, user);
		rc = -1;
	}
	if (!rc)
		rc = read_cluster(c, kf, cfg);
	if (!rc && u)
		rc = read_user(u, uf, cfg);
	cfg->namespace = ns;
	free(cluster);
	free(user);
	return rc;
}

int cr_kcfg_from_files(const char *paths, const char *context, const char *namespace,
		       struct cr_kcfg *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	struct kfiles fs = { 0 };
	int rc = kfiles_load(&fs, paths);
	char *current = rc || cr_nonempty(context) ? NULL : first_current_context(&fs);
	const char *name = cr_nonempty(context) ? context : current;
	if (!rc && !name) {
		cr_error("kubernetes: %s sets no current-context: pass --kube-context", paths);
		rc = -1;
	}
	if (!rc)
		rc = read_context(&fs, paths, name, cfg);
	if (!rc && cr_nonempty(namespace)) {
		free(cfg->namespace);
		cfg->namespace = xstrdup(namespace);
	} else if (!rc && !cr_nonempty(cfg->namespace)) {
		free(cfg->namespace);
		cfg->namespace = xstrdup("default");
	}
	free(current);
	kfiles_free(&fs);
	if (rc)
		cr_kcfg_free(cfg);
	return rc;
}

static char *home_kubeconfig(void)
{
	const char *home = getenv("HOME");
	return cr_nonempty(home) ? xasprintf("%s/.kube/config", home) : NULL;
}

int cr_kcfg_load(const struct cr_k8s_options *opts, struct cr_kcfg *cfg)
{
	static const struct cr_k8s_options none;
	if (!opts)
		opts = &none;
	const char *env = getenv("KUBECONFIG");
	const char *paths = cr_nonempty(opts->kubeconfig) ? opts->kubeconfig
			    : cr_nonempty(env)		   ? env
							   : NULL;
	bool in_cluster = cr_nonempty(getenv("KUBERNETES_SERVICE_HOST"));
	if (!paths && !cr_nonempty(opts->context) && in_cluster) {
		const char *dir = getenv("CHARTREUSE_SERVICEACCOUNT_DIR");
		return cr_kcfg_in_cluster(cr_nonempty(dir) ? dir : CR_SERVICEACCOUNT_DIR,
					  opts->namespace, cfg);
	}
	char *home = paths ? NULL : home_kubeconfig();
	if (!paths && !home) {
		cr_error("kubernetes: not in a cluster, and neither KUBECONFIG nor HOME is set");
		return -1;
	}
	int rc = cr_kcfg_from_files(paths ? paths : home, opts->context, opts->namespace, cfg);
	free(home);
	return rc;
}

void cr_kcfg_free(struct cr_kcfg *cfg)
{
	free(cfg->origin);
	free(cfg->server);
	free(cfg->namespace);
	free(cfg->ca_file);
	cr_buf_free(&cfg->ca_data);
	free(cfg->proxy);
	free(cfg->cert_file);
	free(cfg->key_file);
	cr_buf_free(&cfg->cert_data);
	cr_buf_free(&cfg->key_data);
	free(cfg->token);
	free(cfg->token_file);
	free(cfg->username);
	free(cfg->password);
	if (cfg->exec) {
		free(cfg->exec->api_version);
		free(cfg->exec->command);
		cr_strlist_free(&cfg->exec->args);
		cr_strlist_free(&cfg->exec->env);
		free(cfg->exec->install_hint);
		free(cfg->exec);
	}
	memset(cfg, 0, sizeof(*cfg));
}

/* --- exec credential plugins ------------------------------------------------------------ */

/* The KUBERNETES_EXEC_INFO the plugin reads: what it is asked for, and the cluster when
 * the kubeconfig says provideClusterInfo. */
static char *exec_info(const struct cr_kcfg *cfg, const char *api_version)
{
	struct fy_document *d = yt_document();
	struct fy_node *root = yt_map(d), *spec;
	fy_document_set_root(d, root);
	yt_set_str(root, "apiVersion", api_version);
	yt_set_str(root, "kind", "ExecCredential");
	spec = yt_child_map(root, "spec");
	yt_set(spec, "interactive", yt_bool(d, false));
	if (cfg->exec->provide_cluster_info) {
		struct fy_node *c = yt_child_map(spec, "cluster");
		yt_set_str(c, "server", cfg->server);
		struct cr_buf ca = { 0 }, b64 = { 0 };
		if (cfg->ca_data.len)
			cr_buf_add(&ca, cfg->ca_data.data, cfg->ca_data.len);
		else if (cfg->ca_file && cr_read_file(cfg->ca_file, &ca))
			cr_buf_reset(&ca);
		if (ca.len) {
			cr_base64(&b64, ca.data, ca.len);
			yt_set_str(c, "certificate-authority-data", b64.data);
		}
		if (cfg->insecure)
			yt_set(c, "insecure-skip-tls-verify", yt_bool(d, true));
		if (cfg->proxy)
			yt_set_str(c, "proxy-url", cfg->proxy);
		cr_buf_free(&ca);
		cr_buf_free(&b64);
	}
	char *s = cr_json_string(root);
	fy_document_destroy(d);
	return s;
}

/* This process's environment, with the plugin's env entries and KUBERNETES_EXEC_INFO. */
static void exec_env(const struct cr_kcfg_exec *x, const char *info, struct cr_env *e)
{
	const char **set = xcalloc(x->env.n + 1, sizeof(*set));
	for (size_t i = 0; i < x->env.n; i++)
		set[i] = x->env.items[i];
	char *exec_info = xasprintf("KUBERNETES_EXEC_INFO=%s", info);
	set[x->env.n] = exec_info;
	cr_env_with(e, set, x->env.n + 1);
	free(exec_info);
	free(set);
}

/* Runs the plugin; its stdout into out. Its stdin and stderr are the user's, and it stays
 * in chartreuse's process group: a plugin may prompt on the terminal and read the answer
 * (in a group of its own it would be stopped by SIGTTIN). */
static int exec_capture(const struct cr_kcfg_exec *x, char **envp, const char *what,
			struct cr_buf *out)
{
	struct cr_argv argv = { 0 };
	cr_argv_push(&argv, x->command);
	for (size_t i = 0; i < x->args.n; i++)
		cr_argv_push(&argv, x->args.items[i]);
	struct cr_child c = { .argv = argv.v, .envp = envp, .what = what };
	int status = cr_child_capture(&c, out, NULL, NULL);
	cr_argv_free(&argv);
	if (status < 0 && cr_nonempty(x->install_hint))
		cr_error("%s", x->install_hint);
	else if (status > 0 && status < 128)
		cr_error("kubernetes: %s exited with status %d", what, status);
	return status == 0 ? 0 : -1;
}

int cr_exec_run(const struct cr_kcfg *cfg, struct cr_exec_cred *out)
{
	const struct cr_kcfg_exec *x = cfg->exec;
	const char *api = cr_nonempty(x->api_version) ? x->api_version
						      : "client.authentication.k8s.io/v1";
	char *what = xasprintf("exec credential plugin %s", x->command);
	char *info = exec_info(cfg, api);
	struct cr_env env = { 0 };
	if (info)
		exec_env(x, info, &env);
	struct cr_buf stdout_text = { 0 };
	int rc = info ? exec_capture(x, env.envp, what, &stdout_text) : -1;
	if (!rc)
		rc = cr_exec_parse(stdout_text.data, stdout_text.len, api, what, out);
	if (stdout_text.data)
		explicit_bzero(stdout_text.data, stdout_text.len);
	cr_buf_free(&stdout_text);
	cr_env_free(&env);
	free(info);
	free(what);
	return rc;
}

static int parse_cred_status(struct fy_node *st, const char *what, struct cr_exec_cred *out)
{
	out->token = yt_strdup(yt_get(st, "token"));
	char *cert = yt_strdup(yt_get(st, "clientCertificateData"));
	char *key = yt_strdup(yt_get(st, "clientKeyData"));
	char *exp = yt_strdup(yt_get(st, "expirationTimestamp"));
	int rc = 0;
	if (cr_nonempty(cert) != cr_nonempty(key)) {
		cr_error("kubernetes: %s returned only one of clientCertificateData and "
			 "clientKeyData",
			 what);
		rc = -1;
	} else if (!cr_nonempty(out->token) && !cr_nonempty(cert)) {
		cr_error("kubernetes: %s returned neither a token nor a client certificate", what);
		rc = -1;
	} else if (cr_nonempty(exp) && cr_rfc3339(exp, &out->expiry)) {
		cr_error("kubernetes: %s: expirationTimestamp \"%s\" is not an RFC 3339 time",
			 what, exp);
		rc = -1;
	}
	if (!rc && cr_nonempty(cert)) {
		cr_buf_adds(&out->cert, cert);
		cr_buf_adds(&out->key, key);
	}
	cr_secret_add(out->token);
	cr_secret_add(key);
	free(cert);
	free(key);
	free(exp);
	return rc;
}

int cr_exec_parse(const char *json, size_t len, const char *api_version, const char *what,
		  struct cr_exec_cred *out)
{
	memset(out, 0, sizeof(*out));
	char *origin = xasprintf("kubernetes: output of %s", what);
	struct fy_document *d = cr_json_parse(json ? json : "", json ? len : 0, origin);
	free(origin);
	if (!d)
		return -1;
	struct fy_node *root = fy_document_root(d);
	char *kind = yt_strdup(yt_get(root, "kind")), *api = yt_strdup(yt_get(root, "apiVersion"));
	struct fy_node *status = yt_get(root, "status");
	int rc = -1;
	if (!cr_streq(kind, "ExecCredential"))
		cr_error("kubernetes: %s printed a %s, not an ExecCredential", what,
			 kind ? kind : "document without kind");
	else if (cr_nonempty(api_version) && !cr_streq(api, api_version))
		cr_error("kubernetes: %s answered in apiVersion %s; the kubeconfig asked for %s",
			 what, api ? api : "(none)", api_version);
	else if (!yt_is_map(status))
		cr_error("kubernetes: %s returned an ExecCredential without status", what);
	else
		rc = parse_cred_status(status, what, out);
	free(kind);
	free(api);
	fy_document_destroy(d);
	if (rc)
		cr_exec_cred_free(out);
	return rc;
}

void cr_exec_cred_free(struct cr_exec_cred *c)
{
	free(c->token);
	cr_buf_free(&c->cert);
	cr_buf_free(&c->key);
	memset(c, 0, sizeof(*c));
}

static void buf_copy(struct cr_buf *dst, const struct cr_buf *src);

void cr_exec_cred_copy(struct cr_exec_cred *dst, const struct cr_exec_cred *src)
{
	memset(dst, 0, sizeof(*dst));
	dst->token = src->token ? xstrdup(src->token) : NULL;
	buf_copy(&dst->cert, &src->cert);
	buf_copy(&dst->key, &src->key);
	dst->expiry = src->expiry;
}

static void buf_copy(struct cr_buf *dst, const struct cr_buf *src)
{
	if (src->len)
		cr_buf_add(dst, src->data, src->len);
}

static char *dup_or_null(const char *s)
{
	return s ? xstrdup(s) : NULL;
}

static void strlist_copy(struct cr_strlist *dst, const struct cr_strlist *src)
{
	for (size_t i = 0; i < src->n; i++)
		cr_strlist_add(dst, src->items[i]);
}

void cr_kcfg_copy(struct cr_kcfg *dst, const struct cr_kcfg *src)
{
	*dst = (struct cr_kcfg){
		.origin = dup_or_null(src->origin),
		.server = dup_or_null(src->server),
		.namespace = dup_or_null(src->namespace),
		.ca_file = dup_or_null(src->ca_file),
		.insecure = src->insecure,
		.proxy = dup_or_null(src->proxy),
		.cert_file = dup_or_null(src->cert_file),
		.key_file = dup_or_null(src->key_file),
		.token = dup_or_null(src->token),
		.token_file = dup_or_null(src->token_file),
		.username = dup_or_null(src->username),
		.password = dup_or_null(src->password),
	};
	buf_copy(&dst->ca_data, &src->ca_data);
	buf_copy(&dst->cert_data, &src->cert_data);
	buf_copy(&dst->key_data, &src->key_data);
	if (src->exec) {
		const struct cr_kcfg_exec *x = src->exec;
		struct cr_kcfg_exec *y = dst->exec = xcalloc(1, sizeof(*y));
		y->api_version = dup_or_null(x->api_version);
		y->command = dup_or_null(x->command);
		y->install_hint = dup_or_null(x->install_hint);
		y->provide_cluster_info = x->provide_cluster_info;
		strlist_copy(&y->args, &x->args);
		strlist_copy(&y->env, &x->env);
	}
}
