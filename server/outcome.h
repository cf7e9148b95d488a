/*
 * outcome.h - what a finished conversation yields: its optimizations and its metrics.
 *
 * DESIGN: one path for every finished conversation, whether parley ran it
 * (server/engine.c), it was imported, or a stored one is read again with
 * another extraction: the optimizations of the interviewer's analysis turn
 * by the job's extraction method, then the scores of its scoring method and
 * the totals over its turns. The judge's grade is not made here: it is a
 * model call, which only a worker makes (server/judge.h). Pure functions over
 * the turns; no I/O.
 */
#ifndef PARLEY_OUTCOME_H
#define PARLEY_OUTCOME_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "db/turn.h"
#include "server/extract.h"

/* Appends to ol the optimizations of the analysis turn among turns, by extraction ("rubric" when
 * unknown). */
void outcome_extract(const char *extraction, int max_turns, const struct db_turn *turns,
		     size_t nturns, struct optim_list *ol);

/*
 * The job's metrics object (new reference): totals over the turns,
 * optimizations_found, the scores of scoring ("judge" scores as the rubric
 * here; the engine adds the judge's grade) and their components.
 */
json_t *outcome_metrics(const char *scoring, const json_t *scenario, const struct db_turn *turns,
			size_t nturns, const struct optim_list *ol);

/* ol as stored optimizations, extracted at now: a new array whose strings are borrowed from ol. */
struct db_optim *outcome_db_optims(const struct optim_list *ol, int64_t now);

#endif
