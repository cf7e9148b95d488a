/*
 * check_job_spec.c - a claimed job's stored settings parsed once: the
 * scenario, the options, the judge and the methods; stored text that is not
 * what was written fails with a message instead of a job run half-blind.
 */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "server/job_spec.h"

static struct db_job job(const char *scenario, const char *options, const char *judge)
{
	struct db_job j;

	memset(&j, 0, sizeof(j));
	j.scenario = (char *)(uintptr_t)scenario;
	j.options = (char *)(uintptr_t)options;
	j.judge = (char *)(uintptr_t)judge;
	j.scoring = (char *)(uintptr_t) "judge";
	j.extraction = (char *)(uintptr_t) "origin";
	return j;
}

START_TEST(test_parses_every_setting)
{
	struct db_job j = job("{\"name\":\"s\",\"problem\":\"slow\"}", "{\"num_ctx\":4096}",
			      "{\"model\":\"judge:1b\",\"backend\":\"llama\"}");
	struct job_spec s;
	struct perr e = {0};

	ck_assert_int_eq(job_spec_parse(&j, &s, &e), 0);
	ck_assert_str_eq(json_string_value(json_object_get(s.scenario, "problem")), "slow");
	ck_assert_int_eq(json_integer_value(json_object_get(s.options, "num_ctx")), 4096);
	ck_assert_str_eq(s.judge_model, "judge:1b");
	ck_assert_str_eq(s.judge_backend, "llama");
	ck_assert_int_eq(s.scoring, SCORE_JUDGE);
	ck_assert_int_eq(s.extraction, EXTRACT_ORIGIN);
	job_spec_release(&s);
}
END_TEST

START_TEST(test_defaults)
{
	struct db_job j = job("{\"name\":\"s\"}", NULL, NULL);
	struct job_spec s;
	struct perr e = {0};

	j.scoring = NULL;
	j.extraction = NULL;
	ck_assert_int_eq(job_spec_parse(&j, &s, &e), 0);
	ck_assert(json_is_object(s.options));
	ck_assert_int_eq(json_object_size(s.options), 0);
	ck_assert_ptr_null(s.judge_model);
	ck_assert_int_eq(s.scoring, SCORE_RUBRIC);
	ck_assert_int_eq(s.extraction, EXTRACT_RUBRIC);
	job_spec_release(&s);
}
END_TEST

START_TEST(test_unreadable_text_fails)
{
	static const char *const bad[][3] = {{"{\"name\":", "{}", NULL},
					     {"[1]", "{}", NULL},
					     {"{}", "not json", NULL},
					     {"{}", "{}", "\"judge\""}};
	static const char *const what[] = {"scenario", "scenario", "options", "judge"};
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct db_job j = job(bad[i][0], bad[i][1], bad[i][2]);
		struct job_spec s;
		struct perr e = {0};

		ck_assert_int_eq(job_spec_parse(&j, &s, &e), -1);
		ck_assert_msg(strstr(e.msg, what[i]) != NULL, "case %zu: '%s'", i, e.msg);
		ck_assert_ptr_null(s.scenario);
		job_spec_release(&s);
	}
}
END_TEST

int main(void)
{
	Suite *su = suite_create("job_spec");
	TCase *tc = tcase_create("parse");
	SRunner *sr;
	int failed;

	tcase_add_test(tc, test_parses_every_setting);
	tcase_add_test(tc, test_defaults);
	tcase_add_test(tc, test_unreadable_text_fails);
	suite_add_tcase(su, tc);
	sr = srunner_create(su);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
