/*
 * check_origin.c - the origin's 15 phase-2 conversations replayed through the
 * fake backend and the real parleyd: with extraction and scoring "origin"
 * parleyd gives exactly the origin's optimizations_found and
 * interview_quality; with "rubric" it finds the real suggestions, the
 * top-level items of each analysis' concrete-suggestions section, as they
 * were read by hand (harness_labelled). Replayed
 * as one batch (the origin's interviewer, candidates and scenarios, in its
 * order), the summary reproduces phase2_results.json's optimization totals,
 * per-model optimizations and quality, average interview quality and the
 * rankings of phase2_summary_report.md.
 */
#include <check.h>
#include <dirent.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

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

/*
 * Loads the fixtures and writes the fake backend's script: one interviewer and
 * one candidate model per conversation, replying with the origin's turns; and,
 * for the batch, the origin's own model names: the interviewer (one model for
 * all 15) replies by the candidate and the problem its system prompt names,
 * each candidate by the problem in its own.
 */
static void load(const char *script_path)
{
	char dir[512], path[1024];
	json_t *script = json_object(), *models = json_object();
	json_t *iv = json_pack("{s:[]}", "cases"); /* the batch's interviewer */
	struct dirent *de;
	DIR *d;

	harness_fixture_path("origin-phase2", dir, sizeof(dir));
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
		json_object_set_new(models, model,
				    json_pack("{s:[O,O]}", "replies",
					      json_object_get(json_array_get(conv, 0), "message"),
					      json_object_get(json_array_get(conv, 2), "message")));
		snprintf(model, sizeof(model), "cd-%s", convs[nconv].file);
		json_object_set_new(models, model,
				    json_pack("{s:[O]}", "replies",
					      json_object_get(json_array_get(conv, 1), "message")));
		{
			const char *cand = json_string_value(json_object_get(o, "candidate_model"));
			json_t *problem = json_object_get(json_object_get(o, "scenario"),
							  "problem"); /* borrowed */
			json_t *cm;

			json_array_append_new(
			    json_object_get(iv, "cases"),
			    json_pack("{s:[s, O], s:[O, O]}", "contains", cand, problem, "replies",
				      json_object_get(json_array_get(conv, 0), "message"),
				      json_object_get(json_array_get(conv, 2), "message")));
			if (!(cm = json_object_get(models, cand))) {
				cm = json_pack("{s:[]}", "cases");
				json_object_set_new(models, cand, cm);
			}
			json_array_append_new(
			    json_object_get(cm, "cases"),
			    json_pack("{s:O, s:[O]}", "contains", problem, "replies",
				      json_object_get(json_array_get(conv, 1), "message")));
		}
		nconv++;
	}
	closedir(d);
	ck_assert_int_eq(nconv, NCONV);
	json_object_set_new(models, "gemma3:1b", iv);
	json_object_set_new(script, "models", models);
	ck_assert_int_eq(json_dump_file(script, script_path, 0), 0);
	json_decref(script);
}

/* The hand-read suggestions of the origin conversation name. */
static const struct harness_labelled *labelled(const char *name)
{
	size_t i;

	for (i = 0; i < HARNESS_NORIGIN; i++)
		if (!strcmp(harness_labelled[i].name, name))
			return &harness_labelled[i];
	ck_abort_msg("no hand-read suggestions for '%s'", name);
	return NULL;
}

static char *submit(struct conv *c, const char *method)
{
	char body[1024];
	char *id;

	snprintf(body, sizeof(body),
		 "{\"scenario\":\"%s\",\"interviewer\":{\"model\":\"iv-%s\"},"
		 "\"candidate\":{\"model\":\"cd-%s\"},\"extraction\":\"%s\",\"scoring\":\"%s\","
		 "\"labels\":{\"replay\":\"origin-phase2\"}}",
		 json_string_value(json_object_get(json_object_get(c->origin, "scenario"), "name")),
		 c->file, c->file, method, method);
	id = harness_submit(parleyd.port, body);
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
	char script[600], db[600], fakeport[16];
	const char *fargs[] = {"--script", script, NULL};
	int i, total_origin = 0, total_rubric = 0;

	snprintf(script, sizeof(script), "%s/origin-script.json", harness_tmpdir());
	snprintf(db, sizeof(db), "%s/origin-%d.db", harness_tmpdir(), (int)getpid());
	load(script);
	ck_assert_int_eq(harness_start_with_ollama(&fake, fargs, &parleyd, db, 4), 0);
	snprintf(fakeport, sizeof(fakeport), "%d", fake.port);

	for (i = 0; i < nconv; i++) {
		convs[i].job_origin = submit(&convs[i], "origin");
		convs[i].job_rubric = submit(&convs[i], "rubric");
	}
	for (i = 0; i < nconv; i++) {
		struct conv *c = &convs[i];
		json_t *om = json_object_get(c->origin, "success_metrics");
		json_t *t = transcript(c->job_origin), *sm = json_object_get(t, "success_metrics");
		json_t *got, *want, *conv = json_object_get(c->origin, "conversation");
		const struct harness_labelled *lab;
		size_t k, n, tested;

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
			ck_assert_str_eq(json_string_value(
					     json_object_get(json_array_get(got, k), "suggestion")),
					 json_string_value(json_object_get(json_array_get(want, k),
									   "suggestion")));
		total_origin += (int)json_array_size(got);
		json_decref(t);

		/* rubric: the real suggestions, as read by hand (harness_labelled) */
		t = transcript(c->job_rubric);
		got = json_object_get(t, "optimizations_discovered");
		lab = labelled(c->file);
		n = harness_labelled_count(lab);
		ck_assert_msg(json_array_size(got) == n, "%s: want %zu suggestions, got %zu",
			      c->file, n, json_array_size(got));
		for (k = 0, tested = 0; k < n; k++) {
			json_t *x = json_array_get(got, k);
			const char *title = json_string_value(json_object_get(x, "title"));
			ck_assert_msg(title && !strcmp(title, lab->titles[k]),
				      "%s item %zu: want '%s' got '%s'", c->file, k + 1,
				      lab->titles[k], title ? title : "(none)");
			ck_assert_int_eq(json_integer_value(json_object_get(x, "turn")), 3);
			if (json_is_string(json_object_get(x, "test")))
				tested++;
		}
		ck_assert_msg(tested == lab->ntested, "%s: want %zu items with a test, got %zu",
			      c->file, lab->ntested, tested);
		total_rubric += (int)n;
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

/* The text between start and the next line beginning with until, as a new string. */
static char *section(const char *md, const char *start, const char *until)
{
	const char *a = strstr(md, start), *b;

	ck_assert_msg(a != NULL, "no '%s'", start);
	b = strstr(a + strlen(start), until);
	ck_assert_msg(b != NULL, "no '%s' after '%s'", until, start);
	return xstrndup(a, (size_t)(b - a));
}

START_TEST(origin_replay_as_a_batch)
{
	char script[600], db[600], path[160], *md = NULL, *omd, *want, *got;
	const char *fargs[] = {"--script", script, NULL};
	json_t *origin, *osm, *body, *b = NULL, *sm, *x, *c, *s, *r, *omp;
	struct strbuf req;
	const char *key, *line;
	size_t i, k, rank;
	int64_t deadline;

	snprintf(script, sizeof(script), "%s/origin-batch-script-%d.json", harness_tmpdir(),
		 (int)getpid());
	snprintf(db, sizeof(db), "%s/origin-batch-%d.db", harness_tmpdir(), (int)getpid());
	load(script);
	ck_assert_int_eq(harness_start_with_ollama(&fake, fargs, &parleyd, db, 4), 0);
	harness_fixture_path("origin-phase2/phase2_results.json", path, sizeof(path));
	origin = json_load_file(path, 0, NULL);
	ck_assert_ptr_nonnull(origin);
	osm = json_object_get(origin, "summary_metrics");

	/* the origin's run as one batch: its interviewer, candidates and scenarios, in order */
	body = json_pack("{s:{s:O}, s:[], s:[], s:s, s:s}", "interviewer", "model",
			 json_object_get(origin, "interviewer_model"), "candidates", "scenarios",
			 "scoring", "origin", "extraction", "origin");
	json_array_foreach(json_object_get(origin, "candidate_models"), i, x)
	{
		json_array_append_new(json_object_get(body, "candidates"),
				      json_pack("{s:O}", "model", x));
	}
	json_array_foreach(json_object_get(origin, "scenarios"), i, s)
	{
		json_array_append(json_object_get(body, "scenarios"), json_object_get(s, "name"));
	}
	strbuf_init(&req, 0);
	{
		char *text = json_dumps(body, JSON_COMPACT);
		strbuf_addstr(&req, text);
		free(text);
	}
	json_decref(body);
	ck_assert_int_eq(harness_http_json(parleyd.port, "POST", "/v1/batches", req.buf, &b), 202);
	strbuf_release(&req);
	snprintf(path, sizeof(path), "/v1/batches/%s", json_string_value(json_object_get(b, "id")));
	json_decref(b);
	deadline = util_mono_us() + 120000000;
	for (b = NULL;;) {
		ck_assert_int_eq(harness_http_json(parleyd.port, "GET", path, NULL, &b), 200);
		if (!strcmp(json_string_value(json_object_get(b, "status")), "finished"))
			break;
		json_decref(b);
		ck_assert(util_mono_us() < deadline);
		usleep(50000);
	}

	/* the conversations, in the origin's order, each as the origin had it */
	c = json_object_get(b, "conversations");
	ck_assert_uint_eq(json_array_size(c),
			  json_array_size(json_object_get(origin, "conversations")));
	json_array_foreach(json_object_get(origin, "conversations"), i, x)
	{
		json_t *ours = json_array_get(c, i), *t = NULL;
		char tpath[128];

		ck_assert_str_eq(json_string_value(json_object_get(ours, "candidate_model")),
				 json_string_value(json_object_get(x, "candidate_model")));
		ck_assert_str_eq(json_string_value(json_object_get(ours, "scenario_name")),
				 json_string_value(json_object_get(x, "scenario_name")));
		ck_assert_str_eq(json_string_value(json_object_get(ours, "status")), "succeeded");
		ck_assert_int_eq(json_integer_value(json_object_get(ours, "optimizations_found")),
				 json_integer_value(json_object_get(x, "optimizations_found")));
		ck_assert(json_number_value(json_object_get(
			      json_object_get(ours, "success_metrics"), "interview_quality")) ==
			  json_number_value(json_object_get(json_object_get(x, "success_metrics"),
							    "interview_quality")));
		/* the fake gave each conversation its own origin turns */
		snprintf(tpath, sizeof(tpath), "/v1/jobs/%s/transcript",
			 json_string_value(json_object_get(ours, "job_id")));
		ck_assert_int_eq(harness_http_json(parleyd.port, "GET", tpath, NULL, &t), 200);
		for (k = 0; k < NCONV && convs[k].origin; k++) {
			json_t *o = convs[k].origin, *oc = json_object_get(o, "conversation");
			size_t n;
			if (strcmp(json_string_value(json_object_get(o, "candidate_model")),
				   json_string_value(json_object_get(x, "candidate_model"))) ||
			    strcmp(json_string_value(
				       json_object_get(json_object_get(o, "scenario"), "name")),
				   json_string_value(json_object_get(x, "scenario_name"))))
				continue;
			for (n = 0; n < 3; n++)
				ck_assert_str_eq(
				    json_string_value(json_object_get(
					json_array_get(json_object_get(t, "conversation"), n),
					"message")),
				    json_string_value(
					json_object_get(json_array_get(oc, n), "message")));
		}
		json_decref(t);
	}

	/* phase2_results.json's numbers */
	sm = json_object_get(b, "summary_metrics");
	ck_assert_int_eq(json_integer_value(json_object_get(sm, "total_conversations")),
			 json_integer_value(json_object_get(osm, "total_conversations")));
	ck_assert_int_eq(json_integer_value(json_object_get(sm, "total_optimizations_discovered")),
			 15);
	ck_assert_int_eq(
	    json_integer_value(json_object_get(sm, "total_optimizations_discovered")),
	    json_integer_value(json_object_get(osm, "total_optimizations_discovered")));
	ck_assert_double_eq_tol(json_number_value(json_object_get(sm, "average_interview_quality")),
				8.0, 1e-9);
	ck_assert_double_eq_tol(
	    json_number_value(json_object_get(sm, "average_interview_quality")),
	    json_number_value(json_object_get(osm, "average_interview_quality")), 1e-9);
	ck_assert_double_eq_tol(json_number_value(json_object_get(sm, "success_rate")),
				json_number_value(json_object_get(osm, "success_rate")), 1e-9);
	omp = json_object_get(osm, "model_performance");
	ck_assert_uint_eq(json_object_size(json_object_get(sm, "model_performance")),
			  json_object_size(omp));
	json_object_foreach(omp, key, x)
	{
		json_t *ours = json_object_get(json_object_get(sm, "model_performance"), key);
		ck_assert_msg(ours != NULL, "no model_performance for %s", key);
		ck_assert_int_eq(json_integer_value(json_object_get(ours, "conversations")),
				 json_integer_value(json_object_get(x, "conversations")));
		ck_assert_msg(json_integer_value(json_object_get(ours, "total_optimizations")) ==
				  json_integer_value(json_object_get(x, "total_optimizations")),
			      "%s: %lld optimizations, the origin %lld", key,
			      json_integer_value(json_object_get(ours, "total_optimizations")),
			      json_integer_value(json_object_get(x, "total_optimizations")));
		ck_assert_double_eq_tol(json_number_value(json_object_get(ours, "avg_quality")),
					json_number_value(json_object_get(x, "avg_quality")), 1e-9);
	}
	{
		/* the origin's per-model optimizations, as the issue states them */
		static const struct {
			const char *model;
			int n;
		} want_n[] = {{"gemma3n:e2b", 5},
			      {"gemma3n:latest", 3},
			      {"qwen2.5vl:latest", 3},
			      {"gemma2:latest", 2},
			      {"dolphin3:8b", 2}};
		for (k = 0; k < 5; k++)
			ck_assert_int_eq(
			    json_integer_value(json_object_get(
				json_object_get(json_object_get(sm, "model_performance"),
						want_n[k].model),
				"total_optimizations")),
			    want_n[k].n);
	}

	/* the rankings of phase2_summary_report.md, and its layout */
	omd = harness_fixture("origin-phase2/phase2_summary_report.md", NULL);
	ck_assert_ptr_nonnull(omd);
	r = json_object_get(b, "rankings");
	rank = 0;
	for (line = strstr(omd, "\n| 1 | "); line && !strncmp(line, "\n| ", 3);
	     line = strchr(line + 1, '\n')) {
		const char *tick = strchr(line, '`'), *end = tick ? strchr(tick + 1, '`') : NULL;
		ck_assert_ptr_nonnull(end);
		ck_assert_msg(
		    strlen(json_string_value(json_object_get(json_array_get(r, rank), "model"))) ==
			    (size_t)(end - tick - 1) &&
			!strncmp(
			    json_string_value(json_object_get(json_array_get(r, rank), "model")),
			    tick + 1, (size_t)(end - tick - 1)),
		    "rank %zu: %s, the origin %.*s", rank + 1,
		    json_string_value(json_object_get(json_array_get(r, rank), "model")),
		    (int)(end - tick - 1), tick + 1);
		rank++;
	}
	ck_assert_uint_eq(rank, 5);
	snprintf(path, sizeof(path), "/v1/batches/%s/report.md",
		 json_string_value(json_object_get(b, "id")));
	ck_assert_int_eq(harness_http(parleyd.port, "GET", path, NULL, NULL, &md), 200);
	/* the header, the totals, each ranking row up to the engagement column (the fake's
	 * candidates answer in milliseconds, not the origin's 30 s and more), the scenario
	 * breakdown and the discovery line are the origin's, character for character */
	want = section(omd, "**AI Interviewer:**", "\n\n");
	ck_assert_ptr_nonnull(strstr(md, want));
	free(want);
	want = section(omd, "- **Total Conversations:**", "- **Average Candidate");
	ck_assert_ptr_nonnull(strstr(md, want));
	free(want);
	ck_assert_ptr_nonnull(strstr(md, "- **Success Rate:** 100.0%\n"));
	for (line = strstr(omd, "\n| 1 | "); line && !strncmp(line, "\n| ", 3);
	     line = strchr(line + 1, '\n')) {
		const char *cut = line + 1;
		for (k = 0; k < 5; k++) /* "| rank | model | n | found | quality |" */
			cut = strchr(cut + 1, '|');
		want = xstrndup(line + 1, (size_t)(cut - line));
		ck_assert_msg(strstr(md, want) != NULL, "no row '%s'", want);
		free(want);
	}
	want = section(omd, "## 🔍 Scenario Breakdown", "\n## ");
	got = section(md, "## 🔍 Scenario Breakdown", "\n## ");
	ck_assert_str_eq(got, want);
	free(want);
	free(got);
	want = section(omd, "**Optimization Discovery:**", "\n");
	ck_assert_ptr_nonnull(strstr(md, want));
	free(want);
	ck_assert_ptr_nonnull(strstr(md, "1. **Best Performers:** gemma3n:e2b generated the most "
					 "optimization suggestions"));
	printf("origin replay as a batch: %lld optimizations, average interview quality %.1f, "
	       "ranked %s first\n",
	       json_integer_value(json_object_get(sm, "total_optimizations_discovered")),
	       json_number_value(json_object_get(sm, "average_interview_quality")),
	       json_string_value(json_object_get(json_array_get(r, 0), "model")));
	free(md);
	free(omd);
	json_decref(b);
	json_decref(origin);
	harness_stop(&parleyd, SIGTERM);
	harness_stop(&fake, SIGTERM);
	for (k = 0; k < (size_t)nconv; k++)
		json_decref(convs[k].origin);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("origin");
	TCase *tc = tcase_create("replay");
	SRunner *sr;
	int failed;

	harness_shared_note("check_origin");
	harness_tmpdir();
	tcase_set_timeout(tc, 300);
	tcase_add_test(tc, origin_replay);
	tcase_add_test(tc, origin_replay_as_a_batch);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	harness_cleanup();
	return failed ? 1 : 0;
}
