/* posix_spawn_file_actions_addchdir_np is a GNU extension (glibc 2.29). */
#define _GNU_SOURCE
#include "proc.h"
#include "log.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

/* --- argv ---------------------------------------------------------------------------------- */

void cr_argv_push(struct cr_argv *a, const char *s)
{
	XGROW(a->v, a->n + 2, a->cap);
	a->v[a->n++] = xstrdup(s);
	a->v[a->n] = NULL;
}

void cr_argv_pushf(struct cr_argv *a, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	char *s = xvasprintf(fmt, ap);
	va_end(ap);
	cr_argv_push(a, s);
	free(s);
}

void cr_argv_free(struct cr_argv *a)
{
	for (size_t i = 0; i < a->n; i++)
		free(a->v[i]);
	free(a->v);
	memset(a, 0, sizeof(*a));
}

/* --- termination requests ------------------------------------------------------------------ */

static bool catching;
static volatile sig_atomic_t terminated;
static volatile sig_atomic_t running_group;

static void on_termination(int sig)
{
	if (!terminated)
		terminated = sig;
	if (running_group > 0) /* its process group: a wrapper script's children too */
		kill(-(pid_t)running_group, sig);
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
static void track_group(pid_t pid)
{
	running_group = pid;
	if (terminated)
		kill(-pid, terminated);
}

double cr_now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

struct cr_progress cr_progress_start(void)
{
	double t = cr_now_s();
	return (struct cr_progress){ t, t + CR_PROGRESS_EVERY_S };
}

double cr_progress_due(struct cr_progress *p)
{
	double t = cr_now_s();
	if (t < p->next)
		return 0;
	p->next = t + CR_PROGRESS_EVERY_S;
	return t - p->start < 1 ? 1 : t - p->start;
}

#define SLEEP_SLICE_MS 200 /* how soon a termination request that just missed a wake-up is seen */

int cr_sleep_ms(long ms, bool at_termination)
{
	while (ms > 0) {
		if (at_termination && terminated)
			return -1;
		long slice = ms < SLEEP_SLICE_MS ? ms : SLEEP_SLICE_MS;
		struct timespec ts = { slice / 1000, (slice % 1000) * 1000000L };
		if (nanosleep(&ts, NULL) && errno != EINTR)
			return -1;
		ms -= slice;
	}
	return at_termination && terminated ? -1 : 0;
}

/* --- children ------------------------------------------------------------------------------ */

static const char *what_of(const struct cr_child *c)
{
	return c->what ? c->what : c->argv[0];
}

/* Without a handler for termination requests, a terminal's ^C reaches the child directly,
 * as it does any command's: it must then stay in the terminal's process group. */
static bool own_group(const struct cr_child *c)
{
	return c->own_group && catching;
}

static int spawn(struct cr_child *c, int write_end)
{
	posix_spawn_file_actions_t fa;
	posix_spawn_file_actions_init(&fa);
	if (write_end >= 0) {
		posix_spawn_file_actions_adddup2(&fa, write_end, 1);
		if (c->merge_stderr)
			posix_spawn_file_actions_adddup2(&fa, write_end, 2);
	}
	if (c->cwd)
		posix_spawn_file_actions_addchdir_np(&fa, c->cwd);
	posix_spawnattr_t attr;
	posix_spawnattr_init(&attr);
	if (own_group(c)) {
		posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP);
		posix_spawnattr_setpgroup(&attr, 0);
	}
	int err = posix_spawnp(&c->pid, c->argv[0], &fa, &attr, c->argv,
			       c->envp ? c->envp : environ);
	posix_spawnattr_destroy(&attr);
	posix_spawn_file_actions_destroy(&fa);
	return err;
}

int cr_child_start(struct cr_child *c)
{
	int fds[2] = { -1, -1 };
	c->pid = -1;
	c->out = -1;
	if (c->capture && pipe2(fds, O_CLOEXEC)) {
		cr_error("cannot run %s: pipe: %s", what_of(c), strerror(errno));
		return -1;
	}
	int err = spawn(c, fds[1]);
	if (fds[1] >= 0)
		close(fds[1]);
	if (err) {
		if (fds[0] >= 0)
			close(fds[0]);
		cr_error("cannot run %s%s%s: %s", what_of(c), c->cwd ? " in " : "",
			 c->cwd ? c->cwd : "", strerror(err));
		c->pid = -1;
		return -1;
	}
	c->out = fds[0];
	if (own_group(c))
		track_group(c->pid);
	return 0;
}

int cr_child_finish(struct cr_child *c)
{
	if (c->out >= 0) {
		close(c->out);
		c->out = -1;
	}
	int status = 0, rc;
	bool waited = true;
	while (waitpid(c->pid, &status, 0) < 0)
		if (errno != EINTR) {
			cr_error("cannot wait for %s: %s", what_of(c), strerror(errno));
			waited = false;
			break;
		}
	if (running_group == c->pid)
		running_group = 0;
	if (!waited) {
		rc = -1;
	} else if (WIFSIGNALED(status)) {
		cr_error("%s was killed by signal %d", what_of(c), WTERMSIG(status));
		rc = 128 + WTERMSIG(status);
	} else {
		rc = WEXITSTATUS(status);
	}
	c->pid = -1;
	return rc;
}

int cr_child_run(struct cr_child *c)
{
	c->capture = false;
	return cr_child_start(c) ? -1 : cr_child_finish(c);
}

/* Reads fd to its end: every byte into *all, and each line to on_line as it arrives. */
static void read_lines(int fd, struct cr_buf *all, void (*on_line)(const char *, void *),
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
		if (!on_line)
			continue;
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
	if (pending.data)
		explicit_bzero(pending.data, pending.cap);
	cr_buf_free(&pending);
}

int cr_child_capture(struct cr_child *c, struct cr_buf *all,
		     void (*on_line)(const char *line, void *user), void *user)
{
	c->capture = true;
	if (cr_child_start(c))
		return -1;
	read_lines(c->out, all, on_line, user);
	return cr_child_finish(c);
}

/* --- environments -------------------------------------------------------------------------- */

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

char *cr_self_exe(void)
{
	char buf[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", buf, sizeof(buf) - 1);
	if (n <= 0)
		return NULL;
	return xstrndup(buf, (size_t)n);
}

char *cr_find_program(const char *name)
{
	if (strchr(name, '/'))
		return access(name, X_OK) ? NULL : xstrdup(name);
	const char *path = getenv("PATH");
	for (const char *dir = path ? path : "/usr/bin:/bin"; dir;) {
		const char *end = strchr(dir, ':');
		size_t len = end ? (size_t)(end - dir) : strlen(dir);
		char *p = xasprintf("%.*s/%s", (int)len, len ? dir : ".", name);
		if (!access(p, X_OK))
			return p;
		free(p);
		dir = end ? end + 1 : NULL;
	}
	return NULL;
}
