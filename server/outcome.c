/*
 * outcome.c - optimizations and metrics of a finished conversation. See outcome.h.
 */
#include "server/outcome.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db/util.h"
#include "server/engine.h"
#include "server/score.h"

void outcome_extract(const char *extraction, int max_turns, const struct db_turn *turns,
		     size_t nturns, struct optim_list *ol)
{
	int analysis = engine_analysis_turn(max_turns, turns, nturns), part = 1;
	enum extract_method em = EXTRACT_RUBRIC;
	size_t i;

	extract_method_parse(extraction, &em);
	for (i = 0; i < nturns; i++)
		if (turns[i].idx == analysis)
			part = extract_optimizations(em, turns[i].text, turns[i].idx, ol);
	/* an analysis without a concrete-suggestions part: the marked items of the interviewer's
	 * earlier turns count too (never the candidate's) */
	for (i = 0; i < nturns && !part && em != EXTRACT_ORIGIN; i++)
		if (turns[i].idx < analysis && !strcmp(turns[i].role, "interviewer"))
			extract_marked(turns[i].text, turns[i].idx, ol);
}

static json_t *totals(const struct db_turn *turns, size_t nturns, const struct optim_list *ol,
		      const struct score_result *sr, enum score_method sm)
{
	json_t *m = json_object();
	double total_ms = 0, ttft_sum = 0;
	long ptok = 0, ctok = 0, cached = 0;
	int have_cached = 0, nttft = 0;
	size_t i;

	for (i = 0; i < nturns; i++) {
		const struct db_turn *t = &turns[i];
		total_ms += t->wall_ms;
		if (t->ttft_ms >= 0) {
			ttft_sum += t->ttft_ms;
			nttft++;
		}
		if (t->prompt_tokens > 0)
			ptok += t->prompt_tokens;
		if (t->completion_tokens > 0)
			ctok += t->completion_tokens;
		if (t->cached_tokens >= 0) {
			cached += t->cached_tokens;
			have_cached = 1;
		}
	}
	json_object_set_new(m, "total_duration", json_real(total_ms / 1000.0));
	json_object_set_new(m, "turns_completed", json_integer((json_int_t)nturns));
	json_object_set_new(m, "optimizations_found", json_integer((json_int_t)ol->n));
	json_object_set_new(m, "interview_quality", json_real(sr->interview_quality));
	json_object_set_new(m, "candidate_engagement", json_real(sr->candidate_engagement));
	json_object_set_new(m, "scoring", json_string(score_method_name(sm)));
	json_object_set_new(m, "mean_ttft_ms", nttft ? json_real(ttft_sum / nttft) : json_null());
	json_object_set_new(m, "prompt_tokens", json_integer(ptok));
	json_object_set_new(m, "completion_tokens", json_integer(ctok));
	json_object_set_new(m, "cached_tokens", have_cached ? json_integer(cached) : json_null());
	if (sr->components)
		json_object_set(m, "scores", sr->components); /* borrowed, so incref */
	return m;
}

json_t *outcome_metrics(const char *scoring, const json_t *scenario, const struct db_turn *turns,
			size_t nturns, const struct optim_list *ol)
{
	enum score_method sm = SCORE_RUBRIC;
	struct score_turn *st = xcalloc(nturns ? nturns : 1, sizeof(*st));
	struct score_input in;
	struct score_result sr;
	json_t *m;
	size_t i;

	score_method_parse(scoring, &sm);
	for (i = 0; i < nturns; i++) {
		st[i].role = turns[i].role;
		st[i].text = turns[i].text;
		st[i].duration_s = turns[i].wall_ms / 1000.0;
	}
	memset(&in, 0, sizeof(in));
	in.turns = st;
	in.nturns = nturns;
	in.optims = ol;
	in.problem = json_string_value(json_object_get(scenario, "problem"));
	in.goal = json_string_value(json_object_get(scenario, "goal"));
	memset(&sr, 0, sizeof(sr));
	score_conversation(sm, &in, &sr);
	m = totals(turns, nturns, ol, &sr, sm);
	score_result_release(&sr);
	free(st);
	return m;
}

struct db_optim *outcome_db_optims(const struct optim_list *ol, int64_t now)
{
	struct db_optim *dv = xcalloc(ol->n ? ol->n : 1, sizeof(*dv));
	size_t i;

	for (i = 0; i < ol->n; i++) {
		dv[i].ord = (int)i + 1;
		dv[i].turn = ol->v[i].turn;
		dv[i].title = ol->v[i].title;
		dv[i].detail = ol->v[i].detail;
		dv[i].test = ol->v[i].test;
		dv[i].suggestion = ol->v[i].suggestion;
		dv[i].extracted_at = now;
		snprintf(dv[i].method, sizeof(dv[i].method), "%s",
			 ol->v[i].method ? ol->v[i].method : "");
	}
	return dv;
}
