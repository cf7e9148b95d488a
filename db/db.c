/*
 * db.c - connection set-up, the statement cache, migrations. See db.h.
 */
#include "db/internal.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db/embedded.h"

#define DB_STMT_CACHE 64

struct db_cached {
	const char *sql; /* the static string's address is the key */
	sqlite3_stmt *st;
};

struct db {
	sqlite3 *h;
	int holds_writer; /* this connection holds the process's writer lock */
	struct db_cached cache[DB_STMT_CACHE];
	int ncache;
};

static const char *synchronous_mode = "FULL";

/*
 * One writer at a time in this process. SQLite lets only one write
 * transaction run anyway; a connection that finds the lock taken would sleep
 * in its busy handler (1, 2, 5 … 100 ms steps) and could lose the race again
 * and again. Queuing on a mutex instead wakes the next writer the moment the
 * lock is free. busy_timeout still covers other processes.
 */
static pthread_mutex_t writer = PTHREAD_MUTEX_INITIALIZER;

static void writer_release(struct db *db)
{
	if (db->holds_writer) {
		db->holds_writer = 0;
		pthread_mutex_unlock(&writer);
	}
}

void db_set_synchronous(const char *mode)
{
	synchronous_mode = strcmp(mode, "NORMAL") == 0 ? "NORMAL" : "FULL";
}

int db_fail(struct db *db, struct perr *e, const char *what)
{
	return perr_set(e, PERR_DB, "database: %s: %s", what, sqlite3_errmsg(db->h));
}

static int exec(struct db *db, const char *sql, struct perr *e)
{
	char *msg = NULL;

	if (sqlite3_exec(db->h, sql, NULL, NULL, &msg) != SQLITE_OK) {
		perr_set(e, PERR_DB, "database: %s", msg ? msg : sqlite3_errmsg(db->h));
		sqlite3_free(msg);
		return -1;
	}
	return 0;
}

struct db *db_open(const char *path, struct perr *e)
{
	struct db *db = xcalloc(1, sizeof(*db));
	char pragmas[256];

	if (sqlite3_open_v2(path, &db->h,
			    SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
			    NULL) != SQLITE_OK) {
		perr_set(e, PERR_DB, "cannot open database '%s': %s", path,
			 db->h ? sqlite3_errmsg(db->h) : "out of memory");
		sqlite3_close(db->h);
		free(db);
		return NULL;
	}
	sqlite3_busy_timeout(db->h, 10000);
	snprintf(pragmas, sizeof(pragmas),
		 "PRAGMA journal_mode=WAL; PRAGMA synchronous=%s; PRAGMA foreign_keys=ON;",
		 synchronous_mode);
	if (exec(db, pragmas, e) < 0) {
		char msg[sizeof(e->msg)];
		snprintf(msg, sizeof(msg), "%s", e ? e->msg : "");
		perr_set(e, PERR_DB, "cannot open database '%s': %s", path, msg);
		db_close(db);
		return NULL;
	}
	return db;
}

void db_close(struct db *db)
{
	int i;

	if (!db)
		return;
	for (i = 0; i < db->ncache; i++)
		sqlite3_finalize(db->cache[i].st);
	sqlite3_close(db->h);
	free(db);
}

sqlite3 *db_handle(struct db *db)
{
	return db->h;
}

sqlite3_stmt *db_stmt(struct db *db, const char *sql, struct perr *e)
{
	sqlite3_stmt *st;
	int i;

	for (i = 0; i < db->ncache; i++) {
		if (db->cache[i].sql == sql) {
			st = db->cache[i].st;
			sqlite3_reset(st);
			sqlite3_clear_bindings(st);
			return st;
		}
	}
	if (sqlite3_prepare_v3(db->h, sql, -1, SQLITE_PREPARE_PERSISTENT, &st, NULL) != SQLITE_OK) {
		db_fail(db, e, "prepare");
		return NULL;
	}
	if (db->ncache < DB_STMT_CACHE) {
		db->cache[db->ncache].sql = sql;
		db->cache[db->ncache].st = st;
		db->ncache++;
	} else {
		/* never expected: the program has fewer statements than slots */
		abort();
	}
	return st;
}

int db_begin(struct db *db, struct perr *e)
{
	pthread_mutex_lock(&writer);
	db->holds_writer = 1;
	if (exec(db, "BEGIN IMMEDIATE", e) < 0) {
		writer_release(db);
		return -1;
	}
	return 0;
}

int db_commit(struct db *db, struct perr *e)
{
	if (exec(db, "COMMIT", e) < 0) {
		db_rollback(db);
		return -1;
	}
	writer_release(db);
	return 0;
}

void db_rollback(struct db *db)
{
	if (!sqlite3_get_autocommit(db->h))
		sqlite3_exec(db->h, "ROLLBACK", NULL, NULL, NULL);
	writer_release(db);
}

int db_read_begin(struct db *db, struct perr *e)
{
	/* deferred: takes no lock until the first read, and never the writer mutex */
	return exec(db, "BEGIN", e);
}

void db_read_end(struct db *db)
{
	/* a read transaction has nothing to keep: a COMMIT that fails is rolled back */
	if (!sqlite3_get_autocommit(db->h) &&
	    sqlite3_exec(db->h, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
		sqlite3_exec(db->h, "ROLLBACK", NULL, NULL, NULL);
}

int db_schema_latest(void)
{
	int n = 0;

	while (embedded_migrations[n].name)
		n++;
	return n;
}

int db_schema_version(struct db *db)
{
	sqlite3_stmt *st;
	int v = -1;

	if (sqlite3_prepare_v2(db->h, "PRAGMA user_version", -1, &st, NULL) != SQLITE_OK)
		return -1;
	if (sqlite3_step(st) == SQLITE_ROW)
		v = sqlite3_column_int(st, 0);
	sqlite3_finalize(st);
	return v;
}

int db_migrate(struct db *db, struct perr *e)
{
	int have = db_schema_version(db), i;
	int latest = db_schema_latest();
	char sql[64];

	if (have < 0)
		return db_fail(db, e, "read user_version");
	if (have > latest)
		return perr_set(e, PERR_DB,
				"database schema version %d is newer than this parleyd knows (%d)",
				have, latest);
	for (i = have; i < latest; i++) {
		if (db_begin(db, e) < 0)
			return -1;
		if (exec(db, embedded_migrations[i].data, e) < 0) {
			char msg[sizeof(e->msg)];
			snprintf(msg, sizeof(msg), "%s", e ? e->msg : "");
			db_rollback(db);
			return perr_set(e, PERR_DB, "migration '%s' failed: %s",
					embedded_migrations[i].name, msg);
		}
		snprintf(sql, sizeof(sql), "PRAGMA user_version=%d", i + 1);
		if (exec(db, sql, e) < 0 || db_commit(db, e) < 0) {
			db_rollback(db);
			return -1;
		}
	}
	return 0;
}

char *db_integrity_check(struct db *db)
{
	sqlite3_stmt *st;
	char *r;

	if (sqlite3_prepare_v2(db->h, "PRAGMA integrity_check", -1, &st, NULL) != SQLITE_OK)
		return xstrdup(sqlite3_errmsg(db->h));
	if (sqlite3_step(st) == SQLITE_ROW)
		r = xstrdup((const char *)sqlite3_column_text(st, 0));
	else
		r = xstrdup(sqlite3_errmsg(db->h));
	sqlite3_finalize(st);
	return r;
}

char *db_col_text(sqlite3_stmt *st, int col)
{
	const unsigned char *t = sqlite3_column_text(st, col);

	return t ? xstrdup((const char *)t) : NULL;
}

void db_col_copy(sqlite3_stmt *st, int col, char *dst, size_t size)
{
	const unsigned char *t = sqlite3_column_text(st, col);

	snprintf(dst, size, "%s", t ? (const char *)t : "");
}

int64_t db_col_int(sqlite3_stmt *st, int col)
{
	if (sqlite3_column_type(st, col) == SQLITE_NULL)
		return -1;
	return sqlite3_column_int64(st, col);
}

double db_col_real(sqlite3_stmt *st, int col)
{
	if (sqlite3_column_type(st, col) == SQLITE_NULL)
		return -1;
	return sqlite3_column_double(st, col);
}

void db_bind_text(sqlite3_stmt *st, int col, const char *s)
{
	if (s)
		sqlite3_bind_text(st, col, s, -1, SQLITE_TRANSIENT);
	else
		sqlite3_bind_null(st, col);
}

void db_bind_opt_int(sqlite3_stmt *st, int col, int64_t v)
{
	if (v < 0)
		sqlite3_bind_null(st, col);
	else
		sqlite3_bind_int64(st, col, v);
}

void db_bind_opt_real(sqlite3_stmt *st, int col, double v)
{
	if (v < 0)
		sqlite3_bind_null(st, col);
	else
		sqlite3_bind_double(st, col, v);
}

int db_rows(struct db *db, sqlite3_stmt *st, size_t size, void (*read)(sqlite3_stmt *, void *),
	    void (*release)(void *), void **out, size_t *n, struct perr *e, const char *what)
{
	size_t alloc = 16, i;
	char *v = xmalloc(alloc * size);
	int rc;

	*n = 0;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (*n == alloc) {
			alloc *= 2;
			v = xrealloc(v, alloc * size);
		}
		memset(v + *n * size, 0, size);
		read(st, v + *n * size);
		(*n)++;
	}
	sqlite3_reset(st);
	if (rc != SQLITE_DONE) {
		for (i = 0; i < *n; i++)
			release(v + i * size);
		free(v);
		*out = NULL;
		*n = 0;
		return db_fail(db, e, what);
	}
	*out = v;
	return 0;
}
