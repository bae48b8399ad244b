#include "config.h"
#include "log.h"
#include "names.h"
#include "util.h"
#include "ytree.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

enum field_type {
	F_STR,	    /* any scalar, kept as written */
	F_ENUM,	    /* one of `choices` */
	F_BOOL,
	F_INT,
	F_WEIGHT,   /* integer, written as a string (hook weights are annotation values) */
	F_ARGS,	    /* a string split on blanks, or a list of strings */
	F_MAP,	    /* free-form mapping, copied into the objects as is */
	F_LIST,	    /* free-form list */
	F_OBJ,	    /* nested object with its own fields */
	F_OBJ_LIST, /* list of nested objects */
};

struct field {
	const char *key;
	enum field_type type;
	size_t offset;
	const char *def;
	const struct field *sub;      /* F_OBJ, F_OBJ_LIST */
	size_t elem_size;	      /* F_OBJ_LIST */
	size_t count_offset;	      /* F_OBJ_LIST: where the element count goes */
	const char *const *choices;   /* F_ENUM */
	/* F_MAP, F_LIST: the scalars Kubernetes types as strings, which --set must not make
	 * numbers or booleans: every value of the map (all_strings), or these keys of each
	 * item of the list. */
	const char *const *strings;
};

#define END { NULL, F_STR, 0, NULL, NULL, 0, 0, NULL, NULL }
#define FLD(st, k, t, m, d) { k, t, offsetof(st, m), d, NULL, 0, 0, NULL, NULL }
#define ENUM(st, k, m, d, c) { k, F_ENUM, offsetof(st, m), d, NULL, 0, 0, c, NULL }
#define OBJ(st, k, m, s) { k, F_OBJ, offsetof(st, m), NULL, s, 0, 0, NULL, NULL }
#define FREE(st, k, t, m, s) { k, t, offsetof(st, m), NULL, NULL, 0, 0, NULL, s }

/* Labels, annotations and node selectors are map[string]string in Kubernetes. */
static const char *const all_strings[] = { NULL };
/* The string fields of EnvVar, Toleration, VolumeMount, Volume and EnvFromSource that a
 * --set value could otherwise turn into a number or a boolean ("value=true", "name=1"). */
static const char *const env_strings[] = { "name", "value", NULL };
static const char *const toleration_strings[] = { "key", "operator", "value", "effect", NULL };
static const char *const mount_strings[] = { "name", "mountPath", "subPath", NULL };
static const char *const volume_strings[] = { "name", NULL };
static const char *const env_from_strings[] = { "prefix", NULL };

static const char *const deploy_methods[] = { "helm", "argocd", NULL };
static const char *const argocd_hooks[] = { "PreSync", "Sync", "PostSync", NULL };
static const char *const pull_policies[] = { "Always", "IfNotPresent", "Never", NULL };
static const char *const deliveries[] = { "copy", "baked", NULL };

static const struct field secret_ref_fields[] = {
	FLD(struct cr_secret_ref, "name", F_STR, name, NULL),
	FLD(struct cr_secret_ref, "key", F_STR, key, NULL),
	END,
};

static const struct field image_fields[] = {
	FLD(struct cr_image, "repository", F_STR, repository, NULL),
	FLD(struct cr_image, "tag", F_STR, tag, NULL),
	ENUM(struct cr_image, "pullPolicy", pull_policy, "IfNotPresent", pull_policies),
	FLD(struct cr_image, "pullSecret", F_STR, pull_secret, NULL),
	END,
};

static const struct field chartreuse_image_fields[] = {
	FLD(struct cr_image, "repository", F_STR, repository, "chartreuse/chartreuse"),
	FLD(struct cr_image, "tag", F_STR, tag, CHARTREUSE_VERSION),
	ENUM(struct cr_image, "pullPolicy", pull_policy, "IfNotPresent", pull_policies),
	FLD(struct cr_image, "pullSecret", F_STR, pull_secret, NULL),
	ENUM(struct cr_image, "delivery", delivery, "copy", deliveries),
	END,
};

static const struct field database_fields[] = {
	FLD(struct cr_database, "name", F_STR, name, NULL),
	FLD(struct cr_database, "dialect", F_STR, dialect, "postgresql"),
	FLD(struct cr_database, "host", F_STR, host, NULL),
	FLD(struct cr_database, "port", F_INT, port, "5432"),
	FLD(struct cr_database, "user", F_STR, user, NULL),
	FLD(struct cr_database, "password", F_STR, password, NULL),
	OBJ(struct cr_database, "passwordSecret", password_secret, secret_ref_fields),
	FLD(struct cr_database, "url", F_STR, url, NULL),
	OBJ(struct cr_database, "urlSecret", url_secret, secret_ref_fields),
	FLD(struct cr_database, "database", F_STR, database, NULL),
	FLD(struct cr_database, "alembicDirectory", F_STR, alembic_directory, "/app/alembic"),
	FLD(struct cr_database, "alembicConfigFile", F_STR, alembic_config_file, "alembic.ini"),
	FLD(struct cr_database, "alembicSection", F_STR, alembic_section, NULL),
	FLD(struct cr_database, "allowMigrationFromEmptyDatabase", F_BOOL,
	    allow_migration_from_empty_database, "true"),
	FLD(struct cr_database, "additionalParameters", F_ARGS, additional_parameters, NULL),
	FLD(struct cr_database, "patroni", F_BOOL, patroni, "false"),
	FLD(struct cr_database, "patroniWaitTimeout", F_INT, patroni_wait_timeout, "60"),
	END,
};

static const struct field eslembic_fields[] = {
	FLD(struct cr_eslembic, "url", F_STR, url, NULL),
	OBJ(struct cr_eslembic, "urlSecret", url_secret, secret_ref_fields),
	FLD(struct cr_eslembic, "directory", F_STR, directory, "/app/eslembic"),
	FLD(struct cr_eslembic, "cleanIndex", F_BOOL, clean_index, "false"),
	FLD(struct cr_eslembic, "migrate", F_BOOL, migrate, "false"),
	END,
};

static const struct field argocd_fields[] = {
	ENUM(struct cr_argocd, "hook", hook, "Sync", argocd_hooks),
	FLD(struct cr_argocd, "syncWave", F_INT, sync_wave, "-50"),
	END,
};

static const struct field metadata_fields[] = {
	FLD(struct cr_metadata, "name", F_STR, name, "chartreuse"),
	FREE(struct cr_metadata, "labels", F_MAP, labels, all_strings),
	FREE(struct cr_metadata, "annotations", F_MAP, annotations, all_strings),
	END,
};

static const struct field sa_fields[] = {
	FLD(struct cr_service_account, "create", F_BOOL, create, "true"),
	FLD(struct cr_service_account, "name", F_STR, name, NULL),
	END,
};

static const struct field rbac_fields[] = {
	FLD(struct cr_rbac, "create", F_BOOL, create, "true"),
	END,
};

#define C(k, t, m, d) FLD(struct cr_config, k, t, m, d)
static const struct field config_fields[] = {
	C("apiVersion", F_STR, api_version, NULL),
	C("kind", F_STR, kind, NULL),
	OBJ(struct cr_config, "metadata", metadata, metadata_fields),
	C("release", F_STR, release, NULL),
	C("namespace", F_STR, namespace, NULL),
	ENUM(struct cr_config, "deploymentMethod", deployment_method, "helm", deploy_methods),
	OBJ(struct cr_config, "argocd", argocd, argocd_fields),
	C("upgradeBeforeDeployment", F_BOOL, upgrade_before_deployment, "false"),
	C("stopPods", F_BOOL, stop_pods, "true"),
	C("restorePods", F_BOOL, restore_pods, "true"),
	C("upgradeJobWeight", F_WEIGHT, upgrade_job_weight, "1"),
	C("stopPodsTimeout", F_INT, stop_pods_timeout, "3600"),
	C("waitTimeout", F_INT, wait_timeout, "600"),
	C("ttlSecondsAfterFinished", F_INT, ttl_seconds_after_finished, "1800"),
	OBJ(struct cr_config, "image", image, image_fields),
	OBJ(struct cr_config, "chartreuseImage", chartreuse_image, chartreuse_image_fields),
	{ "databases", F_OBJ_LIST, offsetof(struct cr_config, databases), NULL, database_fields,
	  sizeof(struct cr_database), offsetof(struct cr_config, n_databases), NULL, NULL },
	OBJ(struct cr_config, "eslembic", eslembic, eslembic_fields),
	OBJ(struct cr_config, "rbac", rbac, rbac_fields),
	OBJ(struct cr_config, "serviceAccount", service_account, sa_fields),
	C("priorityClassName", F_STR, priority_class_name, NULL),
	C("resources", F_MAP, resources, NULL),
	FREE(struct cr_config, "nodeSelector", F_MAP, node_selector, all_strings),
	FREE(struct cr_config, "tolerations", F_LIST, tolerations, toleration_strings),
	C("affinity", F_MAP, affinity, NULL),
	C("podSecurityContext", F_MAP, pod_security_context, NULL),
	C("securityContext", F_MAP, security_context, NULL),
	C("activeDeadlineSeconds", F_INT, active_deadline_seconds, "0"),
	FREE(struct cr_config, "podAnnotations", F_MAP, pod_annotations, all_strings),
	FREE(struct cr_config, "podLabels", F_MAP, pod_labels, all_strings),
	FREE(struct cr_config, "env", F_LIST, env, env_strings),
	FREE(struct cr_config, "envFrom", F_LIST, env_from, env_from_strings),
	FREE(struct cr_config, "volumes", F_LIST, volumes, volume_strings),
	FREE(struct cr_config, "volumeMounts", F_LIST, volume_mounts, mount_strings),
	END,
};

static const struct field *find_field(const struct field *fields, const char *key, size_t len)
{
	for (const struct field *f = fields; f->key; f++)
		if (strlen(f->key) == len && memcmp(f->key, key, len) == 0)
			return f;
	return NULL;
}

bool cr_parse_bool(const char *s, bool *out)
{
	static const char *const yes[] = { "true", "yes", "on", "1", NULL };
	static const char *const no[] = { "false", "no", "off", "0", "", NULL };
	for (const char *const *w = yes; *w; w++)
		if (strcasecmp(s, *w) == 0)
			return *out = true;
	for (const char *const *w = no; *w; w++)
		if (strcasecmp(s, *w) == 0) {
			*out = false;
			return true;
		}
	return false;
}

static bool parse_long(const char *s, long *out)
{
	char *end;
	errno = 0;
	long v = strtol(s, &end, 10);
	if (errno || end == s || *end || isspace((unsigned char)*s))
		return false;
	*out = v;
	return true;
}

static bool in_choices(const char *s, const char *const *choices)
{
	for (; *choices; choices++)
		if (strcmp(s, *choices) == 0)
			return true;
	return false;
}

static void choices_text(struct cr_buf *b, const char *const *choices)
{
	for (const char *const *c = choices; *c; c++)
		cr_buf_printf(b, "%s%s", c == choices ? "" : ", ", *c);
}

/* --- validation ------------------------------------------------------------------------- */

struct vctx {
	const char *source;
	int line_base;
	struct cr_buf path;
};

__attribute__((format(printf, 3, 4)))
static int verr(struct vctx *v, struct fy_node *at, const char *fmt, ...)
{
	int line = yt_line(at);
	char msg[512];
	if (line)
		line += v->line_base;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (line)
		cr_error("%s:%d: %s: %s", v->source, line, v->path.data, msg);
	else
		cr_error("%s: %s: %s", v->source, v->path.data, msg);
	return -1;
}

static int validate_map(struct vctx *v, struct fy_node *map, const struct field *fields);

/* How deep free-form values (and --set paths) may nest. The objects that carry them nest
 * them a few levels deeper (a Job's pod template), and libfyaml 0.7.12 refuses to read
 * YAML nested more than 64 levels: deeper values would render objects that `migrate` (its
 * config.yaml) or another libfyaml reader can't read back. Kubernetes' own values (affinity,
 * volumes) stay well under. */
#define MAX_FREE_DEPTH 32

static int depth_of(struct fy_node *n)
{
	int d = 0;
	void *it = NULL;
	if (yt_is_map(n)) {
		struct fy_node_pair *p;
		while ((p = fy_node_mapping_iterate(n, &it))) {
			int k = depth_of(fy_node_pair_value(p));
			d = k > d ? k : d;
		}
	} else if (yt_is_seq(n)) {
		struct fy_node *c;
		while ((c = fy_node_sequence_iterate(n, &it))) {
			int k = depth_of(c);
			d = k > d ? k : d;
		}
	} else {
		return 0;
	}
	return d + 1;
}

static int validate_value(struct vctx *v, const struct field *f, struct fy_node *n)
{
	if (yt_is_null(n))
		return 0;
	size_t len;
	const char *s = yt_scalar(n, &len);
	char *tmp = s ? xstrndup(s, len) : NULL;
	int rc = 0;
	long l;
	bool b;
	switch (f->type) {
	case F_STR:
		if (!s)
			rc = verr(v, n, "expected a string, got %s", yt_kind(n));
		else if (memchr(s, '\0', len))
			rc = verr(v, n, "contains a NUL byte");
		break;
	case F_ENUM:
		if (!s || !in_choices(tmp, f->choices)) {
			struct cr_buf c = { 0 };
			choices_text(&c, f->choices);
			rc = verr(v, n, "expected one of: %s", c.data);
			cr_buf_free(&c);
		}
		break;
	case F_BOOL:
		if (!s || !cr_parse_bool(tmp, &b))
			rc = verr(v, n, "expected true or false, got %s", s ? tmp : yt_kind(n));
		break;
	case F_INT:
	case F_WEIGHT:
		if (!s || !parse_long(tmp, &l))
			rc = verr(v, n, "expected an integer, got %s", s ? tmp : yt_kind(n));
		break;
	case F_ARGS:
		if (yt_is_seq(n)) {
			void *it = NULL;
			struct fy_node *c;
			while ((c = fy_node_sequence_iterate(n, &it)))
				if (!yt_is_scalar(c)) {
					rc = verr(v, c, "expected a list of strings, found %s in it",
						  yt_kind(c));
					break;
				}
		} else if (!s) {
			rc = verr(v, n, "expected a string or a list of strings, got %s",
				  yt_kind(n));
		}
		break;
	case F_MAP:
	case F_LIST:
		if (f->type == F_MAP ? !yt_is_map(n) : !yt_is_seq(n))
			rc = verr(v, n, "expected a %s, got %s", f->type == F_MAP ? "mapping" : "list",
				  yt_kind(n));
		else if (depth_of(n) > MAX_FREE_DEPTH)
			rc = verr(v, n, "nested more than %d levels deep", MAX_FREE_DEPTH);
		break;
	case F_OBJ:
		rc = yt_is_map(n) ? validate_map(v, n, f->sub)
				  : verr(v, n, "expected a mapping, got %s", yt_kind(n));
		break;
	case F_OBJ_LIST: {
		if (!yt_is_seq(n)) {
			rc = verr(v, n, "expected a list, got %s", yt_kind(n));
			break;
		}
		void *it = NULL;
		struct fy_node *c;
		size_t base = v->path.len, i = 0;
		while (!rc && (c = fy_node_sequence_iterate(n, &it))) {
			cr_buf_printf(&v->path, "[%zu]", i++);
			rc = yt_is_map(c) ? validate_map(v, c, f->sub)
					  : verr(v, c, "expected a mapping, got %s", yt_kind(c));
			v->path.len = base;
			v->path.data[base] = '\0';
		}
		break;
	}
	}
	free(tmp);
	return rc;
}

static int validate_map(struct vctx *v, struct fy_node *map, const struct field *fields)
{
	void *it = NULL;
	struct fy_node_pair *p;
	while ((p = fy_node_mapping_iterate(map, &it))) {
		struct fy_node *k = fy_node_pair_key(p);
		size_t len;
		const char *key = yt_scalar(k, &len);
		size_t base = v->path.len;
		if (!key)
			return verr(v, k, "a key must be a plain string, found %s", yt_kind(k));
		cr_buf_printf(&v->path, "%s%.*s", base ? "." : "", (int)len, key);
		const struct field *f = find_field(fields, key, len);
		int rc = f ? validate_value(v, f, fy_node_pair_value(p))
			   : verr(v, k, "unknown key");
		v->path.len = base;
		v->path.data[base] = '\0';
		if (rc)
			return rc;
	}
	return 0;
}

int cr_config_validate(struct fy_node *root, const char *source, int line_base)
{
	struct vctx v = { source, line_base, { 0 } };
	cr_buf_reserve(&v.path, 64);
	int rc;
	if (!yt_is_map(root)) {
		cr_error("%s: expected a mapping of settings, got %s", source, yt_kind(root));
		rc = -1;
	} else {
		rc = validate_map(&v, root, config_fields);
	}
	if (!rc) {
		struct fy_node *av = yt_get(root, "apiVersion"), *kind = yt_get(root, "kind");
		char *a = yt_strdup(av), *k = yt_strdup(kind);
		if (a && strcmp(a, CR_CONFIG_API_VERSION) != 0) {
			cr_error("%s:%d: apiVersion: expected %s, got %s", source, yt_line(av) + line_base,
				 CR_CONFIG_API_VERSION, a);
			rc = -1;
		} else if (k && strcmp(k, CR_CONFIG_KIND) != 0) {
			cr_error("%s:%d: kind: expected %s, got %s", source, yt_line(kind) + line_base,
				 CR_CONFIG_KIND, k);
			rc = -1;
		}
		free(a);
		free(k);
	}
	cr_buf_free(&v.path);
	return rc;
}

/* --- merging ------------------------------------------------------------------------------ */

void cr_config_overlay(struct fy_node *dst, struct fy_node *src)
{
	struct fy_document *d = fy_node_document(dst);
	struct yt_keys *keys = yt_keys_of(dst); /* a free-form map may hold thousands of keys */
	void *it = NULL;
	struct fy_node_pair *p;
	while ((p = fy_node_mapping_iterate(src, &it))) {
		char *key = yt_strdup(fy_node_pair_key(p));
		struct fy_node *sv = fy_node_pair_value(p), *dv = key ? yt_keys_get(keys, key) : NULL;
		if (key && yt_is_map(sv) && yt_is_map(dv))
			cr_config_overlay(dv, sv);
		else if (key)
			yt_keys_set(keys, dst, key, fy_node_copy(d, sv));
		free(key);
	}
	yt_keys_free(keys);
}

/* --- --set ---------------------------------------------------------------------------------- */

/* How an assignment's value is read: Helm's --set (comma-separated assignments, values
 * typed as Helm types them where the schema does not say), --set-string (the same, every
 * value a string), or one assignment whose value is taken whole (migrate's environment
 * variables, which may hold any character). */
enum set_mode { SET_TYPED, SET_STRING, SET_WHOLE };

/* One step of a key: a mapping key, or a list index (key NULL). */
struct set_step {
	char *key;
	long index;
};

/* The assignment being applied. Its messages name the key, never the value: a value may
 * be a password or a URL, or a piece of one cut off at a comma. Only a value the schema
 * closes (a boolean, an integer, one of an enum's words) is shown, since none can be. */
struct set_ctx {
	const char *option; /* "--set", "--set-string", "setting" */
	enum set_mode mode;
	const char *key;    /* as written */
	int key_len;
	struct set_step *steps;
	size_t n, cap;
};

/* Where the schema puts an assignment's value. */
struct set_target {
	const struct field *f;	  /* the last schema key on the way */
	const struct field *free; /* the free-form setting the value is in (or is) */
	size_t free_at;		  /* the step that names it */
	bool args_item;		  /* an item of additionalParameters */
};

/* The largest list index --set takes: lists in a config are short, and each index below
 * it that is missing gets an item (a huge index would fill the memory). */
#define SET_MAX_INDEX 1000

__attribute__((format(printf, 2, 3)))
static int set_error(const struct set_ctx *c, const char *fmt, ...)
{
	char msg[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	cr_error("%s %.*s: %s", c->option, c->key_len, c->key, msg);
	return -1;
}

/* The key up to step `upto`, for messages: "databases[0].host". */
static const char *steps_text(const struct set_ctx *c, size_t upto, struct cr_buf *b)
{
	cr_buf_reset(b);
	for (size_t i = 0; i <= upto && i < c->n; i++) {
		if (c->steps[i].key)
			cr_buf_printf(b, "%s%s", i ? "." : "", c->steps[i].key);
		else
			cr_buf_printf(b, "[%ld]", c->steps[i].index);
	}
	return b->data ? b->data : "";
}

static void clear_steps(struct set_ctx *c)
{
	for (size_t i = 0; i < c->n; i++)
		free(c->steps[i].key);
	c->n = 0;
}

static int add_step(struct set_ctx *c, char *key, long index)
{
	if (c->n == MAX_FREE_DEPTH) {
		free(key);
		return set_error(c, "the key has more than %d parts", MAX_FREE_DEPTH);
	}
	XGROW(c->steps, c->n + 1, c->cap);
	c->steps[c->n++] = (struct set_step){ key, index };
	return 0;
}

/* A list index written as digits: 0 (and *idx set), -1 when s is not one, -2 when it is
 * above SET_MAX_INDEX. */
static int index_of(const char *s, size_t len, long *idx)
{
	if (!len || strspn(s, "0123456789") < len)
		return -1;
	if (len > 4 || (*idx = strtol(s, NULL, 10)) > SET_MAX_INDEX)
		return -2;
	return 0;
}

/* "[N]" at *p (past the '['), within the key that ends at e. */
static int parse_index(struct set_ctx *c, const char **p, const char *e)
{
	const char *close = memchr(*p, ']', (size_t)(e - *p));
	if (!close)
		return set_error(c, "a '[' without its ']'");
	int len = (int)(close - *p);
	long idx = 0;
	int rc = index_of(*p, (size_t)len, &idx);
	if (rc == -1)
		return set_error(c, "[%.*s] is not a list index (a number from 0 to %d)", len, *p,
				 SET_MAX_INDEX);
	if (rc == -2)
		return set_error(c, "list index %.*s is too large (at most %d)", len, *p,
				 SET_MAX_INDEX);
	*p = close + 1;
	return add_step(c, NULL, idx);
}

/* Splits the key [s, e) as Helm does: '.' between keys, "[N]" after one, '\' taking the
 * next character as it is ("a\.b" is the key "a.b"). */
static int parse_key(struct set_ctx *c, const char *s, const char *e)
{
	const char *p = s;
	for (;;) {
		struct cr_buf name = { 0 };
		while (p < e && *p != '.' && *p != '[') {
			if (*p == '\\' && p + 1 < e)
				p++;
			cr_buf_addc(&name, *p++);
		}
		if (!name.len) {
			cr_buf_free(&name);
			return set_error(c, "a part of the key is empty");
		}
		if (add_step(c, cr_buf_detach(&name, NULL), 0))
			return -1;
		while (p < e && *p == '[') {
			p++;
			if (parse_index(c, &p, e))
				return -1;
		}
		if (p == e)
			return 0;
		if (*p != '.')
			return set_error(c, "unexpected text after [%ld]: a key goes after a '.'",
					 c->steps[c->n - 1].index);
		p++;
	}
}

/* The first '=' or ',' at or after p that no '\' escapes, or the end. */
static const char *key_end(const char *p)
{
	for (; *p && *p != '=' && *p != ','; p++)
		if (*p == '\\' && p[1])
			p++;
	return p;
}

/* Reads up to the first of stops that no '\' escapes (consumed) or the end; '\' takes the
 * next character as it is, and one at the very end is dropped, as Helm drops it. Returns
 * the stop found, 0 at the end. */
static char read_until(const char **p, const char *stops, struct cr_buf *out)
{
	const char *s = *p;
	char stop = 0;
	while (*s) {
		if (*s == '\\') {
			if (s[1])
				cr_buf_addc(out, s[1]);
			s += s[1] ? 2 : 1;
		} else if (strchr(stops, *s)) {
			stop = *s++;
			break;
		} else {
			cr_buf_addc(out, *s++);
		}
	}
	*p = s;
	return stop;
}

/* A value: one scalar, or "{a,b}" (a list of scalars). Items go to *items. */
static int parse_value(const struct set_ctx *c, const char **p, struct cr_strlist *items,
		       bool *list)
{
	struct cr_buf item = { 0 };
	*list = false;
	if (c->mode == SET_WHOLE || **p != '{') {
		if (c->mode == SET_WHOLE) {
			cr_buf_adds(&item, *p);
			*p += strlen(*p);
		} else {
			read_until(p, ",", &item);
		}
		cr_strlist_add(items, item.data ? item.data : "");
		cr_buf_free(&item);
		return 0;
	}
	*list = true;
	(*p)++;
	for (char stop = 0; stop != '}';) {
		stop = read_until(p, ",}", &item);
		cr_strlist_add(items, item.data ? item.data : "");
		cr_buf_reset(&item);
		if (!stop) {
			cr_buf_free(&item);
			return set_error(c, "a {...} list must end with '}'");
		}
	}
	cr_buf_free(&item);
	if (**p == ',')
		(*p)++;
	return 0;
}

/* Where the schema says a list, "databases.0" means databases[0]. */
static void number_as_index(struct set_step *s)
{
	long idx;
	if (s->key && index_of(s->key, strlen(s->key), &idx) == 0) {
		free(s->key);
		*s = (struct set_step){ NULL, idx };
	}
}

/* Follows the key through the schema into t; reports a key the schema does not have or
 * a step of the wrong kind (a key where a list needs an index, keys under a value). */
static int resolve(struct set_ctx *c, struct set_target *t)
{
	const struct field *fields = config_fields, *f = NULL;
	struct cr_buf b = { 0 };
	int rc = 0;
	for (size_t i = 0; !rc && i < c->n; i++) {
		struct set_step *s = &c->steps[i];
		bool last = i + 1 == c->n;
		if (t->free) {
			/* The first level under a free-form setting is its type's. */
			if (i == t->free_at + 1 && t->free->type == F_LIST)
				number_as_index(s);
			if (i == t->free_at + 1 && t->free->type == F_LIST && s->key)
				rc = set_error(c, "%s is a list: give an index, as in %s[0]",
					       t->free->key, t->free->key);
			else if (i == t->free_at + 1 && t->free->type == F_MAP && !s->key)
				rc = set_error(c, "%s is a mapping, not a list", t->free->key);
			continue;
		}
		if (!f || f->type == F_OBJ) {
			if (!s->key) {
				rc = set_error(c, "%s is not a list", steps_text(c, i - 1, &b));
				continue;
			}
			f = find_field(fields, s->key, strlen(s->key));
			if (!f)
				rc = set_error(c, "unknown key %s", s->key);
			else if (f->type == F_OBJ)
				fields = f->sub;
			else if (f->type == F_MAP || f->type == F_LIST)
				*t = (struct set_target){ f, f, i, false };
			continue;
		}
		if (f->type == F_OBJ_LIST || (f->type == F_ARGS && !t->args_item))
			number_as_index(s);
		if (f->type == F_OBJ_LIST && s->key) {
			rc = set_error(c, "%s is a list: give an index, as in %s[0].%s", f->key,
				       f->key, s->key);
		} else if (f->type == F_OBJ_LIST && last) {
			rc = set_error(c, "name a key of %s", steps_text(c, i, &b));
		} else if (f->type == F_OBJ_LIST) {
			fields = f->sub;
			f = NULL;
		} else if (f->type == F_ARGS && !s->key && !t->args_item) {
			t->args_item = true;
		} else {
			rc = set_error(c, "%s holds a single value: it has no keys or items",
				       steps_text(c, i - 1, &b));
		}
	}
	if (!t->free)
		t->f = f;
	cr_buf_free(&b);
	return rc;
}

static struct fy_node *null_node(struct fy_document *d)
{
	return fy_node_create_scalar(d, "null", 4);
}

/* Helm's integers: an optional sign and digits, no leading zero but "0" itself, in 64 bits. */
static bool helm_int(const char *s, long *out)
{
	const char *digits = s + (*s == '+' || *s == '-');
	if (!*digits || strspn(digits, "0123456789") != strlen(digits) ||
	    (*s == '0' && s[1]))
		return false;
	errno = 0;
	long v = strtol(s, NULL, 10);
	if (errno)
		return false;
	*out = v;
	return true;
}

/* The node Helm's --set makes of a value: true and false (in any case) booleans, null,
 * integers, and strings for everything else ("1.5", "01", "1e3", "0x1f"). */
static struct fy_node *helm_typed(struct fy_document *d, const char *s)
{
	long l;
	if (!strcasecmp(s, "true") || !strcasecmp(s, "false"))
		return yt_bool(d, tolower((unsigned char)*s) == 't');
	if (!strcasecmp(s, "null"))
		return null_node(d);
	if (helm_int(s, &l))
		return yt_int(d, l);
	return yt_str(d, s);
}

/* Inside a free-form setting, whether Kubernetes types the value at the key as a string:
 * any value of a string map, or a listed key of a list's item. */
static bool string_leaf(const struct set_ctx *c, const struct set_target *t)
{
	const char *const *s = t->free->strings;
	size_t rel = c->n - 1 - t->free_at;
	const char *key = c->steps[c->n - 1].key;
	if (!s || !key)
		return false;
	if (t->free->type == F_MAP)
		return rel == 1;
	for (; rel == 2 && *s; s++)
		if (!strcmp(*s, key))
			return true;
	return false;
}

/* The value for a free-form key, typed as Helm types it unless a string is wanted. */
static struct fy_node *free_value(struct fy_document *d, const struct set_ctx *c,
				  const struct set_target *t, const struct cr_strlist *items,
				  bool list)
{
	bool leaf = t->free_at + 1 < c->n && string_leaf(c, t);
	bool strings = c->mode != SET_TYPED || leaf;
	if (list && leaf) {
		set_error(c, "Kubernetes wants a string here: one value, not a {...} list");
		return NULL;
	}
	if (!list)
		return strings ? yt_str(d, items->items[0]) : helm_typed(d, items->items[0]);
	struct fy_node *seq = yt_seq(d);
	for (size_t i = 0; i < items->n; i++)
		yt_append(seq, strings ? yt_str(d, items->items[i])
				       : helm_typed(d, items->items[i]));
	return seq;
}

/* A value for a schema key that holds one scalar, converted to the key's type. */
static struct fy_node *schema_scalar(struct fy_document *d, const struct set_ctx *c,
				     const struct field *f, const char *value)
{
	long l;
	bool b;
	if (!*value && c->mode != SET_WHOLE && f->type != F_ARGS) {
		set_error(c, "the value is empty, and %s can't be: give one, or unset it with "
			     "--set %.*s=null", f->key, c->key_len, c->key);
		return NULL;
	}
	switch (f->type) {
	case F_ENUM:
		if (in_choices(value, f->choices))
			return yt_str(d, value);
		break;
	case F_BOOL:
		if (cr_parse_bool(value, &b))
			return yt_bool(d, b);
		break;
	case F_INT:
	case F_WEIGHT:
		if (parse_long(value, &l))
			return yt_int(d, l);
		break;
	default:
		return yt_str(d, value);
	}
	/* A closed type: the value can be shown (see struct set_ctx). */
	struct cr_buf ch = { 0 };
	if (f->type == F_ENUM) {
		cr_buf_adds(&ch, "one of: ");
		choices_text(&ch, f->choices);
	}
	cr_error("%s %.*s=%s: %s expects %s", c->option, c->key_len, c->key, value, f->key,
		 f->type == F_ENUM ? ch.data : f->type == F_BOOL ? "true or false" : "an integer");
	cr_buf_free(&ch);
	return NULL;
}

/* The node an assignment sets, or NULL after reporting. */
static struct fy_node *set_value_node(struct fy_document *d, const struct set_ctx *c,
				      const struct set_target *t, const struct cr_strlist *items,
				      bool list)
{
	const struct field *f = t->f;
	if (c->mode == SET_TYPED && !list && !strcasecmp(items->items[0], "null"))
		return null_node(d); /* as in Helm: unset, so the default applies */
	if (t->free && (t->free_at + 1 < c->n || (list && f->type == F_LIST)))
		return free_value(d, c, t, items, list);
	if (f->type == F_ARGS && list && !t->args_item) {
		struct fy_node *seq = yt_seq(d);
		for (size_t i = 0; i < items->n; i++)
			yt_append(seq, yt_str(d, items->items[i]));
		return seq;
	}
	if (f->type == F_OBJ || f->type == F_OBJ_LIST || f->type == F_MAP || f->type == F_LIST) {
		set_error(c, "%s is not a single value; set its keys one by one", f->key);
		return NULL;
	}
	if (list) {
		set_error(c, "%s takes one value, not a {...} list", f->key);
		return NULL;
	}
	return schema_scalar(d, c, f, items->items[0]);
}

/* Item idx of seq, with null items before it where missing (as Helm pads lists). */
static struct fy_node *seq_at(struct fy_node *seq, long idx)
{
	struct fy_document *d = fy_node_document(seq);
	for (long n = fy_node_sequence_item_count(seq); n <= idx; n++)
		yt_append(seq, null_node(d));
	return fy_node_sequence_get_by_index(seq, (int)idx);
}

static struct fy_node *child_at(struct fy_node *cur, const struct set_step *s)
{
	return s->key ? yt_get(cur, s->key) : seq_at(cur, s->index);
}

static void put_at(struct fy_node *cur, const struct set_step *s, struct fy_node *v)
{
	if (s->key) {
		yt_set(cur, s->key, v);
		return;
	}
	struct fy_node *old = seq_at(cur, s->index);
	fy_node_sequence_insert_after(cur, old, v);
	fy_node_free(fy_node_sequence_remove(cur, old));
}

/* Walks the key down the tree, making the mappings and lists it names, and puts v (ours
 * until then) at its end. */
static int place(struct fy_node *root, struct set_ctx *c, struct fy_node *v)
{
	struct fy_document *d = fy_node_document(root);
	struct fy_node *cur = root;
	struct cr_buf b = { 0 };
	for (size_t i = 0; i + 1 < c->n; i++) {
		struct set_step *s = &c->steps[i], *next = &c->steps[i + 1];
		struct fy_node *ch = child_at(cur, s);
		if (yt_is_seq(ch))
			number_as_index(next); /* "x.0" into a list there already */
		bool want_seq = !next->key;
		if (want_seq ? yt_is_seq(ch) : yt_is_map(ch)) {
			cur = ch;
			continue;
		}
		/* Helm makes a mapping of a list item that is not one; anything else that is
		 * there already is kept, and the assignment refused. */
		if (ch && !yt_is_null(ch) && (s->key || want_seq)) {
			set_error(c, "%s is %s, not %s", steps_text(c, i, &b), yt_kind(ch),
				  want_seq ? "a list" : "a mapping");
			cr_buf_free(&b);
			fy_node_free(v);
			return -1;
		}
		struct fy_node *n = want_seq ? yt_seq(d) : yt_map(d);
		put_at(cur, s, n);
		cur = n;
	}
	put_at(cur, &c->steps[c->n - 1], v);
	cr_buf_free(&b);
	return 0;
}

/* One assignment at *p; moves *p past it (and its ','). */
static int set_one(struct fy_node *root, struct set_ctx *c, const char **p, const char *prev,
		   int prev_len)
{
	const char *start = *p;
	const char *eq = c->mode == SET_WHOLE ? strchr(start, '=') : key_end(start);
	c->key = start;
	c->key_len = 0;
	if (!eq || *eq != '=') {
		/* The text may be a piece of a value a comma cut off: it is not shown. */
		if (prev)
			cr_error("%s: the text after the assignment to %.*s has no '=': a ',' in a "
				 "value is written '\\,' (expected KEY=VALUE[,KEY=VALUE...])",
				 c->option, prev_len, prev);
		else
			cr_error("%s: expected KEY=VALUE[,KEY=VALUE...], found no '='", c->option);
		return -1;
	}
	c->key_len = (int)(eq - start);
	if (eq == start) {
		cr_error("%s: an assignment has no key before its '='", c->option);
		return -1;
	}
	*p = eq + 1;
	struct cr_strlist items = { 0 };
	struct set_target t = { 0 };
	struct fy_node *v = NULL;
	bool list;
	int rc = -1;
	if (!parse_key(c, start, eq) && !parse_value(c, p, &items, &list) && !resolve(c, &t))
		rc = 0;
	if (!rc && !(v = set_value_node(fy_node_document(root), c, &t, &items, list)))
		rc = -1;
	if (!rc)
		rc = place(root, c, v);
	cr_strlist_free(&items);
	clear_steps(c);
	return rc;
}

static int apply_sets(struct fy_node *root, const char *arg, enum set_mode mode,
		      const char *option)
{
	size_t len = strlen(arg);
	if (cr_utf8_invalid_at(arg, len) < len) {
		cr_error("%s: an assignment is not UTF-8 text (byte %zu)", option,
			 cr_utf8_invalid_at(arg, len) + 1);
		return -1;
	}
	struct set_ctx c = { .option = option, .mode = mode };
	const char *p = arg, *prev = NULL;
	int rc, prev_len = 0;
	do {
		rc = set_one(root, &c, &p, prev, prev_len);
		prev = c.key;
		prev_len = c.key_len;
	} while (!rc && *p);
	free(c.steps);
	return rc;
}

int cr_config_set_arg(struct fy_node *root, const char *arg, bool as_string)
{
	return apply_sets(root, arg, as_string ? SET_STRING : SET_TYPED,
			  as_string ? "--set-string" : "--set");
}

int cr_config_set(struct fy_node *root, const char *assignment)
{
	return apply_sets(root, assignment, SET_WHOLE, "setting");
}

/* --- loading into the struct ------------------------------------------------------------- */

static void split_args(const char *s, struct cr_strlist *out)
{
	/* Blank-separated words; single or double quotes group. No other shell syntax. */
	struct cr_buf w = { 0 };
	bool in_word = false;
	char quote = 0;
	for (const char *p = s;; p++) {
		if (*p && (quote ? *p != quote : !isspace((unsigned char)*p))) {
			if (!quote && (*p == '\'' || *p == '"')) {
				quote = *p;
			} else {
				cr_buf_addc(&w, *p);
			}
			in_word = true;
			continue;
		}
		if (*p && quote) {
			quote = 0;
			continue;
		}
		if (in_word) {
			cr_strlist_add(out, w.data ? w.data : "");
			cr_buf_reset(&w);
			in_word = false;
		}
		if (!*p)
			break;
	}
	cr_buf_free(&w);
}

static void load_fields(void *obj, struct fy_node *map, const struct field *fields);

/* A plain scalar that YAML reads as a number or a boolean becomes a string. */
static void stringify(struct fy_node_pair *p)
{
	struct fy_node *v = p ? fy_node_pair_value(p) : NULL;
	size_t len;
	const char *text = yt_scalar(v, &len);
	if (text && fy_node_get_style(v) == FYNS_PLAIN && !yt_is_null(v))
		fy_node_pair_set_value(p, yt_strn(fy_node_document(v), text, len));
}

static struct fy_node_pair *pair_named(struct fy_node *map, const char *key)
{
	void *it = NULL;
	struct fy_node_pair *p;
	while ((p = fy_node_mapping_iterate(map, &it))) {
		size_t len;
		const char *k = yt_scalar(fy_node_pair_key(p), &len);
		if (k && strlen(key) == len && !memcmp(k, key, len))
			return p;
	}
	return NULL;
}

/* The scalars Kubernetes types as strings (field.strings) are written as strings, so that
 * a file's `team: 1` or `value: true` reaches the API server as the string it wants. */
static void stringify_leaves(const struct field *f, struct fy_node *n)
{
	void *it = NULL;
	if (!f->strings)
		return;
	if (f->type == F_MAP) {
		struct fy_node_pair *p;
		while ((p = fy_node_mapping_iterate(n, &it)))
			stringify(p);
		return;
	}
	struct fy_node *item;
	while ((item = fy_node_sequence_iterate(n, &it)))
		for (const char *const *k = f->strings; yt_is_map(item) && *k; k++)
			stringify(pair_named(item, *k));
}

static void load_value(void *obj, const struct field *f, struct fy_node *n)
{
	char *at = (char *)obj + f->offset;
	bool absent = !n || yt_is_null(n);
	char *s = absent ? (f->def ? xstrdup(f->def) : NULL) : yt_strdup(n);
	switch (f->type) {
	case F_STR:
	case F_ENUM:
	case F_WEIGHT:
		*(char **)at = s;
		if (f->type == F_WEIGHT && s) {
			long l = strtol(s, NULL, 10);
			free(s);
			*(char **)at = xasprintf("%ld", l);
		}
		return;
	case F_BOOL:
		if (!s || !cr_parse_bool(s, (bool *)at))
			*(bool *)at = false;
		break;
	case F_INT:
		*(long *)at = s ? strtol(s, NULL, 10) : 0;
		break;
	case F_ARGS: {
		struct cr_strlist *l = (struct cr_strlist *)at;
		if (yt_is_seq(n)) {
			void *it = NULL;
			struct fy_node *c;
			while ((c = fy_node_sequence_iterate(n, &it))) {
				size_t len;
				const char *text = yt_scalar(c, &len);
				char *item = xstrndup(text ? text : "", len);
				cr_strlist_add(l, item);
				free(item);
			}
		} else if (s) {
			split_args(s, l);
		}
		break;
	}
	case F_MAP:
	case F_LIST:
		*(struct fy_node **)at = absent ? NULL : n;
		if (!absent)
			stringify_leaves(f, n);
		break;
	case F_OBJ:
		load_fields(at, yt_is_map(n) ? n : NULL, f->sub);
		break;
	case F_OBJ_LIST: {
		size_t count = yt_is_seq(n) ? (size_t)fy_node_sequence_item_count(n) : 0;
		char *arr = count ? xcalloc(count, f->elem_size) : NULL;
		void *it = NULL;
		for (size_t i = 0; i < count; i++)
			load_fields(arr + i * f->elem_size, fy_node_sequence_iterate(n, &it), f->sub);
		*(void **)at = arr;
		*(size_t *)((char *)obj + f->count_offset) = count;
		break;
	}
	}
	free(s);
}

static void load_fields(void *obj, struct fy_node *map, const struct field *fields)
{
	for (const struct field *f = fields; f->key; f++)
		load_value(obj, f, yt_get(map, f->key));
}

static void free_fields(void *obj, const struct field *fields)
{
	for (const struct field *f = fields; f->key; f++) {
		char *at = (char *)obj + f->offset;
		switch (f->type) {
		case F_STR:
		case F_ENUM:
		case F_WEIGHT:
			free(*(char **)at);
			break;
		case F_ARGS:
			cr_strlist_free((struct cr_strlist *)at);
			break;
		case F_OBJ:
			free_fields(at, f->sub);
			break;
		case F_OBJ_LIST: {
			char *arr = *(char **)at;
			size_t count = *(size_t *)((char *)obj + f->count_offset);
			for (size_t i = 0; i < count; i++)
				free_fields(arr + i * f->elem_size, f->sub);
			free(arr);
			break;
		}
		default:
			break;
		}
	}
}

void cr_config_free(struct cr_config *cfg)
{
	free_fields(cfg, config_fields);
	if (cfg->doc)
		fy_document_destroy(cfg->doc);
	memset(cfg, 0, sizeof(*cfg));
}

static int check_secret_ref(const struct cr_secret_ref *r, const char *what, const char *source)
{
	if (cr_nonempty(r->name) != cr_nonempty(r->key)) {
		cr_error("%s: %s needs both name and key", source, what);
		return -1;
	}
	return 0;
}

static int check_database(struct cr_database *db, size_t i, size_t n, const char *source)
{
	char where[64];
	snprintf(where, sizeof(where), "databases[%zu]", i);
	if (!db->name)
		db->name = n == 1 ? xstrdup("main") : xasprintf("db%zu", i);
	if (check_secret_ref(&db->password_secret, "passwordSecret", source) ||
	    check_secret_ref(&db->url_secret, "urlSecret", source))
		return -1;
	bool by_url = cr_nonempty(db->url) || cr_nonempty(db->url_secret.name);
	if (cr_nonempty(db->url) && cr_nonempty(db->url_secret.name)) {
		cr_error("%s: %s (%s): give url or urlSecret, not both", source, where, db->name);
		return -1;
	}
	if (cr_nonempty(db->password) && cr_nonempty(db->password_secret.name)) {
		cr_error("%s: %s (%s): give password or passwordSecret, not both", source, where,
			 db->name);
		return -1;
	}
	if (by_url && (cr_nonempty(db->host) || cr_nonempty(db->password) ||
		       cr_nonempty(db->password_secret.name))) {
		cr_error("%s: %s (%s): url/urlSecret already say where and who; drop host, "
			 "password and passwordSecret", source, where, db->name);
		return -1;
	}
	if (strncmp(db->dialect, "postgresql", 10) != 0) {
		cr_error("%s: %s (%s): dialect: only postgresql (or postgresql+DRIVER) is "
			 "supported", source, where, db->name);
		return -1;
	}
	if (db->port < 1 || db->port > 65535) {
		cr_error("%s: %s (%s): port %ld is out of range", source, where, db->name,
			 db->port);
		return -1;
	}
	cr_secret_add(db->password);
	return 0;
}

int cr_config_load(struct cr_config *cfg, struct fy_document *doc, const char *source)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->doc = doc;
	struct fy_node *root = fy_document_root(doc);
	if (cr_config_validate(root, source, 0))
		return -1;
	load_fields(cfg, root, config_fields);
	for (size_t i = 0; i < cfg->n_databases; i++) {
		if (check_database(&cfg->databases[i], i, cfg->n_databases, source))
			return -1;
		for (size_t j = 0; j < i; j++)
			if (strcmp(cfg->databases[i].name, cfg->databases[j].name) == 0) {
				cr_error("%s: databases[%zu] and databases[%zu] are both named %s",
					 source, j, i, cfg->databases[i].name);
				return -1;
			}
	}
	if (check_secret_ref(&cfg->eslembic.url_secret, "eslembic.urlSecret", source))
		return -1;
	if (cr_nonempty(cfg->eslembic.url) && cr_nonempty(cfg->eslembic.url_secret.name)) {
		cr_error("%s: eslembic: give url or urlSecret, not both", source);
		return -1;
	}
	return 0;
}

/* Where the URL is not given whole, its parts must be. */
static int check_database_location(const struct cr_database *db, size_t i, const char *source)
{
	if (cr_nonempty(db->url) || cr_nonempty(db->url_secret.name))
		return 0;
	const char *missing = !cr_nonempty(db->host)	 ? "host"
			      : !cr_nonempty(db->user)	 ? "user"
			      : !cr_nonempty(db->database) ? "database"
							   : NULL;
	if (missing)
		cr_error("%s: databases[%zu] (%s): %s is required (or give url / urlSecret)", source,
			 i, db->name, missing);
	return missing ? -1 : 0;
}

/* --- names: what the API server would refuse when Helm applies the objects ---------------- */

static int check_ref(const struct cr_secret_ref *ref, const char *what, const char *source)
{
	if (!cr_nonempty(ref->name))
		return 0;
	char *w = xasprintf("%s.name", what);
	int rc = cr_check_name(source, w, ref->name, CR_NAME_SUBDOMAIN, 253);
	free(w);
	if (!rc && !cr_secret_key_ok(ref->key)) {
		cr_error("%s: %s.key \"%s\" is not a valid Secret key: at most 253 letters, "
			 "digits, '-', '_' and '.'", source, what, ref->key);
		rc = -1;
	}
	return rc;
}

static int check_optional_name(const char *source, const char *what, const char *name)
{
	return cr_nonempty(name) ? cr_check_name(source, what, name, CR_NAME_SUBDOMAIN, 253) : 0;
}

/* The keys of labels or annotations, and the values of labels (annotation values are any
 * string, and are not shown). */
static int check_meta_map(struct fy_node *map, const char *what, bool labels,
			  const char *source)
{
	void *it = NULL;
	struct fy_node_pair *p;
	int rc = 0;
	while (!rc && yt_is_map(map) && (p = fy_node_mapping_iterate(map, &it))) {
		char *k = yt_strdup(fy_node_pair_key(p));
		struct fy_node *v = fy_node_pair_value(p);
		char *text = yt_is_null(v) ? NULL : yt_strdup(v);
		rc = -1;
		if (!k || !cr_qualified_name_ok(k))
			cr_error("%s: %s: the key \"%s\" is not a valid %s key: a name of at most "
				 "63 letters, digits, '-', '_' and '.', starting and ending with a "
				 "letter or digit, after an optional DNS subdomain and '/'", source,
				 what, k ? k : "", labels ? "label" : "annotation");
		else if (!yt_is_scalar(v))
			cr_error("%s: %s.%s: the value must be a string, not %s", source, what, k,
				 yt_kind(v));
		else if (labels && text && !cr_label_value_ok(text))
			cr_error("%s: %s.%s: the label value \"%s\" is not valid: at most 63 "
				 "letters, digits, '-', '_' and '.', starting and ending with a "
				 "letter or digit", source, what, k, text);
		else
			rc = 0;
		free(text);
		free(k);
	}
	return rc;
}

static int check_env(struct fy_node *env, const char *source)
{
	void *it = NULL;
	struct fy_node *e;
	int rc = 0;
	for (size_t i = 0; !rc && yt_is_seq(env) && (e = fy_node_sequence_iterate(env, &it)); i++) {
		struct fy_node *name = yt_get(e, "name"), *value = yt_get(e, "value");
		char *n = yt_is_null(name) ? NULL : yt_strdup(name);
		rc = -1;
		if (!yt_is_map(e))
			cr_error("%s: env[%zu]: expected a mapping (name, value or valueFrom), "
				 "got %s", source, i, yt_kind(e));
		else if (!n)
			cr_error("%s: env[%zu]: name is required (a string)", source, i);
		else if (!cr_env_name_ok(n))
			cr_error("%s: env[%zu].name \"%s\" is not a valid variable name: printable "
				 "ASCII characters other than '='", source, i, n);
		else if (value && !yt_is_scalar(value))
			cr_error("%s: env[%zu].value: must be a string, not %s", source, i,
				 yt_kind(value));
		else
			rc = 0;
		free(n);
	}
	return rc;
}

/* Every setting that ends up in an object's name, a label, a reference to another object
 * or a variable name. The names chartreuse makes of them are checked in render.c. */
static int check_names(const struct cr_config *cfg, const char *source)
{
	char what[64];
	/* Helm's own rule for a release name (helm install refuses any other). */
	if (cr_check_name(source, "the release name", cfg->release, CR_NAME_SUBDOMAIN, 53) ||
	    cr_check_name(source, "the namespace", cfg->namespace, CR_NAME_LABEL, 63) ||
	    cr_check_name(source, "metadata.name", cfg->metadata.name, CR_NAME_SUBDOMAIN, 63) ||
	    check_optional_name(source, "serviceAccount.name", cfg->service_account.name) ||
	    check_optional_name(source, "priorityClassName", cfg->priority_class_name) ||
	    check_optional_name(source, "image.pullSecret", cfg->image.pull_secret) ||
	    check_optional_name(source, "chartreuseImage.pullSecret",
				cfg->chartreuse_image.pull_secret) ||
	    check_ref(&cfg->eslembic.url_secret, "eslembic.urlSecret", source))
		return -1;
	for (size_t i = 0; i < cfg->n_databases; i++) {
		snprintf(what, sizeof(what), "databases[%zu].passwordSecret", i);
		if (check_ref(&cfg->databases[i].password_secret, what, source))
			return -1;
		snprintf(what, sizeof(what), "databases[%zu].urlSecret", i);
		if (check_ref(&cfg->databases[i].url_secret, what, source))
			return -1;
	}
	if (check_meta_map(cfg->metadata.labels, "metadata.labels", true, source) ||
	    check_meta_map(cfg->pod_labels, "podLabels", true, source) ||
	    check_meta_map(cfg->metadata.annotations, "metadata.annotations", false, source) ||
	    check_meta_map(cfg->pod_annotations, "podAnnotations", false, source) ||
	    check_env(cfg->env, source))
		return -1;
	return 0;
}

int cr_config_check_for_render(const struct cr_config *cfg, const char *source)
{
	if (!cfg->n_databases && !cr_config_uses_eslembic(cfg)) {
		cr_error("%s: nothing to migrate: configure databases (or eslembic)", source);
		return -1;
	}
	for (size_t i = 0; i < cfg->n_databases; i++)
		if (check_database_location(&cfg->databases[i], i, source))
			return -1;
	if (!cr_nonempty(cfg->release)) {
		cr_error("%s: the release name is unknown: pass --release NAME (the `helm chartreuse "
			 "install|upgrade|template` wrapper does), set release in the config, or "
			 "label the chart's objects app.kubernetes.io/instance", source);
		return -1;
	}
	if (!cr_nonempty(cfg->namespace)) {
		cr_error("%s: the namespace is unknown: pass --namespace NS (the `helm chartreuse` "
			 "wrapper does), set namespace in the config, or set metadata.namespace on "
			 "the chart's objects", source);
		return -1;
	}
	if (!cfg->service_account.create && !cr_nonempty(cfg->service_account.name)) {
		cr_error("%s: serviceAccount.name is required when serviceAccount.create is false "
			 "(the Job must run as an existing account)", source);
		return -1;
	}
	/* 0 is the unset default; Kubernetes refuses 0 and less in a Job. */
	if (yt_get(fy_document_root(cfg->doc), "activeDeadlineSeconds") &&
	    cfg->active_deadline_seconds <= 0) {
		cr_error("%s: activeDeadlineSeconds: must be an integer > 0 (seconds the migration "
			 "Job may run), got %ld", source, cfg->active_deadline_seconds);
		return -1;
	}
	if (!cr_nonempty(cfg->image.repository)) {
		cr_error("%s: image.repository is required: the application image that holds the "
			 "Alembic project", source);
		return -1;
	}
	return check_names(cfg, source);
}

bool cr_config_migrates_before_deployment(const struct cr_config *cfg)
{
	if (cr_streq(cfg->deployment_method, "argocd"))
		return !cr_streq(cfg->argocd.hook, "PostSync");
	return cfg->upgrade_before_deployment;
}

bool cr_config_uses_eslembic(const struct cr_config *cfg)
{
	return cr_nonempty(cfg->eslembic.url) || cr_nonempty(cfg->eslembic.url_secret.name);
}
