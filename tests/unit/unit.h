/* A minimal unit-test harness: TEST(name) registers a function; `unit-tests --list` lists
 * them and `unit-tests NAME...` runs some (all when none is named). tests/test_unit.py runs
 * each as its own pytest case. */
#ifndef CR_UNIT_H
#define CR_UNIT_H

#include <stdio.h>
#include <string.h>

struct unit_test {
	const char *name;
	void (*fn)(void);
};

void unit_register(const char *name, void (*fn)(void));

/* A fresh directory /tmp/<prefix>-XXXXXX (caller frees; aborts if none can be made), and
 * its removal with everything in it. */
char *unit_tmpdir(const char *prefix);
void unit_rmtree(const char *path);
/* unit_rmtree, then free. */
void unit_drop_dir(char *dir);
extern int unit_failures;

#define TEST(name)                                                                       \
	static void test_##name(void);                                                   \
	__attribute__((constructor)) static void register_##name(void)                   \
	{                                                                                \
		unit_register(#name, test_##name);                                       \
	}                                                                                \
	static void test_##name(void)

#define CHECK(cond)                                                                      \
	do {                                                                             \
		if (!(cond)) {                                                           \
			fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, \
				#cond);                                                  \
			unit_failures++;                                                 \
		}                                                                        \
	} while (0)

#define CHECK_STR(got, want)                                                             \
	do {                                                                             \
		const char *g_ = (got), *w_ = (want);                                    \
		if (!g_ || !w_ || strcmp(g_, w_) != 0) {                                 \
			fprintf(stderr, "%s:%d: got \"%s\", want \"%s\"\n", __FILE__,    \
				__LINE__, g_ ? g_ : "(null)", w_ ? w_ : "(null)");       \
			unit_failures++;                                                 \
		}                                                                        \
	} while (0)

#endif
