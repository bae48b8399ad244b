#include "unit.h"
#include "util.h"

#include <dirent.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include <stdbool.h>
#include <stdlib.h>

static struct unit_test tests[256];
static int n_tests;
int unit_failures;

void unit_register(const char *name, void (*fn)(void))
{
	if (n_tests < (int)(sizeof(tests) / sizeof(tests[0])))
		tests[n_tests++] = (struct unit_test){ name, fn };
}

char *unit_tmpdir(const char *prefix)
{
	char *tmpl = xasprintf("/tmp/%s-XXXXXX", prefix);
	if (!mkdtemp(tmpl)) {
		perror("mkdtemp");
		abort();
	}
	return tmpl;
}

void unit_rmtree(const char *path)
{
	struct stat st;
	if (lstat(path, &st) == 0 && S_ISDIR(st.st_mode)) {
		DIR *d = opendir(path);
		for (struct dirent *e; d && (e = readdir(d));) {
			if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) {
				char *sub = xasprintf("%s/%s", path, e->d_name);
				unit_rmtree(sub);
				free(sub);
			}
		}
		if (d)
			closedir(d);
		rmdir(path);
	} else {
		unlink(path);
	}
}

void unit_drop_dir(char *dir)
{
	unit_rmtree(dir);
	free(dir);
}

static int run(const struct unit_test *t)
{
	int before = unit_failures;
	t->fn();
	int failed = unit_failures != before;
	printf("%s %s\n", failed ? "FAIL" : "ok", t->name);
	return failed;
}

int main(int argc, char **argv)
{
	if (argc > 1 && !strcmp(argv[1], "--list")) {
		for (int i = 0; i < n_tests; i++)
			printf("%s\n", tests[i].name);
		return 0;
	}
	int failed = 0, ran = 0;
	for (int i = 0; i < n_tests; i++) {
		bool wanted = argc == 1;
		for (int a = 1; a < argc; a++)
			wanted = wanted || !strcmp(argv[a], tests[i].name);
		if (wanted) {
			failed += run(&tests[i]);
			ran++;
		}
	}
	if (!ran) {
		fprintf(stderr, "no test matched\n");
		return 2;
	}
	return failed ? 1 : 0;
}
