/* kubeconfig: where the Kubernetes API is and how to authenticate to it, read the way
 * kubectl reads it: from the pod's service account (in-cluster) or from kubeconfig files;
 * and the exec credential plugins that managed clusters use. No network here: src/k8s.c
 * turns a struct cr_kcfg into requests. */
#ifndef CR_KUBECONFIG_H
#define CR_KUBECONFIG_H

#include "util.h"

#include <stdbool.h>
#include <time.h>

struct cr_k8s_options;

/* Where the in-cluster files are unless CHARTREUSE_SERVICEACCOUNT_DIR says otherwise. */
#define CR_SERVICEACCOUNT_DIR "/var/run/secrets/kubernetes.io/serviceaccount"

/* users[].user.exec of a kubeconfig. */
struct cr_kcfg_exec {
	char *api_version; /* client.authentication.k8s.io/v1 or /v1beta1 */
	char *command;     /* a name looked up in PATH, or a path made absolute */
	struct cr_strlist args;
	struct cr_strlist env; /* "NAME=value" */
	char *install_hint;
	bool provide_cluster_info;
};

struct cr_kcfg {
	char *origin;  /* "in-cluster" or "<file>, context <name>": for messages */
	char *server;  /* base URL without a trailing '/' */
	char *namespace;
	char *ca_file; /* absolute; or ca_data holds the PEM text; neither: system CAs */
	struct cr_buf ca_data;
	bool insecure;
	char *proxy; /* clusters[].cluster.proxy-url */
	char *cert_file, *key_file; /* client certificate: files, or the -data PEM text */
	struct cr_buf cert_data, key_data;
	char *token;      /* static bearer token */
	char *token_file; /* bearer token read from this file (re-read when it changes) */
	char *username, *password;
	struct cr_kcfg_exec *exec;
};

/* Fills cfg from opts (see struct cr_k8s_options in k8s.h for which source is used).
 * Secrets it reads are registered with cr_secret_add. 0, or -1 after reporting. */
int cr_kcfg_load(const struct cr_k8s_options *opts, struct cr_kcfg *cfg);
/* The in-cluster configuration read from dir (token, ca.crt, namespace). */
int cr_kcfg_in_cluster(const char *dir, const char *namespace, struct cr_kcfg *cfg);
/* Kubeconfig files (a ':'-separated list, merged like kubectl: the first file that names
 * a cluster, user or context or sets current-context wins; missing files are skipped). */
int cr_kcfg_from_files(const char *paths, const char *context, const char *namespace,
		       struct cr_kcfg *cfg);
/* A deep copy of src into dst. */
void cr_kcfg_copy(struct cr_kcfg *dst, const struct cr_kcfg *src);
void cr_kcfg_free(struct cr_kcfg *cfg);

/* What an exec plugin returned. */
struct cr_exec_cred {
	char *token;
	struct cr_buf cert, key; /* PEM; both or neither */
	time_t expiry;           /* 0: does not expire */
};

/* Runs the plugin of cfg->exec (argv, never a shell) with KUBERNETES_EXEC_INFO set and
 * parses its ExecCredential. 0, or -1 after reporting. */
int cr_exec_run(const struct cr_kcfg *cfg, struct cr_exec_cred *out);
/* Parses an ExecCredential of the given apiVersion; `what` names the plugin in errors. */
int cr_exec_parse(const char *json, size_t len, const char *api_version, const char *what,
		  struct cr_exec_cred *out);
void cr_exec_cred_copy(struct cr_exec_cred *dst, const struct cr_exec_cred *src);
void cr_exec_cred_free(struct cr_exec_cred *c);

/* RFC 3339 ("2024-05-01T10:00:00Z", "...10:00:00.5+02:00") to a time_t; -1 if invalid. */
int cr_rfc3339(const char *s, time_t *out);
/* Decodes base64 (whitespace ignored) into out; -1 if invalid. */
int cr_base64_decode(const char *s, size_t len, struct cr_buf *out);

#endif
