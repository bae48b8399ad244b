/* ytree: the YAML document tree (libfyaml) as the rest of chartreuse uses it — parsing with
 * positioned error messages, lookups, building nodes whose string-ness survives emission,
 * and emitting through libyaml's emitter, whose quoting is correct for every string
 * (Debian 12's libfyaml 0.7.12 emitter writes "#x", "- x" or " x" unquoted). */
#ifndef CR_YTREE_H
#define CR_YTREE_H

#include <libfyaml.h>
#include <stdbool.h>
#include <stddef.h>

struct cr_buf;

/* Parses exactly one document. Errors are reported as "<origin>:<line>:<column>: <msg>"
 * (line_base is added to lines, for documents cut out of a larger stream). Duplicate keys
 * (found in linear time), aliases and more than one document are errors. Returns NULL after reporting. */
struct fy_document *yt_parse(const char *data, size_t len, const char *origin, int line_base);

/* A diagnostics object that collects errors instead of printing them (fy_diag_destroy). */
struct fy_diag *yt_diag_new(void);
/* Plain-scalar text that YAML reads as null: "", "~", "null" in any case. */
bool yt_text_is_null(const char *s, size_t len);

/* An empty document. Build every document with it (or yt_parse): its mappings skip
 * libfyaml's duplicate check, quadratic in the number of keys; yt_set keeps keys unique. */
struct fy_document *yt_document(void);
/* An empty document whose root is a new mapping (*root): a patch, an object to build. */
struct fy_document *yt_map_document(struct fy_node **root);

/* An index of a mapping's keys, for many lookups and sets in one mapping (an overlay of a
 * large one): each is O(1) where yt_get and yt_set scan. Valid while only yt_keys_set
 * changes the mapping. */
struct yt_keys;
struct yt_keys *yt_keys_of(struct fy_node *map);
struct fy_node *yt_keys_get(const struct yt_keys *k, const char *key);
void yt_keys_set(struct yt_keys *k, struct fy_node *map, const char *key, struct fy_node *value);
void yt_keys_free(struct yt_keys *k);

/* Lookups; NULL when absent or of another shape. */
struct fy_node *yt_get(struct fy_node *map, const char *key);
/* A scalar's text and its length, which is required: the text is not NUL-terminated (a
 * quoted scalar points into the document's source, which goes on after the quote). */
const char *yt_scalar(struct fy_node *n, size_t *len) __attribute__((nonnull(2)));
/* n is a scalar whose text is exactly s. */
bool yt_scalar_is(struct fy_node *n, const char *s);
/* NUL-terminated copy of a scalar (NULL if n is not a scalar). */
char *yt_strdup(struct fy_node *n);
/* Line (1-based) where n starts, 0 if unknown. */
int yt_line(struct fy_node *n);
const char *yt_kind(struct fy_node *n);
bool yt_is_map(struct fy_node *n);
bool yt_is_seq(struct fy_node *n);
bool yt_is_scalar(struct fy_node *n);
/* A plain scalar whose text YAML would read as null (empty, "~", "null"). */
bool yt_is_null(struct fy_node *n);

/* Builders. yt_str marks the node as a string so it is quoted when YAML would otherwise
 * read it as something else ("1", "true", "2024-01-01", "# x"). */
struct fy_node *yt_str(struct fy_document *d, const char *s);
struct fy_node *yt_strn(struct fy_document *d, const char *s, size_t len);
struct fy_node *yt_int(struct fy_document *d, long v);
struct fy_node *yt_bool(struct fy_document *d, bool v);
struct fy_node *yt_null(struct fy_document *d);
struct fy_node *yt_map(struct fy_document *d);
struct fy_node *yt_seq(struct fy_document *d);

/* Sets map[key] = value, replacing an existing entry in place (order is kept). */
void yt_set(struct fy_node *map, const char *key, struct fy_node *value);
void yt_set_str(struct fy_node *map, const char *key, const char *s);
/* map[key] as a mapping, created (or replacing a null) when missing. */
struct fy_node *yt_child_map(struct fy_node *map, const char *key);
struct fy_node *yt_child_seq(struct fy_node *map, const char *key);
void yt_del(struct fy_node *map, const char *key);
void yt_append(struct fy_node *seq, struct fy_node *item);
/* Appends copies of every item of items (nothing when it is no sequence). */
void yt_append_copies(struct fy_node *seq, struct fy_node *items);
/* Sets map[key] to a copy of value, when there is one. */
void yt_set_copy(struct fy_node *map, const char *key, struct fy_node *value);
/* Node at a '/'-separated path of plain keys from root; NULL when absent. */
struct fy_node *yt_path(struct fy_node *root, const char *path);

/* Emits the tree under root as one block-style YAML document (no "---"). */
int yt_emit(struct fy_node *root, struct cr_buf *out);
/* The same, for a whole document. */
int yt_emit_document(struct fy_document *d, struct cr_buf *out);

/* True when the plain scalar s would be read back by YAML 1.1 or 1.2 as a string. */
bool yt_plain_is_string(const char *s, size_t len);

#endif
