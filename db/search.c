/*
 * search.c - optimizations across jobs, with full-text search. See search.h.
 */
#include "db/search.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db/internal.h"

static const char sql_search[] =
    "SELECT o.id, o.ord, o.turn, o.title, o.detail, o.test, o.suggestion, o.extracted_at, "
    "j.id, j.status, j.scenario_name, j.interviewer_model, j.interviewer_backend, "
    "j.candidate_model, j.candidate_backend, j.batch_id, o.method "
    "FROM optimizations o JOIN jobs j ON j.id = o.job_id "
    "WHERE (?1 IS NULL OR j.scenario_name = ?1) "
    "AND (?2 IS NULL OR j.interviewer_model = ?2 OR j.candidate_model = ?2) "
    "AND (?3 IS NULL OR j.batch_id = ?3) "
    "AND (?4 IS NULL OR j.id = ?4) "
    "AND (?5 IS NULL OR o.id IN "
    "(SELECT rowid FROM optimizations_fts WHERE optimizations_fts MATCH ?5)) "
    "AND (?6 = 0 OR o.id < ?6) "
    "ORDER BY o.id DESC LIMIT ?7";

static void found_release(void *elem)
{
	struct db_found *o = elem;

	free(o->title);
	free(o->detail);
	free(o->test);
	free(o->suggestion);
	free(o->scenario_name);
	free(o->interviewer_model);
	free(o->interviewer_backend);
	free(o->candidate_model);
	free(o->candidate_backend);
	free(o->batch_id);
}

void db_found_free(struct db_found *v, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		found_release(&v[i]);
	free(v);
}

static int word_char(unsigned char c)
{
	/* bytes of UTF-8 sequences count as letters, as FTS5's unicode61 reads them */
	return isalnum(c) || c == '_' || c >= 0x80;
}

char *db_search_query(const char *q)
{
	struct strbuf sb;
	const char *p = q;

	strbuf_init(&sb, strlen(q) + 16);
	while (*p) {
		const char *w;

		while (*p && !word_char((unsigned char)*p))
			p++;
		w = p;
		while (*p && word_char((unsigned char)*p))
			p++;
		if (p == w)
			break;
		if (sb.len)
			strbuf_addch(&sb, ' ');
		/* a word holds no '"', so quoting it cannot be broken out of */
		strbuf_addch(&sb, '"');
		strbuf_add(&sb, w, (size_t)(p - w));
		strbuf_addch(&sb, '"');
		if (*p == '*')
			strbuf_addch(&sb, '*');
	}
	if (!sb.len) {
		strbuf_release(&sb);
		return NULL;
	}
	return strbuf_detach(&sb, NULL);
}

static void read_found(sqlite3_stmt *st, void *elem)
{
	struct db_found *o = elem;

	o->id = sqlite3_column_int64(st, 0);
	o->ord = sqlite3_column_int(st, 1);
	o->turn = sqlite3_column_int(st, 2);
	o->title = db_col_text(st, 3);
	o->detail = db_col_text(st, 4);
	o->test = db_col_text(st, 5);
	o->suggestion = db_col_text(st, 6);
	o->extracted_at = db_col_int(st, 7);
	db_col_copy(st, 8, o->job_id, sizeof(o->job_id));
	db_col_copy(st, 9, o->job_status, sizeof(o->job_status));
	o->scenario_name = db_col_text(st, 10);
	o->interviewer_model = db_col_text(st, 11);
	o->interviewer_backend = db_col_text(st, 12);
	o->candidate_model = db_col_text(st, 13);
	o->candidate_backend = db_col_text(st, 14);
	o->batch_id = db_col_text(st, 15);
	db_col_copy(st, 16, o->method, sizeof(o->method));
}

int db_search_optimizations(struct db *db, const struct db_search_filter *f, struct db_found **out,
			    size_t *n, struct perr *e)
{
	sqlite3_stmt *st = db_stmt(db, sql_search, e);

	*out = NULL;
	*n = 0;
	if (!st)
		return -1;
	db_bind_text(st, 1, f->scenario);
	db_bind_text(st, 2, f->model);
	db_bind_text(st, 3, f->batch);
	db_bind_text(st, 4, f->job);
	db_bind_text(st, 5, f->match);
	sqlite3_bind_int64(st, 6, f->before_id);
	sqlite3_bind_int(st, 7, f->limit > 0 ? f->limit : 50);
	return db_rows(db, st, sizeof(**out), read_found, found_release, (void **)out, n, e,
		       "search optimizations");
}
