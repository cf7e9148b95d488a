/*
 * internal.h - what the modules of db/ share and nothing else may use: the
 * connection handle, the statement cache, transactions, row readers.
 *
 * DESIGN: db/ owns every SQL statement and every transaction (DESIGN §2).
 * The public headers (db/db.h, db/job.h, ...) speak of jobs, turns and
 * batches; this one speaks SQLite, and only the .c files of db/ include it, so a grep for
 * "db/internal.h" or "sqlite3_" outside db/ (and the tests of db/) must come
 * back empty.
 */
#ifndef PARLEY_DB_INTERNAL_H
#define PARLEY_DB_INTERNAL_H

#include <sqlite3.h>

#include "db/db.h"

struct db_job;

sqlite3 *db_handle(struct db *db);
/* The cached, reset statement for sql (a static string: its address is the key). */
sqlite3_stmt *db_stmt(struct db *db, const char *sql, struct perr *e);
/* Fills e from the connection's last error; returns -1. */
int db_fail(struct db *db, struct perr *e, const char *what);

/* A write transaction: BEGIN IMMEDIATE, queued behind this process's other writers. */
int db_begin(struct db *db, struct perr *e);
int db_commit(struct db *db, struct perr *e);
void db_rollback(struct db *db);
/*
 * A read transaction (a plain BEGIN): every read until db_read_end() sees
 * the same snapshot of the file, so what one view loads agrees with itself.
 */
int db_read_begin(struct db *db, struct perr *e);
void db_read_end(struct db *db);

/* Column helpers: NULL column → NULL / -1. */
char *db_col_text(sqlite3_stmt *st, int col);
int64_t db_col_int(sqlite3_stmt *st, int col);
double db_col_real(sqlite3_stmt *st, int col);
/* Copies a text column into a fixed buffer (cut to fit; NULL → ""). */
void db_col_copy(sqlite3_stmt *st, int col, char *dst, size_t size);
/* Binds text or NULL, an int64 (negative → NULL when null_if_negative), a double (<0 → NULL). */
void db_bind_text(sqlite3_stmt *st, int col, const char *s);
void db_bind_opt_int(sqlite3_stmt *st, int col, int64_t v);
void db_bind_opt_real(sqlite3_stmt *st, int col, double v);

/*
 * Steps st to its end and collects one element of size bytes a row, each
 * filled by read(st, elem) from zeroed memory, into a new array *out of *n
 * (free it with the type's own *_free). st is reset afterwards. On an error
 * the rows read so far are released with release(elem) and freed, *out is
 * NULL, *n is 0, and e says what failed ("what"); returns -1.
 */
int db_rows(struct db *db, sqlite3_stmt *st, size_t size, void (*read)(sqlite3_stmt *, void *),
	    void (*release)(void *), void **out, size_t *n, struct perr *e, const char *what);

/*
 * Inside a write transaction: 0 when job_id is running under attempt, else -1 with e set
 * (PERR_NOT_FOUND: no such job; PERR_CONFLICT: another attempt holds it or it has ended).
 * Every write a worker makes for its job checks this first, so a requeued or cancelled
 * attempt cannot write over its successor.
 */
int db_job_claim_held(struct db *db, const char *job_id, int attempt, struct perr *e);

/*
 * Starts an INSERT INTO jobs: gives j a fresh id and the status, and binds the columns
 * every new job has, in this order: ?1 id, ?2 scenario_name, ?3 scenario, ?4
 * interviewer_model, ?5 interviewer_backend, ?6 candidate_model, ?7 candidate_backend,
 * ?8 max_turns, ?9 scoring, ?10 extraction, ?11 labels ("{}" when none). The caller binds
 * the rest of sql and steps it. NULL (e set) on an error.
 */
sqlite3_stmt *db_job_insert_stmt(struct db *db, const char *sql, struct db_job *j,
				 const char *status, struct perr *e);

/* Inside a transaction: job id's status into status; -1 with e set (PERR_NOT_FOUND) if none. */
int db_job_status_tx(struct db *db, const char *id, char status[16], struct perr *e);

#endif
