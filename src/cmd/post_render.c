/* `chartreuse post-render`: manifests in, the same manifests plus the migration objects out.
 * A pure function of its input and configuration: no network, no clock, no randomness. */
#include "cmd.h"
#include "config.h"
#include "file.h"
#include "log.h"
#include "manifest.h"
#include "podsec.h"
#include "podspec.h"
#include "render.h"
#include "util.h"
#include "ytree.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
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
	} else if (!strcmp(name, "--set-string")) {
		XGROW(o->set_strings, o->n_set_strings + 1, o->cap_set_strings);
		o->set_strings[o->n_set_strings++] = v;
	} else {
		XGROW(o->sets, o->n_sets + 1, o->cap_sets);
		o->sets[o->n_sets++] = v;
	}
}

/* 0: go on; 2: bad usage (reported); -1: --help was printed. */
static int parse_options(int argc, char **argv, struct cr_post_render_options *o)
{
	static const char *const names[] = { "--release", "--namespace", "--config", "--set",
					       "--set-string", "--hooks-to" };
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

static int load_chart_configs(const struct cr_manifest *m, struct sources *charts)
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
		int line_base;
		src->name = cr_doc_origin(m, d, CR_CONFIG_KIND, &line_base);
		src->doc = yt_parse(m->data + d->start, d->end - d->start, src->name, line_base);
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
					 src->name, m->docs[i].number, name ? name : "chartreuse");
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

/* Ambiguity is only an error if nothing else gives the value, which cr_config_load
 * reports; here we say what was ambiguous. */
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

/* One migration's settings from every source but inference (chart may be NULL), or NULL
 * after reporting a bad --set. */
static struct fy_document *merge_sources(const struct cr_post_render_options *o,
					 const struct source *chart, const struct sources *files)
{
	struct fy_document *d = yt_document();
	struct fy_node *root = yt_map(d);
	fy_document_set_root(d, root);
	if (chart)
		cr_config_overlay(root, fy_document_root(chart->doc));
	for (size_t i = 0; i < files->n; i++)
		cr_config_overlay(root, fy_document_root(files->v[i].doc));
	if (o->release)
		yt_set_str(root, "release", o->release);
	if (o->namespace)
		yt_set_str(root, "namespace", o->namespace);
	for (size_t i = 0; i < o->n_sets + o->n_set_strings; i++)
		if (i < o->n_sets ? cr_config_set_arg(root, o->sets[i], false)
				  : cr_config_set_arg(root, o->set_strings[i - o->n_sets], true)) {
			fy_document_destroy(d);
			return NULL;
		}
	return d;
}

/* What inference must find: what some migration has from no other source. */
static unsigned to_infer(struct fy_document *const *merged, size_t n)
{
	unsigned what = 0;
	for (size_t i = 0; i < n; i++) {
		struct fy_node *root = fy_document_root(merged[i]);
		what |= yt_get(root, "release") ? 0 : CR_INFER_RELEASE;
		what |= yt_get(root, "namespace") ? 0 : CR_INFER_NAMESPACE;
	}
	return what;
}

/* Inference is the lowest-precedence source: it gives only what nothing else set, and only
 * when the objects agree. */
static void add_inferred(struct fy_node *root, const char *key, const struct cr_seen *seen)
{
	if (!yt_get(root, key) && seen->n == 1 && !seen->more)
		yt_set_str(root, key, seen->values[0]);
}

/* Puts key first in root, where inference, the base layer, puts it: the Job's config.yaml
 * keeps one order whichever source gave the value. */
static void put_first(struct fy_node *root, const char *key)
{
	struct fy_node *v = yt_get(root, key);
	if (!v)
		return;
	struct fy_document *d = fy_node_document(root);
	struct fy_node *copy = fy_node_copy(d, v);
	yt_del(root, key);
	fy_node_mapping_prepend(root, yt_str(d, key), copy);
}

/* The migration container runs as the chart's Deployment of the same image runs it. */
static int render_with_app_security(const struct cr_manifest *m, const struct cr_config *cfg,
				    struct cr_buf *out, struct cr_buf *jobs)
{
	struct cr_app_security app;
	char *image = cr_image_ref(&cfg->image);
	cr_app_security_find(m, image, &app);
	free(image);
	int rc = cr_render_split(cfg, &app, out, jobs);
	cr_app_security_free(&app);
	return rc;
}

/* Renders one migration from its merged settings d, which it consumes. */
static int render_one(const struct cr_manifest *m, struct fy_document *d,
		      const struct source *chart, struct cr_buf *out, struct cr_buf *jobs)
{
	struct fy_node *root = fy_document_root(d);
	if (explain_ambiguity(root, m)) {
		fy_document_destroy(d);
		return -1;
	}
	add_inferred(root, "release", &m->releases);
	add_inferred(root, "namespace", &m->namespaces);
	put_first(root, "namespace");
	put_first(root, "release");
	struct cr_config cfg;
	char *what = chart ? xasprintf("configuration (%s)", chart->name)
			   : xstrdup("configuration");
	int rc = cr_config_load(&cfg, d, what);
	if (!rc)
		rc = cr_config_check_for_render(&cfg, what);
	if (!rc)
		rc = render_with_app_security(m, &cfg, out, jobs);
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

/* Merges every migration's settings into merged[] (one per chart config, or one), then
 * reads the manifests for what none of them has, then renders each. */
static int render_all(const struct cr_post_render_options *o, struct cr_manifest *m,
		      const struct sources *files, const struct sources *charts,
		      struct cr_buf *injected, struct cr_buf *jobs)
{
	size_t n = charts->n ? charts->n : 1;
	struct fy_document **merged = xcalloc(n, sizeof(*merged));
	int rc = 0;
	for (size_t i = 0; !rc && i < n; i++) {
		merged[i] = merge_sources(o, charts->n ? &charts->v[i] : NULL, files);
		rc = merged[i] ? 0 : -1;
	}
	unsigned what = rc ? 0 : to_infer(merged, n);
	if (what)
		rc = cr_manifest_infer(m, what);
	for (size_t i = 0; i < n; i++) {
		if (!rc)
			rc = render_one(m, merged[i], charts->n ? &charts->v[i] : NULL, injected,
					jobs);
		else if (merged[i])
			fy_document_destroy(merged[i]);
		merged[i] = NULL;
	}
	free(merged);
	return rc;
}

int cr_post_render(const struct cr_post_render_options *o, const char *data, size_t len,
		   int out_fd)
{
	struct cr_buf injected = { 0 }, jobs = { 0 };
	struct cr_manifest m;
	struct sources files = { 0 }, charts = { 0 };
	int rc = -1;
	cr_manifest_split(data, len, STDIN_NAME, &m);
	if (!cr_manifest_has_content(&m)) {
		cr_error("%s: no manifests: the chart rendered nothing, so there is nothing to "
			 "attach a migration to", STDIN_NAME);
		goto out;
	}
	if (load_config_files(o, &files) || cr_manifest_find_configs(&m) ||
	    load_chart_configs(&m, &charts))
		goto out;
	rc = render_all(o, &m, &files, &charts, &injected, o->hooks_to ? &jobs : NULL);
	if (!rc && o->hooks_to)
		rc = write_hooks(o->hooks_to, &jobs);
	if (!rc)
		rc = write_output(out_fd, data, len, &m, &injected);
out:
	free_sources(&files);
	free_sources(&charts);
	cr_manifest_free(&m);
	cr_buf_free(&injected);
	if (jobs.data)
		explicit_bzero(jobs.data, jobs.len);
	cr_buf_free(&jobs);
	return rc;
}

/* The stream on stdin. A regular file is mapped, not copied: its pages are the kernel's
 * cache, where a copy would fault in as many fresh pages (most of the post-renderer's time
 * on a large stream). Anything else, Helm's pipe included, is read. */
struct input {
	const char *data;
	size_t len;
	void *map;
	size_t map_len;
	struct cr_buf buf;
};

static int read_input(struct input *in)
{
	struct stat st;
	off_t at = lseek(0, 0, SEEK_CUR); /* where stdin stands: some may have been read */
	if (fstat(0, &st) == 0 && S_ISREG(st.st_mode) && at >= 0 && st.st_size > at) {
		in->map_len = (size_t)st.st_size;
		in->map = mmap(NULL, in->map_len, PROT_READ, MAP_PRIVATE | MAP_POPULATE, 0, 0);
		if (in->map != MAP_FAILED) {
			in->data = (const char *)in->map + at;
			in->len = in->map_len - (size_t)at;
			return 0;
		}
		in->map = NULL;
	}
	if (cr_read_fd(0, &in->buf, STDIN_NAME))
		return -1;
	in->data = in->buf.data ? in->buf.data : "";
	in->len = in->buf.len;
	return 0;
}

static void input_free(struct input *in)
{
	if (in->map)
		munmap(in->map, in->map_len);
	cr_buf_free(&in->buf);
}

static int post_render(const struct cr_post_render_options *o)
{
	struct input in = { 0 };
	int rc = read_input(&in);
	if (!rc)
		rc = cr_post_render(o, in.data, in.len, 1);
	input_free(&in);
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
	free(o.set_strings);
	return rc;
}
