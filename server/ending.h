/*
 * ending.h - the one place a job ends: cancelled, given back at shutdown,
 * finished, or let go when its claim was lost.
 *
 * DESIGN: a worker holds a claimed job in a struct ending. Before every model
 * call it makes for the job (a turn, the judge, and whatever calls later
 * steps add) and after every one, it asks ending_check(), which reads the
 * worker's cancel flag, the pool's shutdown flag and the job's stored cancel
 * request, and when one of them ends the job, ends it there: a cancel writes
 * the job cancelled, keeping what the job has so far (its turns are already
 * stored; en->metrics and en->optims are written with it); a shutdown that
 * cut a call, or comes before one, gives the job back to the queue so a
 * restart resumes it. Every way out (ending_finish, ending_requeue,
 * ending_lost) clears the job's turn in progress from the event hub and
 * publishes the job as the store now has it, with job_finished when it has
 * ended, so no follower of /events is left waiting. The cancel requests of
 * the API (one job, a batch) come here too: a queued job ends at once and is
 * published here, a running one has its worker's cancel flag raised and its
 * worker ends it through ending_check().
 */
#ifndef PARLEY_ENDING_H
#define PARLEY_ENDING_H

#include <jansson.h>
#include <stdatomic.h>

#include "db/db.h"
#include "server/extract.h"

struct pool;

/* What became of a job, as its worker returns it to the pool. */
enum job_end {
	JOB_GOES_ON,  /* nothing ended it: the worker goes on with the job */
	JOB_FINISHED, /* succeeded, failed or cancelled, and stored */
	JOB_REQUEUED, /* given back to the queue (shutdown, or the store failed) */
	JOB_LOST,     /* the claim went stale, or the store failed twice: nothing written */
};

struct ending {
	struct db *db;		    /* the worker's connection */
	const char *job_id;	    /* borrowed */
	int attempt;		    /* the claim's attempt number */
	const atomic_int *cancel;   /* the worker's cancel flag (a cancel, or shutdown's abort) */
	const atomic_int *stopping; /* the pool is shutting down */
	json_t *metrics; /* what an ending writes as the job's metrics; owned, may be NULL */
	const struct optim_list *optims; /* the optimizations found so far; borrowed, may be NULL */
	/* how a failing store write is waited on (ending_set_waiter); cfg NULL: tried once */
	const struct config *cfg;
	int (*wait_ms)(void *ud, long ms); /* nonzero when woken early (cancel, shutdown) */
	void *wait_ud;
	atomic_int *cancel_rw; /* the same flag as cancel, lowered once a cancel is seen */
};

struct config;

/* Where the worker is when it asks ending_check(). */
enum ending_point {
	ENDING_BEFORE_CALL, /* about to make a model call */
	ENDING_CALL_CUT,    /* the call just made was cut short (cancel flag, shutdown) */
	ENDING_CALL_DONE,   /* the call just made came back on its own, well or not */
};

/*
 * Sets up en for a claimed job (metrics NULL, optims NULL) and
 * ending_release() drops its metrics.
 */
void ending_init(struct ending *en, struct db *db, const char *job_id, int attempt,
		 const atomic_int *cancel, const atomic_int *stopping);
void ending_release(struct ending *en);
/* Replaces en->metrics (steals m). */
void ending_set_metrics(struct ending *en, json_t *m);
/* How store writes that fail are retried: the worker's config, its wait and cancel flag. */
void ending_set_waiter(struct ending *en, const struct config *cfg,
		       int (*wait_ms)(void *ud, long ms), void *wait_ud, atomic_int *cancel);

/*
 * Store writes that fail. The work already done (a model's reply) is kept and
 * only the write is tried again, with capped exponential backoff. A condition
 * of the store that someone will fix (a full disk, another process's lock, a
 * deleted file: PERR_STORE_BUSY, PERR_STORE_UNAVAILABLE) is waited out for as
 * long as it lasts; anything else (a corrupt page, a refused row) is tried
 * retry_max_attempts times. Shutdown ends the wait at once; a cancel ends it
 * when stop_on_cancel, else it is seen and the write goes on (the job's end
 * is what is being written).
 */
enum ending_store {
	ENDING_STORED,	  /* fn succeeded */
	ENDING_STALE,	  /* PERR_CONFLICT: the claim is gone */
	ENDING_GAVE_UP,	  /* a failure that is not a condition, retry_max_attempts times */
	ENDING_CANCELLED, /* a cancel ended the wait */
	ENDING_STOPPING,  /* shutdown ended the wait */
};
enum ending_store ending_store(struct ending *en, const char *what,
			       int (*fn)(void *arg, struct perr *e), void *arg, int stop_on_cancel,
			       int *attempts, struct perr *e);
/*
 * How a job whose write could not be stored ends (what names the write, for
 * the error): JOB_LOST, cancelled, requeued at shutdown, or failed with
 * store_failed, an error that says the store is the cause.
 */
enum job_end ending_store_failed(struct ending *en, enum ending_store how, const char *what,
				 int attempts, const struct perr *e);

/*
 * Whether the job goes on. A cancel request (stored, or the cancel flag
 * outside shutdown) ends the job cancelled; shutdown requeues it before a
 * call, after a cut call, and after a call that came back while the cancel
 * flag was raised (its result may be the cut). Returns JOB_GOES_ON, or how
 * the job ended here.
 */
enum job_end ending_check(struct ending *en, enum ending_point at);

/*
 * Writes the job's final state (status "succeeded", "failed" or
 * "cancelled", the error or NULLs, en->metrics and en->optims) in one
 * transaction and publishes it, retrying the write as ending_store() does. A
 * stale claim is JOB_LOST; an end that cannot be stored as it is (after the
 * retries) is stored as failed with store_failed; shutdown during the wait,
 * or a store that refuses even that, gets the job requeued (JOB_REQUEUED) so
 * it is not left running.
 */
enum job_end ending_finish(struct ending *en, const char *status, const char *code,
			   const char *msg);
/* Gives the job back to the queue: JOB_REQUEUED, or JOB_LOST when the claim is gone. */
enum job_end ending_requeue(struct ending *en);
/* The claim is gone (another worker holds the job): clears what this worker showed. */
enum job_end ending_lost(struct ending *en);

/* Publishes the job as the store has it: a status event, and job_finished once it has ended. */
void ending_publish(struct db *db, const char *job_id);

/*
 * A cancel request for one job: a queued job is cancelled and published as
 * ended at once, a running one is flagged and its worker is told. was gets
 * the status the job had; a finished job is left as it is. 0, or -1 with e.
 */
int ending_cancel_job(struct db *db, struct pool *pool, const char *id, char was[16],
		      struct perr *e);
/* The same for every unfinished job of a batch (db_batch_cancel() says which). */
int ending_cancel_batch(struct db *db, struct pool *pool, const char *batch_id, struct perr *e);

#endif
