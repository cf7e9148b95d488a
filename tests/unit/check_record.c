/*
 * check_record.c - a stored turn as JSON: a model's text that is not valid
 * UTF-8 is shown repaired and noted, never dropped; and the base layer's
 * UTF-8 repair it relies on.
 */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "server/record.h"

static struct db_turn turn(const char *text, const char *note)
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
	struct db_turn t = turn("caf\xe9 au lait \xc3", "attempt 1 failed, retried: x");
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
	struct db_turn t = turn("caf\xc3\xa9 \xf0\x9f\x98\x80", NULL);
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

int main(void)
{
	Suite *s = suite_create("record");
	TCase *tc = tcase_create("record");
	SRunner *sr;
	int failed;

	tcase_add_test(tc, test_invalid_text_is_repaired_and_noted);
	tcase_add_test(tc, test_clean_text_is_untouched);
	tcase_add_test(tc, test_utf8_repair);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
