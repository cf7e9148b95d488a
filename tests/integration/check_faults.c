/*
 * check_faults.c - the fault matrix: every way a model server misbehaves,
 * injected by the fake backend into the first model call of a job, on both
 * wire protocols, and what the job shows for it afterwards: its end state,
 * its error, and the turn's attempts and note.
 */
#include <check.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tests/harness.h"

static struct proc fake, parleyd;

static void start(void)
{
	char cfg[512], db[512], json[1024];
	const char *args[] = {"--config", cfg, NULL};
	FILE *f;

	ck_assert_int_eq(harness_fake_start(&fake, NULL), 0);
	snprintf(cfg, sizeof(cfg), "%s/faults-%d.json", harness_tmpdir(), (int)getpid());
	snprintf(db, sizeof(db), "%s/faults-%d.db", harness_tmpdir(), (int)getpid());
	/* short deadlines and backoff so each fault plays out in a second or two */
	snprintf(json, sizeof(json),
		 "{\"retry_base_delay_ms\": 50, \"retry_max_delay_ms\": 400,"
		 " \"backends\": ["
		 "{\"name\":\"ollama\",\"kind\":\"ollama\",\"url\":\"http://127.0.0.1:%d\","
		 "\"first_byte_timeout_ms\":1500,\"idle_timeout_ms\":1000},"
		 "{\"name\":\"llama\",\"kind\":\"llama-server\",\"url\":\"http://127.0.0.1:%d\","
		 "\"first_byte_timeout_ms\":1500,\"idle_timeout_ms\":1000}]}",
		 fake.port, fake.port);
	f = fopen(cfg, "w");
	ck_assert_ptr_nonnull(f);
	fputs(json, f);
	fclose(f);
	ck_assert_int_eq(harness_parleyd_start(&parleyd, db, args), 0);
}

static void stop(void)
{
	harness_stop(&parleyd, SIGTERM);
	harness_stop(&fake, SIGTERM);
}

static void fault(const char *json)
{
	char *out = NULL;
	int st = harness_http(fake.port, "POST", "/_fake/fault", json, NULL, &out);

	ck_assert_msg(st == 200, "fake refused fault %s: %d %s", json, st, out);
	free(out);
}

/* Runs one job on backend; returns the finished job, *t0 its transcript. */
static json_t *run(const char *backend, json_t **transcript, double *seconds)
{
	char body[512], path[128];
	json_t *j = NULL, *job;
	int64_t t0 = util_mono_us();
	const char *id;

	snprintf(body, sizeof(body),
		 "{\"scenario\":\"response_speed_optimization\","
		 "\"interviewer\":{\"model\":\"gemma3:1b\",\"backend\":\"%s\"},"
		 "\"candidate\":{\"model\":\"gemma3n:latest\",\"backend\":\"%s\"}}",
		 backend, backend);
	ck_assert_int_eq(harness_http_json(parleyd.port, "POST", "/v1/jobs", body, &j), 202);
	id = json_string_value(json_object_get(j, "id"));
	job = harness_wait_job(parleyd.port, id, 60000);
	ck_assert_ptr_nonnull(job);
	*seconds = (double)(util_mono_us() - t0) / 1e6;
	snprintf(path, sizeof(path), "/v1/jobs/%s/transcript", id);
	ck_assert_int_eq(harness_http_json(parleyd.port, "GET", path, NULL, transcript), 200);
	json_decref(j);
	return job;
}

static const char *status_of(json_t *job)
{
	return json_string_value(json_object_get(job, "status"));
}

static json_t *turn1(json_t *t)
{
	return json_array_get(json_object_get(t, "conversation"), 0);
}

/* A fault that a retry gets past: the job succeeds, turn 1 took two attempts. */
static void recovers(const char *backend, const char *fault_json, const char *note_part)
{
	json_t *t = NULL, *job, *turn;
	const char *note;
	double secs;

	fault(fault_json);
	job = run(backend, &t, &secs);
	ck_assert_msg(strcmp(status_of(job), "succeeded") == 0, "%s on %s: job %s: %s", fault_json,
		      backend, status_of(job), json_dumps(json_object_get(job, "error"), 0));
	turn = turn1(t);
	/* the fault costs one attempt (a loaded machine may add a slow retry, never fewer) */
	ck_assert_int_ge(
	    json_integer_value(json_object_get(json_object_get(turn, "metrics"), "attempts")), 2);
	note = json_string_value(json_object_get(turn, "note"));
	ck_assert_msg(note && strstr(note, note_part), "%s: note '%s' lacks '%s'", fault_json,
		      note ? note : "(none)", note_part);
	/* the stored text is the complete reply of the retry, not a splice */
	ck_assert_ptr_nonnull(strstr(json_string_value(json_object_get(turn, "message")),
				     "gemma3:1b speaking on turn 1"));
	printf("fault %-60s %-6s recovered in %.2f s: %s\n", fault_json, backend, secs, note);
	json_decref(job);
	json_decref(t);
}

/* A fault that does not go away: the job fails with this error code. */
static void fails(const char *backend, const char *fault_json, const char *code,
		  const char *msg_part)
{
	json_t *t = NULL, *job, *err;
	const char *msg;
	double secs;

	fault(fault_json);
	job = run(backend, &t, &secs);
	ck_assert_str_eq(status_of(job), "failed");
	err = json_object_get(job, "error");
	ck_assert_str_eq(json_string_value(json_object_get(err, "code")), code);
	msg = json_string_value(json_object_get(err, "message"));
	ck_assert_msg(strstr(msg, msg_part), "'%s' not in '%s'", msg_part, msg);
	ck_assert_msg(strstr(msg, "gemma3:1b"), "the error names no model: %s", msg);
	printf("fault %-60s %-6s failed in %.2f s: %s: %s\n", fault_json, backend, secs, code, msg);
	json_decref(job);
	json_decref(t);
	fault("{\"mode\":\"clear\"}");
}

static void matrix(const char *b)
{
	recovers(b, "{\"mode\":\"refuse\"}", "failed, retried");
	recovers(b, "{\"mode\":\"reset\",\"after_tokens\":3}", "cut after partial output");
	recovers(b, "{\"mode\":\"stall_first_byte\",\"ms\":4000}", "failed, retried");
	recovers(b, "{\"mode\":\"stall_mid_stream\",\"ms\":4000}", "cut after partial output");
	recovers(b, "{\"mode\":\"malformed\",\"after_tokens\":2}", "cut after partial output");
	recovers(b, "{\"mode\":\"cut\",\"after_tokens\":3}", "cut after partial output");
	recovers(b, "{\"mode\":\"http_503\",\"retry_after\":1}", "failed, retried");
	recovers(b, "{\"mode\":\"http_429\"}", "failed, retried");
	fails(b, "{\"mode\":\"cut\",\"count\":-1}", "backend_protocol", "after 5 attempts");
	fails(b, "{\"mode\":\"error_in_stream\"}", "backend_error", "turn 1 (interviewer)");
}

START_TEST(ollama_faults)
{
	json_t *t = NULL, *job;
	double secs;

	start();
	matrix("ollama");
	/* Ollama's "runner unexpectedly stopped" is retried once, and only once */
	recovers("ollama", "{\"mode\":\"http_500\"}", "unexpectedly stopped");
	fails("ollama", "{\"mode\":\"http_500\",\"count\":-1}", "backend_error",
	      "unexpectedly stopped");
	/* three cut streams in a row are one entry of the turn's note */
	fault("{\"mode\":\"cut\",\"count\":3}");
	job = run("ollama", &t, &secs);
	ck_assert_str_eq(status_of(job), "succeeded");
	ck_assert_int_eq(
	    json_integer_value(json_object_get(json_object_get(turn1(t), "metrics"), "attempts")),
	    4);
	ck_assert_msg(strncmp(json_string_value(json_object_get(turn1(t), "note")),
			      "attempts 1-3 cut after partial output", 37) == 0,
		      "note: %s", json_string_value(json_object_get(turn1(t), "note")));
	ck_assert_ptr_null(strstr(json_string_value(json_object_get(turn1(t), "note")), " | "));
	json_decref(job);
	json_decref(t);
	/* a slow but steady stream is not a stall */
	fault("{\"mode\":\"trickle\",\"ms\":100}");
	job = run("ollama", &t, &secs);
	ck_assert_str_eq(status_of(job), "succeeded");
	ck_assert_int_eq(
	    json_integer_value(json_object_get(json_object_get(turn1(t), "metrics"), "attempts")),
	    1);
	json_decref(job);
	json_decref(t);
	stop();
}
END_TEST

START_TEST(llama_server_faults)
{
	start();
	matrix("llama");
	fails("llama", "{\"mode\":\"context_overflow\"}", "context_overflow", "context");
	stop();
}
END_TEST

START_TEST(retry_after_is_honoured)
{
	json_t *t = NULL, *job;
	double secs;

	start();
	fault("{\"mode\":\"http_503\",\"retry_after\":2}");
	job = run("ollama", &t, &secs);
	ck_assert_str_eq(status_of(job), "succeeded");
	ck_assert_msg(secs >= 2.0, "retried after %.2f s, before the 2 s Retry-After", secs);
	json_decref(job);
	json_decref(t);
	stop();
}
END_TEST

int main(void)
{
	Suite *s = suite_create("faults");
	TCase *tc = tcase_create("matrix");
	SRunner *sr;
	int failed;

	harness_tmpdir();
	tcase_set_timeout(tc, 300);
	tcase_add_test(tc, ollama_faults);
	tcase_add_test(tc, llama_server_faults);
	tcase_add_test(tc, retry_after_is_honoured);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	harness_cleanup();
	return failed ? 1 : 0;
}
