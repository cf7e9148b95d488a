/*
 * trial.h - the stored trials of a job and their task calls (DESIGN §7).
 *
 * Writes are fenced like turns: they happen only while the job is running
 * under the caller's claim (attempt), so a worker whose claim went stale can
 * never add to a job another worker now holds (PERR_CONFLICT).
 */
#ifndef PARLEY_DB_TRIAL_H
#define PARLEY_DB_TRIAL_H

#include <stddef.h>
#include <stdint.h>

#include "db/db.h"

struct db_trial {
	int n;		 /* 0: the baseline */
	char kind[16];	 /* baseline | prompt | setting */
	int turn;	 /* the interviewer turn that proposed it; -1 for the baseline */
	char *proposal;	 /* JSON {system?, template?, options?} or NULL */
	char *config;	 /* JSON {system, template, options} */
	char status[16]; /* running | done | rejected | cancelled */
	char *message;	 /* the "parley" item both models were shown, or NULL */
	char *reason;	 /* why rejected or stopped early, or NULL */
	char *result;	 /* JSON figures, or NULL until done */
	int64_t created_at, finished_at; /* finished_at 0 while running */
};

/* Integers -1 and doubles < 0 mean "the backend did not say" (NULL in SQL). */
struct db_trial_call {
	int trial;
	char split[8]; /* train | holdout */
	int task_idx, rep;
	char *task_id, *input, *reply;
	char *checks; /* JSON [{check, passed, why?}] */
	double score;
	int passed;
	char *error; /* the backend's error when the call failed, else NULL */
	int64_t started_at, finished_at;
	double wall_ms, ttft_ms;
	int64_t prompt_tokens, cached_tokens, completion_tokens;
};

void db_trial_release(struct db_trial *t);
void db_trials_free(struct db_trial *v, size_t n);
void db_trial_call_release(struct db_trial_call *c);
void db_trial_calls_free(struct db_trial_call *v, size_t n);

/*
 * Stores trial t (status "running", or "rejected" with its reason) of a job
 * running under attempt. *existed (may be NULL) is set when trial t->n is
 * already stored, which is not an error: a resumed job meets its trials again
 * and keeps what they hold.
 */
int db_trial_begin(struct db *db, const char *job_id, int attempt, const struct db_trial *t,
		   int *existed, struct perr *e);

/* Stores one task call. PERR_CONFLICT when it is already stored or the claim is stale. */
int db_trial_call_insert(struct db *db, const char *job_id, int attempt,
			 const struct db_trial_call *c, struct perr *e);

/* Ends trial n: status done, rejected or cancelled, an optional reason, result JSON and the
 * message the models are shown. */
int db_trial_finish(struct db *db, const char *job_id, int attempt, int n, const char *status,
		    const char *reason, const char *result, const char *message, struct perr *e);

/* The trials of a job in order. *out is a new array (db_trials_free()). */
int db_trial_list(struct db *db, const char *job_id, struct db_trial **out, size_t *n,
		  struct perr *e);

/* The calls of trial (every trial when trial < 0) in (trial, split, task, rep) order. */
int db_trial_calls(struct db *db, const char *job_id, int trial, struct db_trial_call **out,
		   size_t *n, struct perr *e);

#endif
