/* `chartreuse completion bash|zsh`: a completion script made from the command table, so
 * that it lists exactly the commands and options there are. */
#include "cmd.h"
#include "log.h"
#include "util.h"

#include <stdio.h>
#include <string.h>

static void command_names(struct cr_buf *b)
{
	for (const struct cr_command *c = cr_commands; c->name; c++)
		cr_buf_printf(b, "%s ", c->name);
}

static void bash_script(struct cr_buf *b)
{
	cr_buf_adds(b, "# bash completion for chartreuse: source <(chartreuse completion bash)\n"
		       "_chartreuse() {\n"
		       "\tlocal cur=${COMP_WORDS[COMP_CWORD]}\n"
		       "\tif [ \"$COMP_CWORD\" -eq 1 ]; then\n"
		       "\t\tCOMPREPLY=($(compgen -W \"");
	command_names(b);
	cr_buf_adds(b, "help --help --version\" -- \"$cur\"))\n"
		       "\t\treturn\n"
		       "\tfi\n"
		       "\tcase ${COMP_WORDS[1]} in\n");
	for (const struct cr_command *c = cr_commands; c->name; c++)
		cr_buf_printf(b, "\t%s) COMPREPLY=($(compgen -W \"%s\" -- \"$cur\")) ;;\n", c->name,
			      c->options);
	cr_buf_adds(b, "\thelp) COMPREPLY=($(compgen -W \"");
	command_names(b);
	cr_buf_adds(b, "\" -- \"$cur\")) ;;\n"
		       "\tesac\n"
		       "}\n"
		       "complete -o default -F _chartreuse chartreuse\n");
}

/* A _describe entry: "name:summary", ':' in the summary escaped, single-quoted. */
static void zsh_entry(struct cr_buf *b, const char *name, const char *summary)
{
	cr_buf_printf(b, "\t\t'%s:", name);
	for (const char *s = summary; *s; s++)
		if (*s == ':')
			cr_buf_adds(b, "\\:");
		else if (*s == '\'')
			cr_buf_adds(b, "'\\''");
		else
			cr_buf_addc(b, *s);
	cr_buf_adds(b, "'\n");
}

static void zsh_script(struct cr_buf *b)
{
	cr_buf_adds(b, "#compdef chartreuse\n"
		       "# zsh completion for chartreuse: source <(chartreuse completion zsh)\n"
		       "_chartreuse() {\n"
		       "\tlocal -a commands\n"
		       "\tcommands=(\n");
	for (const struct cr_command *c = cr_commands; c->name; c++)
		zsh_entry(b, c->name, c->summary);
	cr_buf_adds(b, "\t)\n"
		       "\tif (( CURRENT == 2 )); then\n"
		       "\t\t_describe 'command' commands\n"
		       "\t\tcompadd -- --help --version\n"
		       "\t\treturn\n"
		       "\tfi\n"
		       "\tcase ${words[2]} in\n");
	for (const struct cr_command *c = cr_commands; c->name; c++)
		cr_buf_printf(b, "\t%s) compadd -- %s ;;\n", c->name, c->options);
	cr_buf_adds(b, "\thelp) _describe 'command' commands ;;\n"
		       "\t*) _files ;;\n"
		       "\tesac\n"
		       "}\n"
		       "if (( $+functions[compdef] )); then\n"
		       "\tcompdef _chartreuse chartreuse\n"
		       "fi\n");
}

int cmd_completion(int argc, char **argv)
{
	if (argc == 2 && (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")))
		return cr_usage("completion", 0);
	if (argc != 2 || (strcmp(argv[1], "bash") && strcmp(argv[1], "zsh"))) {
		cr_error("completion: which shell? chartreuse completion bash|zsh; see chartreuse "
			 "completion --help");
		return 2;
	}
	struct cr_buf b = { 0 };
	if (!strcmp(argv[1], "bash"))
		bash_script(&b);
	else
		zsh_script(&b);
	int rc = cr_write_all(1, b.data, b.len) < 0 ? 1 : 0;
	if (rc)
		cr_error("completion: cannot write to stdout");
	cr_buf_free(&b);
	return rc;
}
