/*
 * check_scenarios.c - the closed loop's scenario work through the real parleyd:
 * a scenario with baseline, tasks and objective is stored and served, in the
 * library and inline in a job; a bad field is a 400 that names its path and
 * stores nothing; the built-in scenarios carry their task sets.
 */
#include <check.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tests/harness.h"

static struct proc fake, parleyd;
static char dbpath[512];

static void setup(void)
{
	static int seq;
	char b1[256];
	const char *args[] = {"--backend", b1, NULL};

	snprintf(dbpath, sizeof(dbpath), "%s/scenarios-%d-%d.db", harness_tmpdir(), (int)getpid(),
		 seq++);
	ck_assert_int_eq(harness_fake_start(&fake, NULL), 0);
	snprintf(b1, sizeof(b1), "name=ollama,kind=ollama,url=http://127.0.0.1:%d", fake.port);
	ck_assert_int_eq(harness_parleyd_start(&parleyd, dbpath, args), 0);
}

static void teardown(void)
{
	harness_stop(&parleyd, SIGTERM);
	harness_stop(&fake, SIGTERM);
}

#define TASK(id, check) "{\"id\":\"" id "\",\"input\":\"Job: " id "\",\"checks\":[" check "]}"
#define FOUR_TASKS                                                                                 \
	TASK("a", "{\"contains\":\"Go\"}")                                                         \
	"," TASK("b", "{\"regex\":\"^[A-Z]\"}") "," TASK("c", "{\"max_words\":40}") "," TASK(      \
	    "d", "{\"json_schema\":{\"type\":\"array\",\"items\":{\"type\":\"string\"}}}")

static const char good[] = "{\"problem\":\"P\",\"context\":\"C\",\"goal\":\"G\","
			   "\"baseline\":{\"system\":\"List the skills.\"},"
			   "\"objective\":\"latency\",\"tasks\":[" FOUR_TASKS "]}";

/* The 400's error list has one error at field; returns its message (static). */
static const char *error_at(json_t *problem, const char *field)
{
	json_t *e; /* borrowed */
	size_t i;

	json_array_foreach(json_object_get(problem, "errors"), i, e)
	{
		if (strcmp(json_string_value(json_object_get(e, "field")), field) == 0)
			return json_string_value(json_object_get(e, "message"));
	}
	ck_abort_msg("no error at %s in %s", field, json_dumps(problem, 0));
	return NULL;
}

static long count_rows(const char *sql)
{
	sqlite3 *h;
	sqlite3_stmt *st;
	long n = -1;

	ck_assert_int_eq(sqlite3_open_v2(dbpath, &h, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
	ck_assert_int_eq(sqlite3_prepare_v2(h, sql, -1, &st, NULL), SQLITE_OK);
	if (sqlite3_step(st) == SQLITE_ROW)
		n = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	sqlite3_close(h);
	return n;
}

START_TEST(library_stores_the_work)
{
	json_t *j = NULL, *b, *t;

	ck_assert_int_eq(harness_http_json(parleyd.port, "PUT", "/v1/scenarios/skills", good, &j),
			 201);
	json_decref(j);
	ck_assert_int_eq(harness_http_json(parleyd.port, "GET", "/v1/scenarios/skills", NULL, &j),
			 200);
	b = json_object_get(j, "baseline");
	ck_assert_str_eq(json_string_value(json_object_get(b, "system")), "List the skills.");
	ck_assert_str_eq(json_string_value(json_object_get(b, "template")), "{input}");
	ck_assert_str_eq(
	    json_string_value(json_object_get(json_object_get(j, "objective"), "kind")), "latency");
	t = json_object_get(j, "tasks");
	ck_assert_int_eq(json_array_size(t), 4);
	ck_assert_str_eq(json_string_value(json_object_get(json_array_get(t, 3), "id")), "d");
	json_decref(j);
	/* replacing it without tasks removes them */
	ck_assert_int_eq(harness_http_json(parleyd.port, "PUT", "/v1/scenarios/skills",
					   "{\"problem\":\"P\",\"context\":\"C\",\"goal\":\"G\"}",
					   &j),
			 200);
	ck_assert(json_is_null(json_object_get(j, "tasks")));
	json_decref(j);
}
END_TEST

START_TEST(library_refuses_bad_work_and_stores_nothing)
{
	static const struct {
		const char *body, *field, *says;
	} cases[] = {
	    {"{\"problem\":\"P\",\"context\":\"C\",\"goal\":\"G\",\"tasks\":[" FOUR_TASKS
	     ",{\"id\":\"e\",\"input\":\"x\",\"checks\":[{\"regex\":\"(unclosed\"}]}]}",
	     "tasks[4].checks[0].regex", "POSIX extended"},
	    {"{\"problem\":\"P\",\"context\":\"C\",\"goal\":\"G\",\"tasks\":[" FOUR_TASKS
	     ",{\"id\":\"e\",\"input\":\"x\",\"checks\":[{\"json_schema\":{\"oneOf\":[]}}]}]}",
	     "tasks[4].checks[0].json_schema", "'oneOf' is not supported"},
	    {"{\"problem\":\"P\",\"context\":\"C\",\"goal\":\"G\",\"tasks\":[" FOUR_TASKS "],"
	     "\"baseline\":{\"template\":\"no slot\"}}",
	     "baseline.template", "{input}"},
	    {"{\"problem\":\"P\",\"context\":\"C\",\"goal\":\"G\",\"tasks\":[]}", "tasks",
	     "4 to 500"},
	    {"{\"problem\":\"P\",\"context\":\"C\",\"goal\":\"G\",\"objective\":\"fastest\"}",
	     "objective", "quality, latency, balanced"},
	};
	json_t *j;
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		j = NULL;
		ck_assert_int_eq(
		    harness_http_json(parleyd.port, "PUT", "/v1/scenarios/bad", cases[i].body, &j),
		    400);
		ck_assert_msg(strstr(error_at(j, cases[i].field), cases[i].says), "%s: %s",
			      cases[i].field, error_at(j, cases[i].field));
		json_decref(j);
		ck_assert_int_eq(
		    harness_http(parleyd.port, "GET", "/v1/scenarios/bad", NULL, NULL, NULL), 404);
	}
}
END_TEST

START_TEST(inline_scenario_work)
{
	char body[4096];
	json_t *j = NULL, *sc;
	long jobs;

	snprintf(body, sizeof(body),
		 "{\"scenario\":{\"name\":\"inl\",\"problem\":\"P\",\"context\":\"C\",\"goal\":"
		 "\"G\",\"tasks\":[" FOUR_TASKS ",{\"id\":\"e\",\"input\":\"x\",\"checks\":["
		 "{\"contains\":\"x\"},{\"max_words\":-1}]}]},"
		 "\"interviewer\":{\"model\":\"i\"},\"candidate\":{\"model\":\"c\"}}");
	ck_assert_int_eq(harness_http_json(parleyd.port, "POST", "/v1/jobs", body, &j), 400);
	ck_assert(strstr(error_at(j, "scenario.tasks[4].checks[1].max_words"), "integer"));
	json_decref(j);
	jobs = count_rows("SELECT count(*) FROM jobs");
	ck_assert_int_eq(jobs, 0);
	/* a good one: the job's scenario snapshot carries the work */
	snprintf(body, sizeof(body),
		 "{\"scenario\":{\"name\":\"inl\",\"problem\":\"P\",\"context\":\"C\",\"goal\":"
		 "\"G\",\"tasks\":[" FOUR_TASKS "]},"
		 "\"interviewer\":{\"model\":\"i\"},\"candidate\":{\"model\":\"c\"}}");
	j = NULL;
	ck_assert_int_eq(harness_http_json(parleyd.port, "POST", "/v1/jobs", body, &j), 202);
	sc = json_object_get(j, "scenario");
	ck_assert_msg(json_is_object(sc) || json_is_string(sc), "%s", json_dumps(j, 0));
	json_decref(j);
	ck_assert_int_eq(count_rows("SELECT count(*) FROM jobs WHERE json_array_length("
				    "json_extract(scenario, '$.tasks')) = 4 AND json_extract("
				    "scenario, '$.baseline.template') = '{input}'"),
			 1);
}
END_TEST

START_TEST(builtin_scenarios_carry_tasks)
{
	static const char *const names[] = {"job_extraction_improvement",
					    "response_speed_optimization",
					    "prompt_engineering_breakthrough"};
	char path[128];
	json_t *j;
	size_t i;

	for (i = 0; i < 3; i++) {
		j = NULL;
		snprintf(path, sizeof(path), "/v1/scenarios/%s", names[i]);
		ck_assert_int_eq(harness_http_json(parleyd.port, "GET", path, NULL, &j), 200);
		ck_assert_int_ge(json_array_size(json_object_get(j, "tasks")), 12);
		ck_assert(
		    json_is_string(json_object_get(json_object_get(j, "baseline"), "system")));
		json_decref(j);
	}
}
END_TEST

int main(void)
{
	Suite *s = suite_create("scenarios");
	TCase *tc = tcase_create("parleyd");
	SRunner *sr;
	int failed;

	harness_tmpdir();
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, library_stores_the_work);
	tcase_add_test(tc, library_refuses_bad_work_and_stores_nothing);
	tcase_add_test(tc, inline_scenario_work);
	tcase_add_test(tc, builtin_scenarios_carry_tasks);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	harness_cleanup();
	return failed ? 1 : 0;
}
