/*
 * db.h - the SQLite store: opening, migrations, transactions.
 *
 * DESIGN: one struct db per thread (each worker and each HTTP thread owns
 * its own connection; SQLite connections are not shared). The file is in WAL
 * mode with synchronous=FULL by default, busy_timeout set, foreign keys on.
 * Every write transaction starts with BEGIN IMMEDIATE so writers queue on the
 * database lock instead of failing half way. Statements are prepared once
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

/* Opens (creating when missing) the database file. Does not migrate. */
struct db *db_open(const char *path, struct perr *e);
void db_close(struct db *db);
/* Applies the migrations the file has not seen yet; each in its own transaction. */
int db_migrate(struct db *db, struct perr *e);
/* Number of migrations compiled in, and the version the file is at. */
int db_schema_latest(void);
int db_schema_version(struct db *db);

/* "FULL" (default) or "NORMAL"; applies to connections opened afterwards. */
void db_set_synchronous(const char *mode);

/* Returns "ok" or the first problem PRAGMA integrity_check reports (caller frees). */
char *db_integrity_check(struct db *db);

#endif
