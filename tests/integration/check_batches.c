/*
 * check_batches.c - the real parleyd against the fake backend: a 2 x 3
 * batch whose summary, rankings, latency figures and report are worked out
 * by hand here; the comparison of two batches; searching the optimizations
 * found; cancelling a batch; bad batches that change nothing; and a judge
 * that grades through structured output (and one that answers garbage).
 */
#include <check.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tests/harness.h"

#define EPS 1e-9

static struct proc fake, parleyd;
static char dbpath[512], scriptpath[512];

/*
 * The interviewer's analyses, by candidate: cand-a's has two suggestions,
 * cand-b's four (the fake picks them by the candidate's name, which is in
 * the interviewer's system prompt). Candidates answer with the fake's
 * generated text.
 */
static const char analysis_a[] =
    "### 1. Analysis of the candidate's approach\nIt rebuilds everything on every request.\n\n"
    "### 2. Specific optimization opportunities\n- Repeated work\n- Cold starts\n\n"
    "### 3. Concrete suggestions\n"
    "- **Shard the index by tenant** #test_this: one index per tenant.\n"
    "  Test: compare p95 latency on 1,000 replayed queries.\n"
    "- **Warm the cache at start-up** #test_this: load the 500 hottest entries.\n"
    "  Test: measure the first 100 requests' latency after a restart.\n\n"
    "### 4. Reasoning\nBoth remove work that is done again and again.\n";
static const char analysis_b[] =
    "### 1. Analysis of the candidate's approach\nThe model is large and the prompt long.\n\n"
    "### 2. Specific optimization opportunities\n- Model size\n- Prompt size\n\n"
    "### 3. Concrete suggestions\n"
    "- **Quantize the model to 4 bits** #test_this: use Q4_K_M weights.\n"
    "  Test: compare tokens per second and accuracy on 200 questions.\n"
    "- **Stream partial results** #test_this: send tokens as they come.\n"
    "  Test: measure time to first token.\n"
    "- **Prune the system prompt** #test_this: drop the examples.\n"
    "  Test: compare prompt tokens and accuracy.\n"
    "- **Batch embedding requests** #test_this: 16 at a time.\n"
    "  Test: measure throughput at 50 requests per second.\n\n"
    "### 4. Reasoning\nSmaller inputs and outputs are faster.\n";

static void write_script(void)
{
	json_t *s = json_pack("{s:{s:{s:[{s:s, s:[s, s]}, {s:s, s:[s, s]}]}, s:{s:i}}}", "models",
			      "gemma3:1b", "cases", "contains", "cand-a", "replies",
			      "Hello cand-a, how do you work today?", analysis_a, "contains",
			      "cand-b", "replies", "Hello cand-b, how do you work today?",
			      analysis_b, "cand-slow", "token_delay_ms", 40);

	ck_assert_ptr_nonnull(s);
	ck_assert_int_eq(json_dump_file(s, scriptpath, 0), 0);
	json_decref(s);
}

static void setup(void)
{
	static int seq;
	char b1[256], b2[256];
	const char *fargs[] = {"--script", scriptpath, NULL};
	const char *pargs[] = {"--backend", b1, "--backend", b2, NULL};

	snprintf(dbpath, sizeof(dbpath), "%s/batches-%d-%d.db", harness_tmpdir(), (int)getpid(),
		 seq);
	snprintf(scriptpath, sizeof(scriptpath), "%s/batches-script-%d-%d.json", harness_tmpdir(),
		 (int)getpid(), seq++);
	write_script();
	ck_assert_int_eq(harness_fake_start(&fake, fargs), 0);
	snprintf(b1, sizeof(b1),
		 "name=ollama,kind=ollama,url=http://127.0.0.1:%d,max_concurrency=2", fake.port);
	snprintf(b2, sizeof(b2), "name=llama,kind=llama-server,url=http://127.0.0.1:%d", fake.port);
	ck_assert_int_eq(harness_parleyd_start(&parleyd, dbpath, pargs), 0);
}

static void teardown(void)
{
	harness_stop(&parleyd, SIGTERM);
	harness_stop(&fake, SIGTERM);
}

static json_t *call(const char *method, const char *path, const char *body, int want)
{
	return harness_call(parleyd.port, method, path, body, want);
}

static char *post_batch(const char *body)
{
	json_t *b = call("POST", "/v1/batches", body, 202);
	char *id = xstrdup(json_string_value(json_object_get(b, "id")));

	ck_assert_ptr_nonnull(strstr(harness_last_headers(), "/v1/batches/"));
	json_decref(b);
	return id;
}

static json_t *wait_batch(const char *id, long timeout_ms)
{
	int64_t deadline = util_mono_us() + timeout_ms * 1000;
	char path[128];

	snprintf(path, sizeof(path), "/v1/batches/%s", id);
	while (util_mono_us() < deadline) {
		json_t *b = call("GET", path, NULL, 200);
		const char *st = json_string_value(json_object_get(b, "status"));
		if (!strcmp(st, "finished") || !strcmp(st, "cancelled"))
			return b;
		json_decref(b);
		usleep(50000);
	}
	ck_abort_msg("batch %s did not finish in %ld ms", id, timeout_ms);
	return NULL;
}

static double num(const json_t *o, const char *key)
{
	json_t *v = json_object_get(o, key);

	ck_assert_msg(json_is_number(v), "'%s' is not a number", key);
	return json_number_value(v);
}

static long integer(const json_t *o, const char *key)
{
	json_t *v = json_object_get(o, key);

	ck_assert_msg(json_is_integer(v), "'%s' is not an integer", key);
	return (long)json_integer_value(v);
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* The latency figures of a role (and a candidate model) worked out from the transcripts. */
struct expect_lat {
	double wall[64], ttft[64], tokens, gen_ms;
	size_t n, nttft;
};

static void collect_turns(const json_t *batch, const char *role, const char *model,
			  struct expect_lat *x)
{
	json_t *ids = json_object_get(batch, "job_ids"), *id, *t, *turn;
	char path[128];
	size_t i, k;

	memset(x, 0, sizeof(*x));
	json_array_foreach(ids, i, id)
	{
		snprintf(path, sizeof(path), "/v1/jobs/%s/transcript", json_string_value(id));
		t = call("GET", path, NULL, 200);
		json_array_foreach(json_object_get(t, "conversation"), k, turn)
		{
			json_t *m = json_object_get(turn, "metrics");
			if (strcmp(json_string_value(json_object_get(turn, "speaker")), role) ||
			    (model &&
			     strcmp(json_string_value(json_object_get(turn, "model")), model)))
				continue;
			x->wall[x->n++] = num(m, "wall_ms") / 1000.0;
			if (json_is_number(json_object_get(m, "ttft_ms")))
				x->ttft[x->nttft++] = num(m, "ttft_ms");
			if (json_is_integer(json_object_get(m, "completion_tokens")) &&
			    json_is_number(json_object_get(m, "gen_ms")) && num(m, "gen_ms") > 0) {
				x->tokens += (double)integer(m, "completion_tokens");
				x->gen_ms += num(m, "gen_ms");
			}
		}
		json_decref(t);
	}
}

static void check_latency(const json_t *lat, struct expect_lat *x)
{
	size_t p90 = (size_t)ceil(0.9 * (double)x->n) - 1;

	ck_assert_int_eq(integer(lat, "turns"), (long)x->n);
	qsort(x->wall, x->n, sizeof(double), cmp_double);
	qsort(x->ttft, x->nttft, sizeof(double), cmp_double);
	ck_assert_double_eq_tol(
	    num(lat, "median_turn_s"),
	    x->n % 2 ? x->wall[x->n / 2] : (x->wall[x->n / 2 - 1] + x->wall[x->n / 2]) / 2, EPS);
	ck_assert_double_eq_tol(num(lat, "p90_turn_s"), x->wall[p90], EPS);
	ck_assert_double_eq_tol(num(lat, "median_ttft_ms"),
				x->nttft % 2
				    ? x->ttft[x->nttft / 2]
				    : (x->ttft[x->nttft / 2 - 1] + x->ttft[x->nttft / 2]) / 2,
				EPS);
	ck_assert_double_eq_tol(num(lat, "tokens_per_s"), x->tokens / (x->gen_ms / 1000.0), 1e-6);
}

static const char hand_batch[] =
    "{\"interviewer\":{\"model\":\"gemma3:1b\"},"
    "\"candidates\":[{\"model\":\"cand-a\"},{\"model\":\"cand-b\",\"backend\":\"ollama\"}],"
    "\"scenarios\":[\"job_extraction_improvement\",\"response_speed_optimization\","
    "\"prompt_engineering_breakthrough\"],"
    "\"scoring\":\"origin\",\"extraction\":\"rubric\",\"labels\":{\"run\":\"by-hand\"}}";

START_TEST(two_by_three_by_hand)
{
	char *id, path[160], *md = NULL, *md2 = NULL, now[32];
	const char *accept[] = {"Accept: text/markdown", NULL};
	json_t *b, *sm, *mp, *x, *conv, *r, *list;
	struct expect_lat lat;
	size_t i;
	int failed_at = -1;

	/* cand-b's first model call is rejected (HTTP 400), which is never retried */
	ck_assert_int_eq(harness_http(fake.port, "POST", "/_fake/fault",
				      "{\"mode\":\"bad_option\",\"model\":\"cand-b\",\"count\":1}",
				      NULL, NULL),
			 200);
	id = post_batch(hand_batch);
	b = wait_batch(id, 60000);
	ck_assert_str_eq(json_string_value(json_object_get(b, "status")), "finished");
	ck_assert_int_eq(integer(json_object_get(b, "counts"), "succeeded"), 5);
	ck_assert_int_eq(integer(json_object_get(b, "counts"), "failed"), 1);

	/* one job per candidate x scenario, candidates outer, scenarios inner */
	conv = json_object_get(b, "conversations");
	ck_assert_uint_eq(json_array_size(conv), 6);
	ck_assert_uint_eq(json_array_size(json_object_get(b, "job_ids")), 6);
	json_array_foreach(conv, i, x)
	{
		static const char *const scen[] = {"job_extraction_improvement",
						   "response_speed_optimization",
						   "prompt_engineering_breakthrough"};
		const char *st = json_string_value(json_object_get(x, "status"));
		ck_assert_str_eq(json_string_value(json_object_get(x, "candidate_model")),
				 i < 3 ? "cand-a" : "cand-b");
		ck_assert_str_eq(json_string_value(json_object_get(x, "scenario_name")),
				 scen[i % 3]);
		if (!strcmp(st, "failed")) {
			ck_assert_int_eq(failed_at, -1);
			failed_at = (int)i;
			ck_assert(json_is_null(json_object_get(x, "optimizations_found")));
		} else {
			ck_assert_str_eq(st, "succeeded");
			/* two suggestions for cand-a, four for cand-b; origin scoring: 7 + found */
			ck_assert_int_eq(integer(x, "optimizations_found"), i < 3 ? 2 : 4);
			ck_assert_double_eq_tol(
			    num(json_object_get(x, "success_metrics"), "interview_quality"),
			    i < 3 ? 9.0 : 10.0, EPS);
		}
	}
	ck_assert_int_ge(failed_at, 3);

	/* the summary, by hand: 3 x 2 + 2 x 4 found; quality (3 x 9 + 2 x 10) / 5; the failure
	 * counts in the success rate and nowhere else */
	sm = json_object_get(b, "summary_metrics");
	ck_assert_int_eq(integer(sm, "total_conversations"), 6);
	ck_assert_int_eq(integer(sm, "total_optimizations_discovered"), 14);
	ck_assert_double_eq_tol(num(sm, "average_interview_quality"), 9.4, EPS);
	ck_assert_double_eq_tol(num(sm, "average_candidate_engagement"), 8.0, EPS);
	ck_assert_double_eq_tol(num(sm, "success_rate"), 5.0 / 6.0, EPS);
	mp = json_object_get(sm, "model_performance");
	x = json_object_get(mp, "cand-a");
	ck_assert_int_eq(integer(x, "conversations"), 3);
	ck_assert_int_eq(integer(x, "total_optimizations"), 6);
	ck_assert_double_eq_tol(num(x, "avg_quality"), 9.0, EPS);
	ck_assert_double_eq_tol(num(x, "avg_engagement"), 8.0, EPS);
	x = json_object_get(mp, "cand-b");
	ck_assert_int_eq(integer(x, "conversations"), 3);
	ck_assert_int_eq(integer(x, "failed"), 1);
	ck_assert_int_eq(integer(x, "total_optimizations"), 8);
	ck_assert_double_eq_tol(num(x, "avg_quality"), 10.0, EPS);
	ck_assert_double_eq_tol(num(x, "success_rate"), 2.0 / 3.0, EPS);
	x = json_object_get(json_object_get(sm, "scenario_performance"),
			    "job_extraction_improvement");
	ck_assert_str_eq(json_string_value(json_object_get(x, "problem")),
			 "Current model scores 4.2/10 on technical requirement extraction");
	ck_assert_int_eq(integer(x, "conversations"), 2);
	/* rankings: cand-b found more */
	r = json_object_get(b, "rankings");
	ck_assert_str_eq(json_string_value(json_object_get(json_array_get(r, 0), "model")),
			 "cand-b");
	ck_assert_str_eq(json_string_value(json_object_get(json_array_get(r, 1), "model")),
			 "cand-a");

	/* latency, from the transcripts' turn metrics */
	collect_turns(b, "candidate", "cand-a", &lat);
	ck_assert_uint_eq(lat.n, 3);
	check_latency(json_object_get(json_object_get(mp, "cand-a"), "latency"), &lat);
	collect_turns(b, "candidate", "cand-b", &lat);
	ck_assert_uint_eq(lat.n, 2); /* the failed call stored no turn */
	check_latency(json_object_get(json_object_get(mp, "cand-b"), "latency"), &lat);
	collect_turns(b, "interviewer", NULL, &lat);
	ck_assert_uint_eq(lat.n, 11); /* 5 x 2, and the failed job's opening */
	check_latency(json_object_get(json_object_get(sm, "interviewer"), "latency"), &lat);

	/* the jobs are ordinary jobs that name their batch */
	snprintf(path, sizeof(path), "/v1/jobs?batch=%s&label=run:by-hand", id);
	list = call("GET", path, NULL, 200);
	ck_assert_uint_eq(json_array_size(json_object_get(list, "items")), 6);
	json_decref(list);

	/* the report, in the origin's layout */
	snprintf(path, sizeof(path), "/v1/batches/%s/report.md", id);
	ck_assert_int_eq(harness_http(parleyd.port, "GET", path, NULL, NULL, &md), 200);
	ck_assert_ptr_nonnull(strstr(harness_last_headers(), "text/markdown"));
	ck_assert_ptr_nonnull(strstr(md, "AI-to-AI Optimization Conversations - Summary Report"));
	{
		/* "Generated" is when it was written: after the batch finished */
		const char *g = strstr(md, "**Generated:** ");
		ck_assert_ptr_nonnull(g);
		snprintf(now, sizeof(now), "%.27s", g + 15);
		ck_assert_msg(strcmp(now, json_string_value(json_object_get(b, "finished_at"))) > 0,
			      "generated %s, finished %s", now,
			      json_string_value(json_object_get(b, "finished_at")));
	}
	ck_assert_ptr_nonnull(strstr(md, "**AI Interviewer:** gemma3:1b  \n"
					 "**Candidate Models:** 2  \n"
					 "**Optimization Scenarios:** 3\n"));
	ck_assert_ptr_nonnull(strstr(md, "- **Total Conversations:** 6\n"
					 "- **Optimizations Discovered:** 14\n"
					 "- **Average Interview Quality:** 9.4/10\n"
					 "- **Average Candidate Engagement:** 8.0/10\n"
					 "- **Success Rate:** 83.3%\n"));
	ck_assert_ptr_nonnull(strstr(md, "| 1 | `cand-b` | 3 (1 failed) | 8 | 10.0/10 | 8.0/10 |\n"
					 "| 2 | `cand-a` | 3 | 6 | 9.0/10 | 8.0/10 |\n"));
	ck_assert_ptr_nonnull(strstr(md, "## ⏱️ Latency"));
	ck_assert_ptr_nonnull(strstr(md, "| `gemma3:1b` | interviewer | 11 | "));
	ck_assert_ptr_nonnull(strstr(md, "| `cand-a` | candidate | 3 | "));
	ck_assert_ptr_nonnull(strstr(md, "### response_speed_optimization\n"
					 "- **Problem:** Model takes 45-60 seconds for complex "
					 "analysis\n- **Conversations:** 2\n"));
	ck_assert_ptr_nonnull(strstr(md, "**Optimization Discovery:** Found 14 concrete"));
	ck_assert_ptr_nonnull(strstr(md, "5 succeeded, 1 failed (success rate 83.3%)"));
	ck_assert_ptr_nonnull(strstr(md, "## 📁 Detailed Conversations"));
	ck_assert_ptr_nonnull(strstr(md, "**Batch Status:** COMPLETE ✅"));
	/* the same report with Accept: text/markdown on the batch itself */
	snprintf(path, sizeof(path), "/v1/batches/%s", id);
	ck_assert_int_eq(harness_http(parleyd.port, "GET", path, NULL, accept, &md2), 200);
	ck_assert_ptr_nonnull(strstr(md2, "| 1 | `cand-b` | 3 (1 failed) | 8 | 10.0/10 |"));
	free(md);
	free(md2);

	/* listed */
	list = call("GET", "/v1/batches", NULL, 200);
	x = json_array_get(json_object_get(list, "items"), 0);
	ck_assert_str_eq(json_string_value(json_object_get(x, "id")), id);
	ck_assert_str_eq(json_string_value(json_object_get(x, "status")), "finished");
	ck_assert_int_eq(integer(x, "jobs"), 6);
	json_decref(list);
	json_decref(b);
	free(id);
}
END_TEST

START_TEST(compare_two_batches)
{
	char *a, *bid, path[200], *md = NULL;
	json_t *ba, *bb, *cmp, *x, *row, *sp;
	size_t i;

	a = post_batch(hand_batch);
	/* B: the same two candidates on one scenario, twice each */
	bid = post_batch("{\"interviewer\":{\"model\":\"gemma3:1b\"},"
			 "\"candidates\":[{\"model\":\"cand-a\"},{\"model\":\"cand-b\"}],"
			 "\"scenarios\":[\"job_extraction_improvement\"],\"repeat\":2,"
			 "\"scoring\":\"origin\",\"extraction\":\"rubric\"}");
	ba = wait_batch(a, 60000);
	bb = wait_batch(bid, 60000);
	ck_assert_int_eq(integer(json_object_get(bb, "counts"), "succeeded"), 4);
	/* B's spread: two runs per cell, the same every time */
	sp = json_object_get(json_object_get(bb, "summary_metrics"), "spread");
	ck_assert_uint_eq(json_array_size(sp), 2);
	x = json_array_get(sp, 1);
	ck_assert_str_eq(json_string_value(json_object_get(x, "candidate")), "cand-b");
	ck_assert_int_eq(integer(x, "runs"), 2);
	ck_assert_double_eq_tol(num(json_object_get(x, "optimizations_found"), "mean"), 4, EPS);
	ck_assert_double_eq_tol(num(json_object_get(x, "interview_quality"), "stdev"), 0, EPS);
	ck_assert_int_eq(integer(json_array_get(json_object_get(bb, "conversations"), 1), "run"),
			 2);

	snprintf(path, sizeof(path), "/v1/batches/%s/compare/%s", a, bid);
	cmp = call("GET", path, NULL, 200);
	ck_assert_str_eq(json_string_value(json_object_get(json_object_get(cmp, "a"), "id")), a);
	/* no fault this time: A found 3 x 2 + 3 x 4, B 2 x 2 + 2 x 4 */
	x = json_object_get(json_object_get(cmp, "overall"), "total_optimizations_discovered");
	ck_assert_int_eq(integer(x, "a"), 18);
	ck_assert_int_eq(integer(x, "b"), 12);
	ck_assert_int_eq(integer(x, "delta"), -6);
	x = json_object_get(json_object_get(cmp, "overall"), "total_conversations");
	ck_assert_int_eq(integer(x, "delta"), 4 - 6);
	x = json_object_get(json_object_get(cmp, "overall"), "success_rate");
	ck_assert_double_eq_tol(num(x, "delta"), 0, EPS);
	ck_assert_uint_eq(json_array_size(json_object_get(cmp, "models")), 2);
	json_array_foreach(json_object_get(cmp, "models"), i, row)
	{
		const char *m = json_string_value(json_object_get(row, "model"));
		x = json_object_get(row, "total_optimizations");
		ck_assert_int_eq(integer(x, "delta"), !strcmp(m, "cand-a") ? 4 - 6 : 8 - 12);
		ck_assert_int_eq(integer(json_object_get(row, "rank"), "a"),
				 !strcmp(m, "cand-a") ? 2 : 1);
		ck_assert_double_eq_tol(num(json_object_get(row, "avg_quality"), "delta"), 0, EPS);
		/* both batches ran turns: latency has deltas */
		x = json_object_get(row, "median_turn_s");
		ck_assert_double_eq_tol(num(x, "delta"), num(x, "b") - num(x, "a"), EPS);
	}
	ck_assert_uint_eq(json_array_size(json_object_get(cmp, "scenarios")), 1);
	ck_assert_uint_eq(
	    json_array_size(json_object_get(json_object_get(cmp, "only_in_a"), "scenarios")), 2);
	row = json_array_get(json_object_get(cmp, "pairs"), 0);
	ck_assert_str_eq(json_string_value(json_object_get(row, "model")), "cand-a");
	ck_assert_double_eq_tol(num(json_object_get(row, "optimizations_found"), "delta"), 0, EPS);
	json_decref(cmp);

	snprintf(path, sizeof(path), "/v1/batches/%s/compare/%s.md", a, bid);
	ck_assert_int_eq(harness_http(parleyd.port, "GET", path, NULL, NULL, &md), 200);
	ck_assert_ptr_nonnull(strstr(md, "# Batch Comparison: "));
	ck_assert_ptr_nonnull(strstr(md, "| Optimizations Discovered | 18 | 12 | -6 |"));
	ck_assert_ptr_nonnull(
	    strstr(md, "| `cand-a` | 2 → 2 (+0) | 6 → 4 (-2) | 9.0 → 9.0 (+0.0) |"));
	ck_assert_ptr_nonnull(strstr(md, "scenarios `response_speed_optimization`, "
					 "`prompt_engineering_breakthrough`"));
	free(md);
	snprintf(path, sizeof(path), "/v1/batches/%s/compare/bnope", a);
	json_decref(call("GET", path, NULL, 404));
	json_decref(ba);
	json_decref(bb);
	free(a);
	free(bid);
}
END_TEST

START_TEST(search_optimizations)
{
	char *id, path[200];
	json_t *b, *list, *items, *x, *next;
	size_t i;
	json_int_t last = 0;

	id = post_batch(hand_batch);
	b = wait_batch(id, 60000);
	/* cand-b's three succeeded analyses each suggest quantizing */
	list = call("GET", "/v1/optimizations?q=quantize", NULL, 200);
	items = json_object_get(list, "items");
	ck_assert_uint_eq(json_array_size(items), 3);
	json_array_foreach(items, i, x)
	{
		json_t *job = json_object_get(x, "job");
		ck_assert_str_eq(json_string_value(json_object_get(x, "title")),
				 "Quantize the model to 4 bits");
		ck_assert_str_eq(json_string_value(json_object_get(x, "test")),
				 "compare tokens per second and accuracy on 200 questions.");
		ck_assert_int_eq(integer(x, "turn"), 3);
		/* the batch asks for the rubric extractor, and each item says so */
		ck_assert_str_eq(json_string_value(json_object_get(x, "method")), "rubric");
		ck_assert_str_eq(
		    json_string_value(json_object_get(json_object_get(job, "candidate"), "model")),
		    "cand-b");
		ck_assert_str_eq(json_string_value(json_object_get(job, "batch")), id);
		/* newest first */
		if (i)
			ck_assert_int_lt(integer(x, "id"), last);
		last = integer(x, "id");
	}
	json_decref(list);
	/* words of the detail, stems, and every word must match */
	list = call("GET", "/v1/optimizations?q=hottest+entries", NULL, 200);
	ck_assert_uint_eq(json_array_size(json_object_get(list, "items")), 3);
	json_decref(list);
	list = call("GET", "/v1/optimizations?q=tenants+quantized", NULL, 200);
	ck_assert_uint_eq(json_array_size(json_object_get(list, "items")), 0);
	json_decref(list);
	/* filters */
	list = call("GET", "/v1/optimizations?model=cand-a&scenario=response_speed_optimization",
		    NULL, 200);
	items = json_object_get(list, "items");
	ck_assert_uint_eq(json_array_size(items), 2);
	ck_assert_str_eq(json_string_value(json_object_get(json_array_get(items, 1), "title")),
			 "Shard the index by tenant");
	json_decref(list);
	/* pages */
	list = call("GET", "/v1/optimizations?q=shard&limit=2", NULL, 200);
	ck_assert_uint_eq(json_array_size(json_object_get(list, "items")), 2);
	next = json_object_get(list, "next_cursor");
	ck_assert(json_is_string(next));
	snprintf(path, sizeof(path), "/v1/optimizations?q=shard&limit=2&cursor=%s",
		 json_string_value(next));
	json_decref(list);
	list = call("GET", path, NULL, 200);
	ck_assert_uint_eq(json_array_size(json_object_get(list, "items")), 1);
	ck_assert(json_is_null(json_object_get(list, "next_cursor")));
	json_decref(list);
	/* a query with no word in it, or FTS syntax, is not a server error */
	x = call("GET", "/v1/optimizations?q=%22%28*", NULL, 400);
	ck_assert_str_eq(json_string_value(json_object_get(
			     json_array_get(json_object_get(x, "errors"), 0), "field")),
			 "q");
	json_decref(x);
	json_decref(call("GET", "/v1/optimizations?q=NEAR%28shard+AND", NULL, 200));
	json_decref(b);
	free(id);
}
END_TEST

static int some_running(const json_t *b)
{
	return integer(json_object_get(b, "counts"), "running") > 0;
}

START_TEST(cancel_a_batch)
{
	char *id, path[160], *md = NULL;
	json_t *b;
	int64_t deadline;

	/* cand-slow streams slowly; the ollama backend runs two calls at once */
	id = post_batch(
	    "{\"interviewer\":{\"model\":\"gemma3:1b\"},"
	    "\"candidates\":[{\"model\":\"cand-slow\"}],"
	    "\"scenarios\":[\"job_extraction_improvement\",\"response_speed_optimization\","
	    "\"prompt_engineering_breakthrough\"],\"repeat\":2}");
	snprintf(path, sizeof(path), "/v1/batches/%s", id);
	deadline = util_mono_us() + 20000000;
	for (;;) {
		b = call("GET", path, NULL, 200);
		if (some_running(b))
			break;
		json_decref(b);
		ck_assert(util_mono_us() < deadline);
		usleep(20000);
	}
	ck_assert_str_eq(json_string_value(json_object_get(b, "status")), "running");
	json_decref(b);
	snprintf(path, sizeof(path), "/v1/batches/%s/cancel", id);
	b = call("POST", path, NULL, 202);
	/* nothing is left waiting: what had not started is cancelled, the rest is stopping */
	ck_assert_int_eq(integer(json_object_get(b, "counts"), "queued"), 0);
	json_decref(b);
	/* the running ones are aborted within a second or so */
	b = wait_batch(id, 10000);
	ck_assert_str_eq(json_string_value(json_object_get(b, "status")), "cancelled");
	ck_assert_int_eq(integer(json_object_get(b, "counts"), "succeeded") +
			     integer(json_object_get(b, "counts"), "cancelled"),
			 6);
	ck_assert_int_ge(integer(json_object_get(b, "counts"), "cancelled"), 4);
	ck_assert(json_is_string(json_object_get(b, "cancelled_at")));
	json_decref(b);
	json_decref(call("POST", path, NULL, 409));
	snprintf(path, sizeof(path), "/v1/batches/%s/report.md", id);
	ck_assert_int_eq(harness_http(parleyd.port, "GET", path, NULL, NULL, &md), 200);
	ck_assert_ptr_nonnull(strstr(md, "**Batch Status:** CANCELLED"));
	free(md);
	free(id);
}
END_TEST

static void bad(const char *body, const char *field)
{
	json_t *p = call("POST", "/v1/batches", body, 400), *e;
	size_t i;
	int found = 0;

	ck_assert_str_eq(json_string_value(json_object_get(p, "title")), "Bad Request");
	json_array_foreach(json_object_get(p, "errors"), i, e)
	{
		if (!strcmp(json_string_value(json_object_get(e, "field")), field))
			found = 1;
	}
	ck_assert_msg(found, "no error on '%s' in %s", field, json_dumps(p, 0));
	ck_assert_ptr_nonnull(strstr(harness_last_headers(), "application/problem+json"));
	json_decref(p);
}

#define IV "\"interviewer\":{\"model\":\"gemma3:1b\"},"
#define CANDS "\"candidates\":[{\"model\":\"x\"}],"
#define SCENS "\"scenarios\":[\"job_extraction_improvement\"]"

START_TEST(bad_batches_change_nothing)
{
	const char *idem[] = {"Idempotency-Key: k1", NULL};
	struct strbuf many;
	json_t *list;
	char *out = NULL;
	int i;

	bad("{" IV CANDS SCENS ",\"candidate\":{\"model\":\"x\"}}", "candidate");
	bad("{" IV SCENS "}", "candidates");
	bad("{" IV "\"candidates\":[]," SCENS "}", "candidates");
	bad("{" IV "\"candidates\":[{\"model\":\"x\"},{\"model\":\"x\"}]," SCENS "}",
	    "candidates[1]");
	bad("{" IV "\"candidates\":[{\"model\":\"x\",\"backend\":\"nope\"}]," SCENS "}",
	    "candidates[0].backend");
	bad("{" IV "\"candidates\":[{\"modle\":\"x\"}]," SCENS "}", "candidates[0].modle");
	bad("{" IV CANDS "\"scenarios\":[\"nope\"]}", "scenarios[0]");
	bad("{" IV CANDS "\"scenarios\":[\"job_extraction_improvement\","
	    "\"job_extraction_improvement\"]}",
	    "scenarios[1]");
	bad("{" IV CANDS "\"scenarios\":[{\"name\":\"x\",\"problem\":\"p\"}]}",
	    "scenarios[0].context");
	bad("{" IV CANDS SCENS ",\"repeat\":0}", "repeat");
	bad("{" IV CANDS SCENS ",\"max_turns\":2}", "max_turns");
	bad("{" IV CANDS SCENS ",\"scoring\":\"judge\"}", "judge");
	bad("{" IV CANDS SCENS ",\"judge\":{\"model\":\"j\"}}", "judge");
	bad("{" CANDS SCENS "}", "interviewer");
	/* more conversations than a batch holds */
	strbuf_init(&many, 0);
	strbuf_addstr(&many, "{" IV "\"candidates\":[");
	for (i = 0; i < 30; i++)
		strbuf_addf(&many, "%s{\"model\":\"m%d\"}", i ? "," : "", i);
	strbuf_addstr(&many, "],\"scenarios\":[\"job_extraction_improvement\","
			     "\"response_speed_optimization\"],\"repeat\":10}");
	bad(many.buf, "candidates");
	strbuf_release(&many);
	ck_assert_int_eq(
	    harness_http(parleyd.port, "POST", "/v1/batches", "{" IV CANDS SCENS "}", idem, &out),
	    400);
	ck_assert_ptr_nonnull(strstr(out, "Idempotency-Key"));
	free(out);
	/* nothing was created */
	list = call("GET", "/v1/batches", NULL, 200);
	ck_assert_uint_eq(json_array_size(json_object_get(list, "items")), 0);
	json_decref(list);
	list = call("GET", "/v1/jobs", NULL, 200);
	ck_assert_uint_eq(json_array_size(json_object_get(list, "items")), 0);
	json_decref(list);
	json_decref(call("GET", "/v1/batches/bnope", NULL, 404));
	ck_assert_int_eq(
	    harness_http(parleyd.port, "GET", "/v1/batches/bnope/report.md", NULL, NULL, NULL),
	    404);
	json_decref(call("POST", "/v1/batches/bnope/cancel", NULL, 404));
	json_decref(call("DELETE", "/v1/batches", NULL, 405));
	json_decref(call("GET", "/v1/optimizations?limit=0", NULL, 400));
}
END_TEST

/* The grade follows the schema the request carried: every required key, of its type and range. */
static void check_against_schema(const json_t *grade, const json_t *schema)
{
	json_t *props = json_object_get(schema, "properties"), *p, *v, *k;
	const char *key;
	size_t i;

	ck_assert_ptr_nonnull(props);
	json_array_foreach(json_object_get(schema, "required"), i, k)
	{
		ck_assert_msg(json_object_get(grade, json_string_value(k)) != NULL,
			      "the grade has no '%s'", json_string_value(k));
	}
	json_object_foreach(props, key, p)
	{
		const char *type = json_string_value(json_object_get(p, "type"));
		v = json_object_get(grade, key);
		ck_assert_ptr_nonnull(v);
		if (!strcmp(type, "integer")) {
			ck_assert(json_is_integer(v));
			ck_assert_int_ge(json_integer_value(v),
					 json_integer_value(json_object_get(p, "minimum")));
			ck_assert_int_le(json_integer_value(v),
					 json_integer_value(json_object_get(p, "maximum")));
		} else {
			ck_assert_str_eq(type, "string");
			ck_assert(json_is_string(v) && json_string_length(v) > 0);
			ck_assert_int_le(json_string_length(v),
					 json_integer_value(json_object_get(p, "maxLength")));
		}
	}
}

/* The judge's request in the fake's log (the last one for model). */
static json_t *judge_request(const char *model)
{
	json_t *log = NULL, *e, *found = NULL;
	size_t i;

	ck_assert_int_eq(harness_http_json(fake.port, "GET", "/_fake/requests", NULL, &log), 200);
	json_array_foreach(log, i, e)
	{
		const char *m = json_string_value(json_object_get(e, "model"));
		if (m && !strcmp(m, model)) {
			json_decref(found);
			found = json_incref(json_object_get(e, "body"));
		}
	}
	json_decref(log);
	ck_assert_msg(found != NULL, "no request for %s", model);
	return found;
}

static json_t *run_judged_job(const char *backend, const char *judge)
{
	char body[600], path[96];
	json_t *j, *job;

	snprintf(body, sizeof(body),
		 "{\"scenario\":\"response_speed_optimization\","
		 "\"interviewer\":{\"model\":\"gemma3:1b\",\"backend\":\"%s\"},"
		 "\"candidate\":{\"model\":\"gemma3n:latest\",\"backend\":\"%s\"},"
		 "\"scoring\":\"judge\",\"judge\":{\"model\":\"%s\",\"backend\":\"%s\"}}",
		 backend, backend, judge, backend);
	j = call("POST", "/v1/jobs", body, 202);
	ck_assert_str_eq(json_string_value(json_object_get(json_object_get(j, "judge"), "model")),
			 judge);
	snprintf(path, sizeof(path), "%s", json_string_value(json_object_get(j, "id")));
	json_decref(j);
	job = harness_wait_job(parleyd.port, path, 30000);
	ck_assert_ptr_nonnull(job);
	/* a judge never fails the job */
	ck_assert_str_eq(json_string_value(json_object_get(job, "status")), "succeeded");
	ck_assert_str_eq(json_string_value(json_object_get(job, "scoring")), "judge");
	return job;
}

START_TEST(judge_grades_through_structured_output)
{
	static const char *const backends[] = {"ollama", "llama"};
	static const char *const fields[] = {"format", "json_schema"};
	int k;

	for (k = 0; k < 2; k++) {
		json_t *job = run_judged_job(backends[k], "judge:1b");
		json_t *m = json_object_get(job, "metrics"), *g = json_object_get(m, "judge");
		json_t *req = judge_request("judge:1b"), *schema = json_object_get(req, fields[k]);

		/* the request asked for the grade's schema, in the backend's own field */
		ck_assert_msg(json_is_object(schema), "%s: no '%s' in the judge's request",
			      backends[k], fields[k]);
		ck_assert_ptr_null(json_object_get(req, fields[1 - k]));
		ck_assert_str_eq(json_string_value(json_object_get(
				     json_array_get(json_object_get(req, "messages"), 0), "role")),
				 "system");
		ck_assert_ptr_nonnull(
		    strstr(json_string_value(json_object_get(
			       json_array_get(json_object_get(req, "messages"), 1), "content")),
			   "=== Turn 3: interviewer (gemma3:1b) ==="));
		/* the stored grade follows that schema; the fake derives each number from its key
		 * (minimum + length of the name mod 11), so a mix-up would show */
		ck_assert_msg(json_is_object(g), "no judge in %s", json_dumps(m, 0));
		ck_assert_ptr_null(json_object_get(g, "error"));
		{
			json_t *grade = json_pack(
			    "{s:O, s:O, s:O, s:O}", "interview_quality_reasoning",
			    json_object_get(g, "interview_quality_reasoning"), "interview_quality",
			    json_object_get(g, "interview_quality"),
			    "candidate_engagement_reasoning",
			    json_object_get(g, "candidate_engagement_reasoning"),
			    "candidate_engagement", json_object_get(g, "candidate_engagement"));
			check_against_schema(grade, schema);
			json_decref(grade);
		}
		ck_assert_int_eq(integer(g, "interview_quality"),
				 (long)strlen("interview_quality") % 11);
		ck_assert_int_eq(integer(g, "candidate_engagement"),
				 (long)strlen("candidate_engagement") % 11);
		ck_assert_str_eq(json_string_value(json_object_get(g, "rubric_version")),
				 "parley-judge-rubric/1");
		ck_assert_str_eq(json_string_value(json_object_get(g, "backend")), backends[k]);
		/* beside the rubric scores, not instead of them */
		ck_assert(json_is_object(json_object_get(m, "scores")));
		ck_assert(json_is_number(json_object_get(m, "interview_quality")));
		json_decref(req);
		json_decref(job);
	}
}
END_TEST

START_TEST(judge_that_answers_garbage)
{
	json_t *job = run_judged_job("ollama", "judge-garbage");
	json_t *m = json_object_get(job, "metrics"), *g = json_object_get(m, "judge");

	ck_assert_ptr_nonnull(strstr(json_string_value(json_object_get(g, "error")), "not JSON"));
	ck_assert_ptr_nonnull(
	    strstr(json_string_value(json_object_get(g, "reply")), "maybe an 8 out of 10"));
	ck_assert_ptr_null(json_object_get(g, "interview_quality"));
	ck_assert(json_is_object(json_object_get(m, "scores")));
	ck_assert_int_eq(integer(m, "optimizations_found"), 3);
	json_decref(job);
	/* judge settings are checked like the rest */
	json_decref(call("POST", "/v1/jobs",
			 "{\"scenario\":\"response_speed_optimization\","
			 "\"interviewer\":{\"model\":\"a\"},\"candidate\":{\"model\":\"b\"},"
			 "\"scoring\":\"judge\",\"judge\":{\"model\":\"j\",\"backend\":\"nope\"}}",
			 400));
	json_decref(call("POST", "/v1/jobs",
			 "{\"scenario\":\"response_speed_optimization\","
			 "\"interviewer\":{\"model\":\"a\"},\"candidate\":{\"model\":\"b\"},"
			 "\"judge\":{\"model\":\"j\"}}",
			 400));
}
END_TEST

int main(void)
{
	Suite *s = suite_create("batches");
	TCase *tc = tcase_create("parleyd");
	SRunner *sr;
	int failed;

	harness_tmpdir();
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, two_by_three_by_hand);
	tcase_add_test(tc, compare_two_batches);
	tcase_add_test(tc, search_optimizations);
	tcase_add_test(tc, cancel_a_batch);
	tcase_add_test(tc, bad_batches_change_nothing);
	tcase_add_test(tc, judge_grades_through_structured_output);
	tcase_add_test(tc, judge_that_answers_garbage);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	harness_cleanup();
	return failed ? 1 : 0;
}
