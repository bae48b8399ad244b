/* k8s: JSON in and out, kubeconfig reading and merging, exec credentials, error lines.
 * Kubeconfigs are written into temporary directories. k8s_cli serves
 * tests/test_k8s_client.py (requests against an HTTPS stub) and does nothing unless
 * CR_K8S_TEST_OPS is set. */
#include "json.h"
#include "k8s.h"
#include "kubeconfig.h"
#include "file.h"
#include "log.h"
#include "unit.h"
#include "util.h"
#include "ytree.h"

#include <dirent.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>


/* Writes dir/rel (creating directories on the way); returns the path (caller frees). */
static char *k_put(const char *dir, const char *rel, const char *text, mode_t mode)
{
	char *path = xasprintf("%s/%s", dir, rel);
	for (char *s = strchr(path + strlen(dir) + 1, '/'); s; s = strchr(s + 1, '/')) {
		*s = '\0';
		mkdir(path, 0700);
		*s = '/';
	}
	FILE *f = fopen(path, "w");
	if (!f) {
		perror(path);
		abort();
	}
	fputs(text, f);
	fclose(f);
	chmod(path, mode);
	return path;
}

/* Saves an environment variable and restores it on k_env_restore. */
struct k_env {
	const char *name;
	char *old;
};

static struct k_env k_env_set(const char *name, const char *value)
{
	const char *old = getenv(name);
	struct k_env e = { name, old ? xstrdup(old) : NULL };
	if (value)
		setenv(name, value, 1);
	else
		unsetenv(name);
	return e;
}

static void k_env_restore(struct k_env *e)
{
	if (e->old)
		setenv(e->name, e->old, 1);
	else
		unsetenv(e->name);
	free(e->old);
}

/* --- JSON -------------------------------------------------------------------------------- */

static const char *const hostile[] = {
	"#x", " x", "x ", "1", "-1", "1e3", "0x1F", "true", "false", "null", "~", "", "- x",
	"a: b", "\"q\"", "'s'", "back\\slash", "tab\there", "nl\nx", "cr\rx", "\x01\x1f\x7f",
	"é ✓ 😀", "\xe2\x80\xa8", "{", "[", "]", "}", ",", "yes", "NO", "<<", "=", "%x", "@x",
	"`x", "|", "> x", "? x", "!x", "&a", "*a", "---", "...", "  ", "a\\u0041", "</script>",
};

/* map[key] compared as text: yt_get parses the key as YAML, which "#x" or "a: b" defeat. */
static struct fy_node *k_lookup(struct fy_node *map, const char *key)
{
	void *it = NULL;
	struct fy_node_pair *p;
	while (yt_is_map(map) && (p = fy_node_mapping_iterate(map, &it))) {
		size_t len;
		const char *k = yt_scalar(fy_node_pair_key(p), &len);
		if (k && len == strlen(key) && !memcmp(k, key, len))
			return fy_node_pair_value(p);
	}
	return NULL;
}

TEST(json_round_trips_hostile_strings)
{
	struct fy_document *d = fy_document_create(NULL);
	struct fy_node *map = yt_map(d), *seq = yt_seq(d);
	fy_document_set_root(d, map);
	size_t n = sizeof(hostile) / sizeof(hostile[0]);
	for (size_t i = 0; i < n; i++) {
		fy_node_mapping_append(map, yt_str(d, hostile[i]), yt_str(d, hostile[i]));
		yt_append(seq, yt_str(d, hostile[i]));
	}
	fy_node_mapping_append(map, yt_str(d, "\x02list"), seq);
	yt_append(seq, yt_strn(d, "nul\0byte", 8));
	char *json = cr_json_string(map);
	CHECK(json && !strchr(json, '\n'));
	struct fy_document *back = json ? cr_json_parse(json, strlen(json), "test") : NULL;
	struct fy_node *root = back ? fy_document_root(back) : NULL;
	CHECK(root != NULL);
	struct fy_node *list = k_lookup(root, "\x02list");
	for (size_t i = 0; root && i < n; i++) {
		char *v = yt_strdup(k_lookup(root, hostile[i]));
		CHECK_STR(v, hostile[i]);
		free(v);
		struct fy_node *item = fy_node_sequence_get_by_index(list, (int)i);
		CHECK(fy_node_get_style(item) == FYNS_DOUBLE_QUOTED);
		v = yt_strdup(item);
		CHECK_STR(v, hostile[i]);
		free(v);
	}
	size_t len = 0;
	const char *nul = yt_scalar(fy_node_sequence_get_by_index(list, (int)n), &len);
	CHECK(nul && len == 8 && !memcmp(nul, "nul\0byte", 8));
	free(json);
	fy_document_destroy(back);
	fy_document_destroy(d);
}

TEST(json_types_of_scalars)
{
	struct fy_document *d = fy_document_create(NULL);
	struct fy_node *map = yt_map(d);
	fy_document_set_root(d, map);
	yt_set(map, "i", yt_int(d, -42));
	yt_set(map, "b", yt_bool(d, true));
	yt_set_str(map, "s", "42");
	yt_set(map, "e", yt_map(d));
	yt_set(map, "l", yt_seq(d));
	char *json = cr_json_string(map);
	CHECK_STR(json, "{\"i\": -42, \"b\": true, \"s\": \"42\", \"e\": {}, \"l\": []}");
	free(json);
	fy_document_destroy(d);

	/* Plain YAML scalars: YAML 1.2 nulls and booleans, JSON numbers; the rest strings.
	 * Keys are always strings. */
	const char *yaml = "a: 1\nb: yes\nc: ~\nd:\ne: 0x1F\nf: -1.5e3\ng: NULL\nh: True\n"
			   "i: 01\nj: .5\nk: 1.\nl: '1'\nm: !!str 2\nn: [0, -0, 1e, 2E+2]\n"
			   "o: -x\n1: x\n";
	d = yt_parse(yaml, strlen(yaml), "t", 0);
	json = cr_json_string(fy_document_root(d));
	CHECK_STR(json, "{\"a\": 1, \"b\": \"yes\", \"c\": null, \"d\": null, \"e\": \"0x1F\", "
			"\"f\": -1.5e3, \"g\": null, \"h\": true, \"i\": \"01\", \"j\": \".5\", "
			"\"k\": \"1.\", \"l\": \"1\", \"m\": \"2\", "
			"\"n\": [0, -0, \"1e\", 2E+2], \"o\": \"-x\", \"1\": \"x\"}");
	free(json);
	fy_document_destroy(d);
}

TEST(json_parse_and_refusals)
{
	cr_log_mute(true);
	CHECK(cr_json_parse("{\"a\":", 5, "t") == NULL);
	CHECK(cr_json_parse("{a: 1}", 6, "t") == NULL);
	CHECK(cr_json_parse("", 0, "t") == NULL);
	CHECK(cr_json_parse("{\"a\":1,\"a\":2}", 13, "t") == NULL);
	const char *complex = "? [a]\n: b\n";
	struct fy_document *d = yt_parse(complex, strlen(complex), "t", 0);
	struct cr_buf out = { 0 };
	CHECK(cr_json_emit(fy_document_root(d), &out) == -1 && out.len == 0);
	cr_log_mute(false);
	fy_document_destroy(d);
	cr_buf_free(&out);

	const char *js = "{\"s\":\"\\u00e9\\ud83d\\ude00\\n\",\"n\":[1,2.5,null,false]}";
	d = cr_json_parse(js, strlen(js), "t");
	char *s = yt_strdup(yt_get(fy_document_root(d), "s"));
	CHECK_STR(s, "é😀\n");
	free(s);
	char *again = cr_json_string(fy_document_root(d));
	CHECK_STR(again, "{\"s\": \"é😀\\n\", \"n\": [1, 2.5, null, false]}");
	free(again);
	fy_document_destroy(d);
	CHECK(cr_json_emit(NULL, &out) == 0);
	CHECK_STR(out.data, "null");
	cr_buf_free(&out);
}

TEST(json_escapes_and_utf8)
{
	struct fy_document *d = fy_document_create(NULL);
	struct fy_node *seq = yt_seq(d);
	fy_document_set_root(d, seq);
	static const char ctl[] = "\"\\/\b\f\n\r\t\x01\x1f\x7f\0";
	yt_append(seq, yt_strn(d, ctl, sizeof(ctl) - 1));
	yt_append(seq, yt_str(d, "\xc3\xa9 \xe2\x80\xa8 \xf0\x9f\x98\x80"));
	char *json = cr_json_string(seq);
	CHECK_STR(json, "[\"\\\"\\\\/\\u0008\\u000c\\n\\r\\t\\u0001\\u001f\x7f\\u0000\", "
			"\"\xc3\xa9 \xe2\x80\xa8 \xf0\x9f\x98\x80\"]");
	free(json);
	fy_document_destroy(d);

	/* Bytes that are not UTF-8 have no JSON form: refused, nothing written. */
	static const char *const bad[] = { "\xff", "a\xc3", "\xc0\xaf", "\xed\xa0\x80",
					   "\xf4\x90\x80\x80", "\xe2\x28\xa1" };
	cr_log_mute(true);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		d = fy_document_create(NULL);
		struct fy_node *m = yt_map(d);
		fy_document_set_root(d, m);
		/* built without parsing: yt_str cannot even hold such bytes */
		yt_set(m, "k", fy_node_create_scalar_copy(d, bad[i], strlen(bad[i])));
		struct cr_buf out = { 0 };
		cr_buf_adds(&out, "keep");
		CHECK(cr_json_emit(m, &out) == -1);
		CHECK_STR(out.data, "keep");
		cr_buf_free(&out);
		fy_document_destroy(d);
	}
	cr_log_mute(false);
}

/* --- small parsers ------------------------------------------------------------------------ */

TEST(k8s_base64_decode)
{
	struct cr_buf b = { 0 };
	CHECK(cr_base64_decode("aGVsbG8=", 8, &b) == 0 && b.len == 5);
	CHECK(!memcmp(b.data, "hello", 5));
	cr_buf_reset(&b);
	CHECK(cr_base64_decode("aGVs\nbG8h\n", 10, &b) == 0 && b.len == 6);
	cr_buf_reset(&b);
	CHECK(cr_base64_decode("aGVsbA", 6, &b) == 0 && b.len == 4); /* unpadded */
	cr_buf_reset(&b);
	CHECK(cr_base64_decode("", 0, &b) == 0 && b.len == 0);
	CHECK(cr_base64_decode("aGV*", 4, &b) == -1);
	cr_buf_reset(&b);
	CHECK(cr_base64_decode("aGVsbG8=x", 9, &b) == -1);
	cr_buf_reset(&b);
	CHECK(cr_base64_decode("a", 1, &b) == -1);
	cr_buf_free(&b);
}

TEST(k8s_rfc3339)
{
	time_t t;
	CHECK(cr_rfc3339("1970-01-01T00:00:00Z", &t) == 0 && t == 0);
	CHECK(cr_rfc3339("2024-05-01T10:00:00Z", &t) == 0 && t == 1714557600);
	CHECK(cr_rfc3339("2024-05-01T12:00:00.123456+02:00", &t) == 0 && t == 1714557600);
	CHECK(cr_rfc3339("2024-05-01t09:30:00-00:30", &t) == 0 && t == 1714557600);
	CHECK(cr_rfc3339("2024-05-01T10:00:00", &t) == -1);
	CHECK(cr_rfc3339("2024-13-01T10:00:00Z", &t) == -1);
	CHECK(cr_rfc3339("2024-05-01T10:00:00Zjunk", &t) == -1);
	CHECK(cr_rfc3339("soon", &t) == -1);
}

TEST(k8s_error_lines)
{
	const char *st = "{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"status\":\"Failure\","
			 "\"message\":\"Deployment.apps \\\"y\\\" is invalid: spec.replicas: "
			 "Invalid value: -1\",\"reason\":\"Invalid\",\"code\":422}";
	struct fy_document *d = cr_json_parse(st, strlen(st), "t");
	char *line = cr_k8s_error_line("PATCH", "/apis/apps/v1/namespaces/x/deployments/y", 422, d);
	CHECK_STR(line, "kubernetes: PATCH /apis/apps/v1/namespaces/x/deployments/y: 422 Invalid: "
			"Deployment.apps \"y\" is invalid: spec.replicas: Invalid value: -1");
	free(line);
	fy_document_destroy(d);
	line = cr_k8s_error_line("GET", "/api/v1/pods", 503, NULL);
	CHECK_STR(line, "kubernetes: GET /api/v1/pods: 503 Service Unavailable");
	free(line);
	line = cr_k8s_error_line("GET", "/x", 418, NULL);
	CHECK_STR(line, "kubernetes: GET /x: 418");
	free(line);
}

/* --- kubeconfig --------------------------------------------------------------------------- */

static const char *kubeconfig_a =
	"apiVersion: v1\n"
	"kind: Config\n"
	"current-context: a\n"
	"contexts:\n"
	"- name: a\n"
	"  context: {cluster: c1, user: u1, namespace: ns-a}\n"
	"clusters:\n"
	"- name: c1\n"
	"  cluster:\n"
	"    server: https://a.example:6443/\n"
	"    certificate-authority: pki/ca.pem\n"
	"users:\n"
	"- name: u1\n"
	"  user:\n"
	"    client-certificate: pki/client.crt\n"
	"    client-key-data: LS0tLS1CRUdJTiBLRVktLS0tLQ==\n"
	"    tokenFile: secret/token\n";

static const char *kubeconfig_b =
	"current-context: b\n"
	"contexts:\n"
	"- name: a\n"
	"  context: {cluster: c2, user: u2, namespace: ignored}\n"
	"- name: b\n"
	"  context: {cluster: c2, user: u2}\n"
	"- name: nouser\n"
	"  context: {cluster: c1}\n"
	"- name: ghost\n"
	"  context: {cluster: nowhere, user: u2}\n"
	"- name: legacy\n"
	"  context: {cluster: c2, user: old}\n"
	"clusters:\n"
	"- name: c1\n"
	"  cluster: {server: 'https://ignored'}\n"
	"- name: c2\n"
	"  cluster:\n"
	"    server: https://[::1]:8443\n"
	"    certificate-authority-data: Q0EgUEVN\n"
	"    certificate-authority: /ignored/when/data/is/there\n"
	"    insecure-skip-tls-verify: true\n"
	"    proxy-url: http://proxy:3128\n"
	"users:\n"
	"- name: u1\n"
	"  user: {token: ignored}\n"
	"- name: u2\n"
	"  user:\n"
	"    token: tok-b\n"
	"    exec:\n"
	"      apiVersion: client.authentication.k8s.io/v1beta1\n"
	"      command: ./bin/plugin\n"
	"      args: [get-token, --cluster, \"#1\"]\n"
	"      env:\n"
	"      - {name: PLUGIN_MODE, value: test}\n"
	"      provideClusterInfo: true\n"
	"      installHint: install the plugin\n"
	"- name: old\n"
	"  user:\n"
	"    auth-provider: {name: gcp}\n";

TEST(kubeconfig_merges_files_first_wins)
{
	char *dir = unit_tmpdir("cr-k8s");
	char *a = k_put(dir, "one/config", kubeconfig_a, 0600);
	char *b = k_put(dir, "two/config", kubeconfig_b, 0600);
	char *paths = xasprintf("%s:%s/missing::%s", a, dir, b);
	struct cr_kcfg c;
	CHECK(cr_kcfg_from_files(paths, NULL, NULL, &c) == 0);
	char *want = xasprintf("%s, context a", a);
	CHECK_STR(c.origin, want);
	free(want);
	CHECK_STR(c.server, "https://a.example:6443"); /* trailing '/' dropped */
	CHECK_STR(c.namespace, "ns-a");
	want = xasprintf("%s/one/pki/ca.pem", dir);
	CHECK_STR(c.ca_file, want);
	free(want);
	want = xasprintf("%s/one/pki/client.crt", dir);
	CHECK_STR(c.cert_file, want);
	free(want);
	want = xasprintf("%s/one/secret/token", dir);
	CHECK_STR(c.token_file, want);
	free(want);
	CHECK_STR(c.key_data.data, "-----BEGIN KEY-----");
	CHECK(!c.token && !c.exec && !c.insecure && !c.ca_data.len);
	cr_kcfg_free(&c);

	/* The other order: b's current-context, and b's cluster c1 shadows nothing of a's. */
	free(paths);
	paths = xasprintf("%s:%s", b, a);
	CHECK(cr_kcfg_from_files(paths, NULL, "override", &c) == 0);
	CHECK_STR(c.server, "https://[::1]:8443");
	CHECK_STR(c.namespace, "override");
	CHECK_STR(c.ca_data.data, "CA PEM");
	CHECK(c.ca_file == NULL && c.insecure);
	CHECK_STR(c.proxy, "http://proxy:3128");
	CHECK_STR(c.token, "tok-b");
	CHECK(c.exec != NULL);
	if (c.exec) {
		want = xasprintf("%s/two/./bin/plugin", dir);
		CHECK_STR(c.exec->command, want);
		free(want);
		CHECK_STR(c.exec->api_version, "client.authentication.k8s.io/v1beta1");
		CHECK(c.exec->args.n == 3);
		CHECK_STR(c.exec->args.items[2], "#1");
		CHECK(c.exec->env.n == 1);
		CHECK_STR(c.exec->env.items[0], "PLUGIN_MODE=test");
		CHECK(c.exec->provide_cluster_info);
		CHECK_STR(c.exec->install_hint, "install the plugin");
	}
	struct cr_kcfg copy;
	cr_kcfg_copy(&copy, &c);
	CHECK_STR(copy.ca_data.data, "CA PEM");
	CHECK(copy.exec && copy.exec->args.n == 3);
	cr_kcfg_free(&copy);
	cr_kcfg_free(&c);

	/* A context named explicitly; the server of the first c1 (file a). */
	CHECK(cr_kcfg_from_files(paths, "nouser", NULL, &c) == 0);
	CHECK_STR(c.server, "https://ignored");
	CHECK_STR(c.namespace, "default");
	CHECK(!c.token && !c.token_file && !c.exec);
	cr_kcfg_free(&c);
	free(paths);
	free(a);
	free(b);
	unit_drop_dir(dir);
	cr_secrets_clear();
}

TEST(kubeconfig_errors)
{
	char *dir = unit_tmpdir("cr-k8s");
	char *b = k_put(dir, "b", kubeconfig_b, 0600);
	char *bad = k_put(dir, "bad", "clusters: [\n", 0600);
	char *empty = k_put(dir, "empty", "\n", 0600);
	char *nocur = k_put(dir, "nocur", "contexts: []\n", 0600);
	struct cr_kcfg c;
	cr_log_mute(true);
	CHECK(cr_kcfg_from_files(b, "nope", NULL, &c) == -1);
	CHECK(cr_kcfg_from_files(b, "ghost", NULL, &c) == -1);
	CHECK(cr_kcfg_from_files(b, "legacy", NULL, &c) == -1);
	CHECK(cr_kcfg_from_files(bad, NULL, NULL, &c) == -1);
	CHECK(cr_kcfg_from_files(nocur, NULL, NULL, &c) == -1);
	char *missing = xasprintf("%s/missing", dir);
	CHECK(cr_kcfg_from_files(missing, NULL, NULL, &c) == -1); /* named alone: must exist */
	char *none = xasprintf("%s:%s", missing, missing);
	CHECK(cr_kcfg_from_files(none, NULL, NULL, &c) == -1);
	cr_log_mute(false);
	char *with_empty = xasprintf("%s:%s", empty, b); /* an empty file is no error */
	CHECK(cr_kcfg_from_files(with_empty, NULL, NULL, &c) == 0);
	CHECK_STR(c.token, "tok-b");
	cr_kcfg_free(&c);
	free(with_empty);
	free(missing);
	free(none);
	free(b);
	free(bad);
	free(empty);
	free(nocur);
	unit_drop_dir(dir);
	cr_secrets_clear();
}

TEST(kubeconfig_in_cluster_and_selection)
{
	char *dir = unit_tmpdir("cr-k8s");
	free(k_put(dir, "sa/token", "tok-in-cluster\n", 0600));
	free(k_put(dir, "sa/ca.crt", "PEM", 0600));
	free(k_put(dir, "sa/namespace", "apps\n", 0600));
	char *kc = k_put(dir, "kubeconfig", kubeconfig_b, 0600);
	char *sa = xasprintf("%s/sa", dir);
	struct k_env env[] = {
		k_env_set("KUBERNETES_SERVICE_HOST", "10.0.0.1"),
		k_env_set("KUBERNETES_SERVICE_PORT", "443"),
		k_env_set("CHARTREUSE_SERVICEACCOUNT_DIR", sa),
		k_env_set("KUBECONFIG", NULL),
		k_env_set("HOME", dir),
	};
	struct cr_kcfg c;
	CHECK(cr_kcfg_load(NULL, &c) == 0);
	CHECK_STR(c.origin, "in-cluster");
	CHECK_STR(c.server, "https://10.0.0.1:443");
	CHECK_STR(c.namespace, "apps");
	char *want = xasprintf("%s/token", sa);
	CHECK_STR(c.token_file, want);
	free(want);
	cr_kcfg_free(&c);

	struct cr_k8s_options o = { .namespace = "other" };
	setenv("KUBERNETES_SERVICE_HOST", "fd00::1", 1);
	CHECK(cr_kcfg_load(&o, &c) == 0);
	CHECK_STR(c.server, "https://[fd00::1]:443");
	CHECK_STR(c.namespace, "other");
	cr_kcfg_free(&c);

	/* KUBECONFIG wins over in-cluster; --kube-context means a kubeconfig too. */
	setenv("KUBECONFIG", kc, 1);
	CHECK(cr_kcfg_load(NULL, &c) == 0);
	CHECK_STR(c.token, "tok-b");
	cr_kcfg_free(&c);
	unsetenv("KUBECONFIG");
	o = (struct cr_k8s_options){ .context = "b" };
	cr_log_mute(true);
	CHECK(cr_kcfg_load(&o, &c) == -1); /* $HOME/.kube/config does not exist */
	cr_log_mute(false);
	o = (struct cr_k8s_options){ .kubeconfig = kc, .context = "nouser" };
	CHECK(cr_kcfg_load(&o, &c) == 0);
	CHECK_STR(c.server, "https://ignored");
	cr_kcfg_free(&c);

	unlink(want = xasprintf("%s/token", sa));
	free(want);
	cr_log_mute(true);
	CHECK(cr_kcfg_load(NULL, &c) == -1); /* no token file */
	cr_log_mute(false);
	for (size_t i = 0; i < sizeof(env) / sizeof(env[0]); i++)
		k_env_restore(&env[i]);
	free(kc);
	free(sa);
	unit_drop_dir(dir);
	cr_secrets_clear();
}

/* --- exec credentials ---------------------------------------------------------------------- */

TEST(exec_credential_parse)
{
	const char *v1 = "client.authentication.k8s.io/v1";
	const char *ok = "{\"apiVersion\":\"client.authentication.k8s.io/v1\",\"kind\":"
			 "\"ExecCredential\",\"status\":{\"token\":\"t0k\","
			 "\"expirationTimestamp\":\"2030-01-01T00:00:00Z\"}}";
	struct cr_exec_cred c;
	CHECK(cr_exec_parse(ok, strlen(ok), v1, "p", &c) == 0);
	CHECK_STR(c.token, "t0k");
	CHECK(c.expiry == 1893456000);
	CHECK(c.cert.len == 0);
	cr_exec_cred_free(&c);

	const char *cert = "{\"apiVersion\":\"client.authentication.k8s.io/v1beta1\",\"kind\":"
			   "\"ExecCredential\",\"status\":{\"clientCertificateData\":\"CERT\","
			   "\"clientKeyData\":\"KEY\"}}";
	const char *beta = "client.authentication.k8s.io/v1beta1";
	CHECK(cr_exec_parse(cert, strlen(cert), beta, "p", &c) == 0);
	CHECK(!c.token && c.expiry == 0);
	CHECK_STR(c.cert.data, "CERT");
	CHECK_STR(c.key.data, "KEY");
	cr_exec_cred_free(&c);

	static const char *const bad[] = {
		"not json",
		"{\"apiVersion\":\"client.authentication.k8s.io/v1beta1\","
		"\"kind\":\"ExecCredential\",\"status\":{\"token\":\"t\"}}",
		"{\"apiVersion\":\"client.authentication.k8s.io/v1\",\"kind\":\"Pod\"}",
		"{\"apiVersion\":\"client.authentication.k8s.io/v1\",\"kind\":\"ExecCredential\"}",
		"{\"apiVersion\":\"client.authentication.k8s.io/v1\",\"kind\":\"ExecCredential\","
		"\"status\":{}}",
		"{\"apiVersion\":\"client.authentication.k8s.io/v1\",\"kind\":\"ExecCredential\","
		"\"status\":{\"clientCertificateData\":\"C\"}}",
		"{\"apiVersion\":\"client.authentication.k8s.io/v1\",\"kind\":\"ExecCredential\","
		"\"status\":{\"token\":\"t\",\"expirationTimestamp\":\"tomorrow\"}}",
		"",
	};
	cr_log_mute(true);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int rc = cr_exec_parse(bad[i], strlen(bad[i]), v1, "p", &c);
		if (rc != -1)
			fprintf(stderr, "accepted bad ExecCredential %zu\n", i);
		CHECK(rc == -1 && !c.token);
	}
	cr_log_mute(false);
	cr_secrets_clear();
}

static const char *plugin_script =
	"#!/bin/sh\n"
	"printf '%s' \"$KUBERNETES_EXEC_INFO\" > \"$(dirname \"$0\")/info.json\"\n"
	"printf '{\"apiVersion\":\"client.authentication.k8s.io/v1beta1\",\"kind\":"
	"\"ExecCredential\",\"status\":{\"token\":\"%s-%s-%s\"}}' \"$1\" \"$3\" \"$PLUGIN_MODE\"\n";

TEST(exec_plugin_runs_by_argv_with_exec_info)
{
	char *dir = unit_tmpdir("cr-k8s");
	free(k_put(dir, "two/bin/plugin", plugin_script, 0700));
	char *b = k_put(dir, "two/config", kubeconfig_b, 0600);
	struct cr_kcfg c;
	CHECK(cr_kcfg_from_files(b, "b", NULL, &c) == 0);
	struct cr_exec_cred cred = { 0 };
	CHECK(c.exec && cr_exec_run(&c, &cred) == 0);
	CHECK_STR(cred.token, "get-token-#1-test");
	char *info_path = xasprintf("%s/two/bin/info.json", dir);
	struct cr_buf info = { 0 };
	CHECK(cr_read_file(info_path, &info) == 0);
	struct fy_document *d = cr_json_parse(info.data, info.len, "info");
	struct fy_node *root = d ? fy_document_root(d) : NULL;
	char *v = yt_strdup(yt_get(root, "apiVersion"));
	CHECK_STR(v, "client.authentication.k8s.io/v1beta1");
	free(v);
	v = yt_strdup(yt_path(root, "spec/interactive"));
	CHECK_STR(v, "false");
	free(v);
	v = yt_strdup(yt_path(root, "spec/cluster/server"));
	CHECK_STR(v, "https://[::1]:8443");
	free(v);
	v = yt_strdup(yt_path(root, "spec/cluster/certificate-authority-data"));
	CHECK_STR(v, "Q0EgUEVN");
	free(v);
	fy_document_destroy(d);
	cr_buf_free(&info);
	free(info_path);
	cr_exec_cred_free(&cred);

	/* A plugin that fails, or is not there. */
	free(k_put(dir, "two/bin/plugin", "#!/bin/sh\necho nope >&2\nexit 3\n", 0700));
	cr_log_mute(true);
	CHECK(cr_exec_run(&c, &cred) == -1);
	free(c.exec->command);
	c.exec->command = xasprintf("%s/two/bin/absent", dir);
	CHECK(cr_exec_run(&c, &cred) == -1);
	cr_log_mute(false);
	cr_kcfg_free(&c);
	free(b);
	unit_drop_dir(dir);
	cr_secrets_clear();
}

/* Names go into paths only when the API server could hold them: "../x" never gets there. */
TEST(k8s_path_refuses_what_no_object_can_be_named)
{
	char *p = cr_k8s_path("/apis/apps/v1", "team-a", "deployments", "web.v2", "scale");
	CHECK_STR(p, "/apis/apps/v1/namespaces/team-a/deployments/web.v2/scale");
	free(p);
	p = cr_k8s_path("/api/v1", "team-a", "pods", NULL, "ignored");
	CHECK_STR(p, "/api/v1/namespaces/team-a/pods");
	free(p);
	p = cr_k8s_path("/apis/apiextensions.k8s.io/v1", NULL, "customresourcedefinitions",
			"expecteddeploymentscales.wiremind.io", NULL);
	CHECK_STR(p, "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/"
		     "expecteddeploymentscales.wiremind.io");
	free(p);
	cr_log_mute(true);
	static const char *const bad_names[] = { "../../../api/v1/namespaces/default/secrets",
						 "a/b", "..", "web?watch=1", "web%2F", "Web", "",
						 NULL };
	for (const char *const *n = bad_names; *n; n++)
		CHECK(!cr_k8s_path("/apis/apps/v1", "default", "deployments", *n, NULL));
	static const char *const bad_ns[] = { "default/..", "a.b", "..", "", "kube system",
					      NULL };
	for (const char *const *n = bad_ns; *n; n++)
		CHECK(!cr_k8s_path("/api/v1", *n, "pods", NULL, NULL));
	cr_log_mute(false);
}

/* --- k8s_cli: requests for tests/test_k8s_client.py --------------------------------------- */

struct cli_watch {
	int stop_after, seen;
};

/* d is read after rc was computed: the call that fills it is the rc argument. */
static void cli_print_doc(const char *label, long rc, struct fy_document *const *d)
{
	char *json = *d ? cr_json_string(fy_document_root(*d)) : NULL;
	printf("%s=%ld %s\n", label, rc, json ? json : "-");
	free(json);
}

static int cli_event(const char *type, struct fy_node *object, void *user)
{
	struct cli_watch *w = user;
	char *json = cr_json_string(object);
	printf("event %s %s\n", type, json ? json : "-");
	fflush(stdout);
	free(json);
	return ++w->seen >= w->stop_after && w->stop_after > 0;
}

struct cli_label {
	const char *key, *value;
};

/* Sets metadata.labels[key] = value; nothing to do when it is already so. */
static int cli_set_label(struct fy_node *obj, void *user)
{
	struct cli_label *l = user;
	struct fy_node *labels = yt_child_map(yt_child_map(obj, "metadata"), "labels");
	char *cur = yt_strdup(yt_get(labels, l->key));
	bool same = cr_streq(cur, l->value);
	free(cur);
	if (same)
		return 1;
	yt_set_str(labels, l->key, l->value);
	return 0;
}

static struct fy_document *cli_body(const char *json)
{
	return json ? cr_json_parse(json, strlen(json), "CR_K8S_TEST_OPS body") : NULL;
}

/* The next space-separated word of *rest (NULL when none); *rest moves past it. */
static char *cli_word(char **rest)
{
	char *s = *rest;
	while (*s == ' ')
		s++;
	if (!*s)
		return NULL;
	char *sp = strchr(s, ' ');
	if (sp)
		*sp++ = '\0';
	*rest = sp ? sp : s + strlen(s);
	return s;
}

/* What is left of the line, NULL when nothing. */
static char *cli_rest(char *rest)
{
	while (*rest == ' ')
		rest++;
	return *rest ? rest : NULL;
}

static int cli_patch_type(const char *verb, enum cr_k8s_patch *t, unsigned *flags)
{
	*flags = (strstr(verb, "-idem") ? CR_K8S_IDEMPOTENT : 0) |
		 (strstr(verb, "-guard") ? CR_K8S_CONFLICT_OK : 0) |
		 (strstr(verb, "-absent") ? CR_K8S_ABSENT_OK : 0);
	if (!strncmp(verb, "merge", 5))
		*t = CR_K8S_PATCH_MERGE;
	else if (!strncmp(verb, "strategic", 9))
		*t = CR_K8S_PATCH_STRATEGIC;
	else if (!strncmp(verb, "jsonpatch", 9))
		*t = CR_K8S_PATCH_JSON;
	else
		return -1;
	return 0;
}

static void cli_op(struct cr_k8s **kp, char *line)
{
	struct cr_k8s *k = *kp;
	char *verb = cli_word(&line), *path = cli_word(&line);
	if (!verb)
		return;
	struct fy_document *out = NULL, *body = NULL;
	enum cr_k8s_patch pt;
	unsigned flags;
	if (!strcmp(verb, "get")) {
		cli_print_doc("get", cr_k8s_get(k, path, &out), &out);
	} else if (!strcmp(verb, "list")) {
		cli_print_doc("list", cr_k8s_list(k, path, cli_rest(line), 0, &out), &out);
	} else if (!strcmp(verb, "delete")) {
		cli_print_doc("delete", cr_k8s_delete(k, path, NULL, &out), &out);
	} else if (!strcmp(verb, "post") || !strcmp(verb, "put")) {
		body = cli_body(cli_rest(line));
		struct fy_node *obj = body ? fy_document_root(body) : NULL;
		cli_print_doc(verb, verb[1] == 'o' ? cr_k8s_post(k, path, obj, 0, &out)
						   : cr_k8s_put(k, path, obj, &out),
			      &out);
	} else if (!cli_patch_type(verb, &pt, &flags)) {
		body = cli_body(cli_rest(line));
		cli_print_doc("patch",
			      cr_k8s_patch(k, path, pt, body ? fy_document_root(body) : NULL, flags,
					   &out),
			      &out);
	} else if (!strcmp(verb, "request")) {
		/* request METHOD PATH [BODY]: the raw call, HTTP errors not reported */
		char *p = cli_word(&line);
		long st = cr_k8s_request(k, path, p, "application/json", cli_rest(line), 0, &out);
		cli_print_doc("status", st, &out);
	} else if (!strcmp(verb, "text")) {
		/* text PATH: a GET whose answer is text; prints text=STATUS "BODY" */
		struct cr_buf b = { 0 };
		cr_k8s_get_text(k, path, &b);
		long st = cr_k8s_last_status(k);
		struct fy_document *d = fy_document_create(NULL);
		fy_document_set_root(d, yt_str(d, b.data ? b.data : ""));
		char *json = cr_json_string(fy_document_root(d));
		printf("text=%ld %s\n", st, json ? json : "-");
		free(json);
		fy_document_destroy(d);
		cr_buf_free(&b);
	} else if (!strcmp(verb, "update")) {
		/* update PATH LABEL VALUE */
		struct cli_label l;
		l.key = cli_word(&line);
		l.value = cli_word(&line);
		cli_print_doc("update", cr_k8s_update(k, path, cli_set_label, &l, &out), &out);
	} else if (!strcmp(verb, "watch")) {
		/* watch PATH TIMEOUT_MS STOP_AFTER */
		char *timeout = cli_word(&line), *stop = cli_word(&line);
		struct cli_watch cw = { stop ? atoi(stop) : 0, 0 };
		int rc = cr_k8s_watch(k, path, cli_event, &cw, timeout ? atol(timeout) : 0);
		printf("watch=%d\n", rc);
	} else if (!strcmp(verb, "sleep")) {
		long ms = path ? atol(path) : 0;
		struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
		nanosleep(&ts, NULL);
	} else if (!strcmp(verb, "info")) {
		printf("server=%s\nnamespace=%s\norigin=%s\n", cr_k8s_server(k),
		       cr_k8s_namespace(k), cr_k8s_origin(k));
	} else if (!strcmp(verb, "dup")) {
		struct cr_k8s *d = cr_k8s_dup(k);
		if (d) {
			cr_k8s_free(k);
			*kp = d;
		}
		printf("dup=%d\n", d ? 0 : -1);
	} else {
		fprintf(stderr, "k8s_cli: unknown op %s\n", verb);
		unit_failures++;
	}
	fflush(stdout);
	fy_document_destroy(out);
	fy_document_destroy(body);
}

/* emit: JSON from CR_K8S_TEST_JSON parsed and written again (compared with Python's json). */
static void cli_emit(const char *json)
{
	struct fy_document *d = cr_json_parse(json, strlen(json), "CR_K8S_TEST_JSON");
	char *s = d ? cr_json_string(fy_document_root(d)) : NULL;
	printf("%s\n", s ? s : "-");
	free(s);
	fy_document_destroy(d);
}

static long cli_env_long(const char *name)
{
	const char *v = getenv(name);
	return v ? atol(v) : 0;
}

TEST(k8s_cli)
{
	if (getenv("CR_K8S_TEST_JSON"))
		cli_emit(getenv("CR_K8S_TEST_JSON"));
	char *ops = getenv("CR_K8S_TEST_OPS") ? xstrdup(getenv("CR_K8S_TEST_OPS")) : NULL;
	if (!ops)
		return;
	struct cr_k8s_options o = {
		.kubeconfig = getenv("CR_K8S_TEST_KUBECONFIG"),
		.context = getenv("CR_K8S_TEST_CONTEXT"),
		.namespace = getenv("CR_K8S_TEST_NAMESPACE"),
		.tries = (int)cli_env_long("CR_K8S_TEST_TRIES"),
		.retry_base_ms = cli_env_long("CR_K8S_TEST_BASE_MS"),
		.retry_cap_ms = cli_env_long("CR_K8S_TEST_CAP_MS"),
		.timeout_ms = cli_env_long("CR_K8S_TEST_TIMEOUT_MS"),
	};
	struct cr_k8s *k = cr_k8s_new(&o);
	printf("client=%d\n", k ? 0 : -1);
	char *save = NULL;
	for (char *line = strtok_r(ops, "\n", &save); k && line; line = strtok_r(NULL, "\n", &save))
		cli_op(&k, line);
	cr_k8s_free(k);
	free(ops);
	cr_secrets_clear();
}
