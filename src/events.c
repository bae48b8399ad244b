/* events: Events on the objects a migration acts on (events.h). */
#include "events.h"
#include "k8s.h"
#include "log.h"
#include "util.h"
#include "ytree.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* events.k8s.io's limit on a note; core/v1 takes more, kubectl shows less. */
#define MESSAGE_MAX 1024
#define NAME_MAX_LEN 253

static bool given_up; /* after one failure: the run goes on without Events */

/* "<object>.<hex>", as client-go's recorder names Events: unique per run and moment. */
static char *event_name(const char *object)
{
	static unsigned seq;
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	unsigned long long stamp = (unsigned long long)ts.tv_sec * 1000000000ULL +
				   (unsigned long long)ts.tv_nsec + seq++;
	char suffix[24];
	int n = snprintf(suffix, sizeof(suffix), ".%llx", stamp);
	size_t keep = strlen(object);
	if (keep + (size_t)n > NAME_MAX_LEN)
		keep = NAME_MAX_LEN - (size_t)n;
	return xasprintf("%.*s%s", (int)keep, object, suffix);
}

static void now_text(char out[32])
{
	time_t t = time(NULL);
	struct tm tm;
	gmtime_r(&t, &tm);
	strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static void set_about(struct fy_node *obj, const char *ns, const struct cr_event_about *a)
{
	struct fy_node *ref = yt_child_map(obj, "involvedObject");
	yt_set_str(ref, "apiVersion", a->api_version);
	yt_set_str(ref, "kind", a->kind);
	yt_set_str(ref, "name", a->name);
	yt_set_str(ref, "namespace", ns);
	if (cr_nonempty(a->uid))
		yt_set_str(ref, "uid", a->uid);
}

/* The masked message, cut at a character boundary. */
__attribute__((format(printf, 1, 0)))
static char *message_of(const char *fmt, va_list ap)
{
	char *raw = xvasprintf(fmt, ap);
	char *masked = cr_mask(raw);
	explicit_bzero(raw, strlen(raw));
	free(raw);
	size_t len = strlen(masked);
	if (len > MESSAGE_MAX) {
		len = MESSAGE_MAX;
		while (len && ((unsigned char)masked[len] & 0xC0) == 0x80)
			len--;
		masked[len] = '\0';
	}
	return masked;
}

void cr_event(struct cr_k8s *k, const char *ns, const struct cr_event_about *about,
	      bool warning, const char *reason, const char *fmt, ...)
{
	if (given_up || !k || !about || !cr_nonempty(about->name))
		return;
	va_list ap;
	va_start(ap, fmt);
	char *message = message_of(fmt, ap);
	va_end(ap);
	char stamp[32];
	now_text(stamp);
	char host[256] = "";
	gethostname(host, sizeof(host) - 1);
	char *name = event_name(about->name);
	struct fy_node *root;
	struct fy_document *d = yt_map_document(&root);
	yt_set_str(root, "apiVersion", "v1");
	yt_set_str(root, "kind", "Event");
	struct fy_node *meta = yt_child_map(root, "metadata");
	yt_set_str(meta, "name", name);
	yt_set_str(meta, "namespace", ns);
	set_about(root, ns, about);
	yt_set_str(root, "reason", reason);
	yt_set_str(root, "message", message);
	yt_set_str(root, "type", warning ? "Warning" : "Normal");
	yt_set_str(yt_child_map(root, "source"), "component", "chartreuse");
	yt_set_str(root, "reportingComponent", "chartreuse");
	if (*host)
		yt_set_str(root, "reportingInstance", host);
	yt_set_str(root, "firstTimestamp", stamp);
	yt_set_str(root, "lastTimestamp", stamp);
	yt_set(root, "count", yt_int(d, 1));
	char *path = cr_k8s_path("/api/v1", ns, "events", NULL, NULL);
	cr_log_mute(true); /* one warning below says it all */
	int rc = path ? cr_k8s_post(k, path, root, 0, NULL) : -1;
	cr_log_mute(false);
	if (rc) {
		given_up = true;
		cr_warn("kubernetes: the Event \"%s\" on %s %s could not be recorded (POST %s: %ld); "
			"the migration goes on without Events", reason, about->kind, about->name,
			path ? path : "events", cr_k8s_last_status(k));
	}
	free(path);
	fy_document_destroy(d);
	free(name);
	free(message);
}

const struct cr_event_about *cr_event_own_pod(void)
{
	static struct cr_event_about pod;
	pod = (struct cr_event_about){ "v1", "Pod", getenv("POD_NAME"), getenv("POD_UID") };
	return cr_nonempty(pod.name) ? &pod : NULL;
}
