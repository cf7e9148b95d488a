/*
 * import.c - imported conversations and re-extraction in the store. See import.h.
 */
#include "db/import.h"

#include <string.h>

#include "db/internal.h"

static const char sql_insert[] =
    "INSERT INTO jobs (id, status, scenario_name, scenario, interviewer_model, "
    "interviewer_backend, candidate_model, candidate_backend, max_turns, options, scoring, "
    "extraction, labels, created_at, started_at, finished_at, turns_completed, metrics) "
    "VALUES (?1, 'succeeded', ?2, ?3, ?4, ?5, ?6, ?7, ?8, '{}', ?9, ?10, ?11, ?12, ?13, ?14, "
    "?15, ?16)";
static const char sql_reextract[] =
    "UPDATE jobs SET extraction = ?2, metrics = ?3 WHERE id = ?1 AND status = 'succeeded'";

static int insert_one(struct db *db, struct db_import *im, struct perr *e)
{
	struct db_job *j = &im->job;
	sqlite3_stmt *st;
	size_t i;
	int rc;

	if (!(st = db_job_insert_stmt(db, sql_insert, j, "succeeded", e)))
		return -1;
	sqlite3_bind_int64(st, 12, j->created_at);
	sqlite3_bind_int64(st, 13, j->started_at);
	sqlite3_bind_int64(st, 14, j->finished_at);
	sqlite3_bind_int(st, 15, (int)im->nturns);
	db_bind_text(st, 16, j->metrics);
	rc = sqlite3_step(st);
	sqlite3_reset(st);
	if (rc != SQLITE_DONE)
		return db_fail(db, e, "insert imported job");
	j->seq = sqlite3_last_insert_rowid(db_handle(db));
	for (i = 0; i < im->nturns; i++)
		if (db_turn_put(db, j->id, &im->turns[i], e) < 0)
			return -1;
	return db_job_put_optims(db, j->id, im->optims, im->noptims, e);
}

int db_import_jobs(struct db *db, struct db_import *v, size_t n, struct perr *e)
{
	size_t i;

	if (db_begin(db, e) < 0)
		return -1;
	for (i = 0; i < n; i++)
		if (insert_one(db, &v[i], e) < 0) {
			db_rollback(db);
			return -1;
		}
	return db_commit(db, e);
}

int db_import_reextract(struct db *db, const char *id, const char *extraction, const char *metrics,
			const struct db_optim *optims, size_t noptims, struct perr *e)
{
	sqlite3_stmt *st;
	char status[16] = "";
	int rc;

	if (db_begin(db, e) < 0)
		return -1;
	if (db_job_status_tx(db, id, status, e) < 0)
		goto fail;
	if (strcmp(status, "succeeded") != 0) {
		db_rollback(db);
		return perr_set(e, PERR_CONFLICT,
				"job '%s' is %s; only a succeeded job can be extracted again", id,
				status);
	}
	if (!(st = db_stmt(db, sql_reextract, e)))
		goto fail;
	db_bind_text(st, 1, id);
	db_bind_text(st, 2, extraction);
	db_bind_text(st, 3, metrics);
	rc = sqlite3_step(st);
	sqlite3_reset(st);
	if (rc != SQLITE_DONE) {
		db_fail(db, e, "store metrics");
		goto fail;
	}
	if (db_job_put_optims(db, id, optims, noptims, e) < 0)
		goto fail;
	return db_commit(db, e);
fail:
	db_rollback(db);
	return -1;
}
