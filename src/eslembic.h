/* eslembic: the Elasticsearch side of a migration, with the `eslembic` CLI (shaped like
 * alembic) run in the eslembic directory as an argv, never a shell; its output is streamed
 * as "[eslembic] ...", masked.
 *
 * - Decide: `eslembic current`; up to date iff a line of its output contains "(head)".
 * - Upgrade (while the pods are stopped, after the Alembic upgrades): `eslembic upgrade
 *   head` (the index schema).
 * - Follow-up (eslembic.migrate or eslembic.cleanIndex): after a successful upgrade, the
 *   Job <release>-<name>-migrate is created through the Kubernetes API; it runs `eslembic
 *   migrate` (data) and then `eslembic clean` (old indices). Never two at once: while one
 *   runs, a migration that would upgrade the indices is refused before anything changes;
 *   a finished one is deleted (propagationPolicy Background) and gone before the new one.
 *
 * The URL ($CHARTREUSE_ESLEMBIC_URL, from the Job's Secret, else eslembic.url) reaches
 * eslembic only through its environment, as CHARTREUSE_ESLEMBIC_URL and ELASTICSEARCH_URLS:
 * never on a command line or on disk. The follow-up Job reads it from a Secret that is
 * created with it and owned by it (the migration's own Secret is a Helm hook, deleted when
 * the migration Job succeeds). The program is $CHARTREUSE_ESLEMBIC, else `eslembic`. */
#ifndef CR_ESLEMBIC_H
#define CR_ESLEMBIC_H

#include <libfyaml.h>
#include <stdbool.h>

struct cr_config;
struct cr_eslembic_run;

/* Eslembic is part of this migration: eslembic.url or eslembic.urlSecret is configured, or
 * $CHARTREUSE_ESLEMBIC_URL is set (the ConfigMap the Job reads has no url). */
bool cr_eslembic_configured(const struct cr_config *cfg);

/* Runs `eslembic current` and, when an upgrade is needed (and not dry_run), checks that no
 * follow-up Job is running. *out is NULL when eslembic is not configured; a failed
 * `eslembic current` gives a run in the failed state (reported in the summary). Returns -1
 * (reported) when the whole migration must be refused before anything is done: a follow-up
 * Job still runs, or what the follow-up needs (release, image, the API) is missing. */
int cr_eslembic_prepare(const struct cr_config *cfg, bool dry_run, struct cr_eslembic_run **out);

/* Every function below accepts NULL (eslembic not configured) and then does nothing. */
bool cr_eslembic_needed(const struct cr_eslembic_run *es);
/* The upgrade is needed but will not run (the pods could not be stopped): failed, why. */
void cr_eslembic_not_run(struct cr_eslembic_run *es, const char *why);
/* `eslembic upgrade head` if needed, then the follow-up Job if configured. */
void cr_eslembic_upgrade(struct cr_eslembic_run *es);
/* One summary line, like a database's: on stdout for a dry run, else in the log. */
void cr_eslembic_report(const struct cr_eslembic_run *es, bool dry_run);
/* The outcome as one word for -o json|yaml: up-to-date, migration-needed, migrated, failed. */
const char *cr_eslembic_outcome_name(const struct cr_eslembic_run *es);
bool cr_eslembic_failed(const struct cr_eslembic_run *es);
/* False only when a failed `eslembic upgrade head` may have changed the indices (`eslembic
 * current` no longer says what it said before, or can't tell). */
bool cr_eslembic_unchanged(const struct cr_eslembic_run *es);
void cr_eslembic_free(struct cr_eslembic_run *es);

/* Pure parts, for the unit tests. */
/* `eslembic current` output says the index is at its head. */
bool cr_eslembic_at_head(const char *output);
/* A Job object (as the API returns it) is finished: a Complete or Failed condition is True
 * and no Pod is active. Otherwise *why (static text) says why it counts as running. */
bool cr_eslembic_job_finished(struct fy_node *job, const char **why);

#endif
