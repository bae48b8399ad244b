/* k8s: a small Kubernetes REST client on libcurl, with JSON bodies as libfyaml trees.
 *
 * One client holds one curl handle (keep-alive across requests) and is not thread-safe:
 * give each thread its own (cr_k8s_dup). Credentials follow kubectl: in-cluster service
 * account or kubeconfig, bearer tokens (a token file is re-read when it changes, and once
 * more on a 401), client certificates, exec plugins (re-run when their credential expires
 * or on a 401). Every token and key is registered with cr_secret_add.
 *
 * Retries: connection failures, timeouts, 429 and 5xx are retried with exponential backoff
 * and jitter (or the server's Retry-After) for GET, PUT, DELETE and calls flagged
 * CR_K8S_IDEMPOTENT; POST and unflagged PATCH only when the connection could not be made
 * (nothing was sent). An error that remains is reported as one line:
 *   kubernetes: PATCH /apis/apps/v1/namespaces/x/deployments/y: 422 Invalid: <message>
 */
#ifndef CR_K8S_H
#define CR_K8S_H

#include <libfyaml.h>
#include <stdbool.h>

struct cr_buf;
struct cr_k8s;

/* Which configuration is used: `kubeconfig` if set; else $KUBECONFIG if set; else
 * ~/.kube/config when `context` is set; else in-cluster when KUBERNETES_SERVICE_HOST is
 * set (files from $CHARTREUSE_SERVICEACCOUNT_DIR, default the service account directory);
 * else ~/.kube/config. Zero fields take the defaults in brackets. */
struct cr_k8s_options {
	const char *kubeconfig; /* one file, as kubectl --kubeconfig */
	const char *context;    /* --kube-context [current-context] */
	const char *namespace;  /* --namespace [context's, in-cluster file's, "default"] */
	long connect_timeout_ms; /* [10000] */
	long timeout_ms;         /* whole request, per attempt [$CHARTREUSE_KUBE_REQUEST_TIMEOUT
				  * seconds, else 60000] */
	int tries;               /* attempts for a retryable failure [6] */
	long retry_base_ms;      /* first backoff [200], doubling... */
	long retry_cap_ms;       /* ...up to [5000]; Retry-After is honoured up to 60 s */
};

/* NULL after reporting. */
struct cr_k8s *cr_k8s_new(const struct cr_k8s_options *opts);
/* A new client with the same configuration and credentials (for another thread). */
struct cr_k8s *cr_k8s_dup(const struct cr_k8s *k);
void cr_k8s_free(struct cr_k8s *k);

const char *cr_k8s_namespace(const struct cr_k8s *k);
const char *cr_k8s_server(const struct cr_k8s *k);
/* "in-cluster" or "<kubeconfig>, context <name>". */
const char *cr_k8s_origin(const struct cr_k8s *k);

/* What a call came to, as one value (curl's CURLcode, libgit2's expected errors): 0, or
 * what went wrong. The expected outcomes a caller asked for with a flag (and NOT_FOUND of a
 * get or delete) are returned silently; any other failure is reported as one line first
 * and then returned as its kind, so that a caller may still act on it. The HTTP status is
 * cr_k8s_last_status's. */
enum cr_k8s_rc {
	CR_K8S_OK = 0,
	CR_K8S_ERROR = -1,	 /* anything else: an HTTP error, an answer that is not JSON */
	CR_K8S_NOT_FOUND = -2,	 /* 404 */
	CR_K8S_CONFLICT = -3,	 /* 409: a stale resourceVersion, or the name is taken */
	CR_K8S_TEST_FAILED = -4, /* 422 to a JSON patch one of whose tests fails on the object */
	CR_K8S_INVALID = -5,	 /* 422 otherwise: validation or admission refused the write */
	CR_K8S_FORBIDDEN = -6,	 /* 403 */
	CR_K8S_TRANSIENT = -7,	 /* no answer, 429 or 5xx, once the retries are spent */
};
/* "not found", "conflict", ...: for messages. */
const char *cr_k8s_rc_name(int rc);
/* The HTTP status of the client's last answer (0: none came). */
long cr_k8s_last_status(const struct cr_k8s *k);

/* Flags for requests. */
#define CR_K8S_IDEMPOTENT 1u   /* repeating this PATCH/POST is harmless: retry it like a GET */
#define CR_K8S_ABSENT_OK 2u    /* a 404 is CR_K8S_NOT_FOUND, unreported (get, delete: always) */
#define CR_K8S_CONFLICT_OK 4u  /* a 409 is CR_K8S_CONFLICT, unreported */

/* "<api>/namespaces/<ns>/<resource>[/<name>[/<sub>]]" (ns NULL: a cluster-scoped
 * resource), api "/api/v1" or "/apis/<group>/<version>". The namespace must be a DNS label
 * and the name a DNS subdomain: a name that is no Kubernetes name names nothing that can
 * exist and must never reach a path ("../x" least of all). NULL after reporting; caller
 * frees. Every call below fails (CR_K8S_ERROR, already reported) when given a NULL path. */
char *cr_k8s_path(const char *api, const char *ns, const char *resource, const char *name,
		  const char *sub);

/* Appends "?key=value" (or "&key=value" when path has a query already) to path, value
 * percent-encoded; nothing when path->data is NULL (cr_k8s_path refused it). */
void cr_k8s_query_add(struct cr_buf *path, const char *key, const char *value);

/* The raw call: path is "/api/..." with its query (already encoded); body may be NULL
 * (content_type NULL: application/json). Returns the final HTTP status, or -1 when no
 * answer came or a 2xx answer is not JSON (reported). HTTP errors are NOT reported: see
 * cr_k8s_report. *out (when out is set) gets the JSON body, or NULL when there is none or
 * an error's body is not JSON; the caller frees it. */
long cr_k8s_request(struct cr_k8s *k, const char *method, const char *path,
		    const char *content_type, const char *body, unsigned flags,
		    struct fy_document **out);

/* A GET whose answer is text, not JSON (a Pod's log): the body is appended to out as it
 * came. CR_K8S_OK on 2xx; a failure is not reported (a log is an extra). */
int cr_k8s_get_text(struct cr_k8s *k, const char *path, struct cr_buf *out);

/* Reports a failed call as one line (verb, path, status, the Status reason and message). */
void cr_k8s_report(const char *method, const char *path, long status,
		   struct fy_document *response);
/* The same line, into a new string (for tests and callers that add context). */
char *cr_k8s_error_line(const char *method, const char *path, long status,
			struct fy_document *response);

/* Conveniences: CR_K8S_OK on 2xx with *out (if out is set) the returned object, else an
 * enum cr_k8s_rc as above. Bodies are trees written as JSON (see json.h for how scalars
 * are typed). */
int cr_k8s_get(struct cr_k8s *k, const char *path, struct fy_document **out);
/* GET of a collection; selector (may be NULL) is added as labelSelector, URL-encoded.
 * flags: CR_K8S_ABSENT_OK when a 404 (the resource type is not served: a CRD not
 * installed) is the caller's to report. */
int cr_k8s_list(struct cr_k8s *k, const char *path, const char *selector, unsigned flags,
		struct fy_document **out);
int cr_k8s_post(struct cr_k8s *k, const char *path, struct fy_node *obj, unsigned flags,
		struct fy_document **out);
int cr_k8s_put(struct cr_k8s *k, const char *path, struct fy_node *obj,
	       struct fy_document **out);
/* options (may be NULL): the DeleteOptions body (propagationPolicy, preconditions). A
 * Job's Pods stay unless it asks propagationPolicy Background. */
int cr_k8s_delete(struct cr_k8s *k, const char *path, struct fy_node *options,
		  struct fy_document **out);

enum cr_k8s_patch {
	CR_K8S_PATCH_MERGE,     /* application/merge-patch+json (RFC 7386) */
	CR_K8S_PATCH_STRATEGIC, /* application/strategic-merge-patch+json */
	CR_K8S_PATCH_JSON,      /* application/json-patch+json (RFC 6902): a list of ops */
};
/* flags: CR_K8S_IDEMPOTENT when applying the patch twice gives the same object; with
 * CR_K8S_CONFLICT_OK, a merge patch carrying metadata.resourceVersion is a precondition.
 * A JSON patch's "test" ops are its preconditions: the API server answers 422 both when
 * one fails and when validation or admission refuses the result, so on a 422 the object is
 * read again and the tests are run on it: CR_K8S_TEST_FAILED (silent) when one fails,
 * CR_K8S_INVALID (reported) when they all hold. */
int cr_k8s_patch(struct cr_k8s *k, const char *path, enum cr_k8s_patch type,
		 struct fy_node *patch, unsigned flags, struct fy_document **out);

/* --- preconditioned writes (k8s_write.c) ---
 * A write the client gave up on (a timeout) may still be applied by the server later,
 * after the retry and after whatever the run did next: a scale to 0 landing after the
 * start would leave a Deployment down. So these writes carry a precondition from the read
 * they were decided from (a resourceVersion, or a JSON patch's test ops): a stale copy is
 * refused and changes nothing, and the write is decided again from a fresh read. */
#define CR_K8S_WRITE_TRIES 10

/* A merge patch (consumed) carrying metadata.resourceVersion: CR_K8S_OK with *out (if
 * set) the object as it now is, CR_K8S_CONFLICT when the resourceVersion is stale,
 * CR_K8S_NOT_FOUND, or another failure (reported). */
int cr_k8s_patch_rv(struct cr_k8s *k, const char *path, struct fy_document *patch,
		    struct fy_document **out);
/* Reads the object, lets fill() write into patch (a mapping) the merge patch that makes it
 * as wanted (false: it already is, nothing is written), sends it with the read's
 * resourceVersion, and on 409 starts again, up to CR_K8S_WRITE_TRIES times. CR_K8S_OK with
 * *out (if set) the object as it now is, CR_K8S_NOT_FOUND, or a failure (reported). */
typedef bool (*cr_k8s_want_fn)(struct fy_node *obj, struct fy_node *patch, void *user);
int cr_k8s_patch_wanted(struct cr_k8s *k, const char *path, cr_k8s_want_fn fill, void *user,
			struct fy_document **out);
/* A JSON patch (ops, consumed) whose test ops are its preconditions: CR_K8S_TEST_FAILED
 * when one does not hold (silent), CR_K8S_NOT_FOUND, or as cr_k8s_patch. */
int cr_k8s_patch_tested(struct cr_k8s *k, const char *path, struct fy_document *ops);

/* One permission, as RBAC spells it: a resource may name a subresource ("deployments/scale"). */
struct cr_k8s_access {
	const char *group, *resource, *verb;
};
/* Whether this client may do a in namespace ns, asked of the API server itself
 * (SelfSubjectAccessReview: every authorizer, not only RBAC). 1 allowed; 0 not (*why, if
 * the server said, caller frees); -1 when it could not be asked (not reported: the caller
 * decides what that means; cr_k8s_last_status says how it failed). */
int cr_k8s_may(struct cr_k8s *k, const char *ns, const struct cr_k8s_access *a, char **why);

/* Read-modify-write that survives concurrent writers: GETs path, lets change() edit the
 * object in place, PUTs it (its metadata.resourceVersion makes the server refuse a stale
 * write) and on 409 Conflict starts again from a fresh GET, up to 10 times.
 * change returns 0 to write, 1 when the object needs no change (nothing is written), -1 to
 * give up (it reports why). Returns CR_K8S_OK, CR_K8S_NOT_FOUND, or a failure (reported).
 * *out: the object as it now is. Works on subresources with GET and PUT, like
 * .../deployments/x/scale. */
typedef int (*cr_k8s_change_fn)(struct fy_node *obj, void *user);
int cr_k8s_update(struct cr_k8s *k, const char *path, cr_k8s_change_fn change, void *user,
		  struct fy_document **out);

/* Watch: streams the newline-delimited events of a watch request (path with its query,
 * "watch=1" added if missing) to event(type, object, user), where type is ADDED, MODIFIED,
 * DELETED or BOOKMARK and object lives until event returns (fy_node_copy to keep it).
 * event returns 0 to go on, non-zero to stop; it must not use this client (the transfer
 * is in progress on it): note what to do and act after the watch returns. timeout_ms 0: no limit other than the
 * server's. Returns one of the values below, or -1 after reporting (an ERROR event other
 * than 410, an HTTP error, a broken connection after the retries). The caller continues
 * from the last resourceVersion it saw, or re-lists after CR_K8S_WATCH_GONE. */
enum {
	CR_K8S_WATCH_STOPPED = 0, /* event asked to stop */
	CR_K8S_WATCH_TIMEOUT = 1, /* timeout_ms passed */
	CR_K8S_WATCH_ENDED = 2,   /* the server ended the stream */
	CR_K8S_WATCH_GONE = 3,    /* 410 Gone: resourceVersion too old, list again */
};
typedef int (*cr_k8s_event_fn)(const char *type, struct fy_node *object, void *user);
int cr_k8s_watch(struct cr_k8s *k, const char *path, cr_k8s_event_fn event, void *user,
		 long timeout_ms);

#endif
