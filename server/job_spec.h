/*
 * job_spec.h - what a claimed job asks for, parsed once.
 *
 * DESIGN: the store keeps a job's settings as text (the scenario snapshot,
 * the backend options, the judge) so that a job reads the same however the
 * library changes later. A worker parses them once, when it claims the job,
 * into one struct job_spec that the engine, the prompts, the judge and the
 * scoring all read; none of them turns the text into JSON again.
 */
#ifndef PARLEY_JOB_SPEC_H
#define PARLEY_JOB_SPEC_H

#include <jansson.h>

#include "db/job.h"
#include "server/extract.h"
#include "server/score.h"

struct job_spec {
	json_t *scenario;	   /* object: name, problem, context, goal, prompts?; owned */
	json_t *options;	   /* object of backend options, {} when none; owned */
	const char *judge_model;   /* scoring "judge": its model and backend; else NULL */
	const char *judge_backend; /* (both borrowed from judge) */
	json_t *judge;		   /* the job's judge object, or NULL; owned */
	enum extract_method extraction;
	enum score_method scoring;
};

/* Parses j's settings into spec. -1 with e set when the stored text is not what was written. */
int job_spec_parse(const struct db_job *j, struct job_spec *spec, struct perr *e);
void job_spec_release(struct job_spec *spec);

#endif
