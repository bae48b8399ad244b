/* proc: running other programs with an argv (never a shell) and collecting their output. */
#ifndef CR_PROC_H
#define CR_PROC_H

#include <stdbool.h>
#include <stddef.h>

struct cr_buf;

/* Starts argv[0] (searched in PATH) with its stdout (and stderr too when merge_stderr) on
 * a pipe whose read end goes to *read_fd; envp NULL: this process's environment; cwd NULL:
 * this directory. Returns the pid, or -1 (reported, naming `what`). */
int cr_spawn_piped(char *const argv[], char *const envp[], const char *cwd, bool merge_stderr,
		   int *read_fd, const char *what);
/* Waits for pid: its exit status, or -1 (reported, naming `what`) if it was killed. */
int cr_wait_exit(int pid, const char *what);

/* Termination requests (SIGTERM, SIGINT, SIGHUP) during a long operation. From
 * cr_proc_catch_termination() on, the first one is recorded (cr_terminated() returns its
 * number, 0 before) and forwarded to the process group of the child of cr_spawn_piped
 * that is running, if any (so a wrapper script's children get it too); such a child runs
 * in a process group of its own, so it gets the signal once, from here. Long
 * waits check cr_terminated() and give up; the caller then applies its failure policy.
 * In a container chartreuse may be PID 1, which the kernel shields from signals that have
 * no handler: without this, SIGTERM would do nothing. */
void cr_proc_catch_termination(void);
int cr_terminated(void);

/* A child's environment: this process's, with the variables named in `set` replaced by
 * (or added as) the given "NAME=value" strings, which are copied. cr_env_free wipes the
 * copies before freeing them: they may hold passwords. */
struct cr_env {
	char **envp;	    /* NULL-terminated, for cr_spawn_piped */
	size_t first_owned; /* envp[first_owned..] are the copies */
};
void cr_env_with(struct cr_env *e, const char *const *set, size_t n_set);
void cr_env_free(struct cr_env *e);

/* Reads fd to its end: every byte into *all, and each line (without its newline; a last
 * unterminated one too) to on_line as it arrives, so a child's output is logged live. */
void cr_read_lines(int fd, struct cr_buf *all, void (*on_line)(const char *line, void *user),
		   void *user);

/* Runs argv[0] (searched in PATH) with stdout captured into out; stderr is inherited.
 * Returns the exit status, or -1 (reported) if it could not run or was killed. */
int cr_run_capture(char *const argv[], struct cr_buf *out);

/* Absolute path of the running executable (caller frees), NULL if unknown. */
char *cr_self_exe(void);

#endif
