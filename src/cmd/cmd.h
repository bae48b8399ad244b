/* cmd: one file per subcommand (as git's builtin/); main.c dispatches to them. Each returns
 * the process exit status: 0 success, 1 failure (already reported), 2 bad usage. */
#ifndef CR_CMD_H
#define CR_CMD_H

#include <stddef.h>

struct cr_command {
	const char *name;
	int (*run)(int argc, char **argv); /* argv[0] is the subcommand name */
	const char *summary;
	const char *usage; /* full --help text */
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

/* Option parsing shared by the subcommands: matches "--name VALUE" and "--name=VALUE". */
int cr_opt_value(int argc, char **argv, int *i, const char *name, const char **value);
/* Prints the command's usage to stdout (help) or stderr (misuse). */
int cr_usage(const char *command, int status);

#endif
