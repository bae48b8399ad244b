/* revgraph: the revision graph of an Alembic project (revgraph.h). */
#include "revgraph.h"
#include "alembic_script.h"
#include "log.h"
#include "util.h"

#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* ------------------------------------------------------------------------------------ */
/* Finding the scripts: every *.py in the version locations (and below them when
 * recursive), except names starting with ".#" or "__init__" (Alembic's own filter) and
 * __pycache__ directories; a file reached twice (symlinks, overlapping locations) counts
 * once, as in Alembic. */

static bool is_script_name(const char *name)
{
	return cr_ends_with(name, ".py") && strncmp(name, ".#", 2) != 0 &&
	       strncmp(name, "__init__", 8) != 0;
}

static int list_dir(const char *dir, bool recursive, struct cr_strlist *out, char **why)
{
	DIR *d = opendir(dir);
	if (!d) {
		if (errno == ENOENT || errno == ENOTDIR)
			return 0; /* Alembic skips a version location that does not exist */
		*why = xasprintf("cannot list %s: %s", dir, strerror(errno));
		return 1;
	}
	int rc = 0;
	for (struct dirent *e; rc == 0 && (e = readdir(d));) {
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		char *path = xasprintf("%s/%s", dir, e->d_name);
		struct stat st;
		if (lstat(path, &st) == 0 && S_ISDIR(st.st_mode)) {
			if (recursive && !cr_ends_with(e->d_name, "__pycache__"))
				rc = list_dir(path, true, out, why);
		} else if (is_script_name(e->d_name) && stat(path, &st) == 0 &&
			   S_ISREG(st.st_mode)) {
			char *real = realpath(path, NULL);
			if (real)
				cr_strlist_add(out, real);
			free(real);
		}
		free(path);
	}
	closedir(d);
	return rc;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static int list_scripts(const struct cr_alembic_project *p, struct cr_strlist *files,
			char **why)
{
	for (size_t i = 0; i < p->version_locations.n; i++) {
		int rc = list_dir(p->version_locations.items[i], p->recursive_version_locations,
				  files, why);
		if (rc)
			return rc;
	}
	if (files->n)
		qsort(files->items, files->n, sizeof(*files->items), cmp_str);
	size_t kept = 0;
	for (size_t i = 0; i < files->n; i++) {
		if (kept && strcmp(files->items[kept - 1], files->items[i]) == 0)
			free(files->items[i]);
		else
			files->items[kept++] = files->items[i];
	}
	files->n = kept;
	return 0;
}

/* ------------------------------------------------------------------------------------ */
/* The graph. Revisions are found by id (and depends_on targets also by branch label)
 * through open-addressing tables; parents are down_revision then depends_on. */

struct strtab {
	const char **keys; /* borrowed from the revisions */
	size_t *vals;
	size_t cap;	   /* a power of two, at least twice the entries */
};

struct cr_revgraph_links {
	struct strtab ids;
	size_t *first;	/* parents of revision i: parent[first[i]] .. parent[first[i + 1] - 1] */
	size_t *parent;
	size_t *order;	/* every revision, parents before children, ties by id */
};

static void strtab_init(struct strtab *t, size_t entries)
{
	t->cap = 16;
	while (t->cap < 2 * entries + 1)
		t->cap *= 2;
	t->keys = xcalloc(t->cap, sizeof(*t->keys));
	t->vals = xcalloc(t->cap, sizeof(*t->vals));
}

static void strtab_free(struct strtab *t)
{
	free(t->keys);
	free(t->vals);
	memset(t, 0, sizeof(*t));
}

/* Adds key -> val unless key is there; returns the value the key now has. */
static size_t strtab_put(struct strtab *t, const char *key, size_t val)
{
	size_t i = cr_fnv1a(key, strlen(key)) & (t->cap - 1);
	for (; t->keys[i]; i = (i + 1) & (t->cap - 1))
		if (strcmp(t->keys[i], key) == 0)
			return t->vals[i];
	t->keys[i] = key;
	t->vals[i] = val;
	return val;
}

static size_t strtab_get(const struct strtab *t, const char *key)
{
	if (!t->cap)
		return SIZE_MAX;
	size_t i = cr_fnv1a(key, strlen(key)) & (t->cap - 1);
	for (; t->keys[i]; i = (i + 1) & (t->cap - 1))
		if (strcmp(t->keys[i], key) == 0)
			return t->vals[i];
	return SIZE_MAX;
}

static int index_ids(struct cr_revgraph *g)
{
	struct strtab *ids = &g->links->ids;
	strtab_init(ids, g->n);
	for (size_t i = 0; i < g->n; i++) {
		size_t j = strtab_put(ids, g->revs[i].id, i);
		if (j != i) {
			cr_error("revision %s is defined twice: in %s and in %s", g->revs[i].id,
				 g->revs[j].path, g->revs[i].path);
			return -1;
		}
	}
	return 0;
}

/* Alembic refuses a label used twice or equal to a revision id. */
static int index_labels(const struct cr_revgraph *g, struct strtab *labels)
{
	size_t n = 0;
	for (size_t i = 0; i < g->n; i++)
		n += g->revs[i].branch_labels.n;
	strtab_init(labels, n);
	for (size_t i = 0; i < g->n; i++) {
		const struct cr_revision *r = &g->revs[i];
		for (size_t k = 0; k < r->branch_labels.n; k++) {
			const char *label = r->branch_labels.items[k];
			size_t j = strtab_get(&g->links->ids, label);
			if (j == SIZE_MAX && (j = strtab_put(labels, label, i)) == i)
				continue;
			cr_error("%s: branch label %s is already used by revision %s (%s)", r->path,
				 label, g->revs[j].id, g->revs[j].path);
			return -1;
		}
	}
	return 0;
}

/* down_revision must name a revision exactly (a branch label there is legal in Alembic
 * but unusual: left to Alembic). */
static int resolve_down(const struct cr_revgraph *g, const struct strtab *labels, size_t i,
			const char *down, size_t *out, char **why)
{
	const struct cr_revision *r = &g->revs[i];
	*out = strtab_get(&g->links->ids, down);
	if (*out == i) {
		cr_error("%s: revision %s names itself as down_revision", r->path, r->id);
		return -1;
	}
	if (*out != SIZE_MAX)
		return 0;
	if (strtab_get(labels, down) != SIZE_MAX) {
		*why = xasprintf("%s: down_revision %s is a branch label", r->path, down);
		return 1;
	}
	cr_error("%s: down_revision %s is not a known revision (a script missing or renamed?)",
		 r->path, down);
	return -1;
}

/* depends_on names a revision or a branch label (the revision carrying it). */
static int resolve_dependency(const struct cr_revgraph *g, const struct strtab *labels,
			      size_t i, const char *dep, size_t *out)
{
	const struct cr_revision *r = &g->revs[i];
	*out = strtab_get(&g->links->ids, dep);
	if (*out == SIZE_MAX)
		*out = strtab_get(labels, dep);
	if (*out == i) {
		cr_error("%s: revision %s depends on itself", r->path, r->id);
		return -1;
	}
	if (*out == SIZE_MAX) {
		cr_error("%s: depends_on %s is neither a revision nor a branch label", r->path, dep);
		return -1;
	}
	return 0;
}

static int resolve_parents(struct cr_revgraph *g, const struct strtab *labels, char **why)
{
	struct cr_revgraph_links *l = g->links;
	size_t edges = 0;
	for (size_t i = 0; i < g->n; i++)
		edges += g->revs[i].down.n + g->revs[i].depends_on.n;
	l->first = xcalloc(g->n + 1, sizeof(*l->first));
	l->parent = xcalloc(edges, sizeof(*l->parent));
	size_t k = 0;
	for (size_t i = 0; i < g->n; i++) {
		const struct cr_revision *r = &g->revs[i];
		l->first[i] = k;
		for (size_t d = 0; d < r->down.n; d++) {
			int rc = resolve_down(g, labels, i, r->down.items[d], &l->parent[k++], why);
			if (rc)
				return rc;
		}
		for (size_t d = 0; d < r->depends_on.n; d++)
			if (resolve_dependency(g, labels, i, r->depends_on.items[d], &l->parent[k++]))
				return -1;
	}
	l->first[g->n] = k;
	return 0;
}

/* A binary min-heap of revision indices by id: Kahn's algorithm takes the smallest
 * ready revision first, so the order is the same on every run. */
struct heap {
	size_t *a;
	size_t n;
	const struct cr_revision *revs;
};

static bool heap_less(const struct heap *h, size_t x, size_t y)
{
	return strcmp(h->revs[h->a[x]].id, h->revs[h->a[y]].id) < 0;
}

static void heap_swap(struct heap *h, size_t x, size_t y)
{
	size_t t = h->a[x];
	h->a[x] = h->a[y];
	h->a[y] = t;
}

static void heap_push(struct heap *h, size_t v)
{
	size_t i = h->n++;
	h->a[i] = v;
	while (i && heap_less(h, i, (i - 1) / 2)) {
		heap_swap(h, i, (i - 1) / 2);
		i = (i - 1) / 2;
	}
}

static size_t heap_pop(struct heap *h)
{
	size_t top = h->a[0];
	h->a[0] = h->a[--h->n];
	for (size_t i = 0;;) {
		size_t m = i, c = 2 * i + 1;
		if (c < h->n && heap_less(h, c, m))
			m = c;
		if (c + 1 < h->n && heap_less(h, c + 1, m))
			m = c + 1;
		if (m == i)
			break;
		heap_swap(h, i, m);
		i = m;
	}
	return top;
}

struct children {
	size_t *first, *child;
};

static void children_of(const struct cr_revgraph *g, struct children *c)
{
	const struct cr_revgraph_links *l = g->links;
	size_t edges = l->first[g->n];
	c->first = xcalloc(g->n + 2, sizeof(*c->first));
	c->child = xcalloc(edges, sizeof(*c->child));
	for (size_t e = 0; e < edges; e++)
		c->first[l->parent[e] + 2]++;
	for (size_t i = 0; i < g->n; i++)
		c->first[i + 2] += c->first[i + 1];
	for (size_t i = 0; i < g->n; i++)
		for (size_t e = l->first[i]; e < l->first[i + 1]; e++)
			c->child[c->first[l->parent[e] + 1]++] = i;
}

/* The revisions left out of the order that lie on a cycle (those only downstream of one
 * are peeled off): at most a few of their files, for the message. */
static void report_cycle(const struct cr_revgraph *g, const struct children *c,
			 const bool *ordered)
{
	const struct cr_revgraph_links *l = g->links;
	size_t *out = xcalloc(g->n, sizeof(*out)), *stack = xcalloc(g->n, sizeof(*stack));
	size_t top = 0;
	bool *peeled = xcalloc(g->n, sizeof(*peeled));
	for (size_t i = 0; i < g->n; i++) {
		for (size_t e = c->first[i]; e < c->first[i + 1]; e++)
			out[i] += !ordered[c->child[e]];
		if (!ordered[i] && !out[i])
			stack[top++] = i;
	}
	while (top) {
		size_t i = stack[--top];
		peeled[i] = true;
		for (size_t e = l->first[i]; e < l->first[i + 1]; e++)
			if (!ordered[l->parent[e]] && --out[l->parent[e]] == 0)
				stack[top++] = l->parent[e];
	}
	struct cr_buf files = { 0 };
	size_t shown = 0, cyclic = 0;
	for (size_t i = 0; i < g->n; i++) {
		if (ordered[i] || peeled[i])
			continue;
		if (cyclic++ < 6)
			cr_buf_printf(&files, "%s%s", shown++ ? ", " : "", g->revs[i].path);
	}
	if (cyclic > shown)
		cr_buf_printf(&files, " and %zu more", cyclic - shown);
	cr_error("the revisions form a cycle through down_revision/depends_on: %s", files.data);
	cr_buf_free(&files);
	free(out);
	free(stack);
	free(peeled);
}

static int order_revisions(struct cr_revgraph *g)
{
	struct cr_revgraph_links *l = g->links;
	struct children c;
	children_of(g, &c);
	size_t *waiting = xcalloc(g->n + 1, sizeof(*waiting)); /* parents not yet ordered */
	bool *ordered = xcalloc(g->n + 1, sizeof(*ordered));
	struct heap h = { xcalloc(g->n + 1, sizeof(size_t)), 0, g->revs };
	l->order = xcalloc(g->n + 1, sizeof(*l->order));
	size_t done = 0;
	for (size_t i = 0; i < g->n; i++)
		if ((waiting[i] = l->first[i + 1] - l->first[i]) == 0)
			heap_push(&h, i);
	while (h.n) {
		size_t i = heap_pop(&h);
		ordered[i] = true;
		l->order[done++] = i;
		for (size_t e = c.first[i]; e < c.first[i + 1]; e++)
			if (--waiting[c.child[e]] == 0)
				heap_push(&h, c.child[e]);
	}
	if (done < g->n)
		report_cycle(g, &c, ordered);
	free(h.a);
	free(waiting);
	free(ordered);
	free(c.first);
	free(c.child);
	return done < g->n ? -1 : 0;
}

/* Heads as Alembic counts them: revisions no down_revision names (a revision that is
 * only depended on is still a head, an "effective head" in `alembic heads`). */
static void find_heads(struct cr_revgraph *g)
{
	bool *revised = xcalloc(g->n + 1, sizeof(*revised));
	for (size_t i = 0; i < g->n; i++)
		for (size_t d = 0; d < g->revs[i].down.n; d++)
			revised[g->links->parent[g->links->first[i] + d]] = true;
	for (size_t i = 0; i < g->n; i++)
		if (!revised[i])
			cr_strlist_add(&g->heads, g->revs[i].id);
	if (g->heads.n)
		qsort(g->heads.items, g->heads.n, sizeof(*g->heads.items), cmp_str);
	free(revised);
}

static int link_graph(struct cr_revgraph *g, char **why)
{
	struct strtab labels = { 0 };
	g->links = xcalloc(1, sizeof(*g->links));
	int rc = index_ids(g);
	if (rc == 0)
		rc = index_labels(g, &labels);
	if (rc == 0)
		rc = resolve_parents(g, &labels, why);
	if (rc == 0)
		rc = order_revisions(g);
	if (rc == 0)
		find_heads(g);
	strtab_free(&labels);
	return rc;
}

static int read_scripts(const struct cr_strlist *files, struct cr_revgraph *g, char **why)
{
	g->revs = xcalloc(files->n + 1, sizeof(*g->revs));
	struct cr_script_reader *r = cr_script_reader_new();
	int rc = 0;
	for (size_t i = 0; rc == 0 && i < files->n; i++)
		if ((rc = cr_script_read(r, files->items[i], &g->revs[g->n], why)) == 0)
			g->n++;
	cr_script_reader_free(r);
	return rc;
}

int cr_revgraph_load(const struct cr_alembic_project *p, struct cr_revgraph *g, char **why)
{
	memset(g, 0, sizeof(*g));
	*why = NULL;
	if (p->unsupported) {
		*why = xstrdup(p->unsupported);
		return 1;
	}
	struct cr_strlist files = { 0 };
	int rc = list_scripts(p, &files, why);
	if (rc == 0)
		rc = read_scripts(&files, g, why);
	if (rc == 0)
		rc = link_graph(g, why);
	cr_strlist_free(&files);
	if (rc != 0)
		cr_revgraph_free(g);
	return rc;
}

void cr_revgraph_free(struct cr_revgraph *g)
{
	for (size_t i = 0; i < g->n; i++) {
		struct cr_revision *r = &g->revs[i];
		free(r->id);
		free(r->path);
		cr_strlist_free(&r->down);
		cr_strlist_free(&r->depends_on);
		cr_strlist_free(&r->branch_labels);
	}
	free(g->revs);
	cr_strlist_free(&g->heads);
	if (g->links) {
		strtab_free(&g->links->ids);
		free(g->links->first);
		free(g->links->parent);
		free(g->links->order);
		free(g->links);
	}
	memset(g, 0, sizeof(*g));
}

/* ------------------------------------------------------------------------------------ */
/* What is left to apply: the version table holds only the tips Alembic upgraded to, and
 * everything they stand on (down_revision and depends_on, transitively) is applied. */

int cr_revgraph_missing(const struct cr_revgraph *g, const struct cr_strlist *stored,
			struct cr_strlist *missing)
{
	memset(missing, 0, sizeof(*missing));
	const struct cr_revgraph_links *l = g->links;
	bool *applied = xcalloc(g->n + 1, sizeof(*applied));
	size_t *stack = xcalloc(g->n + 1, sizeof(*stack)), top = 0;
	int rc = 0;
	for (size_t s = 0; s < stored->n && rc == 0; s++) {
		size_t i = l ? strtab_get(&l->ids, stored->items[s]) : SIZE_MAX;
		if (i == SIZE_MAX) {
			cr_error("the database is at revision %s, which none of the revision scripts "
				 "defines (a wrong image, or scripts removed?)", stored->items[s]);
			rc = -1;
		} else if (!applied[i]) {
			applied[i] = true;
			stack[top++] = i;
		}
		while (top) {
			size_t j = stack[--top];
			for (size_t e = l->first[j]; e < l->first[j + 1]; e++)
				if (!applied[l->parent[e]]) {
					applied[l->parent[e]] = true;
					stack[top++] = l->parent[e];
				}
		}
	}
	for (size_t k = 0; k < g->n && rc == 0; k++)
		if (!applied[l->order[k]])
			cr_strlist_add(missing, g->revs[l->order[k]].id);
	free(applied);
	free(stack);
	return rc;
}
