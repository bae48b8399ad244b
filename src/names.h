/* names: the naming rules of Kubernetes objects (RFC 1123 labels and subdomains, as the API
 * server checks them), for every name chartreuse puts into a URL path or an object. */
#ifndef CR_NAMES_H
#define CR_NAMES_H

#include <stdbool.h>

/* NULL when s is a DNS-1123 label (at most 63 of [a-z0-9-], alphanumeric at both ends:
 * namespaces, Job names), else what is wrong, as one static sentence. */
const char *cr_name_label_error(const char *s);
/* The same for a DNS-1123 subdomain (at most 253 characters, labels joined by '.': the
 * names of Deployments, Pods, Secrets, ConfigMaps, ServiceAccounts, HPAs...). */
const char *cr_name_subdomain_error(const char *s);

#endif
