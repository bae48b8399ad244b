#include "util.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void die_oom(size_t n)
{
	/* No allocation is possible any more: write the message without formatting help. */
	static const char msg[] = "chartreuse: error: out of memory\n";
	(void)n;
	if (write(2, msg, sizeof(msg) - 1) < 0)
		_exit(70);
	_exit(70);
}

void *xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);
	if (!p)
		die_oom(n);
	return p;
}

void *xcalloc(size_t n, size_t size)
{
	void *p = calloc(n ? n : 1, size ? size : 1);
	if (!p)
		die_oom(n * size);
	return p;
}

void *xrealloc(void *p, size_t n)
{
	void *q = realloc(p, n ? n : 1);
	if (!q)
		die_oom(n);
	return q;
}

char *xstrdup(const char *s)
{
	return xstrndup(s, strlen(s));
}

char *xstrndup(const char *s, size_t n)
{
	char *p = xmalloc(n + 1);
	memcpy(p, s, n);
	p[n] = '\0';
	return p;
}

char *xvasprintf(const char *fmt, va_list ap)
{
	struct cr_buf b = { 0 };
	va_list cp;
	va_copy(cp, ap);
	int n = vsnprintf(NULL, 0, fmt, cp);
	va_end(cp);
	cr_buf_reserve(&b, n > 0 ? (size_t)n : 0);
	vsnprintf(b.data, b.cap, fmt, ap);
	return b.data;
}

char *xasprintf(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	char *s = xvasprintf(fmt, ap);
	va_end(ap);
	return s;
}

void cr_strlist_add(struct cr_strlist *l, const char *s)
{
	/* Grows by doubling: the capacity is the next power of two above n. */
	if ((l->n & (l->n - 1)) == 0)
		l->items = xrealloc(l->items, (l->n ? l->n * 2 : 1) * sizeof(*l->items));
	l->items[l->n++] = xstrdup(s);
}

bool cr_strlist_has(const struct cr_strlist *l, const char *s)
{
	for (size_t i = 0; i < l->n; i++)
		if (strcmp(l->items[i], s) == 0)
			return true;
	return false;
}

void cr_strlist_free(struct cr_strlist *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->items[i]);
	free(l->items);
	l->items = NULL;
	l->n = 0;
}

void cr_strlist_text(struct cr_buf *b, const struct cr_strlist *l, size_t max)
{
	if (!l->n)
		cr_buf_adds(b, "(none)");
	for (size_t i = 0; i < l->n && i < max; i++)
		cr_buf_printf(b, "%s%s", i ? ", " : "", l->items[i]);
	if (l->n > max)
		cr_buf_printf(b, ", ... (%zu in all)", l->n);
}

void cr_buf_reserve(struct cr_buf *b, size_t extra)
{
	size_t need = b->len + extra + 1;
	if (need <= b->cap)
		return;
	size_t cap = b->cap ? b->cap : 64;
	while (cap < need)
		cap *= 2;
	bool fresh = !b->data;
	b->data = xrealloc(b->data, cap);
	b->cap = cap;
	if (fresh)
		b->data[b->len] = '\0'; /* the promise holds for a buffer nothing was added to */
}

void cr_buf_add(struct cr_buf *b, const void *data, size_t len)
{
	cr_buf_reserve(b, len);
	if (len)
		memcpy(b->data + b->len, data, len);
	b->len += len;
	b->data[b->len] = '\0';
}

void cr_buf_adds(struct cr_buf *b, const char *s)
{
	cr_buf_add(b, s, strlen(s));
}

void cr_buf_addc(struct cr_buf *b, char c)
{
	cr_buf_add(b, &c, 1);
}

void cr_buf_printf(struct cr_buf *b, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n <= 0)
		return;
	cr_buf_reserve(b, (size_t)n);
	va_start(ap, fmt);
	vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
}

void cr_buf_reset(struct cr_buf *b)
{
	b->len = 0;
	if (b->data)
		b->data[0] = '\0';
}

void cr_buf_free(struct cr_buf *b)
{
	free(b->data);
	b->data = NULL;
	b->len = b->cap = 0;
}

char *cr_buf_detach(struct cr_buf *b, size_t *len)
{
	cr_buf_reserve(b, 0);
	char *p = b->data;
	if (len)
		*len = b->len;
	b->data = NULL;
	b->len = b->cap = 0;
	return p;
}

int cr_write_all(int fd, const void *data, size_t len)
{
	const char *p = data;
	while (len) {
		ssize_t n = write(fd, p, len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

bool cr_streq(const char *a, const char *b)
{
	return a && b && strcmp(a, b) == 0;
}

bool cr_ends_with(const char *s, const char *suffix)
{
	size_t n = strlen(s), m = strlen(suffix);
	return n >= m && memcmp(s + n - m, suffix, m) == 0;
}

bool cr_nonempty(const char *s)
{
	return s && *s;
}

size_t cr_utf8_len(const char *s, size_t len)
{
	const unsigned char *u = (const unsigned char *)s;
	if (u[0] < 0x80)
		return 1;
	size_t n = u[0] < 0xc2 ? 0 : u[0] < 0xe0 ? 2 : u[0] < 0xf0 ? 3 : u[0] < 0xf5 ? 4 : 0;
	if (!n || n > len)
		return 0;
	for (size_t i = 1; i < n; i++)
		if ((u[i] & 0xc0) != 0x80)
			return 0;
	/* overlong forms, UTF-16 surrogates, beyond U+10FFFF */
	if ((u[0] == 0xe0 && u[1] < 0xa0) || (u[0] == 0xed && u[1] >= 0xa0) ||
	    (u[0] == 0xf0 && u[1] < 0x90) || (u[0] == 0xf4 && u[1] >= 0x90))
		return 0;
	return n;
}

size_t cr_utf8_invalid_at(const char *s, size_t len)
{
	size_t i = 0;
	while (i < len) {
		if ((unsigned char)s[i] < 0x80) {
			i++;
			continue;
		}
		size_t n = cr_utf8_len(s + i, len - i);
		if (!n)
			return i;
		i += n;
	}
	return len;
}

unsigned cr_fnv1a(const char *s, size_t len)
{
	unsigned h = 2166136261u;
	for (size_t i = 0; i < len; i++) {
		h ^= (unsigned char)s[i];
		h *= 16777619u;
	}
	return h;
}

void cr_base64(struct cr_buf *out, const char *data, size_t len)
{
	static const char tbl[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	const unsigned char *s = (const unsigned char *)data;
	cr_buf_reserve(out, (len + 2) / 3 * 4);
	for (size_t i = 0; i < len; i += 3) {
		unsigned v = (unsigned)s[i] << 16;
		if (i + 1 < len)
			v |= (unsigned)s[i + 1] << 8;
		if (i + 2 < len)
			v |= s[i + 2];
		char q[4] = { tbl[(v >> 18) & 63], tbl[(v >> 12) & 63],
			      i + 1 < len ? tbl[(v >> 6) & 63] : '=', i + 2 < len ? tbl[v & 63] : '=' };
		cr_buf_add(out, q, 4);
	}
}
