/*
 * search.h - the optimizations found across jobs, newest first, with
 * full-text search over their titles and details.
 *
 * DESIGN: the words of every optimization's title and detail are indexed by
 * an SQLite FTS5 table (migrations/0003_batches.sql) that triggers keep in
 * step with the optimizations table, so a search costs an index lookup, not
 * a scan. A user's query is never handed to FTS5's query language as it is:
 * db_search_query() turns it into quoted words (all must match; a trailing
 * '*' keeps prefix matching), so no input can be a syntax error.
 */
#ifndef PARLEY_DB_SEARCH_H
#define PARLEY_DB_SEARCH_H

#include <stddef.h>
#include <stdint.h>

#include "db/db.h"
#include "db/job.h"

struct db_found {
	int64_t id; /* the optimization's row id; newer ones are larger */
	int ord, turn;
	char *title, *detail, *test, *suggestion;
	int64_t extracted_at;
	char method[8]; /* how it was found: "rubric", "origin", "model"; "" when not recorded */
	/* the job it came from */
	char job_id[DB_JOB_ID_LEN];
	char job_status[16];
	char *scenario_name;
	char *interviewer_model, *interviewer_backend;
	char *candidate_model, *candidate_backend;
	char *batch_id; /* NULL when the job is not in a batch */
};

void db_found_free(struct db_found *v, size_t n);

struct db_search_filter {
	const char *scenario; /* the job's scenario name */
	const char *model;    /* the job's interviewer or candidate model */
	const char *batch, *job;
	const char *match; /* an FTS5 query from db_search_query(), or NULL */
	int64_t before_id; /* 0 = from the newest */
	int limit;
};

/*
 * The FTS5 query for what a user typed: its words (letters, digits, '_'),
 * each quoted, all required; "word*" keeps a prefix match. A new string, or
 * NULL when q holds no word.
 */
char *db_search_query(const char *q);

/* Newest first. *out is a new array of *n (db_found_free()). */
int db_search_optimizations(struct db *db, const struct db_search_filter *f, struct db_found **out,
			    size_t *n, struct perr *e);

#endif
