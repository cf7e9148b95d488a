/*
 * batch.h - batches: one interviewer, N candidates, M scenarios, run as jobs.
 *
 * DESIGN: a batch row keeps what was asked for (the candidates and scenario
 * snapshots in the order given, repeat, the per-job settings); its jobs are
 * ordinary jobs that name it (jobs.batch_id) and run like any other. The
 * batch and all its jobs are inserted in one transaction, so a client never
 * sees half a batch, and the jobs' insertion order is the batch's order
 * (candidates outer, scenarios inner, repeats innermost). A batch has no
 * state of its own beyond a cancel mark: its status and counts are read from
 * its jobs each time.
 */
#ifndef PARLEY_DB_BATCH_H
#define PARLEY_DB_BATCH_H

#include <stddef.h>
#include <stdint.h>

#include "db/db.h"
#include "db/job.h"

#define DB_BATCH_ID_LEN 20 /* "b" + 16 hex + NUL, rounded */

struct db_batch {
	int64_t seq;
	char id[DB_BATCH_ID_LEN];
	char *interviewer_model, *interviewer_backend;
	char *candidates; /* JSON array text of {model, backend} */
	char *scenarios;  /* JSON array text of scenario snapshots {name, problem, context, goal} */
	int repeat;
	int max_turns;
	char *options, *scoring, *extraction, *judge, *labels; /* as in struct db_job */
	char *extractor;				       /* as in struct db_job */
	int64_t created_at, cancelled_at;		       /* -1 when not cancelled */
	/* read from the jobs */
	int64_t counts[DB_NSTATES];
	int64_t finished_at; /* the last job's end once every job has ended, else -1 */
};

void db_batch_release(struct db_batch *b);
void db_batches_free(struct db_batch *v, size_t n);

/* "queued", "running", "finished" or "cancelled", from the counts and the cancel mark. */
const char *db_batch_status(const struct db_batch *b);

/*
 * Inserts b and its n jobs (each a filled struct db_job; batch_id is set
 * here) in one transaction. Fills b->id, b->seq, b->created_at and each job's
 * id. PERR_UNAVAILABLE when the queue (max_queued > 0) has no room for n.
 */
int db_batch_insert(struct db *db, struct db_batch *b, struct db_job *jobs, size_t n,
		    int max_queued, struct perr *e);

int db_batch_get(struct db *db, const char *id, struct db_batch *out, struct perr *e);

/* Newest first, before before_seq (0 = from the newest), at most limit. */
int db_batch_list(struct db *db, int64_t before_seq, int limit, struct db_batch **out, size_t *n,
		  struct perr *e);

/*
 * Cancels what has not finished, in one transaction: queued jobs become
 * cancelled, running ones get cancel_requested (their workers end them), and
 * the batch is marked. *running (a new array of *nrunning ids, free each and
 * the array) names the running jobs to wake; *queued counts the jobs
 * cancelled outright. Returns 0, or -1 (PERR_NOT_FOUND, or PERR_CONFLICT when
 * every job has already ended).
 */
int db_batch_cancel(struct db *db, const char *id, char ***running, size_t *nrunning,
		    char ***queued, size_t *nqueued, struct perr *e);

/* One stored turn, as much of it as latency figures need. */
struct db_turn_stat {
	char job_id[DB_JOB_ID_LEN];
	char role[16];
	char *model;
	double wall_ms, ttft_ms, tokens_per_s, gen_ms; /* < 0: the backend did not say */
	int64_t completion_tokens;		       /* -1: the backend did not say */
};

void db_turn_stats_free(struct db_turn_stat *v, size_t n);
/* Every stored turn of the batch's jobs, by job then turn index. */
int db_batch_turn_stats(struct db *db, const char *id, struct db_turn_stat **out, size_t *n,
			struct perr *e);

/*
 * A batch with its jobs (in the batch's order) and the timings of their
 * turns, read in one read transaction so that the counts, the jobs and the
 * turns agree. Release with db_batch_full_release().
 */
struct db_batch_full {
	struct db_batch batch;
	struct db_job *jobs;
	size_t njobs;
	struct db_turn_stat *turns;
	size_t nturns;
};

int db_batch_load(struct db *db, const char *id, struct db_batch_full *out, struct perr *e);
void db_batch_full_release(struct db_batch_full *f);

#endif
