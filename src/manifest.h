/* manifest: the rendered stream Helm hands a post-renderer. It is cut into documents at their
 * marker lines ("---", "..."), which YAML allows inside no scalar, so finding the documents
 * parses nothing and every byte passes through as it came. Only what chartreuse reads is
 * parsed: the documents that may be a ChartreuseConfig, and, when inference is asked for,
 * the objects' metadata.namespace and instance/release labels. Validating the chart's
 * documents is Helm's job (it accepts a duplicate key, the last one winning), so they pass
 * unread. The reading streams libyaml's events, never a tree, so aliases are never expanded;
 * libyaml because Helm reads manifests with Go's YAML package, a port of it. */
#ifndef CR_MANIFEST_H
#define CR_MANIFEST_H

#include <stdbool.h>
#include <stddef.h>

struct cr_doc {
	/* Byte range: from its first directive or its "---" (a document without one starts
	 * where the previous one ended) to the end of its "..." line or the next document. */
	size_t start, end;
	int number;	   /* 1-based position in the stream */
	bool has_content;  /* a line other than markers, comments, directives and blank lines */
	bool maybe_config; /* may spell kind: ChartreuseConfig: the only ones read for it */
	bool is_config;	   /* kind: ChartreuseConfig (cr_manifest_find_configs) */
};

#define CR_MAX_SEEN 4

/* Distinct values seen for an inferred setting, in order of appearance. */
struct cr_seen {
	char *values[CR_MAX_SEEN];
	size_t n;
	bool more; /* more distinct values than fit */
};

struct cr_manifest {
	const char *data, *origin;
	size_t len;
	struct cr_doc *docs;
	size_t n_docs;
	struct cr_seen releases;   /* app.kubernetes.io/instance, then release labels */
	struct cr_seen namespaces; /* metadata.namespace */
};

/* Cuts data (which must outlive m) into documents; reads nothing else. */
void cr_manifest_split(const char *data, size_t len, const char *origin, struct cr_manifest *m);
/* Whether some document holds more than markers, comments, directives and blank lines. */
bool cr_manifest_has_content(const struct cr_manifest *m);
/* Reads the documents that may be a ChartreuseConfig and sets is_config. -1 after
 * reporting one that is not YAML, or whose kind can't be told. */
int cr_manifest_find_configs(struct cr_manifest *m);

#define CR_INFER_RELEASE 1u
#define CR_INFER_NAMESPACE 2u
/* Reads what (CR_INFER_*) the documents other than ChartreuseConfig say into m->releases
 * and m->namespaces. -1 after reporting a document that is not YAML. */
int cr_manifest_infer(struct cr_manifest *m, unsigned what);

/* For messages about document d: "<origin>: <what> (document N)", plus " in <template>"
 * when the document names the template it came from (Helm 3's "# Source:" line, Helm 4's
 * postrenderer.helm.sh/postrender-filename annotation). *line_base turns a 1-based line of
 * the document's text into one of that template, else into one of the stream. Caller frees. */
char *cr_doc_origin(const struct cr_manifest *m, const struct cr_doc *d, const char *what,
		    int *line_base);

void cr_manifest_free(struct cr_manifest *m);
/* 1-based line number of byte offset pos. */
int cr_line_of(const char *data, size_t pos);

#endif
