#include "config.h"
#include "config_schema.h"
#include "image.h"
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
	FLD(struct cr_image, "repository", F_STR, repository, CR_IMAGE_REPOSITORY),
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
const struct field cr_config_fields[] = {
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

const struct field *cr_config_field(const struct field *fields, const char *key, size_t len)
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

bool cr_config_parse_long(const char *s, long *out)
{
	char *end;
	errno = 0;
	long v = strtol(s, &end, 10);
	if (errno || end == s || *end || isspace((unsigned char)*s))
		return false;
	*out = v;
	return true;
}

bool cr_config_in_choices(const char *s, const char *const *choices)
{
	for (; *choices; choices++)
		if (strcmp(s, *choices) == 0)
			return true;
	return false;
}

void cr_config_choices_text(struct cr_buf *b, const char *const *choices)
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
		if (!s || !cr_config_in_choices(tmp, f->choices)) {
			struct cr_buf c = { 0 };
			cr_config_choices_text(&c, f->choices);
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
		if (!s || !cr_config_parse_long(tmp, &l))
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
		else if (depth_of(n) > CR_CONFIG_MAX_DEPTH)
			rc = verr(v, n, "nested more than %d levels deep", CR_CONFIG_MAX_DEPTH);
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
		const struct field *f = cr_config_field(fields, key, len);
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
		rc = validate_map(&v, root, cr_config_fields);
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
	free_fields(cfg, cr_config_fields);
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
	load_fields(cfg, root, cr_config_fields);
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
