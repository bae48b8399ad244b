/* alembic_cli: running the alembic command for one database. argv only (no shell), in the
 * project's directory (cr_alembic_project.directory, where its ini was read from); the URL reaches Alembic through a copy of the ini file held in
 * memory (opened by Alembic as /dev/fd/N) and through CHARTREUSE_ALEMBIC_URL in its
 * environment;
 * output is streamed line by line with the database name in front, secrets masked. */
#ifndef CR_ALEMBIC_CLI_H
#define CR_ALEMBIC_CLI_H

#include "revgraph.h"
#include "util.h"

struct cr_alembic_call {
	const char *db_name;
	const struct cr_alembic_project *project;
	const char *url;		 /* with its password */
	const struct cr_strlist *extra;	 /* additionalParameters, -x patroni_postgresql=yes */
};

struct cr_alembic_result {
	int status;	      /* exit status (128 + a signal that ended it), -1 if it could not run */
	char *last_upgrade;   /* Y of the last "Running upgrade X -> Y" line, or NULL */
	struct cr_buf output; /* stdout and stderr, as printed */
};

/* Runs `alembic -c /dev/fd/N [-n section] <extra...> <args...>`. The program is
 * $CHARTREUSE_ALEMBIC, else "alembic" from PATH. */
int cr_alembic_cli(const struct cr_alembic_call *call, const char *const *args,
		   struct cr_alembic_result *res);
void cr_alembic_result_free(struct cr_alembic_result *res);

/* The application_name Alembic's PostgreSQL sessions get (libpq's PGAPPNAME, set for the
 * child unless the environment sets it already), so that sessions a killed Alembic left
 * running can be found and ended; NULL when the environment chose another. Caller frees. */
char *cr_alembic_cli_session_name(void);

/* The heads as `alembic heads` prints them, for projects whose scripts can't be read
 * natively. */
int cr_alembic_cli_heads(const struct cr_alembic_call *call, struct cr_strlist *heads);

/* Compiles every revision script of g with the Python that runs Alembic (the interpreter
 * its `#!` line names, else python3), as Alembic's import of them will: 0 when all
 * compile; 1 when some do not (each reported: file, line, why); -1 when the check could
 * not run (a warning says so). */
int cr_alembic_cli_compile(const char *db_name, const struct cr_revgraph *g);

#endif
