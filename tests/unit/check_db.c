/*
 * check_db.c - the store: migrations, the scenario seed, the job life cycle,
 * turns stored once, stale attempts refused, idempotency keys; bounded waits
 * for another process's lock, a deleted file never recreated, the lock file.
 */
#include <check.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "db/db.h"
#include "db/internal.h" /* the store's own transactions, tested here */
#include "db/job.h"
#include "db/scenario.h"
#include "db/turn.h"
#include "tests/harness.h"

static struct db *db;
static char path[512];

static void setup(void)
{
	struct perr e = {0};

	db = harness_db("db", path, sizeof(path), &e);
	ck_assert_msg(db != NULL, "%s", e.msg);
}

static void teardown(void)
{
	db_close(db);
	unlink(path);
}

static void fill_job(struct db_job *j)
{
	memset(j, 0, sizeof(*j));
	j->scenario_name = xstrdup("response_speed_optimization");
	j->scenario = xstrdup("{\"name\":\"response_speed_optimization\"}");
	j->interviewer_model = xstrdup("gemma3:1b");
	j->interviewer_backend = xstrdup("ollama");
	j->candidate_model = xstrdup("gemma3n:latest");
	j->candidate_backend = xstrdup("ollama");
	j->max_turns = 3;
	j->scoring = xstrdup("rubric");
	j->extraction = xstrdup("rubric");
}

static struct db_turn make_turn(int idx)
{
	struct db_turn t;

	memset(&t, 0, sizeof(t));
	t.idx = idx;
	snprintf(t.role, sizeof(t.role), "%s", idx % 2 ? "interviewer" : "candidate");
	t.model = "m";
	t.backend = "ollama";
	t.text = "hello";
	t.started_at = 1;
	t.finished_at = 2;
	t.wall_ms = 12.5;
	t.ttft_ms = -1;
	t.prompt_tokens = 10;
	t.cached_tokens = -1;
	t.completion_tokens = 5;
	t.prompt_ms = t.gen_ms = t.tokens_per_s = t.load_ms = -1;
	return t;
}

START_TEST(migrations_seed_the_origin_scenarios)
{
	struct db_scenario *v;
	struct perr e = {0};
	size_t n;

	ck_assert_int_eq(db_schema_version(db), db_schema_latest());
	ck_assert_int_eq(db_scenario_list(db, &v, &n, &e), 0);
	ck_assert_uint_eq(n, 3);
	ck_assert_str_eq(v[0].name, "job_extraction_improvement");
	ck_assert_str_eq(v[1].name, "prompt_engineering_breakthrough");
	ck_assert_str_eq(v[2].name, "response_speed_optimization");
	ck_assert_str_eq(v[2].problem, "Model takes 45-60 seconds for complex analysis");
	db_scenarios_free(v, n);
	/* applying again changes nothing */
	ck_assert_int_eq(db_migrate(db, &e), 0);
	ck_assert_int_eq(db_schema_version(db), db_schema_latest());
}
END_TEST

START_TEST(job_life_cycle)
{
	struct db_job j, c, g;
	struct perr e = {0};
	struct db_turn t;
	struct db_turn *tv;
	struct db_optim o = {0, 3, "Cache it", "detail", "measure", "* **Cache it**", 5, "rubric"};
	struct db_optim *ov;
	size_t n;

	fill_job(&j);
	ck_assert_int_eq(db_job_insert(db, &j, NULL, NULL, 0, &e), 0);
	ck_assert_str_eq(j.status, "queued");
	ck_assert_int_eq(db_job_claim(db, &c, &e), 1);
	ck_assert_str_eq(c.id, j.id);
	ck_assert_str_eq(c.status, "running");
	ck_assert_int_eq(c.attempts, 1);
	ck_assert_int_eq(db_job_claim(db, &g, &e), 0); /* nothing else queued */

	t = make_turn(1);
	ck_assert_int_eq(db_turn_insert(db, j.id, 1, &t, &e), 0);
	/* the same turn again is refused */
	ck_assert_int_eq(db_turn_insert(db, j.id, 1, &t, &e), -1);
	ck_assert_int_eq(e.code, PERR_CONFLICT);
	/* a stale attempt is refused */
	t = make_turn(2);
	ck_assert_int_eq(db_turn_insert(db, j.id, 7, &t, &e), -1);
	ck_assert_int_eq(e.code, PERR_CONFLICT);

	ck_assert_int_eq(
	    db_job_finish(db, j.id, 1, "succeeded", NULL, NULL, "{\"x\":1}", &o, 1, &e), 0);
	ck_assert_int_eq(db_job_get(db, j.id, &g, &e), 0);
	ck_assert_str_eq(g.status, "succeeded");
	ck_assert_int_eq(g.turns_completed, 1);
	ck_assert(g.finished_at > 0);
	db_job_release(&g);
	ck_assert_int_eq(db_turn_list(db, j.id, &tv, &n, &e), 0);
	ck_assert_uint_eq(n, 1);
	ck_assert_int_eq((int)tv[0].cached_tokens, -1); /* unknown stays unknown */
	ck_assert_int_eq((int)tv[0].prompt_tokens, 10);
	db_turns_free(tv, n);
	ck_assert_int_eq(db_optim_list(db, j.id, &ov, &n, &e), 0);
	ck_assert_uint_eq(n, 1);
	ck_assert_str_eq(ov[0].title, "Cache it");
	db_optims_free(ov, n);
	/* finishing twice is refused */
	ck_assert_int_eq(db_job_finish(db, j.id, 1, "failed", "x", "y", NULL, NULL, 0, &e), -1);
	db_job_release(&j);
	db_job_release(&c);
}
END_TEST

START_TEST(crash_requeue_resumes_with_a_new_attempt)
{
	struct db_job j, c;
	struct perr e = {0};
	struct db_turn t = make_turn(1);

	fill_job(&j);
	ck_assert_int_eq(db_job_insert(db, &j, NULL, NULL, 0, &e), 0);
	ck_assert_int_eq(db_job_claim(db, &c, &e), 1);
	ck_assert_int_eq(db_turn_insert(db, j.id, 1, &t, &e), 0);
	db_job_release(&c);
	ck_assert_int_eq(db_job_requeue_running(db, &e), 1);
	ck_assert_int_eq(db_job_claim(db, &c, &e), 1);
	ck_assert_int_eq(c.attempts, 2);
	ck_assert_int_eq(c.turns_completed, 1);
	/* the old attempt can no longer write */
	t = make_turn(2);
	ck_assert_int_eq(db_turn_insert(db, j.id, 1, &t, &e), -1);
	ck_assert_int_eq(db_turn_insert(db, j.id, 2, &t, &e), 0);
	db_job_release(&c);
	db_job_release(&j);
}
END_TEST

/* The queue's heads: the oldest queued job of each stream (batch or single jobs, per pair of
 * backends), whatever the length of the streams; a claimed job is no head any more. */
START_TEST(queued_heads_one_per_stream)
{
	static const char *const batch[] = {NULL, "bA", NULL, "bA", "bB", NULL, "bA", "bB"};
	static const char *const cand[] = {"ollama", "ollama", "llama", "ollama",
					   "ollama", "ollama", "llama", "ollama"};
	char ids[8][DB_JOB_ID_LEN];
	struct db_job j, c, *h;
	struct perr e = {0};
	size_t n, i;

	for (i = 0; i < 8; i++) {
		fill_job(&j);
		j.batch_id = batch[i] ? xstrdup(batch[i]) : NULL;
		free(j.candidate_backend);
		j.candidate_backend = xstrdup(cand[i]);
		ck_assert_int_eq(db_job_insert(db, &j, NULL, NULL, 0, &e), 0);
		snprintf(ids[i], sizeof(ids[i]), "%s", j.id);
		db_job_release(&j);
	}
	/* streams: single/ollama (0, 5), bA/ollama (1, 3), single/llama (2), bB (4, 7), bA/llama
	 * (6) */
	ck_assert_int_eq(db_job_heads(db, 64, &h, &n, &e), 0);
	ck_assert_int_eq(n, 5);
	ck_assert_str_eq(h[0].id, ids[0]);
	ck_assert_str_eq(h[1].id, ids[1]);
	ck_assert_str_eq(h[2].id, ids[2]);
	ck_assert_str_eq(h[3].id, ids[4]);
	ck_assert_str_eq(h[4].id, ids[6]);
	db_jobs_free(h, n);
	ck_assert_int_eq(db_job_heads(db, 2, &h, &n, &e), 0);
	ck_assert_int_eq(n, 2);
	db_jobs_free(h, n);
	/* claimed: the stream's next job is its head; a job claimed twice is not claimed again */
	ck_assert_int_eq(db_job_claim_id(db, ids[1], &c, &e), 1);
	ck_assert_str_eq(c.status, "running");
	db_job_release(&c);
	ck_assert_int_eq(db_job_claim_id(db, ids[1], &c, &e), 0);
	ck_assert_int_eq(db_job_heads(db, 64, &h, &n, &e), 0);
	ck_assert_int_eq(n, 5);
	ck_assert_str_eq(h[2].id, ids[3]);
	db_jobs_free(h, n);
}
END_TEST

START_TEST(requeue_only_what_the_claim_still_holds)
{
	struct db_job j, c;
	struct perr e = {0};

	fill_job(&j);
	ck_assert_int_eq(db_job_insert(db, &j, NULL, NULL, 0, &e), 0);
	ck_assert_int_eq(db_job_claim(db, &c, &e), 1);
	/* a stale attempt gives nothing back, and says so */
	ck_assert_int_eq(db_job_requeue(db, j.id, c.attempts + 1, &e), -1);
	ck_assert_int_eq(e.code, PERR_CONFLICT);
	ck_assert_int_eq(db_job_requeue(db, j.id, c.attempts, &e), 0);
	db_job_release(&c);
	ck_assert_int_eq(db_job_get(db, j.id, &c, &e), 0);
	ck_assert_str_eq(c.status, "queued");
	db_job_release(&c);
	/* a job that is no longer running cannot be given back again */
	e.code = 0;
	ck_assert_int_eq(db_job_requeue(db, j.id, 1, &e), -1);
	ck_assert_int_eq(e.code, PERR_CONFLICT);
	db_job_release(&j);
}
END_TEST

START_TEST(idempotency_keys)
{
	struct db_job a, b, c;
	struct perr e = {0};

	fill_job(&a);
	fill_job(&b);
	fill_job(&c);
	ck_assert_int_eq(db_job_insert(db, &a, "k1", "h1", 0, &e), 0);
	ck_assert_int_eq(db_job_insert(db, &b, "k1", "h1", 0, &e), 1);
	ck_assert_str_eq(a.id, b.id);
	ck_assert_int_eq(db_job_insert(db, &c, "k1", "h2", 0, &e), -1);
	ck_assert_int_eq(e.code, PERR_CONFLICT);
	db_job_release(&a);
	db_job_release(&b);
	db_job_release(&c);
}
END_TEST

START_TEST(cancel_and_queue_cap)
{
	struct db_job a, b;
	struct perr e = {0};
	char was[16];

	fill_job(&a);
	fill_job(&b);
	ck_assert_int_eq(db_job_insert(db, &a, NULL, NULL, 1, &e), 0);
	ck_assert_int_eq(db_job_insert(db, &b, NULL, NULL, 1, &e), -1);
	ck_assert_int_eq(e.code, PERR_UNAVAILABLE);
	ck_assert_int_eq(db_job_cancel(db, a.id, was, &e), 0);
	ck_assert_str_eq(was, "queued");
	ck_assert_int_eq(db_job_cancel(db, a.id, was, &e), 0);
	ck_assert_str_eq(was, "cancelled");
	ck_assert_int_eq(db_job_cancel(db, "jnope", was, &e), -1);
	ck_assert_int_eq(e.code, PERR_NOT_FOUND);
	db_job_release(&a);
	db_job_release(&b);
}
END_TEST

START_TEST(list_filters_and_pages)
{
	struct db_job_filter f;
	struct db_job j, *v;
	struct perr e = {0};
	size_t n;
	int i;

	for (i = 0; i < 5; i++) {
		fill_job(&j);
		if (i == 2)
			j.labels = xstrdup("{\"team\":\"search\"}");
		ck_assert_int_eq(db_job_insert(db, &j, NULL, NULL, 0, &e), 0);
		db_job_release(&j);
	}
	memset(&f, 0, sizeof(f));
	f.limit = 2;
	ck_assert_int_eq(db_job_list(db, &f, &v, &n, &e), 0);
	ck_assert_uint_eq(n, 2);
	ck_assert(v[0].seq > v[1].seq);
	f.before_seq = v[1].seq;
	db_jobs_free(v, n);
	f.limit = 10;
	ck_assert_int_eq(db_job_list(db, &f, &v, &n, &e), 0);
	ck_assert_uint_eq(n, 3);
	db_jobs_free(v, n);
	memset(&f, 0, sizeof(f));
	f.label_key = "team";
	f.label_value = "search";
	ck_assert_int_eq(db_job_list(db, &f, &v, &n, &e), 0);
	ck_assert_uint_eq(n, 1);
	db_jobs_free(v, n);
	memset(&f, 0, sizeof(f));
	f.model = "gemma3n:latest";
	f.status = "queued";
	ck_assert_int_eq(db_job_list(db, &f, &v, &n, &e), 0);
	ck_assert_uint_eq(n, 5);
	db_jobs_free(v, n);
}
END_TEST

/* Another process's lock: one bounded wait, then the next writer is told at once. */
START_TEST(store_waits_are_bounded)
{
	struct perr e = {0};
	struct db *w;
	sqlite3 *other;
	int64_t t0, first, second;

	db_pin(db, path);
	w = db_open(path, &e);
	ck_assert_msg(w, "%s", e.msg);
	ck_assert_int_eq(sqlite3_open(path, &other), SQLITE_OK);
	ck_assert_int_eq(sqlite3_exec(other, "BEGIN IMMEDIATE", NULL, NULL, NULL), SQLITE_OK);
	t0 = util_mono_us();
	ck_assert_int_eq(db_begin(w, &e), -1);
	first = util_mono_us() - t0;
	ck_assert_int_eq(e.code, PERR_STORE_BUSY);
	ck_assert_msg(strstr(e.msg, "another process"), "%s", e.msg);
	ck_assert_int_ge(first, (int64_t)DB_WAIT_MS * 1000 * 9 / 10);
	t0 = util_mono_us();
	ck_assert_int_eq(db_begin(db, &e), -1);
	second = util_mono_us() - t0;
	ck_assert_int_eq(e.code, PERR_STORE_BUSY);
	ck_assert_msg(second < first / 4, "the second writer waited %lld us after %lld us",
		      (long long)second, (long long)first);
	ck_assert_int_eq(db_store_ready(db, &e), -1);
	/* the lock ends: writes work again, and the store is ready again */
	ck_assert_int_eq(sqlite3_exec(other, "ROLLBACK", NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(other);
	util_sleep_ms(DB_WAIT_MS + 100);
	ck_assert_msg(db_begin(w, &e) == 0, "%s", e.msg);
	ck_assert_msg(db_commit(w, &e) == 0, "%s", e.msg);
	ck_assert_int_eq(db_store_ready(db, &e), 0);
	db_close(w);
}
END_TEST

/* After start-up the file is never created again, and a deleted one stops writes. */
START_TEST(deleted_store_is_not_recreated)
{
	struct perr e = {0};
	char side[600];

	db_pin(db, path);
	ck_assert_int_eq(unlink(path), 0);
	snprintf(side, sizeof(side), "%s-wal", path);
	unlink(side);
	snprintf(side, sizeof(side), "%s-shm", path);
	unlink(side);
	ck_assert_ptr_null(db_open(path, &e));
	ck_assert_int_eq(e.code, PERR_STORE_UNAVAILABLE);
	ck_assert_int_ne(access(path, F_OK), 0);
	ck_assert_int_eq(db_begin(db, &e), -1);
	ck_assert_int_eq(e.code, PERR_STORE_UNAVAILABLE);
	ck_assert_int_eq(db_store_ready(db, &e), -1);
	ck_assert_msg(strstr(e.msg, "deleted"), "%s", e.msg);
	ck_assert_int_ne(access(path, F_OK), 0);
}
END_TEST

/* One database, one process: the lock file names the holder. */
START_TEST(lock_file_names_the_holder)
{
	struct perr e = {0};
	char pid[32];

	ck_assert_int_eq(db_lock_take(path, &e), 0);
	db_lock_note_listen("127.0.0.1:8080");
	ck_assert_int_eq(db_lock_take(path, &e), -1);
	ck_assert_int_eq(e.code, PERR_CONFLICT);
	snprintf(pid, sizeof(pid), "pid %d,", (int)getpid());
	ck_assert_msg(strstr(e.msg, pid) && strstr(e.msg, "127.0.0.1:8080"), "%s", e.msg);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("db");
	TCase *tc = tcase_create("store");
	SRunner *sr;
	int failed;

	harness_tmpdir(); /* made once here, not in each forked test */
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, migrations_seed_the_origin_scenarios);
	tcase_add_test(tc, job_life_cycle);
	tcase_add_test(tc, crash_requeue_resumes_with_a_new_attempt);
	tcase_add_test(tc, requeue_only_what_the_claim_still_holds);
	tcase_add_test(tc, queued_heads_one_per_stream);
	tcase_add_test(tc, idempotency_keys);
	tcase_add_test(tc, cancel_and_queue_cap);
	tcase_add_test(tc, list_filters_and_pages);
	tcase_add_test(tc, store_waits_are_bounded);
	tcase_add_test(tc, deleted_store_is_not_recreated);
	tcase_add_test(tc, lock_file_names_the_holder);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	harness_cleanup();
	return failed ? 1 : 0;
}
