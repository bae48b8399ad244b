/* A config file (--config) or a ChartreuseConfig document: parsed (src/ytree.c), checked
 * against the schema, merged as post-render merges sources, edited by --set assignments,
 * loaded, checked for rendering and rendered (src/config.c, src/render.c).
 *
 * Input: the YAML text, then optionally NUL-separated --set arguments (at most 8), each
 * Helm-style (comma-separated assignments); one that starts with \x01 is a --set-string,
 * one that starts with \x02 a single assignment taken whole (migrate's environment).
 * Oracle beyond the sanitizers: whatever the values, the rendered objects must read back
 * as a well-formed stream (SPEC §5: no value can change the structure of the YAML), the
 * ConfigMap's config.yaml must load again, as `migrate` loads it in the Job, and every
 * object's name must be one the API server takes (a Job's within 63 characters). */
#include "config.h"
#include "fuzz.h"
#include "manifest.h"
#include "names.h"
#include "render.h"
#include "ytree.h"

#define MAX_SETS 8

static void fail(const char *what, const char *text, size_t len)
{
	fprintf(stderr, "%s:\n%.*s\n", what, (int)len, text);
	abort();
}

static void check_name(struct fy_node *root, const char *text, size_t len)
{
	size_t klen;
	const char *kind = yt_scalar(yt_get(root, "kind"), &klen);
	char *name = yt_strdup(yt_path(root, "/metadata/name"));
	bool job = kind && klen == 3 && !memcmp(kind, "Job", 3);
	if (!cr_dns_name_ok(name, CR_NAME_SUBDOMAIN, job ? 63 : 253))
		fail("an object's name is not a DNS-1123 subdomain", text, len);
	free(name);
}

/* Every rendered document parses and is well named; the ConfigMap's config.yaml loads as a
 * config. */
static void read_back(const struct cr_buf *out, const struct cr_manifest *m)
{
	for (size_t i = 0; i < m->n_docs; i++) {
		const char *text = out->data + m->docs[i].start;
		size_t len = m->docs[i].end - m->docs[i].start;
		struct fy_document *d = yt_parse(text, len, "rendered", 0);
		if (!d)
			fail("a rendered document does not parse", text, len);
		struct fy_node *root = fy_document_root(d);
		check_name(root, text, len);
		size_t klen, clen;
		const char *kind = yt_scalar(yt_get(root, "kind"), &klen);
		const char *config = yt_scalar(yt_path(root, "/data/config.yaml"), &clen);
		if (kind && klen == 9 && !memcmp(kind, "ConfigMap", 9) && config) {
			struct fy_document *c = yt_parse(config, clen, "config.yaml", 0);
			struct cr_config cfg;
			if (!c || cr_config_load(&cfg, c, "config.yaml"))
				fail("the ConfigMap's config.yaml does not load", config, clen);
			cr_config_free(&cfg);
		}
		fy_document_destroy(d);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	fz_quiet();
	struct fz_piece p[MAX_SETS + 1];
	const char *nul = memchr(data, '\0', size);
	size_t n = 1;
	p[0] = (struct fz_piece){ (const char *)data, nul ? (size_t)(nul - (const char *)data) : size };
	for (const char *s = nul; s && n < MAX_SETS + 1;) {
		const char *start = s + 1, *end = (const char *)data + size;
		const char *next = memchr(start, '\0', (size_t)(end - start));
		p[n++] = (struct fz_piece){ start, (size_t)((next ? next : end) - start) };
		s = next;
	}

	struct fy_document *src = yt_parse(p[0].s, p[0].len, "fuzz config", 0);
	if (!src)
		goto out;
	if (cr_config_validate(fy_document_root(src), "fuzz config", 0)) {
		fy_document_destroy(src);
		goto out;
	}
	/* As post-render does: a fresh tree, the source overlaid, then --set. */
	struct fy_document *d = fy_document_create(NULL);
	struct fy_node *root = yt_map(d);
	fy_document_set_root(d, root);
	cr_config_overlay(root, fy_document_root(src));
	fy_document_destroy(src);
	for (size_t i = 1; i < n; i++) {
		char *arg = xstrndup(p[i].s, p[i].len);
		if (arg[0] == '\x02')
			cr_config_set(root, arg + 1);
		else
			cr_config_set_arg(root, arg + (arg[0] == '\x01'), arg[0] == '\x01');
		free(arg);
	}
	struct cr_config cfg;
	if (cr_config_load(&cfg, d, "fuzz config") == 0 &&
	    cr_config_check_for_render(&cfg, "fuzz config") == 0) {
		struct cr_buf out = { 0 };
		if (cr_render(&cfg, &out) == 0) {
			struct cr_manifest m;
			cr_manifest_split(out.data ? out.data : "", out.len, "rendered", &m);
			read_back(&out, &m);
			cr_manifest_free(&m);
		}
		cr_buf_free(&out);
	}
	cr_config_free(&cfg);
out:
	cr_secrets_clear();
	return 0;
}
