/* file: reading files and descriptors whole (file.h). */
#include "file.h"
#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

int cr_read_fd(int fd, struct cr_buf *b, const char *what)
{
	for (;;) {
		cr_buf_reserve(b, 65536);
		ssize_t n = read(fd, b->data + b->len, b->cap - b->len - 1);
		if (n == 0)
			break;
		if (n < 0) {
			if (errno == EINTR)
				continue;
			cr_error("cannot read %s: %s", what, strerror(errno));
			return -1;
		}
		b->len += (size_t)n;
	}
	b->data[b->len] = '\0';
	return 0;
}

int cr_read_file(const char *path, struct cr_buf *b)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		cr_error("cannot open %s: %s", path, strerror(errno));
		return -1;
	}
	int rc = cr_read_fd(fd, b, path);
	close(fd);
	return rc;
}
