/* file: whole files and descriptors read into a buffer, failures reported with the file's
 * name (util.h has the buffers; this is apart because it reports, through log.h). */
#ifndef CR_FILE_H
#define CR_FILE_H

#include "util.h"

/* Appends everything fd gives until its end to b (NUL-terminated); what names it in the
 * error. 0, or -1 (reported). */
int cr_read_fd(int fd, struct cr_buf *b, const char *what);
/* The same for the file at path. */
int cr_read_file(const char *path, struct cr_buf *b);

#endif
