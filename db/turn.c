/*
 * turn.c - stored turns and optimizations. See turn.h.
 */
#include "db/turn.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char sql_job_check[] =
    "SELECT attempts, status FROM jobs WHERE id = ?1";
static const char sql_insert[] =
    "INSERT INTO turns (job_id, idx, role, model, backend, text, started_at, finished_at, "
    "wall_ms, ttft_ms, prompt_tokens, cached_tokens, completion_tokens, prompt_ms, gen_ms, "
    "tokens_per_s, load_ms, finish_reason, attempts, note) "
    "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, "
    "?19, ?20)";
static const char sql_progress[] =
    "UPDATE jobs SET turns_completed = ?2 WHERE id = ?1";
static const char sql_list[] =
    "SELECT idx, role, model, backend, text, started_at, finished_at, wall_ms, ttft_ms, "
    "prompt_tokens, cached_tokens, completion_tokens, prompt_ms, gen_ms, tokens_per_s, "
    "load_ms, finish_reason, attempts, note FROM turns WHERE job_id = ?1 ORDER BY idx";
static const char sql_optims[] =
    "SELECT ord, turn, title, detail, test, suggestion, extracted_at FROM optimizations "
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

int db_turn_insert(struct db *db, const char *job_id, int attempt, const struct db_turn *t,
		   struct perr *e)
{
	sqlite3_stmt *st;
	int rc, held, running;

	if (db_begin(db, e) < 0)
		return -1;
	if (!(st = db_stmt(db, sql_job_check, e)))
		goto fail;
	db_bind_text(st, 1, job_id);
	rc = sqlite3_step(st);
	if (rc != SQLITE_ROW) {
		sqlite3_reset(st);
		db_rollback(db);
		if (rc == SQLITE_DONE)
			return perr_set(e, PERR_NOT_FOUND, "no job '%s'", job_id);
		return db_fail(db, e, "read job");
	}
	held = sqlite3_column_int(st, 0);
	running = strcmp((const char *)sqlite3_column_text(st, 1), "running") == 0;
	sqlite3_reset(st);
	if (held != attempt || !running) {
		db_rollback(db);
		return perr_set(e, PERR_CONFLICT, "job '%s' attempt %d is no longer running",
				job_id, attempt);
	}
	if (!(st = db_stmt(db, sql_insert, e)))
		goto fail;
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
	     sqlite3_extended_errcode(db_handle(db)) == SQLITE_CONSTRAINT_PRIMARYKEY)) {
		db_rollback(db);
		return perr_set(e, PERR_CONFLICT, "turn %d of job '%s' is already stored", t->idx,
				job_id);
	}
	if (rc != SQLITE_DONE) {
		db_fail(db, e, "store turn");
		goto fail;
	}
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

int db_turn_list(struct db *db, const char *job_id, struct db_turn **out, size_t *n,
		 struct perr *e)
{
	sqlite3_stmt *st = db_stmt(db, sql_list, e);
	size_t alloc = 8;
	int rc;

	*out = NULL;
	*n = 0;
	if (!st)
		return -1;
	db_bind_text(st, 1, job_id);
	*out = xcalloc(alloc, sizeof(**out));
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct db_turn *t;
		const unsigned char *role;
		if (*n == alloc) {
			alloc *= 2;
			*out = xrealloc(*out, alloc * sizeof(**out));
		}
		t = &(*out)[(*n)++];
		memset(t, 0, sizeof(*t));
		t->idx = sqlite3_column_int(st, 0);
		role = sqlite3_column_text(st, 1);
		snprintf(t->role, sizeof(t->role), "%s", role ? (const char *)role : "");
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
	sqlite3_reset(st);
	if (rc != SQLITE_DONE) {
		db_turns_free(*out, *n);
		*out = NULL;
		*n = 0;
		return db_fail(db, e, "list turns");
	}
	return 0;
}

void db_optims_free(struct db_optim *v, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		free(v[i].title);
		free(v[i].detail);
		free(v[i].test);
		free(v[i].suggestion);
	}
	free(v);
}

int db_optim_list(struct db *db, const char *job_id, struct db_optim **out, size_t *n,
		  struct perr *e)
{
	sqlite3_stmt *st = db_stmt(db, sql_optims, e);
	size_t alloc = 8;
	int rc;

	*out = NULL;
	*n = 0;
	if (!st)
		return -1;
	db_bind_text(st, 1, job_id);
	*out = xcalloc(alloc, sizeof(**out));
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct db_optim *o;
		if (*n == alloc) {
			alloc *= 2;
			*out = xrealloc(*out, alloc * sizeof(**out));
		}
		o = &(*out)[(*n)++];
		o->ord = sqlite3_column_int(st, 0);
		o->turn = sqlite3_column_int(st, 1);
		o->title = db_col_text(st, 2);
		o->detail = db_col_text(st, 3);
		o->test = db_col_text(st, 4);
		o->suggestion = db_col_text(st, 5);
		o->extracted_at = db_col_int(st, 6);
	}
	sqlite3_reset(st);
	if (rc != SQLITE_DONE) {
		db_optims_free(*out, *n);
		*out = NULL;
		*n = 0;
		return db_fail(db, e, "list optimizations");
	}
	return 0;
}
