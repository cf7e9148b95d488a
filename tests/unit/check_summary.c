/*
 * check_summary.c - a batch's summary maths, worked by hand: means over the
 * conversations that succeeded, failures in the success rate and nowhere
 * else, the ranking rule and both its tie-breaks, latency percentiles,
 * the spread of repeated runs, comparisons, and the Markdown report.
 */
#include <check.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "api/report.h"
#include "api/views.h"
#include "server/summary.h"

#define EPS 1e-9

static double num(const json_t *o, const char *key)
{
	ck_assert_msg(json_is_number(json_object_get(o, key)), "'%s' is not a number", key);
	return json_number_value(json_object_get(o, key));
}

static void job(struct db_job *j, const char *id, const char *model, const char *backend,
		const char *scen, const char *status, const char *metrics)
{
	memset(j, 0, sizeof(*j));
	snprintf(j->id, sizeof(j->id), "%s", id);
	snprintf(j->status, sizeof(j->status), "%s", status);
	j->candidate_model = xstrdup(model);
	j->candidate_backend = xstrdup(backend);
	j->scenario_name = xstrdup(scen);
	j->interviewer_model = xstrdup("iv");
	j->interviewer_backend = xstrdup("ollama");
	j->scoring = xstrdup("origin");
	j->extraction = xstrdup("origin");
	j->metrics = metrics ? xstrdup(metrics) : NULL;
	j->turns_completed = 3;
	j->finished_at = 1;
	if (!strcmp(status, "failed")) {
		j->error_code = xstrdup("backend_error");
		j->error_message = xstrdup("backend 'llama' (http://x): model crashed");
	}
}

static void batch(struct db_batch *b, const char *cands, const char *scens, int repeat)
{
	memset(b, 0, sizeof(*b));
	snprintf(b->id, sizeof(b->id), "btest");
	b->interviewer_model = xstrdup("iv");
	b->interviewer_backend = xstrdup("ollama");
	b->candidates = xstrdup(cands);
	b->scenarios = xstrdup(scens);
	b->repeat = repeat;
	b->max_turns = 3;
	b->scoring = xstrdup("origin");
	b->extraction = xstrdup("origin");
	b->created_at = 1795700000000000;
	b->finished_at = 1795700060000000;
	b->cancelled_at = -1;
}

static struct db_turn_stat tstat(const char *job_id, const char *role, double wall_ms,
				 double ttft_ms, long tokens, double gen_ms, double tps)
{
	struct db_turn_stat t;

	memset(&t, 0, sizeof(t));
	snprintf(t.job_id, sizeof(t.job_id), "%s", job_id);
	snprintf(t.role, sizeof(t.role), "%s", role);
	t.model = xstrdup(role[0] == 'i' ? "iv" : "cand");
	t.wall_ms = wall_ms;
	t.ttft_ms = ttft_ms;
	t.completion_tokens = tokens;
	t.gen_ms = gen_ms;
	t.tokens_per_s = tps;
	return t;
}

#define M(opt, iq, ce)                                                                             \
	"{\"optimizations_found\":" #opt ",\"interview_quality\":" #iq                             \
	",\"candidate_engagement\":" #ce ",\"total_duration\":12.5}"

/*
 * Three candidates (one model on two backends) x two scenarios:
 *   m-a        s1: 2 found, 9/8     s2: 1 found, 8/7
 *   m-b@ollama s1: 3 found, 10/6    s2: failed
 *   m-b@llama  s1: 2 found, 7/8     s2: 1 found, 10/9
 */
struct world {
	struct db_batch b;
	struct db_job jobs[6];
	struct db_turn_stat turns[16];
	size_t nturns;
	json_t *view;
};

static void world_init(struct world *w)
{
	static const char *const ids[] = {"ja1", "ja2", "jb1", "jb2", "jc1", "jc2"};
	size_t i;
	int k = 1;

	batch(&w->b,
	      "[{\"model\":\"m-a\",\"backend\":\"ollama\"},{\"model\":\"m-b\",\"backend\":"
	      "\"ollama\"},"
	      "{\"model\":\"m-b\",\"backend\":\"llama\"}]",
	      "[{\"name\":\"s1\",\"problem\":\"p1\",\"context\":\"c1\",\"goal\":\"g1\"},"
	      "{\"name\":\"s2\",\"problem\":\"p2\",\"context\":\"c2\",\"goal\":\"g2\"}]",
	      1);
	w->b.counts[DB_SUCCEEDED] = 5;
	w->b.counts[DB_FAILED] = 1;
	job(&w->jobs[0], ids[0], "m-a", "ollama", "s1", "succeeded", M(2, 9.0, 8.0));
	job(&w->jobs[1], ids[1], "m-a", "ollama", "s2", "succeeded", M(1, 8.0, 7.0));
	job(&w->jobs[2], ids[2], "m-b", "ollama", "s1", "succeeded", M(3, 10.0, 6.0));
	job(&w->jobs[3], ids[3], "m-b", "ollama", "s2", "failed",
	    "{\"total_duration\":1.0,\"turns_completed\":1}");
	job(&w->jobs[4], ids[4], "m-b", "llama", "s1", "succeeded", M(2, 7.0, 8.0));
	job(&w->jobs[5], ids[5], "m-b", "llama", "s2", "succeeded", M(1, 10.0, 9.0));
	/* the interviewer: 11 turns of 1 s .. 11 s; the failed job only had its opening */
	w->nturns = 0;
	for (i = 0; i < 6; i++) {
		w->turns[w->nturns++] = tstat(ids[i], "interviewer", 1000.0 * k++, 50, -1, -1, -1);
		if (i != 3)
			w->turns[w->nturns++] =
			    tstat(ids[i], "interviewer", 1000.0 * k++, 50, -1, -1, -1);
	}
	/* m-a's answers: 1 s and 3 s; one reports its tokens, the other only a rate */
	w->turns[w->nturns++] = tstat("ja1", "candidate", 1000, 100, 50, 500, 100);
	w->turns[w->nturns++] = tstat("ja2", "candidate", 3000, -1, -1, -1, 20);
	w->view = summary_batch(&w->b, w->jobs, 6, w->turns, w->nturns);
	ck_assert_ptr_nonnull(w->view);
	view_batch_links(w->view); /* the API's links, as GET /v1/batches/{id} serves them */
}

static void world_release(struct world *w)
{
	size_t i;

	json_decref(w->view);
	for (i = 0; i < 6; i++)
		db_job_release(&w->jobs[i]);
	for (i = 0; i < w->nturns; i++)
		free(w->turns[i].model);
	db_batch_release(&w->b);
}

START_TEST(test_statistics)
{
	double a[] = {5, 1, 4, 2, 3}, b[] = {4, 1, 3, 2}, c[] = {7};
	double d[] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10}, e[] = {8, 9, 10};

	ck_assert_double_eq_tol(summary_median(a, 5), 3, EPS);
	ck_assert_double_eq_tol(summary_median(b, 4), 2.5, EPS);
	ck_assert_double_eq_tol(summary_median(c, 1), 7, EPS);
	/* nearest rank: ceil(0.9 n)-th smallest */
	ck_assert_double_eq_tol(summary_p90(d, 10), 9, EPS);
	ck_assert_double_eq_tol(summary_p90(a, 5), 5, EPS);
	ck_assert_double_eq_tol(summary_p90(c, 1), 7, EPS);
	ck_assert_double_eq_tol(summary_stdev(e, 3), 1, EPS);
}
END_TEST

START_TEST(test_summary_numbers)
{
	struct world w;
	json_t *sm, *mp, *x, *conv;

	world_init(&w);
	sm = json_object_get(w.view, "summary_metrics");
	ck_assert_int_eq(json_integer_value(json_object_get(sm, "total_conversations")), 6);
	ck_assert_int_eq(json_integer_value(json_object_get(sm, "succeeded")), 5);
	ck_assert_int_eq(json_integer_value(json_object_get(sm, "failed")), 1);
	/* the failed conversation counts against the success rate ... */
	ck_assert_double_eq_tol(num(sm, "success_rate"), 5.0 / 6.0, EPS);
	/* ... and nowhere in the totals and averages: (9+8+10+7+10)/5, (8+7+6+8+9)/5 */
	ck_assert_int_eq(json_integer_value(json_object_get(sm, "total_optimizations_discovered")),
			 9);
	ck_assert_double_eq_tol(num(sm, "average_interview_quality"), 8.8, EPS);
	ck_assert_double_eq_tol(num(sm, "average_candidate_engagement"), 7.6, EPS);

	/* keyed by model; a model given on two backends is told apart by its backend */
	mp = json_object_get(sm, "model_performance");
	ck_assert_uint_eq(json_object_size(mp), 3);
	x = json_object_get(mp, "m-a");
	ck_assert_int_eq(json_integer_value(json_object_get(x, "conversations")), 2);
	ck_assert_int_eq(json_integer_value(json_object_get(x, "total_optimizations")), 3);
	ck_assert_double_eq_tol(num(x, "avg_quality"), 8.5, EPS);
	ck_assert_double_eq_tol(num(x, "avg_engagement"), 7.5, EPS);
	x = json_object_get(mp, "m-b@ollama");
	ck_assert_int_eq(json_integer_value(json_object_get(x, "conversations")), 2);
	ck_assert_int_eq(json_integer_value(json_object_get(x, "failed")), 1);
	ck_assert_int_eq(json_integer_value(json_object_get(x, "total_optimizations")), 3);
	ck_assert_double_eq_tol(num(x, "avg_quality"), 10, EPS);
	ck_assert_double_eq_tol(num(x, "success_rate"), 0.5, EPS);
	ck_assert_ptr_nonnull(json_object_get(mp, "m-b@llama"));

	/* per scenario */
	x = json_object_get(json_object_get(sm, "scenario_performance"), "s1");
	ck_assert_int_eq(json_integer_value(json_object_get(x, "total_optimizations")), 7);
	ck_assert_double_eq_tol(num(x, "avg_quality"), 26.0 / 3.0, EPS);
	x = json_object_get(json_object_get(sm, "scenario_performance"), "s2");
	ck_assert_int_eq(json_integer_value(json_object_get(x, "conversations")), 3);
	ck_assert_int_eq(json_integer_value(json_object_get(x, "failed")), 1);

	/* conversations in the batch's order, the origin's fields */
	conv = json_object_get(w.view, "conversations");
	ck_assert_uint_eq(json_array_size(conv), 6);
	x = json_array_get(conv, 3);
	ck_assert_str_eq(json_string_value(json_object_get(x, "candidate")), "m-b@ollama");
	ck_assert_str_eq(json_string_value(json_object_get(x, "scenario_name")), "s2");
	ck_assert_str_eq(json_string_value(json_object_get(x, "status")), "failed");
	ck_assert(json_is_null(json_object_get(x, "optimizations_found")));
	ck_assert_str_eq(json_string_value(json_object_get(json_object_get(x, "error"), "code")),
			 "backend_error");
	ck_assert_str_eq(json_string_value(json_object_get(x, "conversation_file")),
			 "/v1/jobs/jb2/transcript.md");
	x = json_array_get(conv, 0);
	ck_assert_int_eq(json_integer_value(json_object_get(x, "optimizations_found")), 2);
	ck_assert_double_eq_tol(num(json_object_get(x, "success_metrics"), "interview_quality"), 9,
				EPS);
	world_release(&w);
}
END_TEST

START_TEST(test_rankings_and_tie_breaks)
{
	struct world w;
	json_t *r;

	world_init(&w);
	r = json_object_get(w.view, "rankings");
	ck_assert_uint_eq(json_array_size(r), 3);
	/* all found 3: m-b@ollama's quality (10) wins; m-a and m-b@llama tie at 8.5 and keep
	 * the order they were given in */
	ck_assert_str_eq(json_string_value(json_object_get(json_array_get(r, 0), "model")),
			 "m-b@ollama");
	ck_assert_str_eq(json_string_value(json_object_get(json_array_get(r, 1), "model")), "m-a");
	ck_assert_str_eq(json_string_value(json_object_get(json_array_get(r, 2), "model")),
			 "m-b@llama");
	ck_assert_int_eq(json_integer_value(json_object_get(json_array_get(r, 2), "rank")), 3);
	ck_assert_int_eq(
	    json_integer_value(json_object_get(
		json_object_get(json_object_get(json_object_get(w.view, "summary_metrics"),
						"model_performance"),
				"m-a"),
		"rank")),
	    2);
	ck_assert_str_eq(json_string_value(json_object_get(w.view, "ranking_rule")),
			 SUMMARY_RANKING_RULE);
	world_release(&w);
}
END_TEST

START_TEST(test_latency)
{
	struct world w;
	json_t *sm, *lat;

	world_init(&w);
	sm = json_object_get(w.view, "summary_metrics");
	lat = json_object_get(json_object_get(json_object_get(sm, "model_performance"), "m-a"),
			      "latency");
	ck_assert_int_eq(json_integer_value(json_object_get(lat, "turns")), 2);
	ck_assert_double_eq_tol(num(lat, "median_turn_s"), 2.0, EPS);
	ck_assert_double_eq_tol(num(lat, "p90_turn_s"), 3.0, EPS);
	/* only one turn said its time to first token */
	ck_assert_double_eq_tol(num(lat, "median_ttft_ms"), 100, EPS);
	/* 50 tokens in 500 ms of generation; the turn with only a rate does not count */
	ck_assert_double_eq_tol(num(lat, "tokens_per_s"), 100, EPS);
	/* a model with no stored turns has no figures, not zeros */
	lat = json_object_get(
	    json_object_get(json_object_get(sm, "model_performance"), "m-b@llama"), "latency");
	ck_assert_int_eq(json_integer_value(json_object_get(lat, "turns")), 0);
	ck_assert(json_is_null(json_object_get(lat, "median_turn_s")));
	ck_assert(json_is_null(json_object_get(lat, "tokens_per_s")));
	/* the interviewer: 1 s .. 11 s */
	lat = json_object_get(json_object_get(sm, "interviewer"), "latency");
	ck_assert_int_eq(json_integer_value(json_object_get(lat, "turns")), 11);
	ck_assert_double_eq_tol(num(lat, "median_turn_s"), 6.0, EPS);
	ck_assert_double_eq_tol(num(lat, "p90_turn_s"), 10.0, EPS);
	ck_assert(json_is_null(json_object_get(lat, "tokens_per_s")));
	world_release(&w);
}
END_TEST

START_TEST(test_spread_of_repeats)
{
	struct db_batch b;
	struct db_job jobs[3];
	json_t *view, *cells, *c, *x;
	size_t i;

	batch(&b, "[{\"model\":\"m\",\"backend\":\"ollama\"}]",
	      "[{\"name\":\"s\",\"problem\":\"p\",\"context\":\"c\",\"goal\":\"g\"}]", 3);
	job(&jobs[0], "j1", "m", "ollama", "s", "succeeded", M(1, 8.0, 7.0));
	job(&jobs[1], "j2", "m", "ollama", "s", "succeeded", M(2, 9.0, 7.0));
	job(&jobs[2], "j3", "m", "ollama", "s", "succeeded", M(3, 10.0, 7.0));
	view = summary_batch(&b, jobs, 3, NULL, 0);
	ck_assert_int_eq(json_integer_value(json_object_get(
			     json_array_get(json_object_get(view, "conversations"), 2), "run")),
			 3);
	cells = json_object_get(json_object_get(view, "summary_metrics"), "spread");
	ck_assert_uint_eq(json_array_size(cells), 1);
	c = json_array_get(cells, 0);
	ck_assert_int_eq(json_integer_value(json_object_get(c, "runs")), 3);
	x = json_object_get(c, "interview_quality");
	ck_assert_double_eq_tol(num(x, "mean"), 9, EPS);
	ck_assert_double_eq_tol(num(x, "min"), 8, EPS);
	ck_assert_double_eq_tol(num(x, "max"), 10, EPS);
	ck_assert_double_eq_tol(num(x, "stdev"), 1, EPS);
	ck_assert_double_eq_tol(num(json_object_get(c, "optimizations_found"), "stdev"), 1, EPS);
	ck_assert_double_eq_tol(num(json_object_get(c, "candidate_engagement"), "stdev"), 0, EPS);
	json_decref(view);
	for (i = 0; i < 3; i++)
		db_job_release(&jobs[i]);
	db_batch_release(&b);
}
END_TEST

START_TEST(test_compare)
{
	struct world w;
	struct db_batch b2;
	struct db_job jobs[2];
	json_t *v2, *cmp, *x, *row;

	world_init(&w);
	/* B: m-a again on s1 only, now finding 4 at quality 10 */
	batch(&b2, "[{\"model\":\"m-a\",\"backend\":\"ollama\"}]",
	      "[{\"name\":\"s1\",\"problem\":\"p1\",\"context\":\"c1\",\"goal\":\"g1\"}]", 2);
	snprintf(b2.id, sizeof(b2.id), "btest2");
	job(&jobs[0], "jx1", "m-a", "ollama", "s1", "succeeded", M(4, 10.0, 8.0));
	job(&jobs[1], "jx2", "m-a", "ollama", "s1", "succeeded", M(4, 10.0, 6.0));
	v2 = summary_batch(&b2, jobs, 2, NULL, 0);
	cmp = summary_compare(w.view, v2);
	x = json_object_get(json_object_get(cmp, "overall"), "total_optimizations_discovered");
	ck_assert_int_eq(json_integer_value(json_object_get(x, "a")), 9);
	ck_assert_int_eq(json_integer_value(json_object_get(x, "b")), 8);
	ck_assert_int_eq(json_integer_value(json_object_get(x, "delta")), -1);
	/* the models both have, and those only one has */
	ck_assert_uint_eq(json_array_size(json_object_get(cmp, "models")), 1);
	row = json_array_get(json_object_get(cmp, "models"), 0);
	ck_assert_str_eq(json_string_value(json_object_get(row, "model")), "m-a");
	x = json_object_get(row, "total_optimizations");
	ck_assert_int_eq(json_integer_value(json_object_get(x, "delta")), 5);
	ck_assert_double_eq_tol(num(json_object_get(row, "avg_quality"), "delta"), 1.5, EPS);
	ck_assert_int_eq(json_integer_value(json_object_get(json_object_get(row, "rank"), "delta")),
			 -1);
	/* B has no turns: latency has no delta */
	ck_assert(json_is_null(json_object_get(json_object_get(row, "median_turn_s"), "delta")));
	ck_assert_uint_eq(
	    json_array_size(json_object_get(json_object_get(cmp, "only_in_a"), "models")), 2);
	ck_assert_str_eq(json_string_value(json_array_get(
			     json_object_get(json_object_get(cmp, "only_in_a"), "scenarios"), 0)),
			 "s2");
	/* the pair m-a x s1: 2 found in A, a mean of 4 over B's two runs */
	row = json_array_get(json_object_get(cmp, "pairs"), 0);
	ck_assert_str_eq(json_string_value(json_object_get(row, "scenario")), "s1");
	ck_assert_double_eq_tol(num(json_object_get(row, "optimizations_found"), "delta"), 2, EPS);
	ck_assert_double_eq_tol(num(json_object_get(row, "candidate_engagement"), "b"), 7, EPS);
	{
		struct strbuf md;
		strbuf_init(&md, 0);
		report_compare(cmp, &md);
		ck_assert_ptr_nonnull(strstr(md.buf, "# Batch Comparison: btest → btest2"));
		ck_assert_ptr_nonnull(strstr(md.buf, "| Optimizations Discovered | 9 | 8 | -1 |"));
		ck_assert_ptr_nonnull(strstr(md.buf, "| `m-a` | 2 → 1 (-1) | 3 → 8 (+5) | "
						     "8.5 → 10.0 (+1.5) |"));
		ck_assert_ptr_nonnull(strstr(md.buf, "- **Only in A:** models `m-b@ollama`, "
						     "`m-b@llama`; scenarios `s2`"));
		strbuf_release(&md);
	}
	json_decref(cmp);
	json_decref(v2);
	db_job_release(&jobs[0]);
	db_job_release(&jobs[1]);
	db_batch_release(&b2);
	world_release(&w);
}
END_TEST

START_TEST(test_report)
{
	struct world w;
	struct strbuf md;
	char now[32], line[160];

	world_init(&w);
	strbuf_init(&md, 0);
	report_batch(w.view, 1795700123000000, &md);
	util_iso8601(1795700123000000, now);
	/* "Generated" is when the report was written, not when the batch started */
	snprintf(line, sizeof(line), "**Generated:** %s  \n", now);
	ck_assert_ptr_nonnull(strstr(md.buf, line));
	ck_assert_ptr_nonnull(strstr(md.buf, "**Started:** 2026-11-26T"));
	ck_assert_ptr_nonnull(strstr(md.buf, "- **Total Conversations:** 6\n"
					     "- **Optimizations Discovered:** 9\n"
					     "- **Average Interview Quality:** 8.8/10\n"
					     "- **Average Candidate Engagement:** 7.6/10\n"
					     "- **Success Rate:** 83.3%\n"));
	ck_assert_ptr_nonnull(strstr(md.buf, "Ranked by optimizations found (most first); ties "
					     "broken by average interview quality"));
	ck_assert_ptr_nonnull(strstr(md.buf,
				     "| 1 | `m-b@ollama` | 2 (1 failed) | 3 | 10.0/10 | 6.0/10 |\n"
				     "| 2 | `m-a` | 2 | 3 | 8.5/10 | 7.5/10 |\n"
				     "| 3 | `m-b@llama` | 2 | 3 | 8.5/10 | 8.5/10 |\n"));
	ck_assert_ptr_nonnull(strstr(md.buf, "## ⏱️ Latency"));
	ck_assert_ptr_nonnull(strstr(md.buf, "| `iv` | interviewer | 11 | 6.00 s | 10.00 s | 50 ms "
					     "| 50 ms | — |\n"));
	ck_assert_ptr_nonnull(strstr(md.buf, "| `m-a` | candidate | 2 | 2.00 s | 3.00 s | 100 ms "
					     "| 100 ms | 100.0 |\n"));
	ck_assert_ptr_nonnull(strstr(md.buf, "### s2\n- **Problem:** p2\n- **Conversations:** 3\n"
					     "- **Optimizations Found:** 2\n- **Failed:** 1\n"));
	ck_assert_ptr_nonnull(strstr(md.buf, "5 succeeded, 1 failed (success rate 83.3%)"));
	ck_assert_ptr_nonnull(strstr(md.buf, "1. **Best Performers:** m-b@ollama generated the "
					     "most optimization suggestions (3); 2 other models"));
	ck_assert_ptr_nonnull(strstr(md.buf, "| `m-b@ollama` | s2 | 1 | failed: backend 'llama' "
					     "(http://x): model crashed | — | — | "
					     "/v1/jobs/jb2/transcript.md |"));
	ck_assert_ptr_nonnull(strstr(md.buf, "**Batch Status:** COMPLETE ✅"));
	/* no stability section without repeats */
	ck_assert_ptr_null(strstr(md.buf, "Stability"));
	strbuf_release(&md);
	world_release(&w);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("summary");
	TCase *tc = tcase_create("maths");
	SRunner *sr;
	int failed;

	tcase_add_test(tc, test_statistics);
	tcase_add_test(tc, test_summary_numbers);
	tcase_add_test(tc, test_rankings_and_tie_breaks);
	tcase_add_test(tc, test_latency);
	tcase_add_test(tc, test_spread_of_repeats);
	tcase_add_test(tc, test_compare);
	tcase_add_test(tc, test_report);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
