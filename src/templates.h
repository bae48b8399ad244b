/* templates: the YAML skeletons of the injected objects (templates/ in the repo), embedded
 * into the binary at build time. */
#ifndef CR_TEMPLATES_H
#define CR_TEMPLATES_H

#include <stddef.h>

struct cr_template {
	const char *name;
	const char *data;
	size_t len;
};

extern const struct cr_template cr_templates[];
extern const size_t cr_n_templates;

struct fy_document;
/* A fresh tree of the named skeleton (e.g. "job.yaml"); the caller destroys it. The
 * skeletons are part of the binary, so one that is missing or does not parse is a build
 * defect: reported as an internal error, and the process exits. */
struct fy_document *cr_template_load(const char *name);

#endif
