#include "names.h"

#include <string.h>

#define LABEL_MAX 63
#define SUBDOMAIN_MAX 253

static bool alnum(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

/* s[0, n) is one label's text: [a-z0-9]([-a-z0-9]*[a-z0-9])? */
static bool label_text(const char *s, size_t n)
{
	if (!n || !alnum(s[0]) || !alnum(s[n - 1]))
		return false;
	for (size_t i = 1; i + 1 < n; i++)
		if (!alnum(s[i]) && s[i] != '-')
			return false;
	return true;
}

const char *cr_name_label_error(const char *s)
{
	size_t n = s ? strlen(s) : 0;
	if (!n)
		return "is empty";
	if (n > LABEL_MAX)
		return "must be no more than 63 characters";
	if (!label_text(s, n))
		return "must consist of lower case alphanumeric characters or '-', and must start "
		       "and end with an alphanumeric character (RFC 1123 label)";
	return NULL;
}

const char *cr_name_subdomain_error(const char *s)
{
	size_t n = s ? strlen(s) : 0;
	if (!n)
		return "is empty";
	if (n > SUBDOMAIN_MAX)
		return "must be no more than 253 characters";
	for (const char *part = s;;) {
		const char *dot = strchr(part, '.');
		size_t len = dot ? (size_t)(dot - part) : strlen(part);
		if (!label_text(part, len))
			return "must consist of lower case alphanumeric characters, '-' or '.', and "
			       "must start and end with an alphanumeric character (RFC 1123 subdomain)";
		if (!dot)
			return NULL;
		part = dot + 1;
	}
}
