/*
 * check_origin.c - the origin's 15 phase-2 conversations replayed through the
 * fake backend and the real parleyd: with extraction and scoring "origin"
 * parleyd gives exactly the origin's optimizations_found and
 * interview_quality; with "rubric" it finds the real suggestions, the
 * top-level items of each analysis' concrete-suggestions section.
 */
#include <check.h>
#include <dirent.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "server/extract.h"
#include "tests/harness.h"

#define NCONV 15

struct conv {
	char file[128];
	json_t *origin; /* the origin's per-conversation JSON */
	char *job_origin, *job_rubric;
};

static struct conv convs[NCONV];
static int nconv;
static struct proc fake, parleyd;

/* Loads the fixtures and writes the fake backend's script: one interviewer and
 * one candidate model per conversation, replying with the origin's turns. */
static void load(const char *script_path)
{
	char dir[512], path[1024];
	json_t *script = json_object(), *models = json_object();
	struct dirent *de;
	DIR *d;

	snprintf(dir, sizeof(dir), "%s/fixtures/origin-phase2", harness_shared());
	d = opendir(dir);
	ck_assert_msg(d != NULL, "no fixtures at %s", dir);
	while ((de = readdir(d))) {
		size_t n = strlen(de->d_name);
		json_t *o, *conv;
		char model[200];
		if (n < 6 || strcmp(de->d_name + n - 5, ".json") != 0 ||
		    strncmp(de->d_name, "phase2", 6) == 0)
			continue;
		ck_assert_int_lt(nconv, NCONV);
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		o = json_load_file(path, 0, NULL);
		ck_assert_ptr_nonnull(o);
		conv = json_object_get(o, "conversation");
		ck_assert_uint_eq(json_array_size(conv), 3);
		snprintf(convs[nconv].file, sizeof(convs[nconv].file), "%.*s", (int)(n - 5),
			 de->d_name);
		convs[nconv].origin = o;
		snprintf(model, sizeof(model), "iv-%s", convs[nconv].file);
		json_object_set_new(
		    models, model,
		    json_pack("{s:[O,O]}", "replies",
			      json_object_get(json_array_get(conv, 0), "message"),
			      json_object_get(json_array_get(conv, 2), "message")));
		snprintf(model, sizeof(model), "cd-%s", convs[nconv].file);
		json_object_set_new(models, model,
				    json_pack("{s:[O]}", "replies",
					      json_object_get(json_array_get(conv, 1), "message")));
		nconv++;
	}
	closedir(d);
	ck_assert_int_eq(nconv, NCONV);
	json_object_set_new(script, "models", models);
	ck_assert_int_eq(json_dump_file(script, script_path, 0), 0);
	json_decref(script);
}

static char *submit(struct conv *c, const char *method)
{
	char body[1024];
	json_t *j = NULL;
	char *id;

	snprintf(body, sizeof(body),
		 "{\"scenario\":\"%s\",\"interviewer\":{\"model\":\"iv-%s\"},"
		 "\"candidate\":{\"model\":\"cd-%s\"},\"extraction\":\"%s\",\"scoring\":\"%s\","
		 "\"labels\":{\"replay\":\"origin-phase2\"}}",
		 json_string_value(json_object_get(json_object_get(c->origin, "scenario"), "name")),
		 c->file, c->file, method, method);
	ck_assert_int_eq(harness_http_json(parleyd.port, "POST", "/v1/jobs", body, &j), 202);
	id = xstrdup(json_string_value(json_object_get(j, "id")));
	json_decref(j);
	return id;
}

static json_t *transcript(const char *id)
{
	char path[128];
	json_t *job = harness_wait_job(parleyd.port, id, 120000), *t = NULL;

	ck_assert_ptr_nonnull(job);
	ck_assert_str_eq(json_string_value(json_object_get(job, "status")), "succeeded");
	json_decref(job);
	snprintf(path, sizeof(path), "/v1/jobs/%s/transcript", id);
	ck_assert_int_eq(harness_http_json(parleyd.port, "GET", path, NULL, &t), 200);
	return t;
}

START_TEST(origin_replay)
{
	char script[600], db[600], backend[200], fakeport[16];
	const char *fargs[] = {"--script", script, NULL};
	const char *pargs[] = {"--backend", backend, NULL};
	int i, total_origin = 0, total_rubric = 0;

	snprintf(script, sizeof(script), "%s/origin-script.json", harness_tmpdir());
	snprintf(db, sizeof(db), "%s/origin-%d.db", harness_tmpdir(), (int)getpid());
	load(script);
	ck_assert_int_eq(harness_fake_start(&fake, fargs), 0);
	snprintf(fakeport, sizeof(fakeport), "%d", fake.port);
	snprintf(backend, sizeof(backend),
		 "name=ollama,kind=ollama,url=http://127.0.0.1:%d,max_concurrency=4", fake.port);
	ck_assert_int_eq(harness_parleyd_start(&parleyd, db, pargs), 0);

	for (i = 0; i < nconv; i++) {
		convs[i].job_origin = submit(&convs[i], "origin");
		convs[i].job_rubric = submit(&convs[i], "rubric");
	}
	for (i = 0; i < nconv; i++) {
		struct conv *c = &convs[i];
		json_t *om = json_object_get(c->origin, "success_metrics");
		json_t *t = transcript(c->job_origin), *sm = json_object_get(t, "success_metrics");
		json_t *got, *want, *conv = json_object_get(c->origin, "conversation");
		struct optim_list ol;
		size_t k;

		/* the conversation came through unchanged */
		for (k = 0; k < 3; k++)
			ck_assert_str_eq(
			    json_string_value(json_object_get(
				json_array_get(json_object_get(t, "conversation"), k), "message")),
			    json_string_value(json_object_get(json_array_get(conv, k), "message")));
		ck_assert_msg(json_integer_value(json_object_get(sm, "optimizations_found")) ==
				  json_integer_value(json_object_get(om, "optimizations_found")),
			      "%s: optimizations_found", c->file);
		ck_assert_msg(json_number_value(json_object_get(sm, "interview_quality")) ==
				  json_number_value(json_object_get(om, "interview_quality")),
			      "%s: interview_quality %g, origin %g", c->file,
			      json_number_value(json_object_get(sm, "interview_quality")),
			      json_number_value(json_object_get(om, "interview_quality")));
		got = json_object_get(t, "optimizations_discovered");
		want = json_object_get(c->origin, "optimizations_discovered");
		ck_assert_uint_eq(json_array_size(got), json_array_size(want));
		for (k = 0; k < json_array_size(want); k++)
			ck_assert_str_eq(
			    json_string_value(json_object_get(json_array_get(got, k), "suggestion")),
			    json_string_value(json_object_get(json_array_get(want, k), "suggestion")));
		total_origin += (int)json_array_size(got);
		json_decref(t);

		/* rubric: the real suggestions, as the extractor reads the analysis */
		t = transcript(c->job_rubric);
		got = json_object_get(t, "optimizations_discovered");
		optim_list_init(&ol);
		extract_optimizations(
		    EXTRACT_RUBRIC,
		    json_string_value(json_object_get(json_array_get(conv, 2), "message")), 3, &ol);
		ck_assert_msg(ol.n >= 3, "%s: only %zu suggestions", c->file, ol.n);
		ck_assert_uint_eq(json_array_size(got), ol.n);
		for (k = 0; k < ol.n; k++) {
			json_t *x = json_array_get(got, k);
			ck_assert_str_eq(json_string_value(json_object_get(x, "title")), ol.v[k].title);
			ck_assert_int_eq(json_integer_value(json_object_get(x, "turn")), 3);
			/* no heading that merely names the format */
			ck_assert_ptr_null(strstr(json_string_value(json_object_get(x, "title")),
						  "Concrete Suggestions"));
		}
		total_rubric += (int)ol.n;
		optim_list_release(&ol);
		json_decref(t);
	}
	/* phase2_results.json: 15 optimizations in all; the real suggestions are many more */
	ck_assert_int_eq(total_origin, 15);
	ck_assert_int_gt(total_rubric, 60);
	printf("origin replay: %d conversations, origin extraction %d, rubric extraction %d\n",
	       nconv, total_origin, total_rubric);
	harness_stop(&parleyd, SIGTERM);
	harness_stop(&fake, SIGTERM);
	for (i = 0; i < nconv; i++) {
		json_decref(convs[i].origin);
		free(convs[i].job_origin);
		free(convs[i].job_rubric);
	}
}
END_TEST

int main(void)
{
	Suite *s = suite_create("origin");
	TCase *tc = tcase_create("replay");
	SRunner *sr;
	int failed;

	harness_tmpdir();
	tcase_set_timeout(tc, 300);
	tcase_add_test(tc, origin_replay);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	harness_cleanup();
	return failed ? 1 : 0;
}
