/* Kubeconfig files as src/kubeconfig.c reads them: YAML, contexts, clusters and users
 * found by name across files merged like kubectl's KUBECONFIG list (the first file that
 * names something wins), base64 -data fields, exec plugin settings; then the deep copy a
 * worker thread's client gets.
 *
 * Input: up to 3 files separated by a line "#### next file ####". Nothing is run and no
 * file the kubeconfig names is opened (that happens when a client connects). */
#include "fuzz.h"
#include "kubeconfig.h"

#define MAX_FILES 3
#define SEPARATOR "\n#### next file ####\n"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	fz_quiet();
	struct fz_piece f[MAX_FILES];
	size_t n = fz_split(data, size, SEPARATOR, f, MAX_FILES);
	struct cr_buf paths = { 0 };
	for (size_t i = 0; i < n; i++) {
		char name[16];
		snprintf(name, sizeof(name), "kubeconfig%zu", i);
		char *path = fz_write(name, f[i].s, f[i].len);
		cr_buf_printf(&paths, "%s%s", i ? ":" : "", path);
		free(path);
	}
	struct cr_kcfg cfg, copy;
	if (cr_kcfg_from_files(paths.data, NULL, NULL, &cfg) == 0) {
		cr_kcfg_copy(&copy, &cfg);
		cr_kcfg_free(&copy);
		cr_kcfg_free(&cfg);
	}
	/* A context named on the command line, and a namespace that overrides the context's. */
	if (cr_kcfg_from_files(paths.data, "fuzz", "other", &cfg) == 0)
		cr_kcfg_free(&cfg);
	cr_buf_free(&paths);
	cr_secrets_clear();
	return 0;
}
