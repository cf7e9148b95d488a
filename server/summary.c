/*
 * summary.c - a batch's summary and the comparison of two. See summary.h.
 *
 * DESIGN: one pass puts every job in its place (candidate, scenario, run)
 * and parses its metrics once; accumulators then add up what each group
 * (the batch, a candidate, a scenario, a candidate x scenario cell) needs.
 * Sums run in the batch's job order, so a mean here is the same double the
 * origin's Python got for the same numbers (8.666666666666666 for 9, 8, 9).
 */
#include "server/summary.h"
#include "server/record.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/record.h"

/* One conversation of the batch. */
struct run {
	const struct db_job *job;
	json_t *metrics; /* owned; the job's metrics object, or NULL */
	int cand, scen;	 /* indexes into the batch's candidates and scenarios; -1 if neither */
	int run;	 /* 1-based among the runs of its (candidate, scenario) */
	int state;	 /* enum db_job_state */
};

/* What a group of conversations adds up to. */
struct acc {
	size_t n, by_state[DB_NSTATES];
	long optims;
	double iq_sum, ce_sum;
	size_t iq_n, ce_n;
	size_t judged, judge_failed;
	double jiq_sum, jce_sum;
};

/* Timings of the turns a model spoke. */
struct lat {
	double *wall, *ttft;
	size_t nwall, nttft;
	double tokens, gen_ms, tps_sum;
	size_t ntps;
};

struct batch_ctx {
	const struct db_batch *b;
	json_t *cands; /* owned: the candidates array */
	json_t *scens; /* owned: the scenario snapshots array */
	char **labels; /* per candidate: model, or model@backend when the model repeats */
	size_t ncand, nscen;
	struct run *runs;
	size_t nruns;
};

/* ---- statistics ---- */

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

double summary_median(double *v, size_t n)
{
	qsort(v, n, sizeof(*v), cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2.0;
}

double summary_p90(double *v, size_t n)
{
	size_t rank = (size_t)ceil(0.9 * (double)n); /* nearest rank, 1-based */

	qsort(v, n, sizeof(*v), cmp_double);
	return v[rank > 0 ? rank - 1 : 0];
}

double summary_stdev(const double *v, size_t n)
{
	double mean = 0, ss = 0;
	size_t i;

	for (i = 0; i < n; i++)
		mean += v[i];
	mean /= (double)n;
	for (i = 0; i < n; i++)
		ss += (v[i] - mean) * (v[i] - mean);
	return sqrt(ss / (double)(n - 1));
}

static json_t *mean_or_null(double sum, size_t n)
{
	return n ? json_real(sum / (double)n) : json_null();
}

/* ---- accumulators ---- */

static int state_of(const char *status)
{
	int i;

	for (i = 0; i < DB_NSTATES; i++)
		if (!strcmp(status, db_job_state_names[i]))
			return i;
	return DB_QUEUED;
}

static void acc_add(struct acc *a, const struct run *r)
{
	json_t *m = r->metrics, *v, *judge; /* borrowed */

	a->n++;
	a->by_state[r->state]++;
	if (r->state != DB_SUCCEEDED)
		return;
	a->optims += (long)json_integer_value(json_object_get(m, "optimizations_found"));
	if (json_is_number(v = json_object_get(m, "interview_quality"))) {
		a->iq_sum += json_number_value(v);
		a->iq_n++;
	}
	if (json_is_number(v = json_object_get(m, "candidate_engagement"))) {
		a->ce_sum += json_number_value(v);
		a->ce_n++;
	}
	judge = json_object_get(m, "judge");
	if (!json_is_object(judge))
		return;
	if (json_object_get(judge, "error") ||
	    !json_is_number(json_object_get(judge, "interview_quality"))) {
		a->judge_failed++;
		return;
	}
	a->judged++;
	a->jiq_sum += json_number_value(json_object_get(judge, "interview_quality"));
	a->jce_sum += json_number_value(json_object_get(judge, "candidate_engagement"));
}

static json_t *success_rate(const struct acc *a)
{
	size_t ok = a->by_state[DB_SUCCEEDED], bad = a->by_state[DB_FAILED];

	return ok + bad ? json_real((double)ok / (double)(ok + bad)) : json_null();
}

/* The judge's grades of a group: {graded, failed, average_...}; NULL when no judge ran. */
static json_t *acc_judge(const struct acc *a)
{
	if (!a->judged && !a->judge_failed)
		return NULL;
	return json_pack("{s:I, s:I, s:o, s:o}", "graded", (json_int_t)a->judged, "failed",
			 (json_int_t)a->judge_failed, "average_interview_quality",
			 mean_or_null(a->jiq_sum, a->judged), "average_candidate_engagement",
			 mean_or_null(a->jce_sum, a->judged));
}

/* The origin's per-model keys (conversations, total_optimizations, avg_quality,
 * avg_engagement) and parley's (succeeded, failed, cancelled, success_rate). */
static void acc_group_json(const struct acc *a, json_t *o)
{
	json_t *j;

	json_object_set_new(o, "conversations", json_integer((json_int_t)a->n));
	json_object_set_new(o, "succeeded", json_integer((json_int_t)a->by_state[DB_SUCCEEDED]));
	json_object_set_new(o, "failed", json_integer((json_int_t)a->by_state[DB_FAILED]));
	json_object_set_new(o, "cancelled", json_integer((json_int_t)a->by_state[DB_CANCELLED]));
	json_object_set_new(o, "total_optimizations", json_integer(a->optims));
	json_object_set_new(o, "avg_quality", mean_or_null(a->iq_sum, a->iq_n));
	json_object_set_new(o, "avg_engagement", mean_or_null(a->ce_sum, a->ce_n));
	json_object_set_new(o, "success_rate", success_rate(a));
	if ((j = acc_judge(a)))
		json_object_set_new(o, "judge", j);
}

/* ---- latency ---- */

static void lat_add(struct lat *l, const struct db_turn_stat *t)
{
	l->wall = xrealloc(l->wall, (l->nwall + 1) * sizeof(*l->wall));
	l->wall[l->nwall++] = t->wall_ms / 1000.0;
	if (t->ttft_ms >= 0) {
		l->ttft = xrealloc(l->ttft, (l->nttft + 1) * sizeof(*l->ttft));
		l->ttft[l->nttft++] = t->ttft_ms;
	}
	if (t->completion_tokens >= 0 && t->gen_ms > 0) {
		l->tokens += (double)t->completion_tokens;
		l->gen_ms += t->gen_ms;
	}
	if (t->tokens_per_s >= 0) {
		l->tps_sum += t->tokens_per_s;
		l->ntps++;
	}
}

static void lat_release(struct lat *l)
{
	free(l->wall);
	free(l->ttft);
	memset(l, 0, sizeof(*l));
}

/* {turns, median_turn_s, p90_turn_s, median_ttft_ms, p90_ttft_ms, tokens_per_s}. */
static json_t *lat_json(struct lat *l)
{
	json_t *o = json_object();
	json_t *tps;

	json_object_set_new(o, "turns", json_integer((json_int_t)l->nwall));
	json_object_set_new(o, "median_turn_s",
			    l->nwall ? json_real(summary_median(l->wall, l->nwall)) : json_null());
	json_object_set_new(o, "p90_turn_s",
			    l->nwall ? json_real(summary_p90(l->wall, l->nwall)) : json_null());
	json_object_set_new(o, "median_ttft_ms",
			    l->nttft ? json_real(summary_median(l->ttft, l->nttft)) : json_null());
	json_object_set_new(o, "p90_ttft_ms",
			    l->nttft ? json_real(summary_p90(l->ttft, l->nttft)) : json_null());
	/* all tokens over all generation time; a backend that gives only a rate: its mean */
	if (l->gen_ms > 0)
		tps = json_real(l->tokens / (l->gen_ms / 1000.0));
	else if (l->ntps)
		tps = json_real(l->tps_sum / (double)l->ntps);
	else
		tps = json_null();
	json_object_set_new(o, "tokens_per_s", tps);
	return o;
}

/* ---- putting jobs in their places ---- */

static int find_candidate(const struct batch_ctx *c, const struct db_job *j)
{
	size_t i;

	for (i = 0; i < c->ncand; i++) {
		json_t *x = json_array_get(c->cands, i); /* borrowed */
		const char *m = json_string_value(json_object_get(x, "model"));
		const char *be = json_string_value(json_object_get(x, "backend"));

		if (m && be && !strcmp(m, j->candidate_model) && !strcmp(be, j->candidate_backend))
			return (int)i;
	}
	return -1;
}

static int find_scenario(const struct batch_ctx *c, const char *name)
{
	size_t i;

	for (i = 0; i < c->nscen; i++) {
		const char *s = json_string_value(
		    json_object_get(json_array_get(c->scens, i), "name")); /* borrowed */

		if (s && !strcmp(s, name))
			return (int)i;
	}
	return -1;
}

static void ctx_init(struct batch_ctx *c, const struct db_batch *b, const struct db_job *jobs,
		     size_t njobs)
{
	size_t i, k;

	memset(c, 0, sizeof(*c));
	c->b = b;
	c->cands = record_json(b->candidates, json_array());
	c->scens = record_json(b->scenarios, json_array());
	c->ncand = json_array_size(c->cands);
	c->nscen = json_array_size(c->scens);
	c->labels = xcalloc(c->ncand ? c->ncand : 1, sizeof(*c->labels));
	for (i = 0; i < c->ncand; i++) {
		json_t *x = json_array_get(c->cands, i);
		const char *m = json_string_value(json_object_get(x, "model"));
		int twice = 0;

		for (k = 0; k < c->ncand; k++)
			if (k != i && !strcmp(m, json_string_value(json_object_get(
						     json_array_get(c->cands, k), "model"))))
				twice = 1;
		if (twice) {
			struct strbuf sb;
			strbuf_init(&sb, 64);
			strbuf_addf(&sb, "%s@%s", m,
				    json_string_value(json_object_get(x, "backend")));
			c->labels[i] = strbuf_detach(&sb, NULL);
		} else {
			c->labels[i] = xstrdup(m);
		}
	}
	c->nruns = njobs;
	c->runs = xcalloc(njobs ? njobs : 1, sizeof(*c->runs));
	for (i = 0; i < njobs; i++) {
		struct run *r = &c->runs[i];
		r->job = &jobs[i];
		r->metrics = record_json(jobs[i].metrics, NULL);
		if (r->metrics && !json_is_object(r->metrics)) {
			json_decref(r->metrics);
			r->metrics = NULL;
		}
		r->cand = find_candidate(c, &jobs[i]);
		r->scen = find_scenario(c, jobs[i].scenario_name);
		r->state = state_of(jobs[i].status);
		r->run = 1;
		for (k = 0; k < i; k++)
			if (c->runs[k].cand == r->cand && c->runs[k].scen == r->scen)
				r->run++;
	}
}

static void ctx_release(struct batch_ctx *c)
{
	size_t i;

	for (i = 0; i < c->nruns; i++)
		json_decref(c->runs[i].metrics);
	for (i = 0; i < c->ncand; i++)
		free(c->labels[i]);
	free(c->labels);
	free(c->runs);
	json_decref(c->cands);
	json_decref(c->scens);
}

static const struct run *run_of_job(const struct batch_ctx *c, const char *job_id, size_t *hint)
{
	size_t i;

	/* turns come in job order, so the next job is almost always where the last one was */
	for (i = 0; i < c->nruns; i++) {
		size_t k = (*hint + i) % c->nruns;
		if (!strcmp(c->runs[k].job->id, job_id)) {
			*hint = k;
			return &c->runs[k];
		}
	}
	return NULL;
}

/* ---- the resource ---- */

json_t *summary_batch_brief(const struct db_batch *b)
{
	json_t *o = json_object(), *counts = json_object(), *scens, *names = json_array(), *s;
	json_int_t total = 0;
	size_t i;
	int k;

	json_object_set_new(o, "id", json_string(b->id));
	json_object_set_new(o, "status", json_string(db_batch_status(b)));
	for (k = 0; k < DB_NSTATES; k++) {
		json_object_set_new(counts, db_job_state_names[k], json_integer(b->counts[k]));
		total += b->counts[k];
	}
	json_object_set_new(o, "counts", counts);
	json_object_set_new(o, "jobs", json_integer(total));
	json_object_set_new(o, "interviewer",
			    json_pack("{s:s, s:s}", "model", b->interviewer_model, "backend",
				      b->interviewer_backend));
	json_object_set_new(o, "candidates", record_json(b->candidates, json_array()));
	scens = record_json(b->scenarios, json_array());
	json_array_foreach(scens, i, s)
	{
		json_array_append(names, json_object_get(s, "name"));
	}
	json_decref(scens);
	json_object_set_new(o, "scenario_names", names);
	json_object_set_new(o, "repeat", json_integer(b->repeat));
	json_object_set_new(o, "max_turns", json_integer(b->max_turns));
	json_object_set_new(o, "options", record_json(b->options, json_object()));
	json_object_set_new(o, "scoring", json_string(b->scoring));
	json_object_set_new(o, "extraction", json_string(b->extraction));
	json_object_set_new(o, "judge", record_json(b->judge, json_null()));
	json_object_set_new(o, "labels", record_json(b->labels, json_object()));
	json_object_set_new(o, "created_at", record_time(b->created_at));
	json_object_set_new(o, "finished_at", record_time(b->finished_at));
	json_object_set_new(o, "cancelled_at", record_time(b->cancelled_at));
	return o;
}

static json_t *or_null(json_t *v)
{
	return v ? json_incref(v) : json_null();
}

/* One conversations[] item: the origin's fields and parley's. */
static json_t *conversation_json(const struct batch_ctx *c, const struct run *r)
{
	const struct db_job *j = r->job;
	json_t *o = json_object(), *sm = json_object(), *m = r->metrics;

	json_object_set_new(o, "candidate_model", json_string(j->candidate_model));
	json_object_set_new(o, "candidate_backend", json_string(j->candidate_backend));
	json_object_set_new(o, "candidate",
			    json_string(r->cand >= 0 ? c->labels[r->cand] : j->candidate_model));
	json_object_set_new(o, "scenario_name", json_string(j->scenario_name));
	json_object_set_new(o, "run", json_integer(r->run));
	json_object_set_new(o, "job_id", json_string(j->id));
	json_object_set_new(sm, "total_duration", or_null(json_object_get(m, "total_duration")));
	json_object_set_new(sm, "turns_completed", json_integer(j->turns_completed));
	json_object_set_new(sm, "optimizations_found",
			    or_null(json_object_get(m, "optimizations_found")));
	json_object_set_new(sm, "interview_quality",
			    or_null(json_object_get(m, "interview_quality")));
	json_object_set_new(sm, "candidate_engagement",
			    or_null(json_object_get(m, "candidate_engagement")));
	json_object_set_new(o, "success_metrics", sm);
	json_object_set_new(o, "optimizations_found",
			    r->state == DB_SUCCEEDED
				? or_null(json_object_get(m, "optimizations_found"))
				: json_null());
	json_object_set_new(o, "status", json_string(j->status));
	json_object_set_new(o, "error", record_error(j));
	if (json_object_get(m, "judge"))
		json_object_set_new(o, "judge", or_null(json_object_get(m, "judge")));
	return o;
}

/* {runs, mean, min, max, stdev} of v; stdev null under two runs. */
static json_t *spread_json(const double *v, size_t n)
{
	double sum = 0, lo = 0, hi = 0;
	size_t i;

	if (!n)
		return json_pack("{s:i, s:n, s:n, s:n, s:n}", "runs", 0, "mean", "min", "max",
				 "stdev");
	for (i = 0; i < n; i++) {
		sum += v[i];
		if (!i || v[i] < lo)
			lo = v[i];
		if (!i || v[i] > hi)
			hi = v[i];
	}
	return json_pack("{s:I, s:f, s:f, s:f, s:o}", "runs", (json_int_t)n, "mean",
			 sum / (double)n, "min", lo, "max", hi, "stdev",
			 n > 1 ? json_real(summary_stdev(v, n)) : json_null());
}

/* Spread of each score over the runs of every candidate x scenario cell. */
static json_t *spread_cells(const struct batch_ctx *c)
{
	static const char *const keys[] = {"optimizations_found", "interview_quality",
					   "candidate_engagement"};
	json_t *cells = json_array();
	double *v = xcalloc(c->nruns ? c->nruns : 1, sizeof(*v));
	size_t ci, si, k, i, n;

	for (ci = 0; ci < c->ncand; ci++) {
		for (si = 0; si < c->nscen; si++) {
			json_t *cell = json_object();
			size_t planned = 0;

			json_object_set_new(cell, "candidate", json_string(c->labels[ci]));
			json_object_set_new(
			    cell, "scenario",
			    json_incref(json_object_get(json_array_get(c->scens, si), "name")));
			for (i = 0; i < c->nruns; i++)
				if (c->runs[i].cand == (int)ci && c->runs[i].scen == (int)si)
					planned++;
			json_object_set_new(cell, "runs", json_integer((json_int_t)planned));
			for (k = 0; k < ARRAY_SIZE(keys); k++) {
				for (i = n = 0; i < c->nruns; i++) {
					const struct run *r = &c->runs[i];
					json_t *x = json_object_get(r->metrics, keys[k]);
					if (r->cand == (int)ci && r->scen == (int)si &&
					    r->state == DB_SUCCEEDED && json_is_number(x))
						v[n++] = json_number_value(x);
				}
				json_object_set_new(cell, keys[k], spread_json(v, n));
			}
			json_array_append_new(cells, cell);
		}
	}
	free(v);
	return cells;
}

/* Whether candidate x ranks before candidate y. */
static int ranks_before(const struct acc *a, size_t x, size_t y)
{
	const struct acc *p = &a[x], *q = &a[y];
	double qp = p->iq_n ? p->iq_sum / (double)p->iq_n : -1;
	double qq = q->iq_n ? q->iq_sum / (double)q->iq_n : -1;

	if (p->optims != q->optims)
		return p->optims > q->optims;
	if (fabs(qp - qq) > 1e-9)
		return qp > qq;
	return x < y;
}

json_t *summary_batch(const struct db_batch *b, const struct db_job *jobs, size_t njobs,
		      const struct db_turn_stat *turns, size_t nturns)
{
	struct batch_ctx c;
	struct acc all = {0}, *by_cand, *by_scen;
	struct lat *cand_lat, iv_lat = {0};
	json_t *o = summary_batch_brief(b), *conv = json_array(), *ids = json_array();
	json_t *sm = json_object(), *mp = json_object(), *sp = json_object(), *ranking, *j;
	json_t *scens = json_array(), *cand_models = json_array(), *s;
	size_t i, k, hint = 0, *order;

	ctx_init(&c, b, jobs, njobs);
	by_cand = xcalloc(c.ncand + 1, sizeof(*by_cand));
	by_scen = xcalloc(c.nscen + 1, sizeof(*by_scen));
	cand_lat = xcalloc(c.ncand + 1, sizeof(*cand_lat));
	for (i = 0; i < c.nruns; i++) {
		const struct run *r = &c.runs[i];
		acc_add(&all, r);
		if (r->cand >= 0)
			acc_add(&by_cand[r->cand], r);
		if (r->scen >= 0)
			acc_add(&by_scen[r->scen], r);
		json_array_append_new(conv, conversation_json(&c, r));
		json_array_append_new(ids, json_string(r->job->id));
	}
	for (i = 0; i < nturns; i++) {
		const struct run *r = run_of_job(&c, turns[i].job_id, &hint);
		if (!r)
			continue;
		if (!strcmp(turns[i].role, "interviewer"))
			lat_add(&iv_lat, &turns[i]);
		else if (r->cand >= 0)
			lat_add(&cand_lat[r->cand], &turns[i]);
	}

	/* the origin's top-level keys; a batch is what the origin ran as its phase 2 */
	json_object_set_new(o, "phase", json_integer(2));
	json_object_set_new(o, "job_ids", ids);
	json_object_set_new(o, "timestamp", record_time(b->created_at));
	json_object_set_new(o, "interviewer_model", json_string(b->interviewer_model));
	for (i = 0; i < c.ncand; i++)
		json_array_append_new(cand_models, json_string(c.labels[i]));
	json_object_set_new(o, "candidate_models", cand_models);
	json_array_foreach(c.scens, i, s)
	{
		json_t *x = json_deep_copy(s);
		/* the origin calls the goal "description" */
		if (json_object_get(x, "goal"))
			json_object_set(x, "description", json_object_get(x, "goal"));
		json_array_append_new(scens, x);
	}
	json_object_set_new(o, "scenarios", scens);
	json_object_set_new(o, "conversations", conv);

	/* summary_metrics */
	json_object_set_new(sm, "total_conversations", json_integer((json_int_t)all.n));
	json_object_set_new(
	    sm, "conversations_ended",
	    json_integer((json_int_t)(all.by_state[DB_SUCCEEDED] + all.by_state[DB_FAILED] +
				      all.by_state[DB_CANCELLED])));
	json_object_set_new(sm, "succeeded", json_integer((json_int_t)all.by_state[DB_SUCCEEDED]));
	json_object_set_new(sm, "failed", json_integer((json_int_t)all.by_state[DB_FAILED]));
	json_object_set_new(sm, "cancelled", json_integer((json_int_t)all.by_state[DB_CANCELLED]));
	json_object_set_new(sm, "total_optimizations_discovered", json_integer(all.optims));
	json_object_set_new(sm, "average_interview_quality", mean_or_null(all.iq_sum, all.iq_n));
	json_object_set_new(sm, "average_candidate_engagement", mean_or_null(all.ce_sum, all.ce_n));
	json_object_set_new(sm, "success_rate", success_rate(&all));

	/* rankings: a stable insertion sort; there are at most a few dozen candidates */
	order = xcalloc(c.ncand + 1, sizeof(*order));
	for (i = 0; i < c.ncand; i++) {
		size_t x = i;
		for (k = i; k > 0 && ranks_before(by_cand, x, order[k - 1]); k--)
			order[k] = order[k - 1];
		order[k] = x;
	}
	ranking = json_array();
	for (i = 0; i < c.ncand; i++) {
		size_t ci = order[i];
		json_t *x = json_array_get(c.cands, ci); /* borrowed */
		json_t *row = json_pack("{s:I, s:s, s:s?, s:O?}", "rank", (json_int_t)(i + 1),
					"model", c.labels[ci], "candidate_model",
					json_string_value(json_object_get(x, "model")), "backend",
					json_object_get(x, "backend"));
		acc_group_json(&by_cand[ci], row);
		json_array_append_new(ranking, row);
	}
	for (i = 0; i < c.ncand; i++) {
		json_t *x = json_array_get(c.cands, i), *perf = json_object();
		json_object_set_new(perf, "model", json_incref(json_object_get(x, "model")));
		json_object_set_new(perf, "backend", json_incref(json_object_get(x, "backend")));
		acc_group_json(&by_cand[i], perf);
		for (k = 0; k < c.ncand; k++)
			if (order[k] == i)
				json_object_set_new(perf, "rank", json_integer((json_int_t)k + 1));
		json_object_set_new(perf, "latency", lat_json(&cand_lat[i]));
		json_object_set_new(mp, c.labels[i], perf);
	}
	json_object_set_new(sm, "model_performance", mp);
	for (i = 0; i < c.nscen; i++) {
		json_t *x = json_array_get(c.scens, i), *perf = json_object();
		json_object_set_new(perf, "problem", json_incref(json_object_get(x, "problem")));
		acc_group_json(&by_scen[i], perf);
		json_object_set_new(sp, json_string_value(json_object_get(x, "name")), perf);
	}
	json_object_set_new(sm, "scenario_performance", sp);
	json_object_set_new(sm, "interviewer",
			    json_pack("{s:s, s:s, s:o}", "model", b->interviewer_model, "backend",
				      b->interviewer_backend, "latency", lat_json(&iv_lat)));
	if ((j = acc_judge(&all)))
		json_object_set_new(sm, "judge", j);
	if (b->repeat > 1)
		json_object_set_new(sm, "spread", spread_cells(&c));
	json_object_set_new(o, "summary_metrics", sm);
	json_object_set_new(o, "rankings", ranking);
	json_object_set_new(o, "ranking_rule", json_string(SUMMARY_RANKING_RULE));

	for (i = 0; i < c.ncand; i++)
		lat_release(&cand_lat[i]);
	lat_release(&iv_lat);
	free(cand_lat);
	free(by_cand);
	free(by_scen);
	free(order);
	ctx_release(&c);
	return o;
}

/* ---- comparison ---- */

/* {a, b, delta}: delta = b - a, null unless both are numbers. */
static json_t *side_by_side(const json_t *va, const json_t *vb)
{
	json_t *d;

	if (json_is_number(va) && json_is_number(vb)) {
		if (json_is_integer(va) && json_is_integer(vb))
			d = json_integer(json_integer_value(vb) - json_integer_value(va));
		else
			d = json_real(json_number_value(vb) - json_number_value(va));
	} else {
		d = json_null();
	}
	return json_pack("{s:O?, s:O?, s:o}", "a", va, "b", vb, "delta", d);
}

static void add_side(json_t *o, const char *key, const json_t *a, const json_t *b)
{
	json_object_set_new(o, key, side_by_side(json_object_get(a, key), json_object_get(b, key)));
}

static json_t *batch_ref(const json_t *v)
{
	return json_pack(
	    "{s:O?, s:O?, s:O?, s:O?, s:O?, s:O?}", "id", json_object_get(v, "id"), "status",
	    json_object_get(v, "status"), "interviewer", json_object_get(v, "interviewer"),
	    "created_at", json_object_get(v, "created_at"), "finished_at",
	    json_object_get(v, "finished_at"), "scoring", json_object_get(v, "scoring"));
}

/* Mean of a success_metrics key over the succeeded runs of (candidate, scenario). */
static json_t *pair_mean(const json_t *convs, const char *cand, const char *scen, const char *key)
{
	json_t *c, *v;
	double sum = 0;
	size_t i, n = 0;

	json_array_foreach(convs, i, c)
	{
		if (strcmp(json_string_value(json_object_get(c, "candidate")), cand) ||
		    strcmp(json_string_value(json_object_get(c, "scenario_name")), scen) ||
		    strcmp(json_string_value(json_object_get(c, "status")), "succeeded"))
			continue;
		v = json_object_get(json_object_get(c, "success_metrics"), key);
		if (json_is_number(v)) {
			sum += json_number_value(v);
			n++;
		}
	}
	return mean_or_null(sum, n);
}

/* Keys of obj a that obj b has too (into both), and those it lacks (into only). */
static void split_keys(json_t *a, const json_t *b, json_t *both, json_t *only)
{
	const char *k;
	json_t *v;

	json_object_foreach(a, k, v)
	{
		json_array_append_new(json_object_get(b, k) ? both : only, json_string(k));
	}
}

json_t *summary_compare(const json_t *a, const json_t *b)
{
	static const char *const overall[] = {
	    "total_conversations", "total_optimizations_discovered", "average_interview_quality",
	    "average_candidate_engagement", "success_rate"};
	static const char *const perf[] = {"conversations",  "total_optimizations", "avg_quality",
					   "avg_engagement", "success_rate",	    "rank"};
	static const char *const lat[] = {"median_turn_s", "p90_turn_s", "median_ttft_ms",
					  "tokens_per_s"};
	static const char *const pair[] = {"optimizations_found", "interview_quality",
					   "candidate_engagement", "total_duration"};
	json_t *sa = json_object_get(a, "summary_metrics"); /* all borrowed */
	json_t *sb = json_object_get(b, "summary_metrics");
	json_t *ma = json_object_get(sa, "model_performance");
	json_t *mb = json_object_get(sb, "model_performance");
	json_t *pa = json_object_get(sa, "scenario_performance");
	json_t *pb = json_object_get(sb, "scenario_performance");
	json_t *la, *lb;
	json_t *o = json_object(), *ov = json_object(), *models = json_array();
	json_t *scens = json_array(), *pairs = json_array();
	json_t *mboth = json_array(), *monly_a = json_array(), *monly_b = json_array();
	json_t *sboth = json_array(), *sonly_a = json_array(), *sonly_b = json_array();
	json_t *m, *s, *ignore = json_array();
	size_t i, k, x;

	json_object_set_new(o, "a", batch_ref(a));
	json_object_set_new(o, "b", batch_ref(b));
	for (k = 0; k < ARRAY_SIZE(overall); k++)
		add_side(ov, overall[k], sa, sb);
	la = json_object_get(json_object_get(sa, "interviewer"), "latency");
	lb = json_object_get(json_object_get(sb, "interviewer"), "latency");
	for (k = 0; k < ARRAY_SIZE(lat); k++) {
		char key[64];
		snprintf(key, sizeof(key), "interviewer_%s", lat[k]);
		json_object_set_new(
		    ov, key,
		    side_by_side(json_object_get(la, lat[k]), json_object_get(lb, lat[k])));
	}
	json_object_set_new(o, "overall", ov);

	split_keys(ma, mb, mboth, monly_a);
	split_keys(mb, ma, ignore, monly_b);
	split_keys(pa, pb, sboth, sonly_a);
	split_keys(pb, pa, ignore, sonly_b);
	json_array_foreach(mboth, i, m)
	{
		const char *name = json_string_value(m);
		const json_t *xa = json_object_get(ma, name), *xb = json_object_get(mb, name);
		json_t *row = json_pack("{s:s}", "model", name);

		for (k = 0; k < ARRAY_SIZE(perf); k++)
			add_side(row, perf[k], xa, xb);
		for (k = 0; k < ARRAY_SIZE(lat); k++)
			add_side(row, lat[k], json_object_get(xa, "latency"),
				 json_object_get(xb, "latency"));
		json_array_append_new(models, row);
	}
	json_array_foreach(sboth, i, s)
	{
		const char *name = json_string_value(s);
		const json_t *xa = json_object_get(pa, name), *xb = json_object_get(pb, name);
		json_t *row = json_pack("{s:s}", "scenario", name);

		for (k = 0; k < ARRAY_SIZE(perf) - 1; k++) /* a scenario has no rank */
			add_side(row, perf[k], xa, xb);
		json_array_append_new(scens, row);
	}
	json_array_foreach(mboth, i, m)
	{
		json_array_foreach(sboth, x, s)
		{
			const json_t *ca = json_object_get(a, "conversations");
			const json_t *cb = json_object_get(b, "conversations");
			json_t *row = json_pack("{s:O, s:O}", "model", m, "scenario", s);

			for (k = 0; k < ARRAY_SIZE(pair); k++) {
				json_t *va = pair_mean(ca, json_string_value(m),
						       json_string_value(s), pair[k]);
				json_t *vb = pair_mean(cb, json_string_value(m),
						       json_string_value(s), pair[k]);
				json_object_set_new(row, pair[k], side_by_side(va, vb));
				json_decref(va);
				json_decref(vb);
			}
			json_array_append_new(pairs, row);
		}
	}
	json_object_set_new(o, "models", models);
	json_object_set_new(o, "scenarios", scens);
	json_object_set_new(o, "pairs", pairs);
	json_object_set_new(o, "only_in_a",
			    json_pack("{s:o, s:o}", "models", monly_a, "scenarios", sonly_a));
	json_object_set_new(o, "only_in_b",
			    json_pack("{s:o, s:o}", "models", monly_b, "scenarios", sonly_b));
	json_object_set_new(o, "delta", json_string("b - a"));
	json_decref(mboth);
	json_decref(sboth);
	json_decref(ignore);
	return o;
}
