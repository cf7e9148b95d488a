/*
 * check_checks.c - the checks of a task: each kind passes and fails the
 * replies it should, says why it failed, and a check that cannot be honoured
 * is refused when the scenario is submitted, with its field path.
 */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "server/checks.h"

static struct checks compile_ok(const char *text)
{
	json_t *list = json_loads(text, 0, NULL), *errs = json_array();
	struct checks c;

	ck_assert_msg(list != NULL, "bad test JSON %s", text);
	ck_assert_msg(checks_compile(list, "c", &c, errs) == 0, "refused %s: %s", text,
		      json_dumps(errs, 0));
	json_decref(list);
	json_decref(errs);
	return c;
}

static void refused(const char *text, const char *field, const char *what)
{
	json_t *list = json_loads(text, 0, NULL), *errs = json_array(), *e;
	struct checks c;

	ck_assert_msg(list != NULL, "bad test JSON %s", text);
	ck_assert_msg(checks_compile(list, "c", &c, errs) < 0, "accepted %s", text);
	ck_assert_ptr_null(c.v);
	ck_assert_int_ge(json_array_size(errs), 1);
	e = json_array_get(errs, 0);
	ck_assert_str_eq(json_string_value(json_object_get(e, "field")), field);
	ck_assert_msg(strstr(json_string_value(json_object_get(e, "message")), what),
		      "'%s' does not say '%s'", json_string_value(json_object_get(e, "message")),
		      what);
	json_decref(list);
	json_decref(errs);
}

/* The one check of text on reply: expect 1 (pass), 0 (fail, why holds why_has) or -1. */
static void eval(const char *text, const char *reply, int expect, const char *why_has)
{
	struct checks c = compile_ok(text);
	char why[256];
	int rc;

	ck_assert_int_eq(c.n, 1);
	rc = checks_eval(&c.v[0], reply, why, sizeof(why));
	ck_assert_msg(rc == expect, "%s on '%s' gave %d, not %d (%s)", text, reply, rc, expect,
		      why);
	if (why_has)
		ck_assert_msg(strstr(why, why_has), "'%s' does not say '%s'", why, why_has);
	checks_release(&c);
}

START_TEST(test_contains)
{
	eval("[{\"contains\":\"Kubernetes\"}]", "Needs kubernetes and Go", 1, NULL);
	eval("[{\"contains\":\"Kubernetes\"}]", "Needs Docker", 0,
	     "does not contain \"Kubernetes\"");
	eval("[{\"not_contains\":\"sorry\"}]", "Here it is", 1, NULL);
	eval("[{\"not_contains\":\"sorry\"}]", "Sorry, I cannot", 0, "contains \"sorry\"");
}
END_TEST

START_TEST(test_regex)
{
	eval("[{\"regex\":\"^[0-9]+ ms$\"}]", "120 ms", 1, NULL);
	eval("[{\"regex\":\"[0-9]{3,}\"}]", "took 1200 ms", 1, NULL);
	eval("[{\"regex\":\"^[0-9]+ ms$\"}]", "about 120 ms", 0, "does not match /^[0-9]+ ms$/");
	eval("[{\"regex\":\"(Python|Go)\"}]", "Go", 1, NULL);
	refused("[{\"regex\":\"a(b\"}]", "c[0].regex", "POSIX extended regular expression");
	/* patterns that would make regcomp build a huge automaton, or run exponentially */
	refused("[{\"regex\":\"^[A-Z]++$\"}]", "c[0].regex", "may not follow another");
	refused("[{\"regex\":\"(a{200}){200}\"}]", "c[0].regex", "too costly");
	refused("[{\"regex\":\"((((((((((((((a+)+)+)+)+)+)+)+)+)+)+)+)+)+)+\"}]", "c[0].regex",
		"too costly");
	refused("[{\"regex\":\"a{256}\"}]", "c[0].regex", "over 255");
	refused("[{\"regex\":\"(a)\\\\1\"}]", "c[0].regex", "back-references");
	/* ordinary patterns stay fine */
	eval("[{\"regex\":\"^(ab|cd){2,3}[0-9]{1,4}\\\\.x?$\"}]", "abcd12.x", 1, NULL);
	eval("[{\"regex\":\"[[:digit:]]{3}-[]a]+\"}]", "tel 555-a]", 1, NULL);
	refused("[{\"regex\":\"\"}]", "c[0].regex", "non-empty string");
}
END_TEST

START_TEST(test_equals)
{
	eval("[{\"equals\":\"42\"}]", "  42\n", 1, NULL);
	eval("[{\"equals\":\"42\"}]", "42.", 0, "is not \"42\"");
	eval("[{\"equals\":\"yes\"}]", "Yes", 0, NULL);
	refused("[{\"equals\":\" 42\"}]", "c[0].equals", "trimmed");
}
END_TEST

START_TEST(test_max_words)
{
	eval("[{\"max_words\":3}]", "one two\tthree\n", 1, NULL);
	eval("[{\"max_words\":3}]", "one two three four", 0, "4 words, more than 3");
	eval("[{\"max_words\":1}]", "", 1, NULL);
	refused("[{\"max_words\":0}]", "c[0].max_words", "integer from 1");
	refused("[{\"max_words\":\"3\"}]", "c[0].max_words", "integer from 1");
}
END_TEST

START_TEST(test_json_schema)
{
	const char *s = "[{\"json_schema\":{\"type\":\"object\",\"properties\":{\"skills\":{"
			"\"type\":\"array\",\"items\":{\"type\":\"string\"}}},"
			"\"required\":[\"skills\"]}}]";

	eval(s, "{\"skills\":[\"Go\",\"SQL\"]}", 1, NULL);
	eval(s, "\n {\"skills\":[]} \n", 1, NULL);
	eval(s, "{\"skills\":[1]}", 0, "$.skills[0]: is not of type string");
	eval(s, "Here you go: {\"skills\":[]}", 0, "not JSON");
	/* a fenced block is not a JSON reply: format compliance is what is checked */
	eval(s, "```json\n{\"skills\":[]}\n```", 0, "not JSON");
	refused("[{\"json_schema\":{\"type\":\"object\",\"minProperties\":1}}]", "c[0].json_schema",
		"'minProperties' is not supported");
	refused("[{\"json_schema\":{\"properties\":{\"a\":{\"pattern\":\"(\"}}}}]",
		"c[0].json_schema.properties.a.pattern", "POSIX");
}
END_TEST

START_TEST(test_judge)
{
	eval("[{\"judge\":\"the answer names the bottleneck\"}]", "anything", -1, NULL);
	refused("[{\"judge\":\"\"}]", "c[0].judge", "non-empty");
}
END_TEST

START_TEST(test_list_shape)
{
	struct checks c = compile_ok("[{\"contains\":\"a\"},{\"max_words\":5},{\"regex\":\"b+\"}]");
	json_t *j;

	ck_assert_int_eq(c.n, 3);
	ck_assert_int_eq(c.v[1].kind, CHECK_MAX_WORDS);
	j = checks_json(&c.v[2]);
	ck_assert_str_eq(json_string_value(json_object_get(j, "regex")), "b+");
	json_decref(j);
	checks_release(&c);
	refused("[]", "c", "array of 1 to 20 checks");
	refused("{\"contains\":\"a\"}", "c", "array of 1 to 20 checks");
	refused("[{\"contains\":\"a\",\"regex\":\"b\"}]", "c[0]", "one key");
	refused("[{\"contains\":\"a\"},{\"startswith\":\"b\"}]", "c[1]",
		"unknown check 'startswith'");
	refused("[{\"contains\":5}]", "c[0].contains", "non-empty string");
}
END_TEST

START_TEST(test_every_fault_is_reported)
{
	json_t *list = json_loads("[{\"regex\":\"(\"},{\"contains\":\"ok\"},{\"max_words\":-2}]", 0,
				  NULL),
	       *errs = json_array();

	ck_assert_int_lt(checks_compile(list, "tasks[3].checks", NULL, errs), 0);
	ck_assert_int_eq(json_array_size(errs), 2);
	ck_assert_str_eq(json_string_value(json_object_get(json_array_get(errs, 0), "field")),
			 "tasks[3].checks[0].regex");
	ck_assert_str_eq(json_string_value(json_object_get(json_array_get(errs, 1), "field")),
			 "tasks[3].checks[2].max_words");
	json_decref(list);
	json_decref(errs);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("checks");
	TCase *tc = tcase_create("checks");
	SRunner *sr;
	int failed;

	tcase_add_test(tc, test_contains);
	tcase_add_test(tc, test_regex);
	tcase_add_test(tc, test_equals);
	tcase_add_test(tc, test_max_words);
	tcase_add_test(tc, test_json_schema);
	tcase_add_test(tc, test_judge);
	tcase_add_test(tc, test_list_shape);
	tcase_add_test(tc, test_every_fault_is_reported);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
