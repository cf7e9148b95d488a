/*
 * check_record.c - records as JSON text: floats as a person writes them
 * (0.7, not 0.69999999999999996), while a mean keeps the digits the origin's
 * Python printed; and a transcript marks the interviewer's analysis turn as
 * the origin did; a model's text that is not valid UTF-8 is shown repaired
 * and noted, never dropped, and the base layer's UTF-8 repair it relies on.
 */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/views.h"
#include "server/record.h"

/* The text of one value, through record_dumps(). */
static char *dump_real(double v)
{
	json_t *a = json_pack("[f]", v);
	char *s = record_dumps(a);

	json_decref(a);
	return s;
}

static void assert_dump(double v, const char *want)
{
	char *s = dump_real(v);

	ck_assert_str_eq(s, want);
	free(s);
}

START_TEST(test_floats_short)
{
	assert_dump(0.7, "[0.7]");
	assert_dump(0.1 + 0.2, "[0.3]");
	assert_dump(56.722927570343018, "[56.72292757034302]");
	assert_dump(1e-7, "[1e-7]");
	assert_dump(8.0, "[8.0]");
}
END_TEST

START_TEST(test_origin_mean_kept)
{
	/* the origin's average of 9, 8 and 9, as Python printed it */
	assert_dump((9.0 + 8.0 + 9.0) / 3.0, "[8.666666666666666]");
}
END_TEST

START_TEST(test_reads_back_close)
{
	static const double v[] = {0.7, 1.0 / 3.0, 2.0 / 3.0, 1234.5678, 3.14159265358979, 1e300};
	size_t i;

	for (i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		char *s = dump_real(v[i]);
		json_t *back = json_loads(s, 0, NULL);
		double x = json_real_value(json_array_get(back, 0));

		ck_assert_msg(fabs(x - v[i]) <= 1e-15 * fabs(v[i]),
			      "%s reads back as %.17g, not %.17g", s, x, v[i]);
		json_decref(back);
		free(s);
	}
}
END_TEST

START_TEST(test_compact)
{
	json_t *o = json_pack("{s:i, s:s, s:[i, i]}", "a", 1, "b", "x y", "c", 2, 3);
	char *s = record_dumps(o);

	ck_assert_str_eq(s, "{\"a\":1,\"b\":\"x y\",\"c\":[2,3]}");
	free(s);
	json_decref(o);
}
END_TEST

/* ---- the analysis turn ---- */

static struct db_turn turn(int idx, const char *role, char *text)
{
	struct db_turn t;

	memset(&t, 0, sizeof(t));
	t.idx = idx;
	snprintf(t.role, sizeof(t.role), "%s", role);
	t.model = (char *)"m";
	t.backend = (char *)"b";
	t.text = text;
	t.wall_ms = 700;
	t.ttft_ms = t.prompt_ms = t.gen_ms = t.tokens_per_s = t.load_ms = -1;
	t.prompt_tokens = t.cached_tokens = t.completion_tokens = -1;
	return t;
}

/* The type of each conversation item of a transcript of turns, "-" for none. */
static void types_of(int max_turns, struct db_turn *turns, size_t n, char *out)
{
	struct db_job_full f;
	struct db_job *jp = &f.job;
	json_t *t, *c;
	size_t i, k = 0;

	memset(&f, 0, sizeof(f));
	snprintf(jp->id, sizeof(jp->id), "jtest");
	snprintf(jp->status, sizeof(jp->status), "succeeded");
	jp->scenario_name = (char *)"s";
	jp->interviewer_model = jp->candidate_model = (char *)"m";
	jp->interviewer_backend = jp->candidate_backend = (char *)"b";
	jp->scoring = jp->extraction = (char *)"rubric";
	jp->max_turns = max_turns;
	jp->created_at = 1;
	f.turns = turns;
	f.nturns = n;
	t = view_transcript(&f);
	json_array_foreach(json_object_get(t, "conversation"), i, c)
	{
		const char *ty = json_string_value(json_object_get(c, "type"));
		out[k++] = ty ? (strcmp(ty, "optimization_suggestions") ? '?' : 'A') : '-';
	}
	out[k] = '\0';
	ck_assert_msg(json_is_real(json_object_get(
			  json_array_get(json_object_get(t, "conversation"), 0), "duration")),
		      "duration is a number of seconds");
	json_decref(t);
}

START_TEST(test_analysis_turn_marked)
{
	struct db_turn v[] = {turn(1, "interviewer", "hello"), turn(2, "candidate", "answer"),
			      turn(3, "interviewer", "analysis"), turn(4, "candidate", "reply"),
			      turn(5, "interviewer", "analysis")};
	char got[8];

	types_of(3, v, 3, got);
	ck_assert_str_eq(got, "--A");
	/* an even max_turns: the candidate answers the analysis, and is not marked */
	types_of(4, v, 4, got);
	ck_assert_str_eq(got, "--A-");
	types_of(5, v, 5, got);
	ck_assert_str_eq(got, "----A");
	/* a conversation that ended before its analysis has none */
	types_of(5, v, 2, got);
	ck_assert_str_eq(got, "--");
}
END_TEST

START_TEST(test_early_stop_moves_analysis)
{
	struct db_turn v[] = {turn(1, "interviewer", "we are done #stop_progress"),
			      turn(2, "candidate", "ok"), turn(3, "interviewer", "analysis")};
	char got[8];

	types_of(9, v, 3, got);
	ck_assert_str_eq(got, "--A");
}
END_TEST

static struct db_turn stored_turn(const char *text, const char *note)
{
	struct db_turn t;

	memset(&t, 0, sizeof(t));
	t.idx = 1;
	snprintf(t.role, sizeof(t.role), "candidate");
	t.model = xstrdup("m");
	t.backend = xstrdup("b");
	t.text = xstrdup(text);
	t.note = xstrdup_or_null(note);
	t.prompt_tokens = t.cached_tokens = t.completion_tokens = -1;
	t.ttft_ms = t.prompt_ms = t.gen_ms = t.tokens_per_s = t.load_ms = -1;
	return t;
}

START_TEST(test_invalid_text_is_repaired_and_noted)
{
	struct db_turn t = stored_turn("caf\xe9 au lait \xc3", "attempt 1 failed, retried: x");
	json_t *j = record_turn(&t);
	const char *msg = json_string_value(json_object_get(j, "message"));
	const char *note = json_string_value(json_object_get(j, "note"));

	ck_assert_ptr_nonnull(msg);
	ck_assert_str_eq(msg, "caf\xEF\xBF\xBD au lait \xEF\xBF\xBD");
	ck_assert_ptr_nonnull(note);
	ck_assert_ptr_nonnull(strstr(note, "attempt 1 failed, retried: x | "));
	ck_assert_ptr_nonnull(strstr(note, "2 bytes of the stored text were not UTF-8"));
	json_decref(j);
	db_turn_release(&t);
}
END_TEST

START_TEST(test_clean_text_is_untouched)
{
	struct db_turn t = stored_turn("caf\xc3\xa9 \xf0\x9f\x98\x80", NULL);
	json_t *j = record_turn(&t);

	ck_assert_str_eq(json_string_value(json_object_get(j, "message")),
			 "caf\xc3\xa9 \xf0\x9f\x98\x80");
	ck_assert_ptr_null(json_object_get(j, "note"));
	json_decref(j);
	db_turn_release(&t);
}
END_TEST

START_TEST(test_utf8_repair)
{
	static const struct {
		const char *in, *out;
		size_t bad;
	} cases[] = {
	    {"plain", "plain", 0},
	    {"", "", 0},
	    {"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80", "\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80", 0},
	    {"a\x80z", "a\xEF\xBF\xBDz", 1},
	    {"cut \xe2\x82", "cut \xEF\xBF\xBD\xEF\xBF\xBD", 2},
	    {"overlong \xc0\xaf", "overlong \xEF\xBF\xBD\xEF\xBF\xBD", 2},
	    {"surrogate \xed\xa0\x80", "surrogate \xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD", 3},
	    {"past \xf4\x90\x80\x80", "past \xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD", 4},
	};
	size_t i;

	for (i = 0; i < ARRAY_SIZE(cases); i++) {
		struct strbuf sb;
		size_t n = strlen(cases[i].in);

		strbuf_init(&sb, 0);
		ck_assert_uint_eq(util_utf8_invalid(cases[i].in, n), cases[i].bad);
		ck_assert_uint_eq(util_utf8_repair(cases[i].in, n, &sb), cases[i].bad);
		ck_assert_msg(strcmp(sb.buf, cases[i].out) == 0, "case %zu", i);
		strbuf_release(&sb);
	}
}
END_TEST

static Suite *record_suite(void)
{
	Suite *s = suite_create("record");
	TCase *tc = tcase_create("dumps");

	tcase_add_test(tc, test_floats_short);
	tcase_add_test(tc, test_origin_mean_kept);
	tcase_add_test(tc, test_reads_back_close);
	tcase_add_test(tc, test_compact);
	suite_add_tcase(s, tc);
	tc = tcase_create("transcript");
	tcase_add_test(tc, test_analysis_turn_marked);
	tcase_add_test(tc, test_early_stop_moves_analysis);
	suite_add_tcase(s, tc);
	tc = tcase_create("utf8");
	tcase_add_test(tc, test_invalid_text_is_repaired_and_noted);
	tcase_add_test(tc, test_clean_text_is_untouched);
	tcase_add_test(tc, test_utf8_repair);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(record_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
