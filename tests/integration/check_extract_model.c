/*
 * check_extract_model.c - extraction "model" through the real parleyd and the
 * fake backend, on both wire protocols: the extractor's request carries the
 * reply's schema as structured output; of what it answers, a suggestion the
 * analysis does not contain is dropped; a reply that is not the schema, or a
 * model that is missing, leaves the analysis to the tree extractor; every
 * optimization says which method found it.
 */
#include <check.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tests/harness.h"

static struct proc fake, parleyd;
static char dbpath[512], scriptpath[512];

static const char analysis[] =
    "### 1. Analysis of the candidate's approach\nIt rebuilds everything on every request.\n\n"
    "### 2. Specific optimization opportunities\n- Repeated work\n- Cold starts\n\n"
    "### 3. Concrete suggestions\n"
    "1. **Shard the index by tenant** \xe2\x80\x94 one index per tenant. Test: compare p95 "
    "latency on 1,000 replayed queries.\n"
    "2. **Warm the cache at start-up** \xe2\x80\x94 load the 500 hottest entries. Test: the "
    "first 100 requests' latency after a restart.\n\n"
    "### 4. Reasoning\nBoth remove work that is done again and again.\n";

/* Two suggestions of the analysis (one written in other case and markup) and one invented. */
static const char reply_good[] =
    "[{\"title\": \"Shard the index by tenant\", \"detail\": \"One index per tenant.\", "
    "\"test\": \"Compare p95 latency on 1,000 replayed queries.\"},"
    " {\"title\": \"warm the cache at START-UP\", \"detail\": \"Load the hottest entries.\", "
    "\"test\": null},"
    " {\"title\": \"Rewrite the service in Rust\", \"detail\": \"Faster.\", \"test\": null}]";
static const char reply_broken[] = "Sure! The suggestions are: 1. Shard the index by tenant.";

static void write_script(void)
{
	json_t *s = json_pack("{s:{s:{s:[s, s]}, s:{s:[s]}, s:{s:[s]}}}", "models", "iv:1b",
			      "replies", "Hello, how do you work today?", analysis, "ex-good:1b",
			      "replies", reply_good, "ex-broken:1b", "replies", reply_broken);

	ck_assert_ptr_nonnull(s);
	ck_assert_int_eq(json_dump_file(s, scriptpath, 0), 0);
	json_decref(s);
}

static void setup(void)
{
	static int seq;
	char b1[256], b2[256];
	const char *fargs[] = {"--script", scriptpath, NULL};
	const char *pargs[] = {"--backend", b1, "--backend", b2, NULL};

	snprintf(dbpath, sizeof(dbpath), "%s/exmodel-%d-%d.db", harness_tmpdir(), (int)getpid(),
		 seq);
	snprintf(scriptpath, sizeof(scriptpath), "%s/exmodel-script-%d-%d.json", harness_tmpdir(),
		 (int)getpid(), seq++);
	write_script();
	ck_assert_int_eq(harness_fake_start(&fake, fargs), 0);
	snprintf(b1, sizeof(b1), "name=ollama,kind=ollama,url=http://127.0.0.1:%d", fake.port);
	snprintf(b2, sizeof(b2), "name=llama,kind=llama-server,url=http://127.0.0.1:%d", fake.port);
	ck_assert_int_eq(harness_parleyd_start(&parleyd, dbpath, pargs), 0);
}

static void teardown(void)
{
	harness_stop(&parleyd, SIGTERM);
	harness_stop(&fake, SIGTERM);
}

static json_t *call(const char *method, const char *path, const char *body, int want)
{
	return harness_call(parleyd.port, method, path, body, want);
}

/* Runs a job whose analysis is read by extractor on backend; returns its transcript. */
static json_t *run(const char *backend, const char *extractor, json_t **job_out)
{
	char body[700], path[96];
	json_t *j, *job;

	snprintf(body, sizeof(body),
		 "{\"scenario\":\"response_speed_optimization\","
		 "\"interviewer\":{\"model\":\"iv:1b\",\"backend\":\"%s\"},"
		 "\"candidate\":{\"model\":\"cd:1b\",\"backend\":\"%s\"},"
		 "\"extraction\":\"model\",\"extractor\":{\"model\":\"%s\",\"backend\":\"%s\"}}",
		 backend, backend, extractor, backend);
	j = call("POST", "/v1/jobs", body, 202);
	ck_assert_str_eq(json_string_value(json_object_get(j, "extraction")), "model");
	ck_assert_str_eq(
	    json_string_value(json_object_get(json_object_get(j, "extractor"), "model")),
	    extractor);
	snprintf(path, sizeof(path), "%s", json_string_value(json_object_get(j, "id")));
	json_decref(j);
	job = harness_wait_job(parleyd.port, path, 30000);
	ck_assert_ptr_nonnull(job);
	ck_assert_str_eq(json_string_value(json_object_get(job, "status")), "succeeded");
	*job_out = job;
	snprintf(path, sizeof(path), "/v1/jobs/%s/transcript",
		 json_string_value(json_object_get(job, "id")));
	return call("GET", path, NULL, 200);
}

/* The last request the fake saw for model. */
static json_t *request_for(const char *model)
{
	json_t *log = NULL, *e, *found = NULL;
	size_t i;

	ck_assert_int_eq(harness_http_json(fake.port, "GET", "/_fake/requests", NULL, &log), 200);
	json_array_foreach(log, i, e)
	{
		const char *m = json_string_value(json_object_get(e, "model"));
		if (m && !strcmp(m, model)) {
			json_decref(found);
			found = json_incref(json_object_get(e, "body"));
		}
	}
	json_decref(log);
	ck_assert_msg(found != NULL, "no request for %s", model);
	return found;
}

static const json_t *optim(const json_t *t, size_t i)
{
	return json_array_get(json_object_get(t, "optimizations_discovered"), i);
}

static const char *str(const json_t *o, const char *key)
{
	return json_string_value(json_object_get(o, key));
}

START_TEST(kept_only_what_the_analysis_says)
{
	static const char *const backends[] = {"ollama", "llama"};
	static const char *const fields[] = {"format", "json_schema"};
	int k;

	for (k = 0; k < 2; k++) {
		json_t *job, *t = run(backends[k], "ex-good:1b", &job);
		json_t *req = request_for("ex-good:1b"), *schema = json_object_get(req, fields[k]);
		json_t *x = json_object_get(json_object_get(job, "metrics"), "extractor");

		/* the request: the schema in the backend's own field, the analysis as the text */
		ck_assert_msg(json_is_object(schema), "%s: no '%s' in the extractor's request",
			      backends[k], fields[k]);
		ck_assert_str_eq(str(schema, "type"), "array");
		ck_assert_ptr_null(json_object_get(req, fields[1 - k]));
		ck_assert_str_eq(
		    str(json_array_get(json_object_get(req, "messages"), 1), "content"), analysis);
		/* two kept, the invented one dropped */
		ck_assert_uint_eq(json_array_size(json_object_get(t, "optimizations_discovered")),
				  2);
		ck_assert_str_eq(str(optim(t, 0), "title"), "Shard the index by tenant");
		ck_assert_str_eq(str(optim(t, 0), "test"),
				 "Compare p95 latency on 1,000 replayed queries.");
		ck_assert_str_eq(str(optim(t, 0), "method"), "model");
		ck_assert_str_eq(str(optim(t, 1), "title"), "warm the cache at START-UP");
		ck_assert(json_is_null(json_object_get(optim(t, 1), "test")));
		ck_assert_str_eq(str(x, "method"), "model");
		ck_assert_str_eq(str(x, "model"), "ex-good:1b");
		ck_assert_str_eq(
		    json_string_value(json_array_get(json_object_get(x, "dropped"), 0)),
		    "Rewrite the service in Rust");
		ck_assert_ptr_null(json_object_get(x, "error"));
		json_decref(req);
		json_decref(t);
		json_decref(job);
	}
}
END_TEST

START_TEST(a_failed_extractor_leaves_it_to_the_tree)
{
	static const char *const models[] = {"ex-broken:1b", "missing-extractor:1b"};
	int k;

	for (k = 0; k < 2; k++) {
		json_t *job, *t = run(k ? "llama" : "ollama", models[k], &job);
		json_t *x = json_object_get(json_object_get(job, "metrics"), "extractor");

		ck_assert_uint_eq(json_array_size(json_object_get(t, "optimizations_discovered")),
				  2);
		ck_assert_str_eq(str(optim(t, 0), "title"), "Shard the index by tenant");
		ck_assert_str_eq(str(optim(t, 0), "method"), "rubric");
		ck_assert_str_eq(str(optim(t, 1), "title"), "Warm the cache at start-up");
		ck_assert_str_eq(str(optim(t, 1), "test"),
				 "the first 100 requests' latency after a restart.");
		ck_assert_str_eq(str(x, "method"), "rubric");
		ck_assert_msg(str(x, "error") != NULL, "no error recorded: %s", json_dumps(x, 0));
		json_decref(t);
		json_decref(job);
	}
}
END_TEST

START_TEST(bad_extractors_are_refused)
{
	static const char head[] = "{\"scenario\":\"response_speed_optimization\","
				   "\"interviewer\":{\"model\":\"iv:1b\"},"
				   "\"candidate\":{\"model\":\"cd:1b\"},";
	char body[600];
	json_t *p;

	snprintf(body, sizeof(body), "%s\"extraction\":\"model\"}", head);
	p = call("POST", "/v1/jobs", body, 400);
	ck_assert_str_eq(str(json_array_get(json_object_get(p, "errors"), 0), "field"),
			 "extractor");
	json_decref(p);
	snprintf(body, sizeof(body), "%s\"extractor\":{\"model\":\"ex-good:1b\"}}", head);
	p = call("POST", "/v1/jobs", body, 400);
	ck_assert_str_eq(str(json_array_get(json_object_get(p, "errors"), 0), "field"),
			 "extractor");
	json_decref(p);
	snprintf(body, sizeof(body),
		 "%s\"extraction\":\"model\",\"extractor\":{\"model\":\"x\",\"backend\":\"nope\"}}",
		 head);
	p = call("POST", "/v1/jobs", body, 400);
	ck_assert_str_eq(str(json_array_get(json_object_get(p, "errors"), 0), "field"),
			 "extractor.backend");
	json_decref(p);
	/* with a judge and no extractor, the judge's model extracts */
	snprintf(body, sizeof(body),
		 "%s\"extraction\":\"model\",\"scoring\":\"judge\","
		 "\"judge\":{\"model\":\"ex-good:1b\",\"backend\":\"ollama\"}}",
		 head);
	p = call("POST", "/v1/jobs", body, 202);
	{
		json_t *job = harness_wait_job(parleyd.port, str(p, "id"), 30000);
		json_t *x = json_object_get(json_object_get(job, "metrics"), "extractor");

		ck_assert_str_eq(str(x, "model"), "ex-good:1b");
		ck_assert_int_eq(json_integer_value(json_object_get(x, "kept")), 2);
		json_decref(job);
	}
	json_decref(p);
}
END_TEST

/* A batch's jobs extract with the batch's extractor. */
START_TEST(a_batch_names_its_extractor)
{
	json_t *b = call("POST", "/v1/batches",
			 "{\"interviewer\":{\"model\":\"iv:1b\",\"backend\":\"ollama\"},"
			 "\"candidates\":[{\"model\":\"cd:1b\",\"backend\":\"ollama\"}],"
			 "\"scenarios\":[\"response_speed_optimization\"],\"extraction\":\"model\","
			 "\"extractor\":{\"model\":\"ex-good:1b\",\"backend\":\"ollama\"}}",
			 202);
	json_t *jobs = NULL, *job, *x;
	char path[160];

	snprintf(path, sizeof(path), "/v1/jobs?batch=%s", str(b, "id"));
	jobs = call("GET", path, NULL, 200);
	ck_assert_uint_eq(json_array_size(json_object_get(jobs, "items")), 1);
	job = harness_wait_job(parleyd.port,
			       str(json_array_get(json_object_get(jobs, "items"), 0), "id"), 30000);
	ck_assert_ptr_nonnull(job);
	ck_assert_str_eq(str(json_object_get(job, "extractor"), "model"), "ex-good:1b");
	x = json_object_get(json_object_get(job, "metrics"), "extractor");
	ck_assert_str_eq(str(x, "method"), "model");
	ck_assert_int_eq(json_integer_value(json_object_get(x, "kept")), 2);
	json_decref(job);
	json_decref(jobs);
	json_decref(b);
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("extract_model");
	TCase *tc = tcase_create("model");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 90);
	tcase_add_test(tc, kept_only_what_the_analysis_says);
	tcase_add_test(tc, a_failed_extractor_leaves_it_to_the_tree);
	tcase_add_test(tc, bad_extractors_are_refused);
	tcase_add_test(tc, a_batch_names_its_extractor);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	harness_cleanup();
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
