/*
 * turn.c - stored turns and optimizations. See turn.h.
 */
#include "db/turn.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db/internal.h"

static const char sql_insert[] =
    "INSERT INTO turns (job_id, idx, role, model, backend, text, started_at, finished_at, "
    "wall_ms, ttft_ms, prompt_tokens, cached_tokens, completion_tokens, prompt_ms, gen_ms, "
    "tokens_per_s, load_ms, finish_reason, attempts, note) "
    "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, "
    "?19, ?20)";
static const char sql_progress[] = "UPDATE jobs SET turns_completed = ?2 WHERE id = ?1";
static const char sql_list[] =
    "SELECT idx, role, model, backend, text, started_at, finished_at, wall_ms, ttft_ms, "
    "prompt_tokens, cached_tokens, completion_tokens, prompt_ms, gen_ms, tokens_per_s, "
    "load_ms, finish_reason, attempts, note FROM turns WHERE job_id = ?1 ORDER BY idx";
static const char sql_text_bytes[] =
    "SELECT COALESCE(SUM(length(CAST(text AS BLOB))), 0) FROM turns WHERE job_id = ?1";
static const char sql_optims[] =
    "SELECT ord, turn, title, detail, test, suggestion, extracted_at, method FROM optimizations "
    "WHERE job_id = ?1 ORDER BY ord";

void db_turn_release(struct db_turn *t)
{
	free(t->model);
	free(t->backend);
	free(t->text);
	free(t->finish_reason);
	free(t->note);
	memset(t, 0, sizeof(*t));
}

void db_turns_free(struct db_turn *v, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		db_turn_release(&v[i]);
	free(v);
}

int db_turn_put(struct db *db, const char *job_id, const struct db_turn *t, struct perr *e)
{
	sqlite3_stmt *st;
	int rc;

	if (!(st = db_stmt(db, sql_insert, e)))
		return -1;
	db_bind_text(st, 1, job_id);
	sqlite3_bind_int(st, 2, t->idx);
	db_bind_text(st, 3, t->role);
	db_bind_text(st, 4, t->model);
	db_bind_text(st, 5, t->backend);
	db_bind_text(st, 6, t->text ? t->text : "");
	sqlite3_bind_int64(st, 7, t->started_at);
	sqlite3_bind_int64(st, 8, t->finished_at);
	sqlite3_bind_double(st, 9, t->wall_ms);
	db_bind_opt_real(st, 10, t->ttft_ms);
	db_bind_opt_int(st, 11, t->prompt_tokens);
	db_bind_opt_int(st, 12, t->cached_tokens);
	db_bind_opt_int(st, 13, t->completion_tokens);
	db_bind_opt_real(st, 14, t->prompt_ms);
	db_bind_opt_real(st, 15, t->gen_ms);
	db_bind_opt_real(st, 16, t->tokens_per_s);
	db_bind_opt_real(st, 17, t->load_ms);
	db_bind_text(st, 18, t->finish_reason && *t->finish_reason ? t->finish_reason : NULL);
	sqlite3_bind_int(st, 19, t->attempts > 0 ? t->attempts : 1);
	db_bind_text(st, 20, t->note);
	rc = sqlite3_step(st);
	sqlite3_reset(st);
	/* only the UNIQUE(job_id, idx) key means the turn is there; a trigger or a CHECK
	 * refusing the row is a failure of the store, not a duplicate */
	if (rc == SQLITE_CONSTRAINT &&
	    (sqlite3_extended_errcode(db_handle(db)) == SQLITE_CONSTRAINT_UNIQUE ||
	     sqlite3_extended_errcode(db_handle(db)) == SQLITE_CONSTRAINT_PRIMARYKEY))
		return perr_set(e, PERR_CONFLICT, "turn %d of job '%s' is already stored", t->idx,
				job_id);
	if (rc != SQLITE_DONE)
		return db_fail(db, e, "store turn");
	return 0;
}

int db_turn_insert(struct db *db, const char *job_id, int attempt, const struct db_turn *t,
		   struct perr *e)
{
	sqlite3_stmt *st;
	int rc;

	if (db_begin(db, e) < 0)
		return -1;
	if (db_job_claim_held(db, job_id, attempt, e) < 0)
		goto fail;
	if (db_turn_put(db, job_id, t, e) < 0)
		goto fail;
	if (!(st = db_stmt(db, sql_progress, e)))
		goto fail;
	db_bind_text(st, 1, job_id);
	sqlite3_bind_int(st, 2, t->idx);
	rc = sqlite3_step(st);
	sqlite3_reset(st);
	if (rc != SQLITE_DONE) {
		db_fail(db, e, "store progress");
		goto fail;
	}
	return db_commit(db, e);
fail:
	db_rollback(db);
	return -1;
}

static void read_turn(sqlite3_stmt *st, void *elem)
{
	struct db_turn *t = elem;

	t->idx = sqlite3_column_int(st, 0);
	db_col_copy(st, 1, t->role, sizeof(t->role));
	t->model = db_col_text(st, 2);
	t->backend = db_col_text(st, 3);
	t->text = db_col_text(st, 4);
	t->started_at = db_col_int(st, 5);
	t->finished_at = db_col_int(st, 6);
	t->wall_ms = db_col_real(st, 7);
	t->ttft_ms = db_col_real(st, 8);
	t->prompt_tokens = db_col_int(st, 9);
	t->cached_tokens = db_col_int(st, 10);
	t->completion_tokens = db_col_int(st, 11);
	t->prompt_ms = db_col_real(st, 12);
	t->gen_ms = db_col_real(st, 13);
	t->tokens_per_s = db_col_real(st, 14);
	t->load_ms = db_col_real(st, 15);
	t->finish_reason = db_col_text(st, 16);
	t->attempts = sqlite3_column_int(st, 17);
	t->note = db_col_text(st, 18);
}

static void release_turn(void *elem)
{
	db_turn_release(elem);
}

int db_turn_text_bytes(struct db *db, const char *job_id, int64_t *bytes, struct perr *e)
{
	sqlite3_stmt *st = db_stmt(db, sql_text_bytes, e);
	int rc;

	*bytes = 0;
	if (!st)
		return -1;
	db_bind_text(st, 1, job_id);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		*bytes = sqlite3_column_int64(st, 0);
	sqlite3_reset(st);
	if (rc != SQLITE_ROW)
		return db_fail(db, e, "measure turns");
	return 0;
}

int db_turn_list(struct db *db, const char *job_id, struct db_turn **out, size_t *n, struct perr *e)
{
	sqlite3_stmt *st = db_stmt(db, sql_list, e);

	*out = NULL;
	*n = 0;
	if (!st)
		return -1;
	db_bind_text(st, 1, job_id);
	return db_rows(db, st, sizeof(**out), read_turn, release_turn, (void **)out, n, e,
		       "list turns");
}

static void optim_release(struct db_optim *o)
{
	free(o->title);
	free(o->detail);
	free(o->test);
	free(o->suggestion);
}

static void release_optim(void *elem)
{
	optim_release(elem);
}

void db_optims_free(struct db_optim *v, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		optim_release(&v[i]);
	free(v);
}

static void read_optim(sqlite3_stmt *st, void *elem)
{
	struct db_optim *o = elem;

	o->ord = sqlite3_column_int(st, 0);
	o->turn = sqlite3_column_int(st, 1);
	o->title = db_col_text(st, 2);
	o->detail = db_col_text(st, 3);
	o->test = db_col_text(st, 4);
	o->suggestion = db_col_text(st, 5);
	o->extracted_at = db_col_int(st, 6);
	if (sqlite3_column_text(st, 7))
		snprintf(o->method, sizeof(o->method), "%s",
			 (const char *)sqlite3_column_text(st, 7));
}

int db_optim_list(struct db *db, const char *job_id, struct db_optim **out, size_t *n,
		  struct perr *e)
{
	sqlite3_stmt *st = db_stmt(db, sql_optims, e);

	*out = NULL;
	*n = 0;
	if (!st)
		return -1;
	db_bind_text(st, 1, job_id);
	return db_rows(db, st, sizeof(**out), read_optim, release_optim, (void **)out, n, e,
		       "list optimizations");
}
