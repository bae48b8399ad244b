/* The post-renderer's input: the whole stream Helm hands it, and the options it is run with
 * (src/manifest.c cuts the stream and reads what it must, src/cmd/post_render.c loads,
 * merges and renders the configs). The first byte of the input picks the options, the rest
 * is the stream, so that libFuzzer varies both and an error path reached with one set of
 * options is also tried with the others (a crash in the cleanup after an early error, with
 * --config, hid there). Output goes to /dev/null. */
#include "cmd/cmd.h"
#include "fuzz.h"

#include <fcntl.h>

enum {
	O_RELEASE = 1 << 0,    /* --release fuzz */
	O_NAMESPACE = 1 << 1,  /* --namespace fuzz-ns */
	O_CONFIG = 1 << 2,     /* --config: a file that makes any stream renderable */
	O_SETS = 1 << 3,       /* --set: the same settings, one by one */
	O_HOOKS_TO = 1 << 4,   /* --hooks-to (Helm 3's wrapper) */
	O_BAD_CONFIG = 1 << 5, /* a second --config that can't be read */
	O_BAD_SET = 1 << 6,    /* a --set that is refused */
	O_NAMING = 1 << 7,     /* a --config giving release and namespace: nothing to infer */
};

static const char good_config[] = "image: {repository: registry.example.com/app}\n"
				  "databases: [{host: db, user: app, database: app,\n"
				  "             password: fuzz-pa$$word}]\n";
static const char naming_config[] = "release: fuzz\nnamespace: fuzz-ns\n";

struct fixture {
	int devnull;
	char *good, *naming, *missing, *hooks;
};

static const struct fixture *fixture(void)
{
	static struct fixture f = { .devnull = -1 };
	if (f.devnull < 0) {
		f.devnull = open("/dev/null", O_WRONLY | O_CLOEXEC);
		if (f.devnull < 0)
			abort();
		fz_quiet();
		f.good = fz_write("config.yaml", good_config, sizeof(good_config) - 1);
		f.naming = fz_write("naming.yaml", naming_config, sizeof(naming_config) - 1);
		f.missing = fz_path("no-such-config.yaml");
		f.hooks = fz_path("hooks.yaml");
	}
	return &f;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const struct fixture *f = fixture();
	unsigned opts = size ? data[0] : 0;
	static const char *good_sets[] = {
		"image.repository=registry.example.com/app",
		"databases[0].host=db",
		"databases[0].user=app",
		"databases[0].database=app",
		"databases[0].password=fuzz-pa$$word",
	};
	const char *configs[3], *sets[6];
	struct cr_post_render_options o = { .configs = configs, .sets = sets };
	if (opts & O_RELEASE)
		o.release = "fuzz";
	if (opts & O_NAMESPACE)
		o.namespace = "fuzz-ns";
	if (opts & O_HOOKS_TO)
		o.hooks_to = f->hooks;
	if (opts & O_CONFIG)
		configs[o.n_configs++] = f->good;
	if (opts & O_NAMING)
		configs[o.n_configs++] = f->naming;
	if (opts & O_BAD_CONFIG)
		configs[o.n_configs++] = f->missing;
	if (opts & O_SETS)
		for (size_t i = 0; i < sizeof(good_sets) / sizeof(*good_sets); i++)
			sets[o.n_sets++] = good_sets[i];
	if (opts & O_BAD_SET)
		sets[o.n_sets++] = "stopPods=maybe";
	cr_post_render(&o, (const char *)data + (size ? 1 : 0), size ? size - 1 : 0, f->devnull);
	cr_secrets_clear();
	return 0;
}
