#include "podspec.h"
#include "config.h"
#include "podsec.h"
#include "templates.h"
#include "util.h"
#include "ytree.h"

#include <stdlib.h>

char *cr_image_ref(const struct cr_image *img)
{
	if (cr_nonempty(img->tag))
		return xasprintf("%s:%s", img->repository, img->tag);
	return xstrdup(img->repository);
}

struct fy_node *cr_podspec_container(struct fy_document *d, const char *tpl,
				     const struct cr_image *img, const struct cr_config *cfg,
				     const struct cr_app_security *app)
{
	struct fy_document *t = cr_template_load(tpl);
	struct fy_node *c = fy_node_copy(d, fy_document_root(t));
	fy_document_destroy(t);
	char *ref = cr_image_ref(img);
	yt_set_str(c, "image", ref);
	free(ref);
	yt_set_str(c, "imagePullPolicy", img->pull_policy);
	if (img == &cfg->image)
		cr_app_container_security(c, cfg, app);
	else
		cr_container_security(c);
	return c;
}

static bool nonempty_seq(struct fy_node *n)
{
	return yt_is_seq(n) && fy_node_sequence_item_count(n) > 0;
}

void cr_podspec_app_settings(struct fy_node *c, const struct cr_config *cfg)
{
	yt_append_copies(yt_child_seq(c, "env"), cfg->env);
	if (nonempty_seq(cfg->env_from))
		yt_append_copies(yt_child_seq(c, "envFrom"), cfg->env_from);
	yt_set_copy(c, "resources", cfg->resources);
	if (nonempty_seq(cfg->volume_mounts))
		yt_append_copies(yt_child_seq(c, "volumeMounts"), cfg->volume_mounts);
}

static void add_pull_secret(struct fy_node *pod, const char *name)
{
	if (!cr_nonempty(name))
		return;
	struct fy_node *seq = yt_child_seq(pod, "imagePullSecrets");
	void *it = NULL;
	struct fy_node *e;
	while ((e = fy_node_sequence_iterate(seq, &it)))
		if (yt_scalar_is(yt_get(e, "name"), name))
			return;
	struct fy_node *ref = yt_map(fy_node_document(pod));
	yt_set_str(ref, "name", name);
	yt_append(seq, ref);
}

void cr_podspec_scheduling(struct fy_node *pod, const struct cr_config *cfg,
			   const struct cr_app_security *app, bool helper_image)
{
	if (cr_nonempty(cfg->priority_class_name))
		yt_set_str(pod, "priorityClassName", cfg->priority_class_name);
	add_pull_secret(pod, cfg->image.pull_secret);
	if (helper_image)
		add_pull_secret(pod, cfg->chartreuse_image.pull_secret);
	yt_set_copy(pod, "nodeSelector", cfg->node_selector);
	yt_set_copy(pod, "tolerations", cfg->tolerations);
	yt_set_copy(pod, "affinity", cfg->affinity);
	cr_pod_security(pod, cfg, app);
}

void cr_podspec_labels(struct fy_node *labels, const struct cr_config *cfg,
		       const char *component, const char *managed_by, bool instance)
{
	yt_set_str(labels, "app.kubernetes.io/name", "chartreuse");
	if (instance)
		yt_set_str(labels, "app.kubernetes.io/instance", cfg->release);
	yt_set_str(labels, "app.kubernetes.io/component", component);
	yt_set_str(labels, "app.kubernetes.io/managed-by", managed_by);
	yt_set_str(labels, "app.kubernetes.io/version", CHARTREUSE_VERSION);
	yt_set_str(labels, "chartreuse.wiremind.io/migration", cfg->metadata.name);
}

struct fy_node *cr_env_value(struct fy_document *d, const char *name, const char *value)
{
	struct fy_node *e = yt_map(d);
	yt_set_str(e, "name", name);
	yt_set_str(e, "value", value);
	return e;
}

struct fy_node *cr_env_secret(struct fy_document *d, const char *name, const char *secret,
			      const char *key)
{
	struct fy_node *e = yt_map(d);
	yt_set_str(e, "name", name);
	struct fy_node *ref = yt_child_map(yt_child_map(e, "valueFrom"), "secretKeyRef");
	yt_set_str(ref, "name", secret);
	yt_set_str(ref, "key", key);
	return e;
}

struct fy_node *cr_env_field(struct fy_document *d, const char *name, const char *path)
{
	struct fy_node *e = yt_map(d);
	yt_set_str(e, "name", name);
	yt_set_str(yt_child_map(yt_child_map(e, "valueFrom"), "fieldRef"), "fieldPath", path);
	return e;
}
