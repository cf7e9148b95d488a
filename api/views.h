/*
 * views.h - resources as JSON: a job, its transcript, a scenario.
 */
#ifndef PARLEY_VIEWS_H
#define PARLEY_VIEWS_H

#include <jansson.h>

#include "db/job.h"
#include "db/scenario.h"
#include "db/turn.h"

/* The job resource (DESIGN §3). New reference. */
json_t *view_job(const struct db_job *j);

/* The transcript: a superset of the origin per-conversation JSON. New reference. */
json_t *view_transcript(const struct db_job *j, const struct db_turn *turns, size_t nturns,
			const struct db_optim *optims, size_t noptims);

json_t *api_scenario_json(const struct db_scenario *s);
/* Sets baseline, tasks and objective of s on o (null when absent). */
void api_scenario_work_json(json_t *o, const struct db_scenario *s);
/* Validates a scenario object; field errors are appended to errs with prefix
 * ("scenario." for an inline one). Fills out on success (name may be NULL). */
int api_scenario_validate(json_t *o, const char *prefix, struct db_scenario *out, json_t *errs);
int api_slug_valid(const char *s);

/*
 * Validation of a job's fields (api/jobs.c), shared by POST /v1/jobs and
 * POST /v1/batches. Each appends {field, message} items to errs and fills
 * what it checked on success; nothing is filled for a field in error.
 */
struct api_req;
void api_field_error(json_t *errs, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Every key of o not in keys (NULL-terminated) is an error "<prefix><key>: unknown field". */
void api_reject_unknown(json_t *o, const char *const *keys, const char *prefix, json_t *errs);
/* p (borrowed, may be NULL) as {model, backend?}; backend defaults to the first configured. */
void api_check_party(struct api_req *q, json_t *p, const char *field, char **model, char **backend,
		     json_t *errs);
/* v: a stored scenario's name or an inline object; fills j->scenario_name and j->scenario. */
void api_check_scenario(struct api_req *q, json_t *v, const char *field, struct db_job *j,
			json_t *errs);
/* max_turns, options, scoring, judge, extraction, labels of body, defaults filled into j. */
void api_check_job_fields(struct api_req *q, json_t *body, struct db_job *j, json_t *errs);

#endif
