#include "names.h"
#include "log.h"
#include "util.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#define SUBDOMAIN_MAX 253

static bool lower_alnum(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

/* s[0, len) is one label's text: [a-z0-9]([-a-z0-9]*[a-z0-9])? */
static bool dns_label_ok(const char *s, size_t len)
{
	if (!len || !lower_alnum(s[0]) || !lower_alnum(s[len - 1]))
		return false;
	for (size_t i = 1; i + 1 < len; i++)
		if (!lower_alnum(s[i]) && s[i] != '-')
			return false;
	return true;
}

bool cr_dns_name_ok(const char *s, enum cr_name_rule rule, size_t max)
{
	size_t len = s ? strlen(s) : 0;
	if (!len || len > max)
		return false;
	if (rule == CR_NAME_LABEL)
		return dns_label_ok(s, len);
	for (const char *part = s;;) {
		const char *dot = strchr(part, '.');
		if (!dns_label_ok(part, dot ? (size_t)(dot - part) : strlen(part)))
			return false;
		if (!dot)
			return true;
		part = dot + 1;
	}
}

const char *cr_name_rule_text(enum cr_name_rule rule)
{
	return rule == CR_NAME_LABEL
		       ? "lower-case letters, digits and '-', starting and ending with a letter or "
			 "digit (a DNS-1123 label)"
		       : "lower-case letters, digits, '-' and '.', with a letter or digit at each end "
			 "and on each side of a '.' (a DNS-1123 subdomain)";
}

int cr_check_name(const char *source, const char *what, const char *name,
		  enum cr_name_rule rule, size_t max)
{
	if (cr_dns_name_ok(name, rule, max))
		return 0;
	cr_error("%s: %s \"%s\" is not a valid name: at most %zu %s", source, what,
		 name ? name : "", max, cr_name_rule_text(rule));
	return -1;
}

/* [A-Za-z0-9] at both ends, [-_.A-Za-z0-9] between: the name part of a label key, and a
 * label value. */
static bool label_name_ok(const char *s, size_t len, size_t max)
{
	if (!len || len > max || !isalnum((unsigned char)s[0]) ||
	    !isalnum((unsigned char)s[len - 1]))
		return false;
	for (size_t i = 0; i < len; i++)
		if (!isalnum((unsigned char)s[i]) && !strchr("-_.", s[i]))
			return false;
	return true;
}

bool cr_label_value_ok(const char *s)
{
	return !*s || label_name_ok(s, strlen(s), CR_NAME_MAX);
}

bool cr_qualified_name_ok(const char *s)
{
	const char *slash = strchr(s, '/');
	if (!slash)
		return label_name_ok(s, strlen(s), CR_NAME_MAX);
	char *prefix = xstrndup(s, (size_t)(slash - s));
	bool ok = cr_dns_name_ok(prefix, CR_NAME_SUBDOMAIN, SUBDOMAIN_MAX) &&
		  label_name_ok(slash + 1, strlen(slash + 1), CR_NAME_MAX);
	free(prefix);
	return ok;
}

bool cr_env_name_ok(const char *s)
{
	if (!*s)
		return false;
	for (; *s; s++)
		if (*s < 0x20 || *s > 0x7e || *s == '=')
			return false;
	return true;
}

bool cr_secret_key_ok(const char *s)
{
	size_t len = strlen(s);
	return len && len <= SUBDOMAIN_MAX &&
	       strspn(s, "-._abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789") == len;
}
