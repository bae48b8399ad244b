/* proc: running other programs with an argv (never a shell) and collecting their output. */
#ifndef CR_PROC_H
#define CR_PROC_H

#include <stdbool.h>

struct cr_buf;

/* Starts argv[0] (searched in PATH) with its stdout (and stderr too when merge_stderr) on
 * a pipe whose read end goes to *read_fd; envp NULL: this process's environment; cwd NULL:
 * this directory. Returns the pid, or -1 (reported, naming `what`). */
int cr_spawn_piped(char *const argv[], char *const envp[], const char *cwd, bool merge_stderr,
		   int *read_fd, const char *what);
/* Waits for pid: its exit status, or -1 (reported, naming `what`) if it was killed. */
int cr_wait_exit(int pid, const char *what);

/* Runs argv[0] (searched in PATH) with stdout captured into out; stderr is inherited.
 * Returns the exit status, or -1 (reported) if it could not run or was killed. */
int cr_run_capture(char *const argv[], struct cr_buf *out);

/* Absolute path of the running executable (caller frees), NULL if unknown. */
char *cr_self_exe(void);

#endif
