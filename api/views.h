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
/* Validates a scenario object; field errors are appended to errs with prefix
 * ("scenario." for an inline one). Fills out on success (name may be NULL). */
int api_scenario_validate(json_t *o, const char *prefix, struct db_scenario *out, json_t *errs);
int api_slug_valid(const char *s);

#endif
