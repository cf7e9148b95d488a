/*
 * optimizations.c - GET /v1/optimizations: every optimization found, newest
 * first, with its test and the job and turn it came from; filters scenario,
 * model, batch, job, and q (words of the title and detail, SQLite FTS5).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "api/validate.h"
#include "api/views.h"
#include "db/search.h"
#include "server/record.h"

static json_t *str_or_null(const char *s)
{
	return s ? json_string(s) : json_null();
}

static json_t *found_json(const struct db_found *f)
{
	json_t *o = json_object(), *job;

	json_object_set_new(o, "id", json_integer(f->id));
	json_object_set_new(o, "title", json_string(f->title ? f->title : ""));
	json_object_set_new(o, "detail", str_or_null(f->detail));
	json_object_set_new(o, "test", str_or_null(f->test));
	json_object_set_new(o, "suggestion", json_string(f->suggestion ? f->suggestion : ""));
	json_object_set_new(o, "turn", json_integer(f->turn));
	json_object_set_new(o, "ord", json_integer(f->ord));
	json_object_set_new(o, "extracted_at", record_time(f->extracted_at));
	json_object_set_new(o, "method", f->method[0] ? json_string(f->method) : json_null());
	job = json_pack("{s:s, s:s, s:s, s:{s:s, s:s}, s:{s:s, s:s}, s:o}", "id", f->job_id,
			"status", f->job_status, "scenario", f->scenario_name, "interviewer",
			"model", f->interviewer_model, "backend", f->interviewer_backend,
			"candidate", "model", f->candidate_model, "backend", f->candidate_backend,
			"batch", str_or_null(f->batch_id));
	json_object_set_new(o, "job", job);
	json_object_set_new(o, "links", view_found_links(f->job_id));
	return o;
}

void api_optimizations_list(struct api_req *q, struct api_resp *r)
{
	struct db_search_filter f;
	struct db_found *v = NULL;
	struct perr e = {0};
	const char *s;
	char *match = NULL;
	int limit;
	json_t *items;
	size_t n = 0, i;

	memset(&f, 0, sizeof(f));
	f.scenario = api_query(q, "scenario");
	f.model = api_query(q, "model");
	f.batch = api_query(q, "batch");
	f.job = api_query(q, "job");
	if ((s = api_query(q, "q"))) {
		if (strlen(s) > 500)
			return api_invalid(r, "q", "longer than 500 characters");
		if (!(match = db_search_query(s)))
			return api_invalid(r, "q", "holds no word to search for");
		f.match = match;
	}
	if (api_list_params(q, r, &limit, &f.before_id) < 0) {
		free(match);
		return;
	}
	f.limit = limit + 1; /* one more tells whether there is a next page */
	if (db_search_optimizations(q->db, &f, &v, &n, &e) < 0) {
		free(match);
		return api_perr(r, &e);
	}
	free(match);
	items = json_array();
	for (i = 0; i < n && i < (size_t)limit; i++)
		json_array_append_new(items, found_json(&v[i]));
	api_list_page(q, r, items, n > (size_t)limit, n > (size_t)limit ? v[limit - 1].id : 0);
	db_found_free(v, n);
}
