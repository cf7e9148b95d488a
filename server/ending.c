/*
 * ending.c - the one place a job ends. See ending.h.
 */
#include "server/ending.h"

#include <stdlib.h>
#include <string.h>

#include "db/batch.h"
#include "db/job.h"
#include "db/turn.h"
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

enum job_end ending_finish(struct ending *en, const char *status, const char *code, const char *msg)
{
	const struct optim_list *ol = en->optims;
	char *mtext = en->metrics ? json_dumps(en->metrics, JSON_COMPACT) : NULL;
	size_t n = ol ? ol->n : 0;
	struct db_optim *dv = NULL;
	int64_t now = util_now_us();
	struct perr e = {0};
	int rc;

	events_turn_end(en->job_id);
	if (n)
		dv = outcome_db_optims(ol, now);
	rc = db_job_finish(en->db, en->job_id, en->attempt, status, code, msg, mtext, dv, n, &e);
	free(dv); /* the strings belong to ol */
	free(mtext);
	if (rc < 0) {
		log_error("cannot finish job", "job=%s status=%s error=\"%s\"", en->job_id, status,
			  e.msg);
		/* a stale claim: the job is someone else's; else the store failed, and a job
		 * left running would wait for the next restart: give it back instead */
		return e.code == PERR_CONFLICT ? ending_lost(en) : ending_requeue(en);
	}
	log_info("job finished", "job=%s status=%s%s%s", en->job_id, status, code ? " error=" : "",
		 code ? code : "");
	ending_publish(en->db, en->job_id);
	return JOB_FINISHED;
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
	if (db_job_cancel(db, id, was, e) < 0)
		return -1;
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
