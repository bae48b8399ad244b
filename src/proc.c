/* posix_spawn_file_actions_addchdir_np is a GNU extension (glibc 2.29). */
#define _GNU_SOURCE
#include "proc.h"
#include "log.h"
#include "util.h"

#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

static bool catching;
static volatile sig_atomic_t terminated;
static volatile sig_atomic_t running_child;

static void on_termination(int sig)
{
	if (!terminated)
		terminated = sig;
	if (running_child > 0) /* its process group: a wrapper script's children too */
		kill(-(pid_t)running_child, sig);
}

void cr_proc_catch_termination(void)
{
	/* No SA_RESTART: a blocking wait returns EINTR and looks at cr_terminated(). */
	catching = true;
	struct sigaction sa = { .sa_handler = on_termination };
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
}

int cr_terminated(void)
{
	return terminated;
}

/* A signal that came between the spawn and the registration is passed on now. */
static void track_child(pid_t pid)
{
	running_child = pid;
	if (terminated)
		kill(-pid, terminated);
}

int cr_spawn_piped(char *const argv[], char *const envp[], const char *cwd, bool merge_stderr,
		   int *read_fd, const char *what)
{
	int fds[2];
	if (pipe(fds)) {
		cr_error("cannot run %s: pipe: %s", what, strerror(errno));
		return -1;
	}
	posix_spawn_file_actions_t fa;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, fds[1], 1);
	if (merge_stderr)
		posix_spawn_file_actions_adddup2(&fa, fds[1], 2);
	posix_spawn_file_actions_addclose(&fa, fds[0]);
	posix_spawn_file_actions_addclose(&fa, fds[1]);
	if (cwd)
		posix_spawn_file_actions_addchdir_np(&fa, cwd);
	posix_spawnattr_t attr;
	posix_spawnattr_init(&attr);
	if (catching) /* else a terminal's ^C reaches the child directly, as usual */
		posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP);
	posix_spawnattr_setpgroup(&attr, 0);
	pid_t pid;
	int err = posix_spawnp(&pid, argv[0], &fa, &attr, argv, envp ? envp : environ);
	posix_spawnattr_destroy(&attr);
	posix_spawn_file_actions_destroy(&fa);
	close(fds[1]);
	if (err) {
		close(fds[0]);
		cr_error("cannot run %s%s%s: %s", what, cwd ? " in " : "", cwd ? cwd : "",
			 strerror(err));
		return -1;
	}
	*read_fd = fds[0];
	track_child(pid);
	return pid;
}

int cr_wait_exit(int pid, const char *what)
{
	int status;
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR) {
			cr_error("cannot wait for %s: %s", what, strerror(errno));
			running_child = 0;
			return -1;
		}
	if (running_child == pid)
		running_child = 0;
	if (WIFSIGNALED(status)) {
		cr_error("%s was killed by signal %d", what, WTERMSIG(status));
		return -1;
	}
	return WEXITSTATUS(status);
}

static bool named_in(const char *entry, const char *const *set, size_t n_set)
{
	size_t len = strcspn(entry, "=");
	for (size_t i = 0; i < n_set; i++)
		if (!strncmp(entry, set[i], len) && set[i][len] == '=')
			return true;
	return false;
}

void cr_env_with(struct cr_env *e, const char *const *set, size_t n_set)
{
	size_t n = 0;
	while (environ[n])
		n++;
	e->envp = xcalloc(n + n_set + 1, sizeof(*e->envp));
	size_t k = 0;
	for (size_t i = 0; i < n; i++)
		if (!named_in(environ[i], set, n_set))
			e->envp[k++] = environ[i];
	e->first_owned = k;
	for (size_t i = 0; i < n_set; i++)
		e->envp[k++] = xstrdup(set[i]);
}

void cr_env_free(struct cr_env *e)
{
	for (size_t i = e->first_owned; e->envp && e->envp[i]; i++) {
		explicit_bzero(e->envp[i], strlen(e->envp[i]));
		free(e->envp[i]);
	}
	free(e->envp);
	e->envp = NULL;
}

void cr_read_lines(int fd, struct cr_buf *all, void (*on_line)(const char *line, void *user),
		   void *user)
{
	struct cr_buf pending = { 0 };
	char chunk[4096];
	for (;;) {
		ssize_t n = read(fd, chunk, sizeof(chunk));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		cr_buf_add(all, chunk, (size_t)n);
		cr_buf_add(&pending, chunk, (size_t)n);
		char *nl;
		while ((nl = memchr(pending.data, '\n', pending.len))) {
			*nl = '\0';
			on_line(pending.data, user);
			size_t rest = pending.len - (size_t)(nl + 1 - pending.data);
			memmove(pending.data, nl + 1, rest);
			pending.len = rest;
			pending.data[rest] = '\0';
		}
	}
	if (pending.len)
		on_line(pending.data, user);
	cr_buf_free(&pending);
}

int cr_run_capture(char *const argv[], struct cr_buf *out)
{
	int fd;
	int pid = cr_spawn_piped(argv, NULL, NULL, false, &fd, argv[0]);
	if (pid < 0)
		return -1;
	int rc = cr_read_fd(fd, out, argv[0]);
	close(fd);
	int status = cr_wait_exit(pid, argv[0]);
	return rc ? -1 : status;
}

char *cr_self_exe(void)
{
	char buf[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", buf, sizeof(buf) - 1);
	if (n <= 0)
		return NULL;
	return xstrndup(buf, (size_t)n);
}
