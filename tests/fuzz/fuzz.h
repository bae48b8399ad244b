/* fuzz: what the libFuzzer targets share. Each target is one file, fuzz_<name>.c, linked
 * alone with the library objects, so the helpers here are static inline.
 *
 * Messages are muted (every rejected input would print a line, which costs more than the
 * parsing), secrets registered by one input are dropped before the next, and files a
 * target must write go to a private directory (on /dev/shm when there is one). */
#ifndef CR_FUZZ_H
#define CR_FUZZ_H

#include "log.h"
#include "util.h"

#include <dirent.h>
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Mutes the messages of this (the fuzzing) thread. */
static inline void fz_quiet(void)
{
	cr_log_mute(true);
}

static char fz_dir_path[256];

/* Removes the files of dir and of its subdirectories (one level: all the targets make). */
static inline void fz_remove_tree(const char *dir, int depth)
{
	DIR *d = opendir(dir);
	if (!d)
		return;
	for (struct dirent *e; (e = readdir(d));) {
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		char *path = xasprintf("%s/%s", dir, e->d_name);
		if (unlink(path) != 0 && depth > 0)
			fz_remove_tree(path, depth - 1);
		free(path);
	}
	closedir(d);
	rmdir(dir);
}

static inline void fz_cleanup(void)
{
	fz_remove_tree(fz_dir_path, 1);
}

/* A directory of this process's own ($FUZZ_TMPDIR, else /dev/shm, else /tmp), created on
 * first use and removed at exit; a crash leaves it behind, which is why scripts/fuzz.sh
 * points FUZZ_TMPDIR into a directory it removes itself. */
static inline const char *fz_dir(void)
{
	char *dir = fz_dir_path;
	if (!dir[0]) {
		const char *base = getenv("FUZZ_TMPDIR");
		if (!base || !*base)
			base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
		snprintf(dir, sizeof(fz_dir_path), "%s/chartreuse-fuzz-%ld", base, (long)getpid());
		if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
			perror(dir);
			abort();
		}
		atexit(fz_cleanup);
	}
	return dir;
}

/* <fz_dir()>/<name>, which the caller frees. */
static inline char *fz_path(const char *name)
{
	return xasprintf("%s/%s", fz_dir(), name);
}

/* Writes data to <fz_dir()>/<name> (replacing it); the path, which the caller frees. */
static inline char *fz_write(const char *name, const void *data, size_t len)
{
	char *path = fz_path(name);
	FILE *f = fopen(path, "wb");
	if (!f || (len && fwrite(data, 1, len, f) != len) || fclose(f) != 0) {
		perror(path);
		abort();
	}
	return path;
}

/* The input cut at each occurrence of sep, at most max pieces (the last one keeps the
 * rest); pieces point into data. */
struct fz_piece {
	const char *s;
	size_t len;
};

static inline size_t fz_split(const uint8_t *data, size_t size, const char *sep,
			      struct fz_piece *out, size_t max)
{
	const char *p = (const char *)data, *end = p + size;
	size_t n = 0, seplen = strlen(sep);
	while (n + 1 < max) {
		const char *hit = NULL;
		for (const char *q = p; q + seplen <= end; q++)
			if (!memcmp(q, sep, seplen)) {
				hit = q;
				break;
			}
		if (!hit)
			break;
		out[n++] = (struct fz_piece){ p, (size_t)(hit - p) };
		p = hit + seplen;
	}
	out[n++] = (struct fz_piece){ p, (size_t)(end - p) };
	return n;
}

#endif
