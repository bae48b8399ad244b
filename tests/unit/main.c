#include "unit.h"

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
