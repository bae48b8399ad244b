#include "unit.h"
#include "util.h"
#include "ytree.h"

#include <stdlib.h>

static const char *const hostile[] = {
	"1", "true", "yes", "No", "on", "~", "null", "", "a: b", "x\ny", "#c", "*a", "&a", "{x",
	"[x", "-1", "- x", "0x1F", "1e3", ".inf", "0755", "2001-12-14", "|x", ">x", "?x", ",x",
	"@x", "`x", "%x", "!x", " lead", "trail ", "a #b", "quote'\"", "back\\slash", "tab\there",
	"multi\nline\n", "ends with newline\n", "<<", "=", "é ü", "\x01 control", NULL,
};

/* Every hostile string emitted as a value and parsed back is the same string. */
TEST(emit_round_trips_hostile_strings)
{
	for (const char *const *s = hostile; *s; s++) {
		struct fy_document *d = fy_document_create(NULL);
		struct fy_node *root = yt_map(d);
		fy_document_set_root(d, root);
		yt_set_str(root, "v", *s);
		struct cr_buf out = { 0 };
		CHECK(yt_emit_document(d, &out) == 0);
		struct fy_document *back = yt_parse(out.data, out.len, "emitted", 0);
		CHECK(back != NULL);
		if (back) {
			struct fy_node *v = yt_get(fy_document_root(back), "v");
			char *got = yt_strdup(v);
			CHECK_STR(got, *s);
			/* and it is a string, not a plain scalar YAML would type */
			size_t len;
			const char *text = yt_scalar(v, &len);
			CHECK(fy_node_get_style(v) != FYNS_PLAIN || yt_plain_is_string(text, len));
			free(got);
			fy_document_destroy(back);
		}
		cr_buf_free(&out);
		fy_document_destroy(d);
	}
}

TEST(plain_is_string_rejects_typed_words)
{
	CHECK(!yt_plain_is_string("true", 4));
	CHECK(!yt_plain_is_string("Off", 3));
	CHECK(!yt_plain_is_string("12", 2));
	CHECK(!yt_plain_is_string("", 0));
	CHECK(yt_plain_is_string("postgres", 8));
	CHECK(yt_plain_is_string("Never", 5));
}

TEST(parse_reports_duplicate_keys_and_aliases)
{
	CHECK(yt_parse("a: 1\na: 2\n", 10, "dup", 0) == NULL);
	const char *alias = "a: &x 1\nb: *x\n";
	CHECK(yt_parse(alias, strlen(alias), "alias", 0) == NULL);
	const char *two = "a: 1\n---\nb: 2\n";
	CHECK(yt_parse(two, strlen(two), "two", 0) == NULL);
	struct fy_document *ok = yt_parse("a: 1\n", 5, "ok", 0);
	CHECK(ok != NULL);
	if (ok)
		fy_document_destroy(ok);
}

TEST(set_replaces_in_place)
{
	struct fy_document *d = yt_parse("a: 1\nb: 2\nc: 3\n", 15, "t", 0);
	struct fy_node *root = fy_document_root(d);
	yt_set_str(root, "b", "x");
	yt_del(root, "c");
	struct cr_buf out = { 0 };
	yt_emit(root, &out);
	CHECK_STR(out.data, "a: 1\nb: x\n");
	cr_buf_free(&out);
	fy_document_destroy(d);
}

TEST(keys_are_matched_as_text_not_as_yaml)
{
	struct fy_document *d = fy_document_create(NULL);
	struct fy_node *root = yt_map(d);
	fy_document_set_root(d, root);
	static const char *const keys[] = { "#x", "a: b", "{", " lead", "1", NULL };
	for (int round = 0; round < 2; round++)
		for (const char *const *k = keys; *k; k++)
			yt_set_str(root, *k, round ? "second" : "first");
	CHECK(fy_node_mapping_item_count(root) == 5);
	for (const char *const *k = keys; *k; k++) {
		char *v = yt_strdup(yt_get(root, *k));
		CHECK_STR(v, "second");
		free(v);
	}
	yt_del(root, "a: b");
	CHECK(yt_get(root, "a: b") == NULL);
	CHECK(fy_node_mapping_item_count(root) == 4);
	fy_document_destroy(d);
}

/* A quoted scalar's text is not NUL-terminated where it ends: it points into the source,
 * which goes on after the closing quote. Only its length says where it stops. */
TEST(quoted_scalar_ends_at_its_length)
{
	static const char src[] = "{\"current-context\": \"prod\", 'b': 'x''y', c: plain}\n";
	struct fy_document *d = yt_parse(src, sizeof(src) - 1, "test", 0);
	CHECK(d != NULL);
	struct fy_node *root = d ? fy_document_root(d) : NULL;
	size_t len;
	const char *s = yt_scalar(yt_get(root, "current-context"), &len);
	CHECK(s && len == 4 && !memcmp(s, "prod", 4));
	CHECK(yt_scalar_is(yt_get(root, "current-context"), "prod"));
	CHECK(!yt_scalar_is(yt_get(root, "current-context"), "pro"));
	CHECK(!yt_scalar_is(yt_get(root, "current-context"), "prod\""));
	CHECK(yt_scalar_is(yt_get(root, "b"), "x'y"));
	CHECK(yt_scalar_is(yt_get(root, "c"), "plain"));
	CHECK(!yt_scalar_is(root, "plain"));
	char *b = yt_strdup(yt_get(root, "b"));
	CHECK_STR(b, "x'y");
	free(b);
	if (d)
		fy_document_destroy(d);
}
