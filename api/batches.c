/*
 * batches.c - POST/GET /v1/batches, a batch, its report, cancel, and the
 * comparison of two batches.
 *
 * DESIGN: a batch is validated with the same functions as a single job
 * (api/validate.h), expanded into one job per candidate
 * x scenario x repeat in the origin's order (candidates outer, scenarios
 * inner), and stored with all its jobs in one transaction; then the pool is
 * woken and the jobs run like any others, concurrently up to each backend's
 * limit. Reads take one read transaction, so the jobs, their turns and the
 * summary built from them (server/summary.h) agree with each other.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "api/report.h"
#include "api/validate.h"
#include "api/views.h"
#include "db/batch.h"
#include "server/events.h"
#include "server/record.h"
#include "server/summary.h"
#include "server/ending.h"
#include "server/trials.h"

#define MAX_CANDIDATES 32
#define MAX_SCENARIOS 32
#define MAX_REPEAT 20
#define MAX_BATCH_JOBS 500

/* The candidates: an array of {model, backend?}, no two the same. Fills models/backends. */
static void check_candidates(struct api_req *q, json_t *v, char **models, char **backends,
			     size_t *n, json_t *errs)
{
	json_t *c; /* borrowed */
	char field[48];
	size_t i, k;

	*n = 0;
	if (!json_is_array(v) || json_array_size(v) == 0 || json_array_size(v) > MAX_CANDIDATES) {
		api_field_error(errs, "candidates",
				"required: an array of 1 to %d objects {\"model\": ..., "
				"\"backend\": ...}",
				MAX_CANDIDATES);
		return;
	}
	json_array_foreach(v, i, c)
	{
		snprintf(field, sizeof(field), "candidates[%zu]", i);
		models[i] = backends[i] = NULL;
		api_check_party(q, c, field, &models[i], &backends[i], errs);
		for (k = 0; k < i && models[i] && backends[i]; k++)
			if (models[k] && backends[k] && !strcmp(models[k], models[i]) &&
			    !strcmp(backends[k], backends[i]))
				api_field_error(errs, field,
						"model '%.100s' on backend '%.60s' is already "
						"candidates[%zu]",
						models[i], backends[i], k);
	}
	*n = json_array_size(v);
}

/* The scenarios: an array of names or inline objects, no name twice. Fills snaps. */
static void check_scenarios(struct api_req *q, json_t *v, struct db_job *snaps, size_t *n,
			    json_t *errs)
{
	json_t *s; /* borrowed */
	char field[48];
	size_t i, k;

	*n = 0;
	if (!json_is_array(v) || json_array_size(v) == 0 || json_array_size(v) > MAX_SCENARIOS) {
		api_field_error(errs, "scenarios",
				"required: an array of 1 to %d scenario names (GET /v1/scenarios) "
				"or objects {name, problem, context, goal}",
				MAX_SCENARIOS);
		return;
	}
	json_array_foreach(v, i, s)
	{
		snprintf(field, sizeof(field), "scenarios[%zu]", i);
		api_check_scenario(q, s, field, &snaps[i], errs);
		for (k = 0; k < i && snaps[i].scenario_name; k++)
			if (snaps[k].scenario_name &&
			    !strcmp(snaps[k].scenario_name, snaps[i].scenario_name))
				api_field_error(errs, field,
						"scenario '%.64s' is already scenarios[%zu]",
						snaps[i].scenario_name, k);
	}
	*n = json_array_size(v);
}

/* A job of the batch: the template's settings, one candidate, one scenario snapshot. */
static void job_from(struct db_job *out, const struct db_job *tmpl, const char *model,
		     const char *backend, const struct db_job *scen)
{
	memset(out, 0, sizeof(*out));
	out->scenario_name = xstrdup(scen->scenario_name);
	out->scenario = xstrdup(scen->scenario);
	out->interviewer_model = xstrdup(tmpl->interviewer_model);
	out->interviewer_backend = xstrdup(tmpl->interviewer_backend);
	out->candidate_model = xstrdup(model);
	out->candidate_backend = xstrdup(backend);
	out->max_turns = tmpl->max_turns;
	out->options = xstrdup_or_null(tmpl->options);
	out->scoring = xstrdup(tmpl->scoring);
	out->extraction = xstrdup(tmpl->extraction);
	out->labels = xstrdup_or_null(tmpl->labels);
	out->judge = xstrdup_or_null(tmpl->judge);
	out->extractor = xstrdup_or_null(tmpl->extractor);
	out->optimize = xstrdup_or_null(tmpl->optimize);
}

/* "optimize": every job of the batch runs the closed loop, so every scenario needs tasks. */
static void check_optimize(json_t *body, struct db_job *tmpl, const struct db_job *snaps,
			   size_t nscen, json_t *errs)
{
	json_t *v = json_object_get(body, "optimize"), *norm = NULL; /* borrowed, owned */
	char field[48];
	size_t si;
	int bad;

	if (!v || json_is_null(v))
		return;
	bad = trials_optimize_check(v, &norm, errs) < 0;
	for (si = 0; si < nscen; si++) {
		json_t *sc = snaps[si].scenario ? json_loads(snaps[si].scenario, 0, NULL) : NULL;
		snprintf(field, sizeof(field), "scenarios[%zu]", si);
		if (sc)
			bad |= trials_scenario_check(sc, field, tmpl->judge != NULL, errs) < 0;
		json_decref(sc);
	}
	if (!bad) {
		tmpl->optimize = json_dumps(norm, JSON_COMPACT);
		if (!json_object_get(body, "max_turns"))
			tmpl->max_turns = TRIALS_DEFAULT_MAX_TURNS;
	}
	json_decref(norm);
}

/* The batch resource with its summary, read in one transaction. New reference, or NULL. */
static json_t *load_batch(struct api_req *q, const char *id, struct perr *e)
{
	struct db_batch_full f;
	json_t *view;

	if (db_batch_load(q->db, id, &f, e) < 0)
		return NULL;
	view = view_batch(&f);
	/* with optimize: the candidates ranked by what held up on the held-out tasks */
	if (view && f.njobs && f.jobs[0].optimize) {
		json_t *rank = trials_rank(q->db, f.jobs, f.njobs, e);
		if (!rank) {
			json_decref(view);
			view = NULL;
		} else {
			json_object_set_new(view, "optimize",
					    json_loads(f.jobs[0].optimize, 0, NULL));
			json_object_set_new(view, "optimize_rankings", rank);
		}
	}
	db_batch_full_release(&f);
	return view;
}

/*
 * A batch that has ended (finished_at set) no longer changes: its answers are
 * immutable. Its report says when it was generated, so the report's ETag is
 * made from the batch itself rather than from the report's bytes.
 */
static void settle(struct api_resp *r, const json_t *view, int report)
{
	const char *f = json_string_value(json_object_get(view, "finished_at")); /* borrowed */

	r->immutable = f && *f;
	if (r->immutable && report) {
		free(r->etag_of);
		r->etag_of = json_dumps(view, JSON_COMPACT | JSON_SORT_KEYS);
	}
}

void api_batches_post(struct api_req *q, struct api_resp *r)
{
	static const char *const keys[] = {"interviewer", "candidates", "scenarios", "repeat",
					   "max_turns",	  "options",	"scoring",   "extraction",
					   "labels",	  "judge",	"extractor", "optimize",
					   NULL};
	char *models[MAX_CANDIDATES], *backends[MAX_CANDIDATES];
	struct db_job tmpl, snaps[MAX_SCENARIOS], *jobs = NULL;
	struct db_batch b;
	struct perr e = {0};
	json_t *body, *errs, *v, *view; /* owned, owned, borrowed, owned */
	size_t ncand = 0, nscen = 0, njobs = 0, ci, si, k, i;
	int repeat = 1;

	if (!(body = api_parse_body(q, r)))
		return;
	memset(&tmpl, 0, sizeof(tmpl));
	memset(snaps, 0, sizeof(snaps));
	memset(models, 0, sizeof(models));
	memset(backends, 0, sizeof(backends));
	memset(&b, 0, sizeof(b));
	errs = json_array();
	api_reject_unknown(body, keys, "", errs);
	api_check_party(q, json_object_get(body, "interviewer"), "interviewer",
			&tmpl.interviewer_model, &tmpl.interviewer_backend, errs);
	check_candidates(q, json_object_get(body, "candidates"), models, backends, &ncand, errs);
	check_scenarios(q, json_object_get(body, "scenarios"), snaps, &nscen, errs);
	if ((v = json_object_get(body, "repeat"))) {
		if (!json_is_integer(v) || json_integer_value(v) < 1 ||
		    json_integer_value(v) > MAX_REPEAT)
			api_field_error(errs, "repeat", "must be an integer from 1 to %d",
					MAX_REPEAT);
		else
			repeat = (int)json_integer_value(v);
	}
	api_check_job_fields(q, body, &tmpl, errs);
	check_optimize(body, &tmpl, snaps, nscen, errs);
	if (ncand * nscen * (size_t)repeat > MAX_BATCH_JOBS)
		api_field_error(errs, "candidates",
				"%zu candidates x %zu scenarios x %d runs is %zu conversations; a "
				"batch holds at most %d",
				ncand, nscen, repeat, ncand * nscen * (size_t)repeat,
				MAX_BATCH_JOBS);
	if (api_header(q, "Idempotency-Key"))
		api_field_error(errs, "Idempotency-Key",
				"not supported on POST /v1/batches; check GET /v1/batches before "
				"posting again");
	json_decref(body);
	if (json_array_size(errs) > 0) {
		api_invalid_fields(r, errs);
		goto out;
	}
	json_decref(errs);
	errs = NULL;

	/* what the batch keeps: the candidates as resolved and the scenario snapshots */
	{
		json_t *cands = json_array(), *scens = json_array();
		for (ci = 0; ci < ncand; ci++)
			json_array_append_new(cands, json_pack("{s:s, s:s}", "model", models[ci],
							       "backend", backends[ci]));
		for (si = 0; si < nscen; si++)
			json_array_append_new(scens, json_loads(snaps[si].scenario, 0, NULL));
		b.candidates = json_dumps(cands, JSON_COMPACT);
		b.scenarios = json_dumps(scens, JSON_COMPACT);
		json_decref(cands);
		json_decref(scens);
	}
	b.interviewer_model = xstrdup(tmpl.interviewer_model);
	b.interviewer_backend = xstrdup(tmpl.interviewer_backend);
	b.repeat = repeat;
	b.max_turns = tmpl.max_turns;
	b.options = xstrdup_or_null(tmpl.options);
	b.scoring = xstrdup(tmpl.scoring);
	b.extraction = xstrdup(tmpl.extraction);
	b.judge = xstrdup_or_null(tmpl.judge);
	b.extractor = xstrdup_or_null(tmpl.extractor);
	b.labels = xstrdup_or_null(tmpl.labels);

	/* the origin's order: candidates outer, scenarios inner, then the repeats */
	njobs = ncand * nscen * (size_t)repeat;
	jobs = xcalloc(njobs, sizeof(*jobs));
	for (ci = 0, i = 0; ci < ncand; ci++)
		for (si = 0; si < nscen; si++)
			for (k = 0; k < (size_t)repeat; k++)
				job_from(&jobs[i++], &tmpl, models[ci], backends[ci], &snaps[si]);
	if (db_batch_insert(q->db, &b, jobs, njobs, q->deps->cfg->max_queued_jobs, &e) < 0) {
		api_perr(r, &e);
		goto out;
	}
	pool_wake(q->deps->pool);
	if (!(view = load_batch(q, b.id, &e))) {
		api_perr(r, &e);
		goto out;
	}
	{
		struct strbuf loc;
		strbuf_init(&loc, 40);
		strbuf_addf(&loc, "/v1/batches/%s", b.id);
		r->location = strbuf_detach(&loc, NULL);
	}
	api_json(r, 202, view);
out:
	for (ci = 0; ci < MAX_CANDIDATES; ci++) {
		free(models[ci]);
		free(backends[ci]);
	}
	for (si = 0; si < MAX_SCENARIOS; si++)
		db_job_release(&snaps[si]);
	db_jobs_free(jobs, njobs);
	db_job_release(&tmpl);
	db_batch_release(&b);
}

void api_batches_list(struct api_req *q, struct api_resp *r)
{
	struct db_batch *v;
	struct perr e = {0};
	int64_t before;
	int limit;
	json_t *items;
	size_t n, i;

	if (api_list_params(q, r, &limit, &before) < 0)
		return;
	if (db_batch_list(q->db, before, limit + 1, &v, &n, &e) < 0)
		return api_perr(r, &e);
	items = json_array();
	for (i = 0; i < n && i < (size_t)limit; i++)
		json_array_append_new(items, view_batch_brief(&v[i]));
	api_list_page(q, r, items, n > (size_t)limit, n > (size_t)limit ? v[limit - 1].seq : 0);
	db_batches_free(v, n);
}

void api_batches_get(struct api_req *q, struct api_resp *r, const char *id)
{
	struct perr e = {0};
	json_t *view = load_batch(q, id, &e);

	if (!view)
		return api_perr(r, &e);
	if (api_wants_markdown(q)) {
		struct strbuf md;
		strbuf_init(&md, 16384);
		settle(r, view, 1);
		report_batch(view, util_now_us(), &md);
		json_decref(view);
		return api_markdown(r, &md);
	}
	settle(r, view, 0);
	api_json(r, 200, view);
}

void api_batches_report(struct api_req *q, struct api_resp *r, const char *id)
{
	struct perr e = {0};
	json_t *view = load_batch(q, id, &e);
	struct strbuf md;

	if (!view)
		return api_perr(r, &e);
	strbuf_init(&md, 16384);
	settle(r, view, 1);
	report_batch(view, util_now_us(), &md);
	json_decref(view);
	api_markdown(r, &md);
}

void api_batches_cancel(struct api_req *q, struct api_resp *r, const char *id)
{
	struct perr e = {0};
	json_t *view;

	if (ending_cancel_batch(q->db, q->deps->pool, id, &e) < 0)
		return api_perr(r, &e);
	if (!(view = load_batch(q, id, &e)))
		return api_perr(r, &e);
	api_json(r, 202, view);
}

void api_batches_compare(struct api_req *q, struct api_resp *r, const char *a, const char *b)
{
	char bid[DB_BATCH_ID_LEN + 8];
	size_t n = strlen(b);
	int md = api_wants_markdown(q);
	struct perr e = {0};
	json_t *va, *vb, *cmp;

	if (n > 3 && !strcmp(b + n - 3, ".md")) {
		md = 1;
		n -= 3;
	}
	snprintf(bid, sizeof(bid), "%.*s", (int)n, b);
	if (!(va = load_batch(q, a, &e)))
		return api_perr(r, &e);
	if (!(vb = load_batch(q, bid, &e))) {
		json_decref(va);
		return api_perr(r, &e);
	}
	cmp = summary_compare(va, vb);
	json_decref(va);
	json_decref(vb);
	if (md) {
		struct strbuf out;
		strbuf_init(&out, 8192);
		report_compare(cmp, &out);
		json_decref(cmp);
		return api_markdown(r, &out);
	}
	api_json(r, 200, cmp);
}
