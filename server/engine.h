/*
 * engine.h - drives one claimed job through its turns to its end.
 *
 * DESIGN: runs on a worker thread with that worker's database connection and
 * curl handle. For each turn still missing (a resumed job starts at its next
 * turn) it builds the speaker's messages (prompt.h), sends the call to the
 * slot the conversation holds for that role (server/fleet.h), makes the streamed call with retries
 * on transient failures (exponential backoff with jitter, Retry-After honoured, a turn cut after
 * partial output restarted from scratch and noted), and stores the turn under the attempt number of
 * its claim. After the interviewer's analysis it extracts the optimizations, scores the
 * conversation (a judge model grades it when asked to) and finishes the job in one transaction.
 * Cancellation and shutdown are seen within a fraction of a second, at any point: the cancel flag
 * aborts the model call, and every wait (slot, backoff) wakes for it. Before and after every model
 * call the engine asks server/ending.h whether the job goes on; every end of the job goes through
 * there.
 */
#ifndef PARLEY_ENGINE_H
#define PARLEY_ENGINE_H

#include <curl/curl.h>
#include <stdatomic.h>

#include "db/db.h"
#include "db/job.h"
#include "db/turn.h"
#include "server/config.h"
#include "server/ending.h"
#include "server/fleet.h"

struct engine_ctx {
	const struct config *cfg;
	struct fleet *fleet;
	/* the slots the worker pool took for this conversation (server/fleet.h); its calls go to
	 * them, and it is released once the turns are done */
	struct fleet_lease *lease;
	struct db *db;
	CURL *curl;
	atomic_int *cancel;   /* raised by a cancel request for this job, or at shutdown */
	atomic_int *stopping; /* the pool is shutting down: give the job back, don't fail it */
	/* sleeps up to ms; returns early (non-zero) when cancel is raised */
	int (*wait_ms)(void *ud, long ms);
	void *wait_ud;
};

/*
 * Runs the job to its end and says which end (server/ending.h): JOB_FINISHED,
 * JOB_REQUEUED or JOB_LOST, never JOB_GOES_ON.
 */
enum job_end engine_run(struct engine_ctx *ctx, struct db_job *job);

/* Index of the interviewer's analysis turn for max_turns and the stored
 * turns (an early #stop_progress brings it forward). Exposed for tests. */
int engine_analysis_turn(int max_turns, const struct db_turn *turns, size_t nturns);
/* Total number of turns the conversation will have. */
int engine_last_turn(int max_turns, const struct db_turn *turns, size_t nturns);

/*
 * The wait before attempt + 1 of a failing call or store write: capped
 * exponential backoff from retry_base_delay_ms to retry_max_delay_ms with
 * jitter, and never less than a server's own Retry-After (retry_after_ms).
 */
long engine_backoff_ms(const struct config *cfg, int attempt, long retry_after_ms);

#endif
