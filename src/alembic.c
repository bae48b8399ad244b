/* alembic: an Alembic project read the way Alembic reads it — the ini through
 * ConfigParser's rules, the revision scripts through a small tokenizer that accepts only
 * what it can evaluate with certainty — and the revision graph built from them. */
/* memmem is a GNU extension. */
#define _GNU_SOURCE
#include "alembic.h"
#include "log.h"
#include "util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ------------------------------------------------------------------------------------ */
/* Paths: Alembic makes them absolute with os.path.abspath, which is purely lexical ("."
 * dropped, ".." pops a component) and never resolves symlinks. */

static char *normpath(const char *abs)
{
	struct cr_buf out = { 0 };
	const char *p = abs;
	while (*p) {
		while (*p == '/')
			p++;
		const char *part = p;
		while (*p && *p != '/')
			p++;
		size_t n = (size_t)(p - part);
		if (n == 0 || (n == 1 && part[0] == '.'))
			continue;
		if (n == 2 && part[0] == '.' && part[1] == '.') {
			while (out.len && out.data[--out.len] != '/')
				;
			if (out.data)
				out.data[out.len] = '\0';
			continue;
		}
		cr_buf_addc(&out, '/');
		cr_buf_add(&out, part, n);
	}
	if (!out.len)
		cr_buf_addc(&out, '/');
	return cr_buf_detach(&out, NULL);
}

/* `path` as Alembic resolves it when run in the absolute directory `base`. */
static char *abspath_in(const char *base, const char *path)
{
	if (path[0] == '/')
		return normpath(path);
	char *joined = xasprintf("%s/%s", base, path);
	char *abs = normpath(joined);
	free(joined);
	return abs;
}

static char *absolute_dir(const char *directory)
{
	if (directory[0] == '/')
		return normpath(directory);
	char cwd[PATH_MAX];
	if (!getcwd(cwd, sizeof(cwd))) {
		cr_error("cannot resolve %s: the current directory is unknown: %s", directory,
			 strerror(errno));
		return NULL;
	}
	return abspath_in(cwd, directory);
}

static char *parent_dir(const char *abs)
{
	const char *slash = strrchr(abs, '/');
	return slash == abs ? xstrdup("/") : xstrndup(abs, (size_t)(slash - abs));
}

static bool ends_with(const char *s, const char *suffix)
{
	size_t n = strlen(s), m = strlen(suffix);
	return n >= m && memcmp(s + n - m, suffix, m) == 0;
}

/* ------------------------------------------------------------------------------------ */
/* The ini file, read as Python's ConfigParser() (the class Alembic uses, with its
 * defaults: "=" and ":" delimiters, full-line "#"/";" comments only, indented continuation
 * lines, strict duplicate checks, lowercased keys, BasicInterpolation). The lines and the
 * span of every option are kept so that a copy can be written with one value changed. */

#define INI_DEFAULT (-1)
#define INI_MAX_DEPTH 10 /* configparser.MAX_INTERPOLATION_DEPTH */

struct ini_line {
	const char *s;
	size_t len; /* without the line break */
};

struct ini_opt {
	int section;	     /* index in ini.sections, or INI_DEFAULT */
	char *key;	     /* lowercased */
	struct cr_buf value; /* raw: continuation lines joined with "\n", not interpolated */
	size_t first, last;  /* the lines the option spans */
};

struct ini_section {
	char *name;
	size_t end; /* the line of the next section header, or the number of lines */
};

struct ini {
	char *path;
	char *here; /* what Alembic passes ConfigParser as the default %(here)s */
	struct cr_buf text;
	struct ini_line *lines;
	size_t n_lines, cap_lines;
	struct ini_section *sections;
	size_t n_sections, cap_sections;
	struct ini_opt *opts;
	size_t n_opts, cap_opts;
};

static bool is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

static size_t indent_of(const char *s, size_t n)
{
	size_t i = 0;
	while (i < n && is_space(s[i]))
		i++;
	return i;
}

static size_t rstrip_len(const char *s, size_t n)
{
	while (n && is_space(s[n - 1]))
		n--;
	return n;
}

static void ini_free(struct ini *ini)
{
	for (size_t i = 0; i < ini->n_sections; i++)
		free(ini->sections[i].name);
	for (size_t i = 0; i < ini->n_opts; i++) {
		free(ini->opts[i].key);
		cr_buf_free(&ini->opts[i].value);
	}
	free(ini->sections);
	free(ini->opts);
	free(ini->lines);
	cr_buf_free(&ini->text);
	free(ini->path);
	free(ini->here);
	memset(ini, 0, sizeof(*ini));
}

/* Python reads text with universal newlines: "\r\n", "\r" and "\n" all end a line. */
static void ini_split_lines(struct ini *ini)
{
	const char *p = ini->text.data, *end = p + ini->text.len;
	while (p < end) {
		const char *s = p;
		while (p < end && *p != '\n' && *p != '\r')
			p++;
		XGROW(ini->lines, ini->n_lines + 1, ini->cap_lines);
		ini->lines[ini->n_lines++] = (struct ini_line){ s, (size_t)(p - s) };
		if (p < end && *p == '\r' && p + 1 < end && p[1] == '\n')
			p++;
		if (p < end)
			p++;
	}
}

static const char *ini_section_name(const struct ini *ini, int section)
{
	return section == INI_DEFAULT ? "DEFAULT" : ini->sections[section].name;
}

static int ini_find_section(const struct ini *ini, const char *name)
{
	for (size_t i = 0; i < ini->n_sections; i++)
		if (strcmp(ini->sections[i].name, name) == 0)
			return (int)i;
	return -2;
}

/* The option as stored in `section` itself (no [DEFAULT] fallback). */
static struct ini_opt *ini_own_opt(const struct ini *ini, int section, const char *key)
{
	for (size_t i = 0; i < ini->n_opts; i++)
		if (ini->opts[i].section == section && strcmp(ini->opts[i].key, key) == 0)
			return &ini->opts[i];
	return NULL;
}

/* "[name]": ConfigParser's SECTCRE, `\[(?P<header>.+)\]` matched at the start of the
 * stripped line, so the header runs to the last "]" and anything after it is ignored. */
static bool ini_header(const char *v, size_t n, const char **name, size_t *name_len)
{
	if (n < 3 || v[0] != '[')
		return false;
	size_t close = n - 1;
	while (close >= 2 && v[close] != ']')
		close--;
	if (close < 2)
		return false;
	*name = v + 1;
	*name_len = close - 1;
	return true;
}

static int ini_start_section(struct ini *ini, size_t line, const char *name, size_t len,
			     int *cur)
{
	char *s = xstrndup(name, len);
	if (strcmp(s, "DEFAULT") == 0) {
		free(s);
		*cur = INI_DEFAULT;
		return 0;
	}
	if (ini_find_section(ini, s) >= 0) {
		cr_error("%s:%zu: section [%s] appears twice", ini->path, line + 1, s);
		free(s);
		return -1;
	}
	XGROW(ini->sections, ini->n_sections + 1, ini->cap_sections);
	ini->sections[ini->n_sections] = (struct ini_section){ s, ini->n_lines };
	*cur = (int)ini->n_sections++;
	return 0;
}

/* "key = value" or "key: value": the key ends at the first delimiter. */
static int ini_start_option(struct ini *ini, size_t line, int section, const char *v,
			    size_t n)
{
	size_t d = 0;
	while (d < n && v[d] != '=' && v[d] != ':')
		d++;
	size_t key_len = rstrip_len(v, d);
	if (d == n || key_len == 0) {
		cr_error("%s:%zu: expected \"[section]\" or \"key = value\", got: %.*s", ini->path,
			 line + 1, (int)n, v);
		return -1;
	}
	char *key = xstrndup(v, key_len);
	for (char *k = key; *k; k++)
		if (*k >= 'A' && *k <= 'Z')
			*k = (char)(*k - 'A' + 'a');
	if (ini_own_opt(ini, section, key)) {
		cr_error("%s:%zu: %s is set twice in [%s]", ini->path, line + 1, key,
			 ini_section_name(ini, section));
		free(key);
		return -1;
	}
	size_t skip = d + 1 + indent_of(v + d + 1, n - d - 1);
	XGROW(ini->opts, ini->n_opts + 1, ini->cap_opts);
	struct ini_opt *o = &ini->opts[ini->n_opts++];
	*o = (struct ini_opt){ section, key, { 0 }, line, line };
	cr_buf_add(&o->value, v + skip, n - skip);
	return 0;
}

/* ConfigParser._read, line by line. */
static int ini_parse(struct ini *ini)
{
	int cur = -2;	    /* no section yet */
	long opt = -1;	    /* index of the option that continuation lines extend */
	size_t indent_level = 0, empties = 0;
	int prev_section = -2;
	for (size_t i = 0; i < ini->n_lines; i++) {
		const char *s = ini->lines[i].s;
		size_t indent = indent_of(s, ini->lines[i].len);
		const char *v = s + indent;
		size_t n = rstrip_len(v, ini->lines[i].len - indent);
		if (n == 0 || v[0] == '#' || v[0] == ';') {
			/* an empty line inside a value is kept if more of the value follows;
			 * a comment line is skipped without ending the value */
			if (n == 0 && opt >= 0)
				empties++;
			continue;
		}
		if (opt >= 0 && indent > indent_level) {
			struct ini_opt *o = &ini->opts[opt];
			for (; empties; empties--)
				cr_buf_addc(&o->value, '\n');
			cr_buf_addc(&o->value, '\n');
			cr_buf_add(&o->value, v, n);
			o->last = i;
			continue;
		}
		empties = 0;
		indent_level = indent;
		const char *name;
		size_t name_len;
		if (ini_header(v, n, &name, &name_len)) {
			if (prev_section >= 0)
				ini->sections[prev_section].end = i;
			if (ini_start_section(ini, i, name, name_len, &cur) < 0)
				return -1;
			prev_section = cur;
			opt = -1;
			continue;
		}
		if (cur == -2) {
			cr_error("%s:%zu: a line before the first [section]", ini->path, i + 1);
			return -1;
		}
		if (ini_start_option(ini, i, cur, v, n) < 0)
			return -1;
		opt = (long)ini->n_opts - 1;
	}
	if (prev_section >= 0)
		ini->sections[prev_section].end = ini->n_lines;
	return 0;
}

static int ini_load(struct ini *ini, const char *path)
{
	memset(ini, 0, sizeof(*ini));
	ini->path = xstrdup(path);
	ini->here = parent_dir(path);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		if (errno == ENOENT)
			cr_error("Alembic config file %s does not exist", path);
		else
			cr_error("cannot open Alembic config file %s: %s", path, strerror(errno));
		return -1;
	}
	int rc = cr_read_fd(fd, &ini->text, path);
	close(fd);
	if (rc == 0) {
		ini_split_lines(ini);
		rc = ini_parse(ini);
	}
	return rc;
}

/* The raw value ConfigParser finds for key in section: the section's own, then
 * [DEFAULT]'s, then the `here` default Alembic passes. NULL when unset. */
static const char *ini_lookup(const struct ini *ini, int section, const char *key)
{
	const struct ini_opt *o = ini_own_opt(ini, section, key);
	if (!o && section != INI_DEFAULT)
		o = ini_own_opt(ini, INI_DEFAULT, key);
	if (o)
		return o->value.data ? o->value.data : "";
	return strcmp(key, "here") == 0 ? ini->here : NULL;
}

/* BasicInterpolation._interpolate_some: "%%" is "%", "%(name)s" is the (interpolated)
 * value of name in the same section or [DEFAULT]; any other "%" is an error. */
static int ini_interpolate(const struct ini *ini, int section, const char *key, const char *s,
			   int depth, struct cr_buf *out)
{
	const char *where = ini_section_name(ini, section);
	if (depth > INI_MAX_DEPTH) {
		cr_error("%s: [%s] %s: %%(...)s references nest more than %d deep", ini->path,
			 where, key, INI_MAX_DEPTH);
		return -1;
	}
	for (const char *pct; (pct = strchr(s, '%'));) {
		cr_buf_add(out, s, (size_t)(pct - s));
		if (pct[1] == '%') {
			cr_buf_addc(out, '%');
			s = pct + 2;
			continue;
		}
		const char *close = pct[1] == '(' ? strchr(pct + 2, ')') : NULL;
		if (!close || close == pct + 2 || close[1] != 's') {
			cr_error("%s: [%s] %s: a %% must be followed by %% or (name)s: %s", ini->path,
				 where, key, pct);
			return -1;
		}
		char *name = xstrndup(pct + 2, (size_t)(close - pct - 2));
		for (char *k = name; *k; k++)
			if (*k >= 'A' && *k <= 'Z')
				*k = (char)(*k - 'A' + 'a');
		const char *v = ini_lookup(ini, section, name);
		int rc = 0;
		if (!v)
			cr_error("%s: [%s] %s refers to %%(%s)s, which is not set", ini->path, where,
				 key, name);
		else if (strchr(v, '%'))
			rc = ini_interpolate(ini, section, key, v, depth + 1, out);
		else
			cr_buf_adds(out, v);
		free(name);
		if (!v || rc < 0)
			return -1;
		s = close + 2;
	}
	cr_buf_adds(out, s);
	return 0;
}

/* ConfigParser.get(section, key): *out is NULL when the key is not set. */
static int ini_get(const struct ini *ini, int section, const char *key, char **out)
{
	*out = NULL;
	const char *raw = ini_lookup(ini, section, key);
	if (!raw)
		return 0;
	struct cr_buf b = { 0 };
	if (ini_interpolate(ini, section, key, raw, 1, &b) < 0) {
		cr_buf_free(&b);
		return -1;
	}
	*out = cr_buf_detach(&b, NULL);
	return 0;
}

/* ------------------------------------------------------------------------------------ */
/* The project: Alembic's ScriptDirectory.from_config, as far as locating the scripts. */

/* "package:path" (relative and with a colon) is an importlib resource to Alembic. */
static bool is_package_resource(const char *loc)
{
	return loc[0] != '/' && strchr(loc, ':') != NULL;
}

static void set_unsupported(struct cr_alembic_project *p, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void set_unsupported(struct cr_alembic_project *p, const char *fmt, ...)
{
	if (p->unsupported)
		return;
	va_list ap;
	va_start(ap, fmt);
	p->unsupported = xvasprintf(fmt, ap);
	va_end(ap);
}

/* Separator names of path_separator (Alembic >= 1.16) / version_path_separator. */
static int separator_of(const char *name, char *sep)
{
	static const struct {
		const char *name;
		char sep;
	} names[] = { { "space", ' ' }, { "newline", '\n' }, { "os", ':' }, { ":", ':' },
		      { ";", ';' } };
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (strcmp(name, names[i].name) == 0) {
			*sep = names[i].sep;
			return 0;
		}
	return -1;
}

/* Alembic's legacy split, re.split(r", *|(?: +)") (and "|:" for prepend_sys_path): a comma
 * and the spaces after it, a run of spaces, or a colon; empty parts stay (Alembic then
 * uses the working directory, as abspath("")). */
static void split_legacy(const char *s, bool on_colon, struct cr_strlist *out)
{
	const char *start = s;
	while (*s) {
		if (*s != ',' && *s != ' ' && !(on_colon && *s == ':')) {
			s++;
			continue;
		}
		char *part = xstrndup(start, (size_t)(s - start));
		cr_strlist_add(out, part);
		free(part);
		if (*s == ':')
			s++;
		else
			for (s += *s == ','; *s == ' '; s++)
				;
		start = s;
	}
	cr_strlist_add(out, start);
}

/* [x.strip() for x in s.split(sep) if x] */
static void split_on(const char *s, char sep, struct cr_strlist *out)
{
	for (;;) {
		const char *e = strchr(s, sep);
		size_t n = e ? (size_t)(e - s) : strlen(s);
		if (n) {
			size_t lead = indent_of(s, n);
			char *part = xstrndup(s + lead, rstrip_len(s + lead, n - lead));
			cr_strlist_add(out, part);
			free(part);
		}
		if (!e)
			return;
		s = e + 1;
	}
}

/* What locating the scripts needs besides the option's value: the section, the directory
 * Alembic runs in, and prepend_sys_path, which importlib searches first for a package. */
struct locator {
	const struct ini *ini;
	int sec;
	const char *dir;
	struct cr_strlist sys_path; /* absolute, in order */
	char *sys_path_doubt;	    /* why the entries are not known for sure, or NULL */
};

static bool same_lists(const struct cr_strlist *a, const struct cr_strlist *b)
{
	if (a->n != b->n)
		return false;
	for (size_t i = 0; i < a->n; i++)
		if (strcmp(a->items[i], b->items[i]) != 0)
			return false;
	return true;
}

/* prepend_sys_path as Alembic 1.8 splits it (legacy, with colons); Alembic >= 1.16 splits
 * it on path_separator when that is set, and then the two readings must agree. */
static int read_sys_path(struct locator *l)
{
	char *s = NULL, *sep_name = NULL;
	if (ini_get(l->ini, l->sec, "prepend_sys_path", &s) < 0 ||
	    (s && ini_get(l->ini, l->sec, "path_separator", &sep_name) < 0)) {
		free(s);
		return -1;
	}
	struct cr_strlist legacy = { 0 }, newer = { 0 };
	if (s && *s)
		split_legacy(s, true, &legacy);
	char sep;
	if (s && *s && sep_name) {
		bool known = separator_of(sep_name, &sep) == 0;
		if (known)
			split_on(s, sep, &newer);
		if (!known || !same_lists(&legacy, &newer))
			l->sys_path_doubt = xasprintf("prepend_sys_path = %s is split one way by "
						      "Alembic 1.8 and another by path_separator = "
						      "%s in newer versions", s, sep_name);
	}
	for (size_t i = 0; i < legacy.n; i++) {
		char *abs = abspath_in(l->dir, legacy.items[i]);
		cr_strlist_add(&l->sys_path, abs);
		free(abs);
	}
	cr_strlist_free(&legacy);
	cr_strlist_free(&newer);
	free(s);
	free(sep_name);
	return 0;
}

/* Top-level names a project's package must not have for its folder to be certain: the
 * standard library (Python 3.10 to 3.13) and what the alembic command imports. Such a
 * module may already be imported when the location is resolved, and then it wins. */
static const char *const preloaded_modules[] = {
	"abc", "aifc", "alembic", "antigravity", "argparse", "array", "ast", "asynchat",
	"asyncio", "asyncore", "atexit", "audioop", "base64", "bdb", "binascii", "binhex",
	"bisect", "builtins", "bz2", "cProfile", "calendar", "cgi", "cgitb", "chunk", "cmath",
	"cmd", "code", "codecs", "codeop", "collections", "colorsys", "compileall", "concurrent",
	"configparser", "contextlib", "contextvars", "copy", "copyreg", "crypt", "csv", "ctypes",
	"curses", "dataclasses", "datetime", "dbm", "decimal", "difflib", "dis", "distutils",
	"doctest", "email", "encodings", "ensurepip", "enum", "errno", "faulthandler", "fcntl",
	"filecmp", "fileinput", "fnmatch", "fractions", "ftplib", "functools", "gc",
	"genericpath", "getopt", "getpass", "gettext", "glob", "graphlib", "greenlet", "grp",
	"gzip", "hashlib", "heapq", "hmac", "html", "http", "idlelib", "imaplib", "imghdr", "imp",
	"importlib", "importlib_metadata", "importlib_resources", "inspect", "io", "ipaddress",
	"itertools", "json", "keyword", "lib2to3", "linecache", "locale", "logging", "lzma",
	"mailbox", "mailcap", "mako", "markupsafe", "marshal", "math", "mimetypes", "mmap",
	"modulefinder", "msilib", "msvcrt", "multiprocessing", "netrc", "nis", "nntplib", "nt",
	"ntpath", "nturl2path", "numbers", "opcode", "operator", "optparse", "os", "ossaudiodev",
	"pathlib", "pdb", "pickle", "pickletools", "pipes", "pkg_resources", "pkgutil",
	"platform", "plistlib", "poplib", "posix", "posixpath", "pprint", "profile", "pstats",
	"pty", "pwd", "py_compile", "pyclbr", "pydoc", "pydoc_data", "pyexpat", "pygments",
	"queue", "quopri", "random", "re", "readline", "reprlib", "resource", "rlcompleter",
	"runpy", "sched", "secrets", "select", "selectors", "setuptools", "shelve", "shlex",
	"shutil", "signal", "site", "sitecustomize", "smtpd", "smtplib", "sndhdr", "socket",
	"socketserver", "spwd", "sqlalchemy", "sqlite3", "sre_compile", "sre_constants",
	"sre_parse", "ssl", "stat", "statistics", "string", "stringprep", "struct", "subprocess",
	"sunau", "symtable", "sys", "sysconfig", "syslog", "tabnanny", "tarfile", "telnetlib",
	"tempfile", "termios", "textwrap", "this", "threading", "time", "timeit", "tkinter",
	"token", "tokenize", "tomli", "tomllib", "trace", "traceback", "tracemalloc", "tty",
	"turtle", "turtledemo", "types", "typing", "typing_extensions", "unicodedata", "unittest",
	"urllib", "usercustomize", "uu", "uuid", "venv", "warnings", "wave", "weakref",
	"webbrowser", "winreg", "winsound", "wsgiref", "xdrlib", "xml", "xmlrpc", "zipapp",
	"zipfile", "zipimport", "zipp", "zlib", "zoneinfo"
};

static int cmp_name(const void *key, const void *item)
{
	return strcmp(key, *(const char *const *)item);
}

static bool may_be_preloaded(const char *top)
{
	size_t n = sizeof(preloaded_modules) / sizeof(*preloaded_modules);
	return top[0] == '_' || bsearch(top, preloaded_modules, n, sizeof(*preloaded_modules),
					cmp_name);
}

/* A dotted name of ASCII identifiers (importlib accepts more; chartreuse looks up these). */
static bool is_dotted_name(const char *s)
{
	bool start = true;
	for (; *s; s++) {
		bool letter = (*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || *s == '_';
		if (*s == '.' && !start)
			start = true;
		else if (letter || (!start && *s >= '0' && *s <= '9'))
			start = false;
		else
			return false;
	}
	return !start;
}

static bool is_kind(const char *path, mode_t kind)
{
	struct stat st;
	return stat(path, &st) == 0 && (st.st_mode & S_IFMT) == kind;
}

/* What Python's path finder makes of `name` in the sys.path entry `entry`, in its order: a
 * folder with __init__.py is a package, else a name.py / .pyc / .so a module, else a
 * folder a namespace portion. A file entry is an archive chartreuse does not look into. */
enum found { F_NONE, F_PACKAGE, F_MODULE, F_NAMESPACE, F_ARCHIVE };

static bool has_module_file(const char *entry, const char *name)
{
	DIR *d = opendir(entry);
	if (!d)
		return false;
	size_t n = strlen(name);
	bool found = false;
	for (struct dirent *e; !found && (e = readdir(d));)
		found = strncmp(e->d_name, name, n) == 0 && e->d_name[n] == '.' &&
			(ends_with(e->d_name, ".py") || ends_with(e->d_name, ".pyc") ||
			 ends_with(e->d_name, ".so"));
	closedir(d);
	return found;
}

static enum found find_in(const char *entry, const char *name)
{
	if (is_kind(entry, S_IFREG))
		return F_ARCHIVE;
	if (!is_kind(entry, S_IFDIR))
		return F_NONE; /* Python skips an entry that does not exist */
	char *base = xasprintf("%s/%s", entry, name), *init = xasprintf("%s/__init__.py", base);
	enum found f = is_kind(init, S_IFREG)	    ? F_PACKAGE
		       : has_module_file(entry, name) ? F_MODULE
		       : is_kind(base, S_IFDIR)	    ? F_NAMESPACE
						    : F_NONE;
	free(base);
	free(init);
	return f;
}

/* The folder of the top-level package `top`: found in exactly one prepend_sys_path entry,
 * as a regular package. */
static char *find_top_package(const struct locator *l, const char *top, char **why)
{
	enum found kind = F_NONE;
	const char *where = NULL, *archive = NULL;
	size_t places = 0;
	for (size_t i = 0; i < l->sys_path.n; i++) {
		const char *entry = l->sys_path.items[i];
		bool again = false;
		for (size_t k = 0; k < i && !again; k++)
			again = strcmp(l->sys_path.items[k], entry) == 0;
		enum found f = again ? F_NONE : find_in(entry, top);
		if (f == F_ARCHIVE && !archive)
			archive = entry;
		if (f != F_NONE && places++ == 0) {
			kind = f;
			where = entry;
		}
	}
	if (archive)
		*why = xasprintf("%s may be in the prepend_sys_path file %s (a zip archive?), "
				 "which chartreuse does not look into", top, archive);
	else if (places == 0)
		*why = xasprintf("%s is not under prepend_sys_path: Python finds it elsewhere on "
				 "sys.path (an installed package?)", top);
	else if (places > 1)
		*why = xasprintf("%s is found in several prepend_sys_path folders", top);
	else if (kind == F_MODULE)
		*why = xasprintf("%s is a module, not a package", top);
	else if (kind == F_NAMESPACE)
		*why = xasprintf("%s has no __init__.py: a namespace package, whose portions may "
				 "lie anywhere on sys.path", top);
	else
		return xasprintf("%s/%s", where, top);
	return NULL;
}

/* An __init__.py that touches __path__, __spec__ or sys.modules (pkgutil.extend_path,
 * lazy-module tricks) can make Python take the package, or its subpackages, elsewhere. */
static bool init_is_plain(const char *pkg_dir, char **why)
{
	static const char *const words[] = { "__path__", "__spec__", "modules" };
	char *init = xasprintf("%s/__init__.py", pkg_dir);
	struct cr_buf text = { 0 };
	int fd = open(init, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || cr_read_fd(fd, &text, init) < 0)
		*why = xasprintf("cannot read %s", init);
	for (size_t i = 0; !*why && i < sizeof(words) / sizeof(*words); i++)
		if (memmem(text.data, text.len, words[i], strlen(words[i])))
			*why = xasprintf("%s mentions %s, so the package may be found elsewhere",
					 init, words[i]);
	if (fd >= 0)
		close(fd);
	cr_buf_free(&text);
	free(init);
	return !*why;
}

/* The folder of the dotted package `pkg`, each level a regular package with a plain
 * __init__.py. */
static char *find_package(const struct locator *l, const char *pkg, char **why)
{
	size_t n = strcspn(pkg, ".");
	char *top = xstrndup(pkg, n);
	char *dir = NULL;
	if (l->sys_path_doubt)
		*why = xstrdup(l->sys_path_doubt);
	else if (!l->sys_path.n)
		*why = xstrdup("without prepend_sys_path the package comes from sys.path, which "
			       "chartreuse does not know");
	else if (may_be_preloaded(top))
		*why = xasprintf("%s may name a module the alembic command has already imported",
				 top);
	else
		dir = find_top_package(l, top, why);
	free(top);
	while (dir && init_is_plain(dir, why) && pkg[n]) {
		const char *sub = pkg + n + 1;
		n += 1 + strcspn(sub, ".");
		char *next = xasprintf("%s/%.*s", dir, (int)(pkg + n - sub), sub);
		char *init = xasprintf("%s/__init__.py", next);
		free(dir);
		dir = next;
		if (!is_kind(init, S_IFREG)) {
			*why = xasprintf("%.*s is not a regular package (no %s)", (int)n, pkg,
					 init);
			free(dir);
			dir = NULL;
		}
		free(init);
	}
	if (dir && *why) {
		free(dir);
		dir = NULL;
	}
	return dir;
}

/* "package:path[:more]" as importlib.resources.files(package) / path / more, or NULL with
 * *why when the folder is not certain. */
static char *resolve_resource(const struct locator *l, const char *loc, char **why)
{
	*why = NULL;
	const char *colon = strchr(loc, ':');
	char *pkg = xstrndup(loc, (size_t)(colon - loc));
	char *dir = NULL;
	if (!is_dotted_name(pkg))
		*why = xasprintf("%s is not a package name chartreuse looks up", pkg);
	else
		dir = find_package(l, pkg, why);
	free(pkg);
	for (const char *s = colon + 1; dir; s += strcspn(s, ":") + 1) {
		char *part = xstrndup(s, strcspn(s, ":"));
		char *next = abspath_in(dir, part);
		free(part);
		free(dir);
		dir = next;
		if (!strchr(s, ':'))
			break;
	}
	return dir;
}

/* `loc` as Alembic makes it a folder, or NULL (p->unsupported says why). */
static char *locate(const struct locator *l, struct cr_alembic_project *p, const char *key,
		    const char *loc)
{
	if (!is_package_resource(loc))
		return abspath_in(l->dir, loc);
	char *why = NULL, *dir = resolve_resource(l, loc, &why);
	if (!dir)
		set_unsupported(p, "%s: %s %s names a package resource that chartreuse cannot "
				   "find with certainty: %s", l->ini->path, key, loc, why);
	free(why);
	return dir;
}

static void add_version_locations(const struct locator *l, struct cr_alembic_project *p,
				  const struct cr_strlist *locs)
{
	for (size_t i = 0; i < locs->n; i++) {
		char *abs = locate(l, p, "version location", locs->items[i]);
		if (abs)
			cr_strlist_add(&p->version_locations, abs);
		free(abs);
	}
}

static int read_separator(const struct ini *ini, int sec, char *sep, bool *legacy)
{
	static const char *const keys[] = { "path_separator", "version_path_separator" };
	*legacy = true;
	for (size_t i = 0; i < 2; i++) {
		char *name;
		if (ini_get(ini, sec, keys[i], &name) < 0)
			return -1;
		if (!name)
			continue;
		int rc = separator_of(name, sep);
		if (rc < 0)
			cr_error("%s: [%s] %s: '%s' is not one of space, newline, os, ':', ';'",
				 ini->path, ini->sections[sec].name, keys[i], name);
		free(name);
		*legacy = false;
		return rc;
	}
	return 0;
}

static int read_version_locations(const struct locator *l, struct cr_alembic_project *p)
{
	char *locs;
	if (ini_get(l->ini, l->sec, "version_locations", &locs) < 0)
		return -1;
	if (!locs || !*locs) {
		free(locs);
		char *versions = xasprintf("%s/versions", p->script_location);
		cr_strlist_add(&p->version_locations, versions);
		free(versions);
		return 0;
	}
	char sep;
	bool legacy;
	struct cr_strlist parts = { 0 };
	int rc = read_separator(l->ini, l->sec, &sep, &legacy);
	if (rc == 0 && legacy)
		split_legacy(locs, false, &parts);
	else if (rc == 0)
		split_on(locs, sep, &parts);
	add_version_locations(l, p, &parts);
	cr_strlist_free(&parts);
	free(locs);
	return rc;
}

static int read_script_location(const struct locator *l, struct cr_alembic_project *p)
{
	char *loc;
	if (ini_get(l->ini, l->sec, "script_location", &loc) < 0)
		return -1;
	if (!loc) {
		cr_error("%s: [%s] has no script_location", l->ini->path, p->section);
		return -1;
	}
	int rc = 0;
	p->script_location = locate(l, p, "script_location", loc);
	if (!p->script_location) {
		p->script_location = xstrdup(loc); /* for messages: the scripts are not read */
	} else if (!*loc || access(p->script_location, F_OK) != 0) {
		cr_error("%s: [%s] script_location %s does not exist", l->ini->path, p->section,
			 p->script_location);
		rc = -1;
	}
	free(loc);
	return rc;
}

/* Alembic compares these flags with the exact string "true". */
static int read_flag(const struct ini *ini, int sec, const char *key, bool *out)
{
	char *v;
	if (ini_get(ini, sec, key, &v) < 0)
		return -1;
	*out = v && strcmp(v, "true") == 0;
	free(v);
	return 0;
}

/* version_table(_schema) are not Alembic options (env.py passes them to
 * context.configure); chartreuse reads them from the section, the usual place where env.py
 * takes them from. */
static int read_version_table(const struct ini *ini, int sec, struct cr_alembic_project *p)
{
	if (ini_get(ini, sec, "version_table", &p->version_table) < 0 ||
	    ini_get(ini, sec, "version_table_schema", &p->version_table_schema) < 0)
		return -1;
	if (!p->version_table || !*p->version_table) {
		free(p->version_table);
		p->version_table = xstrdup("alembic_version");
	}
	if (p->version_table_schema && !*p->version_table_schema) {
		free(p->version_table_schema);
		p->version_table_schema = NULL;
	}
	return 0;
}

static int read_project(const struct ini *ini, struct cr_alembic_project *p)
{
	struct locator l = { ini, ini_find_section(ini, p->section), p->directory, { 0 }, NULL };
	if (l.sec < 0) {
		cr_error("%s has no [%s] section", ini->path, p->section);
		return -1;
	}
	bool sourceless;
	int rc = -1;
	if (read_version_table(ini, l.sec, p) == 0 &&
	    read_flag(ini, l.sec, "recursive_version_locations",
		      &p->recursive_version_locations) == 0 &&
	    read_flag(ini, l.sec, "sourceless", &sourceless) == 0 && read_sys_path(&l) == 0 &&
	    read_script_location(&l, p) == 0) {
		if (sourceless)
			set_unsupported(p, "%s: sourceless = true (revisions may exist only as "
					   ".pyc files)", ini->path);
		rc = p->unsupported ? 0 : read_version_locations(&l, p);
	}
	cr_strlist_free(&l.sys_path);
	free(l.sys_path_doubt);
	return rc;
}

int cr_alembic_load(const char *directory, const char *config_file, const char *section,
		    struct cr_alembic_project *out)
{
	memset(out, 0, sizeof(*out));
	out->directory = absolute_dir(directory);
	if (!out->directory)
		return -1;
	out->ini_path = abspath_in(out->directory, config_file ? config_file : "alembic.ini");
	out->section = xstrdup(section ? section : "alembic");
	struct ini ini;
	int rc = ini_load(&ini, out->ini_path);
	if (rc == 0)
		rc = read_project(&ini, out);
	ini_free(&ini);
	if (rc < 0)
		cr_alembic_free(out);
	return rc;
}

void cr_alembic_free(struct cr_alembic_project *p)
{
	free(p->directory);
	free(p->ini_path);
	free(p->section);
	free(p->script_location);
	cr_strlist_free(&p->version_locations);
	free(p->version_table);
	free(p->version_table_schema);
	free(p->unsupported);
	memset(p, 0, sizeof(*p));
}

/* ------------------------------------------------------------------------------------ */
/* The ini copy handed to Alembic. */

/* A value ConfigParser gives back unchanged once "%" is doubled: one line, no blanks at
 * either end (it strips them). */
static bool ini_writable(const char *s)
{
	size_t n = strlen(s);
	return !strpbrk(s, "\n\r") && (n == 0 || (!is_space(s[0]) && !is_space(s[n - 1])));
}

static void add_escaped(struct cr_buf *out, const char *s)
{
	for (; *s; s++) {
		if (*s == '%')
			cr_buf_addc(out, '%');
		cr_buf_addc(out, *s);
	}
}

static void add_line(struct cr_buf *out, const struct ini_line *l)
{
	cr_buf_add(out, l->s, l->len);
	cr_buf_addc(out, '\n');
}

/* "<indent>sqlalchemy.url = <url>", indented like `like` so that the lines around it keep
 * their meaning: a line is a continuation only when indented deeper than the option
 * before it, and the line that follows ours was not one. */
static void add_url_line(struct cr_buf *out, const struct ini_line *like, const char *url)
{
	if (like)
		cr_buf_add(out, like->s, indent_of(like->s, like->len));
	cr_buf_adds(out, "sqlalchemy.url = ");
	add_escaped(out, url);
	cr_buf_addc(out, '\n');
}

static void build_ini_copy(const struct ini *ini, int sec, const char *url, struct cr_buf *out)
{
	const struct ini_opt *old = ini_own_opt(ini, sec, "sqlalchemy.url");
	size_t end = ini->sections[sec].end;
	for (size_t i = 0; i < ini->n_lines; i++) {
		if (old && i == old->first) {
			add_url_line(out, &ini->lines[i], url);
			i = old->last;
			continue;
		}
		if (!old && i == end)
			add_url_line(out, &ini->lines[i], url);
		add_line(out, &ini->lines[i]);
	}
	if (!old && end == ini->n_lines)
		add_url_line(out, NULL, url);
	/* At the end, where no following line can be taken for its continuation. */
	if (!ini_own_opt(ini, INI_DEFAULT, "here")) {
		cr_buf_adds(out, "\n[DEFAULT]\nhere = ");
		add_escaped(out, ini->here);
		cr_buf_addc(out, '\n');
	}
}

static int write_new_file(const char *path, const struct cr_buf *b)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0) {
		cr_error("cannot create %s: %s", path, strerror(errno));
		return -1;
	}
	int rc = fchmod(fd, 0600) == 0 && cr_write_all(fd, b->data, b->len) == 0 ? 0 : -1;
	if (close(fd) != 0)
		rc = -1;
	if (rc < 0) {
		cr_error("cannot write %s: %s", path, strerror(errno));
		unlink(path);
	}
	return rc;
}

int cr_alembic_ini_copy(const struct cr_alembic_project *p, const char *url,
			struct cr_buf *out)
{
	struct ini ini;
	if (ini_load(&ini, p->ini_path) < 0) {
		ini_free(&ini);
		return -1;
	}
	int sec = ini_find_section(&ini, p->section);
	int rc = -1;
	if (sec < 0)
		cr_error("%s has no [%s] section", ini.path, p->section);
	else if (!ini_writable(url))
		cr_error("%s: the database URL has a line break or blanks at an end, which an "
			 "ini value cannot hold", ini.path);
	else if (!ini_writable(ini.here))
		cr_error("%s: the directory name has a line break or blanks at an end, which an "
			 "ini value cannot hold", ini.path);
	else
		rc = 0;
	if (rc == 0)
		build_ini_copy(&ini, sec, url, out);
	ini_free(&ini);
	return rc;
}

int cr_alembic_write_ini(const struct cr_alembic_project *p, const char *url, const char *path)
{
	struct cr_buf out = { 0 };
	int rc = cr_alembic_ini_copy(p, url, &out);
	if (rc == 0)
		rc = write_new_file(path, &out);
	if (out.data)
		explicit_bzero(out.data, out.len); /* it holds the password */
	cr_buf_free(&out);
	return rc;
}

/* ------------------------------------------------------------------------------------ */
/* A tokenizer for the part of Python that revision scripts use. It cuts the file into
 * logical lines (brackets and backslashes join physical lines; comments and blank lines
 * vanish), each with its indentation, and knows strings well enough that a docstring or a
 * string holding `revision = "x"` is one token. f-strings are read as Python 3.12 reads
 * them (PEP 701: any expression in a replacement field, nested strings with any quotes,
 * comments and line breaks), so that the names used in their fields are seen. */

enum tok_kind { TK_NAME, TK_STRING, TK_NUMBER, TK_OP };

/* 64 bytes: a logical line's tokens are copied on the hot path. */
struct token {
	const char *s;
	size_t len;
	size_t line;
	const char *body; /* TK_STRING: between the quotes */
	size_t body_len;
	/* TK_STRING: a watched name (see watched()) used in an f-string's replacement
	 * fields, one of W_ALWAYS if there is one, or NULL. */
	const char *code;
	int depth;	  /* bracket depth before the token */
	enum tok_kind kind;
	bool plain;	  /* TK_STRING: a str whose value is its body as written */
	unsigned char code_len;
};

struct lexer {
	const char *p, *end, *line_start;
	size_t line;
	int depth;
};

struct logical_line {
	struct token *t;
	size_t n, cap;
	size_t indent; /* the column of the first token, as Python counts it */
};

/* The names a revision script's reader watches: the four variables, and the ways code can
 * reach the module's namespace (W_IMPORT only in code that runs at import, W_ALWAYS also
 * in function bodies, which may be called at import). */
enum { V_REVISION, V_DOWN, V_LABELS, V_DEPENDS, N_VARS };
enum watch_kind { W_VAR, W_IMPORT, W_ALWAYS };

struct watched {
	const char *name;
	size_t len;
	enum watch_kind kind;
	int var; /* V_*, or -1 */
};

#define WATCH(name, kind, var) { name, sizeof(name) - 1, kind, var }

/* Sorted by length: every name token of a script is looked up, and first_of_len makes
 * that one comparison or two. */
static const struct watched watched_names[] = {
	WATCH("vars", W_IMPORT, -1),	    WATCH("exec", W_ALWAYS, -1),
	WATCH("eval", W_ALWAYS, -1),	    WATCH("locals", W_IMPORT, -1),
	WATCH("setattr", W_IMPORT, -1),	    WATCH("delattr", W_IMPORT, -1),
	WATCH("globals", W_ALWAYS, -1),	    WATCH("modules", W_ALWAYS, -1),
	WATCH("revision", W_VAR, V_REVISION), WATCH("__dict__", W_IMPORT, -1),
	WATCH("f_locals", W_ALWAYS, -1),    WATCH("f_globals", W_ALWAYS, -1),
	WATCH("depends_on", W_VAR, V_DEPENDS), WATCH("__getattr__", W_IMPORT, -1),
	WATCH("__globals__", W_ALWAYS, -1), WATCH("down_revision", W_VAR, V_DOWN),
	WATCH("branch_labels", W_VAR, V_LABELS),
};

/* The names of length n are watched_names[first_of_len[n] .. first_of_len[n + 1]). */
static const unsigned char first_of_len[] = { 0, 0, 0, 0, 0, 3, 3, 4, 8, 11, 12, 13, 15, 15,
					      17 };

static const struct watched *watched(const char *s, size_t n)
{
	if (n + 1 >= sizeof(first_of_len))
		return NULL;
	for (size_t i = first_of_len[n]; i < first_of_len[n + 1]; i++)
		if (watched_names[i].name[0] == s[0] && memcmp(watched_names[i].name, s, n) == 0)
			return &watched_names[i];
	return NULL;
}

/* The name of variable v, for messages. */
static const char *var_name(int v)
{
	static const char *const names[N_VARS] = {
		[V_REVISION] = "revision", [V_DOWN] = "down_revision",
		[V_LABELS] = "branch_labels", [V_DEPENDS] = "depends_on",
	};
	return names[v];
}

static size_t newline_len(const char *p, const char *end)
{
	if (p >= end)
		return 0;
	if (*p == '\n')
		return 1;
	if (*p == '\r')
		return p + 1 < end && p[1] == '\n' ? 2 : 1;
	return 0;
}

static void lex_newline(struct lexer *lx)
{
	lx->p += newline_len(lx->p, lx->end);
	lx->line++;
	lx->line_start = lx->p;
}

static bool is_name_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '_' || (unsigned char)c >= 0x80;
}

static bool is_digit(char c)
{
	return c >= '0' && c <= '9';
}

/* A string prefix (up to two of r, b, u, f, t, any case) directly followed by a quote:
 * returns the prefix length, or -1. */
static bool is_prefix_letter(char c)
{
	switch (c) {
	case 'r': case 'R': case 'b': case 'B': case 'u': case 'U':
	case 'f': case 'F': case 't': case 'T':
		return true;
	default:
		return false;
	}
}

static int string_prefix(const char *p, const char *end)
{
	for (int k = 0; k <= 2 && p + k < end; k++) {
		if (p[k] == '"' || p[k] == '\'')
			return k;
		if (!is_prefix_letter(p[k]))
			return -1;
	}
	return -1;
}

/* Only "", r and u prefixes make a str whose value is what is written (bytes, f- and
 * t-strings are not a revision id). */
static bool plain_prefix(const char *p, int n, bool *raw)
{
	*raw = false;
	if (n == 0)
		return true;
	if (n == 1 && strchr("rRuU", p[0])) {
		*raw = p[0] == 'r' || p[0] == 'R';
		return true;
	}
	return false;
}

/* The opening of a string: its quote, single or triple, and whether it is raw and an f-
 * (or t-) string. */
struct quote {
	char q;
	size_t ql;
	bool raw, fmt;
};

static struct quote open_string(struct lexer *lx, int prefix)
{
	struct quote o = { 0 };
	for (int k = 0; k < prefix; k++) {
		char c = (char)(lx->p[k] | 0x20);
		o.raw |= c == 'r';
		o.fmt |= c == 'f' || c == 't';
	}
	const char *p = lx->p + prefix;
	o.q = *p;
	o.ql = p + 2 < lx->end && p[1] == o.q && p[2] == o.q ? 3 : 1;
	lx->p = p + o.ql;
	return o;
}

static bool closes(const struct lexer *lx, const char *p, const struct quote *o)
{
	return *p == o->q && (o->ql == 1 || (p + 2 < lx->end && p[1] == o->q && p[2] == o->q));
}

static int unterminated(const char **err)
{
	*err = "a string is not terminated";
	return -1;
}

/* A backslash and what it escapes (a line break counts as one). */
static void skip_escape(struct lexer *lx)
{
	size_t nl = newline_len(lx->p + 1, lx->end);
	lx->line += nl != 0;
	lx->p += 1 + (nl ? nl : (lx->p + 1 < lx->end));
}

/* Any other character of a string, or -1 at a line break a one-quote string can't hold. */
static int skip_char(struct lexer *lx, const struct quote *o, const char **err)
{
	size_t nl = newline_len(lx->p, lx->end);
	if (nl && o->ql == 1)
		return unterminated(err);
	lx->line += nl != 0;
	lx->p += nl ? nl : 1;
	return 0;
}

/* The body of a string that is not an f-string, up to its closing quote. */
static int string_body(struct lexer *lx, const struct quote *o, bool *escapes, const char **err)
{
	for (;;) {
		if (lx->p >= lx->end)
			return unterminated(err);
		if (*lx->p == '\\') {
			*escapes = true;
			skip_escape(lx);
		} else if (closes(lx, lx->p, o)) {
			return 0;
		} else if (skip_char(lx, o, err) < 0) {
			return -1;
		}
	}
}

/* Python stops at 150 or so; this keeps the recursion bounded on hostile input. */
#define MAX_FSTRING_NEST 32

static int fstring_body(struct lexer *lx, struct token *t, const struct quote *o, int nest,
			const char **err);

/* A name used in a replacement field: noted in t, a W_ALWAYS one first. */
static void note_code(struct token *t, const char *s, size_t n)
{
	const struct watched *w = watched(s, n);
	if (!w || (t->code && watched(t->code, t->code_len)->kind == W_ALWAYS))
		return;
	if (!t->code || w->kind == W_ALWAYS) {
		t->code = s;
		t->code_len = (unsigned char)n; /* a watched name is short */
	}
}

/* A string inside a replacement field: skipped, its own fields' names noted in t. */
static int skip_string(struct lexer *lx, struct token *t, int prefix, int nest,
		       const char **err)
{
	struct quote o = open_string(lx, prefix);
	bool escapes;
	int rc = o.fmt ? fstring_body(lx, t, &o, nest + 1, err)
		       : string_body(lx, &o, &escapes, err);
	lx->p += o.ql;
	return rc;
}

static int fstring_field(struct lexer *lx, struct token *t, const struct quote *o, int nest,
			 const char **err);

/* A format spec, after the ":" of a field and up to the field's "}": text in which "{"
 * always opens a nested field and the string's quote ends the string too early. */
static int fstring_spec(struct lexer *lx, struct token *t, const struct quote *o, int nest,
			const char **err)
{
	for (;;) {
		if (lx->p >= lx->end || closes(lx, lx->p, o)) {
			*err = "an f-string's replacement field is not closed";
			return -1;
		}
		char c = *lx->p;
		if (c == '}') {
			lx->p++;
			return 0;
		}
		if (c == '{') {
			lx->p++;
			if (fstring_field(lx, t, o, nest + 1, err) < 0)
				return -1;
		} else if (c == '\\' && lx->p + 1 < lx->end && lx->p[1] != '{' && lx->p[1] != '}') {
			skip_escape(lx);
		} else if (skip_char(lx, o, err) < 0) {
			return -1;
		}
	}
}

/* A replacement field, after its "{" and up to after its "}": an expression, then maybe
 * "!conversion" and ":spec". */
static int fstring_field(struct lexer *lx, struct token *t, const struct quote *o, int nest,
			 const char **err)
{
	if (nest > MAX_FSTRING_NEST) {
		*err = "f-strings nest too deeply";
		return -1;
	}
	int depth = 0;
	while (lx->p < lx->end) {
		const char *p = lx->p;
		char c = *p;
		size_t nl = newline_len(p, lx->end);
		int prefix = string_prefix(p, lx->end);
		if (nl) {
			lx->line++;
			lx->p += nl;
		} else if (c == '#') {
			while (lx->p < lx->end && !newline_len(lx->p, lx->end))
				lx->p++;
		} else if (c == '\\') {
			if (!newline_len(p + 1, lx->end)) {
				*err = "a backslash outside a string in an f-string's field";
				return -1;
			}
			skip_escape(lx);
		} else if (prefix >= 0) {
			if (skip_string(lx, t, prefix, nest, err) < 0)
				return -1;
		} else if (is_name_char(c)) {
			bool number = is_digit(c);
			while (lx->p < lx->end &&
			       (is_name_char(*lx->p) || (number && *lx->p == '.')))
				lx->p++;
			if (!number)
				note_code(t, p, (size_t)(lx->p - p));
		} else if (depth == 0 && (c == '}' || c == ':')) {
			lx->p++;
			return c == '}' ? 0 : fstring_spec(lx, t, o, nest, err);
		} else if (depth == 0 && c == '!' && !(p + 1 < lx->end && p[1] == '=')) {
			lx->p++; /* the conversion's name follows, then ":" or "}" */
		} else {
			depth += (c == '(' || c == '[' || c == '{') -
				 (c == ')' || c == ']' || c == '}');
			if (depth < 0) {
				*err = "an f-string's field closes a bracket it did not open";
				return -1;
			}
			lx->p++;
		}
	}
	return unterminated(err);
}

/* The literal text of an f-string up to its closing quote: "{{" and "}}" are braces, a
 * lone "{" opens a field, "\N{...}" is a character name, and a backslash does not escape
 * a brace. */
static int fstring_body(struct lexer *lx, struct token *t, const struct quote *o, int nest,
			const char **err)
{
	for (;;) {
		const char *p = lx->p;
		if (p >= lx->end)
			return unterminated(err);
		char c = *p;
		bool doubled = p + 1 < lx->end && p[1] == c;
		if (c == '\\' && !o->raw && p + 2 < lx->end && p[1] == 'N' && p[2] == '{') {
			for (lx->p += 3; lx->p < lx->end && *lx->p != '}'; lx->p++)
				if (newline_len(lx->p, lx->end) || closes(lx, lx->p, o))
					return unterminated(err);
			if (lx->p >= lx->end)
				return unterminated(err);
			lx->p++;
		} else if (c == '\\' && p + 1 < lx->end && (p[1] == '{' || p[1] == '}')) {
			lx->p++;
		} else if (c == '\\') {
			skip_escape(lx);
		} else if (closes(lx, p, o)) {
			return 0;
		} else if ((c == '{' || c == '}') && doubled) {
			lx->p += 2;
		} else if (c == '{') {
			lx->p++;
			if (fstring_field(lx, t, o, nest, err) < 0)
				return -1;
		} else if (c == '}') {
			*err = "an f-string has a single '}'";
			return -1;
		} else if (skip_char(lx, o, err) < 0) {
			return -1;
		}
	}
}

static int lex_string(struct lexer *lx, struct token *t, int prefix, const char **err)
{
	bool raw, plain = plain_prefix(lx->p, prefix, &raw), escapes = false;
	struct quote o = open_string(lx, prefix);
	t->body = lx->p;
	int rc = o.fmt ? fstring_body(lx, t, &o, 0, err) : string_body(lx, &o, &escapes, err);
	if (rc < 0)
		return -1;
	t->kind = TK_STRING;
	t->body_len = (size_t)(lx->p - t->body);
	t->plain = plain && (raw || !escapes);
	lx->p += o.ql;
	return 0;
}

/* Function bodies are tokenized too (a string there may span lines), so this is on the
 * hot path: most operators are one character, and only those that can start a longer one
 * are compared. */
static size_t op_len(const char *p, const char *end)
{
	static const char ops[][4] = { "**=", "//=", ">>=", "<<=", "...", "==", "!=", "<=",
				       ">=", ":=", "+=", "-=", "*=", "/=", "%=", "@=",
				       "&=", "|=", "^=", "->", "**", "//", "<<", ">>" };
	if (end - p < 2 || !memchr("*/<>.=!:+-%@&|^", *p, 15))
		return 1;
	for (size_t i = 0; i < sizeof(ops) / sizeof(ops[0]); i++) {
		if (ops[i][0] != p[0] || ops[i][1] != p[1])
			continue;
		if (!ops[i][2])
			return 2;
		if (end - p >= 3 && ops[i][2] == p[2])
			return 3;
	}
	return 1;
}

static int lex_token(struct lexer *lx, struct token *t, const char **err)
{
	const char *p = lx->p;
	char c = *p;
	int prefix = string_prefix(p, lx->end);
	if (prefix >= 0)
		return lex_string(lx, t, prefix, err);
	if (is_digit(c)) {
		t->kind = TK_NUMBER;
		while (lx->p < lx->end && (is_name_char(*lx->p) || *lx->p == '.'))
			lx->p++;
	} else if (is_name_char(c)) {
		t->kind = TK_NAME;
		while (lx->p < lx->end && is_name_char(*lx->p))
			lx->p++;
	} else {
		t->kind = TK_OP;
		lx->p += op_len(p, lx->end);
		if (strchr("([{", c))
			lx->depth++;
		else if (strchr(")]}", c) && lx->depth > 0)
			lx->depth--;
	}
	return 0;
}

/* Python's indentation: a tab moves to the next multiple of 8, a form feed starts over. */
static size_t column(const char *s, const char *e)
{
	size_t col = 0;
	for (; s < e; s++)
		col = *s == '\t' ? (col / 8 + 1) * 8 : *s == '\f' ? 0 : col + 1;
	return col;
}

/* The next logical line: 1, 0 at the end of the file, -1 on a tokenizing error. */
static int lex_line(struct lexer *lx, struct logical_line *ll, const char **err)
{
	ll->n = 0;
	while (lx->p < lx->end) {
		char c = *lx->p;
		if (c == ' ' || c == '\t' || c == '\f') {
			lx->p++;
		} else if (c == '#') {
			while (lx->p < lx->end && !newline_len(lx->p, lx->end))
				lx->p++;
		} else if (c == '\\' && newline_len(lx->p + 1, lx->end)) {
			lx->p++;
			lex_newline(lx);
		} else if (newline_len(lx->p, lx->end)) {
			lex_newline(lx);
			if (ll->n && lx->depth == 0)
				return 1;
		} else {
			struct token t = { .s = lx->p, .line = lx->line, .depth = lx->depth };
			if (ll->n == 0)
				ll->indent = column(lx->line_start, lx->p);
			if (lex_token(lx, &t, err) < 0)
				return -1;
			t.len = (size_t)(lx->p - t.s);
			XGROW(ll->t, ll->n + 1, ll->cap);
			ll->t[ll->n++] = t;
		}
	}
	return ll->n > 0;
}

/* ------------------------------------------------------------------------------------ */
/* A revision script: the module-level assignments of its four variables, or the reason
 * they can't be known without running Python. Code runs at import in the module's
 * statements and blocks, class bodies, decorators, default values and annotations; only
 * a plain module-level assignment is read, any other mention of the four names in such
 * code makes the script uncertain. Function bodies run only when called: there only a
 * `global` of the four names, or a way to reach the module's namespace, does. */

enum ctx { C_TOP, C_RUNS, C_FUNC };

#define MAX_INDENT 100 /* Python's tokenizer refuses more levels */

/* An open block: the indentation of its body, and what runs there (where: for messages). */
struct block {
	size_t indent;
	enum ctx ctx;
	const char *where;
};

struct script_vars {
	const char *path;
	bool set[N_VARS];
	bool is_none[N_VARS];
	bool is_list[N_VARS];
	struct cr_strlist val[N_VARS];
	struct block *blocks; /* MAX_INDENT of them; [0] is the module */
	size_t n_blocks;
	bool opening;	      /* the last line was a block header: its body comes next */
	size_t header_indent;
	struct block next;
	char *why;
};

static const char *const AT_IMPORT = "in a block that runs at import";
static const char *const IN_CLASS = "in a class body, which runs at import";

static bool tok_is(const struct token *t, enum tok_kind kind, const char *s)
{
	return t->kind == kind && t->len == strlen(s) && memcmp(t->s, s, t->len) == 0;
}

static bool is_op(const struct token *t, const char *s)
{
	return tok_is(t, TK_OP, s);
}

static int var_index(const struct token *t)
{
	const struct watched *w = t->kind == TK_NAME ? watched(t->s, t->len) : NULL;
	return w ? w->var : -1;
}

static void uncertain(struct script_vars *sv, size_t line, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void uncertain(struct script_vars *sv, size_t line, const char *fmt, ...)
{
	if (sv->why)
		return;
	char msg[256];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	sv->why = line ? xasprintf("%s:%zu: %s", sv->path, line, msg)
		       : xasprintf("%s: %s", sv->path, msg);
}

/* The line of a name inside a (multi-line) string token. */
static size_t line_of(const struct token *t, const char *at)
{
	size_t line = t->line;
	for (const char *p = t->s; p < at; p++)
		line += *p == '\n' || (*p == '\r' && p[1] != '\n');
	return line;
}

static void watched_use(struct script_vars *sv, const struct watched *w, size_t line,
			const char *where)
{
	if (w->kind == W_VAR && !where)
		uncertain(sv, line, "%s is set or used in a way chartreuse does not evaluate",
			  w->name);
	else if (w->kind == W_VAR)
		uncertain(sv, line, "%s is set or used %s", w->name, where);
	else
		uncertain(sv, line, "%s can change module variables (used %s)", w->name,
			  where ? where : "at module level");
}

/* Code that runs at import and is not one of the assignments read below: any mention of
 * the four names (but as an attribute or a keyword argument), or of a way to set them
 * indirectly, makes what it does unknown. */
static void check_import_time(struct script_vars *sv, const struct token *t, size_t s,
			      size_t e, const char *where)
{
	for (size_t i = s; i < e && !sv->why; i++) {
		if (is_op(&t[i], "*") && i > s && tok_is(&t[i - 1], TK_NAME, "import"))
			uncertain(sv, t[i].line, "a star import may define the revision variables");
		if (t[i].kind == TK_STRING && t[i].code)
			watched_use(sv, watched(t[i].code, t[i].code_len),
				    line_of(&t[i], t[i].code),
				    where ? where : "in an f-string's replacement field");
		const struct watched *w = t[i].kind == TK_NAME ? watched(t[i].s, t[i].len) : NULL;
		if (!w)
			continue;
		bool attribute = i > s && is_op(&t[i - 1], ".");
		bool keyword_arg = t[i].depth > 0 && i + 1 < e && is_op(&t[i + 1], "=");
		if (w->kind != W_VAR || (!attribute && !keyword_arg))
			watched_use(sv, w, t[i].line, where);
	}
}

/* Code in a function body: harmless unless the function is called at import and then
 * rebinds a module variable, which takes `global` or the module's namespace. */
static void check_function_code(struct script_vars *sv, const struct token *t, size_t s,
				size_t e)
{
	static const char *const in_function = "in a function, which may be called at import";
	bool in_global = false;
	for (size_t i = s; i < e && !sv->why; i++) {
		if (t[i].kind == TK_STRING && t[i].code &&
		    watched(t[i].code, t[i].code_len)->kind == W_ALWAYS)
			watched_use(sv, watched(t[i].code, t[i].code_len),
				    line_of(&t[i], t[i].code), in_function);
		if (t[i].kind != TK_NAME) {
			in_global &= !(is_op(&t[i], ";") && t[i].depth == 0);
			continue;
		}
		const struct watched *w = watched(t[i].s, t[i].len);
		if (w && w->kind == W_VAR && in_global)
			uncertain(sv, t[i].line, "a function declares %s global, so calling it can "
						 "rebind it", w->name);
		else if (w && w->kind == W_ALWAYS)
			watched_use(sv, w, t[i].line, in_function);
		in_global |= tok_is(&t[i], TK_NAME, "global");
	}
}

/* STRING (',' STRING)* [','], or nothing: the items of a tuple or list of strings. */
static bool parse_items(const struct token *t, size_t s, size_t e, struct cr_strlist *out,
			bool *comma)
{
	*comma = false;
	bool want_item = true;
	for (size_t i = s; i < e; i++) {
		if (want_item && t[i].kind == TK_STRING && t[i].plain && t[i].body_len) {
			char *v = xstrndup(t[i].body, t[i].body_len);
			cr_strlist_add(out, v);
			free(v);
		} else if (!want_item && is_op(&t[i], ",")) {
			*comma = true;
		} else {
			return false;
		}
		want_item = !want_item;
	}
	return true;
}

/* A value Alembic can be given: None, a string, a tuple or list of strings (bracketed or
 * not). Anything else (names, calls, f-strings, concatenation, empty ids) is refused. */
static bool parse_value(const struct token *t, size_t s, size_t e, struct script_vars *sv, int v)
{
	if (e - s == 1 && tok_is(&t[s], TK_NAME, "None")) {
		sv->is_none[v] = true;
		return true;
	}
	bool comma;
	bool bracketed = e - s >= 2 && ((is_op(&t[s], "(") && is_op(&t[e - 1], ")")) ||
					(is_op(&t[s], "[") && is_op(&t[e - 1], "]")));
	if (bracketed) {
		sv->is_list[v] = true;
		return parse_items(t, s + 1, e - 1, &sv->val[v], &comma);
	}
	if (!parse_items(t, s, e, &sv->val[v], &comma) || sv->val[v].n == 0)
		return false;
	sv->is_list[v] = comma;
	return true;
}

/* `name = value` or `name: annotation = value`, name being one of the four. */
static void read_assignment(struct script_vars *sv, const struct token *t, size_t s, size_t e,
			    int v)
{
	size_t eq = s + 1;
	if (eq < e && is_op(&t[eq], ":"))
		while (eq < e && !(is_op(&t[eq], "=") && t[eq].depth == 0))
			eq++;
	if (eq >= e || !is_op(&t[eq], "=")) {
		uncertain(sv, t[s].line, "%s is set or used in a way chartreuse does not evaluate",
			  var_name(v));
		return;
	}
	/* the annotation runs at import too */
	check_import_time(sv, t, s + 2, eq, "in an annotation, which runs at import");
	if (sv->why)
		return;
	if (sv->set[v]) {
		uncertain(sv, t[s].line, "%s is assigned twice", var_name(v));
		return;
	}
	sv->set[v] = true;
	if (!parse_value(t, eq + 1, e, sv, v))
		uncertain(sv, t[s].line, "%s is not a string, None or a tuple/list of strings",
			  var_name(v));
}

/* A simple statement at module level. */
static void read_statement(struct script_vars *sv, const struct token *t, size_t s, size_t e)
{
	if (s == e)
		return;
	int v = var_index(&t[s]);
	if (v >= 0)
		read_assignment(sv, t, s, e, v);
	else
		check_import_time(sv, t, s, e, NULL);
}

static bool starts_compound(const struct token *t)
{
	static const char *const keywords[] = { "if",	  "elif",   "else", "for",  "while",
						"try",	  "except", "finally", "with", "async" };
	for (size_t k = 0; k < sizeof(keywords) / sizeof(keywords[0]); k++)
		if (tok_is(&t[0], TK_NAME, keywords[k]))
			return true;
	return false;
}

/* The ":" that ends the header of a compound statement (its first at depth 0: a lambda
 * in a header is in brackets), or e. */
static size_t header_colon(const struct token *t, size_t s, size_t e)
{
	while (s < e && !(is_op(&t[s], ":") && t[s].depth == 0))
		s++;
	return s;
}

static void open_block(struct script_vars *sv, size_t header_indent, enum ctx ctx,
		       const char *where)
{
	sv->opening = true;
	sv->header_indent = header_indent;
	sv->next = (struct block){ 0, ctx, where };
}

/* The block a line of this indentation belongs to, as Python's INDENT/DEDENT decide; NULL
 * (uncertain) where Python refuses the indentation. */
static const struct block *enter_block(struct script_vars *sv, size_t indent, size_t line)
{
	if (sv->opening) {
		sv->opening = false;
		if (indent <= sv->header_indent) {
			uncertain(sv, line, "a block has no indented body (Python refuses the "
					    "script)");
			return NULL;
		}
		if (sv->n_blocks == MAX_INDENT) {
			uncertain(sv, line, "blocks nest too deeply (Python refuses the script)");
			return NULL;
		}
		sv->next.indent = indent;
		sv->blocks[sv->n_blocks++] = sv->next;
	}
	while (sv->n_blocks > 1 && sv->blocks[sv->n_blocks - 1].indent > indent)
		sv->n_blocks--;
	if (sv->blocks[sv->n_blocks - 1].indent != indent) {
		uncertain(sv, line, "unexpected indentation (Python refuses the script)");
		return NULL;
	}
	return &sv->blocks[sv->n_blocks - 1];
}

/* `def name(...) -> ...:` or `class name(...):` in code that runs at import: the name is
 * bound, the defaults, annotations and bases run; a body on the same line, or the block
 * that follows, is a function's or runs at import (a class's). */
static void read_definition(struct script_vars *sv, const struct logical_line *ll, size_t kw)
{
	const struct token *t = ll->t;
	bool is_class = tok_is(&t[kw], TK_NAME, "class");
	size_t name = kw + 1, n = ll->n;
	if (name >= n)
		return;
	int v = var_index(&t[name]);
	if (v >= 0)
		uncertain(sv, t[name].line, "%s is rebound by a %s", var_name(v),
			  is_class ? "class" : "def");
	else if (!is_class && tok_is(&t[name], TK_NAME, "__getattr__"))
		uncertain(sv, t[name].line, "a module __getattr__ can provide the variables");
	size_t colon = header_colon(t, name + 1, n);
	check_import_time(sv, t, name + 1, colon,
			  is_class ? "in a class's bases or keywords, which run at import"
				   : "in a def's defaults or annotations, which run at import");
	if (colon + 1 < n && is_class)
		check_import_time(sv, t, colon + 1, n, IN_CLASS);
	else if (colon + 1 < n)
		check_function_code(sv, t, colon + 1, n);
	else if (colon < n)
		open_block(sv, ll->indent, is_class ? C_RUNS : C_FUNC, is_class ? IN_CLASS : NULL);
}

static void read_line(struct script_vars *sv, const struct logical_line *ll)
{
	const struct token *t = ll->t;
	size_t n = ll->n;
	const struct block *b = enter_block(sv, ll->indent, t[0].line);
	if (!b)
		return;
	bool opens = is_op(&t[n - 1], ":") && t[n - 1].depth == 0;
	size_t kw = n > 1 && tok_is(&t[0], TK_NAME, "async") ? 1 : 0;
	bool definition = tok_is(&t[kw], TK_NAME, "def") || tok_is(&t[0], TK_NAME, "class");
	if (b->ctx == C_FUNC) {
		check_function_code(sv, t, 0, n);
		if (opens)
			open_block(sv, ll->indent, C_FUNC, NULL);
	} else if (is_op(&t[0], "@")) {
		check_import_time(sv, t, 1, n, "in a decorator, which runs at import");
	} else if (definition) {
		read_definition(sv, ll, kw);
	} else if (opens || starts_compound(t)) {
		const char *where = b->ctx == C_TOP ? AT_IMPORT : b->where;
		check_import_time(sv, t, 0, n, where);
		if (opens)
			open_block(sv, ll->indent, C_RUNS, where);
	} else if (b->ctx == C_RUNS) {
		check_import_time(sv, t, 0, n, b->where);
	} else {
		size_t s = 0;
		for (size_t i = 0; i <= n; i++)
			if (i == n || (is_op(&t[i], ";") && t[i].depth == 0)) {
				read_statement(sv, t, s, i);
				s = i + 1;
			}
	}
}

static void script_vars_free(struct script_vars *sv)
{
	for (int v = 0; v < N_VARS; v++)
		cr_strlist_free(&sv->val[v]);
	free(sv->why);
}

/* Alembic's legacy rule: a script without `revision` named "<hex>.py" has that id. */
static char *legacy_revision(const char *path)
{
	const char *name = strrchr(path, '/') + 1;
	size_t n = strspn(name, "0123456789abcdef");
	return n && strcmp(name + n, ".py") == 0 ? xstrndup(name, n) : NULL;
}

static void move_list(struct cr_strlist *to, struct cr_strlist *from)
{
	*to = *from;
	memset(from, 0, sizeof(*from));
}

/* The variables as Alembic's Script/Revision take them, or why they can't be. */
static int make_revision(struct script_vars *sv, struct cr_revision *rev, char **why)
{
	char *id = NULL;
	if (!sv->set[V_REVISION] && !(id = legacy_revision(sv->path)))
		uncertain(sv, 0, "no module-level revision = \"...\" (Alembic cannot load it)");
	else if (!sv->set[V_DOWN])
		uncertain(sv, 0, "no module-level down_revision (Alembic cannot load it)");
	else if (!id && (sv->is_none[V_REVISION] || sv->is_list[V_REVISION]))
		uncertain(sv, 0, "revision is not a string");
	if (!id && !sv->why)
		id = xstrdup(sv->val[V_REVISION].items[0]);
	if (!sv->why && strpbrk(id, "@-+"))
		uncertain(sv, 0, "revision %s has a character Alembic refuses (@, -, +)", id);
	if (sv->why) {
		free(id);
		*why = sv->why;
		sv->why = NULL;
		return 1;
	}
	rev->id = id;
	rev->path = xstrdup(sv->path);
	move_list(&rev->down, &sv->val[V_DOWN]);
	move_list(&rev->depends_on, &sv->val[V_DEPENDS]);
	move_list(&rev->branch_labels, &sv->val[V_LABELS]);
	return 0;
}

/* What reading scripts needs, kept from one script to the next (thousands of them). */
struct script_reader {
	struct cr_buf text;
	struct logical_line ll;
	struct block blocks[MAX_INDENT];
};

static void script_reader_free(struct script_reader *r)
{
	cr_buf_free(&r->text);
	free(r->ll.t);
}

static int read_script(struct script_reader *r, const char *path, struct cr_revision *rev,
		       char **why)
{
	r->text.len = 0;
	if (cr_read_file(path, &r->text) < 0)
		return -1;
	const char *text = r->text.data;
	r->blocks[0] = (struct block){ 0, C_TOP, NULL };
	struct script_vars sv = { .path = path, .blocks = r->blocks, .n_blocks = 1 };
	struct lexer lx = { text, text + r->text.len, text, 1, 0 };
	if (r->text.len >= 3 && memcmp(text, "\xef\xbb\xbf", 3) == 0)
		lx.p = lx.line_start = text + 3; /* a UTF-8 byte order mark */
	const char *err = NULL;
	while (!sv.why && lex_line(&lx, &r->ll, &err) > 0)
		read_line(&sv, &r->ll);
	if (err)
		uncertain(&sv, lx.line, "%s", err);
	else if (sv.opening)
		uncertain(&sv, lx.line, "a block has no indented body (Python refuses the script)");
	int rc = make_revision(&sv, rev, why);
	script_vars_free(&sv);
	return rc;
}

/* ------------------------------------------------------------------------------------ */
/* Finding the scripts: every *.py in the version locations (and below them when
 * recursive), except names starting with ".#" or "__init__" (Alembic's own filter) and
 * __pycache__ directories; a file reached twice (symlinks, overlapping locations) counts
 * once, as in Alembic. */

static bool is_script_name(const char *name)
{
	return ends_with(name, ".py") && strncmp(name, ".#", 2) != 0 &&
	       strncmp(name, "__init__", 8) != 0;
}

static int list_dir(const char *dir, bool recursive, struct cr_strlist *out, char **why)
{
	DIR *d = opendir(dir);
	if (!d) {
		if (errno == ENOENT || errno == ENOTDIR)
			return 0; /* Alembic skips a version location that does not exist */
		*why = xasprintf("cannot list %s: %s", dir, strerror(errno));
		return 1;
	}
	int rc = 0;
	for (struct dirent *e; rc == 0 && (e = readdir(d));) {
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		char *path = xasprintf("%s/%s", dir, e->d_name);
		struct stat st;
		if (lstat(path, &st) == 0 && S_ISDIR(st.st_mode)) {
			if (recursive && !ends_with(e->d_name, "__pycache__"))
				rc = list_dir(path, true, out, why);
		} else if (is_script_name(e->d_name) && stat(path, &st) == 0 &&
			   S_ISREG(st.st_mode)) {
			char *real = realpath(path, NULL);
			if (real)
				cr_strlist_add(out, real);
			free(real);
		}
		free(path);
	}
	closedir(d);
	return rc;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static int list_scripts(const struct cr_alembic_project *p, struct cr_strlist *files,
			char **why)
{
	for (size_t i = 0; i < p->version_locations.n; i++) {
		int rc = list_dir(p->version_locations.items[i], p->recursive_version_locations,
				  files, why);
		if (rc)
			return rc;
	}
	if (files->n)
		qsort(files->items, files->n, sizeof(*files->items), cmp_str);
	size_t kept = 0;
	for (size_t i = 0; i < files->n; i++) {
		if (kept && strcmp(files->items[kept - 1], files->items[i]) == 0)
			free(files->items[i]);
		else
			files->items[kept++] = files->items[i];
	}
	files->n = kept;
	return 0;
}

/* ------------------------------------------------------------------------------------ */
/* The graph. Revisions are found by id (and depends_on targets also by branch label)
 * through open-addressing tables; parents are down_revision then depends_on. */

struct strtab {
	const char **keys; /* borrowed from the revisions */
	size_t *vals;
	size_t cap;	   /* a power of two, at least twice the entries */
};

struct cr_revgraph_links {
	struct strtab ids;
	size_t *first;	/* parents of revision i: parent[first[i]] .. parent[first[i + 1] - 1] */
	size_t *parent;
	size_t *order;	/* every revision, parents before children, ties by id */
};

static void strtab_init(struct strtab *t, size_t entries)
{
	t->cap = 16;
	while (t->cap < 2 * entries + 1)
		t->cap *= 2;
	t->keys = xcalloc(t->cap, sizeof(*t->keys));
	t->vals = xcalloc(t->cap, sizeof(*t->vals));
}

static void strtab_free(struct strtab *t)
{
	free(t->keys);
	free(t->vals);
	memset(t, 0, sizeof(*t));
}

/* Adds key -> val unless key is there; returns the value the key now has. */
static size_t strtab_put(struct strtab *t, const char *key, size_t val)
{
	size_t i = cr_fnv1a(key, strlen(key)) & (t->cap - 1);
	for (; t->keys[i]; i = (i + 1) & (t->cap - 1))
		if (strcmp(t->keys[i], key) == 0)
			return t->vals[i];
	t->keys[i] = key;
	t->vals[i] = val;
	return val;
}

static size_t strtab_get(const struct strtab *t, const char *key)
{
	if (!t->cap)
		return SIZE_MAX;
	size_t i = cr_fnv1a(key, strlen(key)) & (t->cap - 1);
	for (; t->keys[i]; i = (i + 1) & (t->cap - 1))
		if (strcmp(t->keys[i], key) == 0)
			return t->vals[i];
	return SIZE_MAX;
}

static int index_ids(struct cr_revgraph *g)
{
	struct strtab *ids = &g->links->ids;
	strtab_init(ids, g->n);
	for (size_t i = 0; i < g->n; i++) {
		size_t j = strtab_put(ids, g->revs[i].id, i);
		if (j != i) {
			cr_error("revision %s is defined twice: in %s and in %s", g->revs[i].id,
				 g->revs[j].path, g->revs[i].path);
			return -1;
		}
	}
	return 0;
}

/* Alembic refuses a label used twice or equal to a revision id. */
static int index_labels(const struct cr_revgraph *g, struct strtab *labels)
{
	size_t n = 0;
	for (size_t i = 0; i < g->n; i++)
		n += g->revs[i].branch_labels.n;
	strtab_init(labels, n);
	for (size_t i = 0; i < g->n; i++) {
		const struct cr_revision *r = &g->revs[i];
		for (size_t k = 0; k < r->branch_labels.n; k++) {
			const char *label = r->branch_labels.items[k];
			size_t j = strtab_get(&g->links->ids, label);
			if (j == SIZE_MAX && (j = strtab_put(labels, label, i)) == i)
				continue;
			cr_error("%s: branch label %s is already used by revision %s (%s)", r->path,
				 label, g->revs[j].id, g->revs[j].path);
			return -1;
		}
	}
	return 0;
}

/* down_revision must name a revision exactly (a branch label there is legal in Alembic
 * but unusual: left to Alembic). */
static int resolve_down(const struct cr_revgraph *g, const struct strtab *labels, size_t i,
			const char *down, size_t *out, char **why)
{
	const struct cr_revision *r = &g->revs[i];
	*out = strtab_get(&g->links->ids, down);
	if (*out == i) {
		cr_error("%s: revision %s names itself as down_revision", r->path, r->id);
		return -1;
	}
	if (*out != SIZE_MAX)
		return 0;
	if (strtab_get(labels, down) != SIZE_MAX) {
		*why = xasprintf("%s: down_revision %s is a branch label", r->path, down);
		return 1;
	}
	cr_error("%s: down_revision %s is not a known revision (a script missing or renamed?)",
		 r->path, down);
	return -1;
}

/* depends_on names a revision or a branch label (the revision carrying it). */
static int resolve_dependency(const struct cr_revgraph *g, const struct strtab *labels,
			      size_t i, const char *dep, size_t *out)
{
	const struct cr_revision *r = &g->revs[i];
	*out = strtab_get(&g->links->ids, dep);
	if (*out == SIZE_MAX)
		*out = strtab_get(labels, dep);
	if (*out == i) {
		cr_error("%s: revision %s depends on itself", r->path, r->id);
		return -1;
	}
	if (*out == SIZE_MAX) {
		cr_error("%s: depends_on %s is neither a revision nor a branch label", r->path, dep);
		return -1;
	}
	return 0;
}

static int resolve_parents(struct cr_revgraph *g, const struct strtab *labels, char **why)
{
	struct cr_revgraph_links *l = g->links;
	size_t edges = 0;
	for (size_t i = 0; i < g->n; i++)
		edges += g->revs[i].down.n + g->revs[i].depends_on.n;
	l->first = xcalloc(g->n + 1, sizeof(*l->first));
	l->parent = xcalloc(edges, sizeof(*l->parent));
	size_t k = 0;
	for (size_t i = 0; i < g->n; i++) {
		const struct cr_revision *r = &g->revs[i];
		l->first[i] = k;
		for (size_t d = 0; d < r->down.n; d++) {
			int rc = resolve_down(g, labels, i, r->down.items[d], &l->parent[k++], why);
			if (rc)
				return rc;
		}
		for (size_t d = 0; d < r->depends_on.n; d++)
			if (resolve_dependency(g, labels, i, r->depends_on.items[d], &l->parent[k++]))
				return -1;
	}
	l->first[g->n] = k;
	return 0;
}

/* A binary min-heap of revision indices by id: Kahn's algorithm takes the smallest
 * ready revision first, so the order is the same on every run. */
struct heap {
	size_t *a;
	size_t n;
	const struct cr_revision *revs;
};

static bool heap_less(const struct heap *h, size_t x, size_t y)
{
	return strcmp(h->revs[h->a[x]].id, h->revs[h->a[y]].id) < 0;
}

static void heap_swap(struct heap *h, size_t x, size_t y)
{
	size_t t = h->a[x];
	h->a[x] = h->a[y];
	h->a[y] = t;
}

static void heap_push(struct heap *h, size_t v)
{
	size_t i = h->n++;
	h->a[i] = v;
	while (i && heap_less(h, i, (i - 1) / 2)) {
		heap_swap(h, i, (i - 1) / 2);
		i = (i - 1) / 2;
	}
}

static size_t heap_pop(struct heap *h)
{
	size_t top = h->a[0];
	h->a[0] = h->a[--h->n];
	for (size_t i = 0;;) {
		size_t m = i, c = 2 * i + 1;
		if (c < h->n && heap_less(h, c, m))
			m = c;
		if (c + 1 < h->n && heap_less(h, c + 1, m))
			m = c + 1;
		if (m == i)
			break;
		heap_swap(h, i, m);
		i = m;
	}
	return top;
}

struct children {
	size_t *first, *child;
};

static void children_of(const struct cr_revgraph *g, struct children *c)
{
	const struct cr_revgraph_links *l = g->links;
	size_t edges = l->first[g->n];
	c->first = xcalloc(g->n + 2, sizeof(*c->first));
	c->child = xcalloc(edges, sizeof(*c->child));
	for (size_t e = 0; e < edges; e++)
		c->first[l->parent[e] + 2]++;
	for (size_t i = 0; i < g->n; i++)
		c->first[i + 2] += c->first[i + 1];
	for (size_t i = 0; i < g->n; i++)
		for (size_t e = l->first[i]; e < l->first[i + 1]; e++)
			c->child[c->first[l->parent[e] + 1]++] = i;
}

/* The revisions left out of the order that lie on a cycle (those only downstream of one
 * are peeled off): at most a few of their files, for the message. */
static void report_cycle(const struct cr_revgraph *g, const struct children *c,
			 const bool *ordered)
{
	const struct cr_revgraph_links *l = g->links;
	size_t *out = xcalloc(g->n, sizeof(*out)), *stack = xcalloc(g->n, sizeof(*stack));
	size_t top = 0;
	bool *peeled = xcalloc(g->n, sizeof(*peeled));
	for (size_t i = 0; i < g->n; i++) {
		for (size_t e = c->first[i]; e < c->first[i + 1]; e++)
			out[i] += !ordered[c->child[e]];
		if (!ordered[i] && !out[i])
			stack[top++] = i;
	}
	while (top) {
		size_t i = stack[--top];
		peeled[i] = true;
		for (size_t e = l->first[i]; e < l->first[i + 1]; e++)
			if (!ordered[l->parent[e]] && --out[l->parent[e]] == 0)
				stack[top++] = l->parent[e];
	}
	struct cr_buf files = { 0 };
	size_t shown = 0, cyclic = 0;
	for (size_t i = 0; i < g->n; i++) {
		if (ordered[i] || peeled[i])
			continue;
		if (cyclic++ < 6)
			cr_buf_printf(&files, "%s%s", shown++ ? ", " : "", g->revs[i].path);
	}
	if (cyclic > shown)
		cr_buf_printf(&files, " and %zu more", cyclic - shown);
	cr_error("the revisions form a cycle through down_revision/depends_on: %s", files.data);
	cr_buf_free(&files);
	free(out);
	free(stack);
	free(peeled);
}

static int order_revisions(struct cr_revgraph *g)
{
	struct cr_revgraph_links *l = g->links;
	struct children c;
	children_of(g, &c);
	size_t *waiting = xcalloc(g->n + 1, sizeof(*waiting)); /* parents not yet ordered */
	bool *ordered = xcalloc(g->n + 1, sizeof(*ordered));
	struct heap h = { xcalloc(g->n + 1, sizeof(size_t)), 0, g->revs };
	l->order = xcalloc(g->n + 1, sizeof(*l->order));
	size_t done = 0;
	for (size_t i = 0; i < g->n; i++)
		if ((waiting[i] = l->first[i + 1] - l->first[i]) == 0)
			heap_push(&h, i);
	while (h.n) {
		size_t i = heap_pop(&h);
		ordered[i] = true;
		l->order[done++] = i;
		for (size_t e = c.first[i]; e < c.first[i + 1]; e++)
			if (--waiting[c.child[e]] == 0)
				heap_push(&h, c.child[e]);
	}
	if (done < g->n)
		report_cycle(g, &c, ordered);
	free(h.a);
	free(waiting);
	free(ordered);
	free(c.first);
	free(c.child);
	return done < g->n ? -1 : 0;
}

/* Heads as Alembic counts them: revisions no down_revision names (a revision that is
 * only depended on is still a head, an "effective head" in `alembic heads`). */
static void find_heads(struct cr_revgraph *g)
{
	bool *revised = xcalloc(g->n + 1, sizeof(*revised));
	for (size_t i = 0; i < g->n; i++)
		for (size_t d = 0; d < g->revs[i].down.n; d++)
			revised[g->links->parent[g->links->first[i] + d]] = true;
	for (size_t i = 0; i < g->n; i++)
		if (!revised[i])
			cr_strlist_add(&g->heads, g->revs[i].id);
	if (g->heads.n)
		qsort(g->heads.items, g->heads.n, sizeof(*g->heads.items), cmp_str);
	free(revised);
}

static int link_graph(struct cr_revgraph *g, char **why)
{
	struct strtab labels = { 0 };
	g->links = xcalloc(1, sizeof(*g->links));
	int rc = index_ids(g);
	if (rc == 0)
		rc = index_labels(g, &labels);
	if (rc == 0)
		rc = resolve_parents(g, &labels, why);
	if (rc == 0)
		rc = order_revisions(g);
	if (rc == 0)
		find_heads(g);
	strtab_free(&labels);
	return rc;
}

static int read_scripts(const struct cr_strlist *files, struct cr_revgraph *g, char **why)
{
	g->revs = xcalloc(files->n + 1, sizeof(*g->revs));
	struct script_reader *r = xcalloc(1, sizeof(*r));
	int rc = 0;
	for (size_t i = 0; rc == 0 && i < files->n; i++)
		if ((rc = read_script(r, files->items[i], &g->revs[g->n], why)) == 0)
			g->n++;
	script_reader_free(r);
	free(r);
	return rc;
}

int cr_revgraph_load(const struct cr_alembic_project *p, struct cr_revgraph *g, char **why)
{
	memset(g, 0, sizeof(*g));
	*why = NULL;
	if (p->unsupported) {
		*why = xstrdup(p->unsupported);
		return 1;
	}
	struct cr_strlist files = { 0 };
	int rc = list_scripts(p, &files, why);
	if (rc == 0)
		rc = read_scripts(&files, g, why);
	if (rc == 0)
		rc = link_graph(g, why);
	cr_strlist_free(&files);
	if (rc != 0)
		cr_revgraph_free(g);
	return rc;
}

void cr_revgraph_free(struct cr_revgraph *g)
{
	for (size_t i = 0; i < g->n; i++) {
		struct cr_revision *r = &g->revs[i];
		free(r->id);
		free(r->path);
		cr_strlist_free(&r->down);
		cr_strlist_free(&r->depends_on);
		cr_strlist_free(&r->branch_labels);
	}
	free(g->revs);
	cr_strlist_free(&g->heads);
	if (g->links) {
		strtab_free(&g->links->ids);
		free(g->links->first);
		free(g->links->parent);
		free(g->links->order);
		free(g->links);
	}
	memset(g, 0, sizeof(*g));
}

/* ------------------------------------------------------------------------------------ */
/* What is left to apply: the version table holds only the tips Alembic upgraded to, and
 * everything they stand on (down_revision and depends_on, transitively) is applied. */

int cr_revgraph_missing(const struct cr_revgraph *g, const struct cr_strlist *stored,
			struct cr_strlist *missing)
{
	memset(missing, 0, sizeof(*missing));
	const struct cr_revgraph_links *l = g->links;
	bool *applied = xcalloc(g->n + 1, sizeof(*applied));
	size_t *stack = xcalloc(g->n + 1, sizeof(*stack)), top = 0;
	int rc = 0;
	for (size_t s = 0; s < stored->n && rc == 0; s++) {
		size_t i = l ? strtab_get(&l->ids, stored->items[s]) : SIZE_MAX;
		if (i == SIZE_MAX) {
			cr_error("the database is at revision %s, which none of the revision scripts "
				 "defines (a wrong image, or scripts removed?)", stored->items[s]);
			rc = -1;
		} else if (!applied[i]) {
			applied[i] = true;
			stack[top++] = i;
		}
		while (top) {
			size_t j = stack[--top];
			for (size_t e = l->first[j]; e < l->first[j + 1]; e++)
				if (!applied[l->parent[e]]) {
					applied[l->parent[e]] = true;
					stack[top++] = l->parent[e];
				}
		}
	}
	for (size_t k = 0; k < g->n && rc == 0; k++)
		if (!applied[l->order[k]])
			cr_strlist_add(missing, g->revs[l->order[k]].id);
	free(applied);
	free(stack);
	return rc;
}
