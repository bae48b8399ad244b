/* dynlib: libcurl and libpq behind their own names, loaded on the first call (see dynlib.h). */
#define CURL_DISABLE_TYPECHECK /* the header's type-checking macros would hide our definitions */
#include "dynlib.h"
#include "log.h"

#include <curl/curl.h>
#include <dlfcn.h>
#include <libpq-fe.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct lib {
	const char *soname, *package;
	pthread_once_t once;
	void *handle;
};

static struct lib curl_lib = { "libcurl.so.4", "libcurl4", PTHREAD_ONCE_INIT, NULL };
static struct lib pq_lib = { "libpq.so.5", "libpq5", PTHREAD_ONCE_INIT, NULL };

#if defined(__SANITIZE_ADDRESS__)
#define UNDER_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define UNDER_ASAN 1
#endif
#endif

static void close_libs(void);

static void register_close(void)
{
	atexit(close_libs);
}

/* At exit, after every other use: what the libraries and the loader allocated for them is
 * then freed, so that valgrind sees no block still reachable. Not under AddressSanitizer:
 * its leak check runs after the exit handlers and reads the thread-local storage of every
 * module it knows, and one unloaded by then crashes it (it reports no reachable blocks
 * anyway). */
static void close_libs(void)
{
#ifndef UNDER_ASAN
	if (curl_lib.handle)
		dlclose(curl_lib.handle);
	if (pq_lib.handle)
		dlclose(pq_lib.handle);
#endif
}

static void open_lib(struct lib *l)
{
	static pthread_once_t at_exit = PTHREAD_ONCE_INIT;
	l->handle = dlopen(l->soname, RTLD_NOW | RTLD_LOCAL);
	if (l->handle)
		pthread_once(&at_exit, register_close);
}

static void open_curl(void)
{
	open_lib(&curl_lib);
}

static void open_pq(void)
{
	open_lib(&pq_lib);
}

/* As the dynamic loader would at start-up, a missing library ends the program. */
static void *symbol(struct lib *l, void (*open)(void), const char *name)
{
	pthread_once(&l->once, open);
	void *sym = l->handle ? dlsym(l->handle, name) : NULL;
	if (!sym) {
		const char *why = dlerror();
		cr_error("cannot load %s from %s (apt-get install %s): %s", name, l->soname,
			 l->package, why ? why : "not found");
		_exit(127);
	}
	return sym;
}

/* The address of a library function, resolved on its first call; wrappers may run on
 * several threads at once. */
static void *resolve(void *_Atomic *slot, struct lib *l, void (*open)(void), const char *name)
{
	void *p = atomic_load_explicit(slot, memory_order_acquire);
	if (!p) {
		p = symbol(l, open, name);
		atomic_store_explicit(slot, p, memory_order_release);
	}
	return p;
}

/* POSIX guarantees that dlsym's data pointer holds a function's address. */
#define RESOLVE(fn, lib, open, name)                                                      \
	do {                                                                              \
		static void *_Atomic slot_;                                               \
		void *p_ = resolve(&slot_, &lib, open, name);                             \
		memcpy(&fn, &p_, sizeof(fn));                                             \
	} while (0)
#define FORWARD(lib, open, ret, name, params, args)                                      \
	ret name params                                                                   \
	{                                                                                 \
		ret(*fn) params;                                                          \
		RESOLVE(fn, lib, open, #name);                                            \
		return fn args;                                                           \
	}
#define FORWARD_VOID(lib, open, name, params, args)                                       \
	void name params                                                                  \
	{                                                                                 \
		void(*fn) params;                                                         \
		RESOLVE(fn, lib, open, #name);                                            \
		fn args;                                                                  \
	}
#define CURL_FN(ret, name, params, args) FORWARD(curl_lib, open_curl, ret, name, params, args)
#define CURL_VOID(name, params, args) FORWARD_VOID(curl_lib, open_curl, name, params, args)
#define PQ_FN(ret, name, params, args) FORWARD(pq_lib, open_pq, ret, name, params, args)
#define PQ_VOID(name, params, args) FORWARD_VOID(pq_lib, open_pq, name, params, args)

/* --- libcurl -------------------------------------------------------------------------------- */
CURL_FN(CURLcode, curl_global_init, (long flags), (flags))
CURL_VOID(curl_global_cleanup, (void), ())
CURL_FN(CURL *, curl_easy_init, (void), ())
CURL_VOID(curl_easy_cleanup, (CURL * h), (h))
CURL_FN(CURLcode, curl_easy_perform, (CURL * h), (h))
CURL_FN(const char *, curl_easy_strerror, (CURLcode c), (c))
CURL_FN(struct curl_slist *, curl_slist_append, (struct curl_slist * l, const char *s), (l, s))
CURL_VOID(curl_slist_free_all, (struct curl_slist * l), (l))

/* The variadic two read their one argument by the type the option number says, as libcurl
 * itself does. */
CURLcode curl_easy_setopt(CURL *h, CURLoption opt, ...)
{
	CURLcode (*fn)(CURL *, CURLoption, ...);
	RESOLVE(fn, curl_lib, open_curl, "curl_easy_setopt");
	va_list ap;
	va_start(ap, opt);
	CURLcode rc;
	if (opt < CURLOPTTYPE_OBJECTPOINT)
		rc = fn(h, opt, va_arg(ap, long));
	else if (opt >= CURLOPTTYPE_FUNCTIONPOINT && opt < CURLOPTTYPE_OFF_T)
		rc = fn(h, opt, va_arg(ap, void (*)(void)));
	else if (opt >= CURLOPTTYPE_OFF_T && opt < CURLOPTTYPE_BLOB)
		rc = fn(h, opt, va_arg(ap, curl_off_t));
	else
		rc = fn(h, opt, va_arg(ap, void *));
	va_end(ap);
	return rc;
}

CURLcode curl_easy_getinfo(CURL *h, CURLINFO info, ...)
{
	CURLcode (*fn)(CURL *, CURLINFO, ...);
	RESOLVE(fn, curl_lib, open_curl, "curl_easy_getinfo");
	va_list ap;
	va_start(ap, info);
	CURLcode rc = fn(h, info, va_arg(ap, void *));
	va_end(ap);
	return rc;
}

/* --- libpq ---------------------------------------------------------------------------------- */
PQ_FN(PGconn *, PQconnectdbParams,
      (const char *const *keys, const char *const *values, int expand_dbname),
      (keys, values, expand_dbname))
PQ_FN(PGPing, PQpingParams, (const char *const *keys, const char *const *values, int expand_dbname),
      (keys, values, expand_dbname))
PQ_VOID(PQfinish, (PGconn * c), (c))
PQ_FN(ConnStatusType, PQstatus, (const PGconn *c), (c))
PQ_FN(char *, PQerrorMessage, (const PGconn *c), (c))
PQ_FN(char *, PQdb, (const PGconn *c), (c))
PQ_FN(PQnoticeReceiver, PQsetNoticeReceiver, (PGconn * c, PQnoticeReceiver r, void *arg),
      (c, r, arg))
PQ_FN(PQconninfoOption *, PQconninfoParse, (const char *s, char **err), (s, err))
PQ_VOID(PQconninfoFree, (PQconninfoOption * o), (o))
PQ_FN(PGresult *, PQexec, (PGconn * c, const char *q), (c, q))
PQ_FN(PGresult *, PQexecParams,
      (PGconn * c, const char *q, int n, const Oid *types, const char *const *values,
       const int *lengths, const int *formats, int result_format),
      (c, q, n, types, values, lengths, formats, result_format))
PQ_FN(ExecStatusType, PQresultStatus, (const PGresult *r), (r))
PQ_FN(char *, PQresultErrorMessage, (const PGresult *r), (r))
PQ_FN(char *, PQresultErrorField, (const PGresult *r, int field), (r, field))
PQ_FN(int, PQntuples, (const PGresult *r), (r))
PQ_FN(char *, PQgetvalue, (const PGresult *r, int row, int col), (r, row, col))
PQ_FN(int, PQgetisnull, (const PGresult *r, int row, int col), (r, row, col))
PQ_VOID(PQclear, (PGresult * r), (r))
PQ_FN(char *, PQescapeIdentifier, (PGconn * c, const char *s, size_t len), (c, s, len))
PQ_VOID(PQfreemem, (void *p), (p))
