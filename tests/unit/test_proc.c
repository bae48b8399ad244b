/* src/proc.c: one spawn API (exit codes, signals, working directory, environment, capture,
 * descriptors), argv building, and sleeping that a termination request cuts short. */
#include "proc.h"
#include "unit.h"
#include "util.h"

#include <fcntl.h>
#include <stdbool.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static int sh(const char *script, struct cr_buf *out, bool merge, const char *cwd,
	      char *const *envp)
{
	char *argv[] = { "/bin/sh", "-c", (char *)script, NULL };
	struct cr_child c = { .argv = argv, .envp = envp, .cwd = cwd, .what = "the test shell",
			      .merge_stderr = merge };
	return out ? cr_child_capture(&c, out, NULL, NULL) : cr_child_run(&c);
}

/* Under valgrind, posix_spawn runs as fork and exec: a program that can't be started is a
 * child that exits (with valgrind's leak report of the copy), not a spawn error. */
static bool under_valgrind(void)
{
	const char *preload = getenv("LD_PRELOAD");
	return preload && strstr(preload, "vgpreload");
}

TEST(child_exit_status_and_signals_follow_one_convention)
{
	CHECK(sh("exit 0", NULL, false, NULL, NULL) == 0);
	CHECK(sh("exit 7", NULL, false, NULL, NULL) == 7);
	CHECK(sh("kill -TERM $$", NULL, false, NULL, NULL) == 128 + SIGTERM);
	char *argv[] = { "/nonexistent/program", NULL };
	struct cr_child c = { .argv = argv };
	if (!under_valgrind())
		CHECK(cr_child_run(&c) == -1);
}

struct lines {
	struct cr_strlist got;
};

static void note_line(const char *line, void *user)
{
	cr_strlist_add(&((struct lines *)user)->got, line);
}

TEST(child_capture_gives_every_byte_and_each_line)
{
	char *argv[] = { "/bin/sh", "-c", "printf 'one\\ntwo\\n'; echo err >&2; printf three",
			 NULL };
	struct cr_child c = { .argv = argv, .merge_stderr = true };
	struct cr_buf all = { 0 };
	struct lines l = { 0 };
	CHECK(cr_child_capture(&c, &all, note_line, &l) == 0);
	CHECK_STR(all.data, "one\ntwo\nerr\nthree");
	CHECK(l.got.n == 4);
	if (l.got.n == 4)
		CHECK_STR(l.got.items[3], "three");
	cr_strlist_free(&l.got);
	cr_buf_free(&all);
}

TEST(child_cwd_env_and_descriptors)
{
	struct cr_buf out = { 0 };
	CHECK(sh("pwd", &out, false, "/usr", NULL) == 0);
	CHECK_STR(out.data, "/usr\n");
	cr_buf_reset(&out);
	const char *set[] = { "CR_PROC_TEST=a b", "HOME=/nowhere" };
	struct cr_env e;
	cr_env_with(&e, set, 2);
	CHECK(sh("printf '%s|%s' \"$CR_PROC_TEST\" \"$HOME\"", &out, false, NULL, e.envp) == 0);
	CHECK_STR(out.data, "a b|/nowhere");
	cr_env_free(&e);
	/* Neither end of the capture pipe but the child's stdout, nor a descriptor opened
	 * close-on-exec, reaches the child. */
	cr_buf_free(&out);
	int null = open("/dev/null", O_RDONLY | O_CLOEXEC);
	int keep = fcntl(null, F_DUPFD_CLOEXEC, 200); /* above what ls opens itself */
	close(null);
	/* Probed with stat only: an ls (or a glob, or a pipeline) would open descriptors of
	 * its own, whose numbers may be those looked for. */
	char *ls[] = { "/bin/sh", "-c",
		       "n=0; while [ $n -lt 256 ]; do [ -e /proc/$$/fd/$n ] && printf '%s ' $n; "
		       "n=$((n + 1)); done; true",
		       NULL };
	struct cr_child lc = { .argv = ls, .capture = true };
	CHECK(cr_child_start(&lc) == 0);
	char listing[1024] = " ";
	size_t len = 1;
	ssize_t got;
	while (len < sizeof(listing) - 1 &&
	       (got = read(lc.out, listing + len, sizeof(listing) - 1 - len)) > 0)
		len += (size_t)got;
	listing[len] = '\0';
	int read_end = lc.out;
	CHECK(cr_child_finish(&lc) == 0);
	char word[16];
	snprintf(word, sizeof(word), " %d ", read_end);
	CHECK(strstr(listing, word) == NULL);
	snprintf(word, sizeof(word), " %d ", keep);
	CHECK(strstr(listing, word) == NULL);
	CHECK(strstr(listing, " 1 ") != NULL);
	close(keep);
	char *missing_dir[] = { "/bin/true", NULL };
	struct cr_child c = { .argv = missing_dir, .cwd = "/nonexistent-dir" };
	if (!under_valgrind())
		CHECK(cr_child_run(&c) == -1);
}

TEST(argv_is_always_null_terminated)
{
	struct cr_argv a = { 0 };
	cr_argv_push(&a, "x");
	for (int i = 0; i < 20; i++)
		cr_argv_pushf(&a, "--n=%d", i);
	CHECK(a.n == 21 && a.v[21] == NULL);
	CHECK_STR(a.v[20], "--n=19");
	cr_argv_free(&a);
	CHECK(a.v == NULL && a.n == 0);
}

/* In a child process: the termination flag stays set once raised. */
TEST(sleep_ends_at_a_termination_request)
{
	pid_t pid = fork();
	if (pid == 0) {
		cr_proc_catch_termination();
		struct timespec t0, t1;
		clock_gettime(CLOCK_MONOTONIC, &t0);
		if (fork() == 0) { /* sends the request while its parent sleeps */
			usleep(300 * 1000);
			kill(getppid(), SIGTERM);
			_exit(0);
		}
		int rc = cr_sleep_ms(20000, true);
		clock_gettime(CLOCK_MONOTONIC, &t1);
		double waited = (double)(t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9;
		_exit(rc == -1 && cr_terminated() == SIGTERM && waited < 10 ? 0 : 1);
	}
	int status;
	CHECK(waitpid(pid, &status, 0) == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0);
	CHECK(cr_sleep_ms(10, true) == 0);
}

/* The pause before a retry that may bring the service back up is kept whole. */
TEST(sleep_goes_on_through_a_termination_request_when_asked)
{
	pid_t pid = fork();
	if (pid == 0) {
		cr_proc_catch_termination();
		raise(SIGTERM);
		struct timespec t0, t1;
		clock_gettime(CLOCK_MONOTONIC, &t0);
		int rc = cr_sleep_ms(600, false);
		clock_gettime(CLOCK_MONOTONIC, &t1);
		double waited = (double)(t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9;
		_exit(rc == 0 && cr_terminated() == SIGTERM && waited >= 0.59 ? 0 : 1);
	}
	int status;
	CHECK(waitpid(pid, &status, 0) == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0);
}
