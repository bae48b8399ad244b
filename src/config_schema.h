/* config_schema: the settings' schema as one table, private to the config module: read by
 * config.c (validation, merging, loading into the structs) and config_set.c (the --set
 * path language, which types a value as the schema says). */
#ifndef CR_CONFIG_SCHEMA_H
#define CR_CONFIG_SCHEMA_H

#include <stdbool.h>
#include <stddef.h>

#include "util.h"

enum field_type {
	F_STR,	    /* any scalar, kept as written */
	F_ENUM,	    /* one of `choices` */
	F_BOOL,
	F_INT,
	F_WEIGHT,   /* integer, written as a string (hook weights are annotation values) */
	F_ARGS,	    /* a string split on blanks, or a list of strings */
	F_MAP,	    /* free-form mapping, copied into the objects as is */
	F_LIST,	    /* free-form list */
	F_OBJ,	    /* nested object with its own fields */
	F_OBJ_LIST, /* list of nested objects */
};

struct field {
	const char *key;
	enum field_type type;
	size_t offset;
	const char *def;
	const struct field *sub;      /* F_OBJ, F_OBJ_LIST */
	size_t elem_size;	      /* F_OBJ_LIST */
	size_t count_offset;	      /* F_OBJ_LIST: where the element count goes */
	const char *const *choices;   /* F_ENUM */
	/* F_MAP, F_LIST: the scalars Kubernetes types as strings, which --set must not make
	 * numbers or booleans: every value of the map (all_strings), or these keys of each
	 * item of the list. */
	const char *const *strings;
};

/* How deep free-form values may nest, and how many parts a --set key may have. The
 * objects that carry them nest them a few levels deeper (a Job's pod template), and
 * libfyaml 0.7.12 refuses YAML nested more than 64 levels: deeper values would render
 * objects that `migrate` (its config.yaml) can't read back. */
#define CR_CONFIG_MAX_DEPTH 32

/* The top level of a ChartreuseConfig (and of a --config file). */
extern const struct field cr_config_fields[];

const struct field *cr_config_field(const struct field *fields, const char *key, size_t len);
/* A decimal integer, the whole text, no blanks. */
bool cr_config_parse_long(const char *s, long *out);
bool cr_config_in_choices(const char *s, const char *const *choices);
/* "a, b, c" */
void cr_config_choices_text(struct cr_buf *b, const char *const *choices);

#endif
