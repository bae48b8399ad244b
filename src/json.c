#include "json.h"
#include "log.h"
#include "util.h"
#include "ytree.h"

#include <ctype.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

/* Nodes built into a document are parsed with that document's configuration: in a JSON
 * one, yt_str's "\x2d" escapes are refused (and yt_str exits). Callers edit API answers
 * with the ytree builders, so the tree moves to a document of the default configuration. */
static struct fy_document *yaml_mode_copy(struct fy_document *json)
{
	struct fy_document *d = yt_document();
	struct fy_node *root = fy_document_root(json);
	if (d && root)
		fy_document_set_root(d, fy_node_copy(d, root));
	fy_document_destroy(json);
	if (!d) {
		cr_error("out of memory copying a JSON document");
		exit(70);
	}
	return d;
}

struct fy_document *cr_json_parse(const char *data, size_t len, const char *origin)
{
	/* RFC 8259 text is UTF-8, and libfyaml 0.7.12 can loop forever on some malformed
	 * UTF-8: refused before it sees any. */
	size_t bad = cr_utf8_invalid_at(data, len);
	if (bad < len) {
		cr_error("%s: invalid JSON at byte %zu: not UTF-8 text", origin, bad + 1);
		return NULL;
	}
	struct fy_diag *diag = yt_diag_new();
	struct fy_parse_cfg cfg = {
		.flags = FYPCF_QUIET | FYPCF_COLLECT_DIAG | FYPCF_JSON_FORCE,
		.diag = diag,
	};
	/* Scalars keep pointing into the text: the document owns this copy (on failure
	 * too, so it is never freed here). */
	char *copy = xstrndup(data, len);
	struct fy_document *d = fy_document_build_from_malloc_string(&cfg, copy, len);
	if (!d) {
		void *it = NULL;
		struct fy_diag_error *e = diag ? fy_diag_errors_iterate(diag, &it) : NULL;
		if (e)
			cr_error("%s: invalid JSON at line %d, column %d: %s", origin, e->line,
				 e->column, e->msg);
		else
			cr_error("%s: invalid JSON", origin);
	}
	if (diag)
		fy_diag_destroy(diag); /* the document keeps its own reference */
	return d ? yaml_mode_copy(d) : NULL;
}

/* --- writing ------------------------------------------------------------------------------
 * libfyaml's own JSON emitter quotes correctly, but 0.7.12 leaks the buffer of every
 * double-quoted scalar with more than a few escapes (fy_atom_is_number), which is what
 * yt_str builds: so JSON is written here, from the tree. */

static bool is_str_tag(struct fy_node *n)
{
	size_t len;
	const char *tag = fy_node_get_tag(n, &len);
	return tag && ((len == 5 && !memcmp(tag, "!!str", 5)) ||
		       (len == 21 && !memcmp(tag, "tag:yaml.org,2002:str", 21)));
}

static bool word_is(const char *s, size_t len, const char *const *words)
{
	for (; *words; words++)
		if (strlen(*words) == len && !memcmp(s, *words, len))
			return true;
	return false;
}

/* RFC 8259 number: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)? */
static bool is_json_number(const char *s, size_t len)
{
	size_t i = 0;
	if (i < len && s[i] == '-')
		i++;
	if (i < len && s[i] == '0')
		i++;
	else if (i < len && s[i] >= '1' && s[i] <= '9')
		while (i < len && isdigit((unsigned char)s[i]))
			i++;
	else
		return false;
	if (i < len && s[i] == '.') {
		size_t start = ++i;
		while (i < len && isdigit((unsigned char)s[i]))
			i++;
		if (i == start)
			return false;
	}
	if (i < len && (s[i] == 'e' || s[i] == 'E')) {
		i++;
		if (i < len && (s[i] == '+' || s[i] == '-'))
			i++;
		size_t start = i;
		while (i < len && isdigit((unsigned char)s[i]))
			i++;
		if (i == start)
			return false;
	}
	return i == len;
}

/* The JSON literal a plain scalar stands for, NULL when it is a string. */
static const char *plain_literal(const char *s, size_t len)
{
	static const char *const nulls[] = { "", "~", "null", "Null", "NULL", NULL };
	static const char *const trues[] = { "true", "True", "TRUE", NULL };
	static const char *const falses[] = { "false", "False", "FALSE", NULL };
	if (word_is(s, len, nulls))
		return "null";
	if (word_is(s, len, trues))
		return "true";
	if (word_is(s, len, falses))
		return "false";
	return is_json_number(s, len) ? "" : NULL; /* "": the text itself */
}

static int put_string(struct cr_buf *out, const char *s, size_t len)
{
	const unsigned char *u = (const unsigned char *)s;
	cr_buf_addc(out, '"');
	for (size_t i = 0; i < len;) {
		unsigned char c = u[i];
		if (c >= 0x80) {
			size_t n = cr_utf8_len(s + i, len - i);
			if (!n)
				return -1;
			cr_buf_add(out, s + i, n);
			i += n;
			continue;
		}
		if (c == '"' || c == '\\')
			cr_buf_printf(out, "\\%c", c);
		else if (c == '\n')
			cr_buf_adds(out, "\\n");
		else if (c == '\t')
			cr_buf_adds(out, "\\t");
		else if (c == '\r')
			cr_buf_adds(out, "\\r");
		else if (c < 0x20)
			cr_buf_printf(out, "\\u%04x", c);
		else
			cr_buf_addc(out, (char)c);
		i++;
	}
	cr_buf_addc(out, '"');
	return 0;
}

static int put_scalar(struct cr_buf *out, struct fy_node *n, bool key)
{
	size_t len = 0;
	const char *s = fy_node_get_scalar(n, &len);
	if (!s)
		s = "";
	enum fy_node_style style = fy_node_get_style(n);
	bool plain = style == FYNS_PLAIN || style == FYNS_ANY;
	const char *lit = !key && plain && !is_str_tag(n) ? plain_literal(s, len) : NULL;
	if (lit && *lit)
		cr_buf_adds(out, lit);
	else if (lit)
		cr_buf_add(out, s, len);
	else if (put_string(out, s, len))
		return -1;
	return 0;
}

static int put_node(struct cr_buf *out, struct fy_node *n);

static int put_map(struct cr_buf *out, struct fy_node *n)
{
	void *it = NULL;
	struct fy_node_pair *p;
	const char *sep = "";
	cr_buf_addc(out, '{');
	while ((p = fy_node_mapping_iterate(n, &it))) {
		struct fy_node *key = fy_node_pair_key(p);
		cr_buf_adds(out, sep);
		if (!yt_is_scalar(key) || put_scalar(out, key, true))
			return -1;
		cr_buf_adds(out, ": ");
		if (put_node(out, fy_node_pair_value(p)))
			return -1;
		sep = ", ";
	}
	cr_buf_addc(out, '}');
	return 0;
}

static int put_node(struct cr_buf *out, struct fy_node *n)
{
	if (!n) {
		cr_buf_adds(out, "null"); /* a mapping value left empty */
		return 0;
	}
	if (fy_node_is_alias(n))
		return -1;
	if (yt_is_scalar(n))
		return put_scalar(out, n, false);
	if (yt_is_map(n))
		return put_map(out, n);
	void *it = NULL;
	struct fy_node *c;
	const char *sep = "";
	cr_buf_addc(out, '[');
	while ((c = fy_node_sequence_iterate(n, &it))) {
		cr_buf_adds(out, sep);
		if (put_node(out, c))
			return -1;
		sep = ", ";
	}
	cr_buf_addc(out, ']');
	return 0;
}

int cr_json_emit(struct fy_node *n, struct cr_buf *out)
{
	size_t start = out->len;
	if (put_node(out, n) == 0)
		return 0;
	out->len = start; /* nothing half-written */
	if (out->data)
		out->data[start] = '\0';
	cr_error("cannot write JSON: the data holds an alias, a key that is not a string, or "
		 "text that is not UTF-8");
	return -1;
}

char *cr_json_string(struct fy_node *n)
{
	struct cr_buf b = { 0 };
	if (cr_json_emit(n, &b)) {
		cr_buf_free(&b);
		return NULL;
	}
	return cr_buf_detach(&b, NULL);
}

int cr_format_emit(struct fy_document *d, enum cr_format f, struct cr_buf *out)
{
	if (f != CR_FORMAT_JSON)
		return yt_emit_document(d, out);
	int rc = cr_json_emit(fy_document_root(d), out);
	if (!rc)
		cr_buf_addc(out, '\n');
	return rc;
}
