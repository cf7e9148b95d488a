/*
 * job.h - jobs: one conversation each, and their life cycle in the store.
 *
 * DESIGN: a job row is committed before its id is shown to anyone. A worker
 * claims the oldest queued job in one UPDATE ... RETURNING, which moves it to
 * running and bumps its attempt number; every later write by that worker
 * (turns, the finish) names the attempt it holds and is refused when the row
 * has moved on, so a stale worker can never write over a newer one. Jobs
 * left running by a crash are requeued at start-up and resume at their next
 * turn because turns are stored one row each, UNIQUE(job_id, idx).
 */
#ifndef PARLEY_DB_JOB_H
#define PARLEY_DB_JOB_H

#include <stddef.h>
#include <stdint.h>

#include "db/db.h"

#define DB_JOB_ID_LEN 20 /* "j" + 16 hex + NUL, rounded */

/* Job states (struct db_job.status), in the order of struct db_batch.counts[]. */
enum db_job_state { DB_QUEUED, DB_RUNNING, DB_SUCCEEDED, DB_FAILED, DB_CANCELLED, DB_NSTATES };
extern const char *const db_job_state_names[DB_NSTATES];

struct db_job {
	int64_t seq;
	char id[DB_JOB_ID_LEN];
	char status[16];
	char *scenario_name;
	char *scenario; /* JSON object text: name, problem, context, goal, prompts? */
	char *interviewer_model, *interviewer_backend;
	char *candidate_model, *candidate_backend;
	int max_turns;
	char *options; /* JSON object text */
	char *scoring, *extraction;
	char *labels; /* JSON object text */
	char *batch_id;
	char *judge;	 /* JSON {model, backend} text when scoring is "judge", else NULL */
	char *extractor; /* JSON {model, backend} text named for extraction "model", else NULL */
	char *optimize;	 /* JSON {max_trials, repeat, holdout, seed} of the closed loop, or NULL */
	int64_t created_at, started_at, finished_at; /* -1 when not yet */
	int attempts;
	int turns_completed;
	char *error_code, *error_message; /* NULL when none */
	char *metrics;			  /* JSON object text or NULL */
	int cancel_requested;
};

void db_job_release(struct db_job *j);
void db_jobs_free(struct db_job *v, size_t n);

/*
 * Inserts j as a queued job; fills j->id, j->seq, j->created_at, j->status.
 * With an idempotency key: a key seen before with the same body_hash returns
 * 1 and fills j->id with the earlier job (nothing inserted); with another
 * body_hash it fails with PERR_CONFLICT. Returns 0 when inserted.
 * max_queued > 0 caps the number of queued jobs (PERR_UNAVAILABLE past it).
 */
int db_job_insert(struct db *db, struct db_job *j, const char *idem_key, const char *body_hash,
		  int max_queued, struct perr *e);

/*
 * For db/ modules that write several jobs in one transaction (db/batch.c):
 * inside the caller's BEGIN IMMEDIATE, db_job_check_room() fails with
 * PERR_UNAVAILABLE when adding n queued jobs would pass max_queued (> 0), and
 * db_job_insert_tx() inserts j as queued (fills id, seq, created_at, status).
 * Neither commits nor rolls back.
 */
int db_job_check_room(struct db *db, int max_queued, size_t n, struct perr *e);
int db_job_insert_tx(struct db *db, struct db_job *j, struct perr *e);

int db_job_get(struct db *db, const char *id, struct db_job *out, struct perr *e);

struct db_job_filter {
	const char *status, *scenario, *model, *batch;
	const char *label_key, *label_value;
	int64_t before_seq; /* 0 = from the newest */
	int limit;
};

/* Newest first. *out is a new array of *n jobs (db_jobs_free()). */
int db_job_list(struct db *db, const struct db_job_filter *f, struct db_job **out, size_t *n,
		struct perr *e);

/* The jobs of a batch in the order they were created. *out as for db_job_list(). */
int db_job_list_batch(struct db *db, const char *batch_id, struct db_job **out, size_t *n,
		      struct perr *e);

/* Claims the oldest queued job: returns 1 and fills out, 0 when none, -1 on error. */
int db_job_claim(struct db *db, struct db_job *out, struct perr *e);
/* Claims job id if it is still queued: 1 and fills out, 0 when it is not, -1 on error. */
int db_job_claim_id(struct db *db, const char *id, struct db_job *out, struct perr *e);
/*
 * The oldest queued job of each stream (the jobs of one batch, or the single jobs, for one
 * pair of interviewer and candidate backends), oldest first, at most limit: the jobs that may
 * start next (server/pool.c chooses among them). A few index seeks per stream, whatever the
 * length of the queue. *out as for db_job_list().
 */
int db_job_heads(struct db *db, int limit, struct db_job **out, size_t *n, struct perr *e);

/* Start-up: running jobs go back to queued. Returns how many, or -1. */
int db_job_requeue_running(struct db *db, struct perr *e);

/* A worker gives its running job back (shutdown): running → queued, if attempt matches;
 * PERR_CONFLICT (nothing written) when the job is no longer running at that attempt. */
int db_job_requeue(struct db *db, const char *id, int attempt, struct perr *e);

struct db_optim;

/*
 * Ends a running job held at attempt: status succeeded/failed/cancelled, the
 * error (or NULLs), the metrics JSON, and its optimizations (replacing any),
 * all in one transaction. PERR_CONFLICT when the attempt is stale.
 */
int db_job_finish(struct db *db, const char *id, int attempt, const char *status,
		  const char *error_code, const char *error_message, const char *metrics,
		  const struct db_optim *optims, size_t noptims, struct perr *e);

/*
 * Replaces the optimizations of job id with optims (ord 1..n) inside the
 * caller's transaction (db_job_finish(), db/import.c).
 */
int db_job_put_optims(struct db *db, const char *id, const struct db_optim *optims, size_t noptims,
		      struct perr *e);
/*
 * Cancels: a queued job becomes cancelled at once (*was = "queued"); a
 * running one gets cancel_requested and its worker ends it (*was =
 * "running"). A finished job is left as it is (*was = its status).
 */
int db_job_cancel(struct db *db, const char *id, char was[16], struct perr *e);

/* Whether cancel was requested for the job (workers poll between turns). */
int db_job_cancel_requested(struct db *db, const char *id);

/* counts[] in the order queued, running, succeeded, failed, cancelled. */
int db_job_counts(struct db *db, int64_t counts[5], struct perr *e);

/* Drops idempotency keys older than before_us. */
int db_idem_expire(struct db *db, int64_t before_us, struct perr *e);

/*
 * A job with its turns and optimizations (db/turn.h), read in one read
 * transaction so that the three agree (a job that finishes meanwhile is seen
 * before or after, never half). Release with db_job_full_release().
 */
struct db_turn;
struct db_job_full {
	struct db_job job;
	struct db_turn *turns;
	size_t nturns;
	struct db_optim *optims;
	size_t noptims;
};

int db_job_load(struct db *db, const char *id, struct db_job_full *out, struct perr *e);
void db_job_full_release(struct db_job_full *f);

#endif
