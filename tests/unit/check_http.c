/*
 * check_http.c - a handler's response: every header it adds is sent, however
 * many there are.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api.h"

START_TEST(test_no_header_is_dropped)
{
	static const char *const names[] = {"Link", "Vary", "ETag", "X-A", "X-B", "X-C",
					    "X-D",  "X-E",  "X-F",  "X-G", "X-H", "X-I"};
	struct api_resp r;
	char value[32];
	size_t i;

	api_resp_init(&r);
	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		snprintf(value, sizeof(value), "value %zu", i);
		api_add_header(&r, names[i], value);
	}
	/* the ninth and later used to vanish without a word */
	ck_assert_int_eq(r.nhdr, (int)(sizeof(names) / sizeof(names[0])));
	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		snprintf(value, sizeof(value), "value %zu", i);
		ck_assert_str_eq(r.hdr[i].name, names[i]);
		ck_assert_str_eq(r.hdr[i].value, value);
	}
	api_resp_release(&r);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("http");
	TCase *tc = tcase_create("response");
	SRunner *sr;
	int failed;

	tcase_add_test(tc, test_no_header_is_dropped);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
