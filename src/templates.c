#include "templates.h"
#include "log.h"
#include "ytree.h"

#include <stdio.h>
#include <string.h>

struct fy_document *cr_template_load(const char *name)
{
	for (size_t i = 0; i < cr_n_templates; i++)
		if (strcmp(cr_templates[i].name, name) == 0) {
			char origin[128];
			snprintf(origin, sizeof(origin), "template %s", name);
			return yt_parse(cr_templates[i].data, cr_templates[i].len, origin, 0);
		}
	cr_error("template %s is not built into this binary", name);
	return NULL;
}
