/* names: the naming rules of Kubernetes, as the API server checks them and no JSON schema
 * says: DNS-1123 labels and subdomains (object names, namespaces), label keys and values,
 * environment variable names, Secret keys. For every name chartreuse puts into an object
 * it writes or a URL path it calls. */
#ifndef CR_NAMES_H
#define CR_NAMES_H

#include <stdbool.h>
#include <stddef.h>

#define CR_NAME_MAX 63 /* a label, a label value, a Job's name */

/* A DNS-1123 label: lower-case letters, digits and '-', alphanumeric at both ends; a
 * subdomain: labels joined by '.'. */
enum cr_name_rule { CR_NAME_LABEL, CR_NAME_SUBDOMAIN };
bool cr_dns_name_ok(const char *s, enum cr_name_rule rule, size_t max);
/* 0 when name follows the rule within max characters; else reports
 * "<source>: <what> "<name>" is not a valid name: <the rule>" and returns -1. */
int cr_check_name(const char *source, const char *what, const char *name,
		  enum cr_name_rule rule, size_t max);
/* The rule in words ("lower-case letters, digits and '-', ... (a DNS-1123 label)"). */
const char *cr_name_rule_text(enum cr_name_rule rule);

/* A label value: empty, or at most 63 letters, digits, '-', '_' and '.', alphanumeric at
 * both ends. */
bool cr_label_value_ok(const char *s);
/* A label or annotation key: [DNS subdomain prefix '/'] then a name as a label value's,
 * not empty. */
bool cr_qualified_name_ok(const char *s);
/* An environment variable name as Kubernetes 1.32 takes it: printable ASCII but '='. */
bool cr_env_name_ok(const char *s);
/* A key of a Secret or ConfigMap: at most 253 letters, digits, '-', '_' and '.'. */
bool cr_secret_key_ok(const char *s);

#endif
