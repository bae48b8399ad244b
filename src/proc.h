/* proc: running other programs — one spawn API for every child (Alembic, eslembic, exec
 * credential plugins, Helm), always with an argv and never a shell; termination requests,
 * forwarded to the child that runs; sleeping in a way they cut short. */
#ifndef CR_PROC_H
#define CR_PROC_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

struct cr_buf;

/* An argv being built: v is NULL-terminated at v[n] once anything was pushed, and holds
 * copies (owned). */
struct cr_argv {
	char **v;
	size_t n, cap;
};
void cr_argv_push(struct cr_argv *a, const char *s);
void cr_argv_pushf(struct cr_argv *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void cr_argv_free(struct cr_argv *a);

/* One child. Set the first fields, then cr_child_start and cr_child_finish, or one of the
 * two calls below that do both. The child gets no descriptor of chartreuse's but 0, 1, 2
 * and those opened without O_CLOEXEC on purpose (the ini memfd Alembic reads). */
struct cr_child {
	char *const *argv;   /* argv[0] is looked up in PATH */
	char *const *envp;   /* NULL: this process's environment */
	const char *cwd;     /* NULL: this directory */
	const char *what;    /* names the child in messages; NULL: argv[0] */
	bool capture;	     /* stdout to a pipe (out), else inherited */
	bool merge_stderr;   /* with capture: stderr to the same pipe */
	bool own_group;	     /* while termination requests are caught: a process group of
			      * its own, to which one is forwarded (a wrapper script's children
			      * get it too); else it stays in chartreuse's and may use the
			      * terminal, as an exec credential plugin asking for a password must */
	pid_t pid;	     /* set by cr_child_start */
	int out;	     /* with capture: the pipe's read end, closed by cr_child_finish */
};

/* 0, or -1 (reported, naming what and where). */
int cr_child_start(struct cr_child *c);
/* Waits for the child: its exit status, or 128 + the signal that ended it (reported). -1
 * (reported) when it cannot be waited for. */
int cr_child_finish(struct cr_child *c);
/* Start, finish, output inherited: the exit status as above, -1 when it could not start. */
int cr_child_run(struct cr_child *c);
/* Start with stdout captured, every byte into *all and each line (without its newline; a
 * last unterminated one too) to on_line (may be NULL) as it arrives, finish. */
int cr_child_capture(struct cr_child *c, struct cr_buf *all,
		     void (*on_line)(const char *line, void *user), void *user);

/* Termination requests (SIGTERM, SIGINT, SIGHUP) during a long operation. From
 * cr_proc_catch_termination() on, the first one is recorded (cr_terminated() returns its
 * number, 0 before) and forwarded to the process group of the own_group child that is
 * running, if any, so that it gets the signal once, from here. Long waits check
 * cr_terminated() and give up; the caller then applies its failure policy. In a container
 * chartreuse may be PID 1, which the kernel shields from signals that have no handler:
 * without this, SIGTERM would do nothing. */
void cr_proc_catch_termination(void);
int cr_terminated(void);

/* Seconds on a clock that only goes forward (CLOCK_MONOTONIC). */
double cr_now_s(void);

/* The "still waiting" lines of every wait: the caller says at once what it waits for,
 * then a line is due every CR_PROGRESS_EVERY_S seconds. */
#define CR_PROGRESS_EVERY_S 5.0
struct cr_progress {
	double start, next;
};
struct cr_progress cr_progress_start(void);
/* Seconds waited so far (at least 1) when a progress line is due now, else 0. */
double cr_progress_due(struct cr_progress *p);

/* Sleeps ms milliseconds: 0; or, with at_termination, -1 as soon as a termination request
 * comes. Without it the sleep goes on: a retry that brings the service back up (the
 * restore after a termination request) must not lose its pause. */
int cr_sleep_ms(long ms, bool at_termination);

/* A child's environment: this process's, with the variables named in `set` replaced by
 * (or added as) the given "NAME=value" strings, which are copied. cr_env_free wipes the
 * copies before freeing them: they may hold passwords. */
struct cr_env {
	char **envp;	    /* NULL-terminated, for struct cr_child */
	size_t first_owned; /* envp[first_owned..] are the copies */
};
void cr_env_with(struct cr_env *e, const char *const *set, size_t n_set);
void cr_env_free(struct cr_env *e);

/* Absolute path of the running executable (caller frees), NULL if unknown. */
char *cr_self_exe(void);
/* The file that running `name` would execute, as PATH is searched (a name with a '/' is
 * itself); NULL when there is none. Caller frees. */
char *cr_find_program(const char *name);

#endif
