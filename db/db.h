/*
 * db.h - the SQLite store: opening, migrations, transactions.
 *
 * DESIGN: one struct db per thread (each worker and each HTTP thread owns
 * its own connection; SQLite connections are not shared). The file is in WAL
 * mode with synchronous=FULL by default, foreign keys on. Every write
 * transaction starts with BEGIN IMMEDIATE so writers queue on the database
 * lock instead of failing half way.
 *
 * Waiting for the store is bounded here and nowhere else. The writers of this
 * process take turns on one writer slot (a mutex would wake the next writer
 * the moment the lock is free, but could not time out); the writer in the
 * slot waits for another process's lock (a sqlite3 shell, a backup) at most
 * DB_WAIT_MS, and while it waits (or once it has held the slot that long: a
 * hung disk) every other writer is told at once that the store is busy
 * instead of queuing behind it. Readers never take the slot: in
 * WAL mode they are not blocked by a writer. SQLite's errors are classified
 * into PERR_STORE_BUSY, PERR_STORE_UNAVAILABLE (disk full, read-only, I/O
 * error, the file deleted) and PERR_STORE_CORRUPT; the last store failure of
 * a write is remembered until a write commits again, for /readyz.
 *
 * Once start-up is over (db_pin()), connections to the database open it
 * without creating it, and every write first checks that the file at its path
 * is still the one parleyd opened (device and inode): a deleted or replaced
 * file stops writes for good instead of growing a second, empty store. Statements are prepared once
 * per connection and kept (db_stmt() caches them by their SQL text's
 * address), and every value is a bound parameter. Migrations are the files
 * of migrations/, compiled into the binary, applied in order at start-up and
 * tracked with PRAGMA user_version. What the modules of db/ share about
 * SQLite itself (the handle, statements, transactions) is in db/internal.h,
 * which nothing outside db/ includes.
 */
#ifndef PARLEY_DB_H
#define PARLEY_DB_H

#include "db/util.h"

struct db;

/* How long a writer waits for another process's lock, after start-up. */
#define DB_WAIT_MS 1000
/* The same for connections that answer clients (db_set_interactive()). */
#define DB_INTERACTIVE_WAIT_MS 100

/* Opens (creating when missing, until db_pin()) the database file. Does not migrate. */
struct db *db_open(const char *path, struct perr *e);
void db_close(struct db *db);
/*
 * db serves client requests: it waits for another process's lock at most
 * DB_INTERACTIVE_WAIT_MS, so that the thread (and every other request it
 * serves) is never held long; the client gets 503 with Retry-After instead.
 */
void db_set_interactive(struct db *db);
/* Applies the migrations the file has not seen yet; each in its own transaction. */
int db_migrate(struct db *db, struct perr *e);
/* Number of migrations compiled in, and the version the file is at. */
int db_schema_latest(void);
int db_schema_version(struct db *db);

/* "FULL" (default) or "NORMAL"; applies to connections opened afterwards. */
void db_set_synchronous(const char *mode);

/* Returns "ok" or the first problem PRAGMA integrity_check reports (caller frees). */
char *db_integrity_check(struct db *db);
/* The same with PRAGMA quick_check (start-up: fast enough for any size). */
char *db_quick_check(struct db *db);

/*
 * One database, one process: takes an exclusive lock (flock) on the sidecar
 * file "<path>.lock" and writes this process's pid into it, before anything
 * touches the database. When another process holds it, fails with a message
 * that names its pid and listen address. The lock lasts as long as the
 * process (the kernel drops it when the process dies, even by kill -9).
 */
int db_lock_take(const char *path, struct perr *e);
/* Records the listen address in the lock file, once it is known. */
void db_lock_note_listen(const char *listen);

/*
 * Start-up is over: the file at path (opened by db) is the store. Later
 * db_open() calls never create it, and writes are refused with
 * PERR_STORE_UNAVAILABLE once the file at path is no longer this one.
 */
void db_pin(struct db *db, const char *path);

/*
 * Whether the store takes writes: 0 when it does, -1 with e saying why not
 * (the file deleted or replaced, the disk full, another process's lock...).
 * After a failed write it tries a small write itself, at most once a second,
 * without waiting for any lock, so it turns ready again by itself.
 */
int db_store_ready(struct db *db, struct perr *e);

/*
 * Called (from whichever thread saw it) when writes start failing for a
 * reason of the store (ok = 0, msg says why) and when they work again
 * (ok = 1). For the log; set once at start-up.
 */
void db_set_notify(void (*fn)(int ok, int code, const char *msg));

#endif
