/*
 * check_batch.c - batches in the store: a batch and its jobs in one
 * transaction (all or nothing), in the order given; status and counts read
 * from the jobs; cancelling what has not finished; the turns' timings; a
 * job's judge.
 */
#include <check.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "db/batch.h"
#include "db/db.h"
#include "db/job.h"
#include "db/turn.h"
#include "tests/harness.h"

static struct db *db;
static char path[512];

static void setup(void)
{
	struct perr e = {0};

	db = harness_db("batch", path, sizeof(path), &e);
	ck_assert_msg(db != NULL, "%s", e.msg);
}

static void teardown(void)
{
	db_close(db);
	unlink(path);
}

static void fill_job(struct db_job *j, const char *cand, const char *scen)
{
	memset(j, 0, sizeof(*j));
	j->scenario_name = xstrdup(scen);
	j->scenario = xstrdup("{\"name\":\"x\"}");
	j->interviewer_model = xstrdup("gemma3:1b");
	j->interviewer_backend = xstrdup("ollama");
	j->candidate_model = xstrdup(cand);
	j->candidate_backend = xstrdup("ollama");
	j->max_turns = 3;
	j->scoring = xstrdup("judge");
	j->extraction = xstrdup("rubric");
	j->judge = xstrdup("{\"model\":\"judge:1b\",\"backend\":\"ollama\"}");
}

static void fill_batch(struct db_batch *b)
{
	memset(b, 0, sizeof(*b));
	b->interviewer_model = xstrdup("gemma3:1b");
	b->interviewer_backend = xstrdup("ollama");
	b->candidates = xstrdup("[{\"model\":\"a\",\"backend\":\"ollama\"},"
				"{\"model\":\"b\",\"backend\":\"ollama\"}]");
	b->scenarios = xstrdup("[{\"name\":\"s1\"},{\"name\":\"s2\"}]");
	b->repeat = 1;
	b->max_turns = 3;
	b->scoring = xstrdup("judge");
	b->extraction = xstrdup("rubric");
	b->judge = xstrdup("{\"model\":\"judge:1b\",\"backend\":\"ollama\"}");
}

/* A batch of a x {s1, s2}, b x {s1, s2}. */
static void insert_batch(struct db_batch *b, struct db_job jobs[4], int max_queued, int want,
			 struct perr *e)
{
	fill_batch(b);
	fill_job(&jobs[0], "a", "s1");
	fill_job(&jobs[1], "a", "s2");
	fill_job(&jobs[2], "b", "s1");
	fill_job(&jobs[3], "b", "s2");
	ck_assert_int_eq(db_batch_insert(db, b, jobs, 4, max_queued, e), want);
}

static void release(struct db_batch *b, struct db_job jobs[4])
{
	int i;

	for (i = 0; i < 4; i++)
		db_job_release(&jobs[i]);
	db_batch_release(b);
}

START_TEST(batch_and_jobs_in_order)
{
	struct db_batch b, g;
	struct db_job jobs[4], *v;
	struct perr e = {0};
	size_t n, i;

	insert_batch(&b, jobs, 0, 0, &e);
	ck_assert(b.id[0] == 'b' && strlen(b.id) == 17);
	ck_assert_int_eq(db_batch_get(db, b.id, &g, &e), 0);
	ck_assert_int_eq(g.counts[DB_QUEUED], 4);
	ck_assert_str_eq(db_batch_status(&g), "queued");
	ck_assert_int_eq(g.finished_at, -1);
	ck_assert_str_eq(g.judge, "{\"model\":\"judge:1b\",\"backend\":\"ollama\"}");
	db_batch_release(&g);
	ck_assert_int_eq(db_job_list_batch(db, b.id, &v, &n, &e), 0);
	ck_assert_uint_eq(n, 4);
	for (i = 0; i < n; i++) {
		ck_assert_str_eq(v[i].id, jobs[i].id);
		ck_assert_str_eq(v[i].batch_id, b.id);
		/* the judge a job names is stored with it */
		ck_assert_str_eq(v[i].judge, "{\"model\":\"judge:1b\",\"backend\":\"ollama\"}");
	}
	ck_assert_str_eq(v[1].candidate_model, "a");
	ck_assert_str_eq(v[1].scenario_name, "s2");
	ck_assert_str_eq(v[2].candidate_model, "b");
	db_jobs_free(v, n);
	ck_assert_int_eq(db_batch_get(db, "bnope", &g, &e), -1);
	ck_assert_int_eq(e.code, PERR_NOT_FOUND);
	release(&b, jobs);
}
END_TEST

START_TEST(a_batch_that_does_not_fit_leaves_nothing)
{
	struct db_batch b, *v;
	struct db_job jobs[4], one, *jv;
	struct perr e = {0};
	size_t n;

	fill_job(&one, "x", "s1");
	ck_assert_int_eq(db_job_insert(db, &one, NULL, NULL, 0, &e), 0);
	/* 1 queued + 4 > 4 */
	insert_batch(&b, jobs, 4, -1, &e);
	ck_assert_int_eq(e.code, PERR_UNAVAILABLE);
	ck_assert_ptr_nonnull(strstr(e.msg, "room for 3 more jobs, not 4"));
	ck_assert_int_eq(db_batch_list(db, 0, 10, &v, &n, &e), 0);
	ck_assert_uint_eq(n, 0);
	db_batches_free(v, n);
	{
		struct db_job_filter f;
		memset(&f, 0, sizeof(f));
		f.limit = 10;
		ck_assert_int_eq(db_job_list(db, &f, &jv, &n, &e), 0);
		ck_assert_uint_eq(n, 1);
		db_jobs_free(jv, n);
	}
	release(&b, jobs);
	db_job_release(&one);
}
END_TEST

START_TEST(status_counts_and_cancel)
{
	struct db_batch b, g;
	struct db_job jobs[4], c;
	struct perr e = {0};
	char **running, **queued;
	size_t nr, nq, i;

	insert_batch(&b, jobs, 0, 0, &e);
	/* the first job runs and succeeds, the second runs */
	ck_assert_int_eq(db_job_claim(db, &c, &e), 1);
	ck_assert_str_eq(c.id, jobs[0].id);
	ck_assert_int_eq(db_job_finish(db, c.id, 1, "succeeded", NULL, NULL, "{}", NULL, 0, &e), 0);
	db_job_release(&c);
	ck_assert_int_eq(db_job_claim(db, &c, &e), 1);
	ck_assert_int_eq(db_batch_get(db, b.id, &g, &e), 0);
	ck_assert_str_eq(db_batch_status(&g), "running");
	ck_assert_int_eq(g.counts[DB_SUCCEEDED], 1);
	ck_assert_int_eq(g.counts[DB_RUNNING], 1);
	ck_assert_int_eq(g.counts[DB_QUEUED], 2);
	db_batch_release(&g);

	ck_assert_int_eq(db_batch_cancel(db, b.id, &running, &nr, &queued, &nq, &e), 0);
	ck_assert_uint_eq(nr, 1);
	ck_assert_str_eq(running[0], jobs[1].id);
	ck_assert_uint_eq(nq, 2);
	ck_assert_int_eq(db_job_cancel_requested(db, jobs[1].id), 1);
	for (i = 0; i < nr; i++)
		free(running[i]);
	for (i = 0; i < nq; i++)
		free(queued[i]);
	free(running);
	free(queued);
	/* still running until its worker ends it */
	ck_assert_int_eq(db_batch_get(db, b.id, &g, &e), 0);
	ck_assert_str_eq(db_batch_status(&g), "running");
	ck_assert_int_eq(g.counts[DB_CANCELLED], 2);
	ck_assert(g.cancelled_at > 0);
	db_batch_release(&g);
	ck_assert_int_eq(db_job_finish(db, c.id, 1, "cancelled", "cancelled",
				       "cancelled by request", NULL, NULL, 0, &e),
			 0);
	db_job_release(&c);
	ck_assert_int_eq(db_batch_get(db, b.id, &g, &e), 0);
	ck_assert_str_eq(db_batch_status(&g), "cancelled");
	ck_assert(g.finished_at > 0);
	db_batch_release(&g);
	/* nothing left to cancel */
	ck_assert_int_eq(db_batch_cancel(db, b.id, &running, &nr, &queued, &nq, &e), -1);
	ck_assert_int_eq(e.code, PERR_CONFLICT);
	ck_assert_ptr_null(running);
	release(&b, jobs);
}
END_TEST

START_TEST(turn_stats_and_pages)
{
	struct db_batch b, b2, *v;
	struct db_job jobs[4], jobs2[4], c;
	struct db_turn t;
	struct db_turn_stat *ts;
	struct perr e = {0};
	size_t n;

	insert_batch(&b, jobs, 0, 0, &e);
	insert_batch(&b2, jobs2, 0, 0, &e);
	ck_assert_int_eq(db_job_claim(db, &c, &e), 1);
	memset(&t, 0, sizeof(t));
	t.idx = 1;
	snprintf(t.role, sizeof(t.role), "interviewer");
	t.model = "gemma3:1b";
	t.backend = "ollama";
	t.text = "hello";
	t.started_at = 1;
	t.finished_at = 2;
	t.wall_ms = 1250;
	t.ttft_ms = 80;
	t.prompt_tokens = 10;
	t.cached_tokens = -1;
	t.completion_tokens = 40;
	t.prompt_ms = -1;
	t.gen_ms = 400;
	t.tokens_per_s = 100;
	t.load_ms = -1;
	ck_assert_int_eq(db_turn_insert(db, c.id, 1, &t, &e), 0);
	db_job_release(&c);
	ck_assert_int_eq(db_batch_turn_stats(db, b.id, &ts, &n, &e), 0);
	ck_assert_uint_eq(n, 1);
	ck_assert_str_eq(ts[0].job_id, jobs[0].id);
	ck_assert_str_eq(ts[0].role, "interviewer");
	ck_assert_double_eq(ts[0].wall_ms, 1250);
	ck_assert_int_eq(ts[0].completion_tokens, 40);
	db_turn_stats_free(ts, n);
	ck_assert_int_eq(db_batch_turn_stats(db, b2.id, &ts, &n, &e), 0);
	ck_assert_uint_eq(n, 0);
	db_turn_stats_free(ts, n);
	/* newest first, in pages */
	ck_assert_int_eq(db_batch_list(db, 0, 1, &v, &n, &e), 0);
	ck_assert_uint_eq(n, 1);
	ck_assert_str_eq(v[0].id, b2.id);
	ck_assert_int_eq(v[0].counts[DB_QUEUED], 4);
	{
		int64_t before = v[0].seq;
		db_batches_free(v, n);
		ck_assert_int_eq(db_batch_list(db, before, 10, &v, &n, &e), 0);
		ck_assert_uint_eq(n, 1);
		ck_assert_str_eq(v[0].id, b.id);
		ck_assert_int_eq(v[0].counts[DB_RUNNING], 1);
	}
	db_batches_free(v, n);
	release(&b, jobs);
	release(&b2, jobs2);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("batch");
	TCase *tc = tcase_create("store");
	SRunner *sr;
	int failed;

	harness_tmpdir(); /* made once here, not in each forked test */
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, batch_and_jobs_in_order);
	tcase_add_test(tc, a_batch_that_does_not_fit_leaves_nothing);
	tcase_add_test(tc, status_counts_and_cancel);
	tcase_add_test(tc, turn_stats_and_pages);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	harness_cleanup();
	return failed ? 1 : 0;
}
