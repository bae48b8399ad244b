#include "ytree.h"
#include "log.h"
#include "util.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <yaml.h>

#define STR_TAG "tag:yaml.org,2002:str"

struct fy_diag *yt_diag_new(void)
{
	struct fy_diag_cfg dc;
	fy_diag_cfg_default(&dc);
	dc.fp = NULL;
	dc.level = FYET_ERROR;
	dc.colorize = false;
	struct fy_diag *diag = fy_diag_create(&dc);
	if (diag)
		fy_diag_set_collect_errors(diag, true);
	return diag;
}

static void report_diag(struct fy_diag *diag, const char *origin, int line_base)
{
	void *it = NULL;
	struct fy_diag_error *e = diag ? fy_diag_errors_iterate(diag, &it) : NULL;
	if (e)
		cr_error("%s:%d:%d: %s", origin, e->line + line_base, e->column, e->msg);
	else
		cr_error("%s: invalid YAML", origin);
}

static struct fy_node *find_alias(struct fy_node *n)
{
	if (!n)
		return NULL;
	if (fy_node_is_alias(n))
		return n;
	void *it = NULL;
	if (yt_is_map(n)) {
		struct fy_node_pair *p;
		while ((p = fy_node_mapping_iterate(n, &it))) {
			struct fy_node *a = find_alias(fy_node_pair_key(p));
			if (!a)
				a = find_alias(fy_node_pair_value(p));
			if (a)
				return a;
		}
	} else if (yt_is_seq(n)) {
		struct fy_node *c;
		while ((c = fy_node_sequence_iterate(n, &it)))
			if ((c = find_alias(c)))
				return c;
	}
	return NULL;
}

/* --- an index of a mapping's keys ------------------------------------------------------------
 * libfyaml 0.7.12 compares each key added to a mapping with every key before it, both when
 * it parses and on every append: a mapping of N keys costs N². Documents are therefore
 * parsed and built with FYPCF_ALLOW_DUPLICATE_KEYS, and keys are kept unique here, by hash. */

struct yt_keys {
	struct fy_node_pair **slot;
	size_t cap, n;
};

static unsigned key_hash(const char *s, size_t len)
{
	return cr_fnv1a(s, len);
}

/* The slot of key (empty when absent). */
static struct fy_node_pair **key_slot(const struct yt_keys *k, const char *key, size_t len)
{
	for (size_t i = key_hash(key, len) & (k->cap - 1);; i = (i + 1) & (k->cap - 1)) {
		struct fy_node_pair *p = k->slot[i];
		size_t plen;
		const char *text = p ? yt_scalar(fy_node_pair_key(p), &plen) : NULL;
		if (!p || (text && plen == len && !memcmp(text, key, len)))
			return &k->slot[i];
	}
}

static void keys_grow(struct yt_keys *k)
{
	struct yt_keys bigger = { xcalloc(k->cap ? k->cap * 2 : 16, sizeof(*k->slot)),
				  k->cap ? k->cap * 2 : 16, 0 };
	for (size_t i = 0; i < k->cap; i++)
		if (k->slot[i]) {
			size_t len;
			const char *text = yt_scalar(fy_node_pair_key(k->slot[i]), &len);
			*key_slot(&bigger, text, len) = k->slot[i];
			bigger.n++;
		}
	free(k->slot);
	*k = bigger;
}

/* Adds p (a scalar key): the pair already holding that key, or NULL. */
static struct fy_node_pair *keys_add(struct yt_keys *k, struct fy_node_pair *p)
{
	size_t len;
	const char *text = yt_scalar(fy_node_pair_key(p), &len);
	if (!text)
		return NULL; /* a key that is no scalar equals no string key */
	if ((k->n + 1) * 2 > k->cap)
		keys_grow(k);
	struct fy_node_pair **slot = key_slot(k, text, len);
	if (*slot)
		return *slot;
	*slot = p;
	k->n++;
	return NULL;
}

struct yt_keys *yt_keys_of(struct fy_node *map)
{
	struct yt_keys *k = xcalloc(1, sizeof(*k));
	keys_grow(k);
	void *it = NULL;
	struct fy_node_pair *p;
	while (yt_is_map(map) && (p = fy_node_mapping_iterate(map, &it)))
		keys_add(k, p);
	return k;
}

struct fy_node *yt_keys_get(const struct yt_keys *k, const char *key)
{
	struct fy_node_pair *p = *key_slot(k, key, strlen(key));
	return p ? fy_node_pair_value(p) : NULL;
}

void yt_keys_set(struct yt_keys *k, struct fy_node *map, const char *key, struct fy_node *value)
{
	struct fy_node_pair *p = *key_slot(k, key, strlen(key));
	if (p) {
		fy_node_pair_set_value(p, value);
		return;
	}
	struct fy_node *kn = yt_str(fy_node_document(map), key);
	if (fy_node_mapping_append(map, kn, value)) {
		fy_node_free(kn);
		fy_node_free(value);
		return;
	}
	void *it = NULL;
	struct fy_node_pair *added = fy_node_mapping_reverse_iterate(map, &it);
	if (added)
		keys_add(k, added);
}

void yt_keys_free(struct yt_keys *k)
{
	if (!k)
		return;
	free(k->slot);
	free(k);
}

/* The first key of the tree under n that repeats one of its mapping, or NULL. */
static struct fy_node *find_duplicate(struct fy_node *n)
{
	void *it = NULL;
	if (yt_is_map(n)) {
		struct yt_keys k = { 0 };
		keys_grow(&k);
		struct fy_node_pair *p;
		struct fy_node *dup = NULL;
		while (!dup && (p = fy_node_mapping_iterate(n, &it))) {
			if (keys_add(&k, p))
				dup = fy_node_pair_key(p);
			else if (!(dup = find_duplicate(fy_node_pair_key(p))))
				dup = find_duplicate(fy_node_pair_value(p));
		}
		free(k.slot);
		return dup;
	}
	struct fy_node *c, *dup = NULL;
	while (!dup && yt_is_seq(n) && (c = fy_node_sequence_iterate(n, &it)))
		dup = find_duplicate(c);
	return dup;
}

struct fy_document *yt_document(void)
{
	static const struct fy_parse_cfg cfg = { .flags = FYPCF_ALLOW_DUPLICATE_KEYS };
	return fy_document_create(&cfg);
}

struct fy_document *yt_map_document(struct fy_node **root)
{
	struct fy_document *d = yt_document();
	*root = yt_map(d);
	fy_document_set_root(d, *root);
	return d;
}

/* libfyaml 0.7.12 loops forever on some malformed UTF-8 (in a directive line), and YAML
 * is UTF-8 text anyway: such input never reaches it. */
static int check_utf8(const char *data, size_t len, const char *origin, int line_base)
{
	size_t bad = cr_utf8_invalid_at(data, len);
	if (bad == len)
		return 0;
	int line = 1;
	size_t bol = 0;
	for (size_t i = 0; i < bad; i++)
		if (data[i] == '\n') {
			line++;
			bol = i + 1;
		}
	cr_error("%s:%d:%zu: invalid UTF-8 (YAML is UTF-8 text)", origin, line + line_base,
		 bad - bol + 1);
	return -1;
}

struct fy_document *yt_parse(const char *data, size_t len, const char *origin, int line_base)
{
	if (check_utf8(data, len, origin, line_base))
		return NULL;
	struct fy_diag *diag = yt_diag_new();
	struct fy_parse_cfg cfg = { .flags = FYPCF_QUIET | FYPCF_COLLECT_DIAG |
						FYPCF_ALLOW_DUPLICATE_KEYS,
				    .diag = diag };
	struct fy_parser *p = fy_parser_create(&cfg);
	struct fy_document *d = NULL, *extra = NULL;
	/* Nodes keep pointing into the text they came from: the parser gets its own copy,
	 * which lives as long as the document. */
	char *copy = xstrndup(data, len);
	if (!p || fy_parser_set_malloc_string(p, copy, len)) {
		free(copy);
		cr_error("%s: cannot start the YAML parser", origin);
		goto out;
	}
	d = fy_parse_load_document(p);
	if (d)
		extra = fy_parse_load_document(p);
	if (!d || extra || fy_parser_get_stream_error(p)) {
		if (extra)
			cr_error("%s:%d: only one YAML document is allowed here", origin,
				 yt_line(fy_document_root(extra)) + line_base);
		else if (!d && !fy_parser_get_stream_error(p))
			cr_error("%s: empty: no YAML document", origin);
		else
			report_diag(diag, origin, line_base);
		if (d)
			fy_parse_document_destroy(p, d);
		d = NULL;
		goto out;
	}
	struct fy_node *alias = find_alias(fy_document_root(d));
	struct fy_node *dup = alias ? NULL : find_duplicate(fy_document_root(d));
	if (alias) {
		cr_error("%s:%d: YAML aliases are not accepted here; write the value out", origin,
			 yt_line(alias) + line_base);
	} else if (dup) {
		char *key = yt_strdup(dup);
		cr_error("%s:%d: duplicate key \"%s\"", origin, yt_line(dup) + line_base,
			 key ? key : "");
		free(key);
	}
	if (alias || dup) {
		fy_parse_document_destroy(p, d);
		d = NULL;
	}
out:
	if (extra)
		fy_parse_document_destroy(p, extra);
	if (d) {
		/* Detach the document from the parser so it outlives it. */
		struct fy_document *own = yt_document();
		struct fy_node *root = fy_document_root(d);
		if (own && root)
			fy_document_set_root(own, fy_node_copy(own, root));
		fy_parse_document_destroy(p, d);
		d = own;
	}
	if (p)
		fy_parser_destroy(p);
	if (diag)
		fy_diag_destroy(diag);
	return d;
}

/* The pair whose key is exactly the string key. libfyaml's own lookups parse the key
 * as YAML, so "#x" or "a: b" would never be found. */
static struct fy_node_pair *pair_of(struct fy_node *map, const char *key)
{
	if (!yt_is_map(map))
		return NULL;
	void *it = NULL;
	struct fy_node_pair *p;
	while ((p = fy_node_mapping_iterate(map, &it)))
		if (yt_scalar_is(fy_node_pair_key(p), key))
			return p;
	return NULL;
}

struct fy_node *yt_get(struct fy_node *map, const char *key)
{
	struct fy_node_pair *p = pair_of(map, key);
	return p ? fy_node_pair_value(p) : NULL;
}

const char *yt_scalar(struct fy_node *n, size_t *len)
{
	if (!yt_is_scalar(n))
		return NULL;
	*len = 0;
	const char *s = fy_node_get_scalar(n, len);
	return s ? s : "";
}

bool yt_scalar_is(struct fy_node *n, const char *s)
{
	size_t len;
	const char *text = yt_scalar(n, &len);
	return text && len == strlen(s) && memcmp(text, s, len) == 0;
}

char *yt_strdup(struct fy_node *n)
{
	size_t len;
	const char *s = yt_scalar(n, &len);
	return s ? xstrndup(s, len) : NULL;
}

int yt_line(struct fy_node *n)
{
	if (!n)
		return 0;
	struct fy_token *t = fy_node_get_scalar_token(n);
	if (!t && yt_is_map(n)) {
		void *it = NULL;
		struct fy_node_pair *p = fy_node_mapping_iterate(n, &it);
		if (p)
			return yt_line(fy_node_pair_key(p));
	}
	if (!t && yt_is_seq(n)) {
		void *it = NULL;
		return yt_line(fy_node_sequence_iterate(n, &it));
	}
	const struct fy_mark *m = t ? fy_token_start_mark(t) : NULL;
	return m ? m->line + 1 : 0;
}

const char *yt_kind(struct fy_node *n)
{
	if (!n)
		return "nothing";
	switch (fy_node_get_type(n)) {
	case FYNT_MAPPING:
		return "a mapping";
	case FYNT_SEQUENCE:
		return "a list";
	default:
		return yt_is_null(n) ? "null" : "a scalar";
	}
}

bool yt_is_map(struct fy_node *n)
{
	return n && fy_node_get_type(n) == FYNT_MAPPING;
}

bool yt_is_seq(struct fy_node *n)
{
	return n && fy_node_get_type(n) == FYNT_SEQUENCE;
}

bool yt_is_scalar(struct fy_node *n)
{
	return n && fy_node_get_type(n) == FYNT_SCALAR;
}

bool yt_is_null(struct fy_node *n)
{
	if (!yt_is_scalar(n) || fy_node_get_style(n) != FYNS_PLAIN)
		return false;
	size_t len;
	const char *s = fy_node_get_scalar(n, &len);
	return !s || yt_text_is_null(s, len);
}

bool yt_text_is_null(const char *s, size_t len)
{
	return len == 0 || (len == 1 && s[0] == '~') || (len == 4 && strncasecmp(s, "null", 4) == 0);
}

/* libfyaml 0.7.12 trims blanks from text given to fy_node_create_scalar*(), so a string
 * node is made by parsing it as a double-quoted scalar in which every ASCII byte that is
 * not alphanumeric is an escape: the text cannot end the scalar or change the structure.
 * The result is checked against the input all the same. */
struct fy_node *yt_strn(struct fy_document *d, const char *s, size_t len)
{
	struct cr_buf q = { 0 };
	cr_buf_reserve(&q, len * 4 + 2);
	cr_buf_addc(&q, '"');
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		if (isalnum(c) || c >= 0x80)
			cr_buf_addc(&q, (char)c);
		else
			cr_buf_printf(&q, "\\u%04x", c); /* \u: JSON-mode documents accept it too */
	}
	cr_buf_addc(&q, '"');
	/* The node keeps pointing into its source text: the document takes the buffer. */
	size_t qlen;
	char *qtext = cr_buf_detach(&q, &qlen);
	struct fy_node *n = fy_node_build_from_malloc_string(d, qtext, qlen);
	size_t got_len = 0;
	const char *got = n ? fy_node_get_scalar(n, &got_len) : NULL;
	if (!got || got_len != len || memcmp(got, s, len) != 0) {
		cr_error("internal error: cannot represent a string of %zu bytes as YAML", len);
		exit(70);
	}
	return n;
}

struct fy_node *yt_str(struct fy_document *d, const char *s)
{
	return yt_strn(d, s, strlen(s));
}

struct fy_node *yt_int(struct fy_document *d, long v)
{
	return fy_node_create_scalarf(d, "%ld", v);
}

struct fy_node *yt_bool(struct fy_document *d, bool v)
{
	return fy_node_create_scalar_copy(d, v ? "true" : "false", FY_NT);
}

struct fy_node *yt_null(struct fy_document *d)
{
	return fy_node_create_scalar(d, "null", 4);
}

struct fy_node *yt_map(struct fy_document *d)
{
	return fy_node_create_mapping(d);
}

struct fy_node *yt_seq(struct fy_document *d)
{
	return fy_node_create_sequence(d);
}

void yt_set(struct fy_node *map, const char *key, struct fy_node *value)
{
	struct fy_node_pair *p = pair_of(map, key);
	if (p) {
		fy_node_pair_set_value(p, value);
		return;
	}
	struct fy_node *k = yt_str(fy_node_document(map), key);
	if (fy_node_mapping_append(map, k, value)) { /* map is no mapping: the nodes are ours */
		fy_node_free(k);
		fy_node_free(value);
	}
}

void yt_set_str(struct fy_node *map, const char *key, const char *s)
{
	yt_set(map, key, yt_str(fy_node_document(map), s));
}

struct fy_node *yt_child_map(struct fy_node *map, const char *key)
{
	struct fy_node *n = yt_get(map, key);
	if (!yt_is_map(n)) {
		n = yt_map(fy_node_document(map));
		yt_set(map, key, n);
	}
	return n;
}

struct fy_node *yt_child_seq(struct fy_node *map, const char *key)
{
	struct fy_node *n = yt_get(map, key);
	if (!yt_is_seq(n)) {
		n = yt_seq(fy_node_document(map));
		yt_set(map, key, n);
	}
	return n;
}

void yt_del(struct fy_node *map, const char *key)
{
	struct fy_node_pair *p = pair_of(map, key);
	/* remove_by_key frees the pair with its key; the value is ours to free. */
	if (p)
		fy_node_free(fy_node_mapping_remove_by_key(map, fy_node_pair_key(p)));
}

void yt_append(struct fy_node *seq, struct fy_node *item)
{
	fy_node_sequence_append(seq, item);
}

void yt_append_copies(struct fy_node *seq, struct fy_node *items)
{
	if (!yt_is_seq(items))
		return;
	struct fy_document *d = fy_node_document(seq);
	void *it = NULL;
	struct fy_node *c;
	while ((c = fy_node_sequence_iterate(items, &it)))
		yt_append(seq, fy_node_copy(d, c));
}

void yt_set_copy(struct fy_node *map, const char *key, struct fy_node *value)
{
	if (value)
		yt_set(map, key, fy_node_copy(fy_node_document(map), value));
}

struct fy_node *yt_path(struct fy_node *root, const char *path)
{
	return fy_node_by_path(root, path, FY_NT, FYNWF_DONT_FOLLOW);
}

/* --- emission through libyaml ---------------------------------------------------------- */

static bool word_in(const char *s, size_t len, const char *const *words)
{
	for (; *words; words++)
		if (strlen(*words) == len && strncasecmp(s, *words, len) == 0)
			return true;
	return false;
}

bool yt_plain_is_string(const char *s, size_t len)
{
	static const char *const non_strings[] = { "null", "true", "false", "yes", "no", "on",
						   "off", "y", "n", "~", NULL };
	if (len == 0 || word_in(s, len, non_strings))
		return false;
	/* Numbers, timestamps, .inf/.nan, "<<" and "=" all start with one of these. */
	unsigned char c = (unsigned char)s[0];
	return !(isdigit(c) || c == '+' || c == '-' || c == '.' || c == '<' || c == '=');
}

static int emit_write(void *data, unsigned char *buf, size_t size)
{
	cr_buf_add(data, buf, size);
	return 1;
}

static bool is_string_node(struct fy_node *n)
{
	size_t tlen;
	const char *tag = fy_node_get_tag(n, &tlen);
	if (tag && ((tlen == 5 && !memcmp(tag, "!!str", 5)) ||
		    (tlen == strlen(STR_TAG) && !memcmp(tag, STR_TAG, tlen))))
		return true;
	return fy_node_get_style(n) != FYNS_PLAIN && fy_node_get_style(n) != FYNS_ANY;
}

static int emit_node(yaml_emitter_t *e, struct fy_node *n);

static int emit_scalar(yaml_emitter_t *e, struct fy_node *n)
{
	yaml_event_t ev;
	size_t len;
	const char *s = fy_node_get_scalar(n, &len);
	if (!s)
		s = "";
	int plain_implicit = 1, quoted_implicit = 0;
	yaml_scalar_style_t style = YAML_ANY_SCALAR_STYLE;
	if (is_string_node(n)) {
		plain_implicit = yt_plain_is_string(s, len);
		quoted_implicit = 1;
		/* Multi-line text reads best as a block; libyaml falls back to quotes when a
		 * block cannot hold it exactly (trailing spaces, control characters). */
		if (memchr(s, '\n', len))
			style = YAML_LITERAL_SCALAR_STYLE;
	} else {
		style = YAML_PLAIN_SCALAR_STYLE;
	}
	yaml_scalar_event_initialize(&ev, NULL, (yaml_char_t *)STR_TAG, (yaml_char_t *)s,
				     (int)len, plain_implicit, quoted_implicit, style);
	return yaml_emitter_emit(e, &ev);
}

/* A null list item is written "null", not as nothing: libyaml writes an empty item as a
 * bare "-", which libfyaml 0.7.12 cannot read back in a list at its parent's indentation
 * (the style libyaml writes), so `migrate` could not read the config.yaml it is given. */
static int emit_null(yaml_emitter_t *e)
{
	yaml_event_t ev;
	yaml_scalar_event_initialize(&ev, NULL, NULL, (yaml_char_t *)"null", 4, 1, 0,
				     YAML_PLAIN_SCALAR_STYLE);
	return yaml_emitter_emit(e, &ev);
}

static int emit_node(yaml_emitter_t *e, struct fy_node *n)
{
	yaml_event_t ev;
	void *it = NULL;
	if (!n) {
		yaml_scalar_event_initialize(&ev, NULL, NULL, (yaml_char_t *)"", 0, 1, 0,
					     YAML_PLAIN_SCALAR_STYLE);
		return yaml_emitter_emit(e, &ev);
	}
	switch (fy_node_get_type(n)) {
	case FYNT_SCALAR:
		return emit_scalar(e, n);
	case FYNT_MAPPING: {
		bool empty = fy_node_mapping_item_count(n) == 0;
		yaml_mapping_start_event_initialize(&ev, NULL, NULL, 1,
						    empty ? YAML_FLOW_MAPPING_STYLE
							  : YAML_BLOCK_MAPPING_STYLE);
		if (!yaml_emitter_emit(e, &ev))
			return 0;
		struct fy_node_pair *p;
		while ((p = fy_node_mapping_iterate(n, &it)))
			if (!emit_node(e, fy_node_pair_key(p)) ||
			    !emit_node(e, fy_node_pair_value(p)))
				return 0;
		yaml_mapping_end_event_initialize(&ev);
		return yaml_emitter_emit(e, &ev);
	}
	case FYNT_SEQUENCE: {
		bool empty = fy_node_sequence_item_count(n) == 0;
		yaml_sequence_start_event_initialize(&ev, NULL, NULL, 1,
						     empty ? YAML_FLOW_SEQUENCE_STYLE
							   : YAML_BLOCK_SEQUENCE_STYLE);
		if (!yaml_emitter_emit(e, &ev))
			return 0;
		struct fy_node *c;
		while ((c = fy_node_sequence_iterate(n, &it)))
			if (!(yt_is_null(c) ? emit_null(e) : emit_node(e, c)))
				return 0;
		yaml_sequence_end_event_initialize(&ev);
		return yaml_emitter_emit(e, &ev);
	}
	}
	return 0;
}

int yt_emit(struct fy_node *root, struct cr_buf *out)
{
	yaml_emitter_t e;
	yaml_event_t ev;
	int ok = yaml_emitter_initialize(&e);
	if (!ok) {
		cr_error("cannot start the YAML emitter");
		return -1;
	}
	yaml_emitter_set_output(&e, emit_write, out);
	yaml_emitter_set_unicode(&e, 1);
	yaml_emitter_set_width(&e, -1);
	yaml_emitter_set_indent(&e, 2);
	yaml_stream_start_event_initialize(&ev, YAML_UTF8_ENCODING);
	ok = yaml_emitter_emit(&e, &ev);
	if (ok) {
		yaml_document_start_event_initialize(&ev, NULL, NULL, NULL, 1);
		ok = yaml_emitter_emit(&e, &ev);
	}
	ok = ok && emit_node(&e, root);
	if (ok) {
		yaml_document_end_event_initialize(&ev, 1);
		ok = yaml_emitter_emit(&e, &ev);
	}
	if (ok) {
		yaml_stream_end_event_initialize(&ev);
		ok = yaml_emitter_emit(&e, &ev);
	}
	if (!ok)
		cr_error("cannot emit YAML: %s", e.problem ? e.problem : "unknown emitter error");
	yaml_emitter_delete(&e);
	return ok ? 0 : -1;
}

int yt_emit_document(struct fy_document *d, struct cr_buf *out)
{
	return yt_emit(fy_document_root(d), out);
}
