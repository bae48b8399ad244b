/* chartreuse: command-line dispatch. */
#include "cmd/cmd.h"
#include "log.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static const char *base_name(const char *path)
{
	const char *slash = strrchr(path, '/');
	return slash ? slash + 1 : path;
}

static void print_overview(FILE *fp)
{
	fprintf(fp, "usage: chartreuse <command> [options]\n\n"
		    "Alembic migrations for any Helm chart: a post-renderer that injects the "
		    "migration Job,\nand the commands that Job runs.\n\ncommands:\n");
	for (const struct cr_command *c = cr_commands; c->name; c++)
		fprintf(fp, "  %-12s %s\n", c->name, c->summary);
	fprintf(fp, "\noptions:\n"
		    "  %-12s %s\n  %-12s %s\n", "--version", "print the version", "-h, --help",
		    "this overview; chartreuse help <command> (or <command> --help) for one");
	fprintf(fp, "\nRun with manifests on stdin and no command (as Helm's --post-renderer does), "
		    "it post-renders.\nExit statuses: each command's --help lists its own.\n");
}

/* Helm 3 hands --post-renderer-args straight to the program: such a first argument is a
 * post-render option, and any other option is a mistake, not manifests to wait for. */
static bool is_post_render_option(const char *arg)
{
	static const char *const names[] = { "--release", "--namespace", "--config", "--set",
					     "--set-string", "--hooks-to" };
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		size_t n = strlen(names[i]);
		if (!strncmp(arg, names[i], n) && (arg[n] == '\0' || arg[n] == '='))
			return true;
	}
	return false;
}

static bool is_help(const char *arg)
{
	return !strcmp(arg, "-h") || !strcmp(arg, "--help") || !strcmp(arg, "help");
}

static int dispatch(int argc, char **argv)
{
	static char post_render[] = "post-render";
	if (argc > 0 && strcmp(base_name(argv[0]), "chartreuse-post-render") == 0) {
		argv[0] = post_render;
		return cmd_post_render(argc, argv);
	}
	if (argc < 2) {
		if (!isatty(0)) {
			argv[0] = post_render;
			return cmd_post_render(argc, argv);
		}
		print_overview(stderr);
		return 2;
	}
	const char *name = argv[1];
	if (is_help(name)) {
		if (argc > 2 && !is_help(argv[2]))
			return cr_usage(argv[2], 0);
		print_overview(stdout);
		return 0;
	}
	if (!strcmp(name, "--version"))
		name = "version";
	else if (is_post_render_option(name)) {
		argv[0] = post_render;
		return cmd_post_render(argc, argv);
	} else if (name[0] == '-') {
		cr_error("unknown option %s; see chartreuse --help", name);
		return 2;
	}
	for (const struct cr_command *c = cr_commands; c->name; c++)
		if (!strcmp(c->name, name))
			return c->run(argc - 1, argv + 1);
	cr_error("unknown command '%s' (see chartreuse --help)", name);
	return 2;
}

/* The secrets registry is the process's: emptied here, whichever command ran. */
int main(int argc, char **argv)
{
	int rc = dispatch(argc, argv);
	cr_secrets_clear();
	return rc;
}
