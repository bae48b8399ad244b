/* proc: running other programs with an argv (never a shell) and collecting their output. */
#ifndef CR_PROC_H
#define CR_PROC_H

struct cr_buf;

/* Runs argv[0] (searched in PATH) with stdout captured into out; stderr is inherited.
 * Returns the exit status, or -1 (reported) if it could not run or was killed. */
int cr_run_capture(char *const argv[], struct cr_buf *out);

/* Absolute path of the running executable (caller frees), NULL if unknown. */
char *cr_self_exe(void);

#endif
