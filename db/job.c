/*
 * job.c - jobs in the store. See job.h.
 */
#include "db/job.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db/internal.h"
#include "db/turn.h"

#define JOB_COLS                                                                                   \
	"seq, id, status, scenario_name, scenario, interviewer_model, interviewer_backend, "       \
	"candidate_model, candidate_backend, max_turns, options, scoring, extraction, labels, "    \
	"batch_id, created_at, started_at, finished_at, attempts, turns_completed, error_code, "   \
	"error_message, metrics, cancel_requested, judge, extractor, optimize"

/* ?1-?11 are the columns db_job_insert_stmt() binds for every new job, hence ?12 for options */
static const char sql_insert[] =
    "INSERT INTO jobs (id, status, scenario_name, scenario, interviewer_model, "
    "interviewer_backend, candidate_model, candidate_backend, max_turns, options, scoring, "
    "extraction, labels, batch_id, created_at, judge, extractor, optimize) "
    "VALUES (?1, 'queued', ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?12, ?9, ?10, ?11, ?13, ?14, ?15, ?16, "
    "?17)";
static const char sql_idem_get[] = "SELECT body_hash, job_id FROM idempotency_keys WHERE key = ?1";
static const char sql_idem_put[] =
    "INSERT INTO idempotency_keys (key, body_hash, job_id, created_at) VALUES (?1, ?2, ?3, ?4)";
static const char sql_idem_expire[] = "DELETE FROM idempotency_keys WHERE created_at < ?1";
static const char sql_job_check[] = "SELECT attempts, status FROM jobs WHERE id = ?1";
static const char sql_count_queued[] = "SELECT value FROM counters WHERE name = 'queued'";
static const char sql_get[] = "SELECT " JOB_COLS " FROM jobs WHERE id = ?1";
/*
 * The job list's WHERE clause holds only the filters given, so SQLite can walk
 * the index that matches (jobs_status, jobs_scenario, jobs_batch, the model
 * indexes) backwards from the cursor instead of scanning the table; a clause
 * of the form "(?1 IS NULL OR status = ?1)" defeats every index.
 */
static const char sql_list_head[] = "SELECT " JOB_COLS " FROM jobs WHERE 1";
static const char sql_list_status[] = " AND status = ?1";
static const char sql_list_scenario[] = " AND scenario_name = ?2";
static const char sql_list_model[] =
    " AND seq IN (SELECT seq FROM jobs WHERE interviewer_model = ?3 "
    "UNION ALL SELECT seq FROM jobs WHERE candidate_model = ?3)";
static const char sql_list_batch_f[] = " AND batch_id = ?4";
static const char sql_list_label[] = " AND json_extract(labels, ?5) = ?6";
static const char sql_list_cursor[] = " AND seq < ?7";
static const char sql_list_tail[] = " ORDER BY seq DESC LIMIT ?8";
static const char sql_list_batch[] =
    "SELECT " JOB_COLS " FROM jobs WHERE batch_id = ?1 ORDER BY seq";
static const char sql_claim[] =
    "UPDATE jobs SET status = 'running', attempts = attempts + 1, "
    "started_at = coalesce(started_at, ?1) "
    "WHERE seq = (SELECT seq FROM jobs WHERE status = 'queued' ORDER BY seq LIMIT 1) "
    "RETURNING " JOB_COLS;
/* the claim of a job the scheduler picked: still queued, or nothing happens */
static const char sql_claim_id[] =
    "UPDATE jobs SET status = 'running', attempts = attempts + 1, "
    "started_at = coalesce(started_at, ?1) WHERE id = ?2 AND status = 'queued' "
    "RETURNING " JOB_COLS;
/*
 * The oldest queued job of each stream (a batch's jobs, or the single jobs, for one pair of
 * backends), ?1 streams at most. A skip scan of jobs_queued_streams (migration 0010): from each
 * stream's head, the next stream's head is the first entry of the same batch and interviewer
 * backend with a later candidate backend, else of the same batch with a later interviewer
 * backend, else of a later batch (NULL, the single jobs, sorts first): three index seeks, so
 * the cost does not grow with the queue. INDEXED BY because without statistics the planner
 * prefers jobs_status and sorts every queued job.
 */
#define QS "jobs INDEXED BY jobs_queued_streams WHERE status = 'queued' AND "
#define QS_FIRST " ORDER BY batch_id, interviewer_backend, candidate_backend, seq LIMIT 1)"
static const char sql_heads[] =
    "WITH RECURSIVE s(q) AS ("
    "SELECT (SELECT seq FROM " QS "1" QS_FIRST " UNION ALL "
    "SELECT (SELECT coalesce("
    "(SELECT seq FROM " QS "batch_id IS j.batch_id AND interviewer_backend = "
    "j.interviewer_backend AND candidate_backend > j.candidate_backend" QS_FIRST ", "
    "(SELECT seq FROM " QS "batch_id IS j.batch_id AND interviewer_backend > "
    "j.interviewer_backend" QS_FIRST ", "
    "(SELECT seq FROM " QS "batch_id > coalesce(j.batch_id, '')" QS_FIRST ") "
    "FROM jobs j WHERE j.seq = s.q) FROM s WHERE s.q IS NOT NULL LIMIT ?1 + 1) "
    "SELECT " JOB_COLS " FROM jobs WHERE seq IN (SELECT q FROM s) ORDER BY seq LIMIT ?1";
#undef QS
#undef QS_FIRST
static const char sql_requeue_running[] =
    "UPDATE jobs SET status = 'queued' WHERE status = 'running'";
static const char sql_requeue[] =
    "UPDATE jobs SET status = 'queued' WHERE id = ?1 AND attempts = ?2 AND status = 'running'";
static const char sql_finish[] =
    "UPDATE jobs SET status = ?3, error_code = ?4, error_message = ?5, metrics = ?6, "
    "finished_at = ?7 WHERE id = ?1 AND attempts = ?2 AND status = 'running'";
static const char sql_optim_clear[] = "DELETE FROM optimizations WHERE job_id = ?1";
static const char sql_optim_put[] =
    "INSERT INTO optimizations (job_id, ord, turn, title, detail, test, suggestion, "
    "extracted_at, method) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)";
static const char sql_cancel_queued[] =
    "UPDATE jobs SET status = 'cancelled', finished_at = ?2, cancel_requested = 1, "
    "error_code = 'cancelled', error_message = 'cancelled before it started' "
    "WHERE id = ?1 AND status = 'queued'";
static const char sql_cancel_running[] =
    "UPDATE jobs SET cancel_requested = 1 WHERE id = ?1 AND status = 'running'";
static const char sql_status[] = "SELECT status FROM jobs WHERE id = ?1";
static const char sql_cancel_flag[] = "SELECT cancel_requested FROM jobs WHERE id = ?1";
static const char sql_counts[] = "SELECT status, count(*) FROM jobs GROUP BY status";

const char *const db_job_state_names[DB_NSTATES] = {"queued", "running", "succeeded", "failed",
						    "cancelled"};

void db_job_release(struct db_job *j)
{
	free(j->scenario_name);
	free(j->scenario);
	free(j->interviewer_model);
	free(j->interviewer_backend);
	free(j->candidate_model);
	free(j->candidate_backend);
	free(j->options);
	free(j->scoring);
	free(j->extraction);
	free(j->labels);
	free(j->batch_id);
	free(j->judge);
	free(j->extractor);
	free(j->optimize);
	free(j->error_code);
	free(j->error_message);
	free(j->metrics);
	memset(j, 0, sizeof(*j));
}

void db_jobs_free(struct db_job *v, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		db_job_release(&v[i]);
	free(v);
}

static void read_job(sqlite3_stmt *st, void *elem)
{
	struct db_job *j = elem;

	j->seq = sqlite3_column_int64(st, 0);
	db_col_copy(st, 1, j->id, sizeof(j->id));
	db_col_copy(st, 2, j->status, sizeof(j->status));
	j->scenario_name = db_col_text(st, 3);
	j->scenario = db_col_text(st, 4);
	j->interviewer_model = db_col_text(st, 5);
	j->interviewer_backend = db_col_text(st, 6);
	j->candidate_model = db_col_text(st, 7);
	j->candidate_backend = db_col_text(st, 8);
	j->max_turns = sqlite3_column_int(st, 9);
	j->options = db_col_text(st, 10);
	j->scoring = db_col_text(st, 11);
	j->extraction = db_col_text(st, 12);
	j->labels = db_col_text(st, 13);
	j->batch_id = db_col_text(st, 14);
	j->created_at = db_col_int(st, 15);
	j->started_at = db_col_int(st, 16);
	j->finished_at = db_col_int(st, 17);
	j->attempts = sqlite3_column_int(st, 18);
	j->turns_completed = sqlite3_column_int(st, 19);
	j->error_code = db_col_text(st, 20);
	j->error_message = db_col_text(st, 21);
	j->metrics = db_col_text(st, 22);
	j->cancel_requested = sqlite3_column_int(st, 23);
	j->judge = db_col_text(st, 24);
	j->extractor = db_col_text(st, 25);
	j->optimize = db_col_text(st, 26);
}

static void read_row(sqlite3_stmt *st, struct db_job *j)
{
	memset(j, 0, sizeof(*j));
	read_job(st, j);
}

static void release_job(void *elem)
{
	db_job_release(elem);
}

/* Steps a statement that changes rows; returns the number changed or -1. */
static int step_done(struct db *db, sqlite3_stmt *st, struct perr *e, const char *what)
{
	int rc = sqlite3_step(st);

	sqlite3_reset(st);
	if (rc != SQLITE_DONE)
		return db_fail(db, e, what);
	return sqlite3_changes(db_handle(db));
}

int db_job_check_room(struct db *db, int max_queued, size_t n, struct perr *e)
{
	sqlite3_stmt *st;
	int64_t queued;
	int rc;

	if (max_queued <= 0)
		return 0;
	if (!(st = db_stmt(db, sql_count_queued, e)))
		return -1;
	rc = sqlite3_step(st);
	queued = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
	sqlite3_reset(st);
	if (rc != SQLITE_ROW)
		return db_fail(db, e, "count queued jobs");
	if (queued + (int64_t)n > max_queued) {
		if (n == 1)
			return perr_set(e, PERR_UNAVAILABLE,
					"the queue is full (%d jobs waiting); try again later",
					max_queued);
		return perr_set(e, PERR_UNAVAILABLE,
				"the queue has room for %lld more jobs, not %zu (at most %d wait); "
				"try again later or post a smaller batch",
				(long long)(queued < max_queued ? max_queued - queued : 0), n,
				max_queued);
	}
	return 0;
}

/*
 * Steps sql, a query of the one job id (?1), to its row: the caller reads the row and resets
 * st. NULL with e set when there is no such job or the read failed.
 */
static sqlite3_stmt *job_row(struct db *db, const char *sql, const char *id, struct perr *e)
{
	sqlite3_stmt *st = db_stmt(db, sql, e);
	int rc;

	if (!st)
		return NULL;
	db_bind_text(st, 1, id);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		return st;
	sqlite3_reset(st);
	if (rc == SQLITE_DONE)
		perr_set(e, PERR_NOT_FOUND, "no job '%s'", id);
	else
		db_fail(db, e, "read job");
	return NULL;
}

int db_job_claim_held(struct db *db, const char *job_id, int attempt, struct perr *e)
{
	sqlite3_stmt *st = job_row(db, sql_job_check, job_id, e);
	int held, running;

	if (!st)
		return -1;
	held = sqlite3_column_int(st, 0);
	running = strcmp((const char *)sqlite3_column_text(st, 1), "running") == 0;
	sqlite3_reset(st);
	if (held != attempt || !running)
		return perr_set(e, PERR_CONFLICT, "job '%s' attempt %d is no longer running",
				job_id, attempt);
	return 0;
}

sqlite3_stmt *db_job_insert_stmt(struct db *db, const char *sql, struct db_job *j,
				 const char *status, struct perr *e)
{
	sqlite3_stmt *st;
	char hex[17];

	util_random_hex(hex, 8);
	snprintf(j->id, sizeof(j->id), "j%s", hex);
	snprintf(j->status, sizeof(j->status), "%s", status);
	if (!(st = db_stmt(db, sql, e)))
		return NULL;
	db_bind_text(st, 1, j->id);
	db_bind_text(st, 2, j->scenario_name);
	db_bind_text(st, 3, j->scenario);
	db_bind_text(st, 4, j->interviewer_model);
	db_bind_text(st, 5, j->interviewer_backend);
	db_bind_text(st, 6, j->candidate_model);
	db_bind_text(st, 7, j->candidate_backend);
	sqlite3_bind_int(st, 8, j->max_turns);
	db_bind_text(st, 9, j->scoring);
	db_bind_text(st, 10, j->extraction);
	db_bind_text(st, 11, j->labels ? j->labels : "{}");
	return st;
}

int db_job_insert_tx(struct db *db, struct db_job *j, struct perr *e)
{
	sqlite3_stmt *st;

	j->created_at = util_now_us();
	if (!(st = db_job_insert_stmt(db, sql_insert, j, "queued", e)))
		return -1;
	db_bind_text(st, 12, j->options ? j->options : "{}");
	db_bind_text(st, 13, j->batch_id);
	sqlite3_bind_int64(st, 14, j->created_at);
	db_bind_text(st, 15, j->judge);
	db_bind_text(st, 16, j->extractor);
	db_bind_text(st, 17, j->optimize);
	if (step_done(db, st, e, "insert job") < 0)
		return -1;
	j->seq = sqlite3_last_insert_rowid(db_handle(db));
	return 0;
}

int db_job_insert(struct db *db, struct db_job *j, const char *idem_key, const char *body_hash,
		  int max_queued, struct perr *e)
{
	sqlite3_stmt *st;
	int rc;

	if (db_begin(db, e) < 0)
		return -1;
	if (idem_key) {
		if (!(st = db_stmt(db, sql_idem_get, e)))
			goto fail;
		db_bind_text(st, 1, idem_key);
		rc = sqlite3_step(st);
		if (rc == SQLITE_ROW) {
			int same = strcmp((const char *)sqlite3_column_text(st, 0), body_hash) == 0;
			db_col_copy(st, 1, j->id, sizeof(j->id));
			sqlite3_reset(st);
			db_rollback(db);
			if (!same)
				return perr_set(e, PERR_CONFLICT,
						"Idempotency-Key '%s' was used with another body",
						idem_key);
			return 1;
		}
		sqlite3_reset(st);
		if (rc != SQLITE_DONE) {
			db_fail(db, e, "idempotency lookup");
			goto fail;
		}
	}
	if (db_job_check_room(db, max_queued, 1, e) < 0 || db_job_insert_tx(db, j, e) < 0)
		goto fail;
	if (idem_key) {
		if (!(st = db_stmt(db, sql_idem_put, e)))
			goto fail;
		db_bind_text(st, 1, idem_key);
		db_bind_text(st, 2, body_hash);
		db_bind_text(st, 3, j->id);
		sqlite3_bind_int64(st, 4, j->created_at);
		if (step_done(db, st, e, "store idempotency key") < 0)
			goto fail;
	}
	return db_commit(db, e) < 0 ? -1 : 0;
fail:
	db_rollback(db);
	return -1;
}

int db_job_get(struct db *db, const char *id, struct db_job *out, struct perr *e)
{
	sqlite3_stmt *st = db_stmt(db, sql_get, e);
	int rc;

	if (!st)
		return -1;
	db_bind_text(st, 1, id);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		read_row(st, out);
		sqlite3_reset(st);
		return 0;
	}
	sqlite3_reset(st);
	if (rc == SQLITE_DONE)
		return perr_set(e, PERR_NOT_FOUND, "no job '%s'", id);
	return db_fail(db, e, "read job");
}

int db_job_list(struct db *db, const struct db_job_filter *f, struct db_job **out, size_t *n,
		struct perr *e)
{
	sqlite3_stmt *st = NULL;
	struct strbuf sql;
	char path[160];
	int rc;

	*out = NULL;
	*n = 0;
	strbuf_init(&sql, 512);
	strbuf_addstr(&sql, sql_list_head);
	if (f->status)
		strbuf_addstr(&sql, sql_list_status);
	if (f->scenario)
		strbuf_addstr(&sql, sql_list_scenario);
	if (f->model)
		strbuf_addstr(&sql, sql_list_model);
	if (f->batch)
		strbuf_addstr(&sql, sql_list_batch_f);
	if (f->label_key)
		strbuf_addstr(&sql, sql_list_label);
	if (f->before_seq > 0)
		strbuf_addstr(&sql, sql_list_cursor);
	strbuf_addstr(&sql, sql_list_tail);
	/* a few variants of static text, each value bound: prepared here, not cached */
	rc = sqlite3_prepare_v2(db_handle(db), sql.buf, (int)sql.len, &st, NULL);
	strbuf_release(&sql);
	if (rc != SQLITE_OK)
		return db_fail(db, e, "prepare job list");
	if (f->status)
		db_bind_text(st, 1, f->status);
	if (f->scenario)
		db_bind_text(st, 2, f->scenario);
	if (f->model)
		db_bind_text(st, 3, f->model);
	if (f->batch)
		db_bind_text(st, 4, f->batch);
	if (f->label_key) {
		snprintf(path, sizeof(path), "$.\"%s\"", f->label_key);
		db_bind_text(st, 5, path);
		db_bind_text(st, 6, f->label_value ? f->label_value : "");
	}
	if (f->before_seq > 0)
		sqlite3_bind_int64(st, 7, f->before_seq);
	sqlite3_bind_int(st, 8, f->limit > 0 ? f->limit : 50);
	rc = db_rows(db, st, sizeof(**out), read_job, release_job, (void **)out, n, e, "list jobs");
	sqlite3_finalize(st);
	return rc;
}

int db_job_list_batch(struct db *db, const char *batch_id, struct db_job **out, size_t *n,
		      struct perr *e)
{
	sqlite3_stmt *st = db_stmt(db, sql_list_batch, e);

	*out = NULL;
	*n = 0;
	if (!st)
		return -1;
	db_bind_text(st, 1, batch_id);
	return db_rows(db, st, sizeof(**out), read_job, release_job, (void **)out, n, e,
		       "list the jobs of a batch");
}

int db_job_heads(struct db *db, int limit, struct db_job **out, size_t *n, struct perr *e)
{
	sqlite3_stmt *st = db_stmt(db, sql_heads, e);

	*out = NULL;
	*n = 0;
	if (!st)
		return -1;
	sqlite3_bind_int(st, 1, limit);
	return db_rows(db, st, sizeof(**out), read_job, release_job, (void **)out, n, e,
		       "list the queued jobs");
}

static int claim(struct db *db, const char *id, struct db_job *out, struct perr *e)
{
	sqlite3_stmt *st;
	int rc, claimed = 0;

	if (db_begin(db, e) < 0)
		return -1;
	if (!(st = db_stmt(db, id ? sql_claim_id : sql_claim, e)))
		goto fail;
	sqlite3_bind_int64(st, 1, util_now_us());
	if (id)
		db_bind_text(st, 2, id);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		read_row(st, out);
		claimed = 1;
		rc = sqlite3_step(st);
	}
	sqlite3_reset(st);
	if (rc != SQLITE_DONE) {
		if (claimed)
			db_job_release(out);
		db_fail(db, e, "claim job");
		goto fail;
	}
	if (db_commit(db, e) < 0) {
		if (claimed)
			db_job_release(out);
		return -1;
	}
	return claimed;
fail:
	db_rollback(db);
	return -1;
}

int db_job_claim(struct db *db, struct db_job *out, struct perr *e)
{
	return claim(db, NULL, out, e);
}

int db_job_claim_id(struct db *db, const char *id, struct db_job *out, struct perr *e)
{
	return claim(db, id, out, e);
}

int db_job_requeue_running(struct db *db, struct perr *e)
{
	sqlite3_stmt *st;
	int n;

	if (db_begin(db, e) < 0)
		return -1;
	if (!(st = db_stmt(db, sql_requeue_running, e)) ||
	    (n = step_done(db, st, e, "requeue jobs")) < 0) {
		db_rollback(db);
		return -1;
	}
	return db_commit(db, e) < 0 ? -1 : n;
}

int db_job_requeue(struct db *db, const char *id, int attempt, struct perr *e)
{
	sqlite3_stmt *st;
	int n;

	if (db_begin(db, e) < 0)
		return -1;
	if (!(st = db_stmt(db, sql_requeue, e)))
		goto fail;
	db_bind_text(st, 1, id);
	sqlite3_bind_int(st, 2, attempt);
	if ((n = step_done(db, st, e, "requeue job")) < 0)
		goto fail;
	if (n == 0) {
		/* the claim is gone: saying "requeued" would make the caller believe
		 * the job is safe in the queue */
		db_rollback(db);
		return perr_set(e, PERR_CONFLICT, "job '%s' attempt %d is no longer running", id,
				attempt);
	}
	return db_commit(db, e);
fail:
	db_rollback(db);
	return -1;
}

int db_job_put_optims(struct db *db, const char *id, const struct db_optim *optims, size_t noptims,
		      struct perr *e)
{
	sqlite3_stmt *st;
	size_t i;

	if (!(st = db_stmt(db, sql_optim_clear, e)))
		return -1;
	db_bind_text(st, 1, id);
	if (step_done(db, st, e, "clear optimizations") < 0)
		return -1;
	for (i = 0; i < noptims; i++) {
		const struct db_optim *o = &optims[i];
		if (!(st = db_stmt(db, sql_optim_put, e)))
			return -1;
		db_bind_text(st, 1, id);
		sqlite3_bind_int(st, 2, (int)i + 1);
		sqlite3_bind_int(st, 3, o->turn);
		db_bind_text(st, 4, o->title ? o->title : "");
		db_bind_text(st, 5, o->detail);
		db_bind_text(st, 6, o->test);
		db_bind_text(st, 7, o->suggestion ? o->suggestion : "");
		sqlite3_bind_int64(st, 8, o->extracted_at);
		db_bind_text(st, 9, o->method[0] ? o->method : NULL);
		if (step_done(db, st, e, "store optimization") < 0)
			return -1;
	}
	return 0;
}

int db_job_finish(struct db *db, const char *id, int attempt, const char *status,
		  const char *error_code, const char *error_message, const char *metrics,
		  const struct db_optim *optims, size_t noptims, struct perr *e)
{
	sqlite3_stmt *st;
	int n;

	if (db_begin(db, e) < 0)
		return -1;
	if (!(st = db_stmt(db, sql_finish, e)))
		goto fail;
	db_bind_text(st, 1, id);
	sqlite3_bind_int(st, 2, attempt);
	db_bind_text(st, 3, status);
	db_bind_text(st, 4, error_code);
	db_bind_text(st, 5, error_message);
	db_bind_text(st, 6, metrics);
	sqlite3_bind_int64(st, 7, util_now_us());
	if ((n = step_done(db, st, e, "finish job")) < 0)
		goto fail;
	if (n == 0) {
		db_rollback(db);
		return perr_set(e, PERR_CONFLICT, "job '%s' attempt %d is no longer running", id,
				attempt);
	}
	if (db_job_put_optims(db, id, optims, noptims, e) < 0)
		goto fail;
	return db_commit(db, e);
fail:
	db_rollback(db);
	return -1;
}

int db_job_status_tx(struct db *db, const char *id, char status[16], struct perr *e)
{
	sqlite3_stmt *st = job_row(db, sql_status, id, e);

	if (!st)
		return -1;
	db_col_copy(st, 0, status, 16);
	sqlite3_reset(st);
	return 0;
}

int db_job_cancel(struct db *db, const char *id, char was[16], struct perr *e)
{
	sqlite3_stmt *st;

	if (db_begin(db, e) < 0)
		return -1;
	if (db_job_status_tx(db, id, was, e) < 0)
		goto fail;
	if (strcmp(was, "queued") == 0) {
		if (!(st = db_stmt(db, sql_cancel_queued, e)))
			goto fail;
		db_bind_text(st, 1, id);
		sqlite3_bind_int64(st, 2, util_now_us());
	} else if (strcmp(was, "running") == 0) {
		if (!(st = db_stmt(db, sql_cancel_running, e)))
			goto fail;
		db_bind_text(st, 1, id);
	} else {
		db_rollback(db);
		return 0;
	}
	if (step_done(db, st, e, "cancel job") < 0)
		goto fail;
	return db_commit(db, e);
fail:
	db_rollback(db);
	return -1;
}

int db_job_cancel_requested(struct db *db, const char *id)
{
	sqlite3_stmt *st = db_stmt(db, sql_cancel_flag, NULL);
	int r = 0;

	if (!st)
		return 0;
	db_bind_text(st, 1, id);
	if (sqlite3_step(st) == SQLITE_ROW)
		r = sqlite3_column_int(st, 0);
	sqlite3_reset(st);
	return r;
}

int db_job_counts(struct db *db, int64_t counts[5], struct perr *e)
{
	static const char *const names[5] = {"queued", "running", "succeeded", "failed",
					     "cancelled"};
	sqlite3_stmt *st = db_stmt(db, sql_counts, e);
	int rc, i;

	memset(counts, 0, 5 * sizeof(counts[0]));
	if (!st)
		return -1;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const char *s = (const char *)sqlite3_column_text(st, 0);
		for (i = 0; i < 5; i++)
			if (s && strcmp(s, names[i]) == 0)
				counts[i] = sqlite3_column_int64(st, 1);
	}
	sqlite3_reset(st);
	return rc == SQLITE_DONE ? 0 : db_fail(db, e, "count jobs");
}

int db_idem_expire(struct db *db, int64_t before_us, struct perr *e)
{
	sqlite3_stmt *st = db_stmt(db, sql_idem_expire, e);

	if (!st)
		return -1;
	sqlite3_bind_int64(st, 1, before_us);
	return step_done(db, st, e, "expire idempotency keys") < 0 ? -1 : 0;
}

void db_job_full_release(struct db_job_full *f)
{
	db_job_release(&f->job);
	db_turns_free(f->turns, f->nturns);
	db_optims_free(f->optims, f->noptims);
	memset(f, 0, sizeof(*f));
}

int db_job_load(struct db *db, const char *id, struct db_job_full *out, struct perr *e)
{
	int rc;

	memset(out, 0, sizeof(*out));
	if (db_read_begin(db, e) < 0)
		return -1;
	rc = db_job_get(db, id, &out->job, e);
	if (rc == 0)
		rc = db_turn_list(db, id, &out->turns, &out->nturns, e);
	if (rc == 0)
		rc = db_optim_list(db, id, &out->optims, &out->noptims, e);
	db_read_end(db);
	if (rc < 0)
		db_job_full_release(out);
	return rc;
}
