/* revgraph: an Alembic project's revision graph, read without Python — every script of
 * its version locations (alembic_script.h reads each), linked by down_revision and
 * depends_on, its heads, and what a database holding some revisions has not applied —
 * so that "is anything left to apply?" is answered without starting Python. */
#ifndef CR_REVGRAPH_H
#define CR_REVGRAPH_H

#include "alembic.h"
#include "util.h"

struct cr_revision {
	char *id;
	struct cr_strlist down;		/* down_revision: none, one, or several (merge) */
	struct cr_strlist depends_on;	/* revision ids or branch labels */
	struct cr_strlist branch_labels;
	char *path;			/* the script */
};

struct cr_revgraph_links;

struct cr_revgraph {
	struct cr_revision *revs;
	size_t n;
	struct cr_strlist heads;	/* revisions nothing else revises (sorted) */
	struct cr_revgraph_links *links; /* private: id index, resolved edges, order */
};

/* Reads every revision script of the project and links them. Both free functions accept a
 * zeroed struct, and a failed load leaves one.
 * Returns 0 on success; -1 when the graph is broken (unknown down_revision, cycle,
 * duplicate id: reported, naming the files); 1 when some script cannot be read with
 * certainty (a computed value, an unusual construct): *why (caller frees) says which
 * file and why, so the caller can fall back to `alembic heads`. */
int cr_revgraph_load(const struct cr_alembic_project *p, struct cr_revgraph *g, char **why);
void cr_revgraph_free(struct cr_revgraph *g);

/* The revisions not yet applied to a database whose version table holds `stored`: every
 * revision that is not `stored` or an ancestor of it through down_revision and
 * depends_on, parents before children, ties by id (*missing is overwritten). A stored id
 * the scripts don't know is an error (returns -1, reported). */
int cr_revgraph_missing(const struct cr_revgraph *g, const struct cr_strlist *stored,
			struct cr_strlist *missing);

#endif
