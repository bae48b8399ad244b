#include "log.h"
#include "url.h"
#include "util.h"

#include <ctype.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static _Thread_local int muted; /* nesting depth: a muted caller may call one that mutes */
/* A fixed buffer, not an allocation: nothing to free at exit, whatever path a command takes. */
static _Thread_local char last_error[1024];
/* Worker threads log, and a credential refreshed in one of them is registered while
 * another masks a line. */
static pthread_mutex_t secrets_lock = PTHREAD_MUTEX_INITIALIZER;
static char **secrets;
static size_t n_secrets, cap_secrets;

void cr_secret_add(const char *secret)
{
	if (!secret || !*secret)
		return;
	pthread_mutex_lock(&secrets_lock);
	bool known = false;
	for (size_t i = 0; !known && i < n_secrets; i++)
		known = strcmp(secrets[i], secret) == 0;
	if (!known) {
		XGROW(secrets, n_secrets + 1, cap_secrets);
		secrets[n_secrets++] = xstrdup(secret);
	}
	pthread_mutex_unlock(&secrets_lock);
}

static void add_wiped(char *secret)
{
	cr_secret_add(secret);
	explicit_bzero(secret, strlen(secret));
	free(secret);
}

void cr_secret_add_url_password(const char *url)
{
	struct cr_url u;
	if (!cr_url_split(url, strlen(url), &u) || !u.has_password)
		return;
	add_wiped(xstrndup(url + u.pw_off, u.pw_len));
	add_wiped(cr_url_password(url, &u));
}

void cr_secrets_clear(void)
{
	pthread_mutex_lock(&secrets_lock);
	for (size_t i = 0; i < n_secrets; i++)
		free(secrets[i]);
	free(secrets);
	secrets = NULL;
	n_secrets = cap_secrets = 0;
	pthread_mutex_unlock(&secrets_lock);
}

/* A secret this short is masked only as a whole word: masking every "p" of a message for
 * a password "p" would hide the message and not the password. */
#define SHORT_SECRET 6

/* Length of the longest registered secret that starts at s, 0 if none. */
static size_t secret_at(const char *s, bool after_alnum)
{
	size_t best = 0;
	for (size_t i = 0; i < n_secrets; i++) {
		size_t n = strlen(secrets[i]);
		if (n <= best || strncmp(s, secrets[i], n) != 0)
			continue;
		if (n < SHORT_SECRET && (after_alnum || isalnum((unsigned char)s[n])))
			continue;
		best = n;
	}
	return best;
}

/* At "://", the password of the URL, read as far as the next blank (where a URL in a
 * message ends): its range from s, or 0. */
static size_t url_password_at(const char *s, size_t *pw_start)
{
	if (strncmp(s, "://", 3) != 0)
		return 0;
	struct cr_url u;
	cr_url_split_after(s, strcspn(s, " \t\n"), 0, &u);
	if (!u.has_password)
		return 0;
	*pw_start = u.pw_off;
	return u.pw_off + u.pw_len;
}

/* Every byte goes through the same loop, the user part of a URL too (it may hold a secret
 * or a line break); the password of a URL found at "://" is remembered as a range and
 * replaced when the loop reaches it, or skipped when a secret ran into it. */
void cr_mask_into(struct cr_buf *out, const char *s)
{
	pthread_mutex_lock(&secrets_lock);
	size_t i = 0, pw_from = SIZE_MAX, pw_to = 0;
	while (s[i]) {
		if (i == pw_from) {
			cr_buf_adds(out, "***");
			i = pw_to;
			pw_from = SIZE_MAX;
			continue;
		}
		size_t pw_start, pw_end;
		if (pw_from == SIZE_MAX && (pw_end = url_password_at(s + i, &pw_start))) {
			pw_from = i + pw_start;
			pw_to = i + pw_end;
		}
		size_t n = secret_at(s + i, i > 0 && isalnum((unsigned char)s[i - 1]));
		if (n) {
			cr_buf_adds(out, "***");
			i += n;
			if (pw_from != SIZE_MAX && i > pw_from) {
				i = i > pw_to ? i : pw_to;
				pw_from = SIZE_MAX;
			}
			continue;
		}
		if (s[i] == '\n')
			cr_buf_adds(out, "\\n");
		else if (s[i] == '\r')
			cr_buf_adds(out, "\\r");
		else
			cr_buf_addc(out, s[i]);
		i++;
	}
	pthread_mutex_unlock(&secrets_lock);
}

char *cr_mask(const char *s)
{
	struct cr_buf b = { 0 };
	cr_mask_into(&b, s);
	return cr_buf_detach(&b, NULL);
}

/* Helm 4 drops a post-renderer plugin's stderr; the `helm chartreuse` wrapper names a
 * file here and shows what was written to it when Helm fails. */
static void copy_to_error_file(const struct cr_buf *line)
{
	const char *path = getenv("CHARTREUSE_ERROR_FILE");
	if (!path || !*path)
		return;
	int fd = open(path, O_WRONLY | O_APPEND | O_CLOEXEC);
	if (fd < 0)
		return;
	if (cr_write_all(fd, line->data, line->len) < 0) {
		/* Best effort: the message already went to stderr. */
	}
	close(fd);
}

void cr_log_mute(bool on)
{
	muted += on ? 1 : muted > 0 ? -1 : 0;
}

/* Cut on a character boundary: the text may end up in JSON, which needs whole UTF-8. */
static void keep_last_error(const char *text, size_t len)
{
	if (len >= sizeof(last_error)) {
		len = sizeof(last_error) - 1;
		while (len && ((unsigned char)text[len] & 0xc0) == 0x80)
			len--;
	}
	memcpy(last_error, text, len);
	last_error[len] = '\0';
}

__attribute__((format(printf, 2, 0)))
static void emit(const char *level, const char *fmt, va_list ap)
{
	if (muted)
		return;
	struct cr_buf line = { 0 };
	char *raw = xvasprintf(fmt, ap);
	cr_buf_adds(&line, "chartreuse: ");
	cr_buf_adds(&line, level);
	size_t text_at = line.len;
	cr_mask_into(&line, raw);
	if (*level == 'e')
		keep_last_error(line.data + text_at, line.len - text_at);
	cr_buf_addc(&line, '\n');
	if (cr_write_all(2, line.data, line.len) < 0) {
		/* stderr is gone: nothing left to report to. */
	}
	if (*level == 'e')
		copy_to_error_file(&line);
	free(raw);
	cr_buf_free(&line);
}

const char *cr_log_last_error(void)
{
	return last_error[0] ? last_error : NULL;
}

void cr_error(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	emit("error: ", fmt, ap);
	va_end(ap);
}

void cr_warn(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	emit("warning: ", fmt, ap);
	va_end(ap);
}

void cr_info(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	emit("", fmt, ap);
	va_end(ap);
}
