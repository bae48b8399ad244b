/* util: allocation that dies loudly on exhaustion, growable byte buffers and string lists,
 * full writes. Every other module builds on these; nothing here knows about YAML or
 * Kubernetes, nor reports (file.h reads files and says what failed). */
#ifndef CR_UTIL_H
#define CR_UTIL_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>

void *xmalloc(size_t n);
void *xcalloc(size_t n, size_t size);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);
char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
char *xvasprintf(const char *fmt, va_list ap) __attribute__((format(printf, 1, 0)));

/* Grow an array of `*cap` elements so that index `need - 1` fits. */
#define XGROW(ptr, need, cap)                                                             \
	do {                                                                              \
		if ((need) > (cap)) {                                                     \
			size_t cr_new_cap_ = (cap) ? (cap) * 2 : 8;                       \
			while (cr_new_cap_ < (need))                                      \
				cr_new_cap_ *= 2;                                         \
			(ptr) = xrealloc((ptr), cr_new_cap_ * sizeof(*(ptr)));            \
			(cap) = cr_new_cap_;                                              \
		}                                                                         \
	} while (0)

/* A list of owned strings. */
struct cr_strlist {
	char **items;
	size_t n;
};

void cr_strlist_add(struct cr_strlist *l, const char *s); /* adds a copy */
bool cr_strlist_has(const struct cr_strlist *l, const char *s);
void cr_strlist_free(struct cr_strlist *l);
struct cr_buf;
/* Appends "a, b, c" (at most max items, then ", ... (N in all)"), or "(none)". */
void cr_strlist_text(struct cr_buf *b, const struct cr_strlist *l, size_t max);

struct cr_buf {
	char *data; /* always NUL-terminated when non-NULL */
	size_t len;
	size_t cap;
};

void cr_buf_reserve(struct cr_buf *b, size_t extra);
void cr_buf_add(struct cr_buf *b, const void *data, size_t len);
void cr_buf_adds(struct cr_buf *b, const char *s);
void cr_buf_addc(struct cr_buf *b, char c);
void cr_buf_printf(struct cr_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void cr_buf_reset(struct cr_buf *b);
void cr_buf_free(struct cr_buf *b);
/* Hands the buffer's memory to the caller (never NULL) and empties the buffer. */
char *cr_buf_detach(struct cr_buf *b, size_t *len);

/* Writes all of data to fd, retrying short writes; -1 with errno on failure. */
int cr_write_all(int fd, const void *data, size_t len);

bool cr_streq(const char *a, const char *b);
bool cr_ends_with(const char *s, const char *suffix);
/* s is set and not "" (an optional setting that was given). */
bool cr_nonempty(const char *s);
/* Length of the UTF-8 sequence at s (at most len bytes, len > 0): 1 for ASCII, 0 when the
 * bytes are not well-formed UTF-8 (a stray or missing continuation byte, an overlong form,
 * a UTF-16 surrogate, beyond U+10FFFF). */
size_t cr_utf8_len(const char *s, size_t len);
/* Offset of the first byte of s[0, len) that is not well-formed UTF-8; len when all is. */
size_t cr_utf8_invalid_at(const char *s, size_t len);

/* 32-bit FNV-1a, used for stable short suffixes in generated names. */
unsigned cr_fnv1a(const char *s, size_t len);
void cr_base64(struct cr_buf *out, const char *data, size_t len);

#endif
