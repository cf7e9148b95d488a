/*
 * check_markdown.c - the Markdown report: origin layout byte for byte, then
 * what parley adds (timings, rich optimizations, scores, errors).
 *
 * Fixtures: $PARLEY_SHARED/fixtures/origin-phase2, else
 * ../shared/fixtures/origin-phase2 from the repository root.
 */
#include <check.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/markdown.h"
#include "db/util.h"
#include "tests/harness.h"

static void fixture_path(char *buf, size_t n, const char *name, const char *ext)
{
	char rel[256];

	snprintf(rel, sizeof(rel), "origin-phase2/%s%s", name, ext);
	harness_fixture_path(rel, buf, n);
}

/* strbuf_detach() leaves a fresh buffer in sb; release it too. */
static char *detach(struct strbuf *sb)
{
	char *s = strbuf_detach(sb, NULL);

	strbuf_release(sb);
	return s;
}

static char *read_all(const char *path)
{
	FILE *f = fopen(path, "rb");
	struct strbuf sb;
	char chunk[4096];
	size_t got;

	ck_assert_msg(f != NULL, "cannot open '%s'", path);
	strbuf_init(&sb, 8192);
	while ((got = fread(chunk, 1, sizeof(chunk), f)) > 0)
		strbuf_add(&sb, chunk, got);
	fclose(f);
	return detach(&sb);
}

static json_t *load_json(const char *name)
{
	char path[1024];
	json_error_t err;
	json_t *j;

	fixture_path(path, sizeof(path), name, ".json");
	j = json_load_file(path, 0, &err);
	ck_assert_msg(j != NULL, "cannot parse '%s': %s", path, err.text);
	return j;
}

static char *render(const json_t *t)
{
	struct strbuf sb;

	strbuf_init(&sb, 16384);
	markdown_render_transcript(t, &sb);
	return detach(&sb);
}

/* Where a and b first differ, for a readable failure. */
static size_t first_diff(const char *a, const char *b)
{
	size_t i = 0;

	while (a[i] && a[i] == b[i])
		i++;
	return i;
}

START_TEST(test_origin_byte_exact)
{
	char path[1024];
	json_t *t = load_json(harness_origin[_i]);
	char *want, *got;
	size_t d;

	fixture_path(path, sizeof(path), harness_origin[_i], ".md");
	want = read_all(path);
	got = render(t);
	d = first_diff(want, got);
	ck_assert_msg(strcmp(want, got) == 0,
		      "%s differs at byte %zu: want \"%.40s\" got \"%.40s\"", harness_origin[_i], d,
		      want + d, got + d);
	free(want);
	free(got);
	json_decref(t);
}
END_TEST

/* A transcript in parley's own shape: metrics on the turns, rich optimizations. */
static json_t *parley_transcript(void)
{
	json_t *t = load_json("response_speed_optimization_gemma3n_latest");
	json_t *conv = json_object_get(t, "conversation"); /* borrowed */
	json_t *opts = json_array();

	json_object_set_new(json_array_get(conv, 0), "metrics",
			    json_pack("{s:f, s:i, s:i, s:i, s:f, s:f, s:f, s:n, s:s, s:i}",
				      "ttft_ms", 212.4, "prompt_tokens", 812, "cached_tokens", 768,
				      "completion_tokens", 230, "prompt_ms", 120.2, "gen_ms",
				      3201.7, "tokens_per_s", 71.86, "load_ms", "finish_reason",
				      "stop", "attempts", 1));
	/* the candidate's backend said nothing: every metric unknown */
	json_object_set_new(json_array_get(conv, 1), "metrics",
			    json_pack("{s:n, s:n, s:n, s:n, s:n, s:n, s:n, s:n, s:n, s:n}",
				      "ttft_ms", "prompt_tokens", "cached_tokens",
				      "completion_tokens", "prompt_ms", "gen_ms", "tokens_per_s",
				      "load_ms", "finish_reason", "attempts"));
	/* prompt tokens known, cache unknown */
	json_object_set_new(json_array_get(conv, 2), "metrics",
			    json_pack("{s:i, s:n}", "prompt_tokens", 1500, "cached_tokens"));
	json_array_append_new(
	    opts,
	    json_pack("{s:s, s:s, s:s, s:s, s:s, s:i}", "suggestion",
		      "* **Implement a Knowledge Graph Interface:** Instead ... *Test: Replace*",
		      "extracted_at", "2025-07-17T12:04:04.432155", "title",
		      "Implement a Knowledge Graph Interface", "detail",
		      "Build a knowledge graph of the concepts.", "test",
		      "Replace the retrieval process, measuring the time reduction.", "turn", 3));
	json_array_append_new(opts, json_pack("{s:s, s:s, s:s}", "suggestion",
					      "* **Gradient Accumulation:**", "extracted_at", "x",
					      "title", "Gradient Accumulation"));
	json_object_set_new(t, "optimizations_discovered", opts);
	return t;
}

START_TEST(test_timings_table)
{
	json_t *t = parley_transcript();
	char *md = render(t);
	const char *sec = strstr(md, "\n## ⏱️ Turn Timings\n\n");

	ck_assert_msg(sec != NULL, "no timings section:\n%s", md);
	/* it comes after everything of the origin layout */
	ck_assert(sec > strstr(md, "## 🎯 Optimizations Discovered"));
	ck_assert_ptr_nonnull(strstr(sec,
				     "| Turn | Speaker | Model | Wall s | TTFT ms | "
				     "Prompt tokens (cached) | Completion tokens | Prompt ms | "
				     "Gen ms | Tok/s |\n"));
	ck_assert_ptr_nonnull(
	    strstr(sec, "| 1 | interviewer | gemma3:1b | 1.3 | 212 | 812 (768) | 230 | 120 | 3202 "
			"| 71.9 |\n"));
	/* unknown metrics are a dash, the wall time is still known */
	ck_assert_ptr_nonnull(
	    strstr(sec, "| 2 | candidate | gemma3n:latest | 41.2 | — | — | — | — | — | — |\n"));
	ck_assert_ptr_nonnull(
	    strstr(sec, "| 3 | interviewer | gemma3:1b | 16.0 | — | 1500 (—) | — | — | — | — |\n"));
	free(md);
	json_decref(t);
}
END_TEST

START_TEST(test_no_metrics_no_table)
{
	json_t *t = load_json("response_speed_optimization_gemma2_latest");
	char *md = render(t);

	ck_assert_ptr_null(strstr(md, "Turn Timings"));
	/* no optimizations: the origin left the section out */
	ck_assert_ptr_null(strstr(md, "Optimizations Discovered"));
	free(md);
	json_decref(t);
}
END_TEST

START_TEST(test_rich_optimizations)
{
	json_t *t = parley_transcript();
	char *md = render(t);

	ck_assert_ptr_nonnull(strstr(md,
				     "\n## 🎯 Optimizations Discovered\n\n"
				     "1. **Implement a Knowledge Graph Interface** — Build a "
				     "knowledge graph of the concepts.\n"
				     "   - Test: Replace the retrieval process, measuring the time "
				     "reduction.\n"
				     "2. **Gradient Accumulation**\n"));
	free(md);
	json_decref(t);
}
END_TEST

START_TEST(test_origin_titles_stay_raw)
{
	/* an origin extraction stored with title == suggestion renders as the origin did */
	json_t *t = load_json("response_speed_optimization_gemma3n_latest");
	json_t *o = json_array_get(json_object_get(t, "optimizations_discovered"), 0);
	char path[1024];
	char *want, *got;

	json_object_set(o, "title", json_object_get(o, "suggestion"));
	json_object_set_new(o, "turn", json_integer(3));
	fixture_path(path, sizeof(path), "response_speed_optimization_gemma3n_latest", ".md");
	want = read_all(path);
	got = render(t);
	ck_assert_str_eq(want, got);
	free(want);
	free(got);
	json_decref(t);
}
END_TEST

START_TEST(test_goal_preferred_over_description)
{
	json_t *t = load_json("response_speed_optimization_gemma3n_latest");
	char *md;

	json_object_set_new(json_object_get(t, "scenario"), "goal", json_string("Answer in 15 s"));
	md = render(t);
	ck_assert_ptr_nonnull(strstr(md, "**Goal:** Answer in 15 s\n\n"));
	free(md);
	json_decref(t);
}
END_TEST

START_TEST(test_scores_and_error)
{
	json_t *t = parley_transcript();
	json_t *comps = json_pack(
	    "{s:{s:f, s:[{s:s, s:f, s:f, s:s}]}, s:{s:f, s:[{s:s, s:f, s:f, s:s}]}}",
	    "interview_quality", "total", 3.0, "components", "name", "suggestions", "points", 3.0,
	    "max", 3.0, "why", "6 suggestions | extracted", "candidate_engagement", "total", 2.5,
	    "components", "name", "substance", "points", 2.5, "max", 2.5, "why", "long answer");
	char *md;
	const char *timings, *scores, *error;

	json_object_set_new(t, "scores", comps);
	json_object_set_new(t, "status", json_string("failed"));
	json_object_set_new(t, "error",
			    json_pack("{s:s, s:s}", "code", "backend_down", "message",
				      "cannot reach ollama at http://127.0.0.1:11434"));
	md = render(t);
	timings = strstr(md, "## ⏱️ Turn Timings");
	scores = strstr(md, "\n## 🧮 Score Breakdown\n\n**Interview Quality:** 3.0/10\n\n");
	error = strstr(md, "\n## ⚠️ Error\n\n**backend_down:** cannot reach ollama at "
			   "http://127.0.0.1:11434\n");
	ck_assert_ptr_nonnull(timings);
	ck_assert_msg(scores != NULL, "no score section:\n%s", md);
	ck_assert_ptr_nonnull(error);
	ck_assert(scores > timings);
	ck_assert(error > scores);
	ck_assert_ptr_nonnull(
	    strstr(scores, "| suggestions | 3.0/3.0 | 6 suggestions \\| extracted |\n"));
	ck_assert_ptr_nonnull(strstr(scores, "**Candidate Engagement:** 2.5/10\n"));
	/* the report ends with one newline */
	ck_assert_int_eq(md[strlen(md) - 1], '\n');
	ck_assert_int_ne(md[strlen(md) - 2], '\n');
	free(md);
	json_decref(t);
}
END_TEST

START_TEST(test_error_only_when_failed)
{
	json_t *t = load_json("response_speed_optimization_gemma3n_latest");
	char *md;

	json_object_set_new(t, "status", json_string("succeeded"));
	json_object_set_new(t, "error", json_pack("{s:s, s:s}", "code", "x", "message", "y"));
	md = render(t);
	ck_assert_ptr_null(strstr(md, "Error"));
	free(md);
	json_decref(t);
}
END_TEST

START_TEST(test_empty_transcript)
{
	/* a job that failed before any turn still renders, with empty fields */
	json_t *t = json_pack("{s:s, s:{s:s, s:s}}", "status", "failed", "error", "code",
			      "model_missing", "message", "model 'x' not found");
	char *md = render(t);

	ck_assert_ptr_nonnull(strstr(md, "# AI-to-AI Optimization Conversation\n\n"));
	ck_assert_ptr_nonnull(strstr(md, "## 💬 Conversation Log\n\n"));
	ck_assert_ptr_nonnull(strstr(md, "**model_missing:** model 'x' not found\n"));
	free(md);
	json_decref(t);
}
END_TEST

static Suite *markdown_suite(void)
{
	Suite *s = suite_create("markdown");
	TCase *tc = tcase_create("origin");

	tcase_add_loop_test(tc, test_origin_byte_exact, 0, HARNESS_NORIGIN);
	tcase_add_test(tc, test_origin_titles_stay_raw);
	tcase_add_test(tc, test_no_metrics_no_table);
	suite_add_tcase(s, tc);
	tc = tcase_create("parley");
	tcase_add_test(tc, test_timings_table);
	tcase_add_test(tc, test_rich_optimizations);
	tcase_add_test(tc, test_goal_preferred_over_description);
	tcase_add_test(tc, test_scores_and_error);
	tcase_add_test(tc, test_error_only_when_failed);
	tcase_add_test(tc, test_empty_transcript);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(markdown_suite());
	int failed;

	harness_shared_note("check_markdown");
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
