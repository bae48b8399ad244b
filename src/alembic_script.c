/* alembic_script: one revision script read without Python (alembic_script.h). */
/* memmem is a GNU extension. */
#define _GNU_SOURCE
#include "alembic_script.h"
#include "file.h"
#include "log.h"
#include "util.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------------------------ */
/* A tokenizer for the part of Python that revision scripts use. It cuts the file into
 * logical lines (brackets and backslashes join physical lines; comments and blank lines
 * vanish), each with its indentation, and knows strings well enough that a docstring or a
 * string holding `revision = "x"` is one token. f-strings are read as Python 3.12 reads
 * them (PEP 701: any expression in a replacement field, nested strings with any quotes,
 * comments and line breaks), so that the names used in their fields are seen. */

enum tok_kind { TK_NAME, TK_STRING, TK_NUMBER, TK_OP };

/* 64 bytes: a logical line's tokens are copied on the hot path. */
struct token {
	const char *s;
	size_t len;
	size_t line;
	const char *body; /* TK_STRING: between the quotes */
	size_t body_len;
	/* TK_STRING: a watched name (see watched()) used in an f-string's replacement
	 * fields, one of W_ALWAYS if there is one, or NULL. */
	const char *code;
	int depth;	  /* bracket depth before the token */
	enum tok_kind kind;
	bool plain;	  /* TK_STRING: a str whose value is its body as written */
	unsigned char code_len;
};

struct lexer {
	const char *p, *end, *line_start;
	size_t line;
	int depth;
};

struct logical_line {
	struct token *t;
	size_t n, cap;
	size_t indent; /* the column of the first token, as Python counts it */
};

/* The names a revision script's reader watches: the four variables, and the ways code can
 * reach the module's namespace (W_IMPORT only in code that runs at import, W_ALWAYS also
 * in function bodies, which may be called at import). */
enum { V_REVISION, V_DOWN, V_LABELS, V_DEPENDS, N_VARS };
enum watch_kind { W_VAR, W_IMPORT, W_ALWAYS };

struct watched {
	const char *name;
	size_t len;
	enum watch_kind kind;
	int var; /* V_*, or -1 */
};

#define WATCH(name, kind, var) { name, sizeof(name) - 1, kind, var }

/* Sorted by length: every name token of a script is looked up, and first_of_len makes
 * that one comparison or two. */
static const struct watched watched_names[] = {
	WATCH("vars", W_IMPORT, -1),	    WATCH("exec", W_ALWAYS, -1),
	WATCH("eval", W_ALWAYS, -1),	    WATCH("locals", W_IMPORT, -1),
	WATCH("setattr", W_IMPORT, -1),	    WATCH("delattr", W_IMPORT, -1),
	WATCH("globals", W_ALWAYS, -1),	    WATCH("modules", W_ALWAYS, -1),
	WATCH("revision", W_VAR, V_REVISION), WATCH("__dict__", W_IMPORT, -1),
	WATCH("f_locals", W_ALWAYS, -1),    WATCH("f_globals", W_ALWAYS, -1),
	WATCH("depends_on", W_VAR, V_DEPENDS), WATCH("__getattr__", W_IMPORT, -1),
	WATCH("__globals__", W_ALWAYS, -1), WATCH("down_revision", W_VAR, V_DOWN),
	WATCH("branch_labels", W_VAR, V_LABELS),
};

/* The names of length n are watched_names[first_of_len[n] .. first_of_len[n + 1]). */
static const unsigned char first_of_len[] = { 0, 0, 0, 0, 0, 3, 3, 4, 8, 11, 12, 13, 15, 15,
					      17 };

static const struct watched *watched(const char *s, size_t n)
{
	if (n + 1 >= sizeof(first_of_len))
		return NULL;
	for (size_t i = first_of_len[n]; i < first_of_len[n + 1]; i++)
		if (watched_names[i].name[0] == s[0] && memcmp(watched_names[i].name, s, n) == 0)
			return &watched_names[i];
	return NULL;
}

/* The name of variable v, for messages. */
static const char *var_name(int v)
{
	static const char *const names[N_VARS] = {
		[V_REVISION] = "revision", [V_DOWN] = "down_revision",
		[V_LABELS] = "branch_labels", [V_DEPENDS] = "depends_on",
	};
	return names[v];
}

static size_t newline_len(const char *p, const char *end)
{
	if (p >= end)
		return 0;
	if (*p == '\n')
		return 1;
	if (*p == '\r')
		return p + 1 < end && p[1] == '\n' ? 2 : 1;
	return 0;
}

static void lex_newline(struct lexer *lx)
{
	lx->p += newline_len(lx->p, lx->end);
	lx->line++;
	lx->line_start = lx->p;
}

static bool is_name_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '_' || (unsigned char)c >= 0x80;
}

static bool is_digit(char c)
{
	return c >= '0' && c <= '9';
}

/* A string prefix (up to two of r, b, u, f, t, any case) directly followed by a quote:
 * returns the prefix length, or -1. */
static bool is_prefix_letter(char c)
{
	switch (c) {
	case 'r': case 'R': case 'b': case 'B': case 'u': case 'U':
	case 'f': case 'F': case 't': case 'T':
		return true;
	default:
		return false;
	}
}

static int string_prefix(const char *p, const char *end)
{
	for (int k = 0; k <= 2 && p + k < end; k++) {
		if (p[k] == '"' || p[k] == '\'')
			return k;
		if (!is_prefix_letter(p[k]))
			return -1;
	}
	return -1;
}

/* Only "", r and u prefixes make a str whose value is what is written (bytes, f- and
 * t-strings are not a revision id). */
static bool plain_prefix(const char *p, int n, bool *raw)
{
	*raw = false;
	if (n == 0)
		return true;
	if (n == 1 && strchr("rRuU", p[0])) {
		*raw = p[0] == 'r' || p[0] == 'R';
		return true;
	}
	return false;
}

/* The opening of a string: its quote, single or triple, and whether it is raw and an f-
 * (or t-) string. */
struct quote {
	char q;
	size_t ql;
	bool raw, fmt;
};

static struct quote open_string(struct lexer *lx, int prefix)
{
	struct quote o = { 0 };
	for (int k = 0; k < prefix; k++) {
		char c = (char)(lx->p[k] | 0x20);
		o.raw |= c == 'r';
		o.fmt |= c == 'f' || c == 't';
	}
	const char *p = lx->p + prefix;
	o.q = *p;
	o.ql = p + 2 < lx->end && p[1] == o.q && p[2] == o.q ? 3 : 1;
	lx->p = p + o.ql;
	return o;
}

static bool closes(const struct lexer *lx, const char *p, const struct quote *o)
{
	return *p == o->q && (o->ql == 1 || (p + 2 < lx->end && p[1] == o->q && p[2] == o->q));
}

static int unterminated(const char **err)
{
	*err = "a string is not terminated";
	return -1;
}

/* A backslash and what it escapes (a line break counts as one). */
static void skip_escape(struct lexer *lx)
{
	size_t nl = newline_len(lx->p + 1, lx->end);
	lx->line += nl != 0;
	lx->p += 1 + (nl ? nl : (lx->p + 1 < lx->end));
}

/* Any other character of a string, or -1 at a line break a one-quote string can't hold. */
static int skip_char(struct lexer *lx, const struct quote *o, const char **err)
{
	size_t nl = newline_len(lx->p, lx->end);
	if (nl && o->ql == 1)
		return unterminated(err);
	lx->line += nl != 0;
	lx->p += nl ? nl : 1;
	return 0;
}

/* The body of a string that is not an f-string, up to its closing quote. */
static int string_body(struct lexer *lx, const struct quote *o, bool *escapes, const char **err)
{
	for (;;) {
		if (lx->p >= lx->end)
			return unterminated(err);
		if (*lx->p == '\\') {
			*escapes = true;
			skip_escape(lx);
		} else if (closes(lx, lx->p, o)) {
			return 0;
		} else if (skip_char(lx, o, err) < 0) {
			return -1;
		}
	}
}

/* Python stops at 150 or so; this keeps the recursion bounded on hostile input. */
#define MAX_FSTRING_NEST 32

static int fstring_body(struct lexer *lx, struct token *t, const struct quote *o, int nest,
			const char **err);

/* A name used in a replacement field: noted in t, a W_ALWAYS one first. */
static void note_code(struct token *t, const char *s, size_t n)
{
	const struct watched *w = watched(s, n);
	if (!w || (t->code && watched(t->code, t->code_len)->kind == W_ALWAYS))
		return;
	if (!t->code || w->kind == W_ALWAYS) {
		t->code = s;
		t->code_len = (unsigned char)n; /* a watched name is short */
	}
}

/* A string inside a replacement field: skipped, its own fields' names noted in t. */
static int skip_string(struct lexer *lx, struct token *t, int prefix, int nest,
		       const char **err)
{
	struct quote o = open_string(lx, prefix);
	bool escapes;
	int rc = o.fmt ? fstring_body(lx, t, &o, nest + 1, err)
		       : string_body(lx, &o, &escapes, err);
	lx->p += o.ql;
	return rc;
}

static int fstring_field(struct lexer *lx, struct token *t, const struct quote *o, int nest,
			 const char **err);

/* A format spec, after the ":" of a field and up to the field's "}": text in which "{"
 * always opens a nested field and the string's quote ends the string too early. */
static int fstring_spec(struct lexer *lx, struct token *t, const struct quote *o, int nest,
			const char **err)
{
	for (;;) {
		if (lx->p >= lx->end || closes(lx, lx->p, o)) {
			*err = "an f-string's replacement field is not closed";
			return -1;
		}
		char c = *lx->p;
		if (c == '}') {
			lx->p++;
			return 0;
		}
		if (c == '{') {
			lx->p++;
			if (fstring_field(lx, t, o, nest + 1, err) < 0)
				return -1;
		} else if (c == '\\' && lx->p + 1 < lx->end && lx->p[1] != '{' && lx->p[1] != '}') {
			skip_escape(lx);
		} else if (skip_char(lx, o, err) < 0) {
			return -1;
		}
	}
}

/* A replacement field, after its "{" and up to after its "}": an expression, then maybe
 * "!conversion" and ":spec". */
static int fstring_field(struct lexer *lx, struct token *t, const struct quote *o, int nest,
			 const char **err)
{
	if (nest > MAX_FSTRING_NEST) {
		*err = "f-strings nest too deeply";
		return -1;
	}
	int depth = 0;
	while (lx->p < lx->end) {
		const char *p = lx->p;
		char c = *p;
		size_t nl = newline_len(p, lx->end);
		int prefix = string_prefix(p, lx->end);
		if (nl) {
			lx->line++;
			lx->p += nl;
		} else if (c == '#') {
			while (lx->p < lx->end && !newline_len(lx->p, lx->end))
				lx->p++;
		} else if (c == '\\') {
			if (!newline_len(p + 1, lx->end)) {
				*err = "a backslash outside a string in an f-string's field";
				return -1;
			}
			skip_escape(lx);
		} else if (prefix >= 0) {
			if (skip_string(lx, t, prefix, nest, err) < 0)
				return -1;
		} else if (is_name_char(c)) {
			bool number = is_digit(c);
			while (lx->p < lx->end &&
			       (is_name_char(*lx->p) || (number && *lx->p == '.')))
				lx->p++;
			if (!number)
				note_code(t, p, (size_t)(lx->p - p));
		} else if (depth == 0 && (c == '}' || c == ':')) {
			lx->p++;
			return c == '}' ? 0 : fstring_spec(lx, t, o, nest, err);
		} else if (depth == 0 && c == '!' && !(p + 1 < lx->end && p[1] == '=')) {
			lx->p++; /* the conversion's name follows, then ":" or "}" */
		} else {
			depth += (c == '(' || c == '[' || c == '{') -
				 (c == ')' || c == ']' || c == '}');
			if (depth < 0) {
				*err = "an f-string's field closes a bracket it did not open";
				return -1;
			}
			lx->p++;
		}
	}
	return unterminated(err);
}

/* The literal text of an f-string up to its closing quote: "{{" and "}}" are braces, a
 * lone "{" opens a field, "\N{...}" is a character name, and a backslash does not escape
 * a brace. */
static int fstring_body(struct lexer *lx, struct token *t, const struct quote *o, int nest,
			const char **err)
{
	for (;;) {
		const char *p = lx->p;
		if (p >= lx->end)
			return unterminated(err);
		char c = *p;
		bool doubled = p + 1 < lx->end && p[1] == c;
		if (c == '\\' && !o->raw && p + 2 < lx->end && p[1] == 'N' && p[2] == '{') {
			for (lx->p += 3; lx->p < lx->end && *lx->p != '}'; lx->p++)
				if (newline_len(lx->p, lx->end) || closes(lx, lx->p, o))
					return unterminated(err);
			if (lx->p >= lx->end)
				return unterminated(err);
			lx->p++;
		} else if (c == '\\' && p + 1 < lx->end && (p[1] == '{' || p[1] == '}')) {
			lx->p++;
		} else if (c == '\\') {
			skip_escape(lx);
		} else if (closes(lx, p, o)) {
			return 0;
		} else if ((c == '{' || c == '}') && doubled) {
			lx->p += 2;
		} else if (c == '{') {
			lx->p++;
			if (fstring_field(lx, t, o, nest, err) < 0)
				return -1;
		} else if (c == '}') {
			*err = "an f-string has a single '}'";
			return -1;
		} else if (skip_char(lx, o, err) < 0) {
			return -1;
		}
	}
}

static int lex_string(struct lexer *lx, struct token *t, int prefix, const char **err)
{
	bool raw, plain = plain_prefix(lx->p, prefix, &raw), escapes = false;
	struct quote o = open_string(lx, prefix);
	t->body = lx->p;
	int rc = o.fmt ? fstring_body(lx, t, &o, 0, err) : string_body(lx, &o, &escapes, err);
	if (rc < 0)
		return -1;
	t->kind = TK_STRING;
	t->body_len = (size_t)(lx->p - t->body);
	t->plain = plain && (raw || !escapes);
	lx->p += o.ql;
	return 0;
}

/* Function bodies are tokenized too (a string there may span lines), so this is on the
 * hot path: most operators are one character, and only those that can start a longer one
 * are compared. */
static size_t op_len(const char *p, const char *end)
{
	static const char ops[][4] = { "**=", "//=", ">>=", "<<=", "...", "==", "!=", "<=",
				       ">=", ":=", "+=", "-=", "*=", "/=", "%=", "@=",
				       "&=", "|=", "^=", "->", "**", "//", "<<", ">>" };
	if (end - p < 2 || !memchr("*/<>.=!:+-%@&|^", *p, 15))
		return 1;
	for (size_t i = 0; i < sizeof(ops) / sizeof(ops[0]); i++) {
		if (ops[i][0] != p[0] || ops[i][1] != p[1])
			continue;
		if (!ops[i][2])
			return 2;
		if (end - p >= 3 && ops[i][2] == p[2])
			return 3;
	}
	return 1;
}

static int lex_token(struct lexer *lx, struct token *t, const char **err)
{
	const char *p = lx->p;
	char c = *p;
	int prefix = string_prefix(p, lx->end);
	if (prefix >= 0)
		return lex_string(lx, t, prefix, err);
	if (is_digit(c)) {
		t->kind = TK_NUMBER;
		while (lx->p < lx->end && (is_name_char(*lx->p) || *lx->p == '.'))
			lx->p++;
	} else if (is_name_char(c)) {
		t->kind = TK_NAME;
		while (lx->p < lx->end && is_name_char(*lx->p))
			lx->p++;
	} else {
		t->kind = TK_OP;
		lx->p += op_len(p, lx->end);
		if (strchr("([{", c))
			lx->depth++;
		else if (strchr(")]}", c) && lx->depth > 0)
			lx->depth--;
	}
	return 0;
}

/* Python's indentation: a tab moves to the next multiple of 8, a form feed starts over. */
static size_t column(const char *s, const char *e)
{
	size_t col = 0;
	for (; s < e; s++)
		col = *s == '\t' ? (col / 8 + 1) * 8 : *s == '\f' ? 0 : col + 1;
	return col;
}

/* The next logical line: 1, 0 at the end of the file, -1 on a tokenizing error. */
static int lex_line(struct lexer *lx, struct logical_line *ll, const char **err)
{
	ll->n = 0;
	while (lx->p < lx->end) {
		char c = *lx->p;
		if (c == ' ' || c == '\t' || c == '\f') {
			lx->p++;
		} else if (c == '#') {
			while (lx->p < lx->end && !newline_len(lx->p, lx->end))
				lx->p++;
		} else if (c == '\\' && newline_len(lx->p + 1, lx->end)) {
			lx->p++;
			lex_newline(lx);
		} else if (newline_len(lx->p, lx->end)) {
			lex_newline(lx);
			if (ll->n && lx->depth == 0)
				return 1;
		} else {
			struct token t = { .s = lx->p, .line = lx->line, .depth = lx->depth };
			if (ll->n == 0)
				ll->indent = column(lx->line_start, lx->p);
			if (lex_token(lx, &t, err) < 0)
				return -1;
			t.len = (size_t)(lx->p - t.s);
			XGROW(ll->t, ll->n + 1, ll->cap);
			ll->t[ll->n++] = t;
		}
	}
	return ll->n > 0;
}

/* ------------------------------------------------------------------------------------ */
/* A revision script: the module-level assignments of its four variables, or the reason
 * they can't be known without running Python. Code runs at import in the module's
 * statements and blocks, class bodies, decorators, default values and annotations; only
 * a plain module-level assignment is read, any other mention of the four names in such
 * code makes the script uncertain. Function bodies run only when called: there only a
 * `global` of the four names, or a way to reach the module's namespace, does. */

enum ctx { C_TOP, C_RUNS, C_FUNC };

#define MAX_INDENT 100 /* Python's tokenizer refuses more levels */

/* An open block: the indentation of its body, and what runs there (where: for messages). */
struct block {
	size_t indent;
	enum ctx ctx;
	const char *where;
};

struct script_vars {
	const char *path;
	bool set[N_VARS];
	bool is_none[N_VARS];
	bool is_list[N_VARS];
	struct cr_strlist val[N_VARS];
	struct block *blocks; /* MAX_INDENT of them; [0] is the module */
	size_t n_blocks;
	bool opening;	      /* the last line was a block header: its body comes next */
	size_t header_indent;
	struct block next;
	char *why;
};

static const char *const AT_IMPORT = "in a block that runs at import";
static const char *const IN_CLASS = "in a class body, which runs at import";

static bool tok_is(const struct token *t, enum tok_kind kind, const char *s)
{
	return t->kind == kind && t->len == strlen(s) && memcmp(t->s, s, t->len) == 0;
}

static bool is_op(const struct token *t, const char *s)
{
	return tok_is(t, TK_OP, s);
}

static int var_index(const struct token *t)
{
	const struct watched *w = t->kind == TK_NAME ? watched(t->s, t->len) : NULL;
	return w ? w->var : -1;
}

static void uncertain(struct script_vars *sv, size_t line, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void uncertain(struct script_vars *sv, size_t line, const char *fmt, ...)
{
	if (sv->why)
		return;
	char msg[256];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	sv->why = line ? xasprintf("%s:%zu: %s", sv->path, line, msg)
		       : xasprintf("%s: %s", sv->path, msg);
}

/* The line of a name inside a (multi-line) string token. */
static size_t line_of(const struct token *t, const char *at)
{
	size_t line = t->line;
	for (const char *p = t->s; p < at; p++)
		line += *p == '\n' || (*p == '\r' && p[1] != '\n');
	return line;
}

static void watched_use(struct script_vars *sv, const struct watched *w, size_t line,
			const char *where)
{
	if (w->kind == W_VAR && !where)
		uncertain(sv, line, "%s is set or used in a way chartreuse does not evaluate",
			  w->name);
	else if (w->kind == W_VAR)
		uncertain(sv, line, "%s is set or used %s", w->name, where);
	else
		uncertain(sv, line, "%s can change module variables (used %s)", w->name,
			  where ? where : "at module level");
}

/* Code that runs at import and is not one of the assignments read below: any mention of
 * the four names (but as an attribute or a keyword argument), or of a way to set them
 * indirectly, makes what it does unknown. */
static void check_import_time(struct script_vars *sv, const struct token *t, size_t s,
			      size_t e, const char *where)
{
	for (size_t i = s; i < e && !sv->why; i++) {
		if (is_op(&t[i], "*") && i > s && tok_is(&t[i - 1], TK_NAME, "import"))
			uncertain(sv, t[i].line, "a star import may define the revision variables");
		if (t[i].kind == TK_STRING && t[i].code)
			watched_use(sv, watched(t[i].code, t[i].code_len),
				    line_of(&t[i], t[i].code),
				    where ? where : "in an f-string's replacement field");
		const struct watched *w = t[i].kind == TK_NAME ? watched(t[i].s, t[i].len) : NULL;
		if (!w)
			continue;
		bool attribute = i > s && is_op(&t[i - 1], ".");
		bool keyword_arg = t[i].depth > 0 && i + 1 < e && is_op(&t[i + 1], "=");
		if (w->kind != W_VAR || (!attribute && !keyword_arg))
			watched_use(sv, w, t[i].line, where);
	}
}

/* Code in a function body: harmless unless the function is called at import and then
 * rebinds a module variable, which takes `global` or the module's namespace. */
static void check_function_code(struct script_vars *sv, const struct token *t, size_t s,
				size_t e)
{
	static const char *const in_function = "in a function, which may be called at import";
	bool in_global = false;
	for (size_t i = s; i < e && !sv->why; i++) {
		if (t[i].kind == TK_STRING && t[i].code &&
		    watched(t[i].code, t[i].code_len)->kind == W_ALWAYS)
			watched_use(sv, watched(t[i].code, t[i].code_len),
				    line_of(&t[i], t[i].code), in_function);
		if (t[i].kind != TK_NAME) {
			in_global &= !(is_op(&t[i], ";") && t[i].depth == 0);
			continue;
		}
		const struct watched *w = watched(t[i].s, t[i].len);
		if (w && w->kind == W_VAR && in_global)
			uncertain(sv, t[i].line, "a function declares %s global, so calling it can "
						 "rebind it", w->name);
		else if (w && w->kind == W_ALWAYS)
			watched_use(sv, w, t[i].line, in_function);
		in_global |= tok_is(&t[i], TK_NAME, "global");
	}
}

/* STRING (',' STRING)* [','], or nothing: the items of a tuple or list of strings. */
static bool parse_items(const struct token *t, size_t s, size_t e, struct cr_strlist *out,
			bool *comma)
{
	*comma = false;
	bool want_item = true;
	for (size_t i = s; i < e; i++) {
		if (want_item && t[i].kind == TK_STRING && t[i].plain && t[i].body_len) {
			char *v = xstrndup(t[i].body, t[i].body_len);
			cr_strlist_add(out, v);
			free(v);
		} else if (!want_item && is_op(&t[i], ",")) {
			*comma = true;
		} else {
			return false;
		}
		want_item = !want_item;
	}
	return true;
}

/* A value Alembic can be given: None, a string, a tuple or list of strings (bracketed or
 * not). Anything else (names, calls, f-strings, concatenation, empty ids) is refused. */
static bool parse_value(const struct token *t, size_t s, size_t e, struct script_vars *sv, int v)
{
	if (e - s == 1 && tok_is(&t[s], TK_NAME, "None")) {
		sv->is_none[v] = true;
		return true;
	}
	bool comma;
	bool bracketed = e - s >= 2 && ((is_op(&t[s], "(") && is_op(&t[e - 1], ")")) ||
					(is_op(&t[s], "[") && is_op(&t[e - 1], "]")));
	if (bracketed) {
		sv->is_list[v] = true;
		return parse_items(t, s + 1, e - 1, &sv->val[v], &comma);
	}
	if (!parse_items(t, s, e, &sv->val[v], &comma) || sv->val[v].n == 0)
		return false;
	sv->is_list[v] = comma;
	return true;
}

/* `name = value` or `name: annotation = value`, name being one of the four. */
static void read_assignment(struct script_vars *sv, const struct token *t, size_t s, size_t e,
			    int v)
{
	size_t eq = s + 1;
	if (eq < e && is_op(&t[eq], ":"))
		while (eq < e && !(is_op(&t[eq], "=") && t[eq].depth == 0))
			eq++;
	if (eq >= e || !is_op(&t[eq], "=")) {
		uncertain(sv, t[s].line, "%s is set or used in a way chartreuse does not evaluate",
			  var_name(v));
		return;
	}
	/* the annotation runs at import too */
	check_import_time(sv, t, s + 2, eq, "in an annotation, which runs at import");
	if (sv->why)
		return;
	if (sv->set[v]) {
		uncertain(sv, t[s].line, "%s is assigned twice", var_name(v));
		return;
	}
	sv->set[v] = true;
	if (!parse_value(t, eq + 1, e, sv, v))
		uncertain(sv, t[s].line, "%s is not a string, None or a tuple/list of strings",
			  var_name(v));
}

/* A simple statement at module level. */
static void read_statement(struct script_vars *sv, const struct token *t, size_t s, size_t e)
{
	if (s == e)
		return;
	int v = var_index(&t[s]);
	if (v >= 0)
		read_assignment(sv, t, s, e, v);
	else
		check_import_time(sv, t, s, e, NULL);
}

static bool starts_compound(const struct token *t)
{
	static const char *const keywords[] = { "if",	  "elif",   "else", "for",  "while",
						"try",	  "except", "finally", "with", "async" };
	for (size_t k = 0; k < sizeof(keywords) / sizeof(keywords[0]); k++)
		if (tok_is(&t[0], TK_NAME, keywords[k]))
			return true;
	return false;
}

/* The ":" that ends the header of a compound statement (its first at depth 0: a lambda
 * in a header is in brackets), or e. */
static size_t header_colon(const struct token *t, size_t s, size_t e)
{
	while (s < e && !(is_op(&t[s], ":") && t[s].depth == 0))
		s++;
	return s;
}

static void open_block(struct script_vars *sv, size_t header_indent, enum ctx ctx,
		       const char *where)
{
	sv->opening = true;
	sv->header_indent = header_indent;
	sv->next = (struct block){ 0, ctx, where };
}

/* The block a line of this indentation belongs to, as Python's INDENT/DEDENT decide; NULL
 * (uncertain) where Python refuses the indentation. */
static const struct block *enter_block(struct script_vars *sv, size_t indent, size_t line)
{
	if (sv->opening) {
		sv->opening = false;
		if (indent <= sv->header_indent) {
			uncertain(sv, line, "a block has no indented body (Python refuses the "
					    "script)");
			return NULL;
		}
		if (sv->n_blocks == MAX_INDENT) {
			uncertain(sv, line, "blocks nest too deeply (Python refuses the script)");
			return NULL;
		}
		sv->next.indent = indent;
		sv->blocks[sv->n_blocks++] = sv->next;
	}
	while (sv->n_blocks > 1 && sv->blocks[sv->n_blocks - 1].indent > indent)
		sv->n_blocks--;
	if (sv->blocks[sv->n_blocks - 1].indent != indent) {
		uncertain(sv, line, "unexpected indentation (Python refuses the script)");
		return NULL;
	}
	return &sv->blocks[sv->n_blocks - 1];
}

/* `def name(...) -> ...:` or `class name(...):` in code that runs at import: the name is
 * bound, the defaults, annotations and bases run; a body on the same line, or the block
 * that follows, is a function's or runs at import (a class's). */
static void read_definition(struct script_vars *sv, const struct logical_line *ll, size_t kw)
{
	const struct token *t = ll->t;
	bool is_class = tok_is(&t[kw], TK_NAME, "class");
	size_t name = kw + 1, n = ll->n;
	if (name >= n)
		return;
	int v = var_index(&t[name]);
	if (v >= 0)
		uncertain(sv, t[name].line, "%s is rebound by a %s", var_name(v),
			  is_class ? "class" : "def");
	else if (!is_class && tok_is(&t[name], TK_NAME, "__getattr__"))
		uncertain(sv, t[name].line, "a module __getattr__ can provide the variables");
	size_t colon = header_colon(t, name + 1, n);
	check_import_time(sv, t, name + 1, colon,
			  is_class ? "in a class's bases or keywords, which run at import"
				   : "in a def's defaults or annotations, which run at import");
	if (colon + 1 < n && is_class)
		check_import_time(sv, t, colon + 1, n, IN_CLASS);
	else if (colon + 1 < n)
		check_function_code(sv, t, colon + 1, n);
	else if (colon < n)
		open_block(sv, ll->indent, is_class ? C_RUNS : C_FUNC, is_class ? IN_CLASS : NULL);
}

static void read_line(struct script_vars *sv, const struct logical_line *ll)
{
	const struct token *t = ll->t;
	size_t n = ll->n;
	const struct block *b = enter_block(sv, ll->indent, t[0].line);
	if (!b)
		return;
	bool opens = is_op(&t[n - 1], ":") && t[n - 1].depth == 0;
	size_t kw = n > 1 && tok_is(&t[0], TK_NAME, "async") ? 1 : 0;
	bool definition = tok_is(&t[kw], TK_NAME, "def") || tok_is(&t[0], TK_NAME, "class");
	if (b->ctx == C_FUNC) {
		check_function_code(sv, t, 0, n);
		if (opens)
			open_block(sv, ll->indent, C_FUNC, NULL);
	} else if (is_op(&t[0], "@")) {
		check_import_time(sv, t, 1, n, "in a decorator, which runs at import");
	} else if (definition) {
		read_definition(sv, ll, kw);
	} else if (opens || starts_compound(t)) {
		const char *where = b->ctx == C_TOP ? AT_IMPORT : b->where;
		check_import_time(sv, t, 0, n, where);
		if (opens)
			open_block(sv, ll->indent, C_RUNS, where);
	} else if (b->ctx == C_RUNS) {
		check_import_time(sv, t, 0, n, b->where);
	} else {
		size_t s = 0;
		for (size_t i = 0; i <= n; i++)
			if (i == n || (is_op(&t[i], ";") && t[i].depth == 0)) {
				read_statement(sv, t, s, i);
				s = i + 1;
			}
	}
}

static void script_vars_free(struct script_vars *sv)
{
	for (int v = 0; v < N_VARS; v++)
		cr_strlist_free(&sv->val[v]);
	free(sv->why);
}

/* Alembic's legacy rule: a script without `revision` named "<hex>.py" has that id. */
static char *legacy_revision(const char *path)
{
	const char *name = strrchr(path, '/') + 1;
	size_t n = strspn(name, "0123456789abcdef");
	return n && strcmp(name + n, ".py") == 0 ? xstrndup(name, n) : NULL;
}

static void move_list(struct cr_strlist *to, struct cr_strlist *from)
{
	*to = *from;
	memset(from, 0, sizeof(*from));
}

/* The variables as Alembic's Script/Revision take them, or why they can't be. */
static int make_revision(struct script_vars *sv, struct cr_revision *rev, char **why)
{
	char *id = NULL;
	if (!sv->set[V_REVISION] && !(id = legacy_revision(sv->path)))
		uncertain(sv, 0, "no module-level revision = \"...\" (Alembic cannot load it)");
	else if (!sv->set[V_DOWN])
		uncertain(sv, 0, "no module-level down_revision (Alembic cannot load it)");
	else if (!id && (sv->is_none[V_REVISION] || sv->is_list[V_REVISION]))
		uncertain(sv, 0, "revision is not a string");
	if (!id && !sv->why)
		id = xstrdup(sv->val[V_REVISION].items[0]);
	if (!sv->why && strpbrk(id, "@-+"))
		uncertain(sv, 0, "revision %s has a character Alembic refuses (@, -, +)", id);
	if (sv->why) {
		free(id);
		*why = sv->why;
		sv->why = NULL;
		return 1;
	}
	rev->id = id;
	rev->path = xstrdup(sv->path);
	move_list(&rev->down, &sv->val[V_DOWN]);
	move_list(&rev->depends_on, &sv->val[V_DEPENDS]);
	move_list(&rev->branch_labels, &sv->val[V_LABELS]);
	return 0;
}

/* What reading scripts needs, kept from one script to the next (thousands of them). */
struct cr_script_reader {
	struct cr_buf text;
	struct logical_line ll;
	struct block blocks[MAX_INDENT];
};

struct cr_script_reader *cr_script_reader_new(void)
{
	return xcalloc(1, sizeof(struct cr_script_reader));
}

void cr_script_reader_free(struct cr_script_reader *r)
{
	if (!r)
		return;
	cr_buf_free(&r->text);
	free(r->ll.t);
	free(r);
}

int cr_script_read(struct cr_script_reader *r, const char *path, struct cr_revision *rev,
		   char **why)
{
	r->text.len = 0;
	if (cr_read_file(path, &r->text) < 0)
		return -1;
	const char *text = r->text.data;
	r->blocks[0] = (struct block){ 0, C_TOP, NULL };
	struct script_vars sv = { .path = path, .blocks = r->blocks, .n_blocks = 1 };
	struct lexer lx = { text, text + r->text.len, text, 1, 0 };
	if (r->text.len >= 3 && memcmp(text, "\xef\xbb\xbf", 3) == 0)
		lx.p = lx.line_start = text + 3; /* a UTF-8 byte order mark */
	const char *err = NULL;
	while (!sv.why && lex_line(&lx, &r->ll, &err) > 0)
		read_line(&sv, &r->ll);
	if (err)
		uncertain(&sv, lx.line, "%s", err);
	else if (sv.opening)
		uncertain(&sv, lx.line, "a block has no indented body (Python refuses the script)");
	int rc = make_revision(&sv, rev, why);
	script_vars_free(&sv);
	return rc;
}
