/* `chartreuse post-render`: manifests in, the same manifests plus the migration objects out.
 * A pure function of its input and configuration: no network, no clock, no randomness. */
#include "cmd.h"
#include "config.h"
#include "log.h"
#include "manifest.h"
#include "render.h"
#include "util.h"
#include "ytree.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define STDIN_NAME "stdin"

/* A parsed and validated source of settings. */
struct source {
	struct fy_document *doc;
	char *name;
};

/* Sources of one kind (the config files, the chart's ChartreuseConfig documents). The array
 * and its count travel together: n counts the entries that exist, whatever failed. */
struct sources {
	struct source *v;
	size_t n;
};

static void add_option(struct cr_post_render_options *o, const char *name, const char *v)
{
	if (!strcmp(name, "--release")) {
		o->release = v;
	} else if (!strcmp(name, "--namespace")) {
		o->namespace = v;
	} else if (!strcmp(name, "--hooks-to")) {
		o->hooks_to = v;
	} else if (!strcmp(name, "--config")) {
		XGROW(o->configs, o->n_configs + 1, o->cap_configs);
		o->configs[o->n_configs++] = v;
	} else {
		XGROW(o->sets, o->n_sets + 1, o->cap_sets);
		o->sets[o->n_sets++] = v;
	}
}

/* 0: go on; 2: bad usage (reported); -1: --help was printed. */
static int parse_options(int argc, char **argv, struct cr_post_render_options *o)
{
	static const char *const names[] = { "--release", "--namespace", "--config", "--set",
					       "--hooks-to" };
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help"))
			return cr_usage("post-render", 0) - 1;
		if (!strcmp(argv[i], "post-render") && i == 1)
			continue; /* "chartreuse-post-render post-render ..." */
		int r = 0;
		for (size_t k = 0; !r && k < sizeof(names) / sizeof(*names); k++) {
			const char *v;
			r = cr_opt_value(argc, argv, &i, names[k], &v);
			if (r > 0)
				add_option(o, names[k], v);
		}
		if (r < 0)
			return 2;
		if (!r) {
			cr_error("post-render: unknown argument %s (see chartreuse post-render --help)",
				 argv[i]);
			return 2;
		}
	}
	return 0;
}

static void free_sources(struct sources *s)
{
	for (size_t i = 0; i < s->n; i++) {
		if (s->v[i].doc)
			fy_document_destroy(s->v[i].doc);
		free(s->v[i].name);
	}
	free(s->v);
	*s = (struct sources){ 0 };
}

/* The next entry of s, which has room for it. */
static struct source *next_source(struct sources *s)
{
	return &s->v[s->n++];
}

static int load_config_files(const struct cr_post_render_options *o, struct sources *files)
{
	files->v = xcalloc(o->n_configs + 1, sizeof(*files->v));
	for (size_t i = 0; i < o->n_configs; i++) {
		struct source *s = next_source(files);
		struct cr_buf text = { 0 };
		s->name = xasprintf("config file %s", o->configs[i]);
		if (cr_read_file(o->configs[i], &text)) {
			cr_buf_free(&text);
			return -1;
		}
		s->doc = yt_parse(text.data, text.len, s->name, 0);
		cr_buf_free(&text);
		if (!s->doc || cr_config_validate(fy_document_root(s->doc), s->name, 0))
			return -1;
	}
	return 0;
}

static int load_chart_configs(const char *data, const struct cr_manifest *m,
			      struct sources *charts)
{
	size_t n = 0;
	for (size_t i = 0; i < m->n_docs; i++)
		n += m->docs[i].is_config;
	charts->v = xcalloc(n + 1, sizeof(*charts->v));
	for (size_t i = 0; i < m->n_docs; i++) {
		const struct cr_doc *d = &m->docs[i];
		if (!d->is_config)
			continue;
		struct source *src = next_source(charts);
		src->name = xasprintf("%s: ChartreuseConfig (document %d)", STDIN_NAME, d->number);
		int line_base = cr_line_of(data, d->start) - 1;
		src->doc = yt_parse(data + d->start, d->end - d->start, src->name, line_base);
		if (!src->doc ||
		    cr_config_validate(fy_document_root(src->doc), src->name, line_base))
			return -1;
		char *name = yt_strdup(yt_path(fy_document_root(src->doc), "/metadata/name"));
		for (size_t j = 0; j + 1 < charts->n; j++) {
			char *other = yt_strdup(
				yt_path(fy_document_root(charts->v[j].doc), "/metadata/name"));
			bool same = (!name && !other) || cr_streq(name, other);
			free(other);
			if (same) {
				cr_error("%s: another ChartreuseConfig (document %d) has the same "
					 "metadata.name (%s); give each migration its own name",
					 src->name, d->number, name ? name : "chartreuse");
				free(name);
				return -1;
			}
		}
		free(name);
	}
	return 0;
}

static void seen_text(struct cr_buf *b, const struct cr_seen *s)
{
	for (size_t i = 0; i < s->n; i++)
		cr_buf_printf(b, "%s%s", i ? ", " : "", s->values[i]);
	if (s->more)
		cr_buf_adds(b, ", ...");
}

/* Inference: the lowest-precedence source. Ambiguity is only an error if nothing else
 * gives the value, which cr_config_load reports; here we say what was ambiguous. */
static struct fy_document *inferred(const struct cr_manifest *m)
{
	struct fy_document *d = fy_document_create(NULL);
	struct fy_node *root = yt_map(d);
	fy_document_set_root(d, root);
	if (m->releases.n == 1 && !m->releases.more)
		yt_set_str(root, "release", m->releases.values[0]);
	if (m->namespaces.n == 1 && !m->namespaces.more)
		yt_set_str(root, "namespace", m->namespaces.values[0]);
	return d;
}

static int explain_ambiguity(struct fy_node *merged, const struct cr_manifest *m)
{
	struct cr_buf b = { 0 };
	int rc = 0;
	if (!yt_get(merged, "release") && m->releases.n > 1) {
		seen_text(&b, &m->releases);
		cr_error("the manifests belong to several releases (%s): pass --release NAME", b.data);
		rc = -1;
	} else if (!yt_get(merged, "namespace") && m->namespaces.n > 1) {
		seen_text(&b, &m->namespaces);
		cr_error("the manifests name several namespaces (%s): pass --namespace NS", b.data);
		rc = -1;
	}
	cr_buf_free(&b);
	return rc;
}

/* Merges the sources for one migration (chart may be NULL) and renders it. */
static int render_one(const struct cr_post_render_options *o, const struct cr_manifest *m,
		      struct fy_document *infer, const struct source *chart,
		      const struct sources *files, struct cr_buf *out, struct cr_buf *jobs)
{
	struct fy_document *d = fy_document_create(NULL);
	struct fy_node *root = fy_node_copy(d, fy_document_root(infer));
	fy_document_set_root(d, root);
	if (chart)
		cr_config_overlay(root, fy_document_root(chart->doc));
	for (size_t i = 0; i < files->n; i++)
		cr_config_overlay(root, fy_document_root(files->v[i].doc));
	if (o->release)
		yt_set_str(root, "release", o->release);
	if (o->namespace)
		yt_set_str(root, "namespace", o->namespace);
	for (size_t i = 0; i < o->n_sets; i++)
		if (cr_config_set(root, o->sets[i])) {
			fy_document_destroy(d);
			return -1;
		}
	if (explain_ambiguity(root, m)) {
		fy_document_destroy(d);
		return -1;
	}
	struct cr_config cfg;
	char *what = chart ? xasprintf("configuration (%s)", chart->name)
			   : xstrdup("configuration");
	int rc = cr_config_load(&cfg, d, what);
	if (!rc)
		rc = cr_config_check_for_render(&cfg, what);
	if (!rc)
		rc = cr_render_split(&cfg, out, jobs);
	cr_config_free(&cfg);
	free(what);
	return rc;
}

/* Writes data[from, to) to fd and remembers its last byte. */
static int write_kept(int fd, const char *data, size_t from, size_t to, char *last)
{
	if (to > from)
		*last = data[to - 1];
	return cr_write_all(fd, data + from, to - from);
}

/* Writes the kept parts of the input straight from the input buffer (no copy of a stream
 * that may be many megabytes), then the injected documents on a line of their own. */
static int write_output(int fd, const char *data, size_t len, const struct cr_manifest *m,
			const struct cr_buf *injected)
{
	size_t pos = 0;
	char last = '\n';
	int rc = 0;
	for (size_t i = 0; !rc && i < m->n_docs; i++) {
		if (!m->docs[i].is_config)
			continue;
		rc = write_kept(fd, data, pos, m->docs[i].start, &last);
		pos = m->docs[i].end;
	}
	if (!rc)
		rc = write_kept(fd, data, pos, len, &last);
	if (!rc && last != '\n')
		rc = cr_write_all(fd, "\n", 1);
	if (!rc)
		rc = cr_write_all(fd, injected->data, injected->len);
	if (rc)
		cr_error("cannot write the manifests to %s: %s", fd == 1 ? "stdout" : "the output",
			 strerror(errno));
	return rc;
}

/* The wrapper made the file (mode 0600: the companions include the Secret); written
 * whole, even when empty, so that it never holds an earlier run's Jobs. */
static int write_hooks(const char *path, const struct cr_buf *jobs)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0) {
		cr_error("post-render: cannot open --hooks-to %s: %s", path, strerror(errno));
		return -1;
	}
	int rc = cr_write_all(fd, jobs->data ? jobs->data : "", jobs->len);
	if (rc)
		cr_error("post-render: cannot write %s: %s", path, strerror(errno));
	if (close(fd) && !rc) {
		cr_error("post-render: cannot write %s: %s", path, strerror(errno));
		rc = -1;
	}
	return rc;
}

int cr_post_render(const struct cr_post_render_options *o, const char *data, size_t len,
		   int out_fd)
{
	struct cr_buf injected = { 0 }, jobs = { 0 };
	struct cr_manifest m = { 0 };
	struct sources files = { 0 }, charts = { 0 };
	struct fy_document *infer = NULL;
	int rc = -1;
	if (cr_manifest_scan(data, len, STDIN_NAME, &m))
		goto out;
	if (!m.n_docs) {
		cr_error("%s: no manifests: the chart rendered nothing, so there is nothing to "
			 "attach a migration to", STDIN_NAME);
		goto out;
	}
	if (load_config_files(o, &files) || load_chart_configs(data, &m, &charts))
		goto out;
	infer = inferred(&m);
	rc = 0;
	for (size_t i = 0; !rc && i < (charts.n ? charts.n : 1); i++)
		rc = render_one(o, &m, infer, charts.n ? &charts.v[i] : NULL, &files, &injected,
				o->hooks_to ? &jobs : NULL);
	if (!rc && o->hooks_to)
		rc = write_hooks(o->hooks_to, &jobs);
	if (!rc)
		rc = write_output(out_fd, data, len, &m, &injected);
out:
	if (infer)
		fy_document_destroy(infer);
	free_sources(&files);
	free_sources(&charts);
	cr_manifest_free(&m);
	cr_buf_free(&injected);
	if (jobs.data)
		explicit_bzero(jobs.data, jobs.len);
	cr_buf_free(&jobs);
	return rc;
}

static int post_render(const struct cr_post_render_options *o)
{
	struct cr_buf in = { 0 };
	int rc = cr_read_fd(0, &in, STDIN_NAME);
	if (!rc)
		rc = cr_post_render(o, in.data ? in.data : "", in.len, 1);
	cr_buf_free(&in);
	return rc ? 1 : 0;
}

int cmd_post_render(int argc, char **argv)
{
	struct cr_post_render_options o = { 0 };
	int rc = parse_options(argc, argv, &o);
	if (rc == 0)
		rc = post_render(&o);
	else if (rc < 0)
		rc = 0;
	free(o.configs);
	free(o.sets);
	return rc;
}
