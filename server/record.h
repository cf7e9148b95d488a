/*
 * record.h - stored things as JSON, the one way: a job resource and a
 * transcript turn. The API's views and the live events both use these, so a
 * turn looks the same whether it is read later or watched as it happens.
 */
#ifndef PARLEY_RECORD_H
#define PARLEY_RECORD_H

#include <jansson.h>

#include "db/job.h"
#include "db/turn.h"

/*
 * The job resource (DESIGN §3) without its links: URLs are the API's to
 * build (api/views.h view_job() adds them). New reference.
 */
json_t *record_job(const struct db_job *j);
/* The job's error as {code, message}, or null. New reference. */
json_t *record_error(const struct db_job *j);
/* One transcript conversation item: origin fields plus metrics. New reference. */
json_t *record_turn(const struct db_turn *t);
/*
 * j as compact JSON text, every real in at most 16 significant digits: 0.7
 * rather than 0.69999999999999996, while a mean the origin's Python printed
 * as 8.666666666666666 reads the same here. Every JSON answer and event goes
 * out through this. The caller frees the text; NULL when j cannot be encoded.
 */
char *record_dumps(const json_t *j);
/* The json_dump flags of record_dumps(), for a caller that prints into its own buffer. */
#define RECORD_DUMP_FLAGS (JSON_COMPACT | JSON_REAL_PRECISION(16))
/* A JSON text the store holds, parsed (a new reference); fallback (stolen) when text is
 * NULL or not JSON, else fallback is released. */
json_t *record_json(const char *text, json_t *fallback);
/* ISO 8601 string, or null for a time not yet known (<= 0). New reference. */
json_t *record_time(int64_t us);

#endif
