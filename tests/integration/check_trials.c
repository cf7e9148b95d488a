/*
 * check_trials.c - running one trial (server/trials.c) against the fake
 * backend taught a task model: it answers a task right only under the system
 * prompt "FORMAT-OK", so every figure of a trial is known in advance. Checked:
 * the figures and the stored calls, a resumed trial making no call twice, the
 * early stop of a hopeless trial, cancel within a second, and the calls
 * running side by side up to the backend's slots.
 */
#include <check.h>
#include <pthread.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "db/db.h"
#include "db/job.h"
#include "db/trial.h"
#include "server/trials.h"
#include "tests/harness.h"

#define NTASKS 8

static struct proc fake;
static struct db *db;
static char dbpath[512];
static struct db_job job;
static struct config cfg;
static struct backend_cfg be;
static struct fleet *fleet;
static struct trial_task tasks[NTASKS];
static size_t idx[NTASKS];
static char ids[NTASKS][16], inputs[NTASKS][32];

/*
 * The task model: "Qk" under the system prompt FORMAT-OK answers "Ak"; anything else "no
 * idea". The scripted interviewer (the loop test's) proposes a useless prompt, a malformed
 * setting, the good prompt, then stops.
 */
static void start_fake(const char *reply_ms, int slots)
{
	char script[512], slots_s[16];
	const char *args[] = {"--script", script, "--reply-ms", reply_ms, "--slots", slots_s, NULL};
	struct strbuf sb;
	FILE *f;
	int k;

	snprintf(script, sizeof(script), "%s/task-model-%d.json", harness_tmpdir(), (int)getpid());
	snprintf(slots_s, sizeof(slots_s), "%d", slots);
	strbuf_init(&sb, 1024);
	strbuf_addstr(&sb, "{\"models\":{\"task\":{\"replies\":[\"no idea\"],\"cases\":[");
	for (k = 0; k < NTASKS; k++)
		strbuf_addf(&sb,
			    "%s{\"contains\":[\"FORMAT-OK\",\"task Q%d?\"],\"replies\":[\"A%d\"]}",
			    k ? "," : "", k, k);
	/* a prompt that makes it ramble: every reply fails max_words as well */
	strbuf_addstr(
	    &sb, ",{\"contains\":\"Be terse.\",\"replies\":[\"I really have no idea at all\"]}");
	/* the scripted interviewer: proposals only when it was shown the baseline's figures */
	strbuf_addstr(&sb,
		      "]},\"iv\":{\"replies\":[\"I have nothing to propose.\"],\"cases\":[{"
		      "\"contains\":\"The baseline measured score 0.500; tasks passed 0 of 6\","
		      "\"replies\":[\"Let us try terse. #prompt_defined\\n```\\nBe terse.\\n```\","
		      "\"**#test_setting** {\\\"top_q\\\": 1}\","
		      "\"#prompt_defined\\n~~~text\\nFORMAT-OK\\ntemplate: Answer: {input}\\n~~~\","
		      "\"That held up. #stop_progress: good enough\","
		      "\"### 1. Analysis\\nDone.\"]}]}}}");
	ck_assert_ptr_nonnull(f = fopen(script, "w"));
	fputs(sb.buf, f);
	fclose(f);
	strbuf_release(&sb);
	ck_assert_int_eq(harness_fake_start(&fake, args), 0);
}

static void start(const char *reply_ms, int slots)
{
	static int seq;
	struct perr e = {0};
	struct db_job c;
	char url[64], prefix[64];
	int k;

	start_fake(reply_ms, slots);
	snprintf(url, sizeof(url), "http://127.0.0.1:%d", fake.port);
	memset(&be, 0, sizeof(be));
	be.name = "llama";
	be.kind = BACKEND_LLAMA;
	be.url = xstrdup(url);
	be.max_concurrency = slots;
	fleet = fleet_start(&be, 1);
	memset(&cfg, 0, sizeof(cfg));
	cfg.retry_max_attempts = 3;
	cfg.retry_base_delay_ms = 50;
	cfg.retry_max_delay_ms = 200;
	snprintf(prefix, sizeof(prefix), "trials-%d", seq++);
	db = harness_db(prefix, dbpath, sizeof(dbpath), &e);
	ck_assert_msg(db != NULL, "%s", e.msg);
	memset(&job, 0, sizeof(job));
	job.scenario_name = xstrdup("t");
	job.scenario = xstrdup("{\"name\":\"t\"}");
	job.interviewer_model = xstrdup("i");
	job.interviewer_backend = xstrdup("llama");
	job.candidate_model = xstrdup("task");
	job.candidate_backend = xstrdup("llama");
	job.max_turns = 11;
	job.scoring = xstrdup("rubric");
	job.extraction = xstrdup("rubric");
	ck_assert_int_eq(db_job_insert(db, &job, NULL, NULL, 0, &e), 0);
	ck_assert_int_eq(db_job_claim(db, &c, &e), 1);
	db_job_release(&c);
	for (k = 0; k < NTASKS; k++) {
		json_t *checks, *errs = json_array();
		char want[16];
		snprintf(ids[k], sizeof(ids[k]), "t%d", k);
		snprintf(inputs[k], sizeof(inputs[k]), "task Q%d?", k);
		snprintf(want, sizeof(want), "A%d", k);
		/* two checks: the right answer, and a short one (which "no idea" also passes) */
		checks = json_pack("[{s:s}, {s:i}]", "equals", want, "max_words", 3);
		ck_assert_int_eq(checks_compile(checks, "", &tasks[k].checks, errs), 0);
		json_decref(checks);
		json_decref(errs);
		tasks[k].id = ids[k];
		tasks[k].input = inputs[k];
		idx[k] = (size_t)k + 10; /* the scenario's own numbering */
	}
}

static void stop(void)
{
	int k;

	for (k = 0; k < NTASKS; k++)
		checks_release(&tasks[k].checks);
	fleet_stop(fleet);
	free(be.url);
	db_job_release(&job);
	db_close(db);
	harness_stop(&fake, SIGTERM);
}

static void begin_trial(int n)
{
	struct db_trial t = {0};
	struct perr e = {0};

	t.n = n;
	snprintf(t.kind, sizeof(t.kind), "%s", n ? "prompt" : "baseline");
	t.turn = n ? 2 * n + 1 : -1;
	t.config = "{}";
	snprintf(t.status, sizeof(t.status), "running");
	ck_assert_int_eq(db_trial_begin(db, job.id, job.attempts ? job.attempts : 1, &t, NULL, &e),
			 0);
}

static struct trial_spec spec(int n, const char *system, int repeat)
{
	struct trial_spec s;

	memset(&s, 0, sizeof(s));
	s.job_id = job.id;
	s.attempt = 1;
	s.n = n;
	s.split = "train";
	s.system = system;
	s.template = "Answer: {input}";
	s.tasks = tasks;
	s.idx = idx;
	s.ntasks = NTASKS;
	s.repeat = repeat;
	s.backend = "llama";
	s.model = "task";
	s.objective.kind = OBJECTIVE_QUALITY;
	return s;
}

START_TEST(figures_and_stored_calls)
{
	atomic_int cancel = 0;
	struct trial_ctx ctx;
	struct trial_spec s;
	struct trial_outcome o;
	struct db_trial_call *cv;
	struct perr e = {0};
	size_t n;

	start("5", 2);
	ctx = (struct trial_ctx){&cfg, fleet, db, &cancel, NULL};
	begin_trial(0);
	s = spec(0, "plain", 2);
	ck_assert_int_eq(trials_run(&ctx, &s, &o, &e), 0);
	ck_assert_int_eq(o.end, TRIAL_DONE);
	ck_assert_int_eq(o.made, 2 * NTASKS);
	/* "no idea" fails equals and passes max_words: every call scores 1/2 */
	ck_assert(o.fig.score == 0.5);
	ck_assert_int_eq(o.fig.passed, 0);
	ck_assert_int_eq(o.fig.tasks, NTASKS);
	ck_assert_int_eq(o.fig.calls, 2 * NTASKS);
	ck_assert_int_eq(o.nfail, 3);
	ck_assert_str_eq(o.fail[0].reply, "no idea");
	ck_assert_msg(strstr(o.fail[0].why, "is not \"A"), "%s", o.fail[0].why);
	ck_assert_msg(strncmp(o.fail[0].input, "Answer: task Q", 14) == 0, "%s", o.fail[0].input);
	trial_outcome_release(&o);
	/* under the right system prompt every task passes */
	begin_trial(1);
	s = spec(1, "FORMAT-OK", 1);
	ck_assert_int_eq(trials_run(&ctx, &s, &o, &e), 0);
	ck_assert_int_eq(o.end, TRIAL_DONE);
	ck_assert(o.fig.score == 1.0);
	ck_assert_int_eq(o.fig.passed, NTASKS);
	ck_assert_int_eq(o.nfail, 0);
	ck_assert(o.fig.median_ms >= 5);
	ck_assert(o.fig.completion_tokens >= 1);
	trial_outcome_release(&o);
	/* every call is stored with what was sent and what came back */
	ck_assert_int_eq(db_trial_calls(db, job.id, 1, &cv, &n, &e), 0);
	ck_assert_uint_eq(n, NTASKS);
	ck_assert_int_eq(cv[3].task_idx, 13);
	ck_assert_str_eq(cv[3].task_id, "t3");
	ck_assert_str_eq(cv[3].input, "Answer: task Q3?");
	ck_assert_str_eq(cv[3].reply, "A3");
	ck_assert_int_eq(cv[3].passed, 1);
	ck_assert_ptr_nonnull(strstr(cv[3].checks, "\"passed\":true"));
	ck_assert(cv[3].wall_ms > 0);
	ck_assert(cv[3].prompt_tokens > 0);
	db_trial_calls_free(cv, n);
	/* run again, as after a restart: everything is found stored, nothing is called */
	ck_assert_int_eq(trials_run(&ctx, &s, &o, &e), 0);
	ck_assert_int_eq(o.made, 0);
	ck_assert_int_eq(o.resumed, NTASKS);
	ck_assert(o.fig.score == 1.0);
	trial_outcome_release(&o);
	stop();
}
END_TEST

/* judge checks: a judge model answers yes or no under structured output; a judge that
 * says something else fails the check, with why */
START_TEST(judge_checks_are_asked)
{
	atomic_int cancel = 0;
	struct trial_ctx ctx;
	struct trial_task jt[NTASKS];
	struct trial_spec s;
	struct trial_outcome o;
	struct perr e = {0};
	json_t *list = json_loads("[{\"judge\":\"the answer is a capital letter and a digit\"},"
				  "{\"max_words\":3}]",
				  0, NULL),
	       *errs = json_array();
	int k, pass;

	start("0", 2);
	ctx = (struct trial_ctx){&cfg, fleet, db, &cancel, NULL};
	for (k = 0; k < NTASKS; k++) {
		jt[k] = tasks[k];
		ck_assert_int_eq(checks_compile(list, "", &jt[k].checks, errs), 0);
	}
	for (pass = 0; pass < 2; pass++) {
		begin_trial(pass);
		s = spec(pass, "FORMAT-OK", 1);
		s.tasks = jt;
		s.judge_backend = "llama";
		s.judge_model = pass == 0 ? "judge-fair" : "judge-garbage";
		ck_assert_int_eq(trials_run(&ctx, &s, &o, &e), 0);
		ck_assert_int_eq(o.end, TRIAL_DONE);
		if (pass == 0) {
			/* the fake judge answers the schema's first enum value: yes */
			ck_assert(o.fig.score == 1.0);
			ck_assert_int_eq(o.fig.passed, NTASKS);
		} else {
			ck_assert(o.fig.score == 0.5);
			ck_assert_int_eq(o.nfail, 3);
			ck_assert_msg(strstr(o.fail[0].why, "did not answer yes or no"), "%s",
				      o.fail[0].why);
		}
		trial_outcome_release(&o);
	}
	for (k = 0; k < NTASKS; k++)
		checks_release(&jt[k].checks);
	json_decref(list);
	json_decref(errs);
	stop();
}
END_TEST

START_TEST(resume_at_the_first_missing_call)
{
	atomic_int cancel = 0;
	struct trial_ctx ctx;
	struct trial_spec s;
	struct trial_outcome o;
	struct db_trial_call c, *cv;
	struct perr e = {0};
	size_t n;

	start("5", 2);
	ctx = (struct trial_ctx){&cfg, fleet, db, &cancel, NULL};
	begin_trial(0);
	/* three calls were stored before a crash */
	memset(&c, 0, sizeof(c));
	c.trial = 0;
	snprintf(c.split, sizeof(c.split), "train");
	c.task_id = "t0";
	c.input = "Answer: task Q0?";
	c.reply = "A0";
	c.checks = "[]";
	c.score = 1;
	c.passed = 1;
	c.wall_ms = 7;
	c.ttft_ms = c.prompt_tokens = c.cached_tokens = c.completion_tokens = -1;
	for (c.task_idx = 10; c.task_idx < 13; c.task_idx++)
		ck_assert_int_eq(db_trial_call_insert(db, job.id, 1, &c, &e), 0);
	s = spec(0, "FORMAT-OK", 1);
	ck_assert_int_eq(trials_run(&ctx, &s, &o, &e), 0);
	ck_assert_int_eq(o.end, TRIAL_DONE);
	ck_assert_int_eq(o.resumed, 3);
	ck_assert_int_eq(o.made, NTASKS - 3);
	trial_outcome_release(&o);
	ck_assert_int_eq(db_trial_calls(db, job.id, 0, &cv, &n, &e), 0);
	ck_assert_uint_eq(n, NTASKS);
	ck_assert_str_eq(cv[1].input, "Answer: task Q0?"); /* the stored one, untouched */
	ck_assert_str_eq(cv[5].reply, "A5");
	db_trial_calls_free(cv, n);
	stop();
}
END_TEST

START_TEST(hopeless_trial_stops_early)
{
	atomic_int cancel = 0;
	struct trial_ctx ctx;
	struct figures best = {0}, base = {0};
	struct trial_spec s;
	struct trial_outcome o;
	struct perr e = {0};

	start("20", 1);
	ctx = (struct trial_ctx){&cfg, fleet, db, &cancel, NULL};
	best.score = 1.0;
	best.median_ms = 10;
	base = best;
	begin_trial(2);
	s = spec(2, "useless", 2); /* 16 calls of score 1/2 against a best of 1 */
	s.best = &best;
	s.base = &base;
	ck_assert_int_eq(trials_run(&ctx, &s, &o, &e), 0);
	ck_assert_int_eq(o.end, TRIAL_STOPPED);
	/* it stops once half (8) are done: one slot, so at most one more was in flight */
	ck_assert_msg(o.made >= 8 && o.made <= 9, "made %d", o.made);
	ck_assert_int_eq(o.skipped, 2 * NTASKS - o.made);
	trial_outcome_release(&o);
	stop();
}
END_TEST

struct canceller {
	atomic_int *flag;
	long after_ms;
};

static void *cancel_later(void *arg)
{
	struct canceller *c = arg;

	util_sleep_ms(c->after_ms);
	atomic_store(c->flag, 1);
	return NULL;
}

START_TEST(cancel_stops_within_a_second)
{
	atomic_int cancel = 0;
	struct trial_ctx ctx;
	struct canceller cc = {&cancel, 300};
	struct trial_spec s;
	struct trial_outcome o;
	struct perr e = {0};
	pthread_t th;
	int64_t t0, took;

	start("3000", 2); /* every call takes 3 s */
	ctx = (struct trial_ctx){&cfg, fleet, db, &cancel, NULL};
	begin_trial(0);
	s = spec(0, "FORMAT-OK", 1);
	pthread_create(&th, NULL, cancel_later, &cc);
	t0 = util_mono_us();
	ck_assert_int_eq(trials_run(&ctx, &s, &o, &e), 0);
	took = util_mono_us() - t0;
	pthread_join(th, NULL);
	ck_assert_int_eq(o.end, TRIAL_CANCELLED);
	ck_assert_int_eq(o.made, 0);
	ck_assert_msg(took < 300000 + 1000000, "cancel took %lld us", (long long)took);
	trial_outcome_release(&o);
	stop();
}
END_TEST

START_TEST(calls_run_side_by_side)
{
	atomic_int cancel = 0;
	struct trial_ctx ctx;
	struct trial_spec s;
	struct trial_outcome o;
	struct perr e = {0};
	int64_t t0, took;
	double ideal;

	start("100", 4);
	ctx = (struct trial_ctx){&cfg, fleet, db, &cancel, NULL};
	begin_trial(0);
	s = spec(0, "FORMAT-OK", 5); /* 40 calls of 100 ms on 4 slots: 1 s at best */
	t0 = util_mono_us();
	ck_assert_int_eq(trials_run(&ctx, &s, &o, &e), 0);
	took = util_mono_us() - t0;
	ck_assert_int_eq(o.made, 5 * NTASKS);
	ideal = 5.0 * NTASKS * 100000 / 4;
	fprintf(stderr, "trials: %d calls of 100 ms on 4 slots took %.0f ms; ideal %.0f ms; %.2f\n",
		o.made, took / 1000.0, ideal / 1000.0, ideal / (double)took);
	/* one call at a time would take 4 s: at least twice as fast, even on a loaded machine */
	ck_assert_msg(took < 5.0 * NTASKS * 100000 / 2, "took %lld us", (long long)took);
	trial_outcome_release(&o);
	stop();
}
END_TEST

static int job_json(int port, const char *id, const char *tail, json_t **out)
{
	char path[128];

	snprintf(path, sizeof(path), "/v1/jobs/%s%s", id, tail);
	return harness_http_json(port, "GET", path, NULL, out);
}

/* The scenario of the loop test: 8 tasks, 2 held out, baseline "plain". */
static void scenario_body(struct strbuf *sb, const char *optimize)
{
	int k;

	strbuf_addstr(sb, "{\"scenario\":{\"name\":\"loop\",\"problem\":\"P\",\"context\":\"C\","
			  "\"goal\":\"G\",\"baseline\":{\"system\":\"plain\",\"template\":"
			  "\"Answer: {input}\"},\"tasks\":[");
	for (k = 0; k < NTASKS; k++)
		strbuf_addf(sb,
			    "%s{\"id\":\"t%d\",\"input\":\"task Q%d?\",\"checks\":[{\"equals\":"
			    "\"A%d\"},{\"max_words\":3}]}",
			    k ? "," : "", k, k, k);
	strbuf_addf(sb,
		    "]},\"interviewer\":{\"model\":\"iv\"},\"candidate\":{\"model\":\"task\"}%s%s}",
		    optimize ? ",\"optimize\":" : "", optimize ? optimize : "");
}

START_TEST(optimize_loop_end_to_end)
{
	struct proc parleyd;
	char b1[128], dbp[512], *id;
	const char *args[] = {"--backend", b1, NULL};
	struct strbuf sb;
	json_t *j = NULL, *jv, *trials, *best, *t;

	start_fake("20", 2);
	snprintf(b1, sizeof(b1),
		 "name=llama,kind=llama-server,url=http://127.0.0.1:%d,max_concurrency=2",
		 fake.port);
	snprintf(dbp, sizeof(dbp), "%s/loop-%d.db", harness_tmpdir(), (int)getpid());
	ck_assert_int_eq(harness_parleyd_start(&parleyd, dbp, args), 0);
	strbuf_init(&sb, 4096);
	scenario_body(&sb, "{\"repeat\":2,\"holdout\":0.25,\"seed\":7}");
	ck_assert_int_eq(harness_http_json(parleyd.port, "POST", "/v1/jobs", sb.buf, &j), 202);
	ck_assert_int_eq(json_integer_value(json_object_get(j, "max_turns")), 11);
	/* the 202 is the job as GET gives it: its loop's settings with the defaults written out */
	ck_assert_int_eq(
	    json_integer_value(json_object_get(json_object_get(j, "optimize"), "max_trials")), 5);
	ck_assert(json_is_array(json_object_get(j, "trials")));
	id = xstrdup(json_string_value(json_object_get(j, "id")));
	json_decref(j);
	jv = harness_wait_job(parleyd.port, id, 30000);
	ck_assert_ptr_nonnull(jv);
	ck_assert_msg(strcmp(json_string_value(json_object_get(jv, "status")), "succeeded") == 0,
		      "%s", json_dumps(jv, 0));
	/* #stop_progress on turn 7: the analysis is turn 9 */
	if (getenv("TRIALS_DEBUG")) {
		char path[64], *tx = NULL;
		snprintf(path, sizeof(path), "/v1/jobs/%s/transcript", id);
		harness_http(parleyd.port, "GET", path, NULL, NULL, &tx);
		fprintf(stderr, "%s\n%s\n", json_dumps(jv, JSON_INDENT(1)), tx);
	}
	ck_assert_int_eq(json_integer_value(json_object_get(jv, "turns_completed")), 9);
	trials = json_object_get(jv, "trials");
	ck_assert_int_eq(json_array_size(trials), 4);
	/* trial 0, the baseline: "no idea" passes max_words only */
	t = json_array_get(trials, 0);
	ck_assert_str_eq(json_string_value(json_object_get(t, "kind")), "baseline");
	ck_assert(json_real_value(json_object_get(t, "score")) == 0.5);
	ck_assert_int_eq(json_integer_value(json_object_get(t, "tasks")), 6);
	ck_assert_int_eq(json_integer_value(json_object_get(t, "calls")), 12);
	/* trial 1: worse than useless, stopped once it could not reach 0.5 any more: after 7 of
	 * 12 calls (0 + 5 of 12 < 0.5), give or take the calls in flight */
	t = json_array_get(trials, 1);
	ck_assert_str_eq(json_string_value(json_object_get(t, "kind")), "prompt");
	ck_assert_int_eq(json_integer_value(json_object_get(t, "turn")), 1);
	ck_assert_str_eq(json_string_value(json_object_get(json_object_get(t, "config"), "system")),
			 "Be terse.");
	ck_assert(json_real_value(json_object_get(t, "score")) == 0.0);
	ck_assert(json_is_true(json_object_get(t, "stopped_early")));
	ck_assert_int_lt(json_integer_value(json_object_get(t, "calls")), 12);
	ck_assert_ptr_nonnull(
	    strstr(json_string_value(json_object_get(t, "reason")), "stopped early"));
	ck_assert_ptr_nonnull(
	    strstr(json_string_value(json_object_get(t, "message")), "stopped early"));
	/* trial 2: malformed, answered with why */
	t = json_array_get(trials, 2);
	ck_assert_str_eq(json_string_value(json_object_get(t, "status")), "rejected");
	ck_assert_str_eq(json_string_value(json_object_get(t, "kind")), "setting");
	ck_assert_ptr_nonnull(strstr(json_string_value(json_object_get(t, "reason")), "top_q"));
	/* trial 3: the good one, with its template */
	t = json_array_get(trials, 3);
	ck_assert(json_real_value(json_object_get(t, "score")) == 1.0);
	ck_assert_int_eq(json_integer_value(json_object_get(t, "passed")), 6);
	ck_assert(json_real_value(json_object_get(json_object_get(t, "vs_baseline"), "score")) ==
		  0.5);
	ck_assert_str_eq(
	    json_string_value(json_object_get(json_object_get(t, "config"), "template")),
	    "Answer: {input}");
	ck_assert_ptr_nonnull(strstr(json_string_value(json_object_get(t, "message")),
				     "This is the new best (before: trial 0"));
	/* the best, verified on the 2 held-out tasks x 2 */
	best = json_object_get(jv, "best");
	ck_assert_int_eq(json_integer_value(json_object_get(best, "trial")), 3);
	ck_assert(json_is_true(json_object_get(best, "verified")));
	ck_assert(json_real_value(json_object_get(json_object_get(best, "holdout"), "score")) ==
		  1.0);
	ck_assert_int_eq(
	    json_integer_value(json_object_get(json_object_get(best, "holdout"), "tasks")), 2);
	ck_assert(json_real_value(json_object_get(json_object_get(best, "delta"), "score")) == 0.5);
	ck_assert_str_eq(
	    json_string_value(json_object_get(json_object_get(best, "config"), "system")),
	    "FORMAT-OK");
	json_decref(jv);
	/* every task call, with what was sent and what came back */
	ck_assert_int_eq(job_json(parleyd.port, id, "/trials", &j), 200);
	t = json_array_get(json_object_get(j, "trials"), 3);
	ck_assert_int_eq(json_array_size(json_object_get(t, "task_calls")), 12 + 4);
	t = json_array_get(json_object_get(t, "task_calls"), 0);
	ck_assert_str_eq(json_string_value(json_object_get(t, "reply")), "A0");
	ck_assert_str_eq(json_string_value(json_object_get(t, "input")), "Answer: task Q0?");
	ck_assert(json_is_array(json_object_get(t, "checks")));
	json_decref(j);
	/* the transcript keeps the parley items where the models saw them */
	ck_assert_int_eq(job_json(parleyd.port, id, "/transcript", &j), 200);
	{
		json_t *conv = json_object_get(j, "conversation"), *item;
		size_t i, parley = 0;
		json_array_foreach(conv, i, item)
		{
			if (strcmp(json_string_value(json_object_get(item, "speaker")), "parley"))
				continue;
			parley++;
			/* right after the interviewer turn that proposed it */
			ck_assert_int_eq(json_integer_value(json_object_get(item, "after_turn")),
					 json_integer_value(
					     json_object_get(json_array_get(conv, i - 1), "turn")));
		}
		ck_assert_int_eq(json_array_size(conv), 9 + 3);
		ck_assert_int_eq(parley, 3);
	}
	json_decref(j);
	{
		char path[96], *md = NULL;
		snprintf(path, sizeof(path), "/v1/jobs/%s/transcript.md", id);
		ck_assert_int_eq(harness_http(parleyd.port, "GET", path, NULL, NULL, &md), 200);
		if (getenv("TRIALS_DEBUG"))
			fprintf(stderr, "%s\n", md);
		ck_assert_ptr_nonnull(strstr(md, "## 🧪 Trials"));
		ck_assert_ptr_nonnull(strstr(md, "### 🧪 PARLEY: trial 2"));
		ck_assert_msg(strstr(md, "| 3 | prompt | 5 | done | 1.000 (+0.500) | 6/6 |"), "%s",
			      strstr(md, "## 🧪 Trials"));
		ck_assert_ptr_nonnull(strstr(md, "**Best:** trial 3"));
		ck_assert_ptr_nonnull(strstr(md, "- plain\n+ FORMAT-OK\n"));
		ck_assert_ptr_nonnull(strstr(md, "**Verified:**"));
		free(md);
	}
	free(id);
	/* a job without optimize has no trials to list */
	strbuf_reset(&sb);
	scenario_body(&sb, NULL);
	id = harness_submit(parleyd.port, sb.buf);
	ck_assert_int_eq(job_json(parleyd.port, id, "/trials", &j), 404);
	json_decref(j);
	free(id);
	strbuf_release(&sb);
	harness_stop(&parleyd, SIGTERM);
	harness_stop(&fake, SIGTERM);
}
END_TEST

START_TEST(optimize_refused_without_tasks)
{
	struct proc parleyd;
	char b1[128], dbp[512];
	const char *args[] = {"--backend", b1, NULL};
	struct strbuf sb;
	json_t *j = NULL;

	start_fake("0", 1);
	snprintf(b1, sizeof(b1), "name=llama,kind=llama-server,url=http://127.0.0.1:%d", fake.port);
	snprintf(dbp, sizeof(dbp), "%s/refuse-%d.db", harness_tmpdir(), (int)getpid());
	ck_assert_int_eq(harness_parleyd_start(&parleyd, dbp, args), 0);
	ck_assert_int_eq(harness_http_json(parleyd.port, "POST", "/v1/jobs",
					   "{\"scenario\":{\"name\":\"x\",\"problem\":\"P\","
					   "\"context\":\"C\",\"goal\":\"G\"},\"interviewer\":{"
					   "\"model\":\"iv\"},\"candidate\":{\"model\":\"task\"},"
					   "\"optimize\":{}}",
					   &j),
			 400);
	ck_assert_str_eq(json_string_value(json_object_get(
			     json_array_get(json_object_get(j, "errors"), 0), "field")),
			 "optimize");
	json_decref(j);
	strbuf_init(&sb, 4096);
	scenario_body(&sb, "{\"max_trials\":21,\"holdout\":0.9,\"repeat\":0,\"speed\":1}");
	ck_assert_int_eq(harness_http_json(parleyd.port, "POST", "/v1/jobs", sb.buf, &j), 400);
	ck_assert_int_eq(json_array_size(json_object_get(j, "errors")), 4);
	json_decref(j);
	strbuf_release(&sb);
	/* judge checks need a judge: refused without one, not failed silently task by task */
	ck_assert_int_eq(
	    harness_http_json(
		parleyd.port, "POST", "/v1/jobs",
		"{\"scenario\":{\"name\":\"x\",\"problem\":\"P\",\"context\":\"C\",\"goal\":\"G\","
		"\"tasks\":[{\"id\":1,\"input\":\"a\",\"checks\":[{\"max_words\":3}]},{\"id\":2,"
		"\"input\":\"b\",\"checks\":[{\"max_words\":3}]},{\"id\":3,\"input\":\"c\","
		"\"checks\":[{\"max_words\":3}]},{\"id\":4,\"input\":\"d\",\"checks\":[{\"max_"
		"words\":"
		"3},{\"judge\":\"is "
		"polite\"}]}]},\"interviewer\":{\"model\":\"iv\"},\"candidate\":{"
		"\"model\":\"task\"},\"optimize\":{}}",
		&j),
	    400);
	ck_assert_ptr_nonnull(
	    strstr(json_string_value(
		       json_object_get(json_array_get(json_object_get(j, "errors"), 0), "message")),
		   "tasks[3].checks[1] is a judge check: give the job \"judge\""));
	json_decref(j);
	ck_assert_int_eq(harness_http_json(parleyd.port, "GET", "/v1/jobs", NULL, &j), 200);
	ck_assert_int_eq(json_array_size(json_object_get(j, "items")), 0);
	json_decref(j);
	/* with a judge named, the same job is taken */
	ck_assert_int_eq(
	    harness_http_json(
		parleyd.port, "POST", "/v1/jobs",
		"{\"scenario\":{\"name\":\"x\",\"problem\":\"P\",\"context\":\"C\","
		"\"goal\":\"G\",\"tasks\":[{\"id\":1,\"input\":\"a\",\"checks\":[{"
		"\"judge\":\"is polite\"}]},{\"id\":2,\"input\":\"b\",\"checks\":[{"
		"\"max_words\":3}]},{\"id\":3,\"input\":\"c\",\"checks\":[{\"max_words\":"
		"3}]},{\"id\":4,\"input\":\"d\",\"checks\":[{\"max_words\":3}]}]},"
		"\"interviewer\":{\"model\":\"iv\"},\"candidate\":{\"model\":\"task\"},"
		"\"judge\":{\"model\":\"judge-fair\"},\"optimize\":{}}",
		&j),
	    202);
	json_decref(j);
	harness_stop(&parleyd, SIGTERM);
	harness_stop(&fake, SIGTERM);
}
END_TEST

static long count_rows(const char *path, const char *sql)
{
	sqlite3 *h;
	sqlite3_stmt *st;
	long n = -1;

	if (sqlite3_open_v2(path, &h, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK)
		return -1;
	sqlite3_busy_timeout(h, 1000);
	if (sqlite3_prepare_v2(h, sql, -1, &st, NULL) == SQLITE_OK &&
	    sqlite3_step(st) == SQLITE_ROW)
		n = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	sqlite3_close(h);
	return n;
}

/* Waits until sql counts at least n (polling the store), up to timeout_ms. */
static int wait_rows(const char *path, const char *sql, long n, long timeout_ms)
{
	int64_t until = util_mono_us() + timeout_ms * 1000;

	while (util_mono_us() < until) {
		if (count_rows(path, sql) >= n)
			return 0;
		util_sleep_ms(20);
	}
	return -1;
}

START_TEST(loop_restart_and_cancel)
{
	struct proc parleyd;
	char b1[128], dbp[512], conf[512], path[128], *id;
	const char *args[] = {"--backend", b1, "--config", conf, NULL};
	struct strbuf sb;
	json_t *j = NULL, *t;
	int64_t t0;
	FILE *f;

	start_fake("100", 1);
	snprintf(b1, sizeof(b1),
		 "name=llama,kind=llama-server,url=http://127.0.0.1:%d,max_concurrency=1",
		 fake.port);
	snprintf(dbp, sizeof(dbp), "%s/restart-%d.db", harness_tmpdir(), (int)getpid());
	snprintf(conf, sizeof(conf), "%s/restart-%d.json", harness_tmpdir(), (int)getpid());
	ck_assert_ptr_nonnull(f = fopen(conf, "w"));
	fputs("{\"drain_timeout_s\": 1}", f);
	fclose(f);
	ck_assert_int_eq(harness_parleyd_start(&parleyd, dbp, args), 0);
	strbuf_init(&sb, 4096);
	scenario_body(&sb, "{\"repeat\":2,\"holdout\":0.25,\"seed\":7}");
	id = harness_submit(parleyd.port, sb.buf);
	/* SIGTERM in the middle of trial 1 (each call takes 100 ms, one at a time) */
	ck_assert_int_eq(
	    wait_rows(dbp, "SELECT count(*) FROM trial_calls WHERE trial = 1", 2, 20000), 0);
	ck_assert_int_eq(harness_stop(&parleyd, SIGTERM), 0);
	ck_assert_int_lt(count_rows(dbp, "SELECT count(*) FROM trial_calls WHERE trial = 1"), 12);
	ck_assert_int_eq(harness_parleyd_start(&parleyd, dbp, args), 0);
	j = harness_wait_job(parleyd.port, id, 60000);
	ck_assert_ptr_nonnull(j);
	ck_assert_str_eq(json_string_value(json_object_get(j, "status")), "succeeded");
	ck_assert_int_eq(json_integer_value(json_object_get(j, "attempts")), 2);
	/* the same loop as without the restart, each call stored once */
	ck_assert_int_eq(json_array_size(json_object_get(j, "trials")), 4);
	ck_assert_int_eq(json_integer_value(json_object_get(json_object_get(j, "best"), "trial")),
			 3);
	ck_assert(json_is_true(json_object_get(json_object_get(j, "best"), "verified")));
	json_decref(j);
	ck_assert_int_eq(count_rows(dbp, "SELECT count(*) FROM trial_calls WHERE trial = 0"),
			 12 + 4);
	ck_assert_int_eq(count_rows(dbp, "SELECT count(*) FROM trials WHERE status = 'running'"),
			 0);
	free(id);

	/* cancel in the middle of the baseline: the job ends within a second */
	id = harness_submit(parleyd.port, sb.buf);
	snprintf(path, sizeof(path),
		 "SELECT count(*) FROM trial_calls WHERE job_id = '%s' AND trial = 0", id);
	ck_assert_int_eq(wait_rows(dbp, path, 2, 20000), 0);
	snprintf(path, sizeof(path), "/v1/jobs/%s/cancel", id);
	t0 = util_mono_us();
	ck_assert_int_eq(harness_http(parleyd.port, "POST", path, "", NULL, NULL), 202);
	j = harness_wait_job(parleyd.port, id, 5000);
	ck_assert_ptr_nonnull(j);
	ck_assert_str_eq(json_string_value(json_object_get(j, "status")), "cancelled");
	ck_assert_msg(util_mono_us() - t0 < 1500000, "cancel took %lld us",
		      (long long)(util_mono_us() - t0));
	t = json_array_get(json_object_get(j, "trials"), 0);
	ck_assert_str_eq(json_string_value(json_object_get(t, "status")), "cancelled");
	json_decref(j);
	free(id);
	strbuf_release(&sb);
	harness_stop(&parleyd, SIGTERM);
	harness_stop(&fake, SIGTERM);
}
END_TEST

/* kill -9 during the verification: after the restart it resumes there, no call twice */
START_TEST(crash_during_verification_resumes_there)
{
	struct proc parleyd;
	char b1[128], dbp[512], *id;
	const char *args[] = {"--backend", b1, NULL};
	struct strbuf sb;
	json_t *j = NULL;

	start_fake("150", 1);
	snprintf(b1, sizeof(b1),
		 "name=llama,kind=llama-server,url=http://127.0.0.1:%d,max_concurrency=1",
		 fake.port);
	snprintf(dbp, sizeof(dbp), "%s/verify-crash-%d.db", harness_tmpdir(), (int)getpid());
	ck_assert_int_eq(harness_parleyd_start(&parleyd, dbp, args), 0);
	strbuf_init(&sb, 4096);
	scenario_body(&sb, "{\"repeat\":2,\"holdout\":0.25,\"seed\":7}");
	ck_assert_int_eq(harness_http_json(parleyd.port, "POST", "/v1/jobs", sb.buf, &j), 202);
	strbuf_release(&sb);
	id = xstrdup(json_string_value(json_object_get(j, "id")));
	json_decref(j);
	/* the holdout: 2 tasks x 2 for the baseline, then for the best; kill after the first */
	ck_assert_int_eq(
	    wait_rows(dbp, "SELECT count(*) FROM trial_calls WHERE split = 'holdout'", 1, 60000),
	    0);
	ck_assert_int_eq(harness_stop(&parleyd, SIGKILL), 128 + SIGKILL);
	ck_assert_int_lt(
	    count_rows(dbp, "SELECT count(*) FROM trial_calls WHERE split = 'holdout'"), 8);
	ck_assert_int_eq(harness_parleyd_start(&parleyd, dbp, args), 0);
	j = harness_wait_job(parleyd.port, id, 60000);
	ck_assert_ptr_nonnull(j);
	ck_assert_str_eq(json_string_value(json_object_get(j, "status")), "succeeded");
	ck_assert(json_is_true(json_object_get(json_object_get(j, "best"), "verified")));
	json_decref(j);
	/* every holdout call once, and no trial call of the train split made again */
	ck_assert_int_eq(
	    count_rows(dbp, "SELECT count(*) FROM trial_calls WHERE split = 'holdout'"), 8);
	ck_assert_int_eq(count_rows(dbp, "SELECT count(*) FROM trial_calls WHERE trial = 0 AND "
					 "split = 'train'"),
			 12);
	free(id);
	harness_stop(&parleyd, SIGTERM);
	harness_stop(&fake, SIGTERM);
}
END_TEST

/* max_trials ends the loop: the analysis comes next, and a later proposal is not tested */
START_TEST(max_trials_ends_the_loop)
{
	struct proc parleyd;
	char b1[128], dbp[512], *id;
	const char *args[] = {"--backend", b1, NULL};
	struct strbuf sb;
	json_t *j = NULL, *t;

	start_fake("0", 2);
	snprintf(b1, sizeof(b1),
		 "name=llama,kind=llama-server,url=http://127.0.0.1:%d,max_concurrency=2",
		 fake.port);
	snprintf(dbp, sizeof(dbp), "%s/max-trials-%d.db", harness_tmpdir(), (int)getpid());
	ck_assert_int_eq(harness_parleyd_start(&parleyd, dbp, args), 0);
	strbuf_init(&sb, 4096);
	scenario_body(&sb, "{\"max_trials\":2,\"holdout\":0.25,\"seed\":7}");
	ck_assert_int_eq(harness_http_json(parleyd.port, "POST", "/v1/jobs", sb.buf, &j), 202);
	strbuf_release(&sb);
	id = xstrdup(json_string_value(json_object_get(j, "id")));
	json_decref(j);
	j = harness_wait_job(parleyd.port, id, 30000);
	ck_assert_ptr_nonnull(j);
	ck_assert_str_eq(json_string_value(json_object_get(j, "status")), "succeeded");
	/* trials 1 (turn 1) and 2 (turn 3) use the two; the analysis is turn 5 */
	ck_assert_int_eq(json_array_size(json_object_get(j, "trials")), 3);
	ck_assert_int_eq(json_integer_value(json_object_get(j, "turns_completed")), 5);
	t = json_array_get(json_object_get(j, "trials"), 2);
	ck_assert_ptr_nonnull(strstr(json_string_value(json_object_get(t, "message")),
				     "No more trials: the limit of trials is reached"));
	/* nothing beat the baseline: best is trial 0, not verified */
	ck_assert_int_eq(json_integer_value(json_object_get(json_object_get(j, "best"), "trial")),
			 0);
	ck_assert(json_is_false(json_object_get(json_object_get(j, "best"), "verified")));
	json_decref(j);
	free(id);
	harness_stop(&parleyd, SIGTERM);
	harness_stop(&fake, SIGTERM);
}
END_TEST

/* A batch with optimize: every job runs the loop; candidates rank by what held up. */
START_TEST(batch_ranks_by_verified_improvement)
{
	struct proc parleyd;
	char b1[128], dbp[512], path[96], *id, *md = NULL;
	const char *args[] = {"--backend", b1, NULL};
	struct strbuf sb, sc;
	json_t *j = NULL, *rank;
	int64_t until;
	int k;

	start_fake("0", 2);
	snprintf(b1, sizeof(b1),
		 "name=llama,kind=llama-server,url=http://127.0.0.1:%d,max_concurrency=2",
		 fake.port);
	snprintf(dbp, sizeof(dbp), "%s/batch-%d.db", harness_tmpdir(), (int)getpid());
	ck_assert_int_eq(harness_parleyd_start(&parleyd, dbp, args), 0);
	strbuf_init(&sc, 2048);
	strbuf_addstr(&sc, "{\"name\":\"loop\",\"problem\":\"P\",\"context\":\"C\",\"goal\":\"G\","
			   "\"baseline\":{\"system\":\"plain\",\"template\":\"Answer: {input}\"},"
			   "\"tasks\":[");
	for (k = 0; k < NTASKS; k++)
		strbuf_addf(&sc,
			    "%s{\"id\":\"t%d\",\"input\":\"task Q%d?\",\"checks\":[{\"equals\":"
			    "\"A%d\"},{\"max_words\":3}]}",
			    k ? "," : "", k, k, k);
	strbuf_addstr(&sc, "]}");
	strbuf_init(&sb, 4096);
	/* a scenario without tasks cannot be optimized on: 400 naming it */
	strbuf_addf(&sb,
		    "{\"interviewer\":{\"model\":\"iv\"},\"candidates\":[{\"model\":\"task\"}],"
		    "\"scenarios\":[%s,\"response_speed_optimization\",{\"name\":\"bare\","
		    "\"problem\":\"P\",\"context\":\"C\",\"goal\":\"G\"}],\"optimize\":{}}",
		    sc.buf);
	ck_assert_int_eq(harness_http_json(parleyd.port, "POST", "/v1/batches", sb.buf, &j), 400);
	ck_assert_str_eq(json_string_value(json_object_get(
			     json_array_get(json_object_get(j, "errors"), 0), "field")),
			 "scenarios[2]");
	json_decref(j);
	strbuf_reset(&sb);
	/* "task" answers right under FORMAT-OK; "task2" is not taught anything */
	strbuf_addf(&sb,
		    "{\"interviewer\":{\"model\":\"iv\"},\"candidates\":[{\"model\":\"task2\"},"
		    "{\"model\":\"task\"}],\"scenarios\":[%s],\"optimize\":{\"repeat\":2,"
		    "\"holdout\":0.25,\"seed\":7}}",
		    sc.buf);
	ck_assert_int_eq(harness_http_json(parleyd.port, "POST", "/v1/batches", sb.buf, &j), 202);
	id = xstrdup(json_string_value(json_object_get(j, "id")));
	json_decref(j);
	snprintf(path, sizeof(path), "/v1/batches/%s", id);
	until = util_mono_us() + 60000000;
	for (j = NULL; util_mono_us() < until; util_sleep_ms(100)) {
		json_decref(j);
		j = NULL;
		ck_assert_int_eq(harness_http_json(parleyd.port, "GET", path, NULL, &j), 200);
		if (!strcmp(json_string_value(json_object_get(j, "status")), "finished"))
			break;
	}
	ck_assert_str_eq(json_string_value(json_object_get(j, "status")), "finished");
	rank = json_object_get(j, "optimize_rankings");
	ck_assert_int_eq(json_array_size(rank), 2);
	ck_assert_str_eq(json_string_value(json_object_get(json_array_get(rank, 0), "model")),
			 "task");
	ck_assert_int_eq(json_integer_value(json_object_get(json_array_get(rank, 0), "verified")),
			 1);
	ck_assert(json_real_value(
		      json_object_get(json_array_get(rank, 0), "mean_holdout_delta_score")) == 0.5);
	ck_assert_int_eq(json_integer_value(json_object_get(json_array_get(rank, 1), "verified")),
			 0);
	json_decref(j);
	snprintf(path, sizeof(path), "/v1/batches/%s/report.md", id);
	ck_assert_int_eq(harness_http(parleyd.port, "GET", path, NULL, NULL, &md), 200);
	ck_assert_ptr_nonnull(strstr(md, "## 🧪 Verified Improvements"));
	ck_assert_msg(strstr(md, "| 1 | `task` | 1 | 1 | 1 | +0.500 |"), "%s",
		      strstr(md, "## 🧪 Verified Improvements"));
	free(md);
	free(id);
	strbuf_release(&sb);
	strbuf_release(&sc);
	harness_stop(&parleyd, SIGTERM);
	harness_stop(&fake, SIGTERM);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("trials");
	TCase *tc = tcase_create("run");
	SRunner *sr;
	int failed;

	harness_tmpdir();
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, figures_and_stored_calls);
	tcase_add_test(tc, judge_checks_are_asked);
	tcase_add_test(tc, resume_at_the_first_missing_call);
	tcase_add_test(tc, hopeless_trial_stops_early);
	tcase_add_test(tc, cancel_stops_within_a_second);
	tcase_add_test(tc, calls_run_side_by_side);
	tcase_add_test(tc, optimize_loop_end_to_end);
	tcase_add_test(tc, optimize_refused_without_tasks);
	tcase_add_test(tc, loop_restart_and_cancel);
	tcase_add_test(tc, batch_ranks_by_verified_improvement);
	tcase_add_test(tc, max_trials_ends_the_loop);
	tcase_add_test(tc, crash_during_verification_resumes_there);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	harness_cleanup();
	return failed ? 1 : 0;
}
