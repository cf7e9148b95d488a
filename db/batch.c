/*
 * batch.c - batches in the store. See batch.h.
 */
#include "db/batch.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db/internal.h"

#define BATCH_COLS                                                                                 \
	"seq, id, interviewer_model, interviewer_backend, candidates, scenarios, repeat, "         \
	"max_turns, options, scoring, extraction, judge, labels, created_at, cancelled_at, "       \
	"extractor"

static const char sql_insert[] =
    "INSERT INTO batches (id, interviewer_model, interviewer_backend, candidates, scenarios, "
    "repeat, max_turns, options, scoring, extraction, judge, labels, created_at, extractor) "
    "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)";
static const char sql_get[] = "SELECT " BATCH_COLS " FROM batches WHERE id = ?1";
static const char sql_list[] = "SELECT " BATCH_COLS " FROM batches WHERE (?1 = 0 OR seq < ?1) "
			       "ORDER BY seq DESC LIMIT ?2";
static const char sql_counts[] =
    "SELECT status, count(*), max(finished_at) FROM jobs WHERE batch_id = ?1 GROUP BY status";
static const char sql_mark_cancelled[] =
    "UPDATE batches SET cancelled_at = coalesce(cancelled_at, ?2) WHERE id = ?1";
static const char sql_cancel_queued[] =
    "UPDATE jobs SET status = 'cancelled', finished_at = ?2, cancel_requested = 1, "
    "error_code = 'cancelled', error_message = 'cancelled with its batch before it started' "
    "WHERE batch_id = ?1 AND status = 'queued' RETURNING id";
static const char sql_cancel_running[] =
    "UPDATE jobs SET cancel_requested = 1 WHERE batch_id = ?1 AND status = 'running' "
    "RETURNING id";
static const char sql_turn_stats[] =
    "SELECT t.job_id, t.role, t.model, t.wall_ms, t.ttft_ms, t.tokens_per_s, t.gen_ms, "
    "t.completion_tokens FROM turns t JOIN jobs j ON j.id = t.job_id "
    "WHERE j.batch_id = ?1 ORDER BY j.seq, t.idx";

void db_batch_release(struct db_batch *b)
{
	free(b->interviewer_model);
	free(b->interviewer_backend);
	free(b->candidates);
	free(b->scenarios);
	free(b->options);
	free(b->scoring);
	free(b->extraction);
	free(b->judge);
	free(b->extractor);
	free(b->labels);
	memset(b, 0, sizeof(*b));
}

void db_batches_free(struct db_batch *v, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		db_batch_release(&v[i]);
	free(v);
}

const char *db_batch_status(const struct db_batch *b)
{
	int64_t total = 0, ended;
	int i;

	for (i = 0; i < DB_NSTATES; i++)
		total += b->counts[i];
	ended = b->counts[DB_SUCCEEDED] + b->counts[DB_FAILED] + b->counts[DB_CANCELLED];
	if (ended == total)
		return b->cancelled_at > 0 ? "cancelled" : "finished";
	if (b->counts[DB_RUNNING] > 0 || ended > 0)
		return "running";
	return "queued";
}

static void read_row(sqlite3_stmt *st, void *elem)
{
	struct db_batch *b = elem;

	b->seq = sqlite3_column_int64(st, 0);
	db_col_copy(st, 1, b->id, sizeof(b->id));
	b->interviewer_model = db_col_text(st, 2);
	b->interviewer_backend = db_col_text(st, 3);
	b->candidates = db_col_text(st, 4);
	b->scenarios = db_col_text(st, 5);
	b->repeat = sqlite3_column_int(st, 6);
	b->max_turns = sqlite3_column_int(st, 7);
	b->options = db_col_text(st, 8);
	b->scoring = db_col_text(st, 9);
	b->extraction = db_col_text(st, 10);
	b->judge = db_col_text(st, 11);
	b->labels = db_col_text(st, 12);
	b->created_at = db_col_int(st, 13);
	b->cancelled_at = db_col_int(st, 14);
	b->extractor = db_col_text(st, 15);
	b->finished_at = -1;
}

static void release_row(void *elem)
{
	db_batch_release(elem);
}

/* Fills b->counts and b->finished_at from the batch's jobs. */
static int read_counts(struct db *db, struct db_batch *b, struct perr *e)
{
	sqlite3_stmt *st = db_stmt(db, sql_counts, e);
	int64_t last = -1, total = 0, ended;
	int rc, i;

	if (!st)
		return -1;
	memset(b->counts, 0, sizeof(b->counts));
	db_bind_text(st, 1, b->id);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const char *s = (const char *)sqlite3_column_text(st, 0);
		int64_t fin = db_col_int(st, 2);

		for (i = 0; i < DB_NSTATES; i++)
			if (s && strcmp(s, db_job_state_names[i]) == 0)
				b->counts[i] = sqlite3_column_int64(st, 1);
		if (fin > last)
			last = fin;
	}
	sqlite3_reset(st);
	if (rc != SQLITE_DONE)
		return db_fail(db, e, "count the jobs of a batch");
	for (i = 0; i < DB_NSTATES; i++)
		total += b->counts[i];
	ended = b->counts[DB_SUCCEEDED] + b->counts[DB_FAILED] + b->counts[DB_CANCELLED];
	b->finished_at = total > 0 && ended == total ? last : -1;
	return 0;
}

int db_batch_insert(struct db *db, struct db_batch *b, struct db_job *jobs, size_t n,
		    int max_queued, struct perr *e)
{
	sqlite3_stmt *st;
	char hex[17];
	size_t i;
	int rc;

	if (db_begin(db, e) < 0)
		return -1;
	if (db_job_check_room(db, max_queued, n, e) < 0)
		goto fail;
	util_random_hex(hex, 8);
	snprintf(b->id, sizeof(b->id), "b%s", hex);
	b->created_at = util_now_us();
	b->cancelled_at = -1;
	if (!(st = db_stmt(db, sql_insert, e)))
		goto fail;
	db_bind_text(st, 1, b->id);
	db_bind_text(st, 2, b->interviewer_model);
	db_bind_text(st, 3, b->interviewer_backend);
	db_bind_text(st, 4, b->candidates);
	db_bind_text(st, 5, b->scenarios);
	sqlite3_bind_int(st, 6, b->repeat);
	sqlite3_bind_int(st, 7, b->max_turns);
	db_bind_text(st, 8, b->options ? b->options : "{}");
	db_bind_text(st, 9, b->scoring);
	db_bind_text(st, 10, b->extraction);
	db_bind_text(st, 11, b->judge);
	db_bind_text(st, 12, b->labels ? b->labels : "{}");
	sqlite3_bind_int64(st, 13, b->created_at);
	db_bind_text(st, 14, b->extractor);
	rc = sqlite3_step(st);
	sqlite3_reset(st);
	if (rc != SQLITE_DONE) {
		db_fail(db, e, "insert batch");
		goto fail;
	}
	b->seq = sqlite3_last_insert_rowid(db_handle(db));
	for (i = 0; i < n; i++) {
		free(jobs[i].batch_id);
		jobs[i].batch_id = xstrdup(b->id);
		if (db_job_insert_tx(db, &jobs[i], e) < 0)
			goto fail;
	}
	return db_commit(db, e);
fail:
	db_rollback(db);
	return -1;
}

int db_batch_get(struct db *db, const char *id, struct db_batch *out, struct perr *e)
{
	sqlite3_stmt *st = db_stmt(db, sql_get, e);
	int rc;

	if (!st)
		return -1;
	db_bind_text(st, 1, id);
	memset(out, 0, sizeof(*out));
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		read_row(st, out);
	sqlite3_reset(st);
	if (rc == SQLITE_DONE)
		return perr_set(e, PERR_NOT_FOUND, "no batch '%s'", id);
	if (rc != SQLITE_ROW)
		return db_fail(db, e, "read batch");
	if (read_counts(db, out, e) < 0) {
		db_batch_release(out);
		return -1;
	}
	return 0;
}

int db_batch_list(struct db *db, int64_t before_seq, int limit, struct db_batch **out, size_t *n,
		  struct perr *e)
{
	sqlite3_stmt *st = db_stmt(db, sql_list, e);
	size_t i;

	*out = NULL;
	*n = 0;
	if (!st)
		return -1;
	sqlite3_bind_int64(st, 1, before_seq);
	sqlite3_bind_int(st, 2, limit > 0 ? limit : 50);
	/* one snapshot: the counts agree with the rows they belong to */
	if (db_read_begin(db, e) < 0)
		return -1;
	if (db_rows(db, st, sizeof(**out), read_row, release_row, (void **)out, n, e,
		    "list batches") < 0) {
		db_read_end(db);
		return -1;
	}
	for (i = 0; i < *n; i++) {
		if (read_counts(db, &(*out)[i], e) < 0) {
			db_read_end(db);
			db_batches_free(*out, *n);
			*out = NULL;
			*n = 0;
			return -1;
		}
	}
	db_read_end(db);
	return 0;
}

/* Steps an UPDATE ... RETURNING id, collecting the ids. */
static int collect_ids(struct db *db, sqlite3_stmt *st, char ***ids, size_t *n, struct perr *e)
{
	int rc;

	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		*ids = xrealloc(*ids, (*n + 1) * sizeof(**ids));
		(*ids)[(*n)++] = db_col_text(st, 0);
	}
	sqlite3_reset(st);
	return rc == SQLITE_DONE ? 0 : db_fail(db, e, "cancel the jobs of a batch");
}

static void free_ids(char **ids, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		free(ids[i]);
	free(ids);
}

int db_batch_cancel(struct db *db, const char *id, char ***running, size_t *nrunning,
		    char ***queued, size_t *nqueued, struct perr *e)
{
	struct db_batch b;
	sqlite3_stmt *st;
	int64_t now = util_now_us();

	*running = *queued = NULL;
	*nrunning = *nqueued = 0;
	if (db_begin(db, e) < 0)
		return -1;
	if (db_batch_get(db, id, &b, e) < 0)
		goto fail;
	if (b.counts[DB_QUEUED] == 0 && b.counts[DB_RUNNING] == 0) {
		perr_set(e, PERR_CONFLICT, "batch '%s' has already %s", id,
			 b.cancelled_at > 0 ? "been cancelled" : "finished");
		db_batch_release(&b);
		goto fail;
	}
	db_batch_release(&b);
	if (!(st = db_stmt(db, sql_cancel_queued, e)))
		goto fail;
	db_bind_text(st, 1, id);
	sqlite3_bind_int64(st, 2, now);
	if (collect_ids(db, st, queued, nqueued, e) < 0)
		goto fail;
	if (!(st = db_stmt(db, sql_cancel_running, e)))
		goto fail;
	db_bind_text(st, 1, id);
	if (collect_ids(db, st, running, nrunning, e) < 0)
		goto fail;
	if (!(st = db_stmt(db, sql_mark_cancelled, e)))
		goto fail;
	db_bind_text(st, 1, id);
	sqlite3_bind_int64(st, 2, now);
	if (sqlite3_step(st) != SQLITE_DONE) {
		sqlite3_reset(st);
		db_fail(db, e, "mark batch cancelled");
		goto fail;
	}
	sqlite3_reset(st);
	if (db_commit(db, e) == 0)
		return 0;
fail:
	db_rollback(db);
	free_ids(*running, *nrunning);
	free_ids(*queued, *nqueued);
	*running = *queued = NULL;
	*nrunning = *nqueued = 0;
	return -1;
}

void db_turn_stats_free(struct db_turn_stat *v, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		free(v[i].model);
	free(v);
}

static void read_turn_stat(sqlite3_stmt *st, void *elem)
{
	struct db_turn_stat *t = elem;

	db_col_copy(st, 0, t->job_id, sizeof(t->job_id));
	db_col_copy(st, 1, t->role, sizeof(t->role));
	t->model = db_col_text(st, 2);
	t->wall_ms = db_col_real(st, 3);
	t->ttft_ms = db_col_real(st, 4);
	t->tokens_per_s = db_col_real(st, 5);
	t->gen_ms = db_col_real(st, 6);
	t->completion_tokens = db_col_int(st, 7);
}

static void release_turn_stat(void *elem)
{
	free(((struct db_turn_stat *)elem)->model);
}

int db_batch_turn_stats(struct db *db, const char *id, struct db_turn_stat **out, size_t *n,
			struct perr *e)
{
	sqlite3_stmt *st = db_stmt(db, sql_turn_stats, e);

	*out = NULL;
	*n = 0;
	if (!st)
		return -1;
	db_bind_text(st, 1, id);
	return db_rows(db, st, sizeof(**out), read_turn_stat, release_turn_stat, (void **)out, n, e,
		       "read the turns of a batch");
}

void db_batch_full_release(struct db_batch_full *f)
{
	db_batch_release(&f->batch);
	db_jobs_free(f->jobs, f->njobs);
	db_turn_stats_free(f->turns, f->nturns);
	memset(f, 0, sizeof(*f));
}

int db_batch_load(struct db *db, const char *id, struct db_batch_full *out, struct perr *e)
{
	int rc;

	memset(out, 0, sizeof(*out));
	if (db_read_begin(db, e) < 0)
		return -1;
	rc = db_batch_get(db, id, &out->batch, e);
	if (rc == 0)
		rc = db_job_list_batch(db, id, &out->jobs, &out->njobs, e);
	if (rc == 0)
		rc = db_batch_turn_stats(db, id, &out->turns, &out->nturns, e);
	db_read_end(db);
	if (rc < 0)
		db_batch_full_release(out);
	return rc;
}
