/* src/names.c: the RFC 1123 name rules as the API server applies them. */
#include "names.h"
#include "unit.h"

#include <string.h>

static const char *const labels[] = { "a", "0", "a-b", "web-1", "x0", NULL };
static const char *const not_labels[] = { "", "-a", "a-", "A", "a_b", "a.b", "..", ".",
					  "a/b", "a b", "é", "a\nb", "%2e", NULL };
static const char *const subdomains[] = { "a", "a.b", "web-1.example", "0.0", NULL };
static const char *const not_subdomains[] = { "", ".a", "a.", "a..b", "..", "../x", "a/b",
					      "A.b", "a.-b", "a-.b", "a_b", "%2e%2e", NULL };

TEST(names_follow_rfc_1123_as_the_api_server_does)
{
	for (const char *const *s = labels; *s; s++)
		CHECK(!cr_name_label_error(*s));
	for (const char *const *s = not_labels; *s; s++)
		CHECK(cr_name_label_error(*s));
	for (const char *const *s = subdomains; *s; s++)
		CHECK(!cr_name_subdomain_error(*s));
	for (const char *const *s = not_subdomains; *s; s++)
		CHECK(cr_name_subdomain_error(*s));
	char long_label[65], long_subdomain[255];
	memset(long_label, 'a', 64);
	long_label[64] = '\0';
	CHECK_STR(cr_name_label_error(long_label), "must be no more than 63 characters");
	long_label[63] = '\0';
	CHECK(!cr_name_label_error(long_label));
	memset(long_subdomain, 'a', 254);
	for (int i = 50; i < 254; i += 50)
		long_subdomain[i] = '.';
	long_subdomain[254] = '\0';
	CHECK_STR(cr_name_subdomain_error(long_subdomain), "must be no more than 253 characters");
	long_subdomain[253] = '\0';
	CHECK(!cr_name_subdomain_error(long_subdomain));
	CHECK(cr_name_label_error(NULL) != NULL);
}
