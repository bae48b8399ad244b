/* hpa: pausing and resuming the HorizontalPodAutoscalers of a Deployment while it is
 * stopped, so that none scales it back up during the migration: scale-up disabled, the
 * behaviour from before and the one the pause left recorded in annotations, and on resume
 * the first one back — or only chartreuse's own change taken back when someone else changed
 * the behaviour since (docs/design.md, "Pausing an HPA"). Every write carries the
 * resourceVersion of its read (k8s.h, "Preconditioned writes"). */
#ifndef CR_HPA_H
#define CR_HPA_H

#include <stddef.h>

struct cr_k8s;

/* What pausing and resuming one HPA needs, read before the work is shared out (a tree is
 * not shared between threads; each HPA is handled by the one worker of its Deployment). */
struct cr_hpa {
	char *name;
	char *target;	/* the Deployment it scales */
	char *rv;	/* metadata.resourceVersion, as read */
	char *behavior;	/* spec.behavior as JSON, "null" when none */
	char *recorded;	/* the behaviour before the pause, NULL when not paused */
	char *paused;	/* the behaviour the pause left, NULL when not recorded (a pause by an
			 * older chartreuse, or one interrupted before it was recorded) */
};

struct cr_hpas {
	struct cr_hpa *v;
	size_t n;
};

/* The namespace's HPAs that scale a Deployment: 0, or a failure (reported). */
int cr_hpas_load(struct cr_k8s *k, const char *ns, struct cr_hpas *out);
void cr_hpas_free(struct cr_hpas *h);
/* Pauses (resumes) every HPA of h that scales deployment; one that changes meanwhile is
 * read again and the write decided again; one deleted meanwhile needs nothing. 0, or a
 * failure (reported). */
int cr_hpas_pause(struct cr_k8s *k, const char *ns, const struct cr_hpas *h,
		  const char *deployment);
int cr_hpas_resume(struct cr_k8s *k, const char *ns, const struct cr_hpas *h,
		   const char *deployment);

#endif
