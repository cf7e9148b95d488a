/*
 * summary.h - a batch as JSON: its conversations, the origin's summary
 * metrics, rankings, latency per model, the spread of repeated runs; and the
 * comparison of two batches.
 *
 * DESIGN: pure functions over what the store holds (the batch row, its jobs
 * in order, their turns' timings); no I/O, so the maths is unit-tested
 * directly. The numbers follow the origin's phase2_results.json, with its
 * mistakes fixed: averages are plain means over the conversations that
 * succeeded, success_rate is succeeded / (succeeded + failed) so a failure
 * counts against it (a conversation cancelled by a user counts in neither),
 * and model_performance is keyed by the candidate's model name (model@backend
 * when one model was given on two backends). Rankings: most optimizations
 * found first; ties broken by the higher average interview quality, then by
 * the order the candidates were given in. Latency per model comes from every
 * stored turn that model spoke in the batch: median and 90th percentile
 * (nearest rank) of the turn's wall time and of its time to first token, and
 * tokens per second as all completion tokens over all generation time.
 * Spread (repeat > 1): per candidate and scenario, the mean, minimum, maximum
 * and sample standard deviation of each score over the runs that succeeded.
 * Domain only: the links and the origin's conversation_file (a URL) are
 * added by the API's view (api/views.h).
 */
#ifndef PARLEY_SUMMARY_H
#define PARLEY_SUMMARY_H

#include <jansson.h>
#include <stddef.h>

#include "db/batch.h"
#include "db/job.h"

#define SUMMARY_RANKING_RULE                                                                       \
	"ranked by optimizations found (most first); ties broken by average interview quality "    \
	"(highest first), then by the order the candidates were given in"

/*
 * The batch resource (DESIGN §3) with the origin's summary shape: jobs in the
 * batch's order, turns as db_batch_turn_stats() gives them. New reference.
 */
json_t *summary_batch(const struct db_batch *b, const struct db_job *jobs, size_t njobs,
		      const struct db_turn_stat *turns, size_t nturns);

/* The batch as a list item: what was asked for, status and counts. New reference. */
json_t *summary_batch_brief(const struct db_batch *b);

/*
 * Two batches side by side (a and b are summary_batch() results, borrowed):
 * for the models and scenarios both have, the values of each and the delta
 * b - a of optimizations, scores, success rate and latency. New reference.
 */
json_t *summary_compare(const json_t *a, const json_t *b);

/* Statistics (exposed for tests). v is sorted in place; n > 0. */
double summary_median(double *v, size_t n);
double summary_p90(double *v, size_t n);
/* Sample standard deviation; n > 1. */
double summary_stdev(const double *v, size_t n);

#endif
