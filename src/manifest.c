/* memmem is a GNU extension. */
#define _GNU_SOURCE
#include "manifest.h"
#include "config.h"
#include "kubeconfig.h"
#include "log.h"
#include "util.h"

#include <pthread.h>
#include <stdint.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

/* --- cutting the stream into documents -------------------------------------------------------
 * YAML 1.2 §9.1: a line that starts with "---" or "..." and a blank (or ends there) is a
 * marker line, which no scalar may hold. "---" starts a document (its directives, "%" lines
 * after a "..." or at the start of the stream, belong to it); "..." ends one, and content
 * after it without a "---" of its own is a document too. */

enum line_kind { L_CONTENT, L_EMPTY, L_DIRECTIVE, L_START, L_START_CONTENT, L_END };

static bool is_marker(const char *p, size_t rest, char c)
{
	return rest >= 3 && p[0] == c && p[1] == c && p[2] == c &&
	       (rest == 3 || p[3] == ' ' || p[3] == '\t' || p[3] == '\r' || p[3] == '\n');
}

static bool is_blank_or_comment(const char *p, const char *eol)
{
	while (p < eol && (*p == ' ' || *p == '\t' || *p == '\r'))
		p++;
	return p == eol || *p == '\n' || *p == '#';
}

/* The kind of the line at p, which ends at its LF or at eol, whichever comes first. */
static enum line_kind kind_of_line(const char *p, const char *eol)
{
	size_t n = (size_t)(eol - p);
	if (is_marker(p, n, '-'))
		return is_blank_or_comment(p + 3, eol) ? L_START : L_START_CONTENT;
	if (is_marker(p, n, '.'))
		return L_END;
	if (n && *p == '%')
		return L_DIRECTIVE;
	return is_blank_or_comment(p, eol) ? L_EMPTY : L_CONTENT;
}

struct splitter {
	struct cr_manifest *m;
	size_t cap;
	bool open;	    /* a document is open: the last of m->docs */
	size_t prefix;	    /* between documents: the first directive line, or SIZE_MAX */
	size_t last_end;    /* where the last closed document ended */
	bool lone_cr;	    /* some line break is a CR alone */
};

static struct cr_doc *current(struct splitter *s)
{
	return &s->m->docs[s->m->n_docs - 1];
}

static void open_doc(struct splitter *s, size_t start, bool content)
{
	struct cr_manifest *m = s->m;
	XGROW(m->docs, m->n_docs + 1, s->cap);
	m->docs[m->n_docs] = (struct cr_doc){ .start = start, .end = m->len,
					      .number = (int)m->n_docs + 1,
					      .has_content = content };
	m->n_docs++;
	s->open = true;
	s->prefix = SIZE_MAX;
}

static void close_doc(struct splitter *s, size_t end)
{
	current(s)->end = s->last_end = end;
	s->open = false;
}

/* The line at p, of kind k; the next starts at next. */
static void take_line(struct splitter *s, size_t p, enum line_kind k, size_t next)
{
	switch (k) {
	case L_START:
	case L_START_CONTENT: {
		size_t start = !s->open && s->prefix != SIZE_MAX ? s->prefix : p;
		if (s->open)
			close_doc(s, p);
		open_doc(s, start, k == L_START_CONTENT);
		break;
	}
	case L_END:
		if (s->open)
			close_doc(s, next);
		s->prefix = SIZE_MAX;
		break;
	case L_DIRECTIVE: /* inside a document, a "%" line is content */
		if (!s->open) {
			if (s->prefix == SIZE_MAX)
				s->prefix = p;
			break;
		}
		/* fall through */
	case L_CONTENT:
		if (!s->open)
			open_doc(s, s->last_end, true);
		current(s)->has_content = true;
		break;
	case L_EMPTY:
		break;
	}
}

/* The end of the line at p (excluding its break) and where the next one starts. YAML's
 * breaks are LF, CR LF and CR; a CR alone is looked for only if the stream has one. */
static size_t line_end(const struct splitter *s, size_t p, size_t *next)
{
	const char *data = s->m->data;
	size_t len = s->m->len;
	const char *nl = memchr(data + p, '\n', len - p);
	size_t eol = nl ? (size_t)(nl - data) : len;
	if (s->lone_cr) {
		const char *cr = memchr(data + p, '\r', eol - p);
		if (cr && (size_t)(cr - data) + 1 < eol) {
			*next = (size_t)(cr - data) + 1;
			return (size_t)(cr - data);
		}
	}
	*next = nl ? eol + 1 : len;
	return eol;
}

/* The next line start at or after from (a line start) whose first byte is '-' or '.', the
 * only ones that can be marker lines, or len. */
static size_t next_dash_or_dot_line(const char *data, size_t len, size_t from)
{
	size_t i = from;
#ifdef __SSE2__
	const __m128i nl = _mm_set1_epi8('\n'), dash = _mm_set1_epi8('-'), dot = _mm_set1_epi8('.');
	for (; i + 17 <= len; i += 16) {
		__m128i here = _mm_loadu_si128((const __m128i *)(const void *)(data + i));
		__m128i after = _mm_loadu_si128((const __m128i *)(const void *)(data + i + 1));
		__m128i hit = _mm_and_si128(_mm_cmpeq_epi8(here, nl),
					    _mm_or_si128(_mm_cmpeq_epi8(after, dash),
							 _mm_cmpeq_epi8(after, dot)));
		unsigned bits = (unsigned)_mm_movemask_epi8(hit);
		if (bits)
			return i + (size_t)__builtin_ctz(bits) + 1;
	}
#endif
	for (; i + 1 < len; i++)
		if (data[i] == '\n' && (data[i + 1] == '-' || data[i + 1] == '.'))
			return i + 1;
	return len;
}

static size_t line_after(const struct splitter *s, size_t p)
{
	size_t next;
	line_end(s, p, &next);
	return next;
}

static bool has_lone_cr(const char *data, size_t len)
{
	for (const char *p = data; (p = memchr(p, '\r', len - (size_t)(p - data))); p++)
		if ((size_t)(p - data) + 1 == len || p[1] != '\n')
			return true;
	return false;
}

void cr_manifest_split(const char *data, size_t len, const char *origin, struct cr_manifest *m)
{
	*m = (struct cr_manifest){ .data = data, .origin = origin, .len = len };
	struct splitter s = { .m = m, .prefix = SIZE_MAX, .lone_cr = has_lone_cr(data, len) };
	size_t p = len >= 3 && !memcmp(data, "\xEF\xBB\xBF", 3) ? 3 : 0; /* a byte order mark */
	while (p < len) {
		/* Once a document's content has begun only marker lines matter. */
		if (s.open && current(&s)->has_content && !s.lone_cr && data[p] != '-' &&
		    data[p] != '.') {
			p = next_dash_or_dot_line(data, len, p);
			continue;
		}
		size_t next, eol = s.lone_cr ? line_end(&s, p, &next) : len;
		enum line_kind k = kind_of_line(data + p, data + eol);
		bool content = k == L_CONTENT || k == L_START_CONTENT;
		if (!s.lone_cr) /* after content, the next line that matters */
			next = content ? next_dash_or_dot_line(data, len, p + 1) : line_after(&s, p);
		take_line(&s, p, k, next);
		p = next;
	}
	if (s.open)
		close_doc(&s, len);
}

bool cr_manifest_has_content(const struct cr_manifest *m)
{
	for (size_t i = 0; i < m->n_docs; i++)
		if (m->docs[i].has_content)
			return true;
	return false;
}

int cr_line_of(const char *data, size_t pos)
{
	size_t n = 0, i = 0;
#ifdef __SSE2__
	/* Byte counters of line breaks, summed before any can overflow (255 blocks). */
	const __m128i nl = _mm_set1_epi8('\n'), zero = _mm_setzero_si128();
	while (i + 16 <= pos) {
		__m128i counts = zero;
		for (int k = 0; k < 255 && i + 16 <= pos; k++, i += 16) {
			__m128i b = _mm_loadu_si128((const __m128i *)(const void *)(data + i));
			counts = _mm_sub_epi8(counts, _mm_cmpeq_epi8(b, nl));
		}
		__m128i sums = _mm_sad_epu8(counts, zero);
		n += (size_t)_mm_cvtsi128_si32(sums) + (size_t)_mm_extract_epi16(sums, 4);
	}
#endif
	for (; i < pos; i++)
		n += data[i] == '\n';
	return (int)n + 1;
}

/* --- where a document came from ----------------------------------------------------------- */

static size_t newlines_in(const char *s, size_t len)
{
	size_t n = 0;
	for (const char *p = s; (p = memchr(p, '\n', len - (size_t)(p - s))); p++)
		n++;
	return n;
}

/* Helm 3's "# Source: <template>" line among the lines before the first content line; *body:
 * where the template's own lines start. */
static char *source_comment(const char *doc, size_t len, size_t *body)
{
	static const char tag[] = "# Source: ";
	for (size_t p = 0; p < len;) {
		const char *nl = memchr(doc + p, '\n', len - p);
		size_t eol = nl ? (size_t)(nl - doc) : len, next = nl ? eol + 1 : len;
		enum line_kind k = kind_of_line(doc + p, doc + eol);
		if (k == L_EMPTY) {
			size_t at = p;
			while (at < eol && (doc[at] == ' ' || doc[at] == '\t'))
				at++;
			if (eol - at > sizeof(tag) - 1 && !memcmp(doc + at, tag, sizeof(tag) - 1)) {
				at += sizeof(tag) - 1;
				while (eol > at && strchr(" \t\r", doc[eol - 1]))
					eol--;
				*body = next;
				return xstrndup(doc + at, eol - at);
			}
		} else if (k != L_START && k != L_DIRECTIVE) {
			return NULL;
		}
		p = next;
	}
	return NULL;
}

/* A scalar on one line as an emitter writes a file name: single-quoted ('' for '),
 * double-quoted, or plain (up to a flow indicator or a comment). */
static char *scalar_text_at(const char *p, const char *end)
{
	struct cr_buf b = { 0 };
	char q = p < end && (*p == '\'' || *p == '"') ? *p++ : 0;
	for (; p < end && *p != '\n'; p++) {
		if (q == '\'' && *p == '\'' && !(p + 1 < end && p[1] == '\''))
			break;
		if (q == '"' && *p == '"')
			break;
		if (!q && (strchr(",}\r", *p) || (*p == '#' && p[-1] == ' ')))
			break;
		if ((q == '\'' && *p == '\'') || (q == '"' && *p == '\\' && p + 1 < end))
			p++; /* the quote or character escaped */
		cr_buf_addc(&b, *p);
	}
	while (!q && b.len && b.data[b.len - 1] == ' ')
		b.data[--b.len] = '\0';
	if (!b.len) {
		cr_buf_free(&b);
		return NULL;
	}
	return cr_buf_detach(&b, NULL);
}

/* Helm 4's annotation naming the template (it adds one to every document it hands a
 * post-renderer, and writes no "# Source:" line). */
static char *filename_annotation(const char *doc, size_t len)
{
	static const char key[] = "postrenderer.helm.sh/postrender-filename";
	const char *end = doc + len;
	for (const char *p = doc; (p = memmem(p, (size_t)(end - p), key, sizeof(key) - 1));) {
		p += sizeof(key) - 1;
		if (p < end && (*p == '\'' || *p == '"'))
			p++;
		while (p < end && (*p == ' ' || *p == '\t'))
			p++;
		if (p < end && *p == ':') {
			for (p++; p < end && (*p == ' ' || *p == '\t'); p++)
				;
			return scalar_text_at(p, end);
		}
	}
	return NULL;
}

/* The line after a leading "---" line that holds nothing else, else the document's start. */
static size_t after_marker_line(const char *doc, size_t len)
{
	const char *nl = memchr(doc, '\n', len);
	size_t eol = nl ? (size_t)(nl - doc) : len;
	return kind_of_line(doc, doc + eol) == L_START && nl ? eol + 1 : 0;
}

static char *template_of(const struct cr_manifest *m, const struct cr_doc *d, int *line_base)
{
	const char *doc = m->data + d->start;
	size_t len = d->end - d->start, body = 0;
	char *name = source_comment(doc, len, &body);
	if (!name && (name = filename_annotation(doc, len)))
		body = after_marker_line(doc, len);
	*line_base = name ? -(int)newlines_in(doc, body) : cr_line_of(m->data, d->start) - 1;
	return name;
}

char *cr_doc_origin(const struct cr_manifest *m, const struct cr_doc *d, const char *what,
		    int *line_base)
{
	char *t = template_of(m, d, line_base);
	struct cr_buf b = { 0 };
	cr_buf_printf(&b, "%s: ", m->origin);
	if (what)
		cr_buf_printf(&b, "%s (document %d)", what, d->number);
	else
		cr_buf_printf(&b, "document %d", d->number);
	if (t)
		cr_buf_printf(&b, " in %s", t);
	free(t);
	return cr_buf_detach(&b, NULL);
}

/* --- reading a document ----------------------------------------------------------------------
 * Only the root's kind, and metadata.namespace and the instance/release labels are taken,
 * each time a key repeats (Helm keeps the last one). Aliases to scalars are followed. */

enum frame_role { R_OTHER, R_ROOT, R_METADATA, R_LABELS };
enum value_role { V_NONE, V_KIND, V_METADATA, V_NAMESPACE, V_LABELS, V_INSTANCE, V_RELEASE };

struct frame {
	bool is_map, expect_key;
	enum frame_role role;
	enum value_role next; /* what the value being read is */
};

/* An anchored node: a scalar's text, or (value NULL) a collection, which is not followed. */
struct anchor {
	char *name, *value;
	size_t len;
	bool binary;
};

/* What a document says. A value that is not a scalar leaves its buffer empty. */
struct facts {
	struct cr_buf kind, ns, instance, release;
	bool has_kind, kind_binary, has_merge;
};

/* Why a document could not be read: a problem at a 0-based place of its text. */
struct problem {
	const char *what, *context;
	size_t line, column, context_line;
	bool at, in_context;
};

struct reader {
	struct frame *stack;
	size_t depth, cap;
	struct anchor *anchors;
	size_t n_anchors, cap_anchors;
	size_t *slots; /* open addressing on the name: 1 + the latest anchor of that name */
	size_t n_slots;
	int documents;
	struct facts *f;
};

static struct frame *top(struct reader *r)
{
	return r->depth ? &r->stack[r->depth - 1] : NULL;
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

static void set_text(struct cr_buf *b, const char *v, size_t len)
{
	cr_buf_reset(b);
	if (v)
		cr_buf_add(b, v, len);
}

/* A value (v NULL: not a scalar) for the role the key gave it. A new metadata or labels
 * replaces what the one before said. */
static void take_value(struct facts *f, enum value_role role, const char *v, size_t len,
		       bool binary)
{
	switch (role) {
	case V_KIND:
		f->has_kind = true;
		f->kind_binary = binary;
		set_text(&f->kind, v, len);
		break;
	case V_METADATA:
		cr_buf_reset(&f->ns);
		/* fall through */
	case V_LABELS:
		cr_buf_reset(&f->instance);
		cr_buf_reset(&f->release);
		break;
	case V_NAMESPACE:
		set_text(&f->ns, v, len);
		break;
	case V_INSTANCE:
		set_text(&f->instance, v, len);
		break;
	case V_RELEASE:
		set_text(&f->release, v, len);
		break;
	case V_NONE:
		break;
	}
}

/* A scalar or an alias (v NULL when it names no scalar): a key or a value. */
static void on_leaf(struct reader *r, const char *v, size_t len, bool binary)
{
	struct frame *f = top(r);
	if (!f)
		return; /* the document is a scalar */
	if (f->is_map && f->expect_key) {
		f->next = v ? role_of_key(f->role, v, len) : V_NONE;
		r->f->has_merge |= f->role == R_ROOT && v && len == 2 && !memcmp(v, "<<", 2);
		f->expect_key = false;
		return;
	}
	take_value(r->f, f->next, v, len, binary);
	if (f->is_map) {
		f->expect_key = true;
		f->next = V_NONE;
	}
}

static void on_start(struct reader *r, bool is_map)
{
	struct frame *parent = top(r);
	enum frame_role role = !parent && is_map ? R_ROOT : R_OTHER;
	if (parent && parent->is_map && !parent->expect_key) {
		if (is_map)
			role = parent->next == V_METADATA ? R_METADATA
			       : parent->next == V_LABELS ? R_LABELS
							  : R_OTHER;
		take_value(r->f, parent->next, NULL, 0, false);
	}
	XGROW(r->stack, r->depth + 1, r->cap);
	r->stack[r->depth++] = (struct frame){ is_map, true, role, V_NONE };
}

static void on_end(struct reader *r)
{
	r->depth--;
	struct frame *parent = top(r);
	if (parent && parent->is_map) {
		parent->expect_key = !parent->expect_key;
		if (parent->expect_key)
			parent->next = V_NONE;
	}
}

static size_t *slot_of(const struct reader *r, const char *name)
{
	size_t mask = r->n_slots - 1, i = cr_fnv1a(name, strlen(name)) & mask;
	while (r->slots[i] && strcmp(r->anchors[r->slots[i] - 1].name, name))
		i = (i + 1) & mask;
	return &r->slots[i];
}

/* Keeps the table at most half full; in order, so that a later anchor of a name wins. */
static void index_anchors(struct reader *r)
{
	if (2 * r->n_anchors <= r->n_slots)
		return;
	free(r->slots);
	r->n_slots = r->n_slots ? 2 * r->n_slots : 16;
	r->slots = xcalloc(r->n_slots, sizeof(*r->slots));
	for (size_t i = 0; i < r->n_anchors; i++)
		*slot_of(r, r->anchors[i].name) = i + 1;
}

static void add_anchor(struct reader *r, const yaml_char_t *name, const char *v, size_t len,
		       bool binary)
{
	if (!name)
		return;
	XGROW(r->anchors, r->n_anchors + 1, r->cap_anchors);
	r->anchors[r->n_anchors++] = (struct anchor){ xstrdup((const char *)name),
						      v ? xstrndup(v, len) : NULL, len, binary };
	index_anchors(r);
	*slot_of(r, (const char *)name) = r->n_anchors;
}

/* The latest anchor of that name (an anchor may be defined again). */
static const struct anchor *find_anchor(const struct reader *r, const yaml_char_t *name)
{
	size_t i = r->n_slots ? *slot_of(r, (const char *)name) : 0;
	return i ? &r->anchors[i - 1] : NULL;
}

static bool is_binary_tag(const yaml_char_t *tag)
{
	return tag && !strcmp((const char *)tag, "tag:yaml.org,2002:binary");
}

static void on_event(struct reader *r, const yaml_event_t *e)
{
	switch (e->type) {
	case YAML_SCALAR_EVENT: {
		const char *v = (const char *)e->data.scalar.value;
		bool binary = is_binary_tag(e->data.scalar.tag);
		add_anchor(r, e->data.scalar.anchor, v, e->data.scalar.length, binary);
		on_leaf(r, v, e->data.scalar.length, binary);
		break;
	}
	case YAML_ALIAS_EVENT: {
		const struct anchor *a = find_anchor(r, e->data.alias.anchor);
		bool scalar = a && a->value;
		on_leaf(r, scalar ? a->value : NULL, scalar ? a->len : 0, scalar && a->binary);
		break;
	}
	case YAML_MAPPING_START_EVENT:
		add_anchor(r, e->data.mapping_start.anchor, NULL, 0, false);
		on_start(r, true);
		break;
	case YAML_SEQUENCE_START_EVENT:
		add_anchor(r, e->data.sequence_start.anchor, NULL, 0, false);
		on_start(r, false);
		break;
	case YAML_MAPPING_END_EVENT:
	case YAML_SEQUENCE_END_EVENT:
		on_end(r);
		break;
	default:
		break;
	}
}

/* libyaml's reader errors carry a byte offset rather than a place. */
static void reader_problem(const yaml_parser_t *p, const char *text, struct problem *out)
{
	size_t at = p->problem_offset, bol = at;
	while (bol > 0 && text[bol - 1] != '\n')
		bol--;
	out->at = true;
	out->line = newlines_in(text, at);
	out->column = at - bol;
	bool utf8 = strstr(p->problem, "UTF-8") || strstr(p->problem, "Unicode");
	if (utf8)
		out->what = "invalid UTF-8 (YAML is UTF-8 text)";
	else if (p->problem_value == 0)
		out->what = "NUL byte (not YAML text)";
	else
		out->what = p->problem;
}

static void parser_problem(const yaml_parser_t *p, const char *text, struct problem *out)
{
	if (p->error == YAML_READER_ERROR)
		return reader_problem(p, text, out);
	out->what = p->problem ? p->problem : "invalid YAML";
	out->at = p->problem != NULL;
	out->line = p->problem_mark.line;
	out->column = p->problem_mark.column;
	if (p->context) {
		out->in_context = true;
		out->context = p->context;
		out->context_line = p->context_mark.line;
	}
}

static void reader_free(struct reader *r)
{
	for (size_t i = 0; i < r->n_anchors; i++) {
		free(r->anchors[i].name);
		free(r->anchors[i].value);
	}
	free(r->anchors);
	free(r->slots);
	free(r->stack);
}

/* Reads one document's text into f (emptied first). 0, or -1 with *pb filled. */
static int read_doc(const char *text, size_t len, struct facts *f, struct problem *pb)
{
	cr_buf_reset(&f->kind);
	cr_buf_reset(&f->ns);
	cr_buf_reset(&f->instance);
	cr_buf_reset(&f->release);
	f->has_kind = f->kind_binary = f->has_merge = false;
	struct reader r = { .f = f };
	yaml_parser_t parser;
	yaml_parser_initialize(&parser);
	yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
	/* No guessing from a leading byte pair: YAML text here is UTF-8. */
	yaml_parser_set_encoding(&parser, YAML_UTF8_ENCODING);
	int rc = 0;
	for (bool more = true; more && !rc;) {
		yaml_event_t e;
		if (!yaml_parser_parse(&parser, &e)) {
			parser_problem(&parser, text, pb);
			rc = -1;
			break;
		}
		more = e.type != YAML_STREAM_END_EVENT;
		if (e.type == YAML_DOCUMENT_START_EVENT && ++r.documents > 1) {
			/* libyaml also breaks lines at NEL, LS and PS, which YAML 1.2 does not */
			*pb = (struct problem){ .what = "a second document starts here, after a line "
							"break other than LF, CR LF or CR",
						.at = true, .line = e.start_mark.line,
						.column = e.start_mark.column };
			rc = -1;
		} else {
			on_event(&r, &e);
		}
		yaml_event_delete(&e);
	}
	yaml_parser_delete(&parser);
	reader_free(&r);
	return rc;
}

static void facts_free(struct facts *f)
{
	cr_buf_free(&f->kind);
	cr_buf_free(&f->ns);
	cr_buf_free(&f->instance);
	cr_buf_free(&f->release);
}

static int report(const struct cr_manifest *m, const struct cr_doc *d, const struct problem *p)
{
	int line_base;
	char *where = cr_doc_origin(m, d, NULL, &line_base);
	char *context = p->in_context ? xasprintf(" (%s, line %ld)", p->context,
						  (long)p->context_line + 1 + line_base)
				      : xstrdup("");
	if (p->at)
		cr_error("%s, line %ld, column %zu: %s%s", where, (long)p->line + 1 + line_base,
			 p->column + 1, p->what, context);
	else
		cr_error("%s: %s%s", where, p->what, context);
	free(context);
	free(where);
	return -1;
}

/* --- which documents may be a ChartreuseConfig -----------------------------------------------
 * Its kind's value can be spelled in many ways, and all but three hold CR_CONFIG_KIND as it
 * is: plain, single-quoted or block scalars (which fold lines with a space or a newline,
 * never into nothing), behind a tag or an anchor, in flow style. The three: a double-quoted
 * scalar with escapes ("\x43..." or a "\" line break), and !!binary (base64), under whatever
 * name a %TAG directive or %-escapes give that tag. Documents that may hold one of these
 * are read too; a false positive only costs reading it. */

static int hex_value(char c)
{
	return c >= '0' && c <= '9' ? c - '0'
	       : c >= 'a' && c <= 'f' ? c - 'a' + 10
	       : c >= 'A' && c <= 'F' ? c - 'A' + 10
				      : -1;
}

/* The character an escape \x.., \u.... or \U........ at p (after the backslash) stands
 * for, and its length; -1 for any other escape (none of them is a letter). */
static long escaped_char(const char *p, const char *end, size_t *used)
{
	int n = *p == 'x' ? 2 : *p == 'u' ? 4 : *p == 'U' ? 8 : 0;
	if (!n || end - p <= n)
		return -1;
	long c = 0;
	for (int i = 1; i <= n; i++) {
		int v = hex_value(p[i]);
		if (v < 0)
			return -1;
		c = c * 16 + v;
	}
	*used = (size_t)n + 1;
	return c;
}

/* Whether the double-quoted scalar whose opening quote is at q reads CR_CONFIG_KIND. */
static bool quoted_spells_kind(const char *q, const char *end)
{
	static const char want[] = CR_CONFIG_KIND;
	size_t got = 0;
	for (const char *p = q + 1; p < end;) {
		long c;
		if (*p == '"')
			return got == sizeof(want) - 1;
		if (*p != '\\') {
			c = (unsigned char)*p++; /* a raw break folds into a space: no match */
		} else if (++p < end && (*p == '\n' || *p == '\r')) {
			/* an escaped line break: it and the next line's indentation vanish */
			p += *p == '\r' && p + 1 < end && p[1] == '\n' ? 2 : 1;
			while (p < end && (*p == ' ' || *p == '\t'))
				p++;
			continue;
		} else {
			size_t used = 0;
			if (p >= end || (c = escaped_char(p, end, &used)) < 0)
				return false;
			p += used;
		}
		if (got == sizeof(want) - 1 || c != want[got])
			return false;
		got++;
	}
	return false;
}

static bool has_quoted_spelling(const char *doc, size_t len)
{
	const char *end = doc + len;
	for (const char *q = doc; (q = memchr(q, '"', (size_t)(end - q))); q++)
		if (quoted_spells_kind(q, end))
			return true;
	return false;
}

/* Whether the tag at t (its "!") may be tag:yaml.org,2002:binary: with "binary" in it, or a
 * %-escape, or under any name once a %TAG directive may have renamed a handle (libyaml
 * takes a "%" line at the start of a line inside a document for a directive, too). */
static bool tag_may_be_binary(const char *t, const char *end, bool renamed)
{
	const char *p = t;
	while (p < end && !strchr(" \t\r\n", *p))
		p++;
	return renamed || memchr(t, '%', (size_t)(p - t)) || memmem(t, (size_t)(p - t), "binary", 6);
}

static bool has_tag_directive(const char *data, size_t len)
{
	for (const char *p = data; (p = memmem(p, len - (size_t)(p - data), "%TAG", 4)); p++)
		if (p == data || p[-1] == '\n' || p[-1] == '\r')
			return true;
	return false;
}

/* The document that holds byte pos, or NULL (between documents). */
static struct cr_doc *doc_at(struct cr_manifest *m, size_t pos)
{
	size_t lo = 0, hi = m->n_docs;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (m->docs[mid].end <= pos)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < m->n_docs && m->docs[lo].start <= pos ? &m->docs[lo] : NULL;
}

enum hit_test { T_ANY, T_QUOTED, T_TAG };

/* needle in [p, end), or NULL. glibc's memmem reads every byte with a general algorithm;
 * memchr on the first byte, rare in manifests for each needle here, skips faster. */
static const char *find(const char *p, const char *end, const char *needle)
{
	size_t n = strlen(needle);
	for (; (p = memchr(p, needle[0], (size_t)(end - p))); p++)
		if ((size_t)(end - p) >= n && !memcmp(p, needle, n))
			return p;
	return NULL;
}

/* Marks the documents where needle occurs (and the test holds) as maybe_config. */
static void mark_where(struct cr_manifest *m, const char *needle, enum hit_test test)
{
	const char *data = m->data, *end = data + m->len;
	int renamed = -1; /* whether a %TAG directive may rename tags: looked for once needed */
	for (const char *p = data; (p = find(p, end, needle));) {
		struct cr_doc *d = doc_at(m, (size_t)(p - data));
		const char *doc_end = d ? data + d->end : p + 1;
		if (d && d->has_content && !d->maybe_config) {
			const char *doc = data + d->start;
			if (test == T_TAG && renamed < 0)
				renamed = has_tag_directive(data, m->len);
			d->maybe_config = test == T_ANY	     ? true
					  : test == T_QUOTED ? has_quoted_spelling(doc, d->end - d->start)
							     : tag_may_be_binary(p, doc_end, renamed);
		}
		/* a document is tested for quoted spellings once, whatever the answer */
		p = test == T_TAG || !d ? p + 1 : doc_end;
	}
}

static void mark_candidates(struct cr_manifest *m)
{
	for (size_t i = 0; i < m->n_docs; i++)
		m->docs[i].maybe_config = false;
	mark_where(m, CR_CONFIG_KIND, T_ANY);
	mark_where(m, "\\", T_QUOTED);
	mark_where(m, "!", T_TAG);
}

static bool kind_is_config(const struct facts *f)
{
	static const char want[] = CR_CONFIG_KIND;
	if (!f->kind_binary)
		return f->kind.len == sizeof(want) - 1 && !memcmp(f->kind.data, want, f->kind.len);
	struct cr_buf raw = { 0 };
	bool is = !cr_base64_decode(f->kind.data, f->kind.len, &raw) &&
		  raw.len == sizeof(want) - 1 && !memcmp(raw.data, want, raw.len);
	cr_buf_free(&raw);
	return is;
}

int cr_manifest_find_configs(struct cr_manifest *m)
{
	mark_candidates(m);
	struct facts f = { 0 };
	int rc = 0;
	for (size_t i = 0; !rc && i < m->n_docs; i++) {
		struct cr_doc *d = &m->docs[i];
		if (!d->maybe_config)
			continue;
		struct problem p = { 0 };
		if (read_doc(m->data + d->start, d->end - d->start, &f, &p)) {
			rc = report(m, d, &p);
		} else if (!f.has_kind && f.has_merge) {
			p.what = "cannot tell whether this is a ChartreuseConfig: its kind may come "
				 "through a merge key (<<); write kind out";
			rc = report(m, d, &p);
		}
		d->is_config = !rc && f.has_kind && kind_is_config(&f);
	}
	facts_free(&f);
	return rc;
}

/* --- inference ----------------------------------------------------------------------------
 * Documents are independent, so a large stream is read in two halves on two cores. */

#define PARALLEL_MIN_BYTES (1u << 20)

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

static void seen_free(struct cr_seen *s)
{
	for (size_t i = 0; i < s->n; i++)
		free(s->values[i]);
	memset(s, 0, sizeof(*s));
}

struct infer_part {
	const struct cr_manifest *m;
	size_t from, to; /* document indexes */
	unsigned what;
	struct cr_seen releases, namespaces;
	size_t failed; /* the document that could not be read, or SIZE_MAX */
	struct problem problem;
};

static void *infer_part(void *arg)
{
	struct infer_part *ip = arg;
	struct facts f = { 0 };
	ip->failed = SIZE_MAX;
	for (size_t i = ip->from; i < ip->to; i++) {
		const struct cr_doc *d = &ip->m->docs[i];
		if (d->is_config || !d->has_content)
			continue;
		if (read_doc(ip->m->data + d->start, d->end - d->start, &f, &ip->problem)) {
			ip->failed = i;
			break;
		}
		if ((ip->what & CR_INFER_NAMESPACE) && f.ns.len)
			seen_add(&ip->namespaces, f.ns.data);
		if ((ip->what & CR_INFER_RELEASE) && (f.instance.len || f.release.len))
			seen_add(&ip->releases, f.instance.len ? f.instance.data : f.release.data);
	}
	facts_free(&f);
	return NULL;
}

static void seen_merge(struct cr_seen *into, struct cr_seen *from)
{
	for (size_t i = 0; i < from->n; i++)
		seen_add(into, from->values[i]);
	into->more = into->more || from->more;
	seen_free(from);
}

/* The first document at or after the middle byte, for the second half. */
static size_t middle_doc(const struct cr_manifest *m)
{
	if (m->len < PARALLEL_MIN_BYTES)
		return 0;
	for (size_t i = 1; i < m->n_docs; i++)
		if (m->docs[i].start >= m->len / 2)
			return i;
	return 0;
}

int cr_manifest_infer(struct cr_manifest *m, unsigned what)
{
	size_t mid = middle_doc(m);
	struct infer_part parts[2] = {
		{ .m = m, .from = 0, .to = mid ? mid : m->n_docs, .what = what },
		{ .m = m, .from = mid, .to = m->n_docs, .what = what },
	};
	pthread_t t;
	bool threaded = mid && pthread_create(&t, NULL, infer_part, &parts[1]) == 0;
	if (mid && !threaded)
		parts[0].to = m->n_docs;
	infer_part(&parts[0]);
	if (threaded)
		pthread_join(t, NULL);
	int rc = 0;
	for (int i = 0; i < (threaded ? 2 : 1); i++) {
		if (!rc && parts[i].failed != SIZE_MAX)
			rc = report(m, &m->docs[parts[i].failed], &parts[i].problem);
		seen_merge(&m->releases, &parts[i].releases);
		seen_merge(&m->namespaces, &parts[i].namespaces);
	}
	return rc;
}

void cr_manifest_free(struct cr_manifest *m)
{
	free(m->docs);
	seen_free(&m->releases);
	seen_free(&m->namespaces);
	memset(m, 0, sizeof(*m));
}
