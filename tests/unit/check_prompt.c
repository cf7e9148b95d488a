/*
 * check_prompt.c - what each model is sent: its own side of the conversation,
 * a prefix that never changes between turns, and where the conversation ends.
 */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "server/engine.h"
#include "server/prompt.h"

static const char scenario_text[] =
    "{\"name\":\"response_speed_optimization\",\"problem\":\"Model takes 45-60 seconds\","
    "\"context\":\"Real-time apps\",\"goal\":\"Reduce response time\"}";

static struct db_turn turn(int idx, const char *text)
{
	struct db_turn t;

	memset(&t, 0, sizeof(t));
	t.idx = idx;
	snprintf(t.role, sizeof(t.role), "%s", idx % 2 ? "interviewer" : "candidate");
	t.text = (char *)(uintptr_t)text;
	return t;
}

START_TEST(scenario_fills_the_system_prompts)
{
	json_t *s = json_loads(scenario_text, 0, NULL);
	struct prompts p;

	prompt_render(s, "gemma3:1b", "qwen:7b", 5, &p);
	ck_assert_ptr_nonnull(strstr(p.interviewer_system, "Model takes 45-60 seconds"));
	ck_assert_ptr_nonnull(strstr(p.interviewer_system, "qwen:7b"));
	ck_assert_ptr_nonnull(strstr(p.interviewer_system, "5 turns"));
	ck_assert_ptr_nonnull(strstr(p.candidate_system, "Reduce response time"));
	/* the analysis instructions sit in the cached prefix; the last turn adds a short cue */
	ck_assert_ptr_nonnull(strstr(p.interviewer_system, "3. Concrete suggestions (#test_this): "
							   "a numbered list"));
	ck_assert_ptr_nonnull(strstr(p.interviewer_system,
				     "\"**Short title** \xe2\x80\x94 what to change. "
				     "Test: how to measure"));
	ck_assert_ptr_nonnull(strcasestr(p.analysis, "final turn"));
	ck_assert_uint_lt(strlen(p.analysis), 200);
	prompt_release(&p);
	json_decref(s);
}
END_TEST

START_TEST(scenario_overrides_and_unknown_braces)
{
	json_t *s =
	    json_loads("{\"name\":\"x\",\"problem\":\"P\",\"context\":\"C\",\"goal\":\"G\","
		       "\"prompts\":{\"opening\":\"Hi {candidate_model}: {problem} {json}\"}}",
		       0, NULL);
	struct prompts p;

	prompt_render(s, "a", "b", 3, &p);
	ck_assert_str_eq(p.opening, "Hi b: P {json}");
	prompt_release(&p);
	json_decref(s);
}
END_TEST

START_TEST(each_side_sees_itself_as_assistant_and_the_prefix_is_stable)
{
	json_t *s = json_loads(scenario_text, 0, NULL);
	struct db_turn t[6] = {turn(1, "Q1"), turn(2, "A1"), turn(3, "Q2"),
			       turn(4, "A2"), turn(5, "Q3"), turn(6, "A3")};
	struct chat_msg m5[8], m7[10], m4[8], m6[10];
	struct strbuf scratch;
	struct prompts p;
	size_t n5, n7, n4, n6, i;

	strbuf_init(&scratch, 0);
	prompt_render(s, "i", "c", 7, &p);
	n5 = prompt_messages(&p, t, 4, 5, 0, m5, &scratch);
	ck_assert_uint_eq(n5, 6);
	ck_assert_str_eq(m5[0].role, "system");
	ck_assert_str_eq(m5[1].role, "user");
	ck_assert_str_eq(m5[2].role, "assistant");
	ck_assert_str_eq(m5[2].content, "Q1");
	ck_assert_str_eq(m5[3].role, "user");
	ck_assert_str_eq(m5[3].content, "A1");
	n7 = prompt_messages(&p, t, 6, 7, 1, m7, &scratch);
	ck_assert_uint_eq(n7, 8);
	/* every message sent on turn 5 is sent again, byte for byte, on turn 7 */
	for (i = 0; i < n5; i++) {
		ck_assert_str_eq(m5[i].role, m7[i].role);
		ck_assert_str_eq(m5[i].content, m7[i].content);
	}
	/* only the last message carries the analysis instruction */
	ck_assert_ptr_nonnull(strstr(m7[7].content, "A3"));
	ck_assert_ptr_nonnull(strstr(m7[7].content, "#test_this"));
	n4 = prompt_messages(&p, t, 3, 4, 0, m4, &scratch);
	ck_assert_uint_eq(n4, 4);
	ck_assert_str_eq(m4[1].role, "user");
	ck_assert_str_eq(m4[1].content, "Q1");
	ck_assert_str_eq(m4[2].role, "assistant");
	n6 = prompt_messages(&p, t, 5, 6, 0, m6, &scratch);
	ck_assert_uint_eq(n6, 6);
	for (i = 0; i < n4; i++)
		ck_assert_str_eq(m4[i].content, m6[i].content);
	prompt_release(&p);
	strbuf_release(&scratch);
	json_decref(s);
}
END_TEST

START_TEST(where_the_conversation_ends)
{
	struct db_turn t[3] = {turn(1, "Q1"), turn(2, "A1"),
			       turn(3, "I have enough. #stop_progress")};

	ck_assert_int_eq(engine_analysis_turn(3, NULL, 0), 3);
	ck_assert_int_eq(engine_last_turn(3, NULL, 0), 3);
	ck_assert_int_eq(engine_analysis_turn(4, NULL, 0), 3);
	ck_assert_int_eq(engine_last_turn(4, NULL, 0), 4);
	ck_assert_int_eq(engine_last_turn(9, NULL, 0), 9);
	/* an early #stop_progress on turn 3 of 9: the candidate answers, then the analysis */
	ck_assert_int_eq(engine_analysis_turn(9, t, 3), 5);
	ck_assert_int_eq(engine_last_turn(9, t, 3), 5);
	ck_assert_int_eq(engine_last_turn(10, t, 3), 5);
	/* a marker in the analysis itself changes nothing */
	ck_assert_int_eq(engine_last_turn(3, t, 3), 3);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("prompt");
	TCase *tc = tcase_create("messages");
	SRunner *sr;
	int failed;

	tcase_add_test(tc, scenario_fills_the_system_prompts);
	tcase_add_test(tc, scenario_overrides_and_unknown_braces);
	tcase_add_test(tc, each_side_sees_itself_as_assistant_and_the_prefix_is_stable);
	tcase_add_test(tc, where_the_conversation_ends);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
