/* memmem is a GNU extension. */
#define _GNU_SOURCE
#include "alembic_cli.h"
#include "log.h"
#include "proc.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>


/* The ini copy lives in an anonymous memory file that Alembic opens as /dev/fd/N: the
 * password is never on a disk, and nothing is left behind even if chartreuse is killed.
 * The fd is inherited by the child (no close-on-exec) and closed here after the spawn. */
static int ini_memfd(const struct cr_alembic_call *call)
{
	struct cr_buf text = { 0 };
	if (cr_alembic_ini_copy(call->project, call->url, &text)) {
		cr_buf_free(&text);
		return -1;
	}
	int fd = memfd_create("chartreuse-alembic.ini", 0);
	if (fd < 0 || cr_write_all(fd, text.data, text.len) < 0) {
		cr_error("database %s: cannot hand Alembic its config (memfd): %s", call->db_name,
			 strerror(errno));
		if (fd >= 0)
			close(fd);
		fd = -1;
	}
	if (text.data)
		explicit_bzero(text.data, text.len);
	cr_buf_free(&text);
	return fd;
}

static void build_argv(const struct cr_alembic_call *call, const char *ini,
		       const char *const *args, struct cr_argv *v)
{
	const char *prog = getenv("CHARTREUSE_ALEMBIC");
	cr_argv_push(v, prog && *prog ? prog : "alembic");
	cr_argv_push(v, "-c");
	cr_argv_push(v, ini);
	if (cr_nonempty(call->project->section) && strcmp(call->project->section, "alembic")) {
		cr_argv_push(v, "-n");
		cr_argv_push(v, call->project->section);
	}
	for (size_t i = 0; call->extra && i < call->extra->n; i++)
		cr_argv_push(v, call->extra->items[i]);
	for (; *args; args++)
		cr_argv_push(v, *args);
}

/* Unique across the pods of a cluster, where every container's chartreuse may be PID 1:
 * ending a session of another migration would be a disaster. */
char *cr_alembic_cli_session_name(void)
{
	static char name[48];
	if (getenv("PGAPPNAME"))
		return NULL;
	if (!*name) {
		char host[256] = "";
		struct timespec ts;
		gethostname(host, sizeof(host) - 1);
		clock_gettime(CLOCK_REALTIME, &ts);
		char *seed = xasprintf("%s/%ld/%lld.%ld", host, (long)getpid(),
				       (long long)ts.tv_sec, ts.tv_nsec);
		snprintf(name, sizeof(name), "chartreuse-alembic-%08x%08x",
			 cr_fnv1a(seed, strlen(seed)), cr_fnv1a(host, strlen(host)));
		free(seed);
	}
	return xstrdup(name);
}

/* The URL, and PGAPPNAME unless the environment chose one. */
static void alembic_env(const char *url, struct cr_env *e)
{
	char *set[2] = { xasprintf("CHARTREUSE_ALEMBIC_URL=%s", url), NULL };
	char *session = cr_alembic_cli_session_name();
	if (session)
		set[1] = xasprintf("PGAPPNAME=%s", session);
	cr_env_with(e, (const char *const *)set, session ? 2 : 1);
	explicit_bzero(set[0], strlen(set[0]));
	free(set[0]);
	free(set[1]);
	free(session);
}

/* "... Running upgrade a1 -> b2, message" gives "b2". */
static void note_upgrade(const char *line, char **last)
{
	const char *p = strstr(line, "Running upgrade ");
	const char *arrow = p ? strstr(p, "-> ") : NULL;
	if (!arrow)
		return;
	arrow += 3;
	free(*last);
	*last = xstrndup(arrow, strcspn(arrow, ", \n"));
}

struct streaming {
	const char *db;
	struct cr_alembic_result *res;
};

static void on_alembic_line(const char *line, void *user)
{
	struct streaming *st = user;
	cr_info("[%s] %s", st->db, line);
	note_upgrade(line, &st->res->last_upgrade);
}

static int spawn_and_stream(char **argv, char **envp, const char *cwd, const char *db,
			    struct cr_alembic_result *res)
{
	char *what = xasprintf("alembic for database %s", db);
	struct cr_child c = { .argv = argv, .envp = envp, .cwd = cwd, .what = what,
			      .merge_stderr = true, .own_group = true };
	struct streaming st = { db, res };
	int status = cr_child_capture(&c, &res->output, on_alembic_line, &st);
	free(what);
	return status;
}

int cr_alembic_cli(const struct cr_alembic_call *call, const char *const *args,
		   struct cr_alembic_result *res)
{
	memset(res, 0, sizeof(*res));
	res->status = -1;
	int fd = ini_memfd(call);
	if (fd < 0)
		return -1;
	char *ini = xasprintf("/dev/fd/%d", fd);
	struct cr_argv argv = { 0 };
	build_argv(call, ini, args, &argv);
	struct cr_env env;
	alembic_env(call->url, &env);
	/* Where the project was read: relative paths in the ini mean the same to Alembic. */
	res->status = spawn_and_stream(argv.v, env.envp, call->project->directory, call->db_name,
				       res);
	close(fd);
	cr_env_free(&env);
	cr_argv_free(&argv);
	free(ini);
	return res->status;
}

void cr_alembic_result_free(struct cr_alembic_result *res)
{
	free(res->last_upgrade);
	cr_buf_free(&res->output);
	memset(res, 0, sizeof(*res));
}

int cr_alembic_cli_heads(const struct cr_alembic_call *call, struct cr_strlist *heads)
{
	static const char *const args[] = { "heads", NULL };
	struct cr_alembic_result res;
	int rc = cr_alembic_cli(call, args, &res);
	if (rc == 0) {
		/* Lines look like "b2 (beta) (head)" or "a2 (alpha) (effective head)". An
		 * effective head is never stored (a revision depending on it stands for it),
		 * so only real heads are kept. */
		for (char *line = res.output.data; line && *line;) {
			char *end = strchr(line, '\n');
			size_t len = end ? (size_t)(end - line) : strlen(line);
			size_t word = strcspn(line, " \t\n");
			if (word && word <= len && memmem(line, len, "(head)", 6)) {
				char *id = xstrndup(line, word);
				cr_strlist_add(heads, id);
				free(id);
			}
			line = end ? end + 1 : NULL;
		}
	} else if (rc > 0) {
		cr_error("database %s: `alembic heads` exited %d", call->db_name, rc);
	}
	cr_alembic_result_free(&res);
	return rc == 0 ? 0 : -1;
}

/* --- revision scripts compiled before anything is stopped ---------------------------------- */

/* The interpreter a `#!` line names, as the kernel reads it: "#!/venv/bin/python" gives
 * that file, "#!/usr/bin/env python3" gives python3 (searched in PATH). NULL when the
 * file is not a Python script. */
static char *python_of_script(const char *path)
{
	char line[512];
	FILE *f = fopen(path, "r");
	bool got = f && fgets(line, sizeof(line), f);
	if (f)
		fclose(f);
	if (!got || strncmp(line, "#!", 2))
		return NULL;
	const char *p = line + 2 + strspn(line + 2, " \t");
	size_t n = strcspn(p, " \t\r\n");
	const char *slash = memrchr(p, '/', n);
	const char *base = slash ? slash + 1 : p;
	if ((size_t)(p + n - base) == 3 && !strncmp(base, "env", 3)) {
		p += n + strspn(p + n, " \t");
		n = strcspn(p, " \t\r\n");
		base = p;
	}
	return n && !strncmp(base, "python", 6) ? xstrndup(p, n) : NULL;
}

static char *alembic_python(void)
{
	const char *prog = getenv("CHARTREUSE_ALEMBIC");
	char *script = cr_find_program(cr_nonempty(prog) ? prog : "alembic");
	char *python = script ? python_of_script(script) : NULL;
	free(script);
	return python ? python : xstrdup("python3");
}

/* compile() is what an import does first; one line per script that fails, "file:line: why". */
static const char COMPILE_ALL[] =
	"import sys\n"
	"bad = 0\n"
	"for f in sys.argv[1:]:\n"
	"    try:\n"
	"        with open(f, 'rb') as h:\n"
	"            compile(h.read(), f, 'exec', dont_inherit=True)\n"
	"    except SyntaxError as e:\n"
	"        bad = 1\n"
	"        print('%s:%s: %s' % (f, e.lineno, e.msg))\n"
	"    except Exception as e:\n"
	"        bad = 1\n"
	"        print('%s: %s' % (f, e))\n"
	"sys.exit(bad)\n";

struct compile_report {
	const char *db, *python;
	size_t bad;
};

static void on_compile_line(const char *line, void *user)
{
	struct compile_report *r = user;
	if (!*line)
		return;
	cr_error("database %s: revision script %s (does not compile with %s)", r->db, line,
		 r->python);
	r->bad++;
}

int cr_alembic_cli_compile(const char *db_name, const struct cr_revgraph *g)
{
	char *python = alembic_python();
	struct cr_argv argv = { 0 };
	cr_argv_push(&argv, python);
	cr_argv_push(&argv, "-c");
	cr_argv_push(&argv, COMPILE_ALL);
	for (size_t i = 0; i < g->n; i++)
		cr_argv_push(&argv, g->revs[i].path);
	char *what = xasprintf("%s (compiling the revision scripts of database %s)", python,
			       db_name);
	struct cr_child c = { .argv = argv.v, .what = what, .capture = true,
			      .merge_stderr = true, .own_group = true };
	struct compile_report r = { db_name, python, 0 };
	struct cr_buf all = { 0 };
	int status = cr_child_capture(&c, &all, on_compile_line, &r);
	int rc = status == 0 ? 0 : status == 1 && r.bad ? 1 : -1;
	if (rc < 0)
		cr_warn("database %s: the revision scripts could not be compiled beforehand (%s "
			"exited %d): a syntax error will show only when Alembic runs", db_name,
			python, status);
	cr_buf_free(&all);
	free(what);
	cr_argv_free(&argv);
	free(python);
	return rc;
}
