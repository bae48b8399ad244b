/* log: every line chartreuse writes to stderr goes through here, so secrets registered with
 * cr_secret_add() and the password part of any URL are masked, and an error is one line. */
#ifndef CR_LOG_H
#define CR_LOG_H

#include <stdarg.h>
#include <stdbool.h>

struct cr_buf;

void cr_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void cr_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void cr_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* The text of the last error this thread reported (masked, without the "chartreuse:
 * error: " prefix, cut at 1 KiB), or NULL; valid until the next error. For a command that
 * also shows in its own output why something could not be read. */
const char *cr_log_last_error(void);

/* Silences this thread's messages (a speculative piece of work that will be redone if it
 * fails, and reported then). */
void cr_log_mute(bool on);

/* A string that must never appear in output. Copies it; lives until cr_secrets_clear(). */
void cr_secret_add(const char *secret);
/* The password of url, as written and percent-decoded (url.h reads it). */
void cr_secret_add_url_password(const char *url);
void cr_secrets_clear(void);

/* Appends `s` to `out` with secrets and URL passwords replaced by "***", and line breaks
 * shown as "\n" so that one message stays one line. */
void cr_mask_into(struct cr_buf *out, const char *s);
/* Masked copy of s; caller frees. */
char *cr_mask(const char *s);

#endif
