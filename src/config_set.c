/* config_set: the --set path language, as Helm reads --set (config.h). */
#include "config.h"
#include "config_schema.h"
#include "log.h"
#include "util.h"
#include "ytree.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* How an assignment's value is read: Helm's --set (comma-separated assignments, values
 * typed as Helm types them where the schema does not say), --set-string (the same, every
 * value a string), or one assignment whose value is taken whole (migrate's environment
 * variables, which may hold any character). */
enum set_mode { SET_TYPED, SET_STRING, SET_WHOLE };

/* One step of a key: a mapping key, or a list index (key NULL). */
struct set_step {
	char *key;
	long index;
};

/* The assignment being applied. Its messages name the key, never the value: a value may
 * be a password or a URL, or a piece of one cut off at a comma. Only a value the schema
 * closes (a boolean, an integer, one of an enum's words) is shown, since none can be. */
struct set_ctx {
	const char *option; /* "--set", "--set-string", "setting" */
	enum set_mode mode;
	const char *key;    /* as written */
	int key_len;
	struct set_step *steps;
	size_t n, cap;
};

/* Where the schema puts an assignment's value. */
struct set_target {
	const struct field *f;	  /* the last schema key on the way */
	const struct field *free; /* the free-form setting the value is in (or is) */
	size_t free_at;		  /* the step that names it */
	bool args_item;		  /* an item of additionalParameters */
};

/* The largest list index --set takes: lists in a config are short, and each index below
 * it that is missing gets an item (a huge index would fill the memory). */
#define SET_MAX_INDEX 1000

__attribute__((format(printf, 2, 3)))
static int set_error(const struct set_ctx *c, const char *fmt, ...)
{
	char msg[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	cr_error("%s %.*s: %s", c->option, c->key_len, c->key, msg);
	return -1;
}

/* The key up to step `upto`, for messages: "databases[0].host". */
static const char *steps_text(const struct set_ctx *c, size_t upto, struct cr_buf *b)
{
	cr_buf_reset(b);
	for (size_t i = 0; i <= upto && i < c->n; i++) {
		if (c->steps[i].key)
			cr_buf_printf(b, "%s%s", i ? "." : "", c->steps[i].key);
		else
			cr_buf_printf(b, "[%ld]", c->steps[i].index);
	}
	return b->data ? b->data : "";
}

static void clear_steps(struct set_ctx *c)
{
	for (size_t i = 0; i < c->n; i++)
		free(c->steps[i].key);
	c->n = 0;
}

static int add_step(struct set_ctx *c, char *key, long index)
{
	if (c->n == CR_CONFIG_MAX_DEPTH) {
		free(key);
		return set_error(c, "the key has more than %d parts", CR_CONFIG_MAX_DEPTH);
	}
	XGROW(c->steps, c->n + 1, c->cap);
	c->steps[c->n++] = (struct set_step){ key, index };
	return 0;
}

/* A list index written as digits: 0 (and *idx set), -1 when s is not one, -2 when it is
 * above SET_MAX_INDEX. */
static int index_of(const char *s, size_t len, long *idx)
{
	if (!len || strspn(s, "0123456789") < len)
		return -1;
	if (len > 4 || (*idx = strtol(s, NULL, 10)) > SET_MAX_INDEX)
		return -2;
	return 0;
}

/* "[N]" at *p (past the '['), within the key that ends at e. */
static int parse_index(struct set_ctx *c, const char **p, const char *e)
{
	const char *close = memchr(*p, ']', (size_t)(e - *p));
	if (!close)
		return set_error(c, "a '[' without its ']'");
	int len = (int)(close - *p);
	long idx = 0;
	int rc = index_of(*p, (size_t)len, &idx);
	if (rc == -1)
		return set_error(c, "[%.*s] is not a list index (a number from 0 to %d)", len, *p,
				 SET_MAX_INDEX);
	if (rc == -2)
		return set_error(c, "list index %.*s is too large (at most %d)", len, *p,
				 SET_MAX_INDEX);
	*p = close + 1;
	return add_step(c, NULL, idx);
}

/* Splits the key [s, e) as Helm does: '.' between keys, "[N]" after one, '\' taking the
 * next character as it is ("a\.b" is the key "a.b"). */
static int parse_key(struct set_ctx *c, const char *s, const char *e)
{
	const char *p = s;
	for (;;) {
		struct cr_buf name = { 0 };
		while (p < e && *p != '.' && *p != '[') {
			if (*p == '\\' && p + 1 < e)
				p++;
			cr_buf_addc(&name, *p++);
		}
		if (!name.len) {
			cr_buf_free(&name);
			return set_error(c, "a part of the key is empty");
		}
		if (add_step(c, cr_buf_detach(&name, NULL), 0))
			return -1;
		while (p < e && *p == '[') {
			p++;
			if (parse_index(c, &p, e))
				return -1;
		}
		if (p == e)
			return 0;
		if (*p != '.')
			return set_error(c, "unexpected text after [%ld]: a key goes after a '.'",
					 c->steps[c->n - 1].index);
		p++;
	}
}

/* The first '=' or ',' at or after p that no '\' escapes, or the end. */
static const char *key_end(const char *p)
{
	for (; *p && *p != '=' && *p != ','; p++)
		if (*p == '\\' && p[1])
			p++;
	return p;
}

/* Reads up to the first of stops that no '\' escapes (consumed) or the end; '\' takes the
 * next character as it is, and one at the very end is dropped, as Helm drops it. Returns
 * the stop found, 0 at the end. */
static char read_until(const char **p, const char *stops, struct cr_buf *out)
{
	const char *s = *p;
	char stop = 0;
	while (*s) {
		if (*s == '\\') {
			if (s[1])
				cr_buf_addc(out, s[1]);
			s += s[1] ? 2 : 1;
		} else if (strchr(stops, *s)) {
			stop = *s++;
			break;
		} else {
			cr_buf_addc(out, *s++);
		}
	}
	*p = s;
	return stop;
}

/* A value: one scalar, or "{a,b}" (a list of scalars). Items go to *items. */
static int parse_value(const struct set_ctx *c, const char **p, struct cr_strlist *items,
		       bool *list)
{
	struct cr_buf item = { 0 };
	*list = false;
	if (c->mode == SET_WHOLE || **p != '{') {
		if (c->mode == SET_WHOLE) {
			cr_buf_adds(&item, *p);
			*p += strlen(*p);
		} else {
			read_until(p, ",", &item);
		}
		cr_strlist_add(items, item.data ? item.data : "");
		cr_buf_free(&item);
		return 0;
	}
	*list = true;
	(*p)++;
	for (char stop = 0; stop != '}';) {
		stop = read_until(p, ",}", &item);
		cr_strlist_add(items, item.data ? item.data : "");
		cr_buf_reset(&item);
		if (!stop) {
			cr_buf_free(&item);
			return set_error(c, "a {...} list must end with '}'");
		}
	}
	cr_buf_free(&item);
	if (**p == ',')
		(*p)++;
	return 0;
}

/* Where the schema says a list, "databases.0" means databases[0]. */
static void number_as_index(struct set_step *s)
{
	long idx;
	if (s->key && index_of(s->key, strlen(s->key), &idx) == 0) {
		free(s->key);
		*s = (struct set_step){ NULL, idx };
	}
}

/* Follows the key through the schema into t; reports a key the schema does not have or
 * a step of the wrong kind (a key where a list needs an index, keys under a value). */
static int resolve(struct set_ctx *c, struct set_target *t)
{
	const struct field *fields = cr_config_fields, *f = NULL;
	struct cr_buf b = { 0 };
	int rc = 0;
	for (size_t i = 0; !rc && i < c->n; i++) {
		struct set_step *s = &c->steps[i];
		bool last = i + 1 == c->n;
		if (t->free) {
			/* The first level under a free-form setting is its type's. */
			if (i == t->free_at + 1 && t->free->type == F_LIST)
				number_as_index(s);
			if (i == t->free_at + 1 && t->free->type == F_LIST && s->key)
				rc = set_error(c, "%s is a list: give an index, as in %s[0]",
					       t->free->key, t->free->key);
			else if (i == t->free_at + 1 && t->free->type == F_MAP && !s->key)
				rc = set_error(c, "%s is a mapping, not a list", t->free->key);
			continue;
		}
		if (!f || f->type == F_OBJ) {
			if (!s->key) {
				rc = set_error(c, "%s is not a list", steps_text(c, i - 1, &b));
				continue;
			}
			f = cr_config_field(fields, s->key, strlen(s->key));
			if (!f)
				rc = set_error(c, "unknown key %s", s->key);
			else if (f->type == F_OBJ)
				fields = f->sub;
			else if (f->type == F_MAP || f->type == F_LIST)
				*t = (struct set_target){ f, f, i, false };
			continue;
		}
		if (f->type == F_OBJ_LIST || (f->type == F_ARGS && !t->args_item))
			number_as_index(s);
		if (f->type == F_OBJ_LIST && s->key) {
			rc = set_error(c, "%s is a list: give an index, as in %s[0].%s", f->key,
				       f->key, s->key);
		} else if (f->type == F_OBJ_LIST && last) {
			rc = set_error(c, "name a key of %s", steps_text(c, i, &b));
		} else if (f->type == F_OBJ_LIST) {
			fields = f->sub;
			f = NULL;
		} else if (f->type == F_ARGS && !s->key && !t->args_item) {
			t->args_item = true;
		} else {
			rc = set_error(c, "%s holds a single value: it has no keys or items",
				       steps_text(c, i - 1, &b));
		}
	}
	if (!t->free)
		t->f = f;
	cr_buf_free(&b);
	return rc;
}

/* Helm's integers: an optional sign and digits, no leading zero but "0" itself, in 64 bits. */
static bool helm_int(const char *s, long *out)
{
	const char *digits = s + (*s == '+' || *s == '-');
	if (!*digits || strspn(digits, "0123456789") != strlen(digits) ||
	    (*s == '0' && s[1]))
		return false;
	errno = 0;
	long v = strtol(s, NULL, 10);
	if (errno)
		return false;
	*out = v;
	return true;
}

/* The node Helm's --set makes of a value: true and false (in any case) booleans, null,
 * integers, and strings for everything else ("1.5", "01", "1e3", "0x1f"). */
static struct fy_node *helm_typed(struct fy_document *d, const char *s)
{
	long l;
	if (!strcasecmp(s, "true") || !strcasecmp(s, "false"))
		return yt_bool(d, tolower((unsigned char)*s) == 't');
	if (!strcasecmp(s, "null"))
		return yt_null(d);
	if (helm_int(s, &l))
		return yt_int(d, l);
	return yt_str(d, s);
}

/* Inside a free-form setting, whether Kubernetes types the value at the key as a string:
 * any value of a string map, or a listed key of a list's item. */
static bool string_leaf(const struct set_ctx *c, const struct set_target *t)
{
	const char *const *s = t->free->strings;
	size_t rel = c->n - 1 - t->free_at;
	const char *key = c->steps[c->n - 1].key;
	if (!s || !key)
		return false;
	if (t->free->type == F_MAP)
		return rel == 1;
	for (; rel == 2 && *s; s++)
		if (!strcmp(*s, key))
			return true;
	return false;
}

/* The value for a free-form key, typed as Helm types it unless a string is wanted. */
static struct fy_node *free_value(struct fy_document *d, const struct set_ctx *c,
				  const struct set_target *t, const struct cr_strlist *items,
				  bool list)
{
	bool leaf = t->free_at + 1 < c->n && string_leaf(c, t);
	bool strings = c->mode != SET_TYPED || leaf;
	if (list && leaf) {
		set_error(c, "Kubernetes wants a string here: one value, not a {...} list");
		return NULL;
	}
	if (!list)
		return strings ? yt_str(d, items->items[0]) : helm_typed(d, items->items[0]);
	struct fy_node *seq = yt_seq(d);
	for (size_t i = 0; i < items->n; i++)
		yt_append(seq, strings ? yt_str(d, items->items[i])
				       : helm_typed(d, items->items[i]));
	return seq;
}

/* A value for a schema key that holds one scalar, converted to the key's type. */
static struct fy_node *schema_scalar(struct fy_document *d, const struct set_ctx *c,
				     const struct field *f, const char *value)
{
	long l;
	bool b;
	if (!*value && c->mode != SET_WHOLE && f->type != F_ARGS) {
		set_error(c, "the value is empty, and %s can't be: give one, or unset it with "
			     "--set %.*s=null", f->key, c->key_len, c->key);
		return NULL;
	}
	switch (f->type) {
	case F_ENUM:
		if (cr_config_in_choices(value, f->choices))
			return yt_str(d, value);
		break;
	case F_BOOL:
		if (cr_parse_bool(value, &b))
			return yt_bool(d, b);
		break;
	case F_INT:
	case F_WEIGHT:
		if (cr_config_parse_long(value, &l))
			return yt_int(d, l);
		break;
	default:
		return yt_str(d, value);
	}
	/* A closed type: the value can be shown (see struct set_ctx). */
	struct cr_buf ch = { 0 };
	if (f->type == F_ENUM) {
		cr_buf_adds(&ch, "one of: ");
		cr_config_choices_text(&ch, f->choices);
	}
	cr_error("%s %.*s=%s: %s expects %s", c->option, c->key_len, c->key, value, f->key,
		 f->type == F_ENUM ? ch.data : f->type == F_BOOL ? "true or false" : "an integer");
	cr_buf_free(&ch);
	return NULL;
}

/* The node an assignment sets, or NULL after reporting. */
static struct fy_node *set_value_node(struct fy_document *d, const struct set_ctx *c,
				      const struct set_target *t, const struct cr_strlist *items,
				      bool list)
{
	const struct field *f = t->f;
	if (c->mode == SET_TYPED && !list && !strcasecmp(items->items[0], "null"))
		return yt_null(d); /* as in Helm: unset, so the default applies */
	if (t->free && (t->free_at + 1 < c->n || (list && f->type == F_LIST)))
		return free_value(d, c, t, items, list);
	if (f->type == F_ARGS && list && !t->args_item) {
		struct fy_node *seq = yt_seq(d);
		for (size_t i = 0; i < items->n; i++)
			yt_append(seq, yt_str(d, items->items[i]));
		return seq;
	}
	if (f->type == F_OBJ || f->type == F_OBJ_LIST || f->type == F_MAP || f->type == F_LIST) {
		set_error(c, "%s is not a single value; set its keys one by one", f->key);
		return NULL;
	}
	if (list) {
		set_error(c, "%s takes one value, not a {...} list", f->key);
		return NULL;
	}
	return schema_scalar(d, c, f, items->items[0]);
}

/* Item idx of seq, with null items before it where missing (as Helm pads lists). */
static struct fy_node *seq_at(struct fy_node *seq, long idx)
{
	struct fy_document *d = fy_node_document(seq);
	for (long n = fy_node_sequence_item_count(seq); n <= idx; n++)
		yt_append(seq, yt_null(d));
	return fy_node_sequence_get_by_index(seq, (int)idx);
}

static struct fy_node *child_at(struct fy_node *cur, const struct set_step *s)
{
	return s->key ? yt_get(cur, s->key) : seq_at(cur, s->index);
}

static void put_at(struct fy_node *cur, const struct set_step *s, struct fy_node *v)
{
	if (s->key) {
		yt_set(cur, s->key, v);
		return;
	}
	struct fy_node *old = seq_at(cur, s->index);
	fy_node_sequence_insert_after(cur, old, v);
	fy_node_free(fy_node_sequence_remove(cur, old));
}

/* Walks the key down the tree, making the mappings and lists it names, and puts v (ours
 * until then) at its end. */
static int place(struct fy_node *root, struct set_ctx *c, struct fy_node *v)
{
	struct fy_document *d = fy_node_document(root);
	struct fy_node *cur = root;
	struct cr_buf b = { 0 };
	for (size_t i = 0; i + 1 < c->n; i++) {
		struct set_step *s = &c->steps[i], *next = &c->steps[i + 1];
		struct fy_node *ch = child_at(cur, s);
		if (yt_is_seq(ch))
			number_as_index(next); /* "x.0" into a list there already */
		bool want_seq = !next->key;
		if (want_seq ? yt_is_seq(ch) : yt_is_map(ch)) {
			cur = ch;
			continue;
		}
		/* Helm makes a mapping of a list item that is not one; anything else that is
		 * there already is kept, and the assignment refused. */
		if (ch && !yt_is_null(ch) && (s->key || want_seq)) {
			set_error(c, "%s is %s, not %s", steps_text(c, i, &b), yt_kind(ch),
				  want_seq ? "a list" : "a mapping");
			cr_buf_free(&b);
			fy_node_free(v);
			return -1;
		}
		struct fy_node *n = want_seq ? yt_seq(d) : yt_map(d);
		put_at(cur, s, n);
		cur = n;
	}
	put_at(cur, &c->steps[c->n - 1], v);
	cr_buf_free(&b);
	return 0;
}

/* One assignment at *p; moves *p past it (and its ','). */
static int set_one(struct fy_node *root, struct set_ctx *c, const char **p, const char *prev,
		   int prev_len)
{
	const char *start = *p;
	const char *eq = c->mode == SET_WHOLE ? strchr(start, '=') : key_end(start);
	c->key = start;
	c->key_len = 0;
	if (!eq || *eq != '=') {
		/* The text may be a piece of a value a comma cut off: it is not shown. */
		if (prev)
			cr_error("%s: the text after the assignment to %.*s has no '=': a ',' in a "
				 "value is written '\\,' (expected KEY=VALUE[,KEY=VALUE...])",
				 c->option, prev_len, prev);
		else
			cr_error("%s: expected KEY=VALUE[,KEY=VALUE...], found no '='", c->option);
		return -1;
	}
	c->key_len = (int)(eq - start);
	if (eq == start) {
		cr_error("%s: an assignment has no key before its '='", c->option);
		return -1;
	}
	*p = eq + 1;
	struct cr_strlist items = { 0 };
	struct set_target t = { 0 };
	struct fy_node *v = NULL;
	bool list;
	int rc = -1;
	if (!parse_key(c, start, eq) && !parse_value(c, p, &items, &list) && !resolve(c, &t))
		rc = 0;
	if (!rc && !(v = set_value_node(fy_node_document(root), c, &t, &items, list)))
		rc = -1;
	if (!rc)
		rc = place(root, c, v);
	cr_strlist_free(&items);
	clear_steps(c);
	return rc;
}

static int apply_sets(struct fy_node *root, const char *arg, enum set_mode mode,
		      const char *option)
{
	size_t len = strlen(arg);
	if (cr_utf8_invalid_at(arg, len) < len) {
		cr_error("%s: an assignment is not UTF-8 text (byte %zu)", option,
			 cr_utf8_invalid_at(arg, len) + 1);
		return -1;
	}
	struct set_ctx c = { .option = option, .mode = mode };
	const char *p = arg, *prev = NULL;
	int rc, prev_len = 0;
	do {
		rc = set_one(root, &c, &p, prev, prev_len);
		prev = c.key;
		prev_len = c.key_len;
	} while (!rc && *p);
	free(c.steps);
	return rc;
}

int cr_config_set_arg(struct fy_node *root, const char *arg, bool as_string)
{
	return apply_sets(root, arg, as_string ? SET_STRING : SET_TYPED,
			  as_string ? "--set-string" : "--set");
}

int cr_config_set(struct fy_node *root, const char *assignment)
{
	return apply_sets(root, assignment, SET_WHOLE, "setting");
}

