#include "manifest.h"
#include "config.h"
#include "log.h"
#include "util.h"
#include "ytree.h"

#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

/* What the mapping on top of the stack is, as far as inference cares. */
enum frame_role { R_OTHER, R_ROOT, R_METADATA, R_LABELS };
/* What the next value is. */
enum value_role { V_NONE, V_KIND, V_METADATA, V_NAMESPACE, V_LABELS, V_INSTANCE, V_RELEASE };

struct key_entry {
	unsigned hash;
	size_t off, len;
};

struct frame {
	bool is_map;
	bool expect_key;
	enum frame_role role;
	enum value_role next;
	size_t first_key; /* index into scan.keys where this mapping's keys start */
};

/* A place in the input as the parser reports it: 0-based line and column (in characters). */
struct place {
	size_t line, column;
};

/* libyaml counts characters; the documents are cut at bytes. Marks arrive nearly in order, so
 * a cursor walked from the last one converts them in linear time overall. */
struct char_cursor {
	const char *data;
	size_t len, skip; /* skip: a byte order mark, which libyaml does not count */
	bool ascii;
	size_t chars, bytes;
};

struct scan {
	const char *origin;
	const char *data;
	size_t len;
	size_t last_pos;   /* the furthest end mark of an event so far */
	bool start_pending; /* the current document's start is not known yet */
	yaml_parser_t parser;
	/* The parser reads from `base` on, where line `line_base` starts: a stream is read in
	 * more than one piece when a document follows a "..." line without a "---" of its
	 * own, which YAML 1.2 allows and libyaml (YAML 1.1) does not. */
	size_t base, line_base;
	struct char_cursor cursor;
	bool after_end_marker; /* the last event was an explicit document end */
	struct frame *stack;
	size_t depth, cap;
	struct key_entry *keys;
	size_t n_keys, cap_keys;
	struct cr_buf key_text;
	int doc_number;
	/* what the current document says, committed when it ends */
	bool is_config, has_instance;
	struct cr_buf ns, instance, release;
};

static void seen_add(struct cr_seen *s, const char *v)
{
	for (size_t i = 0; i < s->n; i++)
		if (strcmp(s->values[i], v) == 0)
			return;
	if (s->n < CR_MAX_SEEN)
		s->values[s->n++] = xstrdup(v);
	else
		s->more = true;
}

int cr_line_of(const char *data, size_t pos)
{
	int line = 1;
	for (const char *p = data; (p = memchr(p, '\n', pos - (size_t)(p - data))); p++)
		line++;
	return line;
}

static int scan_error_at(struct scan *s, const struct place *m, const char *msg, const char *arg)
{
	if (m)
		cr_error("%s: document %d, line %zu, column %zu: %s%s", s->origin, s->doc_number,
			 m->line + 1, m->column + 1, msg, arg ? arg : "");
	else
		cr_error("%s: document %d: %s%s", s->origin, s->doc_number, msg, arg ? arg : "");
	return -1;
}

static struct frame *top(struct scan *s)
{
	return s->depth ? &s->stack[s->depth - 1] : NULL;
}

static enum value_role role_of_key(enum frame_role fr, const char *k, size_t len)
{
#define IS(lit) (len == sizeof(lit) - 1 && memcmp(k, lit, len) == 0)
	switch (fr) {
	case R_ROOT:
		return IS("kind") ? V_KIND : IS("metadata") ? V_METADATA : V_NONE;
	case R_METADATA:
		return IS("namespace") ? V_NAMESPACE : IS("labels") ? V_LABELS : V_NONE;
	case R_LABELS:
		return IS("app.kubernetes.io/instance") ? V_INSTANCE
		       : IS("release")			? V_RELEASE
							: V_NONE;
	default:
		return V_NONE;
	}
#undef IS
}

static int add_key(struct scan *s, struct frame *f, const char *k, size_t len,
		   const struct place *m)
{
	unsigned h = cr_fnv1a(k, len);
	for (size_t i = f->first_key; i < s->n_keys; i++) {
		struct key_entry *e = &s->keys[i];
		if (e->hash == h && e->len == len && memcmp(s->key_text.data + e->off, k, len) == 0) {
			char *shown = xstrndup(k, len > 80 ? 80 : len);
			int rc = scan_error_at(s, m, "duplicate key ", shown);
			free(shown);
			return rc;
		}
	}
	XGROW(s->keys, s->n_keys + 1, s->cap_keys);
	s->keys[s->n_keys++] = (struct key_entry){ h, s->key_text.len, len };
	cr_buf_add(&s->key_text, k, len);
	return 0;
}

static void take_value(struct scan *s, enum value_role role, const char *v, size_t len)
{
	switch (role) {
	case V_KIND:
		s->is_config = len == strlen(CR_CONFIG_KIND) && memcmp(v, CR_CONFIG_KIND, len) == 0;
		break;
	case V_NAMESPACE:
		cr_buf_reset(&s->ns);
		cr_buf_add(&s->ns, v, len);
		break;
	case V_INSTANCE:
		cr_buf_reset(&s->instance);
		cr_buf_add(&s->instance, v, len);
		s->has_instance = true;
		break;
	case V_RELEASE:
		cr_buf_reset(&s->release);
		cr_buf_add(&s->release, v, len);
		break;
	default:
		break;
	}
}

static struct place place_of(const struct scan *s, const yaml_event_t *e)
{
	return (struct place){ s->line_base + e->start_mark.line, e->start_mark.column };
}

/* A scalar or alias: a key when the enclosing mapping expects one, else a value. */
static int on_leaf(struct scan *s, const yaml_event_t *e, const char *text, size_t len)
{
	struct frame *f = top(s);
	if (!f)
		return 0;
	if (f->is_map && f->expect_key) {
		struct place m = place_of(s, e);
		if (text && add_key(s, f, text, len, &m))
			return -1;
		f->next = text ? role_of_key(f->role, text, len) : V_NONE;
		f->expect_key = false;
		return 0;
	}
	if (text)
		take_value(s, f->next, text, len);
	if (f->is_map) {
		f->expect_key = true;
		f->next = V_NONE;
	}
	return 0;
}

static int on_start(struct scan *s, const yaml_event_t *e, bool is_map)
{
	struct frame *parent = top(s);
	enum frame_role role = R_OTHER;
	if (!parent) {
		struct place m = place_of(s, e);
		if (!is_map)
			return scan_error_at(s, &m,
					     "expected a mapping (a Kubernetes object), found a list",
					     NULL);
		role = R_ROOT;
	} else if (is_map && parent->is_map && !parent->expect_key) {
		role = parent->next == V_METADATA ? R_METADATA
		       : parent->next == V_LABELS ? R_LABELS
						  : R_OTHER;
	}
	XGROW(s->stack, s->depth + 1, s->cap);
	s->stack[s->depth++] = (struct frame){ is_map, true, role, V_NONE, s->n_keys };
	return 0;
}

static void on_end(struct scan *s)
{
	struct frame *f = top(s);
	s->n_keys = f->first_key;
	s->key_text.len = s->n_keys ? s->keys[s->n_keys - 1].off + s->keys[s->n_keys - 1].len : 0;
	s->depth--;
	struct frame *parent = top(s);
	if (parent && parent->is_map) {
		parent->expect_key = !parent->expect_key;
		if (parent->expect_key)
			parent->next = V_NONE;
	}
}

static void begin_document(struct scan *s)
{
	s->doc_number++;
	s->is_config = s->has_instance = false;
	cr_buf_reset(&s->ns);
	cr_buf_reset(&s->instance);
	cr_buf_reset(&s->release);
}

static void end_document(struct scan *s, struct cr_manifest *m)
{
	m->docs[m->n_docs - 1].is_config = s->is_config;
	if (s->is_config)
		return;
	if (s->ns.len)
		seen_add(&m->namespaces, s->ns.data);
	if (s->has_instance && s->instance.len)
		seen_add(&m->releases, s->instance.data);
	else if (s->release.len)
		seen_add(&m->releases, s->release.data);
}

static int report_parse_error(struct scan *s)
{
	const yaml_parser_t *p = &s->parser;
	if (!p->problem)
		return scan_error_at(s, NULL, "invalid YAML", NULL);
	struct place m = { s->line_base + p->problem_mark.line, p->problem_mark.column };
	if (p->context) {
		char *why = xasprintf(" (%s, line %zu)", p->context,
				      s->line_base + p->context_mark.line + 1);
		int rc = scan_error_at(s, &m, p->problem, why);
		free(why);
		return rc;
	}
	return scan_error_at(s, &m, p->problem, NULL);
}

/* The number of the document holding byte pos, counted as the parser counts: a line
 * "---" starts one (YAML allows that line inside no scalar), and content before the first
 * such line is a document of its own. */
static int document_at(const char *data, size_t pos)
{
	int n = 0;
	bool content = false;
	for (size_t bol = 0; bol <= pos;) {
		const char *eol = memchr(data + bol, '\n', pos - bol);
		size_t len = eol ? (size_t)(eol - (data + bol)) : pos - bol;
		const char *l = data + bol;
		if (len >= 3 && !memcmp(l, "---", 3) && (len == 3 || strchr(" \t\r", l[3]))) {
			n++;
			content = false;
		} else if (!n && !content) {
			size_t k = strspn(l, " \t\r");
			content = k < len && l[k] != '#' && l[k] != '%';
			n += content;
		}
		if (!eol)
			break;
		bol = (size_t)(eol - data) + 1;
	}
	return n ? n : 1;
}

/* YAML text is UTF-8 without NUL bytes; neither reaches the parser, which would report them
 * with less precision (and libfyaml 0.7.12, which config documents meet, loops forever on
 * some malformed UTF-8 in a directive line). */
static int check_text(const char *data, size_t len, const char *origin)
{
	const char *nul = memchr(data, '\0', len);
	size_t pos = cr_utf8_invalid_at(data, nul ? (size_t)(nul - data) : len);
	if (!nul && pos == len)
		return 0;
	/* pos: the first bad byte, or the NUL when all before it is UTF-8 */
	const char *at = data + pos, *bol = at;
	while (bol > data && bol[-1] != '\n')
		bol--;
	if (*at)
		cr_error("%s: document %d, line %d, column %zu: invalid UTF-8 (YAML is UTF-8 text)",
			 origin, document_at(data, pos), cr_line_of(data, pos),
			 (size_t)(at - bol) + 1);
	else
		cr_error("%s: line %d, column %zu: NUL byte in the input (not YAML text)", origin,
			 cr_line_of(data, pos), (size_t)(at - bol) + 1);
	return -1;
}

/* Where the line after a "..." document end marker starts, searching from `from`;
 * SIZE_MAX when there is none. */
static size_t end_marker_after(const char *data, size_t len, size_t from)
{
	for (size_t p = from; p < len;) {
		if ((p == 0 || data[p - 1] == '\n') && len - p >= 3 && !memcmp(data + p, "...", 3) &&
		    (len - p == 3 || data[p + 3] == ' ' || data[p + 3] == '\t' ||
		     data[p + 3] == '\r' || data[p + 3] == '\n')) {
			const char *nl = memchr(data + p, '\n', len - p);
			return nl ? (size_t)(nl - data) + 1 : len;
		}
		const char *nl = memchr(data + p, '\n', len - p);
		if (!nl)
			break;
		p = (size_t)(nl - data) + 1;
	}
	return SIZE_MAX;
}

static bool is_continuation(const struct char_cursor *c, size_t at)
{
	return at < c->len && ((unsigned char)c->data[at] & 0xC0) == 0x80;
}

static size_t byte_of(struct char_cursor *c, size_t chars)
{
	if (c->ascii)
		return c->skip + chars;
	while (c->chars < chars && c->bytes < c->len) {
		do
			c->bytes++;
		while (is_continuation(c, c->bytes));
		c->chars++;
	}
	while (c->chars > chars && c->bytes > c->skip) {
		do
			c->bytes--;
		while (c->bytes > c->skip && is_continuation(c, c->bytes));
		c->chars--;
	}
	return c->bytes;
}

static void cursor_init(struct char_cursor *c, const char *data, size_t len)
{
	size_t skip = len >= 3 && !memcmp(data, "\xEF\xBB\xBF", 3) ? 3 : 0;
	bool ascii = true;
	for (size_t i = 0; i < len && ascii; i++)
		ascii = !((unsigned char)data[i] & 0x80);
	*c = (struct char_cursor){ data, len, skip, ascii, 0, skip };
}

static size_t pos_of(struct scan *s, size_t chars)
{
	return s->base + byte_of(&s->cursor, chars);
}

/* Follows the events' marks; a document whose start was not found starts at the line of
 * its first node, and the one before ends there. */
static void settle_start(struct scan *s, const yaml_event_t *e, struct cr_manifest *m)
{
	if (s->start_pending && m->n_docs >= 2) {
		size_t p = pos_of(s, e->start_mark.index);
		while (p > m->docs[m->n_docs - 2].start && s->data[p - 1] != '\n')
			p--;
		m->docs[m->n_docs - 1].start = m->docs[m->n_docs - 2].end = p;
		s->start_pending = false;
	}
	size_t end = pos_of(s, e->end_mark.index);
	if (end > s->last_pos)
		s->last_pos = end;
}

enum { RESTART = 1 };

/* 0, -1 (reported), or RESTART: a document follows "..." without "---". */
static int run(struct scan *s, size_t len, struct cr_manifest *m, size_t *cap_docs)
{
	yaml_event_t ev, *e = &ev;
	int rc = 0;
	bool more = true;
	while (!rc && more) {
		if (!yaml_parser_parse(&s->parser, e))
			return s->after_end_marker && s->parser.problem &&
					       !strcmp(s->parser.problem,
						       "did not find expected <document start>")
				       ? RESTART
				       : report_parse_error(s);
		s->after_end_marker = e->type == YAML_DOCUMENT_END_EVENT &&
				      !e->data.document_end.implicit;
		struct place at = place_of(s, e);
		switch (e->type) {
		case YAML_DOCUMENT_START_EVENT: {
			begin_document(s);
			size_t start = m->n_docs ? m->docs[m->n_docs - 1].end : 0;
			s->start_pending = false;
			if (!e->data.document_start.implicit)
				start = pos_of(s, e->start_mark.index);
			else if (m->n_docs && start == len)
				s->start_pending = true; /* after a "..." that was not found */
			if (m->n_docs)
				m->docs[m->n_docs - 1].end = start;
			XGROW(m->docs, m->n_docs + 1, *cap_docs);
			m->docs[m->n_docs++] = (struct cr_doc){ start, len, s->doc_number, false };
			break;
		}
		case YAML_DOCUMENT_END_EVENT:
			end_document(s, m);
			/* After "...", a document may start without "---": the next one starts
			 * after the "..." line. */
			if (!e->data.document_end.implicit) {
				size_t end = end_marker_after(s->data, len, s->last_pos);
				if (end != SIZE_MAX)
					m->docs[m->n_docs - 1].end = end;
			}
			break;
		case YAML_MAPPING_START_EVENT:
			rc = on_start(s, e, true);
			break;
		case YAML_SEQUENCE_START_EVENT:
			rc = on_start(s, e, false);
			break;
		case YAML_MAPPING_END_EVENT:
		case YAML_SEQUENCE_END_EVENT:
			on_end(s);
			break;
		case YAML_SCALAR_EVENT: {
			const char *text = (const char *)e->data.scalar.value;
			size_t tlen = e->data.scalar.length;
			if (!s->depth && !yt_text_is_null(text, tlen))
				rc = scan_error_at(s, &at,
						   "expected a mapping (a Kubernetes object), found a "
						   "scalar", NULL);
			else
				rc = on_leaf(s, e, text, tlen);
			break;
		}
		case YAML_ALIAS_EVENT:
			rc = on_leaf(s, e, NULL, 0);
			break;
		case YAML_STREAM_END_EVENT:
			more = false;
			break;
		default:
			break;
		}
		if (e->type != YAML_STREAM_END_EVENT)
			settle_start(s, e, m);
		yaml_event_delete(e);
	}
	return rc;
}

static void parse_from(struct scan *s, size_t base)
{
	yaml_parser_initialize(&s->parser);
	yaml_parser_set_input_string(&s->parser, (const unsigned char *)s->data + base,
				     s->len - base);
	s->base = base;
	s->line_base = base ? (size_t)cr_line_of(s->data, base) - 1 : 0;
	cursor_init(&s->cursor, s->data + base, s->len - base);
	s->after_end_marker = false;
}

static int scan_range(const char *data, size_t len, const char *origin, struct cr_manifest *m)
{
	memset(m, 0, sizeof(*m));
	struct scan s = { .origin = origin, .data = data, .len = len };
	size_t cap_docs = 0;
	parse_from(&s, 0);
	int rc;
	while ((rc = run(&s, len, m, &cap_docs)) == RESTART) {
		/* the previous document ends after its "..." line */
		size_t next = m->n_docs ? m->docs[m->n_docs - 1].end : 0;
		if (next <= s.base || next >= len) {
			rc = report_parse_error(&s);
			break;
		}
		yaml_parser_delete(&s.parser);
		parse_from(&s, next);
	}
	yaml_parser_delete(&s.parser);
	free(s.stack);
	free(s.keys);
	cr_buf_free(&s.key_text);
	cr_buf_free(&s.ns);
	cr_buf_free(&s.instance);
	cr_buf_free(&s.release);
	if (rc)
		cr_manifest_free(m);
	return rc;
}

/* --- two halves on two cores ---------------------------------------------------------------
 * A line that starts with "---" and a blank is a document start wherever it stands (YAML
 * forbids it inside any scalar), so the stream can be cut there and each half scanned on its
 * own core. Any error in either half discards both and the whole stream is scanned again
 * in one piece, so that messages carry the stream's own document and line numbers. */

#define PARALLEL_MIN_BYTES (1u << 20)

static size_t split_point(const char *data, size_t len)
{
	for (const char *p = data + len / 2; (p = memchr(p, '\n', len - (size_t)(p - data)));) {
		p++;
		size_t rest = len - (size_t)(p - data);
		if (rest >= 3 && !memcmp(p, "---", 3) &&
		    (rest == 3 || p[3] == '\n' || p[3] == ' ' || p[3] == '\t' || p[3] == '\r'))
			return (size_t)(p - data);
	}
	return 0;
}

struct half {
	const char *data;
	size_t len;
	const char *origin;
	struct cr_manifest m;
	int rc;
};

static void *scan_half(void *arg)
{
	struct half *h = arg;
	cr_log_mute(true);
	h->rc = scan_range(h->data, h->len, h->origin, &h->m);
	cr_log_mute(false);
	return NULL;
}

static void seen_merge(struct cr_seen *into, const struct cr_seen *from)
{
	for (size_t i = 0; i < from->n; i++)
		seen_add(into, from->values[i]);
	into->more = into->more || from->more;
}

/* Appends b (scanned from offset `at`) to a. */
static void join_halves(struct cr_manifest *a, struct cr_manifest *b, size_t at)
{
	a->docs = xrealloc(a->docs, (a->n_docs + b->n_docs) * sizeof(*a->docs));
	int base = a->n_docs ? a->docs[a->n_docs - 1].number : 0;
	for (size_t i = 0; i < b->n_docs; i++) {
		struct cr_doc d = b->docs[i];
		d.start += at;
		d.end += at;
		d.number += base;
		a->docs[a->n_docs++] = d;
	}
	seen_merge(&a->releases, &b->releases);
	seen_merge(&a->namespaces, &b->namespaces);
	cr_manifest_free(b);
}

static bool scan_in_parallel(const char *data, size_t len, const char *origin,
			     struct cr_manifest *m)
{
	size_t at = len >= PARALLEL_MIN_BYTES ? split_point(data, len) : 0;
	if (!at)
		return false;
	struct half first = { data, at, origin, { 0 }, -1 };
	struct half second = { data + at, len - at, origin, { 0 }, -1 };
	pthread_t t;
	if (pthread_create(&t, NULL, scan_half, &second) != 0)
		return false;
	scan_half(&first);
	pthread_join(t, NULL);
	if (first.rc || second.rc || !first.m.n_docs) {
		if (!first.rc)
			cr_manifest_free(&first.m);
		if (!second.rc)
			cr_manifest_free(&second.m);
		return false;
	}
	join_halves(&first.m, &second.m, at);
	*m = first.m;
	return true;
}

int cr_manifest_scan(const char *data, size_t len, const char *origin, struct cr_manifest *m)
{
	memset(m, 0, sizeof(*m));
	if (check_text(data, len, origin))
		return -1;
	if (scan_in_parallel(data, len, origin, m))
		return 0;
	return scan_range(data, len, origin, m);
}

static void seen_free(struct cr_seen *s)
{
	for (size_t i = 0; i < s->n; i++)
		free(s->values[i]);
	memset(s, 0, sizeof(*s));
}

void cr_manifest_free(struct cr_manifest *m)
{
	free(m->docs);
	seen_free(&m->releases);
	seen_free(&m->namespaces);
	memset(m, 0, sizeof(*m));
}
