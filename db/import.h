/*
 * import.h - conversations that ran elsewhere, stored as finished jobs; and
 * a finished job's optimizations and scores read again.
 *
 * DESIGN: each is one transaction, so a list of conversations is stored
 * whole or not at all, and a re-extraction replaces the optimizations and
 * the metrics together: a reader sees the old pair or the new one, never a
 * mix. The caller (api/import.c) validates and computes; this only writes.
 */
#ifndef PARLEY_DB_IMPORT_H
#define PARLEY_DB_IMPORT_H

#include <stddef.h>

#include "db/db.h"
#include "db/job.h"
#include "db/turn.h"

struct db_import {
	/* scenario_name, scenario, the models and backends, max_turns, scoring,
	 * extraction, labels, created_at, started_at, finished_at, metrics; id filled */
	struct db_job job;
	const struct db_turn *turns;
	size_t nturns;
	const struct db_optim *optims;
	size_t noptims;
};

/* Stores every v[i] as a succeeded job with its turns and optimizations; fills v[i].job.id. */
int db_import_jobs(struct db *db, struct db_import *v, size_t n, struct perr *e);

/*
 * Replaces a succeeded job's extraction method, metrics and optimizations.
 * PERR_NOT_FOUND without the job; PERR_CONFLICT when it has not succeeded.
 */
int db_import_reextract(struct db *db, const char *id, const char *extraction, const char *metrics,
			const struct db_optim *optims, size_t noptims, struct perr *e);

#endif
