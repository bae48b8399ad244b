#include "proc.h"
#include "log.h"
#include "util.h"

#include <errno.h>
#include <limits.h>
#include <spawn.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

int cr_run_capture(char *const argv[], struct cr_buf *out)
{
	int fds[2];
	if (pipe(fds)) {
		cr_error("cannot run %s: pipe: %s", argv[0], strerror(errno));
		return -1;
	}
	posix_spawn_file_actions_t fa;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, fds[1], 1);
	posix_spawn_file_actions_addclose(&fa, fds[0]);
	posix_spawn_file_actions_addclose(&fa, fds[1]);
	pid_t pid;
	int err = posix_spawnp(&pid, argv[0], &fa, NULL, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	close(fds[1]);
	if (err) {
		close(fds[0]);
		cr_error("cannot run %s: %s", argv[0], strerror(err));
		return -1;
	}
	int rc = cr_read_fd(fds[0], out, argv[0]);
	close(fds[0]);
	int status;
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR) {
			cr_error("cannot wait for %s: %s", argv[0], strerror(errno));
			return -1;
		}
	if (rc)
		return -1;
	if (!WIFEXITED(status)) {
		cr_error("%s was killed by signal %d", argv[0], WTERMSIG(status));
		return -1;
	}
	return WEXITSTATUS(status);
}

char *cr_self_exe(void)
{
	char buf[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", buf, sizeof(buf) - 1);
	if (n <= 0)
		return NULL;
	return xstrndup(buf, (size_t)n);
}
