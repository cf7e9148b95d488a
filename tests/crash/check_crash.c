/*
 * check_crash.c - nothing lost: jobs submitted while parleyd is killed with
 * SIGKILL at random moments and restarted, until every job has ended.
 *
 * DESIGN: CRASH_JOBS jobs (40 by default; `make crash-test` runs 200) of 3 to
 * 6 turns go to a fake backend whose scripted replies take 50 to 500 ms to
 * stream, over both wire protocols (the llama-server backend is a pool of that
 * fake and a second one). A submitter thread posts them at a random
 * pace, each with its own Idempotency-Key, and retries a POST that got no
 * answer until it gets one, so every job is acknowledged exactly once. The
 * test's own thread kills parleyd CRASH_KILLS times (5 by default; 20 for
 * `make crash-test`): each kill waits for a random share of the turns to be
 * stored, then a random delay, so kills land in the middle of streams, of
 * turn writes and of submissions. After each kill a copy of the database
 * files must pass PRAGMA integrity_check; parleyd itself then recovers the
 * original. In the end every acknowledged job exists and succeeded, the jobs
 * table holds exactly the jobs submitted, no turn is stored twice, every
 * transcript is exactly what the fake sent, and integrity_check says ok.
 * CRASH_SEED makes a run repeatable; the figures are printed.
 */
#include <check.h>
#include <pthread.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <curl/curl.h>

#include "tests/harness.h"

#define NMODELS 6
#define NREPLIES 3 /* max_turns <= 6: each side speaks at most 3 times */
#define MIN_TURNS 3
#define MAX_TURNS 6

static const char *const scenarios[] = {"response_speed_optimization", "job_extraction_improvement",
					"prompt_engineering_breakthrough"};
static const char *const backends[] = {"ollama", "llama"};
/* per model: ms between the fake's 4-byte pieces */
static const int delay_ms[NMODELS] = {1, 2, 3, 4, 5, 5};

struct job {
	int interviewer, candidate; /* model indexes */
	int ibackend, cbackend;
	int scenario, max_turns;
	char id[32]; /* once acknowledged */
	int acked;   /* 202, or 200 for a retry that found the job committed */
};

static struct {
	int njobs, nkills;
	unsigned long long seed;
	struct job *jobs;
	char *replies[NMODELS][NREPLIES];
	char dbpath[512];
	struct proc fake, fake2, parleyd;
	_Atomic int port;	 /* parleyd's port now; the submitter reads it */
	_Atomic int submit_done; /* the submitter has every job acknowledged */
	_Atomic int unanswered;	 /* POSTs that got no answer (parleyd was down or died) */
	_Atomic int replayed;	 /* retries answered 200: the job was committed before */
	char submit_error[512];	 /* set by the submitter when it must give up */
	int64_t total_turns;
} C;

/* xorshift64*: each thread has its own state, seeded from the run's seed. */
static uint64_t rnd(uint64_t *s)
{
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return *s * 2685821657736338717ULL;
}

static int rnd_range(uint64_t *s, int lo, int hi)
{
	return lo + (int)(rnd(s) % (uint64_t)(hi - lo + 1));
}

/*
 * A reply that streams for about ms milliseconds at the model's pace: a tag
 * that names it, then fragments (multi-byte UTF-8, quotes, backslashes,
 * newlines, Markdown) up to the length. Never "#stop_progress", never NUL.
 */
static char *make_reply(uint64_t *s, int model, int k, int ms)
{
	static const char *const frag[] = {
	    "Measure first. ",	     "«cache» the hot path; ", "p95 → 120 ms, ",
	    "\"quoted\" text, ",     "a back\\slash, ",	       "tab\there, ",
	    "line\nbreak, ",	     "- a bullet\n",	       "**bold** and `code` ",
	    "emoji 🎯🤖 ",	     "naïve café résumé ",     "日本語のテキスト ",
	    "1. numbered item\n",    "Test: replay the log. ", "{\"json\": [1, 2]} ",
	    "<b>not html</b> & co ", "trailing spaces   \n\n", "CRLF\r\nline ",
	};
	struct strbuf sb;
	size_t want = (size_t)ms * 4 / (size_t)delay_ms[model];

	strbuf_init(&sb, want + 64);
	strbuf_addf(&sb, "[crash-m%d reply %d] ", model, k);
	while (sb.len < want)
		strbuf_addstr(&sb, frag[rnd(s) % ARRAY_SIZE(frag)]);
	return strbuf_detach(&sb, NULL);
}

static void model_name(char *out, size_t n, int m)
{
	snprintf(out, n, "crash-m%d", m);
}

/* The fake's script: NMODELS models, each with its pace and NREPLIES replies. */
static void write_script(const char *path, uint64_t *s, int *min_ms, int *max_ms)
{
	json_t *script = json_object(), *models = json_object();
	int m, k;

	*min_ms = 1 << 30;
	*max_ms = 0;
	for (m = 0; m < NMODELS; m++) {
		json_t *replies = json_array();
		char name[32];
		for (k = 0; k < NREPLIES; k++) {
			/* 470, not 500: the last fragment may run ~30 ms over */
			int ms = rnd_range(s, 50, 470), pieces, t;
			C.replies[m][k] = make_reply(s, m, k, ms);
			pieces = (int)((strlen(C.replies[m][k]) + 3) / 4);
			t = pieces * delay_ms[m];
			*min_ms = t < *min_ms ? t : *min_ms;
			*max_ms = t > *max_ms ? t : *max_ms;
			json_array_append_new(replies, json_string(C.replies[m][k])); /* stolen */
		}
		model_name(name, sizeof(name), m);
		json_object_set_new(
		    models, name,
		    json_pack("{s:o, s:i}", "replies", replies, "token_delay_ms", delay_ms[m]));
	}
	json_object_set_new(script, "models", models);
	ck_assert_int_eq(json_dump_file(script, path, JSON_COMPACT), 0);
	json_decref(script);
}

static void job_body(const struct job *j, char *out, size_t n)
{
	char im[32], cm[32];

	model_name(im, sizeof(im), j->interviewer);
	model_name(cm, sizeof(cm), j->candidate);
	snprintf(out, n,
		 "{\"scenario\":\"%s\",\"interviewer\":{\"model\":\"%s\",\"backend\":\"%s\"},"
		 "\"candidate\":{\"model\":\"%s\",\"backend\":\"%s\"},\"max_turns\":%d,"
		 "\"labels\":{\"suite\":\"crash\"}}",
		 scenarios[j->scenario], im, backends[j->ibackend], cm, backends[j->cbackend],
		 j->max_turns);
}

/* Posts every job, retrying a POST that got no answer with the same key. */
static void *submitter(void *arg)
{
	uint64_t s = C.seed ^ 0x5bd1e995ULL;
	int i;

	(void)arg;
	for (i = 0; i < C.njobs; i++) {
		struct job *j = &C.jobs[i];
		char body[1024], key[96], *out = NULL;
		const char *headers[] = {key, NULL};
		int64_t deadline = util_mono_us() + 120 * 1000000LL;

		job_body(j, body, sizeof(body));
		snprintf(key, sizeof(key), "Idempotency-Key: crash-%llx-%d", C.seed, i);
		for (;;) {
			int st = harness_http(atomic_load(&C.port), "POST", "/v1/jobs", body,
					      headers, &out);
			json_t *o = st ? json_loads(out, 0, NULL) : NULL;
			const char *id = json_string_value(json_object_get(o, "id"));

			free(out);
			out = NULL;
			if ((st == 202 || st == 200) && id) {
				snprintf(j->id, sizeof(j->id), "%s", id);
				j->acked = st;
				if (st == 200)
					atomic_fetch_add(&C.replayed, 1);
				json_decref(o);
				break;
			}
			json_decref(o);
			if (st != 0) {
				snprintf(C.submit_error, sizeof(C.submit_error),
					 "job %d: POST /v1/jobs answered %d", i, st);
				return NULL;
			}
			atomic_fetch_add(&C.unanswered, 1);
			if (util_mono_us() > deadline) {
				snprintf(C.submit_error, sizeof(C.submit_error),
					 "job %d: no answer to POST /v1/jobs for 120 s", i);
				return NULL;
			}
			usleep(20000);
		}
		usleep((useconds_t)rnd_range(&s, 0, 60) * 1000);
	}
	atomic_store(&C.submit_done, 1);
	return NULL;
}

static sqlite3 *db_ro(const char *path)
{
	sqlite3 *h = NULL;

	ck_assert_int_eq(sqlite3_open_v2(path, &h, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
	sqlite3_busy_timeout(h, 5000);
	return h;
}

static int64_t query_int(sqlite3 *h, const char *sql)
{
	sqlite3_stmt *st;
	int64_t v = -1;

	ck_assert_msg(sqlite3_prepare_v2(h, sql, -1, &st, NULL) == SQLITE_OK, "%s: %s", sql,
		      sqlite3_errmsg(h));
	if (sqlite3_step(st) == SQLITE_ROW)
		v = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return v;
}

/* One figure from the live database (parleyd is up, so it has recovered it). */
static int64_t live_int(const char *sql)
{
	sqlite3 *h = db_ro(C.dbpath);
	int64_t v = query_int(h, sql);

	sqlite3_close(h);
	return v;
}

static char *integrity_check(const char *path)
{
	sqlite3 *h = NULL;
	sqlite3_stmt *st;
	char *res;

	ck_assert_int_eq(sqlite3_open_v2(path, &h, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
	sqlite3_busy_timeout(h, 5000);
	ck_assert_int_eq(sqlite3_prepare_v2(h, "PRAGMA integrity_check", -1, &st, NULL), SQLITE_OK);
	ck_assert_int_eq(sqlite3_step(st), SQLITE_ROW);
	res = xstrdup((const char *)sqlite3_column_text(st, 0));
	sqlite3_finalize(st);
	sqlite3_close(h);
	return res;
}

static int copy_file(const char *from, const char *to)
{
	char *data;
	size_t len;
	FILE *f;
	int ok;

	unlink(to);
	if (!(data = harness_slurp(from, &len)))
		return -1; /* no such file: nothing to copy */
	f = fopen(to, "wb");
	ok = f && fwrite(data, 1, len, f) == len;
	if (f)
		ok = fclose(f) == 0 && ok;
	free(data);
	return ok ? 0 : -2;
}

/* integrity_check of a copy of the crashed files: parleyd still recovers the original. */
static char *crashed_integrity_check(int k)
{
	char from[600], to[600], copy[580], *res;

	snprintf(copy, sizeof(copy), "%s/crash-copy-%d.db", harness_tmpdir(), k);
	ck_assert_int_eq(copy_file(C.dbpath, copy), 0);
	snprintf(from, sizeof(from), "%s-wal", C.dbpath);
	snprintf(to, sizeof(to), "%s-wal", copy);
	ck_assert_int_ge(copy_file(from, to), -1);
	res = integrity_check(copy);
	unlink(copy);
	unlink(to);
	snprintf(to, sizeof(to), "%s-shm", copy);
	unlink(to);
	return res;
}

static void start_parleyd(void)
{
	char b1[256], b2[256];
	const char *args[] = {"--backend", b1, "--backend", b2, "--workers", "4", NULL};

	snprintf(b1, sizeof(b1),
		 "name=ollama,kind=ollama,url=http://127.0.0.1:%d,max_concurrency=3", C.fake.port);
	snprintf(b2, sizeof(b2),
		 "name=llama,kind=llama-server,url=http://127.0.0.1:%d,url=http://127.0.0.1:%d,"
		 "max_concurrency=3",
		 C.fake.port, C.fake2.port);
	ck_assert_int_eq(harness_parleyd_start(&C.parleyd, C.dbpath, args), 0);
	atomic_store(&C.port, C.parleyd.port);
}

static int env_int(const char *name, int def)
{
	const char *s = getenv(name);

	return s && *s ? atoi(s) : def;
}

static int cmp_int64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return x < y ? -1 : x > y;
}

/* The text turn idx of job j must have: the fake's reply k of the speaker's model. */
static const char *expected_text(const struct job *j, int idx)
{
	int interviewer = idx % 2 == 1;
	int k = interviewer ? (idx - 1) / 2 : (idx - 2) / 2;

	return C.replies[interviewer ? j->interviewer : j->candidate][k];
}

/* Compares every turn of j's transcript with the script; returns the mismatches. */
static int check_transcript(const struct job *j, int *turns_seen)
{
	char path[128], im[32], cm[32];
	json_t *t = NULL, *conv, *turn;
	size_t i;
	int bad = 0;

	model_name(im, sizeof(im), j->interviewer);
	model_name(cm, sizeof(cm), j->candidate);
	snprintf(path, sizeof(path), "/v1/jobs/%s/transcript", j->id);
	ck_assert_int_eq(harness_http_json(C.parleyd.port, "GET", path, NULL, &t), 200);
	conv = json_object_get(t, "conversation");
	if (json_array_size(conv) != (size_t)j->max_turns) {
		fprintf(stderr, "crash: job %s has %zu turns, want %d\n", j->id,
			json_array_size(conv), j->max_turns);
		bad++;
	}
	json_array_foreach(conv, i, turn)
	{
		int idx = (int)i + 1;
		const char *msg = json_string_value(json_object_get(turn, "message"));
		const char *speaker = json_string_value(json_object_get(turn, "speaker"));
		const char *model = json_string_value(json_object_get(turn, "model"));

		(*turns_seen)++;
		if (idx > j->max_turns ||
		    json_integer_value(json_object_get(turn, "turn")) != (json_int_t)idx ||
		    !speaker || strcmp(speaker, idx % 2 ? "interviewer" : "candidate") != 0 ||
		    !model || strcmp(model, idx % 2 ? im : cm) != 0 || !msg ||
		    strcmp(msg, expected_text(j, idx)) != 0) {
			fprintf(stderr, "crash: job %s turn %d differs from the script: %.120s\n",
				j->id, idx, msg ? msg : "(no message)");
			bad++;
		}
	}
	json_decref(t);
	return bad;
}

START_TEST(kill_9_loses_nothing)
{
	char script[512], fake_script_arg[600];
	const char *fake_args[] = {"--script", fake_script_arg, "--slots", "3", NULL};
	uint64_t s;
	int64_t *thresholds, t0 = util_mono_us(), deadline;
	int i, k, min_ms, max_ms, integrity_ok = 0, lost = 0, failed = 0, mismatches = 0;
	int turns_seen = 0, resumed = 0, max_attempts = 0, kills_in_submission = 0;
	pthread_t th;
	char *ic;

	C.njobs = env_int("CRASH_JOBS", 40);
	C.nkills = env_int("CRASH_KILLS", 5);
	C.seed = getenv("CRASH_SEED") ? strtoull(getenv("CRASH_SEED"), NULL, 0)
				      : (unsigned long long)util_now_us();
	s = C.seed | 1;
	ck_assert_int_gt(C.njobs, 0);
	printf("crash: seed=%llu jobs=%d kills=%d\n", C.seed, C.njobs, C.nkills);

	snprintf(script, sizeof(script), "%s/crash-script.json", harness_tmpdir());
	snprintf(fake_script_arg, sizeof(fake_script_arg), "%s", script);
	write_script(script, &s, &min_ms, &max_ms);
	printf("crash: the fake's replies stream for %d to %d ms\n", min_ms, max_ms);
	ck_assert_int_eq(harness_fake_start(&C.fake, fake_args), 0);
	ck_assert_int_eq(harness_fake_start(&C.fake2, fake_args), 0);
	snprintf(C.dbpath, sizeof(C.dbpath), "%s/crash.db", harness_tmpdir());
	start_parleyd();

	C.jobs = xcalloc((size_t)C.njobs, sizeof(*C.jobs));
	for (i = 0; i < C.njobs; i++) {
		struct job *j = &C.jobs[i];
		j->interviewer = rnd_range(&s, 0, NMODELS - 1);
		j->candidate = rnd_range(&s, 0, NMODELS - 1);
		j->ibackend = rnd_range(&s, 0, 1);
		j->cbackend = rnd_range(&s, 0, 1);
		j->scenario = rnd_range(&s, 0, 2);
		j->max_turns = rnd_range(&s, MIN_TURNS, MAX_TURNS);
		C.total_turns += j->max_turns;
	}
	/* kill k once this many turns are stored: random points spread over the run */
	thresholds = xcalloc((size_t)C.nkills + 1, sizeof(*thresholds));
	for (k = 0; k < C.nkills; k++)
		thresholds[k] = (int64_t)(rnd(&s) % 1000) * C.total_turns * 85 / 100000;
	qsort(thresholds, (size_t)C.nkills, sizeof(*thresholds), cmp_int64);

	ck_assert_int_eq(pthread_create(&th, NULL, submitter, NULL), 0);
	for (k = 0; k < C.nkills; k++) {
		int64_t stored = 0, last_progress = util_mono_us(), last = -1;
		int running;

		while ((stored = live_int("SELECT count(*) FROM turns")) < thresholds[k]) {
			if (stored != last) {
				last = stored;
				last_progress = util_mono_us();
			}
			ck_assert_msg(util_mono_us() - last_progress < 60 * 1000000LL,
				      "no turn stored for 60 s (at %lld of %lld)",
				      (long long)stored, (long long)C.total_turns);
			ck_assert_msg(!C.submit_error[0], "%s", C.submit_error);
			usleep(10000);
		}
		usleep((useconds_t)rnd_range(&s, 0, 400) * 1000);
		running = (int)live_int("SELECT count(*) FROM jobs WHERE status = 'running'");
		stored = live_int("SELECT count(*) FROM turns");
		if (!atomic_load(&C.submit_done))
			kills_in_submission++;
		ck_assert_int_eq(harness_stop(&C.parleyd, SIGKILL), 128 + SIGKILL);
		atomic_store(&C.port, 0); /* the old port answers nothing now */
		ic = crashed_integrity_check(k);
		integrity_ok += strcmp(ic, "ok") == 0;
		printf("crash: kill %d at %lld of %lld turns stored, %d jobs running, "
		       "integrity_check %s\n",
		       k + 1, (long long)stored, (long long)C.total_turns, running, ic);
		free(ic);
		start_parleyd();
	}
	free(thresholds);

	/* let every job end */
	deadline = util_mono_us() + (120 + (int64_t)C.njobs) * 1000000LL;
	while (!atomic_load(&C.submit_done) ||
	       live_int("SELECT count(*) FROM jobs WHERE status IN ('queued', 'running')") > 0) {
		ck_assert_msg(!C.submit_error[0], "%s", C.submit_error);
		ck_assert_msg(util_mono_us() < deadline, "jobs have not ended in time");
		usleep(50000);
	}
	ck_assert_int_eq(pthread_join(th, NULL), 0);
	ck_assert_msg(!C.submit_error[0], "%s", C.submit_error);

	for (i = 0; i < C.njobs; i++) {
		struct job *j = &C.jobs[i];
		char path[128];
		json_t *job = NULL;
		const char *st;
		int at;

		ck_assert(j->acked);
		snprintf(path, sizeof(path), "/v1/jobs/%s", j->id);
		if (harness_http_json(C.parleyd.port, "GET", path, NULL, &job) != 200) {
			fprintf(stderr, "crash: job %s is lost\n", j->id);
			lost++;
			json_decref(job);
			continue;
		}
		st = json_string_value(json_object_get(job, "status"));
		if (!st || strcmp(st, "succeeded") != 0) {
			fprintf(stderr, "crash: job %s ended %s: %s\n", j->id, st,
				json_string_value(
				    json_object_get(json_object_get(job, "error"), "message")));
			failed++;
		}
		at = (int)json_integer_value(json_object_get(job, "attempts"));
		resumed += at > 1;
		max_attempts = at > max_attempts ? at : max_attempts;
		json_decref(job);
		mismatches += check_transcript(j, &turns_seen);
	}

	{
		sqlite3 *h = db_ro(C.dbpath);
		int64_t rows = query_int(h, "SELECT count(*) FROM jobs");
		int64_t dups = query_int(h, "SELECT count(*) FROM (SELECT job_id, idx, count(*) "
					    "FROM turns GROUP BY job_id, idx HAVING count(*) > 1)");
		int64_t turns = query_int(h, "SELECT count(*) FROM turns");
		sqlite3_close(h);

		ck_assert_int_eq(harness_stop(&C.parleyd, SIGTERM), 0);
		ic = integrity_check(C.dbpath);
		printf("crash: %d kills (%d while jobs were still being submitted), "
		       "%d POSTs unanswered, %d retries found their job committed\n",
		       C.nkills, kills_in_submission, atomic_load(&C.unanswered),
		       atomic_load(&C.replayed));
		printf("crash: jobs acknowledged %d, rows in jobs %lld, lost %d, not succeeded %d, "
		       "resumed after a crash %d (attempts up to %d)\n",
		       C.njobs, (long long)rows, lost, failed, resumed, max_attempts);
		printf("crash: turns stored %lld of %lld, duplicate turns %lld, "
		       "turns equal to the fake's replies %d of %d (%d mismatches)\n",
		       (long long)turns, (long long)C.total_turns, (long long)dups,
		       turns_seen - mismatches, turns_seen, mismatches);
		printf("crash: integrity_check after the kills %d of %d ok, at the end %s\n",
		       integrity_ok, C.nkills, ic);
		printf("crash: took %.1f s\n", (double)(util_mono_us() - t0) / 1e6);
		ck_assert_int_eq(lost, 0);
		ck_assert_int_eq(failed, 0);
		ck_assert_int_eq(rows, C.njobs);
		ck_assert_int_eq(dups, 0);
		ck_assert_int_eq(turns, C.total_turns);
		ck_assert_int_eq(mismatches, 0);
		ck_assert_int_eq(turns_seen, C.total_turns);
		ck_assert_int_eq(integrity_ok, C.nkills);
		ck_assert_str_eq(ic, "ok");
		free(ic);
	}
	harness_stop(&C.fake, SIGTERM);
	harness_stop(&C.fake2, SIGTERM);
	for (i = 0; i < NMODELS; i++)
		for (k = 0; k < NREPLIES; k++)
			free(C.replies[i][k]);
	free(C.jobs);
}
END_TEST

/* A failed check leaves the test early: no child process outlives it. */
static void teardown(void)
{
	if (C.parleyd.pid > 0)
		harness_stop(&C.parleyd, SIGKILL);
	if (C.fake.pid > 0)
		harness_stop(&C.fake, SIGKILL);
	if (C.fake2.pid > 0)
		harness_stop(&C.fake2, SIGKILL);
}

int main(void)
{
	Suite *s = suite_create("crash");
	TCase *tc = tcase_create("kill -9");
	SRunner *sr;
	int failed;

	setvbuf(stdout, NULL, _IOLBF, 0);
	curl_global_init(CURL_GLOBAL_DEFAULT); /* before the submitter thread uses curl */
	harness_tmpdir();
	tcase_add_checked_fixture(tc, NULL, teardown);
	tcase_set_timeout(tc, 1800);
	tcase_add_test(tc, kill_9_loses_nothing);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	harness_cleanup();
	curl_global_cleanup();
	return failed ? 1 : 0;
}
