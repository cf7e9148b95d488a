/*
 * extract_model.h - extraction "model": a model lists the suggestions of the
 * interviewer's analysis, and only those found in the text are believed.
 *
 * DESIGN: one call under structured output (server/structured.h: a free call
 * slot, the schema in Ollama's "format" / llama-server's "json_schema",
 * cancel obeyed), by the model the job names for it (its "extractor") or
 * else its judge, with temperature 0. The reply must be a JSON array of
 * {title, detail, test}; it is checked here, whatever the server promised.
 * A suggestion whose title, normalised (case, markup and punctuation
 * dropped), does not occur in the normalised analysis is dropped: a model
 * that invents a suggestion is not believed. When the call or its reply
 * fails, the tree extractor (extract.h, "rubric") reads the analysis
 * instead. Every optimization says which method found it, and the job's
 * metrics say what the extractor did ("extractor": model, backend, kept,
 * dropped titles, error).
 */
#ifndef PARLEY_EXTRACT_MODEL_H
#define PARLEY_EXTRACT_MODEL_H

#include <curl/curl.h>
#include <jansson.h>
#include <stdatomic.h>

#include "db/job.h"
#include "db/turn.h"
#include "server/extract.h"
#include "server/fleet.h"

/* The instructions the extracting model gets (its system prompt). */
extern const char extract_model_prompt[];

/* The schema of a reply: a new reference. */
json_t *extract_model_schema(void);

/*
 * Checks a reply against the schema and the analysis text: appends to out
 * the suggestions whose titles occur in text (method "model", turn), and to
 * dropped (a JSON array) the titles that do not. Returns 0, or -1 with e
 * saying how the reply breaks the schema (nothing appended then).
 */
int extract_model_parse(const char *reply, const char *text, int turn, struct optim_list *out,
			json_t *dropped, struct perr *e);

/*
 * For a job whose extraction is "model": appends the optimizations of its
 * analysis turn among turns to out and returns what the extractor did (a new
 * object, for the job's metrics). NULL, and nothing appended, for any other
 * extraction.
 */
json_t *extract_model_job(struct fleet *fleet, CURL *curl, const atomic_int *cancel,
			  const struct db_job *job, const struct db_turn *turns, size_t nturns,
			  struct optim_list *out);

#endif
