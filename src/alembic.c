/* alembic: an Alembic project's ini read the way Alembic reads it (ConfigParser's rules,
 * interpolation, where the revision scripts live), and the copy of it handed to Alembic.
 * The scripts are read by alembic_script.c, the graph built by revgraph.c. */
/* memmem is a GNU extension. */
#define _GNU_SOURCE
#include "alembic.h"
#include "file.h"
#include "log.h"
#include "util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
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
			(cr_ends_with(e->d_name, ".py") || cr_ends_with(e->d_name, ".pyc") ||
			 cr_ends_with(e->d_name, ".so"));
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
