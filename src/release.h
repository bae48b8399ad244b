/* release: whether a Helm release exists in a namespace — the question `status` and
 * `restore` answer before anything else, so that a typo in a name is not taken for a
 * release with nothing to report. */
#ifndef CR_RELEASE_H
#define CR_RELEASE_H

struct cr_k8s;

enum cr_release_found {
	CR_RELEASE_FOUND = 0,
	CR_RELEASE_ABSENT = 1,	     /* no Helm release record and no ExpectedDeploymentScale */
	CR_RELEASE_NO_NAMESPACE = 2, /* the namespace itself does not exist */
	CR_RELEASE_UNKNOWN = 3,	     /* not allowed to look (403): cannot tell */
};

/* For a release with no ExpectedDeploymentScale (the caller listed them): the namespace
 * (GET; a 403 is not a verdict) and Helm's release records in it (Secrets, or ConfigMaps
 * with HELM_DRIVER=configmap, labelled owner=helm,name=<release>). A 403 is returned as
 * CR_RELEASE_UNKNOWN without a message; -1 on any other failure (reported). */
int cr_release_find(struct cr_k8s *k, const char *ns, const char *release);

/* The one line saying so, for found ABSENT or NO_NAMESPACE (caller frees). */
char *cr_release_absent_text(int found, const char *ns, const char *release);

#endif
