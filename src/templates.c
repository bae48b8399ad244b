#include "templates.h"
#include "log.h"
#include "ytree.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct fy_document *cr_template_load(const char *name)
{
	struct fy_document *d = NULL;
	for (size_t i = 0; i < cr_n_templates && !d; i++)
		if (strcmp(cr_templates[i].name, name) == 0) {
			char origin[128];
			snprintf(origin, sizeof(origin), "internal error: template %s", name);
			d = yt_parse(cr_templates[i].data, cr_templates[i].len, origin, 0);
			if (!d)
				exit(70);
		}
	if (!d) {
		cr_error("internal error: template %s is not built into this binary", name);
		exit(70);
	}
	return d;
}
