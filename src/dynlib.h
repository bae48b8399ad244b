/* dynlib: libcurl and libpq are loaded on the first call into them, not at start-up.
 * Linked the usual way they pull in TLS, Kerberos and LDAP libraries whose relocation and
 * constructors cost every run about 4 ms and 7 MB of memory, and the post-renderer, the
 * command Helm runs on every render, needs neither. dynlib.c defines the functions
 * chartreuse calls under the libraries' own names, so the other modules read as plain
 * libcurl and libpq code; a missing library ends the program with exit status 127 and a
 * line naming it, as the dynamic loader would have at start-up. A new libcurl or libpq
 * function needs its wrapper there (the link fails until it has one). */
#ifndef CR_DYNLIB_H
#define CR_DYNLIB_H
#endif
