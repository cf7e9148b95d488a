/*
 * ending.c - the one place a job ends. See ending.h.
 */
#include "server/ending.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db/batch.h"
#include "db/job.h"
#include "db/turn.h"
#include "server/engine.h"
#include "server/events.h"
#include "server/log.h"
#include "server/outcome.h"
#include "server/pool.h"
#include "server/record.h"

void ending_init(struct ending *en, struct db *db, const char *job_id, int attempt,
		 const atomic_int *cancel, const atomic_int *stopping)
{
	memset(en, 0, sizeof(*en));
	en->db = db;
	en->job_id = job_id;
	en->attempt = attempt;
	en->cancel = cancel;
	en->stopping = stopping;
}

void ending_release(struct ending *en)
{
	json_decref(en->metrics);
	en->metrics = NULL;
}

void ending_set_metrics(struct ending *en, json_t *m)
{
	json_decref(en->metrics);
	en->metrics = m;
}

static int job_ended(const char *status)
{
	return strcmp(status, "succeeded") == 0 || strcmp(status, "failed") == 0 ||
	       strcmp(status, "cancelled") == 0;
}

void ending_publish(struct db *db, const char *job_id)
{
	struct db_job j;
	json_t *rec;

	if (!events_listening(job_id))
		return; /* no one to tell: skip reading and building the job */
	if (db_job_get(db, job_id, &j, NULL) < 0)
		return;
	rec = record_job(&j);
	events_publish(j.id, "status", 0, j.turns_completed, rec);
	if (job_ended(j.status))
		events_publish(j.id, "job_finished", 0, j.turns_completed, rec);
	json_decref(rec);
	db_job_release(&j);
}

enum job_end ending_lost(struct ending *en)
{
	/* whatever the worker was writing will never be stored by it */
	events_turn_end(en->job_id);
	log_warn("job let go", "job=%s attempt=%d", en->job_id, en->attempt);
	return JOB_LOST;
}

enum job_end ending_requeue(struct ending *en)
{
	struct perr e = {0};

	events_turn_end(en->job_id);
	if (db_job_requeue(en->db, en->job_id, en->attempt, &e) < 0) {
		log_error("cannot requeue job", "job=%s error=\"%s\"", en->job_id, e.msg);
		return ending_lost(en);
	}
	log_info("job requeued", "job=%s attempt=%d", en->job_id, en->attempt);
	ending_publish(en->db, en->job_id);
	return JOB_REQUEUED;
}

void ending_set_waiter(struct ending *en, const struct config *cfg,
		       int (*wait_ms)(void *ud, long ms), void *wait_ud, atomic_int *cancel)
{
	en->cfg = cfg;
	en->wait_ms = wait_ms;
	en->wait_ud = wait_ud;
	en->cancel_rw = cancel;
}

enum ending_store ending_store(struct ending *en, const char *what,
			       int (*fn)(void *arg, struct perr *e), void *arg, int stop_on_cancel,
			       int *attempts, struct perr *e)
{
	int attempt;

	for (attempt = 1;; attempt++) {
		int condition;
		long delay;

		*attempts = attempt;
		if (fn(arg, e) == 0)
			return ENDING_STORED;
		if (e->code == PERR_CONFLICT)
			return ENDING_STALE;
		if (!en->cfg)
			return ENDING_GAVE_UP;
		condition = e->code == PERR_STORE_BUSY || e->code == PERR_STORE_UNAVAILABLE;
		if (!condition && attempt >= en->cfg->retry_max_attempts)
			return ENDING_GAVE_UP;
		delay = engine_backoff_ms(en->cfg, attempt, 0);
		log_warn("store write failed, retrying",
			 "job=%s what=\"%s\" attempt=%d delay_ms=%ld error=\"%s\"", en->job_id,
			 what, attempt, delay, e->msg);
		if (en->wait_ms(en->wait_ud, delay)) {
			if (atomic_load(en->stopping))
				return ENDING_STOPPING;
			if (stop_on_cancel)
				return ENDING_CANCELLED;
			/* the job's end is being stored already: the cancel is seen, wait on */
			atomic_store(en->cancel_rw, 0);
		}
	}
}

struct finish_args {
	struct ending *en;
	const char *status, *code, *msg, *metrics;
	const struct db_optim *optims;
	size_t n;
};

static int store_finish(void *arg, struct perr *e)
{
	const struct finish_args *fa = arg;

	return db_job_finish(fa->en->db, fa->en->job_id, fa->en->attempt, fa->status, fa->code,
			     fa->msg, fa->metrics, fa->optims, fa->n, e);
}

enum job_end ending_finish(struct ending *en, const char *status, const char *code, const char *msg)
{
	const struct optim_list *ol = en->optims;
	char *mtext = en->metrics ? json_dumps(en->metrics, JSON_COMPACT) : NULL;
	size_t n = ol ? ol->n : 0;
	struct db_optim *dv = NULL;
	struct finish_args fa;
	enum ending_store so;
	struct perr e = {0};
	char why[sizeof(e.msg) + 96];
	int tries;

	events_turn_end(en->job_id);
	if (n)
		dv = outcome_db_optims(ol, util_now_us());
	fa = (struct finish_args){en, status, code, msg, mtext, dv, n};
	so = ending_store(en, "finish", store_finish, &fa, 0, &tries, &e);
	if (so == ENDING_GAVE_UP) {
		/* the end as it was cannot be stored (a corrupt page of the optimizations,
		 * say): the smallest end that tells why, rather than a job left running */
		snprintf(why, sizeof(why),
			 "the job's end could not be stored after %d attempts (%.400s); the store "
			 "failed, not the model",
			 tries, e.msg);
		fa = (struct finish_args){en, "failed", "store_failed", why, NULL, NULL, 0};
		so = ending_store(en, "finish", store_finish, &fa, 0, &tries, &e);
		if (so == ENDING_STORED) {
			status = "failed";
			code = "store_failed";
		}
	}
	free(dv); /* the strings belong to ol */
	free(mtext);
	if (so != ENDING_STORED) {
		log_error("cannot finish job", "job=%s status=%s error=\"%s\"", en->job_id, status,
			  e.msg);
		/* a stale claim: the job is someone else's; else the store failed, and a job
		 * left running would wait for the next restart: give it back instead */
		return so == ENDING_STALE ? ending_lost(en) : ending_requeue(en);
	}
	if (code)
		log_info("job finished", "job=%s status=%s error=%s", en->job_id, status, code);
	else
		log_info("job finished", "job=%s status=%s", en->job_id, status);
	ending_publish(en->db, en->job_id);
	return JOB_FINISHED;
}

enum job_end ending_store_failed(struct ending *en, enum ending_store how, const char *what,
				 int attempts, const struct perr *e)
{
	char msg[sizeof(e->msg) + 160];

	switch (how) {
	case ENDING_STALE:
		return ending_lost(en);
	case ENDING_CANCELLED:
		return ending_finish(en, "cancelled", "cancelled", "cancelled by request");
	case ENDING_GAVE_UP:
		snprintf(msg, sizeof(msg),
			 "%.63s: the store refused the write %d times (%.380s); the store failed, "
			 "not the model: check the database file (PRAGMA integrity_check)",
			 what, attempts, e->msg);
		return ending_finish(en, "failed", "store_failed", msg);
	default:
		return ending_requeue(en);
	}
}

/* A user asked to cancel: the flag outside shutdown (shutdown raises it too), or the store. */
static int cancel_requested(const struct ending *en)
{
	if (atomic_load(en->cancel) && !atomic_load(en->stopping))
		return 1;
	return db_job_cancel_requested(en->db, en->job_id);
}

enum job_end ending_check(struct ending *en, enum ending_point at)
{
	int stopping = atomic_load(en->stopping);
	int flag = atomic_load(en->cancel);

	if (cancel_requested(en))
		return ending_finish(en, "cancelled", "cancelled", "cancelled by request");
	if (stopping && (at != ENDING_CALL_DONE || flag))
		return ending_requeue(en); /* the restart makes the call again */
	if (at == ENDING_CALL_CUT)
		/* cut with neither a cancel nor a shutdown to say why: never go on as if it
		 * had answered */
		return ending_finish(en, "cancelled", "cancelled", "cancelled by request");
	return JOB_GOES_ON;
}

int ending_cancel_job(struct db *db, struct pool *pool, const char *id, char was[16],
		      struct perr *e)
{
	if (db_job_cancel(db, id, was, e) < 0) {
		/* the store refuses writes (a full disk): a job a worker holds still ends, the
		 * worker stores the end when the store takes writes again */
		int store = e->code == PERR_STORE_BUSY || e->code == PERR_STORE_UNAVAILABLE ||
			    e->code == PERR_STORE_CORRUPT;
		if (!store || !pool_cancel(pool, id))
			return -1;
		snprintf(was, 16, "running");
		return 0;
	}
	if (strcmp(was, "running") == 0) {
		pool_cancel(pool, id);
	} else if (strcmp(was, "queued") == 0) {
		log_info("job finished", "job=%s status=cancelled error=cancelled", id);
		ending_publish(db, id);
	}
	return 0;
}

int ending_cancel_batch(struct db *db, struct pool *pool, const char *batch_id, struct perr *e)
{
	char **running, **queued;
	size_t nrunning, nqueued, i;

	if (db_batch_cancel(db, batch_id, &running, &nrunning, &queued, &nqueued, e) < 0)
		return -1;
	for (i = 0; i < nrunning; i++) {
		pool_cancel(pool, running[i]);
		free(running[i]);
	}
	for (i = 0; i < nqueued; i++) {
		ending_publish(db, queued[i]);
		free(queued[i]);
	}
	free(running);
	free(queued);
	return 0;
}
