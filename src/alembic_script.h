/* alembic_script: one revision script read without Python — the module-level `revision`,
 * `down_revision`, `branch_labels` and `depends_on` as Alembic's import of the script
 * would see them. A small tokenizer (Python 3.12's strings and f-strings) cuts logical
 * lines; only plain top-level assignments of literals are taken, and any construct that
 * could rebind one of the four at import (class bodies, decorators, default values,
 * `global`, computed values) makes the script "not readable with certainty". */
#ifndef CR_ALEMBIC_SCRIPT_H
#define CR_ALEMBIC_SCRIPT_H

#include "revgraph.h"

/* What reading needs, kept from one script to the next (thousands of them). */
struct cr_script_reader;
struct cr_script_reader *cr_script_reader_new(void);
void cr_script_reader_free(struct cr_script_reader *r);

/* Fills rev (owned by the caller, freed with the graph) from the script at path. 0; -1
 * when it can't be read (reported); 1 when it can't be read with certainty: *why (caller
 * frees) names the file, the line and the reason. */
int cr_script_read(struct cr_script_reader *r, const char *path, struct cr_revision *rev,
		   char **why);

#endif
