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
