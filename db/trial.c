/*
 * trial.c - the stored trials of a job and their task calls. See trial.h.
 */
#include "db/trial.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db/internal.h"

static const char sql_trial_insert[] =
    "INSERT INTO trials (job_id, n, kind, turn, proposal, config, status, reason, created_at, "
    "finished_at, message) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11) "
    "ON CONFLICT (job_id, n) DO NOTHING";
static const char sql_trial_finish[] =
    "UPDATE trials SET status = ?3, reason = ?4, result = ?5, finished_at = ?6, message = ?7 "
    "WHERE job_id = ?1 AND n = ?2";
static const char sql_trial_list[] =
    "SELECT n, kind, turn, proposal, config, status, reason, result, created_at, finished_at, "
    "message FROM trials WHERE job_id = ?1 ORDER BY n";
static const char sql_call_insert[] =
    "INSERT INTO trial_calls (job_id, trial, split, task_idx, rep, task_id, input, reply, "
    "checks, score, passed, error, started_at, finished_at, wall_ms, ttft_ms, prompt_tokens, "
    "cached_tokens, completion_tokens) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, "
    "?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19)";
static const char sql_call_list[] =
    "SELECT trial, split, task_idx, rep, task_id, input, reply, checks, score, passed, error, "
    "started_at, finished_at, wall_ms, ttft_ms, prompt_tokens, cached_tokens, "
    "completion_tokens FROM trial_calls WHERE job_id = ?1 AND (?2 < 0 OR trial = ?2) "
    "ORDER BY trial, split DESC, task_idx, rep";

void db_trial_release(struct db_trial *t)
{
	free(t->proposal);
	free(t->config);
	free(t->reason);
	free(t->result);
	free(t->message);
	memset(t, 0, sizeof(*t));
}

void db_trials_free(struct db_trial *v, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		db_trial_release(&v[i]);
	free(v);
}

void db_trial_call_release(struct db_trial_call *c)
{
	free(c->task_id);
	free(c->input);
	free(c->reply);
	free(c->checks);
	free(c->error);
	memset(c, 0, sizeof(*c));
}

void db_trial_calls_free(struct db_trial_call *v, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		db_trial_call_release(&v[i]);
	free(v);
}

int db_trial_begin(struct db *db, const char *job_id, int attempt, const struct db_trial *t,
		   int *existed, struct perr *e)
{
	sqlite3_stmt *st;
	int64_t now = util_now_us();
	int rc, rejected = strcmp(t->status, "rejected") == 0;

	if (db_begin(db, e) < 0)
		return -1;
	if (db_job_claim_held(db, job_id, attempt, e) < 0 ||
	    !(st = db_stmt(db, sql_trial_insert, e)))
		goto fail;
	db_bind_text(st, 1, job_id);
	sqlite3_bind_int(st, 2, t->n);
	db_bind_text(st, 3, t->kind);
	db_bind_opt_int(st, 4, t->turn);
	db_bind_text(st, 5, t->proposal);
	db_bind_text(st, 6, t->config);
	db_bind_text(st, 7, t->status);
	db_bind_text(st, 8, t->reason);
	sqlite3_bind_int64(st, 9, now);
	db_bind_opt_int(st, 10, rejected ? now : -1);
	db_bind_text(st, 11, t->message);
	rc = sqlite3_step(st);
	sqlite3_reset(st);
	if (rc != SQLITE_DONE) {
		db_fail(db, e, "store trial");
		goto fail;
	}
	if (existed)
		*existed = sqlite3_changes(db_handle(db)) == 0;
	return db_commit(db, e);
fail:
	db_rollback(db);
	return -1;
}

int db_trial_call_insert(struct db *db, const char *job_id, int attempt,
			 const struct db_trial_call *c, struct perr *e)
{
	sqlite3_stmt *st;
	int rc;

	if (db_begin(db, e) < 0)
		return -1;
	if (db_job_claim_held(db, job_id, attempt, e) < 0 ||
	    !(st = db_stmt(db, sql_call_insert, e)))
		goto fail;
	db_bind_text(st, 1, job_id);
	sqlite3_bind_int(st, 2, c->trial);
	db_bind_text(st, 3, c->split);
	sqlite3_bind_int(st, 4, c->task_idx);
	sqlite3_bind_int(st, 5, c->rep);
	db_bind_text(st, 6, c->task_id);
	db_bind_text(st, 7, c->input);
	db_bind_text(st, 8, c->reply ? c->reply : "");
	db_bind_text(st, 9, c->checks ? c->checks : "[]");
	sqlite3_bind_double(st, 10, c->score);
	sqlite3_bind_int(st, 11, c->passed);
	db_bind_text(st, 12, c->error);
	sqlite3_bind_int64(st, 13, c->started_at);
	sqlite3_bind_int64(st, 14, c->finished_at);
	sqlite3_bind_double(st, 15, c->wall_ms);
	db_bind_opt_real(st, 16, c->ttft_ms);
	db_bind_opt_int(st, 17, c->prompt_tokens);
	db_bind_opt_int(st, 18, c->cached_tokens);
	db_bind_opt_int(st, 19, c->completion_tokens);
	rc = sqlite3_step(st);
	sqlite3_reset(st);
	if (rc == SQLITE_CONSTRAINT) {
		db_rollback(db);
		return perr_set(e, PERR_CONFLICT,
				"call %d/%d of trial %d (%s) of job '%s' is already stored",
				c->task_idx, c->rep, c->trial, c->split, job_id);
	}
	if (rc != SQLITE_DONE) {
		db_fail(db, e, "store trial call");
		goto fail;
	}
	return db_commit(db, e);
fail:
	db_rollback(db);
	return -1;
}

int db_trial_finish(struct db *db, const char *job_id, int attempt, int n, const char *status,
		    const char *reason, const char *result, const char *message, struct perr *e)
{
	sqlite3_stmt *st;
	int rc;

	if (db_begin(db, e) < 0)
		return -1;
	if (db_job_claim_held(db, job_id, attempt, e) < 0 ||
	    !(st = db_stmt(db, sql_trial_finish, e)))
		goto fail;
	db_bind_text(st, 1, job_id);
	sqlite3_bind_int(st, 2, n);
	db_bind_text(st, 3, status);
	db_bind_text(st, 4, reason);
	db_bind_text(st, 5, result);
	sqlite3_bind_int64(st, 6, util_now_us());
	db_bind_text(st, 7, message);
	rc = sqlite3_step(st);
	sqlite3_reset(st);
	if (rc != SQLITE_DONE) {
		db_fail(db, e, "finish trial");
		goto fail;
	}
	if (sqlite3_changes(db_handle(db)) == 0) {
		db_rollback(db);
		return perr_set(e, PERR_NOT_FOUND, "no trial %d of job '%s'", n, job_id);
	}
	return db_commit(db, e);
fail:
	db_rollback(db);
	return -1;
}

static void copy_text(char *dst, size_t size, sqlite3_stmt *st, int col)
{
	const char *s = (const char *)sqlite3_column_text(st, col);

	snprintf(dst, size, "%s", s ? s : "");
}

int db_trial_list(struct db *db, const char *job_id, struct db_trial **out, size_t *n,
		  struct perr *e)
{
	sqlite3_stmt *st = db_stmt(db, sql_trial_list, e);
	size_t alloc = 4;
	int rc;

	*out = NULL;
	*n = 0;
	if (!st)
		return -1;
	db_bind_text(st, 1, job_id);
	*out = xcalloc(alloc, sizeof(**out));
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct db_trial *t;
		if (*n == alloc) {
			alloc *= 2;
			*out = xrealloc(*out, alloc * sizeof(**out));
		}
		t = &(*out)[(*n)++];
		memset(t, 0, sizeof(*t));
		t->n = sqlite3_column_int(st, 0);
		copy_text(t->kind, sizeof(t->kind), st, 1);
		t->turn = (int)db_col_int(st, 2);
		t->proposal = db_col_text(st, 3);
		t->config = db_col_text(st, 4);
		copy_text(t->status, sizeof(t->status), st, 5);
		t->reason = db_col_text(st, 6);
		t->result = db_col_text(st, 7);
		t->created_at = db_col_int(st, 8);
		t->finished_at = sqlite3_column_type(st, 9) == SQLITE_NULL ? 0 : db_col_int(st, 9);
		t->message = db_col_text(st, 10);
	}
	sqlite3_reset(st);
	if (rc != SQLITE_DONE) {
		db_trials_free(*out, *n);
		*out = NULL;
		*n = 0;
		return db_fail(db, e, "list trials");
	}
	return 0;
}

int db_trial_calls(struct db *db, const char *job_id, int trial, struct db_trial_call **out,
		   size_t *n, struct perr *e)
{
	sqlite3_stmt *st = db_stmt(db, sql_call_list, e);
	size_t alloc = 16;
	int rc;

	*out = NULL;
	*n = 0;
	if (!st)
		return -1;
	db_bind_text(st, 1, job_id);
	sqlite3_bind_int(st, 2, trial);
	*out = xcalloc(alloc, sizeof(**out));
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct db_trial_call *c;
		if (*n == alloc) {
			alloc *= 2;
			*out = xrealloc(*out, alloc * sizeof(**out));
		}
		c = &(*out)[(*n)++];
		memset(c, 0, sizeof(*c));
		c->trial = sqlite3_column_int(st, 0);
		copy_text(c->split, sizeof(c->split), st, 1);
		c->task_idx = sqlite3_column_int(st, 2);
		c->rep = sqlite3_column_int(st, 3);
		c->task_id = db_col_text(st, 4);
		c->input = db_col_text(st, 5);
		c->reply = db_col_text(st, 6);
		c->checks = db_col_text(st, 7);
		c->score = sqlite3_column_double(st, 8);
		c->passed = sqlite3_column_int(st, 9);
		c->error = db_col_text(st, 10);
		c->started_at = db_col_int(st, 11);
		c->finished_at = db_col_int(st, 12);
		c->wall_ms = sqlite3_column_double(st, 13);
		c->ttft_ms = db_col_real(st, 14);
		c->prompt_tokens = db_col_int(st, 15);
		c->cached_tokens = db_col_int(st, 16);
		c->completion_tokens = db_col_int(st, 17);
	}
	sqlite3_reset(st);
	if (rc != SQLITE_DONE) {
		db_trial_calls_free(*out, *n);
		*out = NULL;
		*n = 0;
		return db_fail(db, e, "list trial calls");
	}
	return 0;
}
