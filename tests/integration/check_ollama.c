/*
 * check_ollama.c - parleyd against Ollama as Ollama documents itself (docs/api.md,
 * docs/api/{streaming,errors,usage}.mdx; shared/reference/backend-apis.md §1), played by
 * the fake backend: a final NDJSON chunk that carries text, or none, or no metrics; an
 * error line inside a 200 stream; 404 "model 'x' not found"; 503 "server busy"; 500 "model
 * runner has unexpectedly stopped"; 400 on an option of the wrong type; load_duration when a
 * model is cold. Each case checks what a user
 * of parleyd sees: the turn's text, its metrics (what Ollama did not say is null, never 0),
 * a retry where the failure is transient and a clear job error where it is not.
 */
#include <check.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tests/harness.h"

#define LOAD_MS 400 /* how long the fake takes to load a cold model */

static struct proc fake, parleyd;
static char dbpath[512];

static void setup(void)
{
	static const char *const fake_args[] = {"--load-ms", "400", "--die-with-parent", NULL};
	static int seq;
	char backend[256];
	const char *args[] = {"--backend", backend, NULL};

	snprintf(dbpath, sizeof(dbpath), "%s/ollama-%d-%d.db", harness_tmpdir(), (int)getpid(),
		 seq++);
	ck_assert_int_eq(harness_fake_start(&fake, fake_args), 0);
	snprintf(backend, sizeof(backend), "name=ollama,kind=ollama,url=http://127.0.0.1:%d",
		 fake.port);
	ck_assert_int_eq(harness_parleyd_start(&parleyd, dbpath, args), 0);
}

static void teardown(void)
{
	harness_stop(&parleyd, SIGTERM);
	harness_stop(&fake, SIGTERM);
}

/* POST a control request to the fake; body is JSON. */
static void fake_post(const char *what, const char *body)
{
	char path[64], *out = NULL;
	int st;

	snprintf(path, sizeof(path), "/_fake/%s", what);
	st = harness_http(fake.port, "POST", path, body, NULL, &out);
	ck_assert_msg(st == 200, "POST %s %s: %d %s", path, body, st, out ? out : "");
	free(out);
}

/* The chat requests the fake received, oldest first (a new reference). */
static json_t *fake_requests(void)
{
	json_t *j = NULL;

	ck_assert_int_eq(
	    harness_http_json(fake.port, "GET", "/_fake/requests?path=/api/chat", NULL, &j), 200);
	ck_assert(json_is_array(j));
	return j;
}

/* Submits a 3-turn job of interviewer "iv" and candidate "cd" (or the models given) and
 * waits for its end; returns its id (caller frees) and the job in *job. */
static char *run_job(const char *iv, const char *cd, const char *options, json_t **job)
{
	char body[1024], *id;

	snprintf(body, sizeof(body),
		 "{\"scenario\":\"response_speed_optimization\","
		 "\"interviewer\":{\"model\":\"%s\"},\"candidate\":{\"model\":\"%s\"},"
		 "\"max_turns\":3,\"options\":%s}",
		 iv ? iv : "iv", cd ? cd : "cd", options ? options : "{\"seed\":42}");
	id = harness_submit(parleyd.port, body);
	*job = harness_wait_job(parleyd.port, id, 30000);
	ck_assert_msg(*job != NULL, "job %s did not end within 30 s", id);
	return id;
}

static const char *status_of(const json_t *job)
{
	return json_string_value(json_object_get(job, "status"));
}

static void assert_succeeded(const json_t *job)
{
	char *err = json_dumps(json_object_get(job, "error"), JSON_ENCODE_ANY);

	ck_assert_msg(!strcmp(status_of(job), "succeeded"), "job ended %s: %s", status_of(job),
		      err);
	free(err);
}

/* The job's transcript (a new reference). */
static json_t *transcript(const char *id)
{
	char path[128];
	json_t *t = NULL;

	snprintf(path, sizeof(path), "/v1/jobs/%s/transcript", id);
	ck_assert_int_eq(harness_http_json(parleyd.port, "GET", path, NULL, &t), 200);
	return t;
}

/* Borrowed from t. */
static json_t *turn_of(json_t *t, int idx)
{
	json_t *turn = json_array_get(json_object_get(t, "conversation"), (size_t)idx - 1);

	ck_assert_msg(turn != NULL, "no turn %d", idx);
	return turn;
}

static json_t *metric(json_t *turn, const char *key)
{
	return json_object_get(json_object_get(turn, "metrics"), key);
}

/* The failed job's error message, after checking its code (borrowed from job). */
static const char *failed_with(const json_t *job, const char *code)
{
	json_t *err = json_object_get(job, "error");
	const char *msg = json_string_value(json_object_get(err, "message"));

	ck_assert_msg(!strcmp(status_of(job), "failed"), "job ended %s, want failed",
		      status_of(job));
	ck_assert_str_eq(json_string_value(json_object_get(err, "code")), code);
	ck_assert_ptr_nonnull(msg);
	return msg;
}

static void assert_contains(const char *hay, const char *needle)
{
	ck_assert_msg(strstr(hay, needle) != NULL, "'%s' not in: %s", needle, hay);
}

/* How many chat requests named model. */
static size_t requests_for(json_t *reqs, const char *model)
{
	json_t *r;
	size_t i, n = 0;

	json_array_foreach(reqs, i, r)
	{
		const char *m = json_string_value(json_object_get(r, "model"));

		n += m && !strcmp(m, model);
	}
	return n;
}

/*
 * docs/api/streaming.mdx: the last chunk carries text as well as done:true. A reply of one
 * piece is that chunk alone. docs/api.md: the chat "Final response" has no message at all.
 * Every byte of every reply must end up in its turn.
 */
START_TEST(final_chunk_text_is_kept)
{
	static const char iv1[] = "Hello, I am Alex. How do you answer complex questions today?";
	static const char iv2[] = "1. Analysis: slow.\n2. Opportunities: caching.\n3. Suggestions:"
				  "\n- **Cache** #test_this\n  Test: time it.\n4. Reasoning: less "
				  "work is faster!";
	json_t *job, *t, *script, *reqs;
	char *id, *text;

	script = json_pack("{s:{s:{s:[s,s]},s:{s:[s]}}}", "models", "iv", "replies", iv1, iv2, "cd",
			   "replies", "Yes.");
	text = json_dumps(script, 0);
	fake_post("script", text);
	free(text);
	json_decref(script);
	/* turn 1: the final object has no message (its last piece came in the chunk before);
	 * turn 3: the usual final object that carries the last piece */
	fake_post("fault", "{\"mode\":\"omit_fields\",\"fields\":\"message\",\"model\":\"iv\"}");
	id = run_job(NULL, NULL, NULL, &job);
	assert_succeeded(job);
	t = transcript(id);
	ck_assert_str_eq(json_string_value(json_object_get(turn_of(t, 1), "message")), iv1);
	/* "Yes." is one piece: the stream is a single done:true object */
	ck_assert_str_eq(json_string_value(json_object_get(turn_of(t, 2), "message")), "Yes.");
	ck_assert_str_eq(json_string_value(json_object_get(turn_of(t, 3), "message")), iv2);
	ck_assert_int_eq(json_integer_value(metric(turn_of(t, 2), "completion_tokens")), 1);
	json_decref(t);
	reqs = fake_requests();
	ck_assert_str_eq(json_string_value(json_object_get(json_array_get(reqs, 0), "fault")),
			 "omit_fields");
	json_decref(reqs);
	json_decref(job);
	free(id);
}
END_TEST

/* docs/api/usage.mdx: durations are nanoseconds; the turn shows them in ms. Ollama does not
 * say how much of the prompt was cached, so that is null. */
START_TEST(metrics_as_reported)
{
	json_t *job, *t, *turn, *reqs;
	char *id;
	size_t i;

	id = run_job(NULL, NULL, "{\"seed\":42,\"num_predict\":5}", &job);
	assert_succeeded(job);
	ck_assert(json_is_null(json_object_get(json_object_get(job, "metrics"), "cached_tokens")));
	t = transcript(id);
	json_array_foreach(json_object_get(t, "conversation"), i, turn)
	{
		long ptok = (long)json_integer_value(metric(turn, "prompt_tokens"));

		ck_assert_int_gt(ptok, 0);
		/* the fake bills 50 us a prompt token: prompt_eval_duration = ptok * 50000 ns */
		ck_assert_msg(fabs(json_number_value(metric(turn, "prompt_ms")) - ptok * 0.05) <
				  1e-6,
			      "turn %zu: prompt_ms %g for %ld tokens", i + 1,
			      json_number_value(metric(turn, "prompt_ms")), ptok);
		ck_assert_int_eq(json_integer_value(metric(turn, "completion_tokens")), 5);
		ck_assert_str_eq(json_string_value(metric(turn, "finish_reason")), "length");
		ck_assert(json_number_value(metric(turn, "gen_ms")) > 0);
		ck_assert(json_number_value(metric(turn, "tokens_per_s")) > 0);
		ck_assert(json_is_number(metric(turn, "load_ms")));
		ck_assert(json_is_number(metric(turn, "ttft_ms")));
		ck_assert(json_is_null(metric(turn, "cached_tokens")));
		ck_assert_int_eq(json_integer_value(metric(turn, "attempts")), 1);
	}
	json_decref(t);

	/* what parleyd sends passes Ollama's checks and keeps the model loaded as it is */
	reqs = fake_requests();
	ck_assert_uint_eq(json_array_size(reqs), 3);
	json_array_foreach(reqs, i, turn)
	{
		json_t *body = json_object_get(turn, "body"),
		       *opts = json_object_get(body, "options");

		ck_assert_int_eq(json_integer_value(json_object_get(turn, "status")), 200);
		ck_assert(json_is_true(json_object_get(body, "stream")));
		ck_assert(json_is_false(json_object_get(body, "think")));
		ck_assert(json_object_get(body, "keep_alive") != NULL);
		/* a num_ctx that changes between requests reloads the model */
		ck_assert(json_is_integer(json_object_get(opts, "num_ctx")));
		ck_assert(
		    json_equal(json_object_get(opts, "num_ctx"),
			       json_object_get(
				   json_object_get(json_object_get(json_array_get(reqs, 0), "body"),
						   "options"),
				   "num_ctx")));
		ck_assert_int_eq(json_integer_value(json_object_get(opts, "num_predict")), 5);
		ck_assert_int_eq(json_integer_value(json_object_get(opts, "seed")), 42);
	}
	json_decref(reqs);
	json_decref(job);
	free(id);
}
END_TEST

/* Ollama's metrics are omitempty: what is missing is unknown (null), never 0. */
START_TEST(missing_metrics_are_null)
{
	static const char *const unknown1[] = {"prompt_tokens", "completion_tokens", "prompt_ms",
					       "gen_ms",	"tokens_per_s",	     "load_ms"};
	json_t *job, *t, *turn;
	char *id;
	size_t i;

	fake_post("fault", "{\"mode\":\"omit_fields\",\"fields\":\"metrics\",\"model\":\"iv\"}");
	/* older builds dropped the prompt counts on a cache hit (ollama#2068) */
	fake_post("fault", "{\"mode\":\"omit_fields\",\"model\":\"cd\","
			   "\"fields\":\"prompt_eval_count,prompt_eval_duration,done_reason\"}");
	id = run_job(NULL, NULL, NULL, &job);
	assert_succeeded(job);
	t = transcript(id);

	turn = turn_of(t, 1);
	for (i = 0; i < ARRAY_SIZE(unknown1); i++)
		ck_assert_msg(json_is_null(metric(turn, unknown1[i])), "turn 1 %s is not null",
			      unknown1[i]);
	/* measured by parleyd, so known whatever Ollama says */
	ck_assert(json_number_value(metric(turn, "ttft_ms")) > 0);
	ck_assert(json_number_value(metric(turn, "wall_ms")) > 0);
	ck_assert_str_eq(json_string_value(metric(turn, "finish_reason")), "stop");
	ck_assert(strlen(json_string_value(json_object_get(turn, "message"))) > 0);

	turn = turn_of(t, 2);
	ck_assert(json_is_null(metric(turn, "prompt_tokens")));
	ck_assert(json_is_null(metric(turn, "prompt_ms")));
	ck_assert(json_is_null(metric(turn, "finish_reason")));
	ck_assert_int_gt(json_integer_value(metric(turn, "completion_tokens")), 0);
	ck_assert(json_number_value(metric(turn, "gen_ms")) > 0);

	turn = turn_of(t, 3);
	ck_assert_int_gt(json_integer_value(metric(turn, "prompt_tokens")), 0);
	ck_assert(json_number_value(metric(turn, "prompt_ms")) > 0);
	json_decref(t);
	json_decref(job);
	free(id);
}
END_TEST

/* docs/api/errors.mdx: an error after the stream started keeps status 200 and arrives as a
 * {"error"} line. Text has already streamed, so parleyd does not retry silently. */
START_TEST(error_line_mid_stream_fails_the_job)
{
	json_t *job, *reqs;
	const char *msg;
	char *id;

	fake_post("fault", "{\"mode\":\"error_in_stream\",\"model\":\"iv\",\"after_tokens\":4,"
			   "\"message\":\"an error was encountered while running the model\"}");
	id = run_job(NULL, NULL, NULL, &job);
	msg = failed_with(job, "backend_error");
	assert_contains(msg, "an error was encountered while running the model");
	assert_contains(msg, "'ollama'");
	assert_contains(msg, "'iv'");
	assert_contains(msg, "turn 1");
	ck_assert_int_eq(json_integer_value(json_object_get(job, "turns_completed")), 0);
	reqs = fake_requests();
	ck_assert_uint_eq(json_array_size(reqs), 1);
	ck_assert_int_eq(json_integer_value(json_object_get(json_array_get(reqs, 0), "status")),
			 200);
	json_decref(reqs);
	json_decref(job);
	free(id);
}
END_TEST

/* 404 {"error":"model 'x' not found"}: not transient, and the message says what to run. */
START_TEST(model_not_found_fails_with_pull_hint)
{
	json_t *job, *reqs;
	const char *msg;
	char *id;

	fake_post("script", "{\"missing\":[\"ghost:7b\"]}");
	id = run_job("ghost:7b", NULL, NULL, &job);
	msg = failed_with(job, "model_missing");
	assert_contains(msg, "ollama pull ghost:7b");
	assert_contains(msg, "'ollama'");
	reqs = fake_requests();
	ck_assert_uint_eq(json_array_size(reqs), 1);
	ck_assert_int_eq(json_integer_value(json_object_get(json_array_get(reqs, 0), "status")),
			 404);
	json_decref(reqs);
	json_decref(job);
	free(id);
}
END_TEST

/* 503 "server busy, please try again.  maximum pending requests exceeded" is transient: the
 * turn is retried after a backoff and the job succeeds; the turn says so. */
START_TEST(server_busy_is_retried)
{
	json_t *job, *t, *reqs, *r1, *r2;
	const char *note;
	char *id;

	fake_post("fault", "{\"mode\":\"http_503\",\"model\":\"iv\"}");
	id = run_job(NULL, NULL, NULL, &job);
	assert_succeeded(job);
	t = transcript(id);
	ck_assert_int_eq(json_integer_value(metric(turn_of(t, 1), "attempts")), 2);
	note = json_string_value(json_object_get(turn_of(t, 1), "note"));
	ck_assert_msg(note != NULL, "turn 1 has no note of its retry");
	assert_contains(note, "server busy");
	ck_assert_int_eq(json_integer_value(metric(turn_of(t, 2), "attempts")), 1);
	reqs = fake_requests();
	ck_assert_uint_eq(requests_for(reqs, "iv"), 3);
	r1 = json_array_get(reqs, 0);
	r2 = json_array_get(reqs, 1);
	ck_assert_int_eq(json_integer_value(json_object_get(r1, "status")), 503);
	ck_assert_int_eq(json_integer_value(json_object_get(r2, "status")), 200);
	/* not hammered: the retry waited (base delay 500 ms, jitter down to half of it) */
	ck_assert_int_ge(json_integer_value(json_object_get(r2, "received_at_ms")) -
			     json_integer_value(json_object_get(r1, "received_at_ms")),
			 200);
	json_decref(reqs);
	json_decref(t);
	json_decref(job);
	free(id);
}
END_TEST

/* 500 "model runner has unexpectedly stopped" (backend-apis.md: a load failure; worth one more
 * try, not more). */
START_TEST(runner_stopped_is_retried_once)
{
	json_t *job, *t, *reqs;
	const char *msg;
	char *id;

	fake_post("fault", "{\"mode\":\"http_500\",\"model\":\"iv\"}");
	id = run_job(NULL, NULL, NULL, &job);
	assert_succeeded(job);
	t = transcript(id);
	ck_assert_int_eq(json_integer_value(metric(turn_of(t, 1), "attempts")), 2);
	assert_contains(json_string_value(json_object_get(turn_of(t, 1), "note")),
			"unexpectedly stopped");
	json_decref(t);
	json_decref(job);
	free(id);

	/* twice in a row: the job fails with Ollama's words, after two attempts */
	fake_post("reset", "{}");
	fake_post("fault", "{\"mode\":\"http_500\",\"model\":\"iv\",\"count\":-1}");
	id = run_job(NULL, NULL, NULL, &job);
	msg = failed_with(job, "backend_error");
	assert_contains(msg, "unexpectedly stopped");
	assert_contains(msg, "'iv'");
	reqs = fake_requests();
	ck_assert_uint_eq(json_array_size(reqs), 2);
	json_decref(reqs);
	json_decref(job);
	free(id);
}
END_TEST

/* 400 `option "num_ctx" must be of type integer`: a request Ollama refuses will be refused
 * again, so no retry, and the job error carries Ollama's words. */
START_TEST(wrong_option_type_fails_clearly)
{
	json_t *job, *reqs;
	const char *msg;
	char *id;

	fake_post("fault", "{\"mode\":\"bad_option\",\"option\":\"num_ctx\"}");
	id = run_job(NULL, NULL, NULL, &job);
	msg = failed_with(job, "backend_rejected");
	assert_contains(msg, "option \"num_ctx\" must be of type integer");
	assert_contains(msg, "HTTP 400");
	assert_contains(msg, "'iv'");
	reqs = fake_requests();
	ck_assert_uint_eq(json_array_size(reqs), 1);
	json_decref(reqs);
	json_decref(job);
	free(id);
}
END_TEST

/* load_duration covers loading a cold model: the first turn of each model shows it, a warm
 * model's turn does not, and the load delays the first token. */
START_TEST(cold_model_reports_load_duration)
{
	json_t *job, *t;
	double l1, l2, l3;
	char *id;

	id = run_job(NULL, NULL, NULL, &job);
	assert_succeeded(job);
	t = transcript(id);
	l1 = json_number_value(metric(turn_of(t, 1), "load_ms"));
	l2 = json_number_value(metric(turn_of(t, 2), "load_ms"));
	l3 = json_number_value(metric(turn_of(t, 3), "load_ms"));
	ck_assert_msg(l1 >= LOAD_MS && l2 >= LOAD_MS, "cold loads took %g and %g ms", l1, l2);
	ck_assert_msg(l3 >= 0 && l3 < 50, "a warm model's load_ms is %g", l3);
	ck_assert(json_number_value(metric(turn_of(t, 1), "ttft_ms")) >= LOAD_MS);
	ck_assert(json_number_value(metric(turn_of(t, 3), "ttft_ms")) < LOAD_MS);
	json_decref(t);
	json_decref(job);
	free(id);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("ollama");
	TCase *tc = tcase_create("as documented");
	SRunner *sr;
	int failed;

	harness_tmpdir();
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, final_chunk_text_is_kept);
	tcase_add_test(tc, metrics_as_reported);
	tcase_add_test(tc, missing_metrics_are_null);
	tcase_add_test(tc, error_line_mid_stream_fails_the_job);
	tcase_add_test(tc, model_not_found_fails_with_pull_hint);
	tcase_add_test(tc, server_busy_is_retried);
	tcase_add_test(tc, runner_stopped_is_retried_once);
	tcase_add_test(tc, wrong_option_type_fails_clearly);
	tcase_add_test(tc, cold_model_reports_load_duration);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	harness_cleanup();
	return failed ? 1 : 0;
}
