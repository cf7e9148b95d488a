/*
 * check_proposal.c - proposals as interviewers write them: markers in bold,
 * at the end of a sentence, in any case; fences with and without a language
 * tag, ``` and ~~~, CRLF; and every proposal that cannot be used comes back
 * unusable with a reason, never as something to test.
 */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "server/proposal.h"

/* Parses msg and expects n proposals. */
static struct proposals parse(const char *msg, size_t n)
{
	struct proposals ps;

	proposal_parse(msg, &ps);
	ck_assert_msg(ps.n == n, "%zu proposals, want %zu, in: %s", ps.n, n, msg);
	return ps;
}

static void prompt_is(const char *msg, const char *system, const char *template)
{
	struct proposals ps = parse(msg, 1);
	struct proposal *p = &ps.v[0];

	ck_assert_int_eq(p->kind, PROPOSAL_PROMPT);
	ck_assert_msg(p->usable, "unusable (%s): %s", p->reason, msg);
	if (system)
		ck_assert_str_eq(p->system, system);
	else
		ck_assert_ptr_null(p->system);
	if (template)
		ck_assert_str_eq(p->template, template);
	else
		ck_assert_ptr_null(p->template);
	proposals_release(&ps);
}

static void unusable(const char *msg, enum proposal_kind kind, const char *why)
{
	struct proposals ps = parse(msg, 1);

	ck_assert_int_eq(ps.v[0].kind, kind);
	ck_assert_msg(!ps.v[0].usable, "usable: %s", msg);
	ck_assert_msg(strstr(ps.v[0].reason, why), "reason '%s' does not say '%s'", ps.v[0].reason,
		      why);
	proposals_release(&ps);
}

START_TEST(test_prompt_shapes)
{
	prompt_is("Try this.\n#prompt_defined\n```\nBe brief.\n```\n", "Be brief.", NULL);
	prompt_is("#prompt_defined\n```text\nBe brief.\nAnswer in JSON.\n```",
		  "Be brief.\nAnswer in JSON.", NULL);
	prompt_is("**#prompt_defined**\n\n~~~\nBe brief.\n~~~\n", "Be brief.", NULL);
	prompt_is("Here is the new prompt I want tested #prompt_defined.\n\n```markdown\nBe "
		  "brief.\n```",
		  "Be brief.", NULL);
	prompt_is("#Prompt_Defined:\n```\nBe brief.\n```", "Be brief.", NULL);
	prompt_is("#prompt-defined\n```\nBe brief.\n```", "Be brief.", NULL);
	prompt_is("#prompt defined\n```\nBe brief.\n```", "Be brief.", NULL);
	prompt_is("#prompt_defined\r\n```\r\nBe brief.\r\nNo preamble.\r\n```\r\n",
		  "Be brief.\nNo preamble.", NULL);
	/* an indented fence, as in a list item, and a longer closing fence */
	prompt_is("1. #prompt_defined\n   ```\n   Be brief.\n   ```` \n", "Be brief.", NULL);
	/* a four-backtick fence may hold a three-backtick one */
	prompt_is("#prompt_defined\n````\nReply as:\n```json\n{}\n```\n````",
		  "Reply as:\n```json\n{}\n```", NULL);
}
END_TEST

START_TEST(test_prompt_with_template)
{
	prompt_is("#prompt_defined\n```\nExtract skills.\ntemplate: Job: {input}\nJSON only.\n```",
		  "Extract skills.", "Job: {input}\nJSON only.");
	prompt_is("#prompt_defined\n```\nExtract skills.\nTemplate:\nJob:\n{input}\n```",
		  "Extract skills.", "Job:\n{input}");
	/* only a template: the system prompt stays as it is */
	prompt_is("#prompt_defined\n```\ntemplate: Q: {input}\n```", NULL, "Q: {input}");
	unusable("#prompt_defined\n```\nBe brief.\ntemplate: Q: (input)\n```", PROPOSAL_PROMPT,
		 "no {input}");
}
END_TEST

START_TEST(test_prompt_unusable)
{
	char *big;
	size_t n = 17000;

	unusable("#prompt_defined\nBe brief.\n", PROPOSAL_PROMPT, "not followed by a fenced");
	unusable("#prompt_defined\n```\n\n   \n```\n", PROPOSAL_PROMPT, "empty");
	unusable("#prompt_defined\n```\nBe brief.\n", PROPOSAL_PROMPT, "not closed");
	big = malloc(n + 64);
	strcpy(big, "#prompt_defined\n```\n");
	memset(big + strlen(big), 'x', n);
	strcpy(big + 20 + n, "\n```\n");
	unusable(big, PROPOSAL_PROMPT, "longer than 16 KiB");
	free(big);
}
END_TEST

START_TEST(test_setting_shapes)
{
	static const char *const shapes[] = {
	    "#test_setting {\"num_predict\": 64}",
	    "#test_setting: {\"num_predict\": 64} and see what happens.",
	    "**#test_setting** `{\"num_predict\": 64}`",
	    "Let us cap the length #test_setting\n```json\n{\"num_predict\": 64}\n```",
	    "#TEST_SETTING\n~~~\n{\"num_predict\": 64}\n~~~",
	    "#test_setting\r\n\r\n{\"num_predict\":\r\n 64}\r\n",
	};
	size_t i;

	for (i = 0; i < sizeof(shapes) / sizeof(shapes[0]); i++) {
		struct proposals ps = parse(shapes[i], 1);
		ck_assert_int_eq(ps.v[0].kind, PROPOSAL_SETTING);
		ck_assert_msg(ps.v[0].usable, "%s: %s", shapes[i], ps.v[0].reason);
		ck_assert_int_eq(
		    json_integer_value(json_object_get(ps.v[0].options, "num_predict")), 64);
		proposals_release(&ps);
	}
}
END_TEST

START_TEST(test_setting_unusable)
{
	unusable("#test_setting {\"num_predict\": 64,}", PROPOSAL_SETTING, "not valid JSON");
	unusable("#test_setting {\"top_q\": 0.5}", PROPOSAL_SETTING,
		 "options.top_q: unknown option");
	unusable("#test_setting {\"temperature\": 5}", PROPOSAL_SETTING,
		 "options.temperature: must be a number from 0 to 2");
	unusable("#test_setting {}", PROPOSAL_SETTING, "non-empty");
	unusable("#test_setting\n```\n[1, 2]\n```", PROPOSAL_SETTING, "non-empty JSON object");
	unusable("#test_setting lower the temperature please", PROPOSAL_SETTING,
		 "not followed by a JSON object");
	unusable("#test_setting {\"seed\": 1, \"seed\": 2}", PROPOSAL_SETTING, "not valid JSON");
}
END_TEST

START_TEST(test_stop)
{
	struct proposals ps = parse("Nothing more to gain. #stop_progress: the best is good "
				    "enough.\nThanks.",
				    1);

	ck_assert_int_eq(ps.v[0].kind, PROPOSAL_STOP);
	ck_assert(ps.v[0].usable);
	ck_assert_str_eq(ps.v[0].note, "the best is good enough.");
	proposals_release(&ps);
	ps = parse("**#stop_progress**", 1);
	ck_assert_str_eq(ps.v[0].note, "");
	proposals_release(&ps);
}
END_TEST

START_TEST(test_many_in_one_turn)
{
	struct proposals ps =
	    parse("First #test_setting {\"temperature\": 0.1}\nThen #prompt_defined\n```\nBe "
		  "brief.\n```\nAnd #stop_progress when done.",
		  3);

	ck_assert_int_eq(ps.v[0].kind, PROPOSAL_SETTING);
	ck_assert_int_eq(ps.v[1].kind, PROPOSAL_PROMPT);
	ck_assert_str_eq(ps.v[1].system, "Be brief.");
	ck_assert_int_eq(ps.v[2].kind, PROPOSAL_STOP);
	proposals_release(&ps);
	/* a prompt's block belongs to it, not to a marker written after it */
	ps = parse("#prompt_defined\n#test_setting\n```\n{\"top_k\": 5}\n```", 2);
	ck_assert(!ps.v[0].usable);
	ck_assert(ps.v[1].usable);
	proposals_release(&ps);
}
END_TEST

START_TEST(test_mentions_are_not_markers)
{
	struct proposals ps;

	parse("", 0);
	parse("No proposal this turn; I will write `#prompt_defined` when ready.", 0);
	parse("Use #prompt_definedness or x#test_setting or #stop_progressing.", 0);
	/* a marker inside a proposed prompt is the prompt's text */
	ps = parse("#prompt_defined\n```\nNever write #stop_progress.\n```", 1);
	ck_assert_str_eq(ps.v[0].system, "Never write #stop_progress.");
	proposals_release(&ps);
	/* and a fence before the marker is not its block */
	unusable("```\nold prompt\n```\n#prompt_defined and nothing else", PROPOSAL_PROMPT,
		 "not followed by a fenced");
}
END_TEST

START_TEST(test_json_of_a_proposal)
{
	struct proposals ps = parse(
	    "#prompt_defined\n```\nS\ntemplate: T {input}\n```\n#test_setting {\"top_k\": 3}", 2);
	json_t *a = proposal_json(&ps.v[0]), *b = proposal_json(&ps.v[1]);

	ck_assert_str_eq(json_string_value(json_object_get(a, "system")), "S");
	ck_assert_str_eq(json_string_value(json_object_get(a, "template")), "T {input}");
	ck_assert_ptr_null(json_object_get(a, "options"));
	ck_assert_int_eq(
	    json_integer_value(json_object_get(json_object_get(b, "options"), "top_k")), 3);
	ck_assert_int_eq(json_object_size(b), 1);
	json_decref(a);
	json_decref(b);
	proposals_release(&ps);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("proposal");
	TCase *tc = tcase_create("parse");
	SRunner *sr;
	int failed;

	tcase_add_test(tc, test_prompt_shapes);
	tcase_add_test(tc, test_prompt_with_template);
	tcase_add_test(tc, test_prompt_unusable);
	tcase_add_test(tc, test_setting_shapes);
	tcase_add_test(tc, test_setting_unusable);
	tcase_add_test(tc, test_stop);
	tcase_add_test(tc, test_many_in_one_turn);
	tcase_add_test(tc, test_mentions_are_not_markers);
	tcase_add_test(tc, test_json_of_a_proposal);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
