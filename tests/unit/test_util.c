#include "unit.h"
#include "util.h"

#include <stdlib.h>

/* Dirties the heap chunk the next small allocation is likely to get. */
static void dirty_heap(void)
{
	char *p = malloc(64);
	memset(p, 'x', 64);
	free(p);
}

TEST(detaching_a_buffer_nothing_was_added_to_gives_an_empty_string)
{
	dirty_heap();
	struct cr_buf b = { 0 };
	char *s = cr_buf_detach(&b, NULL);
	CHECK_STR(s, "");
	free(s);
	dirty_heap();
	cr_buf_reserve(&b, 10);
	CHECK_STR(b.data, "");
	cr_buf_free(&b);
}
