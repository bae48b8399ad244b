/* src/names.c: the naming rules of Kubernetes as the API server applies them. */
#include "names.h"
#include "unit.h"

#include <stdio.h>
#include <string.h>

static const char *const labels[] = { "a", "0", "a-b", "web-1", "x0", NULL };
static const char *const not_labels[] = { "", "-a", "a-", "A", "a_b", "a.b", "..", ".",
					  "a/b", "a b", "\xc3\xa9", "a\nb", "%2e", NULL };
static const char *const subdomains[] = { "a", "a.b", "web-1.example", "0.0", NULL };
static const char *const not_subdomains[] = { "", ".a", "a.", "a..b", "..", "../x", "a/b",
					      "A.b", "a.-b", "a-.b", "a_b", "%2e%2e", NULL };

TEST(dns_labels_and_subdomains_as_the_api_server_reads_them)
{
	for (const char *const *s = labels; *s; s++)
		CHECK(cr_dns_name_ok(*s, CR_NAME_LABEL, 63));
	for (const char *const *s = not_labels; *s; s++)
		CHECK(!cr_dns_name_ok(*s, CR_NAME_LABEL, 63));
	for (const char *const *s = subdomains; *s; s++)
		CHECK(cr_dns_name_ok(*s, CR_NAME_SUBDOMAIN, 253));
	for (const char *const *s = not_subdomains; *s; s++)
		CHECK(!cr_dns_name_ok(*s, CR_NAME_SUBDOMAIN, 253));
	CHECK(!cr_dns_name_ok(NULL, CR_NAME_LABEL, 63));
	char long_subdomain[255];
	memset(long_subdomain, 'a', 254);
	for (int i = 50; i < 254; i += 50)
		long_subdomain[i] = '.';
	long_subdomain[254] = '\0';
	CHECK(!cr_dns_name_ok(long_subdomain, CR_NAME_SUBDOMAIN, 253));
	long_subdomain[253] = '\0';
	CHECK(cr_dns_name_ok(long_subdomain, CR_NAME_SUBDOMAIN, 253));
}

TEST(names_labels_and_keys_follow_kubernetes_rules)
{
	CHECK(cr_dns_name_ok("demo", CR_NAME_LABEL, 63));
	CHECK(cr_dns_name_ok("1a-b", CR_NAME_LABEL, 63));
	CHECK(!cr_dns_name_ok("a.b", CR_NAME_LABEL, 63));
	CHECK(cr_dns_name_ok("a.b", CR_NAME_SUBDOMAIN, 253));
	CHECK(cr_dns_name_ok("a-1.b-2.c", CR_NAME_SUBDOMAIN, 253));
	static const char *const bad[] = { "", "A", "a_b", "-a", "a-", "a..b", ".a", "a.", "a.-b",
					   "a b", "\xc3\xa9", NULL };
	for (const char *const *b = bad; *b; b++)
		CHECK(!cr_dns_name_ok(*b, CR_NAME_SUBDOMAIN, 253));
	char long_name[80];
	memset(long_name, 'a', sizeof(long_name) - 1);
	long_name[sizeof(long_name) - 1] = '\0';
	long_name[53] = '\0';
	CHECK(cr_dns_name_ok(long_name, CR_NAME_SUBDOMAIN, 53));
	long_name[53] = 'a';
	long_name[54] = '\0';
	CHECK(!cr_dns_name_ok(long_name, CR_NAME_SUBDOMAIN, 53));
	CHECK(cr_check_name("test", "the namespace", "Bad", CR_NAME_LABEL, 63) == -1);
	CHECK(cr_check_name("test", "the namespace", "good", CR_NAME_LABEL, 63) == 0);

	CHECK(cr_label_value_ok(""));
	CHECK(cr_label_value_ok("A_b.c-1"));
	CHECK(!cr_label_value_ok("-a"));
	CHECK(!cr_label_value_ok("a b"));
	const char *a63 = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
	char a64[65];
	snprintf(a64, sizeof(a64), "%sa", a63);
	CHECK(cr_label_value_ok(a63));
	CHECK(!cr_label_value_ok(a64));
	CHECK(cr_qualified_name_ok("app.kubernetes.io/name"));
	CHECK(cr_qualified_name_ok("Team_1"));
	CHECK(!cr_qualified_name_ok(""));
	CHECK(!cr_qualified_name_ok("/a"));
	CHECK(!cr_qualified_name_ok("a/"));
	CHECK(!cr_qualified_name_ok("Bad_Prefix/a"));
	CHECK(!cr_qualified_name_ok("a/b/c"));
	CHECK(cr_env_name_ok("my.var-1"));
	CHECK(cr_env_name_ok("1 A"));
	CHECK(!cr_env_name_ok(""));
	CHECK(!cr_env_name_ok("A=B"));
	CHECK(!cr_env_name_ok("A\tB"));
	CHECK(cr_secret_key_ok("tls.crt"));
	CHECK(!cr_secret_key_ok("a/b"));
	CHECK(!cr_secret_key_ok(""));
}

