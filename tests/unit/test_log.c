#include "log.h"
#include "unit.h"
#include "util.h"

#include <stdlib.h>

TEST(mask_hides_registered_secrets_and_url_passwords)
{
	cr_secret_add("s3cr3t");
	char *m = cr_mask("connect postgresql://app:pa%40ss@db:5432/x with s3cr3t\nnext");
	CHECK_STR(m, "connect postgresql://app:***@db:5432/x with ***\\nnext");
	free(m);
	m = cr_mask("no userinfo http://host/path?a=b@c");
	CHECK_STR(m, "no userinfo http://host/path?a=b@c");
	free(m);
	m = cr_mask("user only postgresql://app@db/x");
	CHECK_STR(m, "user only postgresql://app@db/x");
	free(m);
	cr_secrets_clear();
}

/* A password written unencoded, as SQLAlchemy reads it (src/url.h): '/', '#', '?', '@'. */
TEST(mask_hides_an_unencoded_password_whole)
{
	char *m = cr_mask("database main (postgresql://u:pa/ss#x?y@db:5432/x): cannot connect");
	CHECK_STR(m, "database main (postgresql://u:***@db:5432/x): cannot connect");
	free(m);
	m = cr_mask("at https://elastic:s/cr@t@es:9200/_cluster and x://a:b@c/d?e=f@g");
	CHECK_STR(m, "at https://elastic:***@es:9200/_cluster and x://a:***@c/d?e=f@g");
	free(m);
}

/* Found by tests/fuzz/fuzz_log_mask: the user part of a URL was copied unmasked, so a
 * secret or a carriage return there went out as it was. */
TEST(the_user_part_of_a_url_is_masked_too)
{
	cr_secret_add("tok3n-value");
	char *m = cr_mask("x://tok3n-value:pw@h/ and ://a\rb:pw@h");
	CHECK_STR(m, "x://***:***@h/ and ://a\\rb:***@h");
	free(m);
	/* a secret that runs into the password: the rest of the password goes too */
	cr_secret_add("user:pa");
	m = cr_mask("db://user:password@host");
	CHECK_STR(m, "db://***@host");
	free(m);
	cr_secrets_clear();
}

TEST(mask_prefers_the_longest_secret)
{
	cr_secret_add("abcdefgh");
	cr_secret_add("abcdefghij");
	char *m = cr_mask("xabcdefghijx");
	CHECK_STR(m, "x***x");
	free(m);
	cr_secrets_clear();
}

TEST(short_secrets_are_masked_as_whole_words_only)
{
	cr_secret_add("p");
	char *m = cr_mask("namespace p wrapper (p) pp");
	CHECK_STR(m, "namespace *** wrapper (***) pp");
	free(m);
	cr_secrets_clear();
}

TEST(last_error_is_masked_and_cut_on_a_character_boundary)
{
	cr_secret_add("hunter22");
	cr_error("database main (postgresql://u:hunter22@db/x): cannot connect");
	CHECK_STR(cr_log_last_error(), "database main (postgresql://u:***@db/x): cannot connect");
	cr_warn("a warning is not an error");
	CHECK_STR(cr_log_last_error(), "database main (postgresql://u:***@db/x): cannot connect");
	/* 600 two-byte characters: the kept text stops before a split character. */
	struct cr_buf long_text = { 0 };
	for (int i = 0; i < 600; i++)
		cr_buf_adds(&long_text, "\xc3\xa9");
	cr_error("%s", long_text.data);
	const char *kept = cr_log_last_error();
	size_t n = kept ? strlen(kept) : 0;
	CHECK(n > 1000 && n < 1024 && n % 2 == 0);
	cr_buf_free(&long_text);
	cr_secrets_clear();
}

/* A muted caller that calls code which mutes and unmutes around a step of its own stays
 * muted: the k8s client does that inside calls whose failures the caller reports itself. */
TEST(mute_nests)
{
	cr_error("before: seen");
	CHECK(strcmp(cr_log_last_error(), "before: seen") == 0);
	cr_log_mute(true);
	cr_log_mute(true);
	cr_log_mute(false);
	cr_error("inside: not seen");
	CHECK(strcmp(cr_log_last_error(), "before: seen") == 0);
	cr_log_mute(false);
	cr_error("after: seen");
	CHECK(strcmp(cr_log_last_error(), "after: seen") == 0);
	cr_log_mute(false); /* one too many changes nothing */
	cr_error("still seen");
	CHECK(strcmp(cr_log_last_error(), "still seen") == 0);
}
