/*
 * check_tasks.c - a scenario's baseline, tasks and objective: what is
 * accepted is stored with its defaults written out; every bad field is
 * reported with its path, all of them at once.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db/db.h"
#include "db/scenario.h"
#include "server/tasks.h"
#include "tests/harness.h"

#define TASK(id) "{\"id\":\"" id "\",\"input\":\"in " id "\",\"checks\":[{\"contains\":\"x\"}]}"
#define FOUR TASK("a") "," TASK("b") "," TASK("c") "," TASK("d")

static json_t *valid(const char *text)
{
	json_t *sc = json_loads(text, 0, NULL), *errs = json_array(), *work = NULL;

	ck_assert_msg(sc != NULL, "bad test JSON %s", text);
	ck_assert_msg(tasks_validate(sc, "", &work, errs) == 0, "refused %s: %s", text,
		      json_dumps(errs, 0));
	json_decref(sc);
	json_decref(errs);
	return work;
}

/* Refused, with an error at field saying what (among all the errors). */
static void refused(const char *text, const char *field, const char *what)
{
	json_t *sc = json_loads(text, 0, NULL), *errs = json_array(), *work = NULL, *e;
	size_t i;
	int found = 0;

	ck_assert_msg(sc != NULL, "bad test JSON %s", text);
	ck_assert_msg(tasks_validate(sc, "scenario.", &work, errs) < 0, "accepted %s", text);
	ck_assert_ptr_null(work);
	json_array_foreach(errs, i, e)
	{
		if (strcmp(json_string_value(json_object_get(e, "field")), field) == 0 &&
		    strstr(json_string_value(json_object_get(e, "message")), what))
			found = 1;
	}
	ck_assert_msg(found, "no error at %s saying '%s': %s", field, what, json_dumps(errs, 0));
	json_decref(sc);
	json_decref(errs);
}

START_TEST(test_defaults_written_out)
{
	json_t *w = valid("{\"tasks\":[" FOUR "]}"), *b, *o;

	b = json_object_get(w, "baseline");
	ck_assert_str_eq(json_string_value(json_object_get(b, "system")), "");
	ck_assert_str_eq(json_string_value(json_object_get(b, "template")), "{input}");
	ck_assert(json_is_object(json_object_get(b, "options")));
	o = json_object_get(w, "objective");
	ck_assert_str_eq(json_string_value(json_object_get(o, "kind")), "quality");
	ck_assert(json_real_value(json_object_get(o, "max_quality_drop")) == 0.02);
	ck_assert_int_eq(json_array_size(json_object_get(w, "tasks")), 4);
	json_decref(w);
	/* a scenario without work stays without it */
	w = valid("{\"name\":\"x\"}");
	ck_assert_int_eq(json_object_size(w), 0);
	json_decref(w);
}
END_TEST

START_TEST(test_given_fields_kept)
{
	json_t *w =
	    valid("{\"baseline\":{\"system\":\"Be brief.\",\"template\":\"Q: {input}\","
		  "\"options\":{\"num_predict\":64}},\"objective\":{\"kind\":\"latency\","
		  "\"max_quality_drop\":0.1},\"tasks\":[{\"id\":7,\"input\":\"i\","
		  "\"checks\":[{\"max_words\":3}]}," TASK("b") "," TASK("c") "," TASK("d") "]}");
	json_t *b = json_object_get(w, "baseline"), *o = json_object_get(w, "objective");

	ck_assert_str_eq(json_string_value(json_object_get(b, "system")), "Be brief.");
	ck_assert_str_eq(json_string_value(json_object_get(b, "template")), "Q: {input}");
	ck_assert_int_eq(
	    json_integer_value(json_object_get(json_object_get(b, "options"), "num_predict")), 64);
	ck_assert_str_eq(json_string_value(json_object_get(o, "kind")), "latency");
	ck_assert(json_real_value(json_object_get(o, "max_quality_drop")) == 0.1);
	/* an integer id becomes a string */
	ck_assert_str_eq(json_string_value(
			     json_object_get(json_array_get(json_object_get(w, "tasks"), 0), "id")),
			 "7");
	json_decref(w);
	w = valid("{\"objective\":\"balanced\",\"tasks\":[" FOUR "]}");
	ck_assert_str_eq(
	    json_string_value(json_object_get(json_object_get(w, "objective"), "kind")),
	    "balanced");
	json_decref(w);
}
END_TEST

START_TEST(test_bad_fields_have_paths)
{
	refused("{\"tasks\":[" TASK("a") "," TASK("b") "," TASK("c") "]}", "scenario.tasks",
		"4 to 500");
	refused("{\"tasks\":[" TASK("a") "," TASK("b") "," TASK("c") "," TASK("a") "]}",
		"scenario.tasks[3].id", "already tasks[0]");
	refused("{\"tasks\":[" TASK("a") "," TASK("b") "," TASK(
		    "c") ",{\"id\":\"d\",\"input\":\"x\",\"checks\":[{\"regex\":\"[\"}]}]}",
		"scenario.tasks[3].checks[0].regex", "POSIX");
	refused("{\"tasks\":[" TASK("a") "," TASK("b") "," TASK(
		    "c") ",{\"id\":\"d\",\"input\":\"\",\"checks\":[{\"regex\":\"x\"}]}]}",
		"scenario.tasks[3].input", "non-empty string");
	refused("{\"tasks\":[" TASK("a") "," TASK("b") "," TASK(
		    "c") ",{\"id\":\"d\",\"input\":\"x\",\"checks\":[],\"weight\":2}]}",
		"scenario.tasks[3]", "unknown field 'weight'");
	refused("{\"tasks\":[" TASK("a") "," TASK("b") "," TASK(
		    "c") ",{\"id\":\"d\",\"input\":\"x\",\"checks\":[]}]}",
		"scenario.tasks[3].checks", "1 to 20 checks");
	refused("{\"tasks\":[" FOUR "],\"baseline\":{\"template\":\"no slot\"}}",
		"scenario.baseline.template", "must contain {input}");
	refused("{\"tasks\":[" FOUR "],\"baseline\":{\"options\":{\"num_beams\":2}}}",
		"scenario.baseline.options.num_beams", "unknown option");
	refused("{\"tasks\":[" FOUR "],\"baseline\":{\"options\":{\"temperature\":3}}}",
		"scenario.baseline.options.temperature", "from 0 to 2");
	refused("{\"tasks\":[" FOUR "],\"baseline\":{\"prompt\":\"x\"}}", "scenario.baseline",
		"unknown field 'prompt'");
	refused("{\"tasks\":[" FOUR "],\"objective\":\"fast\"}", "scenario.objective",
		"quality, latency, balanced");
	refused("{\"tasks\":[" FOUR "],\"objective\":{\"kind\":\"latency\","
		"\"max_quality_drop\":2}}",
		"scenario.objective.max_quality_drop", "from 0 to 1");
	refused("{\"tasks\":[" FOUR "],\"objective\":{\"kind\":\"speed\"}}",
		"scenario.objective.kind", "quality, latency, balanced");
}
END_TEST

START_TEST(test_all_faults_at_once)
{
	json_t *sc = json_loads(
		   "{\"tasks\":[" TASK("a") "," TASK(
		       "b") ","
			    "{\"id\":\"c\",\"input\":\"x\",\"checks\":[{\"regex\":\"(\"}]},"
			    "{\"id\":\"d\",\"input\":\"x\",\"checks\":[{\"max_words\":0}]}],"
			    "\"objective\":\"fast\"}",
		   0, NULL),
	       *errs = json_array(), *work;

	ck_assert_int_lt(tasks_validate(sc, "", &work, errs), 0);
	ck_assert_int_eq(json_array_size(errs), 3);
	json_decref(sc);
	json_decref(errs);
}
END_TEST

START_TEST(test_size_limits)
{
	struct strbuf sb;
	json_t *sc, *errs = json_array();
	int i;

	strbuf_init(&sb, 1 << 16);
	strbuf_addstr(&sb, "{\"tasks\":[");
	for (i = 0; i < TASKS_MAX + 1; i++)
		strbuf_addf(&sb, "%s{\"id\":%d,\"input\":\"x\",\"checks\":[{\"contains\":\"y\"}]}",
			    i ? "," : "", i);
	strbuf_addstr(&sb, "]}");
	sc = json_loads(sb.buf, 0, NULL);
	ck_assert_int_lt(tasks_validate(sc, "", NULL, errs), 0);
	ck_assert_str_eq(json_string_value(json_object_get(json_array_get(errs, 0), "field")),
			 "tasks");
	/* 500 is allowed */
	json_array_remove(json_object_get(sc, "tasks"), TASKS_MAX);
	json_array_clear(errs);
	ck_assert_int_eq(tasks_validate(sc, "", NULL, errs), 0);
	json_decref(sc);
	json_decref(errs);
	strbuf_release(&sb);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("tasks");
	TCase *tc = tcase_create("validate");
	SRunner *sr;
	int failed;

	tcase_add_test(tc, test_defaults_written_out);
	tcase_add_test(tc, test_given_fields_kept);
	tcase_add_test(tc, test_bad_fields_have_paths);
	tcase_add_test(tc, test_all_faults_at_once);
	tcase_add_test(tc, test_size_limits);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
