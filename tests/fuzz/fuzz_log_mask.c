/* The masking every message goes through (src/log.c): registered secrets and the password
 * part of URLs become "***", line breaks become "\n".
 *
 * Input: the message, then NUL-separated secrets (at most 4). Oracle beyond the
 * sanitizers: no registered secret of SHORT_SECRET (6) bytes or more is left in the masked
 * text, and the text is one line. Masking writes "***" and "\n" itself, so secrets holding
 * "*" or "\" are not checked, and the escapes are read as one byte no secret holds (else
 * "\n" + "ext" would read as a secret "next"). */
#include "fuzz.h"

#define MAX_SECRETS 4

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fz_piece p[MAX_SECRETS + 1];
	size_t n = 0;
	const char *s = (const char *)data, *end = s + size;
	while (n < MAX_SECRETS + 1) {
		const char *nul = memchr(s, '\0', (size_t)(end - s));
		p[n++] = (struct fz_piece){ s, (size_t)((nul ? nul : end) - s) };
		if (!nul)
			break;
		s = nul + 1;
	}
	char *secrets[MAX_SECRETS] = { 0 };
	for (size_t i = 1; i < n; i++) {
		secrets[i - 1] = xstrndup(p[i].s, p[i].len);
		cr_secret_add(secrets[i - 1]);
	}
	char *message = xstrndup(p[0].s, p[0].len);
	char *masked = cr_mask(message);
	if (strchr(masked, '\n') || strchr(masked, '\r')) {
		fprintf(stderr, "a masked message spans lines: %s\n", masked);
		abort();
	}
	for (char *e = masked; (e = strchr(e, '\\'));)
		if (e[1] == 'n' || e[1] == 'r')
			e[0] = e[1] = '\x01';
		else
			e++;
	for (size_t i = 0; i + 1 < n; i++) {
		const char *secret = secrets[i];
		if (strlen(secret) < 6 || strpbrk(secret, "*\\\x01"))
			continue;
		if (strstr(masked, secret)) {
			fprintf(stderr, "secret \"%s\" is left in the masked text: %s\n", secret, masked);
			abort();
		}
	}
	free(masked);
	free(message);
	for (size_t i = 0; i < MAX_SECRETS; i++)
		free(secrets[i]);
	cr_secrets_clear();
	return 0;
}
