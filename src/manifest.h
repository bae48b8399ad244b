/* manifest: reads the rendered stream Helm hands a post-renderer — where each document
 * starts and ends (so it can be passed through byte for byte), whether it is well-formed,
 * which documents are ChartreuseConfig, and what the objects say about the release name
 * and namespace. It streams libyaml's parser events and never builds trees, so its cost is
 * linear and aliases are never expanded. libyaml, not libfyaml, because Helm reads manifests
 * with Go's YAML package, a port of libyaml: what Helm would refuse is refused here, and
 * what it reads is read; and because it parses this stream twice as fast. */
#ifndef CR_MANIFEST_H
#define CR_MANIFEST_H

#include <stdbool.h>
#include <stddef.h>

struct cr_doc {
	size_t start, end; /* byte range, from its "---" (if any) up to the next document */
	int number;	   /* 1-based position in the stream */
	bool is_config;	   /* kind: ChartreuseConfig */
};

#define CR_MAX_SEEN 4

/* Distinct values seen for an inferred setting, in order of appearance. */
struct cr_seen {
	char *values[CR_MAX_SEEN];
	size_t n;
	bool more; /* more distinct values than fit */
};

struct cr_manifest {
	struct cr_doc *docs;
	size_t n_docs;
	struct cr_seen releases;   /* app.kubernetes.io/instance, then release labels */
	struct cr_seen namespaces; /* metadata.namespace */
};

/* Scans data; on malformed input reports "<origin>: document N, line L, column C: ..."
 * and returns -1. */
int cr_manifest_scan(const char *data, size_t len, const char *origin, struct cr_manifest *m);
void cr_manifest_free(struct cr_manifest *m);
/* 1-based line number of byte offset pos. */
int cr_line_of(const char *data, size_t pos);

#endif
