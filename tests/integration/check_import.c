/*
 * check_import.c - conversations that ran elsewhere, stored and read again,
 * through the real parleyd: the origin's 15 phase-2 conversations imported
 * one by one with extraction and scoring "origin" give the origin's own
 * optimizations and interview quality, and as one list with "rubric" the 77
 * suggestions of their analyses; a re-extraction switches a job between the
 * two and back; timings come back as given; bad input is a 400 naming the
 * field, and then nothing is stored.
 */
#include <check.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tests/harness.h"

#define RUBRIC_TOTAL 77 /* tests/unit/check_extract.c reads each of them by hand */

static struct proc parleyd;

static void setup(void)
{
	char dbpath[512];
	static int seq;

	snprintf(dbpath, sizeof(dbpath), "%s/import-%d-%d.db", harness_tmpdir(), (int)getpid(),
		 seq++);
	ck_assert_int_eq(harness_parleyd_start(&parleyd, dbpath, NULL), 0);
}

static void teardown(void)
{
	if (parleyd.pid > 0)
		harness_stop(&parleyd, SIGTERM);
}

static json_t *origin(int i)
{
	char rel[256];
	char *text;
	json_t *j;

	snprintf(rel, sizeof(rel), "origin-phase2/%s.json", harness_origin[i]);
	text = harness_fixture(rel, NULL);
	ck_assert_msg(text != NULL, "no fixture %s", rel);
	j = json_loads(text, 0, NULL);
	free(text);
	ck_assert_ptr_nonnull(j);
	return j;
}

static json_t *post(const char *path, json_t *body, int want)
{
	char *text = json_dumps(body, JSON_COMPACT);
	json_t *out = NULL;
	int status = harness_http_json(parleyd.port, "POST", path, text, &out);

	ck_assert_msg(status == want, "POST %s: want %d, got %d: %s", path, want, status,
		      out ? json_dumps(out, 0) : "(no JSON)");
	free(text);
	return out;
}

static json_t *transcript(const char *id)
{
	char path[128];
	json_t *t = NULL;

	snprintf(path, sizeof(path), "/v1/jobs/%s/transcript", id);
	ck_assert_int_eq(harness_http_json(parleyd.port, "GET", path, NULL, &t), 200);
	return t;
}

static json_int_t found(const json_t *t)
{
	return json_integer_value(
	    json_object_get(json_object_get(t, "success_metrics"), "optimizations_found"));
}

static size_t job_count(void)
{
	json_t *l = NULL;
	size_t n;

	ck_assert_int_eq(harness_http_json(parleyd.port, "GET", "/v1/jobs?limit=100", NULL, &l),
			 200);
	n = json_array_size(json_object_get(l, "items"));
	json_decref(l);
	return n;
}

/* The field of the problem's first error. */
static const char *first_field(const json_t *problem)
{
	return json_string_value(
	    json_object_get(json_array_get(json_object_get(problem, "errors"), 0), "field"));
}

START_TEST(origin_numbers_in_origin_mode)
{
	int i;

	for (i = 0; i < HARNESS_NORIGIN; i++) {
		json_t *o = origin(i), *job, *t, *want, *got;
		const json_t *sm = json_object_get(o, "success_metrics");
		size_t k;

		json_object_set_new(o, "extraction", json_string("origin"));
		json_object_set_new(o, "scoring", json_string("origin"));
		job = post("/v1/jobs/import", o, 201);
		ck_assert_str_eq(json_string_value(json_object_get(job, "status")), "succeeded");
		ck_assert_ptr_nonnull(strstr(harness_last_headers(), "/v1/jobs/j"));
		t = transcript(json_string_value(json_object_get(job, "id")));
		ck_assert_int_eq(found(t),
				 json_integer_value(json_object_get(sm, "optimizations_found")));
		ck_assert_double_eq_tol(
		    json_number_value(json_object_get(json_object_get(t, "success_metrics"),
						      "interview_quality")),
		    json_number_value(json_object_get(sm, "interview_quality")), 1e-9);
		want = json_object_get(o, "optimizations_discovered");
		got = json_object_get(t, "optimizations_discovered");
		ck_assert_uint_eq(json_array_size(got), json_array_size(want));
		for (k = 0; k < json_array_size(want); k++)
			ck_assert_str_eq(json_string_value(
					     json_object_get(json_array_get(got, k), "suggestion")),
					 json_string_value(json_object_get(json_array_get(want, k),
									   "suggestion")));
		/* the turns as given: who spoke, what, for how long, when it ended */
		ck_assert_uint_eq(json_array_size(json_object_get(t, "conversation")),
				  json_array_size(json_object_get(o, "conversation")));
		for (k = 0; k < json_array_size(json_object_get(o, "conversation")); k++) {
			json_t *a = json_array_get(json_object_get(o, "conversation"), k);
			json_t *b = json_array_get(json_object_get(t, "conversation"), k);

			ck_assert_str_eq(json_string_value(json_object_get(b, "message")),
					 json_string_value(json_object_get(a, "message")));
			ck_assert_str_eq(json_string_value(json_object_get(b, "model")),
					 json_string_value(json_object_get(a, "model")));
			ck_assert_double_eq_tol(json_number_value(json_object_get(b, "duration")),
						json_number_value(json_object_get(a, "duration")),
						1e-3);
			ck_assert_int_eq(strncmp(json_string_value(json_object_get(b, "timestamp")),
						 json_string_value(json_object_get(a, "timestamp")),
						 19),
					 0);
		}
		json_decref(t);
		json_decref(job);
		json_decref(o);
	}
}
END_TEST

START_TEST(list_in_rubric_mode_and_reextraction)
{
	json_t *body = json_pack("{s:[], s:s}", "conversations", "extraction", "rubric");
	json_t *res, *jobs, *t, *job;
	json_int_t total = 0, origin_n;
	const char *id;
	char path[128];
	int i;

	for (i = 0; i < HARNESS_NORIGIN; i++)
		json_array_append_new(json_object_get(body, "conversations"), origin(i));
	res = post("/v1/jobs/import", body, 201);
	jobs = json_object_get(res, "jobs");
	ck_assert_uint_eq(json_array_size(jobs), HARNESS_NORIGIN);
	for (i = 0; i < HARNESS_NORIGIN; i++) {
		job = json_array_get(jobs, (size_t)i);
		ck_assert_str_eq(json_string_value(json_object_get(job, "extraction")), "rubric");
		t = transcript(json_string_value(json_object_get(job, "id")));
		total += found(t);
		json_decref(t);
	}
	ck_assert_int_eq(total, RUBRIC_TOTAL);

	/* the first conversation read again by the origin's grep, then by the rubric again */
	id = json_string_value(json_object_get(json_array_get(jobs, 0), "id"));
	t = transcript(id);
	total = found(t);
	json_decref(t);
	snprintf(path, sizeof(path), "/v1/jobs/%s/extract", id);
	json_decref(body);
	body = json_pack("{s:s}", "extraction", "origin");
	job = post(path, body, 200);
	ck_assert_str_eq(json_string_value(json_object_get(job, "extraction")), "origin");
	json_decref(job);
	t = transcript(id);
	{
		json_t *o = origin(0);

		origin_n = json_integer_value(
		    json_object_get(json_object_get(o, "success_metrics"), "optimizations_found"));
		json_decref(o);
	}
	ck_assert_int_eq(found(t), origin_n);
	ck_assert_str_eq(json_string_value(json_object_get(t, "extraction")), "origin");
	json_decref(t);
	json_object_set_new(body, "extraction", json_string("rubric"));
	json_decref(post(path, body, 200));
	t = transcript(id);
	ck_assert_int_eq(found(t), total);
	json_decref(t);
	json_decref(body);
	json_decref(res);
}
END_TEST

/* README: parley's own transcripts are a superset of the origin's shape and import as they are */
START_TEST(a_transcript_imports_as_it_is)
{
	json_t *o = origin(0), *job, *t, *again, *t2;
	const char *id;

	job = post("/v1/jobs/import", o, 201);
	t = transcript(json_string_value(json_object_get(job, "id")));
	again = post("/v1/jobs/import", t, 201);
	id = json_string_value(json_object_get(again, "id"));
	ck_assert_str_ne(id, json_string_value(json_object_get(job, "id")));
	t2 = transcript(id);
	ck_assert_uint_eq(json_array_size(json_object_get(t2, "conversation")),
			  json_array_size(json_object_get(t, "conversation")));
	ck_assert_int_eq(found(t2), found(t));
	json_decref(t2);
	json_decref(again);
	json_decref(t);
	json_decref(job);
	json_decref(o);
}
END_TEST

START_TEST(bad_input_is_refused_and_nothing_stored)
{
	json_t *o = origin(0), *bad, *p, *list;
	size_t before = job_count();

	/* no conversation */
	bad = json_deep_copy(o);
	json_object_del(bad, "conversation");
	p = post("/v1/jobs/import", bad, 400);
	ck_assert_str_eq(first_field(p), "conversation");
	json_decref(p);
	json_decref(bad);

	/* the candidate cannot open */
	bad = json_deep_copy(o);
	json_object_set_new(json_array_get(json_object_get(bad, "conversation"), 0), "speaker",
			    json_string("candidate"));
	p = post("/v1/jobs/import", bad, 400);
	ck_assert_str_eq(first_field(p), "conversation[0].speaker");
	json_decref(p);
	json_decref(bad);

	/* a time that is not one, a negative duration, an unknown field */
	bad = json_deep_copy(o);
	json_object_set_new(json_array_get(json_object_get(bad, "conversation"), 1), "timestamp",
			    json_string("yesterday"));
	p = post("/v1/jobs/import", bad, 400);
	ck_assert_str_eq(first_field(p), "conversation[1].timestamp");
	json_decref(p);
	json_object_set_new(json_array_get(json_object_get(bad, "conversation"), 1), "timestamp",
			    json_string("2025-07-17T12:03:48Z"));
	json_object_set_new(json_array_get(json_object_get(bad, "conversation"), 2), "duration",
			    json_real(-1));
	p = post("/v1/jobs/import", bad, 400);
	ck_assert_str_eq(first_field(p), "conversation[2].duration");
	json_decref(p);
	json_decref(bad);
	bad = json_deep_copy(o);
	json_object_set_new(bad, "colour", json_string("blue"));
	p = post("/v1/jobs/import", bad, 400);
	ck_assert_str_eq(first_field(p), "colour");
	json_decref(p);

	/* a judge cannot grade what ran elsewhere; an unknown extraction */
	json_object_del(bad, "colour");
	json_object_set_new(bad, "scoring", json_string("judge"));
	p = post("/v1/jobs/import", bad, 400);
	ck_assert_str_eq(first_field(p), "scoring");
	json_decref(p);
	json_object_set_new(bad, "scoring", json_string("rubric"));
	json_object_set_new(bad, "extraction", json_string("grep"));
	p = post("/v1/jobs/import", bad, 400);
	ck_assert_str_eq(first_field(p), "extraction");
	json_decref(p);
	json_decref(bad);

	/* one bad conversation in a list: none of them is stored */
	list = json_pack("{s:[o, o]}", "conversations", json_deep_copy(o), json_deep_copy(o));
	json_object_del(
	    json_object_get(json_array_get(json_object_get(list, "conversations"), 1), "scenario"),
	    "problem");
	p = post("/v1/jobs/import", list, 400);
	ck_assert_str_eq(first_field(p), "conversations[1].scenario.problem");
	json_decref(p);
	json_object_set_new(list, "conversations", json_array());
	p = post("/v1/jobs/import", list, 400);
	ck_assert_str_eq(first_field(p), "conversations");
	json_decref(p);
	json_decref(list);
	ck_assert_uint_eq(job_count(), before);

	/* re-extraction: an unknown job, a bad method */
	bad = json_pack("{s:s}", "extraction", "rubric");
	json_decref(post("/v1/jobs/jffffffffffffffff/extract", bad, 404));
	json_object_set_new(bad, "extraction", json_string("model-of-the-week"));
	p = post("/v1/jobs/jffffffffffffffff/extract", bad, 400);
	ck_assert_str_eq(first_field(p), "extraction");
	json_decref(p);
	json_decref(bad);
	ck_assert_int_eq(harness_http(parleyd.port, "GET", "/v1/jobs/import", NULL, NULL, NULL),
			 405);
	json_decref(o);
}
END_TEST

static Suite *import_suite(void)
{
	Suite *s = suite_create("import");
	TCase *tc = tcase_create("import");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, origin_numbers_in_origin_mode);
	tcase_add_test(tc, list_in_rubric_mode_and_reextraction);
	tcase_add_test(tc, bad_input_is_refused_and_nothing_stored);
	tcase_add_test(tc, a_transcript_imports_as_it_is);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(import_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	harness_cleanup();
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
