/*
 * db.c - connection set-up, the statement cache, migrations, the writer slot
 * and every wait for the store, the store's state (the file opened, the last
 * failure of a write), the lock file. See db.h.
 */
#include "db/internal.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#include "db/embedded.h"

#define DB_STMT_CACHE 64
/* Start-up may wait longer for another process (it has nobody to answer yet). */
#define DB_STARTUP_WAIT_MS 10000
/* /readyz probes a failing store at most this often. */
#define DB_PROBE_EVERY_US 1000000

struct db_cached {
	const char *sql; /* the static string's address is the key */
	sqlite3_stmt *st;
};

struct db {
	sqlite3 *h;
	int holds_writer; /* this connection holds the process's writer slot */
	int pinned;	  /* this is the store db_pin() named */
	int64_t deadline; /* monotonic us: when a wait for another process's lock gives up */
	int wait_ms;	  /* how long a write waits at most */
	struct db_cached cache[DB_STMT_CACHE];
	int ncache;
};

static const char *synchronous_mode = "FULL";

/*
 * One writer at a time in this process. SQLite lets only one write
 * transaction run anyway; a connection that finds the lock taken would sleep
 * in its busy handler (1, 2, 5 … 100 ms steps) and could lose the race again
 * and again. Queuing on the slot instead wakes the next writer the moment the
 * lock is free, and every wait has a deadline. While the writer in the slot
 * waits for another process's lock (blocked_since), the others do not queue:
 * they would only wait for the same lock, one after another.
 *
 * The rest is the store's state as every connection sees it: the file that
 * start-up opened, and the last failure of a write.
 */
static struct {
	pthread_mutex_t lock; /* guards everything in this struct */
	pthread_cond_t freed; /* the writer slot was released */
	int writer_held;
	int64_t blocked_since; /* monotonic us; 0 when the writer is not waiting for a lock */
	int64_t lock_seen;     /* monotonic us: a writer last gave up on another process's lock */
	int64_t held_since;    /* monotonic us: when the writer in the slot took it */
	char path[4096];       /* the pinned store, "" before db_pin() */
	dev_t dev;
	ino_t ino;
	int replaced; /* for good: the file at path is not the one opened */
	int failing;  /* a write failed for a reason of the store, none committed since */
	int fail_code;
	char fail_msg[sizeof(((struct perr *)0)->msg)];
	int64_t last_probe;
	void (*notify)(int ok, int code, const char *msg);
} S = {.lock = PTHREAD_MUTEX_INITIALIZER};

static pthread_once_t cond_once = PTHREAD_ONCE_INIT;

static void cond_init(void)
{
	pthread_condattr_t a;

	pthread_condattr_init(&a);
	pthread_condattr_setclock(&a, CLOCK_MONOTONIC);
	pthread_cond_init(&S.freed, &a);
	pthread_condattr_destroy(&a);
}

void db_set_notify(void (*fn)(int ok, int code, const char *msg))
{
	pthread_mutex_lock(&S.lock);
	S.notify = fn;
	pthread_mutex_unlock(&S.lock);
}

/* Remembers a write that failed for a reason of the store; tells the log on the change. */
static void note_failure(int code, const char *msg)
{
	void (*fn)(int, int, const char *) = NULL;
	char copy[sizeof(S.fail_msg)];

	pthread_mutex_lock(&S.lock);
	if (!S.failing || S.fail_code != code) {
		fn = S.notify;
		snprintf(copy, sizeof(copy), "%s", msg);
	}
	S.failing = 1;
	S.fail_code = code;
	snprintf(S.fail_msg, sizeof(S.fail_msg), "%s", msg);
	pthread_mutex_unlock(&S.lock);
	if (fn)
		fn(0, code, copy);
}

static void note_success(void)
{
	void (*fn)(int, int, const char *) = NULL;

	pthread_mutex_lock(&S.lock);
	if (S.failing) {
		S.failing = 0;
		fn = S.notify;
	}
	pthread_mutex_unlock(&S.lock);
	if (fn)
		fn(1, PERR_OK, "the store takes writes again");
}

static void writer_release(struct db *db)
{
	if (db->holds_writer) {
		db->holds_writer = 0;
		pthread_mutex_lock(&S.lock);
		S.writer_held = 0;
		S.blocked_since = 0;
		/* a few threads at most: each looks, the first takes it, the others wait on */
		pthread_cond_broadcast(&S.freed);
		pthread_mutex_unlock(&S.lock);
	}
}

void db_set_synchronous(const char *mode)
{
	synchronous_mode = strcmp(mode, "NORMAL") == 0 ? "NORMAL" : "FULL";
}

/* What a SQLite result code means for the callers: a store condition, or a plain error. */
static int classify(int rc)
{
	switch (rc & 0xff) {
	case SQLITE_BUSY:
	case SQLITE_LOCKED:
		return PERR_STORE_BUSY;
	case SQLITE_FULL:
	case SQLITE_READONLY:
	case SQLITE_IOERR:
	case SQLITE_CANTOPEN:
	case SQLITE_PERM:
		return PERR_STORE_UNAVAILABLE;
	case SQLITE_CORRUPT:
	case SQLITE_NOTADB:
		return PERR_STORE_CORRUPT;
	default:
		return PERR_DB;
	}
}

static int is_store_code(int code)
{
	return code == PERR_STORE_BUSY || code == PERR_STORE_UNAVAILABLE ||
	       code == PERR_STORE_CORRUPT;
}

/* Fills e for a failure of db with code and message; remembers a store failure of a write. */
static int fail_with(struct db *db, struct perr *e, int code, const char *msg)
{
	struct perr local;

	if (!e)
		e = &local;
	perr_set(e, code, "%s", msg);
	if (is_store_code(code) && db && db->holds_writer)
		note_failure(code, e->msg);
	return -1;
}

/*
 * SQLite's message, and for an I/O error what the filesystem says: a write on
 * a filesystem that went read-only is only a "disk I/O error" to SQLite.
 */
static void errmsg(struct db *db, const char *text, char *out, size_t size)
{
	struct statvfs vfs;
	const char *fs = NULL;

	if ((sqlite3_extended_errcode(db->h) & 0xff) == SQLITE_IOERR && db->pinned &&
	    statvfs(S.path, &vfs) == 0) {
		if (vfs.f_flag & ST_RDONLY)
			fs = "the filesystem is read-only";
		else if (vfs.f_bavail == 0)
			fs = "the disk is full";
	}
	if (fs)
		snprintf(out, size, "%s (%s)", text, fs);
	else
		snprintf(out, size, "%s", text);
}

int db_fail(struct db *db, struct perr *e, const char *what)
{
	char msg[sizeof(e->msg)], why[sizeof(e->msg) - 80];

	errmsg(db, sqlite3_errmsg(db->h), why, sizeof(why));
	snprintf(msg, sizeof(msg), "database: %.60s: %s", what, why);
	return fail_with(db, e, classify(sqlite3_extended_errcode(db->h)), msg);
}

static int exec(struct db *db, const char *sql, struct perr *e)
{
	char *err = NULL, msg[sizeof(e->msg)], why[sizeof(e->msg) - 16];
	int rc = sqlite3_exec(db->h, sql, NULL, NULL, &err);

	if (rc == SQLITE_OK)
		return 0;
	errmsg(db, err ? err : sqlite3_errmsg(db->h), why, sizeof(why));
	snprintf(msg, sizeof(msg), "database: %s", why);
	sqlite3_free(err);
	return fail_with(db, e, classify(sqlite3_extended_errcode(db->h)), msg);
}

/*
 * SQLite's busy handler: another process holds the lock. Sleeps in short
 * steps until the connection's deadline, and lets the other writers of this
 * process know that the one in the slot is stuck behind another process.
 */
static int on_busy(void *ud, int n)
{
	struct db *db = ud;
	int64_t now = util_mono_us(), left;
	long ms;

	if (n == 0 && !db->holds_writer)
		db->deadline = now + (int64_t)db->wait_ms * 1000; /* a reader's own wait */
	if (n == 0 && db->holds_writer) {
		pthread_mutex_lock(&S.lock);
		if (!S.blocked_since) {
			S.blocked_since = now;
			/* the writers queued behind this one stop waiting: they are told now */
			pthread_cond_broadcast(&S.freed);
		}
		pthread_mutex_unlock(&S.lock);
	}
	left = db->deadline - now;
	if (left <= 0)
		return 0;
	/* steps of 10 ms: the writer gets the lock soon after the other process lets go */
	ms = (long)(left / 1000) + 1;
	util_sleep_ms(ms > 10 ? 10 : ms);
	return 1;
}

static int same_file(const char *path, dev_t dev, ino_t ino)
{
	struct stat sb;

	return stat(path, &sb) == 0 && sb.st_dev == dev && sb.st_ino == ino;
}

/* For the pinned store: is the file at its path still the one parleyd opened? */
static int check_identity(struct db *db, struct perr *e)
{
	char msg[sizeof(S.fail_msg)];
	int replaced;

	if (!db->pinned)
		return 0;
	pthread_mutex_lock(&S.lock);
	replaced = S.replaced || !same_file(S.path, S.dev, S.ino);
	if (replaced && !S.replaced) {
		S.replaced = 1;
		S.failing = 0; /* so note_failure() tells the log */
	}
	if (replaced)
		snprintf(msg, sizeof(msg),
			 "the database file '%.200s' was deleted or replaced while parleyd ran; "
			 "writes are refused so that nothing is written to a file that is gone; "
			 "restore the file and restart parleyd",
			 S.path);
	pthread_mutex_unlock(&S.lock);
	if (!replaced)
		return 0;
	perr_set(e, PERR_STORE_UNAVAILABLE, "%s", msg);
	note_failure(PERR_STORE_UNAVAILABLE, msg);
	return -1;
}

struct db *db_open(const char *path, struct perr *e)
{
	struct db *db = xcalloc(1, sizeof(*db));
	int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, pinned;
	char pragmas[256];

	pthread_once(&cond_once, cond_init);
	pthread_mutex_lock(&S.lock);
	pinned = S.path[0] && strcmp(S.path, path) == 0;
	pthread_mutex_unlock(&S.lock);
	db->pinned = pinned;
	db->wait_ms = pinned ? DB_WAIT_MS : DB_STARTUP_WAIT_MS;
	/* after start-up the store exists: a missing file is never created again */
	if (!pinned)
		flags |= SQLITE_OPEN_CREATE;
	else if (check_identity(db, e) < 0) {
		free(db);
		return NULL;
	}
	if (sqlite3_open_v2(path, &db->h, flags, NULL) != SQLITE_OK) {
		int code = db->h ? classify(sqlite3_extended_errcode(db->h)) : PERR_INTERNAL;
		perr_set(e, code, "cannot open database '%s': %s", path,
			 db->h ? sqlite3_errmsg(db->h) : "out of memory");
		sqlite3_close(db->h);
		free(db);
		return NULL;
	}
	sqlite3_busy_handler(db->h, on_busy, db);
	snprintf(pragmas, sizeof(pragmas),
		 "PRAGMA journal_mode=WAL; PRAGMA synchronous=%s; PRAGMA foreign_keys=ON;",
		 synchronous_mode);
	db->deadline = util_mono_us() + (int64_t)db->wait_ms * 1000;
	if (exec(db, pragmas, e) < 0) {
		char msg[sizeof(e->msg)];
		snprintf(msg, sizeof(msg), "%s", e ? e->msg : "");
		perr_set(e, e ? e->code : PERR_DB, "cannot open database '%s': %s", path, msg);
		db_close(db);
		return NULL;
	}
	return db;
}

void db_set_interactive(struct db *db)
{
	db->wait_ms = DB_INTERACTIVE_WAIT_MS;
}

void db_pin(struct db *db, const char *path)
{
	struct stat sb;

	db->wait_ms = DB_WAIT_MS;
	if (stat(path, &sb) < 0)
		return; /* no file to watch (":memory:"): nothing to pin */
	pthread_mutex_lock(&S.lock);
	snprintf(S.path, sizeof(S.path), "%s", path);
	S.dev = sb.st_dev;
	S.ino = sb.st_ino;
	pthread_mutex_unlock(&S.lock);
	db->pinned = 1;
}

static int lock_fd = -1;

int db_lock_take(const char *path, struct perr *e)
{
	char lpath[4200], who[256] = "", line[64];
	ssize_t n;
	int fd;

	snprintf(lpath, sizeof(lpath), "%s.lock", path);
	fd = open(lpath, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	if (fd < 0)
		return perr_set(e, PERR_STORE_UNAVAILABLE, "cannot open the lock file '%s': %s",
				lpath, strerror(errno));
	if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		int err = errno;
		n = pread(fd, who, sizeof(who) - 1, 0);
		who[n > 0 ? n : 0] = '\0';
		who[strcspn(who, "\n")] = '\0';
		close(fd);
		if (err != EWOULDBLOCK)
			return perr_set(e, PERR_STORE_UNAVAILABLE, "cannot lock '%s': %s", lpath,
					strerror(err));
		return perr_set(e, PERR_CONFLICT,
				"database '%s' is in use by another parleyd (%s); stop that one "
				"first, or give this one another --db",
				path, who[0] ? who : "its pid is not recorded yet");
	}
	snprintf(line, sizeof(line), "pid %d, starting\n", (int)getpid());
	if (ftruncate(fd, 0) < 0 || pwrite(fd, line, strlen(line), 0) < 0) {
		/* the lock holds without the note; only the message of a refusal is poorer */
	}
	lock_fd = fd; /* kept open for the life of the process: closing it would unlock */
	return 0;
}

void db_lock_note_listen(const char *listen)
{
	char line[300];

	if (lock_fd < 0)
		return;
	snprintf(line, sizeof(line), "pid %d, listening on %s\n", (int)getpid(), listen);
	if (ftruncate(lock_fd, 0) < 0 || pwrite(lock_fd, line, strlen(line), 0) < 0) {
		/* as above */
	}
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

/*
 * Takes the writer slot. Waits while the writer in it is making progress:
 * not once it waits for another process's lock (blocked_since), nor once it
 * has held the slot for DB_WAIT_MS (a write stuck in a slow or hung disk),
 * nor past twice that in all (a long queue). So no thread, and no HTTP
 * thread in particular, is ever parked behind the store for long. A
 * connection that waits 0 (the readiness probe) does not wait at all.
 */
static int writer_take(struct db *db, struct perr *e)
{
	int64_t slot_us =
	    db->wait_ms == 0
		? 0
		: (int64_t)(db->wait_ms > DB_WAIT_MS ? db->wait_ms : DB_WAIT_MS) * 1000;
	int64_t now = util_mono_us(), deadline = now + 2 * slot_us, limit;
	const char *why = NULL;
	struct timespec ts;

	pthread_mutex_lock(&S.lock);
	while (S.writer_held && !S.blocked_since) {
		limit = S.held_since + slot_us;
		if (limit > deadline)
			limit = deadline;
		if (now >= limit)
			break;
		ts.tv_sec = (time_t)(limit / 1000000);
		ts.tv_nsec = (long)(limit % 1000000) * 1000;
		pthread_cond_timedwait(&S.freed, &S.lock, &ts);
		now = util_mono_us();
	}
	if (S.writer_held && S.blocked_since)
		why = "the database is locked by another process; try again shortly";
	else if (S.writer_held && slot_us && now - S.held_since >= slot_us)
		why = "the database is slow to answer (a write is taking long); try again "
		      "shortly";
	else if (S.writer_held)
		why = "the database is busy (waited for the writer); try again shortly";
	/*
	 * Right after a writer waited for another process in vain, the next one
	 * does not wait again for DB_WAIT_MS: so a thread that serves several
	 * requests in a row is held up by the store once, not once per request.
	 */
	else if (slot_us && S.lock_seen && now - S.lock_seen < (int64_t)DB_WAIT_MS * 1000)
		why = "the database is locked by another process; try again shortly";
	if (why) {
		pthread_mutex_unlock(&S.lock);
		return fail_with(NULL, e, PERR_STORE_BUSY, why);
	}
	S.writer_held = 1;
	S.held_since = now;
	pthread_mutex_unlock(&S.lock);
	db->holds_writer = 1;
	return 0;
}

int db_begin(struct db *db, struct perr *e)
{
	if (writer_take(db, e) < 0) {
		if (db->pinned)
			note_failure(e ? e->code : PERR_STORE_BUSY, e ? e->msg : "busy");
		return -1;
	}
	db->deadline = util_mono_us() + (int64_t)db->wait_ms * 1000;
	if (check_identity(db, e) < 0) {
		writer_release(db);
		return -1;
	}
	if (sqlite3_exec(db->h, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK) {
		int code = classify(sqlite3_extended_errcode(db->h));
		char msg[sizeof(S.fail_msg)];
		if (code == PERR_STORE_BUSY) {
			snprintf(msg, sizeof(msg), "%s",
				 "the database is locked by another process; try again shortly");
			pthread_mutex_lock(&S.lock);
			S.lock_seen = util_mono_us();
			pthread_mutex_unlock(&S.lock);
		} else {
			char why[sizeof(msg) - 32];
			errmsg(db, sqlite3_errmsg(db->h), why, sizeof(why));
			snprintf(msg, sizeof(msg), "database: begin: %s", why);
		}
		fail_with(db, e, code, msg);
		writer_release(db);
		return -1;
	}
	pthread_mutex_lock(&S.lock);
	S.blocked_since = 0;
	S.lock_seen = 0;
	pthread_mutex_unlock(&S.lock);
	return 0;
}

int db_commit(struct db *db, struct perr *e)
{
	if (exec(db, "COMMIT", e) < 0) {
		db_rollback(db);
		return -1;
	}
	writer_release(db);
	if (db->pinned)
		note_success();
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

int db_store_ready(struct db *db, struct perr *e)
{
	int64_t now = util_mono_us();
	int failing, probe, code, saved_wait = db->wait_ms;
	char msg[sizeof(S.fail_msg)];

	if (check_identity(db, e) < 0)
		return -1;
	pthread_mutex_lock(&S.lock);
	failing = S.failing;
	code = S.fail_code;
	snprintf(msg, sizeof(msg), "%s", S.fail_msg);
	/* a probe never waits, and never reports another writer's turn as the store's state */
	probe = failing && now - S.last_probe >= DB_PROBE_EVERY_US && !S.writer_held;
	if (probe)
		S.last_probe = now;
	pthread_mutex_unlock(&S.lock);
	if (!failing)
		return 0;
	if (probe) {
		/* a small real write, without waiting for anyone's lock */
		int v = db_schema_version(db);
		char sql[64];
		db->wait_ms = 0;
		snprintf(sql, sizeof(sql), "PRAGMA user_version=%d", v);
		if (v >= 0 && db_begin(db, NULL) == 0) {
			if (exec(db, sql, NULL) == 0 && db_commit(db, NULL) == 0) {
				db->wait_ms = saved_wait;
				return 0;
			}
			db_rollback(db);
		}
		db->wait_ms = saved_wait;
		pthread_mutex_lock(&S.lock);
		code = S.fail_code;
		snprintf(msg, sizeof(msg), "%s", S.fail_msg);
		pthread_mutex_unlock(&S.lock);
	}
	return perr_set(e, code, "the store does not take writes: %s", msg);
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

static char *check(struct db *db, const char *pragma)
{
	sqlite3_stmt *st;
	char *r;

	if (sqlite3_prepare_v2(db->h, pragma, -1, &st, NULL) != SQLITE_OK)
		return xstrdup(sqlite3_errmsg(db->h));
	if (sqlite3_step(st) == SQLITE_ROW)
		r = xstrdup((const char *)sqlite3_column_text(st, 0));
	else
		r = xstrdup(sqlite3_errmsg(db->h));
	sqlite3_finalize(st);
	return r;
}

char *db_integrity_check(struct db *db)
{
	return check(db, "PRAGMA integrity_check");
}

char *db_quick_check(struct db *db)
{
	return check(db, "PRAGMA quick_check");
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
