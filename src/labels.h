/* labels: label selectors in their string form ("app=web,tier in (a,b),!canary"), as a
 * Scale's status.selector or a labelSelector query gives them, matched against an
 * object's metadata.labels. */
#ifndef CR_LABELS_H
#define CR_LABELS_H

#include <libfyaml.h>
#include <stdbool.h>

struct cr_selector;

/* NULL (reported, naming the selector) when the text is not a selector. An empty text
 * selects everything, as the API server reads it. */
struct cr_selector *cr_selector_parse(const char *text);
void cr_selector_free(struct cr_selector *s);
/* labels: a mapping (or NULL: no labels). */
bool cr_selector_matches(const struct cr_selector *s, struct fy_node *labels);

#endif
