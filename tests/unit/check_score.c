/*
 * check_score.c - conversation scores: the origin's numbers reproduced, the
 * rubric deterministic, bounded, explained, and ordered the way a reader
 * would order the conversations.
 *
 * Fixtures: $PARLEY_SHARED/fixtures/origin-phase2, else
 * ../shared/fixtures/origin-phase2 from the repository root.
 */
#include <check.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db/util.h"
#include "tests/harness.h"
#include "server/score.h"

/* A fixture turned into score input; everything borrowed from json. */
struct conv {
	json_t *json;
	struct score_turn turns[8];
	struct optim_list optims;
	struct score_input in;
};

static void conv_load(struct conv *c, const char *name, enum extract_method m)
{
	char rel[256], path[1024];
	json_error_t err;
	const json_t *conv, *t, *sc;
	size_t i;

	snprintf(rel, sizeof(rel), "origin-phase2/%s.json", name);
	harness_fixture_path(rel, path, sizeof(path));
	c->json = json_load_file(path, 0, &err);
	ck_assert_msg(c->json != NULL, "cannot load '%s': %s", path, err.text);
	conv = json_object_get(c->json, "conversation");
	ck_assert_uint_le(json_array_size(conv), ARRAY_SIZE(c->turns));
	optim_list_init(&c->optims);
	json_array_foreach(conv, i, t)
	{
		c->turns[i].role = json_string_value(json_object_get(t, "speaker"));
		c->turns[i].text = json_string_value(json_object_get(t, "message"));
		c->turns[i].duration_s = json_number_value(json_object_get(t, "duration"));
		if (!strcmp(c->turns[i].role, "interviewer"))
			extract_optimizations(m, c->turns[i].text, (int)i + 1, &c->optims);
	}
	sc = json_object_get(c->json, "scenario");
	memset(&c->in, 0, sizeof(c->in));
	c->in.turns = c->turns;
	c->in.nturns = json_array_size(conv);
	c->in.optims = &c->optims;
	c->in.problem = json_string_value(json_object_get(sc, "problem"));
	/* the origin JSON calls the goal "description" */
	c->in.goal = json_string_value(json_object_get(sc, "description"));
}

static void conv_release(struct conv *c)
{
	optim_list_release(&c->optims);
	json_decref(c->json);
}

static double metric(const struct conv *c, const char *key)
{
	return json_number_value(json_object_get(json_object_get(c->json, "success_metrics"), key));
}

START_TEST(test_origin_reproduced)
{
	struct conv c;
	struct score_result r;

	conv_load(&c, harness_origin[_i], EXTRACT_ORIGIN);
	score_conversation(SCORE_ORIGIN, &c.in, &r);
	ck_assert_msg(r.interview_quality == metric(&c, "interview_quality"),
		      "%s: interview quality %.1f, origin %.1f", harness_origin[_i],
		      r.interview_quality, metric(&c, "interview_quality"));
	ck_assert_msg(r.candidate_engagement == metric(&c, "candidate_engagement"),
		      "%s: engagement %.1f, origin %.1f", harness_origin[_i],
		      r.candidate_engagement, metric(&c, "candidate_engagement"));
	ck_assert_ptr_null(r.components);
	score_result_release(&r);
	conv_release(&c);
}
END_TEST

START_TEST(test_origin_rules)
{
	struct score_turn turns[] = {{"interviewer", "Hi?", 1.0},
				     {"candidate", "a", 10.0},
				     {"interviewer", "b", 1.0},
				     {"candidate", "c", 40.0}};
	struct optim_list l;
	struct score_input in = {turns, ARRAY_SIZE(turns), &l, NULL, NULL};
	struct score_result r;
	size_t i;

	optim_list_init(&l);
	/* per-turn rule averaged over the candidate's turns */
	score_conversation(SCORE_ORIGIN, &in, &r);
	ck_assert(r.interview_quality == 7.0);
	ck_assert(r.candidate_engagement == 7.5);
	/* 7 + found, capped at 10 */
	for (i = 0; i < 5; i++)
		extract_optimizations(EXTRACT_ORIGIN, "#test_this", 3, &l);
	score_conversation(SCORE_ORIGIN, &in, &r);
	ck_assert(r.interview_quality == 10.0);
	/* exactly 30 s is not under 30 s */
	turns[1].duration_s = 30.0;
	in.nturns = 2;
	score_conversation(SCORE_ORIGIN, &in, &r);
	ck_assert(r.candidate_engagement == 7.0);
	turns[1].duration_s = 29.9;
	score_conversation(SCORE_ORIGIN, &in, &r);
	ck_assert(r.candidate_engagement == 8.0);
	score_result_release(&r);
	optim_list_release(&l);
}
END_TEST

/* Checks one score's components: bounded, maxima 10, points adding to the total. */
static void check_part(const json_t *part, double total, const char *what)
{
	const json_t *comps = json_object_get(part, "components"), *c;
	double sum = 0, max = 0;
	size_t i;

	ck_assert_msg(json_is_array(comps) && json_array_size(comps) >= 4, "%s: components", what);
	ck_assert_msg(fabs(json_number_value(json_object_get(part, "total")) - total) < 1e-9,
		      "%s: total in JSON differs", what);
	json_array_foreach(comps, i, c)
	{
		double p = json_number_value(json_object_get(c, "points"));
		double m = json_number_value(json_object_get(c, "max"));
		const char *why = json_string_value(json_object_get(c, "why"));

		ck_assert_ptr_nonnull(json_string_value(json_object_get(c, "name")));
		ck_assert_msg(why && *why, "%s: component without a why", what);
		ck_assert_msg(p >= 0 && p <= m + 1e-9, "%s: %s has %.2f of %.2f", what,
			      json_string_value(json_object_get(c, "name")), p, m);
		/* one decimal */
		ck_assert(fabs(p * 10 - round(p * 10)) < 1e-6);
		sum += p;
		max += m;
	}
	ck_assert_msg(fabs(max - 10.0) < 1e-9, "%s: maxima add to %.2f", what, max);
	ck_assert_msg(fabs(sum - total) < 1e-6, "%s: components %.2f, total %.2f", what, sum,
		      total);
	ck_assert(total >= 0 && total <= 10);
}

START_TEST(test_rubric_bounded_and_explained)
{
	struct conv c;
	struct score_result a, b;
	char *ja, *jb;

	conv_load(&c, harness_origin[_i], EXTRACT_RUBRIC);
	score_conversation(SCORE_RUBRIC, &c.in, &a);
	score_conversation(SCORE_RUBRIC, &c.in, &b);
	ck_assert_ptr_nonnull(a.components);
	check_part(json_object_get(a.components, "interview_quality"), a.interview_quality,
		   harness_origin[_i]);
	check_part(json_object_get(a.components, "candidate_engagement"), a.candidate_engagement,
		   harness_origin[_i]);
	/* deterministic: same input, same numbers and same explanations */
	ck_assert(a.interview_quality == b.interview_quality);
	ck_assert(a.candidate_engagement == b.candidate_engagement);
	ja = json_dumps(a.components, JSON_SORT_KEYS);
	jb = json_dumps(b.components, JSON_SORT_KEYS);
	ck_assert_str_eq(ja, jb);
	/* every origin analysis has its four sections and real suggestions */
	ck_assert_msg(a.interview_quality >= 5.0, "%s: %.1f", harness_origin[_i],
		      a.interview_quality);
	free(ja);
	free(jb);
	score_result_release(&a);
	score_result_release(&b);
	conv_release(&c);
}
END_TEST

START_TEST(test_judge_falls_back_to_rubric)
{
	struct conv c;
	struct score_result a, b;

	conv_load(&c, "response_speed_optimization_gemma3n_latest", EXTRACT_RUBRIC);
	score_conversation(SCORE_RUBRIC, &c.in, &a);
	score_conversation(SCORE_JUDGE, &c.in, &b);
	ck_assert(a.interview_quality == b.interview_quality);
	ck_assert(a.candidate_engagement == b.candidate_engagement);
	ck_assert(json_equal(a.components, b.components));
	score_result_release(&a);
	score_result_release(&b);
	conv_release(&c);
}
END_TEST

static double component_points(const json_t *comps, const char *part, const char *name)
{
	const json_t *arr = json_object_get(json_object_get(comps, part), "components"), *c;
	size_t i;

	json_array_foreach(arr, i, c)
	{
		if (!strcmp(json_string_value(json_object_get(c, "name")), name))
			return json_number_value(json_object_get(c, "points"));
	}
	ck_abort_msg("no component '%s'", name);
	return -1;
}

START_TEST(test_suggestions_with_tests_score_higher)
{
	struct conv c;
	struct score_result with, without;
	const char *analysis;

	/* six suggestions, each with a test */
	conv_load(&c, "response_speed_optimization_gemma3n_latest", EXTRACT_RUBRIC);
	ck_assert_uint_eq(c.optims.n, 6);
	score_conversation(SCORE_RUBRIC, &c.in, &with);
	ck_assert(component_points(with.components, "interview_quality", "suggestions") == 3.0);
	ck_assert(component_points(with.components, "interview_quality", "tested_suggestions") ==
		  2.0);

	/* the same conversation closing with a vague analysis and nothing to try */
	analysis = "**1. Analysis of the approach**\n\nIt is fine.\n\n**4. Reasoning**\n\nIt is "
		   "fine.\n";
	c.turns[2].text = analysis;
	optim_list_release(&c.optims);
	extract_optimizations(EXTRACT_RUBRIC, analysis, 3, &c.optims);
	ck_assert_uint_eq(c.optims.n, 0);
	score_conversation(SCORE_RUBRIC, &c.in, &without);
	ck_assert_msg(with.interview_quality > without.interview_quality + 4.0, "%.1f vs %.1f",
		      with.interview_quality, without.interview_quality);
	ck_assert(component_points(without.components, "interview_quality", "analysis_sections") ==
		  1.0);
	/* the candidate said the same either way */
	ck_assert(with.candidate_engagement == without.candidate_engagement);
	score_result_release(&with);
	score_result_release(&without);
	conv_release(&c);
}
END_TEST

START_TEST(test_substantive_answer_scores_higher)
{
	struct conv c;
	struct score_result good, poor;

	conv_load(&c, "job_extraction_improvement_gemma2_latest", EXTRACT_RUBRIC);
	score_conversation(SCORE_RUBRIC, &c.in, &good);
	c.turns[1].text = "I am not sure, it works fine I guess.";
	score_conversation(SCORE_RUBRIC, &c.in, &poor);
	ck_assert_msg(good.candidate_engagement > poor.candidate_engagement + 4.0, "%.1f vs %.1f",
		      good.candidate_engagement, poor.candidate_engagement);
	ck_assert(component_points(poor.components, "candidate_engagement", "substance") == 0.0);
	ck_assert(good.interview_quality == poor.interview_quality);
	score_result_release(&good);
	score_result_release(&poor);
	conv_release(&c);
}
END_TEST

START_TEST(test_specific_answer_scores_higher)
{
	/* same length, one names numbers, techniques and steps tied to the scenario */
	static const char *const vague =
	    "We look at the request and then we think about it for a while and produce an answer "
	    "that is as good as we can make it, and sometimes it takes longer than we would like "
	    "because there is a lot to consider in each request that comes in from the users.";
	static const char *const specific =
	    "1. We tokenize the prompt (about 3,000 tokens) and run a 7B model on one GPU.\n"
	    "2. Retrieval pulls 20 documents from a FAISS index; that step takes 12 seconds.\n"
	    "3. Generation runs at 25 tokens/s, so complex analysis takes 45-60 seconds.\n"
	    "Caching the system prompt and quantizing to Q4 would reduce response time.";
	struct score_turn turns[] = {
	    {"interviewer", "What is your current approach to complex analysis?", 1.0},
	    {"candidate", vague, 20.0},
	    {"interviewer", "**1. Analysis**\n\nok\n", 10.0}};
	struct score_input in = {turns, ARRAY_SIZE(turns), NULL,
				 "Model takes 45-60 seconds for complex analysis",
				 "Reduce response time while maintaining quality"};
	struct score_result a, b;

	score_conversation(SCORE_RUBRIC, &in, &a);
	turns[1].text = specific;
	score_conversation(SCORE_RUBRIC, &in, &b);
	ck_assert_msg(b.candidate_engagement > a.candidate_engagement + 3.0, "%.1f vs %.1f",
		      b.candidate_engagement, a.candidate_engagement);
	ck_assert(component_points(b.components, "candidate_engagement", "numbers") == 1.5);
	ck_assert(component_points(a.components, "candidate_engagement", "numbers") == 0.0);
	ck_assert(component_points(b.components, "candidate_engagement", "named_techniques") >
		  component_points(a.components, "candidate_engagement", "named_techniques"));
	/* no optimizations list at all is zero suggestions, not a crash */
	ck_assert(component_points(a.components, "interview_quality", "suggestions") == 0.0);
	score_result_release(&a);
	score_result_release(&b);
}
END_TEST

START_TEST(test_empty_conversation)
{
	struct score_input in = {NULL, 0, NULL, NULL, NULL};
	struct score_result r;

	score_conversation(SCORE_RUBRIC, &in, &r);
	ck_assert(r.interview_quality >= 0 && r.interview_quality <= 10);
	ck_assert(r.candidate_engagement == 0.0);
	check_part(json_object_get(r.components, "interview_quality"), r.interview_quality,
		   "empty");
	check_part(json_object_get(r.components, "candidate_engagement"), r.candidate_engagement,
		   "empty");
	score_result_release(&r);
	score_conversation(SCORE_ORIGIN, &in, &r);
	ck_assert(r.interview_quality == 7.0);
	score_result_release(&r);
}
END_TEST

START_TEST(test_method_names)
{
	enum score_method m;

	ck_assert_int_eq(score_method_parse("rubric", &m), 0);
	ck_assert_int_eq(m, SCORE_RUBRIC);
	ck_assert_int_eq(score_method_parse("origin", &m), 0);
	ck_assert_int_eq(m, SCORE_ORIGIN);
	ck_assert_int_eq(score_method_parse("judge", &m), 0);
	ck_assert_int_eq(m, SCORE_JUDGE);
	ck_assert_int_eq(score_method_parse("Rubric ", &m), -1);
	ck_assert_int_eq(score_method_parse(NULL, &m), -1);
	ck_assert_str_eq(score_method_name(SCORE_RUBRIC), "rubric");
	ck_assert_str_eq(score_method_name(SCORE_ORIGIN), "origin");
	ck_assert_str_eq(score_method_name(SCORE_JUDGE), "judge");
}
END_TEST

static Suite *score_suite(void)
{
	Suite *s = suite_create("score");
	TCase *tc = tcase_create("origin");

	tcase_add_loop_test(tc, test_origin_reproduced, 0, HARNESS_NORIGIN);
	tcase_add_test(tc, test_origin_rules);
	suite_add_tcase(s, tc);
	tc = tcase_create("rubric");
	tcase_add_loop_test(tc, test_rubric_bounded_and_explained, 0, HARNESS_NORIGIN);
	tcase_add_test(tc, test_judge_falls_back_to_rubric);
	tcase_add_test(tc, test_suggestions_with_tests_score_higher);
	tcase_add_test(tc, test_substantive_answer_scores_higher);
	tcase_add_test(tc, test_specific_answer_scores_higher);
	tcase_add_test(tc, test_empty_conversation);
	tcase_add_test(tc, test_method_names);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(score_suite());
	int failed;

	harness_shared_note("check_score");
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
