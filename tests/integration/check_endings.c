/*
 * check_endings.c - how a job ends, against the real parleyd and the fake
 * backend: a cancel while a slow judge grades ends the job cancelled with its
 * turns and scores; SIGTERM while the judge grades gives the job back, and it
 * is graded after the restart; cancelling a queued job ends the event stream
 * of whoever follows it; a worker that lost its claim leaves no turn "being
 * written" for a client that joins later.
 */
#include <check.h>
#include <curl/curl.h>
#include <pthread.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tests/harness.h"

static struct proc fake, parleyd;
static char dbpath[512], cfgpath[512];

/* A grade that judge_parse() accepts, streamed slowly: about 50 pieces. */
#define GRADE                                                                                      \
	"{\\\"interview_quality\\\":7,\\\"interview_quality_reasoning\\\":\\\"clear questions "    \
	"that stayed on the problem\\\",\\\"candidate_engagement\\\":6,"                           \
	"\\\"candidate_engagement_reasoning\\\":\\\"specific answers about its workflow\\\"}"

static void script_judge(int token_delay_ms)
{
	char body[1024], *out = NULL;
	int st;

	snprintf(body, sizeof(body),
		 "{\"models\":{\"judge-slow\":{\"replies\":[\"" GRADE "\"],"
		 "\"token_delay_ms\":%d}}}",
		 token_delay_ms);
	st = harness_http(fake.port, "POST", "/_fake/script", body, NULL, &out);
	ck_assert_msg(st == 200, "fake refused the script: %d %s", st, out);
	free(out);
}

/* Writes the config (one worker, no drain) and starts parleyd on dbpath. */
static void start_parleyd(void)
{
	char json[512];
	const char *args[] = {"--config", cfgpath, NULL};
	FILE *f;

	snprintf(json, sizeof(json),
		 "{\"workers\": 1, \"drain_timeout_s\": 0, \"backends\": ["
		 "{\"name\":\"ollama\",\"kind\":\"ollama\",\"url\":\"http://127.0.0.1:%d\"}]}",
		 fake.port);
	f = fopen(cfgpath, "w");
	ck_assert_ptr_nonnull(f);
	fputs(json, f);
	fclose(f);
	ck_assert_int_eq(harness_parleyd_start(&parleyd, dbpath, args), 0);
}

static void start(const char *token_delay_ms)
{
	const char *fargs[] = {"--token-delay-ms", token_delay_ms, NULL};
	static int seq;

	snprintf(dbpath, sizeof(dbpath), "%s/endings-%d-%d.db", harness_tmpdir(), (int)getpid(),
		 seq);
	snprintf(cfgpath, sizeof(cfgpath), "%s/endings-%d-%d.json", harness_tmpdir(), (int)getpid(),
		 seq++);
	ck_assert_int_eq(harness_fake_start(&fake, fargs), 0);
	start_parleyd();
}

static void stop(void)
{
	harness_stop(&parleyd, SIGTERM);
	harness_stop(&fake, SIGTERM);
}

static char *submit(const char *extra)
{
	char body[512];
	char *id;

	snprintf(body, sizeof(body),
		 "{\"scenario\":\"response_speed_optimization\","
		 "\"interviewer\":{\"model\":\"gemma3:1b\"},"
		 "\"candidate\":{\"model\":\"gemma3n:latest\"}%s}",
		 extra);
	id = harness_submit(parleyd.port, body);
	return id;
}

static const char *str(json_t *o, const char *key)
{
	const char *s = json_string_value(json_object_get(o, key));

	return s ? s : "";
}

/* Waits until the fake has a chat request for model that is still being answered. */
static int wait_call_in_flight(const char *model, long timeout_ms)
{
	int64_t deadline = util_mono_us() + timeout_ms * 1000;

	while (util_mono_us() < deadline) {
		json_t *log = NULL, *e;
		size_t i;
		int found = 0;

		ck_assert_int_eq(harness_http_json(fake.port, "GET", "/_fake/requests", NULL, &log),
				 200);
		json_array_foreach(log, i, e)
		{
			if (!strcmp(str(e, "model"), model) &&
			    !json_is_true(json_object_get(e, "finished")))
				found = 1;
		}
		json_decref(log);
		if (found)
			return 1;
		usleep(50000);
	}
	return 0;
}

/* Starts both daemons and a job whose slow judge is grading it when this returns. */
static char *start_judging(void)
{
	char *id;

	start("0");
	script_judge(150);
	id = submit(",\"scoring\":\"judge\",\"judge\":{\"model\":\"judge-slow\"}");
	ck_assert_msg(wait_call_in_flight("judge-slow", 30000), "the judge was never called");
	return id;
}

static void cancel(const char *id, int want)
{
	char path[96];
	json_t *j = NULL;

	snprintf(path, sizeof(path), "/v1/jobs/%s/cancel", id);
	ck_assert_int_eq(harness_http_json(parleyd.port, "POST", path, NULL, &j), want);
	json_decref(j);
}

static size_t nturns(const char *id)
{
	char path[96];
	json_t *t = NULL;
	size_t n;

	snprintf(path, sizeof(path), "/v1/jobs/%s/transcript", id);
	ck_assert_int_eq(harness_http_json(parleyd.port, "GET", path, NULL, &t), 200);
	n = json_array_size(json_object_get(t, "conversation"));
	json_decref(t);
	return n;
}

START_TEST(cancel_while_the_judge_grades)
{
	json_t *job, *m;
	char *id;

	id = start_judging();
	cancel(id, 202);
	job = harness_wait_job(parleyd.port, id, 20000);
	ck_assert_ptr_nonnull(job);
	ck_assert_msg(!strcmp(str(job, "status"), "cancelled"), "status %s, error %s",
		      str(job, "status"), json_dumps(json_object_get(job, "error"), 0));
	ck_assert(json_is_true(json_object_get(job, "cancel_requested")));
	/* it keeps its turns and its scores */
	ck_assert_int_eq(json_integer_value(json_object_get(job, "turns_completed")), 3);
	ck_assert_int_eq(nturns(id), 3);
	m = json_object_get(job, "metrics");
	ck_assert_msg(json_is_object(json_object_get(m, "scores")), "no scores in %s",
		      json_dumps(m, 0));
	ck_assert(json_is_number(json_object_get(m, "interview_quality")));
	ck_assert_int_eq(json_integer_value(json_object_get(m, "optimizations_found")), 3);
	/* and the judge says it was cut, never a grade it did not give */
	ck_assert_ptr_null(json_object_get(json_object_get(m, "judge"), "interview_quality"));
	ck_assert_ptr_nonnull(json_object_get(json_object_get(m, "judge"), "error"));
	json_decref(job);
	free(id);
	stop();
}
END_TEST

START_TEST(sigterm_while_the_judge_grades)
{
	json_t *job, *g;
	char *id;

	id = start_judging();
	ck_assert_int_eq(harness_stop(&parleyd, SIGTERM), 0);
	/* after the restart the judge answers at once, and the job is graded */
	script_judge(0);
	start_parleyd();
	job = harness_wait_job(parleyd.port, id, 30000);
	ck_assert_ptr_nonnull(job);
	ck_assert_msg(!strcmp(str(job, "status"), "succeeded"), "status %s", str(job, "status"));
	ck_assert_int_eq(json_integer_value(json_object_get(job, "attempts")), 2);
	ck_assert_int_eq(nturns(id), 3);
	g = json_object_get(json_object_get(job, "metrics"), "judge");
	ck_assert_msg(json_object_get(g, "error") == NULL, "the judge's grade was lost: %s",
		      json_dumps(g, 0));
	ck_assert_int_eq(json_integer_value(json_object_get(g, "interview_quality")), 7);
	ck_assert_int_eq(json_integer_value(json_object_get(g, "candidate_engagement")), 6);
	json_decref(job);
	free(id);
	stop();
}
END_TEST

/* A client following a job's events on its own thread. */
struct follower {
	pthread_t thread;
	char id[32];
	long timeout_ms;
	pthread_mutex_t lock; /* guards text */
	struct strbuf text;
	atomic_int done, ended;
};

static size_t follower_data(char *data, size_t size, size_t nmemb, void *ud)
{
	struct follower *f = ud;

	pthread_mutex_lock(&f->lock);
	strbuf_add(&f->text, data, size * nmemb);
	pthread_mutex_unlock(&f->lock);
	return size * nmemb;
}

static void *follower_main(void *arg)
{
	struct follower *f = arg;
	CURL *c = curl_easy_init();
	char url[160];

	snprintf(url, sizeof(url), "http://127.0.0.1:%d/v1/jobs/%s/events", parleyd.port, f->id);
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, f->timeout_ms);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, follower_data);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, f);
	/* CURLE_OK: the server ended the stream itself; a timeout means it never did */
	atomic_store(&f->ended, curl_easy_perform(c) == CURLE_OK);
	atomic_store(&f->done, 1);
	curl_easy_cleanup(c);
	return NULL;
}

static void follow(struct follower *f, const char *id, long timeout_ms)
{
	memset(f, 0, sizeof(*f));
	snprintf(f->id, sizeof(f->id), "%s", id);
	f->timeout_ms = timeout_ms;
	pthread_mutex_init(&f->lock, NULL);
	strbuf_init(&f->text, 0);
	ck_assert_int_eq(pthread_create(&f->thread, NULL, follower_main, f), 0);
}

static int follower_saw(struct follower *f, const char *needle)
{
	int seen;

	pthread_mutex_lock(&f->lock);
	seen = f->text.buf && strstr(f->text.buf, needle) != NULL;
	pthread_mutex_unlock(&f->lock);
	return seen;
}

static void follower_join(struct follower *f)
{
	pthread_join(f->thread, NULL);
	pthread_mutex_destroy(&f->lock);
}

START_TEST(cancelling_a_queued_job_ends_its_stream)
{
	struct follower f;
	char *busy, *queued;
	json_t *job;
	int i;

	start("20"); /* the one worker is busy with the first job for seconds */
	busy = submit("");
	queued = submit("");
	follow(&f, queued, 15000);
	for (i = 0; i < 200 && !follower_saw(&f, "event: status\n"); i++)
		usleep(25000);
	ck_assert_msg(follower_saw(&f, "\"status\":\"queued\""), "the follower saw no queued job");
	cancel(queued, 202);
	follower_join(&f);
	ck_assert_msg(atomic_load(&f.ended), "the stream of a cancelled queued job did not end");
	ck_assert_ptr_nonnull(strstr(f.text.buf, "event: job_finished\n"));
	ck_assert_ptr_nonnull(strstr(f.text.buf, "\"status\":\"cancelled\""));
	strbuf_release(&f.text);
	job = harness_wait_job(parleyd.port, queued, 1000);
	ck_assert_str_eq(str(job, "status"), "cancelled");
	json_decref(job);
	cancel(busy, 202);
	free(busy);
	free(queued);
	stop();
}
END_TEST

/* Another process takes the job over: its attempt moves on under the worker. */
static void take_over(const char *id)
{
	sqlite3 *h;
	sqlite3_stmt *st;

	ck_assert_int_eq(sqlite3_open_v2(dbpath, &h, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
	sqlite3_busy_timeout(h, 5000);
	ck_assert_int_eq(sqlite3_prepare_v2(h,
					    "UPDATE jobs SET attempts = attempts + 1 WHERE id = ?1",
					    -1, &st, NULL),
			 SQLITE_OK);
	sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
	ck_assert_int_eq(sqlite3_step(st), SQLITE_DONE);
	sqlite3_finalize(st);
	ck_assert_int_eq(sqlite3_changes(h), 1);
	sqlite3_close(h);
}

static int log_has(const char *needle)
{
	char *text = harness_slurp(parleyd.log, NULL);
	int has = text && strstr(text, needle) != NULL;

	free(text);
	return has;
}

START_TEST(a_lost_claim_leaves_no_turn_in_progress)
{
	struct follower f;
	char *id;
	int i;

	start("40"); /* turn 1 takes a few seconds */
	id = submit("");
	ck_assert_msg(wait_call_in_flight("gemma3:1b", 20000), "turn 1 never started");
	take_over(id);
	/* the worker finds out when it stores turn 1, and gives the job up */
	for (i = 0; i < 400 && !log_has("cannot store turn"); i++)
		usleep(50000);
	ck_assert_msg(log_has("cannot store turn"), "the worker did not notice its lost claim");
	usleep(200000);
	/* a client that joins now sees no turn being written by a worker that has let go */
	follow(&f, id, 1500);
	follower_join(&f);
	ck_assert_msg(f.text.buf && strstr(f.text.buf, "event: status\n"), "no replay: %s",
		      f.text.buf ? f.text.buf : "(nothing)");
	ck_assert_msg(!strstr(f.text.buf, "event: turn_started\n"),
		      "a stale turn in progress was shown: %s", f.text.buf);
	ck_assert_msg(!strstr(f.text.buf, "event: token\n"), "stale text was shown: %s",
		      f.text.buf);
	strbuf_release(&f.text);
	free(id);
	stop();
}
END_TEST

int main(void)
{
	Suite *s = suite_create("endings");
	TCase *tc = tcase_create("parleyd");
	SRunner *sr;
	int failed;

	harness_tmpdir();
	curl_global_init(CURL_GLOBAL_DEFAULT);
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, cancel_while_the_judge_grades);
	tcase_add_test(tc, sigterm_while_the_judge_grades);
	tcase_add_test(tc, cancelling_a_queued_job_ends_its_stream);
	tcase_add_test(tc, a_lost_claim_leaves_no_turn_in_progress);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	harness_cleanup();
	curl_global_cleanup();
	return failed ? 1 : 0;
}
