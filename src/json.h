/* json: JSON in and out of libfyaml trees, for the Kubernetes API.
 *
 * Parsing is libfyaml's JSON mode. Writing is done here from the tree: libfyaml 0.7.12's
 * JSON emitter quotes correctly but leaks memory on strings with many escapes (every
 * yt_str string with punctuation). How scalars come out:
 *   - quoted nodes (yt_str, JSON strings, quoted YAML), nodes tagged !!str, and all keys:
 *     strings, escaped per RFC 8259 (", \, control characters; UTF-8 passes through);
 *   - plain nodes that YAML 1.2 reads as null (empty, ~, null/Null/NULL) or a boolean
 *     (true/True/TRUE, false/...): null, true, false;
 *   - plain nodes spelled as a JSON number (1, -2.5e3): that number;
 *   - any other plain node ("yes", "0x1F", "01", ".5"): a string.
 * So build numbers with yt_int/yt_bool and strings with yt_str. */
#ifndef CR_JSON_H
#define CR_JSON_H

#include <libfyaml.h>
#include <stddef.h>

struct cr_buf;

/* Parses one JSON value into a document that the ytree builders can extend (yt_set_str
 * etc.). Errors are reported as "<origin>: invalid JSON at line L, column C: <msg>" and
 * give NULL. Text after the first value is not looked at. */
struct fy_document *cr_json_parse(const char *data, size_t len, const char *origin);

/* Appends the tree under n as one line of JSON (no newline). Aliases, keys that are not
 * scalars and text that is not UTF-8 have no JSON form: reported, -1, nothing appended.
 * NULL n is "null". */
int cr_json_emit(struct fy_node *n, struct cr_buf *out);
/* The same into a new string; NULL after reporting. Caller frees. */
char *cr_json_string(struct fy_node *n);

/* The output formats of the commands' -o (table, json, yaml). */
enum cr_format { CR_FORMAT_TABLE, CR_FORMAT_JSON, CR_FORMAT_YAML };
/* d as one line of JSON and a newline, or as YAML (CR_FORMAT_TABLE: YAML too). 0, or -1
 * (reported). */
int cr_format_emit(struct fy_document *d, enum cr_format f, struct cr_buf *out);

#endif
