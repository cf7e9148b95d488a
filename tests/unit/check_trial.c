/*
 * check_trial.c - the store of trials: a trial and its task calls are stored
 * under the job's claim, a call is never stored twice, a resumed job meets its
 * trials again, a stale attempt writes nothing, deleting a job removes them.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "db/db.h"
#include "db/job.h"
#include "db/trial.h"
#include "tests/harness.h"

static struct db *db;
static char path[512];
static struct db_job job;

static void setup(void)
{
	struct perr e = {0};
	struct db_job c;

	db = harness_db("trial", path, sizeof(path), &e);
	ck_assert_msg(db != NULL, "%s", e.msg);
	memset(&job, 0, sizeof(job));
	job.scenario_name = xstrdup("prompt_engineering_breakthrough");
	job.scenario = xstrdup("{\"name\":\"prompt_engineering_breakthrough\"}");
	job.interviewer_model = xstrdup("i");
	job.interviewer_backend = xstrdup("ollama");
	job.candidate_model = xstrdup("c");
	job.candidate_backend = xstrdup("ollama");
	job.max_turns = 11;
	job.scoring = xstrdup("rubric");
	job.extraction = xstrdup("rubric");
	ck_assert_int_eq(db_job_insert(db, &job, NULL, NULL, 0, &e), 0);
	ck_assert_int_eq(db_job_claim(db, &c, &e), 1);
	db_job_release(&c);
}

static void teardown(void)
{
	db_job_release(&job);
	db_close(db);
	unlink(path);
}

static struct db_trial_call call(int trial, const char *split, int task, int rep, double score)
{
	struct db_trial_call c;

	memset(&c, 0, sizeof(c));
	c.trial = trial;
	snprintf(c.split, sizeof(c.split), "%s", split);
	c.task_idx = task;
	c.rep = rep;
	c.task_id = "t";
	c.input = "Is 17 prime?";
	c.reply = "yes";
	c.checks = "[{\"check\":{\"equals\":\"yes\"},\"passed\":true}]";
	c.score = score;
	c.passed = score == 1.0;
	c.started_at = 10;
	c.finished_at = 20;
	c.wall_ms = 12.5;
	c.ttft_ms = -1;
	c.prompt_tokens = 30;
	c.cached_tokens = -1;
	c.completion_tokens = 2;
	return c;
}

START_TEST(trial_and_calls_round_trip)
{
	struct db_trial t = {0}, *tv;
	struct db_trial_call c, *cv;
	struct perr e = {0};
	size_t n;
	int existed = -1;

	t.n = 0;
	snprintf(t.kind, sizeof(t.kind), "baseline");
	t.turn = -1;
	t.config = "{\"system\":\"\",\"template\":\"{input}\",\"options\":{}}";
	snprintf(t.status, sizeof(t.status), "running");
	ck_assert_int_eq(db_trial_begin(db, job.id, 1, &t, &existed, &e), 0);
	ck_assert_int_eq(existed, 0);
	c = call(0, "train", 0, 0, 1.0);
	ck_assert_int_eq(db_trial_call_insert(db, job.id, 1, &c, &e), 0);
	/* the same call again is refused: no task call is stored twice */
	ck_assert_int_eq(db_trial_call_insert(db, job.id, 1, &c, &e), -1);
	ck_assert_int_eq(e.code, PERR_CONFLICT);
	/* another repeat, another split and a failed call are other rows */
	c = call(0, "train", 0, 1, 0.5);
	ck_assert_int_eq(db_trial_call_insert(db, job.id, 1, &c, &e), 0);
	c = call(0, "holdout", 0, 0, 0.0);
	c.error = "backend down";
	ck_assert_int_eq(db_trial_call_insert(db, job.id, 1, &c, &e), 0);
	/* a call of a trial that was never begun is refused */
	c = call(5, "train", 0, 0, 1.0);
	ck_assert_int_eq(db_trial_call_insert(db, job.id, 1, &c, &e), -1);
	ck_assert_int_eq(
	    db_trial_finish(db, job.id, 1, 0, "done", NULL, "{\"score\":0.75}", "msg", &e), 0);

	ck_assert_int_eq(db_trial_list(db, job.id, &tv, &n, &e), 0);
	ck_assert_uint_eq(n, 1);
	ck_assert_str_eq(tv[0].status, "done");
	ck_assert_str_eq(tv[0].kind, "baseline");
	ck_assert_int_eq(tv[0].turn, -1);
	ck_assert_ptr_null(tv[0].proposal);
	ck_assert_str_eq(tv[0].result, "{\"score\":0.75}");
	ck_assert_str_eq(tv[0].message, "msg");
	ck_assert(tv[0].finished_at > 0);
	db_trials_free(tv, n);

	ck_assert_int_eq(db_trial_calls(db, job.id, 0, &cv, &n, &e), 0);
	ck_assert_uint_eq(n, 3);
	ck_assert_str_eq(cv[0].split, "train"); /* train first, then holdout */
	ck_assert_int_eq(cv[1].rep, 1);
	ck_assert(cv[1].score == 0.5);
	ck_assert_str_eq(cv[2].split, "holdout");
	ck_assert_str_eq(cv[2].error, "backend down");
	ck_assert_int_eq((int)cv[0].cached_tokens, -1); /* unknown stays unknown */
	ck_assert_int_eq((int)cv[0].prompt_tokens, 30);
	ck_assert(cv[0].ttft_ms < 0);
	ck_assert_str_eq(cv[0].reply, "yes");
	db_trial_calls_free(cv, n);
}
END_TEST

START_TEST(resume_and_stale_claims)
{
	struct db_trial t = {0}, *tv;
	struct db_trial_call c, *cv;
	struct db_job g;
	struct perr e = {0};
	size_t n;
	int existed = -1;

	t.n = 1;
	snprintf(t.kind, sizeof(t.kind), "prompt");
	t.turn = 3;
	t.proposal = "{\"system\":\"Be brief.\"}";
	t.config = "{\"system\":\"Be brief.\",\"template\":\"{input}\",\"options\":{}}";
	snprintf(t.status, sizeof(t.status), "running");
	ck_assert_int_eq(db_trial_begin(db, job.id, 1, &t, &existed, &e), 0);
	c = call(1, "train", 2, 0, 1.0);
	ck_assert_int_eq(db_trial_call_insert(db, job.id, 1, &c, &e), 0);
	/* a restart: the job is claimed again under attempt 2 */
	ck_assert_int_eq(db_job_requeue_running(db, &e), 1);
	ck_assert_int_eq(db_job_claim(db, &g, &e), 1);
	ck_assert_int_eq(g.attempts, 2);
	db_job_release(&g);
	/* the old attempt writes nothing */
	c = call(1, "train", 3, 0, 1.0);
	ck_assert_int_eq(db_trial_call_insert(db, job.id, 1, &c, &e), -1);
	ck_assert_int_eq(e.code, PERR_CONFLICT);
	ck_assert_int_eq(db_trial_finish(db, job.id, 1, 1, "done", NULL, NULL, NULL, &e), -1);
	/* the new one meets the trial again, and keeps what it holds */
	t.proposal = "{\"system\":\"something else\"}";
	ck_assert_int_eq(db_trial_begin(db, job.id, 2, &t, &existed, &e), 0);
	ck_assert_int_eq(existed, 1);
	ck_assert_int_eq(db_trial_list(db, job.id, &tv, &n, &e), 0);
	ck_assert_str_eq(tv[0].proposal, "{\"system\":\"Be brief.\"}");
	ck_assert_int_eq(tv[0].turn, 3);
	db_trials_free(tv, n);
	ck_assert_int_eq(db_trial_call_insert(db, job.id, 2, &c, &e), 0);
	ck_assert_int_eq(db_trial_calls(db, job.id, -1, &cv, &n, &e), 0);
	ck_assert_uint_eq(n, 2);
	db_trial_calls_free(cv, n);
}
END_TEST

START_TEST(rejected_trial_is_finished_at_once)
{
	struct db_trial t = {0}, *tv;
	struct perr e = {0};
	size_t n;

	t.n = 2;
	snprintf(t.kind, sizeof(t.kind), "setting");
	t.turn = 5;
	t.config = "{}";
	t.reason = "options.top_q: unknown option";
	snprintf(t.status, sizeof(t.status), "rejected");
	ck_assert_int_eq(db_trial_begin(db, job.id, 1, &t, NULL, &e), 0);
	ck_assert_int_eq(db_trial_list(db, job.id, &tv, &n, &e), 0);
	ck_assert_str_eq(tv[0].status, "rejected");
	ck_assert_str_eq(tv[0].reason, "options.top_q: unknown option");
	ck_assert(tv[0].finished_at > 0);
	db_trials_free(tv, n);
	/* a status outside the contract is refused by the store itself */
	t.n = 3;
	snprintf(t.status, sizeof(t.status), "maybe");
	ck_assert_int_eq(db_trial_begin(db, job.id, 1, &t, NULL, &e), -1);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("trial");
	TCase *tc = tcase_create("store");
	SRunner *sr;
	int failed;

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, trial_and_calls_round_trip);
	tcase_add_test(tc, resume_and_stale_claims);
	tcase_add_test(tc, rejected_trial_is_finished_at_once);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	harness_cleanup();
	return failed ? 1 : 0;
}
