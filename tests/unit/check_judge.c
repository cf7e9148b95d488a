/*
 * check_judge.c - the judge's schema, its prompt, and how its reply is
 * checked: a grade that follows the schema is taken, anything else is an
 * error that says what was wrong, never a made-up grade.
 */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "server/judge.h"

static json_t *parse_ok(const char *reply)
{
	struct perr e = {0};
	json_t *g = judge_parse(reply, &e);

	ck_assert_msg(g != NULL, "rejected %s: %s", reply, e.msg);
	return g;
}

static void parse_fails(const char *reply, const char *why)
{
	struct perr e = {0};
	json_t *g = judge_parse(reply, &e);

	ck_assert_msg(g == NULL, "accepted %s", reply);
	ck_assert_int_eq(e.code, PERR_BACKEND_PROTOCOL);
	ck_assert_msg(strstr(e.msg, why) != NULL, "error '%s' does not say '%s'", e.msg, why);
}

START_TEST(test_schema)
{
	json_t *s = judge_schema(), *props = json_object_get(s, "properties");
	json_t *req = json_object_get(s, "required");
	const char *key;
	json_t *p;
	size_t i = 0;

	ck_assert_str_eq(json_string_value(json_object_get(s, "type")), "object");
	ck_assert(json_is_false(json_object_get(s, "additionalProperties")));
	ck_assert_uint_eq(json_array_size(req), 4);
	/* reasoning comes before each grade, in the order a model writes them */
	json_object_foreach(props, key, p)
	{
		static const char *const order[] = {
		    "interview_quality_reasoning", "interview_quality",
		    "candidate_engagement_reasoning", "candidate_engagement"};
		ck_assert_str_eq(key, order[i]);
		ck_assert_str_eq(json_string_value(json_array_get(req, i)), order[i]);
		if (i % 2) {
			ck_assert_str_eq(json_string_value(json_object_get(p, "type")), "integer");
			ck_assert_int_eq(json_integer_value(json_object_get(p, "minimum")), 0);
			ck_assert_int_eq(json_integer_value(json_object_get(p, "maximum")), 10);
		} else {
			ck_assert_str_eq(json_string_value(json_object_get(p, "type")), "string");
		}
		i++;
	}
	ck_assert_uint_eq(i, 4);
	json_decref(s);
	/* the rubric names both grades and is versioned */
	ck_assert_ptr_nonnull(strstr(judge_rubric, "interview_quality:"));
	ck_assert_ptr_nonnull(strstr(judge_rubric, "candidate_engagement:"));
	ck_assert_ptr_nonnull(strstr(JUDGE_RUBRIC_VERSION, "/1"));
}
END_TEST

START_TEST(test_prompt_carries_the_transcript)
{
	struct db_turn t[2];
	struct strbuf sb;
	json_t *scen = json_pack("{s:s, s:s, s:s, s:s}", "name", "response_speed_optimization",
				 "problem", "Model takes 45-60 seconds", "context", "Real-time",
				 "goal", "Reduce response time");

	memset(t, 0, sizeof(t));
	t[0].idx = 1;
	snprintf(t[0].role, sizeof(t[0].role), "interviewer");
	t[0].model = "gemma3:1b";
	t[0].text = "How do you handle long documents today?";
	t[1].idx = 2;
	snprintf(t[1].role, sizeof(t[1].role), "candidate");
	t[1].model = "gemma3n:latest";
	t[1].text = "I chunk them into 512-token pieces.";
	strbuf_init(&sb, 0);
	judge_prompt(scen, t, 2, &sb);
	ck_assert_ptr_nonnull(strstr(sb.buf, "Problem: Model takes 45-60 seconds\n"));
	ck_assert_ptr_nonnull(strstr(sb.buf, "=== Turn 1: interviewer (gemma3:1b) ===\n"
					     "How do you handle long documents today?"));
	ck_assert_ptr_nonnull(strstr(sb.buf, "=== Turn 2: candidate (gemma3n:latest) ===\n"
					     "I chunk them into 512-token pieces."));
	strbuf_release(&sb);
	json_decref(scen);
}
END_TEST

START_TEST(test_parse_a_grade)
{
	json_t *g = parse_ok("{\"interview_quality_reasoning\":\"Four sections,\\n every "
			     "suggestion has a test.\",\"interview_quality\":8,"
			     "\"candidate_engagement_reasoning\":\"Gave numbers.\","
			     "\"candidate_engagement\":6}");

	ck_assert_int_eq(json_integer_value(json_object_get(g, "interview_quality")), 8);
	ck_assert_int_eq(json_integer_value(json_object_get(g, "candidate_engagement")), 6);
	/* one line of reasoning each */
	ck_assert_str_eq(json_string_value(json_object_get(g, "interview_quality_reasoning")),
			 "Four sections, every suggestion has a test.");
	ck_assert_uint_eq(json_object_size(g), 4);
	json_decref(g);
	/* 7.0 is a whole number too */
	g = parse_ok("{\"interview_quality_reasoning\":\"a\",\"interview_quality\":7.0,"
		     "\"candidate_engagement_reasoning\":\"b\",\"candidate_engagement\":0}");
	ck_assert_int_eq(json_integer_value(json_object_get(g, "interview_quality")), 7);
	json_decref(g);
}
END_TEST

START_TEST(test_parse_rejects_what_breaks_the_schema)
{
	parse_fails("I think the interview went well, maybe an 8 out of 10?", "is not JSON");
	parse_fails("", "is not JSON");
	parse_fails("[8, 6]", "not a JSON object");
	parse_fails("{\"interview_quality_reasoning\":\"a\",\"interview_quality\":8,"
		    "\"candidate_engagement_reasoning\":\"b\"}",
		    "no \"candidate_engagement\"");
	parse_fails("{\"interview_quality_reasoning\":\"a\",\"interview_quality\":11,"
		    "\"candidate_engagement_reasoning\":\"b\",\"candidate_engagement\":6}",
		    "not a whole number from 0 to 10");
	parse_fails("{\"interview_quality_reasoning\":\"a\",\"interview_quality\":7.5,"
		    "\"candidate_engagement_reasoning\":\"b\",\"candidate_engagement\":6}",
		    "7.5");
	parse_fails("{\"interview_quality_reasoning\":\"a\",\"interview_quality\":\"8\","
		    "\"candidate_engagement_reasoning\":\"b\",\"candidate_engagement\":6}",
		    "is not a number");
	parse_fails("{\"interview_quality_reasoning\":\"  \",\"interview_quality\":8,"
		    "\"candidate_engagement_reasoning\":\"b\",\"candidate_engagement\":6}",
		    "is empty");
	parse_fails("{\"interview_quality_reasoning\":\"a\",\"interview_quality\":8,"
		    "\"candidate_engagement_reasoning\":\"b\",\"candidate_engagement\":6,"
		    "\"overall\":7}",
		    "\"overall\"");
}
END_TEST

int main(void)
{
	Suite *s = suite_create("judge");
	TCase *tc = tcase_create("grade");
	SRunner *sr;
	int failed;

	tcase_add_test(tc, test_schema);
	tcase_add_test(tc, test_prompt_carries_the_transcript);
	tcase_add_test(tc, test_parse_a_grade);
	tcase_add_test(tc, test_parse_rejects_what_breaks_the_schema);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
