/* es: Elasticsearch, as far as chartreuse needs it before a migration — waiting until the
 * cluster is at least yellow. (The eslembic steps are in eslembic.h.) */
#ifndef CR_ES_H
#define CR_ES_H

/* Waits until <url>/_cluster/health?wait_for_status=yellow answers with status yellow or
 * green, up to timeout_s seconds, printing progress. 0 when ready, -1 at the deadline
 * (reported, URL masked). */
int cr_es_wait(const char *url, int timeout_s);

#endif
