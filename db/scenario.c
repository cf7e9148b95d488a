/*
 * scenario.c - the scenario library in the store. See scenario.h.
 */
#include "db/scenario.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db/internal.h"

static const char sql_get[] =
    "SELECT name, problem, context, goal, prompts, builtin, created_at, "
    "updated_at, baseline, tasks, objective FROM scenarios WHERE name = ?1";
static const char sql_list[] = "SELECT name, problem, context, goal, prompts, builtin, "
			       "created_at, updated_at, baseline, tasks, objective FROM scenarios "
			       "ORDER BY name";
static const char sql_exists[] = "SELECT 1 FROM scenarios WHERE name = ?1";
static const char sql_put[] =
    "INSERT INTO scenarios (name, problem, context, goal, prompts, builtin, created_at, "
    "updated_at, baseline, tasks, objective) VALUES (?1, ?2, ?3, ?4, ?5, 0, ?6, ?6, ?7, ?8, ?9) "
    "ON CONFLICT (name) DO UPDATE SET problem = excluded.problem, context = excluded.context, "
    "goal = excluded.goal, prompts = excluded.prompts, updated_at = excluded.updated_at, "
    "baseline = excluded.baseline, tasks = excluded.tasks, objective = excluded.objective";
static const char sql_delete[] = "DELETE FROM scenarios WHERE name = ?1";

void db_scenario_release(struct db_scenario *s)
{
	free(s->name);
	free(s->problem);
	free(s->context);
	free(s->goal);
	free(s->prompts);
	free(s->baseline);
	free(s->tasks);
	free(s->objective);
	memset(s, 0, sizeof(*s));
}

void db_scenarios_free(struct db_scenario *v, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		db_scenario_release(&v[i]);
	free(v);
}

static void read_row(sqlite3_stmt *st, void *elem)
{
	struct db_scenario *s = elem;

	s->name = db_col_text(st, 0);
	s->problem = db_col_text(st, 1);
	s->context = db_col_text(st, 2);
	s->goal = db_col_text(st, 3);
	s->prompts = db_col_text(st, 4);
	s->builtin = sqlite3_column_int(st, 5);
	s->created_at = db_col_int(st, 6);
	s->updated_at = db_col_int(st, 7);
	s->baseline = db_col_text(st, 8);
	s->tasks = db_col_text(st, 9);
	s->objective = db_col_text(st, 10);
}

static void release_row(void *elem)
{
	db_scenario_release(elem);
}

int db_scenario_get(struct db *db, const char *name, struct db_scenario *out, struct perr *e)
{
	sqlite3_stmt *st = db_stmt(db, sql_get, e);
	int rc;

	memset(out, 0, sizeof(*out));
	if (!st)
		return -1;
	db_bind_text(st, 1, name);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		read_row(st, out);
	sqlite3_reset(st);
	if (rc == SQLITE_ROW)
		return 0;
	if (rc == SQLITE_DONE)
		return perr_set(e, PERR_NOT_FOUND, "no scenario '%s'", name);
	return db_fail(db, e, "read scenario");
}

int db_scenario_put(struct db *db, const struct db_scenario *s, int *created, struct perr *e)
{
	sqlite3_stmt *st;
	int rc;

	if (db_begin(db, e) < 0)
		return -1;
	if (!(st = db_stmt(db, sql_exists, e)))
		goto fail;
	db_bind_text(st, 1, s->name);
	rc = sqlite3_step(st);
	sqlite3_reset(st);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
		db_fail(db, e, "read scenario");
		goto fail;
	}
	*created = rc == SQLITE_DONE;
	if (!(st = db_stmt(db, sql_put, e)))
		goto fail;
	db_bind_text(st, 1, s->name);
	db_bind_text(st, 2, s->problem);
	db_bind_text(st, 3, s->context);
	db_bind_text(st, 4, s->goal);
	db_bind_text(st, 5, s->prompts);
	sqlite3_bind_int64(st, 6, util_now_us());
	db_bind_text(st, 7, s->baseline);
	db_bind_text(st, 8, s->tasks);
	db_bind_text(st, 9, s->objective);
	rc = sqlite3_step(st);
	sqlite3_reset(st);
	if (rc != SQLITE_DONE) {
		db_fail(db, e, "store scenario");
		goto fail;
	}
	return db_commit(db, e);
fail:
	db_rollback(db);
	return -1;
}

int db_scenario_delete(struct db *db, const char *name, struct perr *e)
{
	sqlite3_stmt *st;
	int rc;

	if (db_begin(db, e) < 0)
		return -1;
	if (!(st = db_stmt(db, sql_delete, e)))
		goto fail;
	db_bind_text(st, 1, name);
	rc = sqlite3_step(st);
	sqlite3_reset(st);
	if (rc != SQLITE_DONE) {
		db_fail(db, e, "delete scenario");
		goto fail;
	}
	if (sqlite3_changes(db_handle(db)) == 0) {
		db_rollback(db);
		return perr_set(e, PERR_NOT_FOUND, "no scenario '%s'", name);
	}
	return db_commit(db, e);
fail:
	db_rollback(db);
	return -1;
}

int db_scenario_list(struct db *db, struct db_scenario **out, size_t *n, struct perr *e)
{
	sqlite3_stmt *st = db_stmt(db, sql_list, e);

	*out = NULL;
	*n = 0;
	if (!st)
		return -1;
	return db_rows(db, st, sizeof(**out), read_row, release_row, (void **)out, n, e,
		       "list scenarios");
}
