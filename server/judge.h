/*
 * judge.h - a third model grades a finished conversation against a written
 * rubric ("scoring": "judge").
 *
 * DESIGN: one backend call per job, made by the worker that ran the job,
 * after the conversation and before the job is finished. The judge gets the
 * rubric (judge_rubric, versioned by JUDGE_RUBRIC_VERSION; change the
 * version whenever the text changes, so stored grades say which rubric they
 * answered) as its system prompt and the transcript as the user message, and
 * the request carries a JSON schema as structured output (Ollama "format",
 * llama-server "json_schema"), so a conforming server can only answer with
 * an object of the schema's shape. The reply is still checked against the
 * schema here: a server that ignores it, or a model that says something
 * else, gives a recorded error, never a made-up grade. The grade is stored
 * beside the rubric scores (metrics.judge), never instead of them, and a
 * judge that fails does not fail the job.
 */
#ifndef PARLEY_JUDGE_H
#define PARLEY_JUDGE_H

#include <curl/curl.h>
#include <jansson.h>
#include <stdatomic.h>
#include <stddef.h>

#include "db/turn.h"
#include "server/fleet.h"

#define JUDGE_RUBRIC_VERSION "parley-judge-rubric/1"

/* The rubric the judge grades against (its system prompt). */
extern const char judge_rubric[];

/* The schema of a grade: a new reference. */
json_t *judge_schema(void);

/* The user message: the scenario and the transcript, turn by turn. Appended to out. */
void judge_prompt(const json_t *scenario, const struct db_turn *turns, size_t nturns,
		  struct strbuf *out);

/*
 * Checks a judge's reply against judge_schema(): a JSON object with exactly
 * interview_quality and candidate_engagement (integers 0 to 10) and their
 * *_reasoning (non-empty strings, kept to one line). Returns a new object of
 * those four fields, or NULL with e saying what was wrong.
 */
json_t *judge_parse(const char *reply, struct perr *e);

struct judge_call {
	struct fleet *fleet;
	CURL *curl;		  /* the worker's handle */
	const atomic_int *cancel; /* the job's cancel flag; may be NULL */
	const char *model;	  /* the judge's model and backend (struct job_spec); */
	const char *backend;	  /* either may be NULL, which the grade records as an error */
	const json_t *scenario;	  /* the job's scenario snapshot */
	const json_t *options;	  /* the job's options (num_ctx is passed on); may be NULL */
	const struct db_turn *turns;
	size_t nturns;
};

/*
 * Grades the conversation: takes a call slot on the judge's backend, makes
 * one call, checks the reply. Returns a new object, never NULL: {"model",
 * "backend", "rubric_version", "interview_quality", "interview_quality_reasoning",
 * "candidate_engagement", "candidate_engagement_reasoning", "wall_ms"} on
 * success, or {"model", "backend", "rubric_version", "error", "reply"?} when
 * the judge could not grade (reply: the start of what it said, if anything).
 */
json_t *judge_run(const struct judge_call *c);

#endif
