#include "config.h"
#include "log.h"
#include "unit.h"
#include "util.h"
#include "ytree.h"

#include <stdlib.h>

static struct fy_document *parse(const char *text)
{
	return yt_parse(text, strlen(text), "test", 0);
}

static int validate(const char *text)
{
	struct fy_document *d = parse(text);
	if (!d)
		return -2;
	int rc = cr_config_validate(fy_document_root(d), "test", 0);
	fy_document_destroy(d);
	return rc;
}

TEST(validate_accepts_a_complete_config)
{
	CHECK(validate("apiVersion: chartreuse.wiremind.io/v1\nkind: ChartreuseConfig\n"
		       "release: r\nupgradeBeforeDeployment: true\nupgradeJobWeight: 3\n"
		       "databases:\n- host: h\n  port: 5433\n  additionalParameters: -x a=b\n"
		       "tolerations: []\nresources: {limits: {cpu: 1}}\n") == 0);
}

TEST(validate_rejects_unknown_keys_and_wrong_types)
{
	CHECK(validate("relese: r\n") == -1);
	CHECK(validate("stopPods: maybe\n") == -1);
	CHECK(validate("databases:\n- port: abc\n") == -1);
	CHECK(validate("databases:\n- host: [a]\n") == -1);
	CHECK(validate("deploymentMethod: flux\n") == -1);
	CHECK(validate("kind: Deployment\n") == -1);
	CHECK(validate("tolerations: {}\n") == -1);
}

TEST(set_converts_by_schema_and_builds_lists)
{
	struct fy_document *d = parse("release: r\n");
	struct fy_node *root = fy_document_root(d);
	CHECK(cr_config_set(root, "upgradeBeforeDeployment=true") == 0);
	CHECK(cr_config_set(root, "databases[1].host=db2") == 0);
	CHECK(cr_config_set(root, "databases.0.port=6543") == 0);
	CHECK(cr_config_set(root, "podAnnotations.prometheus\\.io/scrape=true") == 0);
	CHECK(cr_config_set(root, "stopPods=perhaps") == -1);
	CHECK(cr_config_set(root, "nosuch=1") == -1);
	CHECK(cr_config_set(root, "databases.host=x") == -1);
	CHECK(cr_config_validate(root, "set", 0) == 0);
	struct cr_buf out = { 0 };
	yt_emit(root, &out);
	CHECK_STR(out.data, "release: r\nupgradeBeforeDeployment: true\ndatabases:\n- port: 6543\n"
			    "- host: db2\npodAnnotations:\n  prometheus.io/scrape: 'true'\n");
	cr_buf_free(&out);
	fy_document_destroy(d);
}

TEST(load_applies_defaults_and_cross_checks)
{
	struct cr_config cfg;
	struct fy_document *d = parse("release: r\nnamespace: n\nimage: {repository: app}\n"
				      "databases:\n- host: h\n  user: u\n  database: d\n"
				      "  password: pw\n  additionalParameters: -x 'a b' -x c\n");
	CHECK(cr_config_load(&cfg, d, "test") == 0);
	CHECK(cr_config_check_for_render(&cfg, "test") == 0);
	CHECK(cfg.stop_pods && cfg.restore_pods && !cfg.upgrade_before_deployment);
	CHECK_STR(cfg.upgrade_job_weight, "1");
	CHECK_STR(cfg.databases[0].name, "main");
	CHECK_STR(cfg.databases[0].alembic_directory, "/app/alembic");
	CHECK(cfg.databases[0].port == 5432);
	CHECK(cfg.databases[0].additional_parameters.n == 4);
	CHECK_STR(cfg.databases[0].additional_parameters.items[1], "a b");
	CHECK_STR(cfg.chartreuse_image.tag, CHARTREUSE_VERSION);
	cr_config_free(&cfg);
	cr_secrets_clear();

	d = parse("release: r\nnamespace: n\nimage: {repository: app}\n"
		  "databases:\n- url: postgresql://x\n  password: pw\n");
	CHECK(cr_config_load(&cfg, d, "test") == -1);
	cr_config_free(&cfg);
	d = parse("namespace: n\nimage: {repository: app}\ndatabases:\n- url: postgresql://x\n");
	CHECK(cr_config_load(&cfg, d, "test") == 0);
	CHECK(cr_config_check_for_render(&cfg, "test") == -1); /* no release */
	cr_config_free(&cfg);
	d = parse("release: r\nnamespace: n\nimage: {repository: app}\n"
		  "databases:\n- {url: a, name: x}\n- {url: b, name: x}\n");
	CHECK(cr_config_load(&cfg, d, "test") == -1);
	cr_config_free(&cfg);
	cr_secrets_clear();
}

/* The tree after applying args (NULL-terminated) to "release: r", as block YAML; NULL when
 * an argument was refused. */
static char *after_sets(const char *const *args, bool as_string)
{
	struct fy_document *d = parse("release: r\n");
	struct fy_node *root = fy_document_root(d);
	char *out = NULL;
	int rc = 0;
	for (; !rc && *args; args++)
		rc = cr_config_set_arg(root, *args, as_string);
	if (!rc) {
		struct cr_buf b = { 0 };
		yt_emit(root, &b);
		out = cr_buf_detach(&b, NULL);
	}
	fy_document_destroy(d);
	return out;
}

#define CHECK_SETS(as_string, expected, ...)                                              \
	do {                                                                              \
		const char *const args_[] = { __VA_ARGS__, NULL };                        \
		char *got_ = after_sets(args_, as_string);                                \
		if (expected)                                                             \
			CHECK_STR(got_, (const char *)(expected));                        \
		else                                                                      \
			CHECK(got_ == NULL);                                              \
		free(got_);                                                               \
	} while (0)

TEST(set_arg_splits_on_commas_and_keeps_escaped_ones)
{
	CHECK_SETS(false, "release: r\nenv:\n- name: FOO\n  value: bar\n",
		   "env[0].name=FOO,env[0].value=bar");
	CHECK_SETS(false, "release: r\nenv:\n- name: L\n  value: a,b\\c\n",
		   "env[0].name=L,env[0].value=a\\,b\\\\c");
	CHECK_SETS(false, "release: r\nstopPods: true\n", "stopPods=true,"); /* trailing ',' */
	CHECK_SETS(false, "release: r\npodAnnotations:\n  a=b: c\n  x.y: '1'\n",
		   "podAnnotations.a\\=b=c,podAnnotations.x\\.y=1");
	CHECK_SETS(false, NULL, "stopPods=true,,waitTimeout=1");
	CHECK_SETS(false, NULL, "stopPods=true,waitTimeout");
	CHECK_SETS(false, NULL, "");
	CHECK_SETS(false, NULL, "=1");
	CHECK_SETS(false, NULL, "affinity..a=1");
	CHECK_SETS(false, NULL, "affinity.a[0]b=1");
	CHECK_SETS(false, NULL, "affinity.a[x]=1");
	CHECK_SETS(false, NULL, "affinity.a[1=1");
	CHECK_SETS(false, NULL, "affinity.a[1001]=1");
	CHECK_SETS(false, NULL, "affinity.a={1,2");
}

TEST(set_arg_types_free_form_values_as_helm_does)
{
	CHECK_SETS(false,
		   "release: r\naffinity:\n  a: 1\n  b: true\n  c: null\n  d: ''\n  e: '01'\n"
		   "  f: -7\n  g: '1.5'\n  h: false\n  i: '9223372036854775808'\n  j: 5\n",
		   "affinity.a=1,affinity.b=TRUE,affinity.c=Null,affinity.d=,affinity.e=01,"
		   "affinity.f=-07,affinity.g=1.5,affinity.h=false,"
		   "affinity.i=9223372036854775808,affinity.j=+5");
	CHECK_SETS(false, "release: r\naffinity:\n  l:\n  - 1\n  - x\n  - ''\n",
		   "affinity.l={1,x,}");
	CHECK_SETS(true,
		   "release: r\naffinity:\n  a: '1'\n  b: 'true'\n  c: 'null'\n  l:\n  - '1'\n",
		   "affinity.a=1,affinity.b=true,affinity.c=null,affinity.l={1}");
	/* Missing list items are nulls, as Helm pads them; a list item that is not a mapping
	 * becomes one when a key is set in it. */
	CHECK_SETS(false, "release: r\naffinity:\n  l:\n  - c: 2\n  - null\n  - b: 1\n",
		   "affinity.l[0]=x,affinity.l[2].b=1,affinity.l[0].c=2");
	CHECK_SETS(false, NULL, "affinity.a=1", "affinity.a.b=2");
	CHECK_SETS(false, NULL, "affinity.a[0]=1", "affinity.a.b=2");
	CHECK_SETS(false, NULL, "affinity.a.b=1", "affinity.a[0]=2");
	CHECK_SETS(false, NULL, "affinity.a[0]=x", "affinity.a[0][1]=2");
	CHECK_SETS(false, "release: r\naffinity:\n  a: 2\n", "affinity.a.b=1,affinity.a=2");
}

TEST(set_arg_keeps_strings_where_kubernetes_wants_them)
{
	CHECK_SETS(false,
		   "release: r\ntolerations:\n- value: 'true'\n  tolerationSeconds: 30\n"
		   "env:\n- name: '1'\n  value: '8080'\npodLabels:\n  v: '1'\n"
		   "nodeSelector:\n  gpu: 'false'\n",
		   "tolerations[0].value=true,tolerations[0].tolerationSeconds=30,env[0].name=1,"
		   "env[0].value=8080,podLabels.v=1,nodeSelector.gpu=false");
	CHECK_SETS(false, NULL, "env[0].value={a,b}");
	/* Deeper than the keys Kubernetes types, Helm's typing applies. */
	CHECK_SETS(false, "release: r\nenv:\n- valueFrom:\n    x: 1\n", "env[0].valueFrom.x=1");
}

TEST(set_arg_gives_schema_keys_their_type)
{
	CHECK_SETS(false, "release: r\nimage:\n  tag: '10'\nwaitTimeout: 30\nstopPods: false\n",
		   "image.tag=10,waitTimeout=30,stopPods=no");
	CHECK_SETS(true, "release: r\nwaitTimeout: 30\nstopPods: true\n",
		   "waitTimeout=30,stopPods=true");
	CHECK_SETS(false, "release: r\nimage:\n  tag: null\ndatabases: null\n",
		   "image.tag=null,databases=null");
	CHECK_SETS(true, "release: r\nimage:\n  tag: 'null'\n", "image.tag=null");
	CHECK_SETS(false,
		   "release: r\ndatabases:\n- additionalParameters:\n  - '-x'\n  - a=b\n"
		   "- additionalParameters:\n  - '-y'\n",
		   "databases[0].additionalParameters={-x,a=b},"
		   "databases.1.additionalParameters[0]=-y");
	CHECK_SETS(false, "release: r\ndatabases:\n- additionalParameters: ''\n",
		   "databases[0].additionalParameters=");
	CHECK_SETS(false, NULL, "image.tag=");
	CHECK_SETS(true, NULL, "image.tag=");
	CHECK_SETS(false, NULL, "waitTimeout=");
	CHECK_SETS(false, NULL, "image.tag={a,b}");
	CHECK_SETS(false, NULL, "image=x");
	CHECK_SETS(false, NULL, "image[0]=x");
	CHECK_SETS(false, NULL, "image.tag.x=1");
	CHECK_SETS(false, NULL, "databases[0]=x");
	CHECK_SETS(false, NULL, "databases[0][1].host=x");
	CHECK_SETS(false, NULL, "databases[0].additionalParameters[0].x=1");
	CHECK_SETS(false, NULL, "tolerations.x=1");
	CHECK_SETS(false, NULL, "podLabels[0]=1");
	CHECK_SETS(false, NULL, "podLabels=x");
}

TEST(set_whole_value_keeps_commas_and_backslashes)
{
	/* migrate's environment variables: a URL or parameters may hold ',', '\' or "null". */
	struct fy_document *d = parse("release: r\n");
	struct fy_node *root = fy_document_root(d);
	CHECK(cr_config_set(root, "databases[0].url=postgresql://u:a,b\\c@h/db") == 0);
	CHECK(cr_config_set(root, "databases[0].additionalParameters=-x a=b,c") == 0);
	CHECK(cr_config_set(root, "image.tag=null") == 0);
	CHECK(cr_config_set(root, "image.repository=") == 0);
	CHECK(cr_config_set(root, "databases[0].port=x") == -1);
	struct cr_buf out = { 0 };
	yt_emit(root, &out);
	CHECK_STR(out.data, "release: r\ndatabases:\n- url: postgresql://u:a,b\\c@h/db\n"
			    "  additionalParameters: '-x a=b,c'\nimage:\n  tag: 'null'\n"
			    "  repository: ''\n");
	cr_buf_free(&out);
	fy_document_destroy(d);
}

TEST(check_for_render_refuses_names_the_api_server_refuses)
{
	static const char *const bad[] = {
		"release: Bad_Name\n",
		"release: rrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrr\n", /* 54 */
		"namespace: a.b\n",
		"metadata: {name: A}\n",
		"serviceAccount: {name: 'a b'}\n",
		"priorityClassName: X\n",
		"image: {repository: app, pullSecret: a_b}\n",
		"podLabels: {'a b': x}\n",
		"podLabels: {a: '-x'}\n",
		"metadata: {labels: {a: {b: c}}}\n",
		"podAnnotations: {'x/y/z': a}\n",
		"env: [{name: 'A=B'}]\n",
		"env: [x]\n",
		"env: [{name: A, value: [x]}]\n",
		"eslembic: {urlSecret: {name: s, key: 'a b'}}\n",
		NULL,
	};
	const char *base = "release: r\nnamespace: n\nimage: {repository: app}\n"
			   "databases:\n- {host: h, user: u, database: d}\n";
	for (const char *const *b = bad; *b; b++) {
		struct fy_document *d = parse(base), *over = parse(*b);
		cr_config_overlay(fy_document_root(d), fy_document_root(over));
		fy_document_destroy(over);
		struct cr_config cfg;
		CHECK(cr_config_load(&cfg, d, "test") == 0);
		int rc = cr_config_check_for_render(&cfg, "test");
		if (rc != -1)
			fprintf(stderr, "accepted: %s", *b);
		CHECK(rc == -1);
		cr_config_free(&cfg);
	}
	struct cr_config cfg;
	struct fy_document *d = parse("release: a.b\nnamespace: n\nimage: {repository: app}\n"
				      "metadata: {name: x.y, labels: {example.com/t: A_b.c}}\n"
				      "podAnnotations: {example.com/note: 'any text: at all'}\n"
				      "env: [{name: my.var-1, value: ''}]\n"
				      "databases:\n- {host: h, user: u, database: d}\n");
	CHECK(cr_config_load(&cfg, d, "test") == 0);
	CHECK(cr_config_check_for_render(&cfg, "test") == 0);
	cr_config_free(&cfg);
	cr_secrets_clear();
}
