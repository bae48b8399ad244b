/* `chartreuse wait postgres|elasticsearch`: what the migration Job's init containers run,
 * so that the Job starts only once its database and its Elasticsearch answer, and fails
 * with one clear line at a deadline instead of looping forever. */
#include "cmd.h"
#include "es.h"
#include "log.h"
#include "pg.h"
#include "proc.h"
#include "url.h"
#include "util.h"

#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#define DEFAULT_TIMEOUT_S 60

struct wait_opts {
	const char *name;
	const char *url;
	const char *url_env;
	int timeout_s;
};

static int parse_timeout(const char *s, int *out)
{
	char *end;
	errno = 0;
	long v = strtol(s, &end, 10);
	if (!*s || *end || errno || v < 0 || v > INT_MAX) {
		cr_error("wait: --timeout needs a number of seconds, not '%s'", s);
		return -1;
	}
	*out = (int)v;
	return 0;
}

/* 0, 1 for --help, or 2 after reporting bad usage. */
static int parse(int argc, char **argv, struct wait_opts *o)
{
	const char *timeout = NULL;
	const struct {
		const char *flag;
		const char **value;
	} flags[] = { { "--name", &o->name },
		      { "--url", &o->url },
		      { "--url-env", &o->url_env },
		      { "--timeout", &timeout } };
	for (int i = 2; i < argc; i++) {
		if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help"))
			return 1;
		int r = 0;
		for (size_t f = 0; !r && f < sizeof(flags) / sizeof(flags[0]); f++)
			r = cr_opt_value(argc, argv, &i, flags[f].flag, flags[f].value);
		if (r < 0)
			return 2;
		if (!r) {
			cr_error("wait: unknown option %s", argv[i]);
			return 2;
		}
	}
	if (timeout && parse_timeout(timeout, &o->timeout_s) < 0)
		return 2;
	if (!o->url == !o->url_env) {
		cr_error("wait %s: give the server's URL with --url or --url-env (one)", argv[1]);
		return 2;
	}
	return 0;
}

/* The variable that may hold the password apart from the URL: CHARTREUSE_DB_0_URL ->
 * CHARTREUSE_DB_0_PASSWORD (what the injected Job's Secret provides). */
static char *password_env_name(const char *url_env)
{
	size_t n = strlen(url_env);
	if (n >= 4 && !strcmp(url_env + n - 4, "_URL"))
		return xasprintf("%.*s_PASSWORD", (int)(n - 4), url_env);
	return xasprintf("%s_PASSWORD", url_env);
}

/* The URL to wait for, NULL after reporting. Caller frees. */
static char *url_from(const struct wait_opts *o, const char *service)
{
	if (o->url)
		return xstrdup(o->url);
	const char *url = getenv(o->url_env);
	if (!cr_nonempty(url)) {
		cr_error("wait %s: the environment variable %s (--url-env) is not set", service,
			 o->url_env);
		return NULL;
	}
	char *pw_env = password_env_name(o->url_env);
	char *full = cr_url_normalized(url, getenv(pw_env));
	free(pw_env);
	return full;
}

static int wait_for(int argc, char **argv, bool postgres)
{
	struct wait_opts o = { .name = "main", .timeout_s = DEFAULT_TIMEOUT_S };
	int rc = parse(argc, argv, &o);
	if (rc)
		return rc == 1 ? cr_usage("wait", 0) : rc;
	char *url = url_from(&o, argv[1]);
	if (!url)
		return 2;
	cr_proc_catch_termination(); /* PID 1 of an init container: SIGTERM needs a handler */
	if (postgres)
		rc = cr_pg_wait(o.name, url, o.timeout_s) == 0 ? 0 : 1;
	else
		rc = cr_es_wait(url, o.timeout_s) == 0 ? 0 : 1;
	free(url);
	return cr_terminated() ? 128 + cr_terminated() : rc;
}

int cmd_wait(int argc, char **argv)
{
	if (argc < 2) {
		cr_error("wait: which service? chartreuse wait postgres|elasticsearch ... "
			 "(see --help)");
		return 2;
	}
	if (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help"))
		return cr_usage("wait", 0);
	if (!strcmp(argv[1], "postgres") || !strcmp(argv[1], "elasticsearch"))
		return wait_for(argc, argv, !strcmp(argv[1], "postgres"));
	cr_error("wait: unknown service '%s' (postgres or elasticsearch)", argv[1]);
	return 2;
}
