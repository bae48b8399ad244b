/* The post-renderer's input: the whole stream Helm hands it (src/manifest.c scans it, the
 * ChartreuseConfig documents in it are parsed, validated, merged and rendered by
 * src/cmd/post_render.c). Each input runs twice: as Helm 4 runs it (no arguments, so the
 * release and namespace come from the manifests), and as the wrapper runs it (--release,
 * --namespace and --set values that make any stream renderable, so rendering is reached
 * whatever the chart's config says). Output goes to /dev/null. */
#include "cmd/cmd.h"
#include "fuzz.h"

#include <fcntl.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int devnull = -1;
	if (devnull < 0) {
		devnull = open("/dev/null", O_WRONLY | O_CLOEXEC);
		if (devnull < 0)
			abort();
		fz_quiet();
	}
	static const char *sets[] = {
		"image.repository=registry.example.com/app",
		"databases[0].host=db",
		"databases[0].user=app",
		"databases[0].database=app",
		"databases[0].password=fuzz-pa$$word",
	};
	struct cr_post_render_options bare = { 0 };
	struct cr_post_render_options wrapper = {
		.release = "fuzz",
		.namespace = "fuzz-ns",
		.sets = sets,
		.n_sets = sizeof(sets) / sizeof(sets[0]),
	};
	cr_post_render(&bare, (const char *)data, size, devnull);
	cr_post_render(&wrapper, (const char *)data, size, devnull);
	cr_secrets_clear();
	return 0;
}
