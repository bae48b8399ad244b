#include "pods.h"
#include "config.h"
#include "log.h"

static int no_client(const struct cr_config *cfg, const char *what)
{
	cr_error("cannot %s the Deployments of release %s: the Kubernetes client is not built "
		 "into this version; run with stopPods: false (CHARTREUSE_ENABLE_STOP_PODS=false) "
		 "to migrate with the pods up", what, cfg->release ? cfg->release : "(unknown)");
	return -1;
}

int cr_pods_stop(const struct cr_config *cfg)
{
	return no_client(cfg, "stop");
}

int cr_pods_start(const struct cr_config *cfg)
{
	return no_client(cfg, "start");
}
