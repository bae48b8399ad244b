/* cmd: one file per subcommand (as git's builtin/); main.c dispatches to them. Each returns
 * the process exit status: 0 success, 1 failure (already reported), 2 bad usage. */
#ifndef CR_CMD_H
#define CR_CMD_H

#include <stdbool.h>
#include <stddef.h>

#include "json.h"

struct cr_config;
struct cr_k8s_options;

struct cr_command {
	const char *name;
	int (*run)(int argc, char **argv); /* argv[0] is the subcommand name */
	const char *summary;
	const char *usage;   /* full --help text */
	const char *options; /* its options, space-separated, for completion */
};

extern const struct cr_command cr_commands[];

int cmd_post_render(int argc, char **argv);

/* What `post-render` was told on its command line. */
struct cr_post_render_options {
	const char *release;
	const char *namespace;
	const char *hooks_to; /* the Helm 3 wrapper's file for the Jobs it runs itself */
	const char **configs;
	size_t n_configs, cap_configs;
	const char **sets;
	size_t n_sets, cap_sets;
	const char **set_strings; /* --set-string, applied after every --set, as Helm does */
	size_t n_set_strings, cap_set_strings;
};

/* The post-renderer's work on a stream already read (Helm's output, len bytes): writes the
 * kept documents and the injected ones to out_fd, or nothing (0, or -1 after reporting). */
int cr_post_render(const struct cr_post_render_options *o, const char *data, size_t len,
		   int out_fd);
int cmd_version(int argc, char **argv);
int cmd_helm_wrapper(int argc, char **argv);
int cmd_wait(int argc, char **argv);
int cmd_migrate(int argc, char **argv);
int cmd_restore(int argc, char **argv);
int cmd_status(int argc, char **argv);

int cmd_completion(int argc, char **argv);

/* The release and cluster options of migrate, status and restore, parsed in one place:
 * RELEASE (or --release NAME), -n/--namespace, --kube-context, --kubeconfig, --config,
 * --set, and -o/--output where the command shows data. */
struct cr_cli {
	const char *command;
	bool takes_output; /* -o table|json|yaml */
	const char *release, *namespace, *context, *kubeconfig, *config;
	const char **sets;
	size_t n_sets, cap_sets;
	enum cr_format format;
	bool format_given;
};
#define CR_CLI_OPTIONS                                                                     \
	"--namespace -n --kube-context --kubeconfig --config --set --release --help"
/* A command's own option at argv[*i]: 1 taken, 0 not one of its, -1 bad value (reported). */
typedef int (*cr_cli_option_fn)(int argc, char **argv, int *i, void *user);
/* 0 to go on, 1 when --help was printed, 2 on bad usage (reported as one line). */
int cr_cli_parse(struct cr_cli *c, int argc, char **argv, cr_cli_option_fn own, void *user);
/* The settings (--config or the environment, then --set, RELEASE and the namespace:
 * -n, else HELM_NAMESPACE) and the cluster (--kubeconfig; --kube-context, else
 * HELM_KUBECONTEXT). *source (may be NULL; caller frees) names where the settings came from.
 * 0, or -1 (reported). */
int cr_cli_config(const struct cr_cli *c, struct cr_config *cfg, char **source);
void cr_cli_k8s(const struct cr_cli *c, struct cr_k8s_options *ko);
void cr_cli_free(struct cr_cli *c);
/* "<command>: -o expects ..." and the like: one value of a number option, 0 or -1. */
int cr_cli_seconds(const struct cr_cli *c, const char *name, const char *v, long max,
		   int *out);

/* Option parsing shared by the subcommands: matches "--name VALUE" and "--name=VALUE". */
int cr_opt_value(int argc, char **argv, int *i, const char *name, const char **value);
/* Prints the command's usage to stdout (help) or stderr (misuse). */
int cr_usage(const char *command, int status);

#endif
