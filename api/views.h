/*
 * views.h - resources as the API serves them: a job, its transcript, a
 * batch, a scenario.
 *
 * DESIGN: server/ builds the domain's JSON (server/record.h for a job and a
 * turn, server/summary.h for a batch's statistics); a view adds what only the
 * HTTP side knows: the links (every URL the API hands out is built here, from
 * one table per resource) and the rendered HTML of a transcript's turns.
 */
#ifndef PARLEY_VIEWS_H
#define PARLEY_VIEWS_H

#include <jansson.h>

#include "db/batch.h"
#include "db/job.h"
#include "db/scenario.h"
#include "db/turn.h"

/* The job resource (DESIGN §3) with its links. New reference. */
json_t *view_job(const struct db_job *j);
/* The links of a job: {self, transcript, markdown, events, cancel}. New reference. */
json_t *view_job_links(const char *job_id);
/* The links of an optimization found in a job: {job, transcript, markdown}. New reference. */
json_t *view_found_links(const char *job_id);

/* The transcript: a superset of the origin per-conversation JSON. New reference. */
json_t *view_transcript(const struct db_job_full *t);

/* The batch resource: its summary (server/summary.h) with links. New reference. */
json_t *view_batch(const struct db_batch_full *f);
/* A batch as a list item, with its links. New reference. */
json_t *view_batch_brief(const struct db_batch *b);
/* Adds the links of a summary_batch() result and each conversation's conversation_file. */
void view_batch_links(json_t *batch);

/* A scenario of the library. New reference. */
json_t *api_scenario_json(const struct db_scenario *s);
/* Sets baseline, tasks and objective of s on o (null when absent). */
void api_scenario_work_json(json_t *o, const struct db_scenario *s);

#endif
