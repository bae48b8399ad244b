#include "labels.h"
#include "log.h"
#include "util.h"
#include "ytree.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

enum op { OP_EQ, OP_NE, OP_IN, OP_NOTIN, OP_EXISTS, OP_ABSENT };

struct term {
	enum op op;
	char *key;
	struct cr_strlist values;
};

struct cr_selector {
	struct term *terms;
	size_t n;
};

void cr_selector_free(struct cr_selector *s)
{
	if (!s)
		return;
	for (size_t i = 0; i < s->n; i++) {
		free(s->terms[i].key);
		cr_strlist_free(&s->terms[i].values);
	}
	free(s->terms);
	free(s);
}

static const char *skip_blanks(const char *p)
{
	while (*p == ' ' || *p == '\t')
		p++;
	return p;
}

/* Label keys and values: letters, digits and "-_./". */
static bool name_char(char c)
{
	return isalnum((unsigned char)c) || strchr("-_./", c);
}

static char *word(const char **p)
{
	const char *start = *p = skip_blanks(*p);
	while (**p && name_char(**p))
		(*p)++;
	return xstrndup(start, (size_t)(*p - start));
}

static bool keyword(const char **p, const char *kw)
{
	const char *q = skip_blanks(*p);
	size_t n = strlen(kw);
	if (strncmp(q, kw, n) || name_char(q[n]))
		return false;
	*p = q + n;
	return true;
}

/* "(a, b, c)" */
static bool value_set(const char **p, struct cr_strlist *out)
{
	*p = skip_blanks(*p);
	if (**p != '(')
		return false;
	(*p)++;
	for (;;) {
		char *v = word(p);
		cr_strlist_add(out, v);
		free(v);
		*p = skip_blanks(*p);
		if (**p == ')') {
			(*p)++;
			return true;
		}
		if (**p != ',')
			return false;
		(*p)++;
	}
}

static bool one_value(const char **p, struct term *t)
{
	char *v = word(p);
	cr_strlist_add(&t->values, v);
	free(v);
	return true;
}

static bool parse_term(const char **p, struct term *t)
{
	*p = skip_blanks(*p);
	bool negated = **p == '!';
	if (negated)
		(*p)++;
	t->key = word(p);
	if (!*t->key)
		return false;
	const char *q = skip_blanks(*p);
	if (negated || !*q || *q == ',') {
		t->op = negated ? OP_ABSENT : OP_EXISTS;
		*p = q;
		return true;
	}
	if (!strncmp(q, "!=", 2) || !strncmp(q, "==", 2) || *q == '=') {
		t->op = *q == '!' ? OP_NE : OP_EQ;
		*p = q + (q[1] == '=' ? 2 : 1);
		return one_value(p, t);
	}
	if (keyword(p, "in")) {
		t->op = OP_IN;
		return value_set(p, &t->values);
	}
	if (keyword(p, "notin")) {
		t->op = OP_NOTIN;
		return value_set(p, &t->values);
	}
	return false;
}

struct cr_selector *cr_selector_parse(const char *text)
{
	struct cr_selector *s = xcalloc(1, sizeof(*s));
	const char *p = skip_blanks(text);
	while (*p) {
		s->terms = xrealloc(s->terms, (s->n + 1) * sizeof(*s->terms));
		struct term *t = &s->terms[s->n++];
		memset(t, 0, sizeof(*t));
		bool ok = parse_term(&p, t);
		p = skip_blanks(p);
		if (ok && *p == ',')
			p = skip_blanks(p + 1);
		else if (ok && *p)
			ok = false;
		if (!ok) {
			cr_error("not a label selector: %s", text);
			cr_selector_free(s);
			return NULL;
		}
	}
	return s;
}

static bool term_matches(const struct term *t, struct fy_node *labels)
{
	char *value = yt_strdup(yt_get(labels, t->key));
	bool has = value != NULL;
	bool in = has && cr_strlist_has(&t->values, value);
	free(value);
	switch (t->op) {
	case OP_EQ:
	case OP_IN:
		return in;
	case OP_NE:
	case OP_NOTIN:
		return !in; /* absent counts as "not equal", as the API server reads it */
	case OP_EXISTS:
		return has;
	case OP_ABSENT:
		return !has;
	}
	return false;
}

bool cr_selector_matches(const struct cr_selector *s, struct fy_node *labels)
{
	for (size_t i = 0; i < s->n; i++)
		if (!term_matches(&s->terms[i], labels))
			return false;
	return true;
}
