/* memmem is a GNU extension. */
#define _GNU_SOURCE
#include "podsec.h"
#include "config.h"
#include "log.h"
#include "manifest.h"
#include "util.h"
#include "ytree.h"

#include <stdlib.h>
#include <string.h>

/* The pod-level fields that say who the containers run as: they go to the migration
 * container only, so that chartreuse's own containers keep their image's user. */
static const char *const identity_fields[] = { "runAsUser", "runAsGroup", "runAsNonRoot" };

static bool is_identity_field(const char *key)
{
	for (size_t i = 0; i < sizeof(identity_fields) / sizeof(*identity_fields); i++)
		if (strcmp(key, identity_fields[i]) == 0)
			return true;
	return false;
}

/* Overlays src's entries onto dst, those that say who runs (identity) or the others. */
static void overlay_fields(struct fy_node *dst, struct fy_node *src, bool identity)
{
	struct fy_document *d = fy_node_document(dst);
	struct fy_node *part = yt_map(d);
	void *it = NULL;
	struct fy_node_pair *p;
	while ((p = fy_node_mapping_iterate(src, &it))) {
		char *key = yt_strdup(fy_node_pair_key(p));
		if (key && is_identity_field(key) == identity)
			yt_set(part, key, fy_node_copy(d, fy_node_pair_value(p)));
		free(key);
	}
	cr_config_overlay(dst, part);
	fy_node_free(part);
}

void cr_pod_security(struct fy_node *pod, const struct cr_config *cfg,
		     const struct cr_app_security *app)
{
	struct fy_node *sc = yt_child_map(pod, "securityContext");
	yt_set_str(yt_child_map(sc, "seccompProfile"), "type", "RuntimeDefault");
	if (app && yt_is_map(app->pod))
		overlay_fields(sc, app->pod, false);
	/* The user's mapping is taken as given, even if weaker: admission then decides. */
	if (yt_is_map(cfg->pod_security_context))
		cr_config_overlay(sc, cfg->pod_security_context);
}

static struct fy_node *hardened(struct fy_node *c)
{
	struct fy_document *d = fy_node_document(c);
	struct fy_node *sc = yt_child_map(c, "securityContext");
	yt_set(sc, "allowPrivilegeEscalation", yt_bool(d, false));
	yt_append(yt_child_seq(yt_child_map(sc, "capabilities"), "drop"), yt_str(d, "ALL"));
	return sc;
}

void cr_container_security(struct fy_node *c)
{
	yt_set(hardened(c), "runAsNonRoot", yt_bool(fy_node_document(c), true));
}

void cr_app_container_security(struct fy_node *c, const struct cr_config *cfg,
			       const struct cr_app_security *app)
{
	struct fy_node *sc = hardened(c);
	if (app && app->deployment) {
		if (yt_is_map(app->pod))
			overlay_fields(sc, app->pod, true);
		if (yt_is_map(app->container))
			cr_config_overlay(sc, app->container);
	} else {
		yt_set(sc, "runAsNonRoot", yt_bool(fy_node_document(c), true));
	}
	if (yt_is_map(cfg->security_context))
		cr_config_overlay(sc, cfg->security_context);
}

/* --- finding the application's Deployment ------------------------------------------------ */

static bool holds(const char *data, size_t len, const char *s)
{
	return memmem(data, len, s, strlen(s)) != NULL;
}

/* The container of a Deployment document that runs image, or NULL. */
static struct fy_node *container_running(struct fy_node *root, const char *image)
{
	if (!yt_scalar_is(yt_get(root, "kind"), "Deployment"))
		return NULL;
	struct fy_node *cs = yt_path(root, "/spec/template/spec/containers");
	void *it = NULL;
	struct fy_node *c;
	while (yt_is_seq(cs) && (c = fy_node_sequence_iterate(cs, &it)))
		if (yt_scalar_is(yt_get(c, "image"), image))
			return c;
	return NULL;
}

static struct fy_node *copy_map(struct fy_document *to, struct fy_node *n)
{
	return yt_is_map(n) ? fy_node_copy(to, n) : NULL;
}

/* Takes what app needs from the Deployment doc whose container c runs the image. */
static void take(struct cr_app_security *app, struct fy_node *root, struct fy_node *c)
{
	app->deployment = yt_strdup(yt_path(root, "/metadata/name"));
	if (!app->deployment)
		app->deployment = xstrdup("(unnamed)");
	app->doc = yt_document();
	struct fy_node *keep = yt_map(app->doc);
	fy_document_set_root(app->doc, keep);
	app->pod = copy_map(app->doc, yt_path(root, "/spec/template/spec/securityContext"));
	app->container = copy_map(app->doc, yt_get(c, "securityContext"));
	/* in the document, so that it frees them */
	if (app->pod)
		yt_set(keep, "pod", app->pod);
	if (app->container)
		yt_set(keep, "container", app->container);
}

void cr_app_security_find(const struct cr_manifest *m, const char *image,
			  struct cr_app_security *app)
{
	memset(app, 0, sizeof(*app));
	for (size_t i = 0; i < m->n_docs && !app->deployment; i++) {
		const struct cr_doc *d = &m->docs[i];
		const char *text = m->data + d->start;
		size_t len = d->end - d->start;
		if (d->is_config || !d->has_content || !holds(text, len, "Deployment") ||
		    !holds(text, len, image))
			continue;
		cr_log_mute(true);
		struct fy_document *doc = yt_parse(text, len, "", 0);
		cr_log_mute(false);
		struct fy_node *root = doc ? fy_document_root(doc) : NULL;
		struct fy_node *c = root ? container_running(root, image) : NULL;
		if (c)
			take(app, root, c);
		if (doc)
			fy_document_destroy(doc);
	}
}

void cr_app_security_free(struct cr_app_security *app)
{
	free(app->deployment);
	if (app->doc)
		fy_document_destroy(app->doc);
	memset(app, 0, sizeof(*app));
}

void cr_podsec_report(void)
{
	const char *from = getenv(CR_SECURITY_FROM_ENV);
	if (!cr_nonempty(from))
		return;
	if (strcmp(from, "none") == 0)
		cr_info("the migration container runs with restricted settings and its image's "
			"user: no Deployment of the release runs its image");
	else
		cr_info("the migration container runs with the securityContext of %s, which "
			"runs the same image", from);
}
