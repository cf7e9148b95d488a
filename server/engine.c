/*
 * engine.c - one conversation, turn by turn. See engine.h.
 */
#include "server/engine.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "db/turn.h"
#include "server/ending.h"
#include "server/events.h"
#include "server/extract.h"
#include "server/job_spec.h"
#include "server/extract_model.h"
#include "server/judge.h"
#include "server/log.h"
#include "server/metrics.h"
#include "server/outcome.h"
#include "server/prompt.h"
#include "server/record.h"
#include "server/score.h"
#include "server/trials.h"

struct turns {
	struct db_turn *v;
	size_t n, alloc;
};

struct token_ctx {
	const char *job_id;
	int turn;
	const char *speaker, *model;
};

/* turn_started: the turn's text starts (again, on a retry) from nothing. */
static void publish_turn_started(const struct token_ctx *tc, int attempt)
{
	json_t *ev = json_pack("{s:i, s:s, s:s, s:i}", "turn", tc->turn, "speaker", tc->speaker,
			       "model", tc->model, "attempt", attempt);

	events_turn_begin(tc->job_id, tc->turn, tc->speaker, tc->model);
	events_publish(tc->job_id, "turn_started", tc->turn, tc->turn - 1, ev);
	json_decref(ev);
}

static int on_token(void *ud, const char *delta, size_t len)
{
	struct token_ctx *tc = ud;

	events_publish_token(tc->job_id, tc->turn, tc->turn - 1, delta, len);
	return 0;
}

static int has_stop_marker(const char *text)
{
	return text && strcasestr(text, "#stop_progress") != NULL;
}

int engine_analysis_turn(int max_turns, const struct db_turn *turns, size_t nturns)
{
	int last = max_turns % 2 ? max_turns : max_turns - 1;
	size_t i;

	for (i = 0; i < nturns; i++) {
		const struct db_turn *t = &turns[i];
		if (t->idx < last && strcmp(t->role, "interviewer") == 0 &&
		    has_stop_marker(t->text) && t->idx + 2 < last)
			last = t->idx + 2;
	}
	return last;
}

int engine_last_turn(int max_turns, const struct db_turn *turns, size_t nturns)
{
	int analysis = engine_analysis_turn(max_turns, turns, nturns);
	int natural = max_turns % 2 ? max_turns : max_turns - 1;

	/* with an even max_turns the candidate answers the analysis, unless it came early */
	return analysis == natural && max_turns % 2 == 0 ? analysis + 1 : analysis;
}

long engine_backoff_ms(const struct config *cfg, int attempt, long retry_after_ms)
{
	double d = (double)cfg->retry_base_delay_ms * pow(2.0, attempt > 10 ? 9 : attempt - 1);
	double jitter = 0.5 + (double)(random() % 1000) / 1000.0;

	if (d > (double)cfg->retry_max_delay_ms)
		d = (double)cfg->retry_max_delay_ms;
	d *= jitter;
	if ((double)retry_after_ms > d)
		d = (double)retry_after_ms;
	return (long)d;
}

/* The store writes of a job, in the shape ending_store() retries (server/ending.h). */
struct turn_put {
	struct engine_ctx *ctx;
	const struct db_job *job;
	const struct db_turn *t;
};

static int store_turn(void *arg, struct perr *e)
{
	const struct turn_put *tp = arg;

	return db_turn_insert(tp->ctx->db, tp->job->id, tp->job->attempts, tp->t, e);
}

struct turn_list {
	struct engine_ctx *ctx;
	const struct db_job *job;
	struct db_turn *v;
	size_t n;
};

static int load_turns(void *arg, struct perr *e)
{
	struct turn_list *tl = arg;

	return db_turn_list(tl->ctx->db, tl->job->id, &tl->v, &tl->n, e);
}

enum call_outcome { CALL_OK, CALL_FAILED, CALL_CANCELLED };

/*
 * The retry policy. A loading or busy server is waited for (up to the first-
 * byte deadline: loading a model takes as long as it takes); a server that
 * refuses connections, a cut stream and a stall are retried up to
 * retry_max_attempts; Ollama's "runner unexpectedly stopped" / "timed out
 * waiting" 500s once. A request the server rejects (400, 404 model, context
 * overflow) is never retried. A turn cut after partial output restarts from
 * scratch, and its note says so.
 */
static int retryable(const struct engine_ctx *ctx, const struct perr *e,
		     const struct chat_result *res, int tries, int64_t waited_us,
		     const struct backend_cfg *be)
{
	long busy_budget_ms = be->first_byte_timeout_ms > 0 ? be->first_byte_timeout_ms : 300000;

	switch (e->code) {
	case PERR_BACKEND_BUSY:
		return waited_us / 1000 < busy_budget_ms;
	case PERR_BACKEND_DOWN:
	case PERR_BACKEND_PROTOCOL:
	case PERR_BACKEND_TIMEOUT:
		return tries < ctx->cfg->retry_max_attempts;
	case PERR_BACKEND_ERROR:
		return tries == 1 && res->http_status == 500 &&
		       (strstr(e->msg, "unexpectedly stopped") ||
			strstr(e->msg, "timed out waiting"));
	default:
		return 0;
	}
}

/* Notes a failed attempt; a run of attempts that failed alike is one entry. */
struct note_run {
	int from;      /* first attempt of the current run, 0 before any */
	size_t offset; /* where its entry starts in the note */
	char entry[sizeof(((struct perr *)0)->msg) + 64];
};

static void note_attempt(struct strbuf *note, int attempt, int partial, const char *msg,
			 struct note_run *run)
{
	const char *what =
	    partial ? "cut after partial output, restarted from scratch" : "failed, retried";
	char entry[sizeof(((struct perr *)0)->msg) + 64];

	snprintf(entry, sizeof(entry), "%s: %s", what, msg);
	if (run->from && strcmp(entry, run->entry) == 0) {
		/* the run's entry becomes "attempts 1-3 failed, retried: ..." */
		note->len = run->offset;
		note->buf[note->len] = '\0';
		strbuf_addf(note, "attempts %d-%d %s", run->from, attempt, entry);
		return;
	}
	if (note->len)
		strbuf_addstr(note, " | ");
	run->offset = note->len;
	run->from = attempt;
	snprintf(run->entry, sizeof(run->entry), "%s", entry);
	strbuf_addf(note, "attempt %d %s", attempt, entry);
}

/* One turn's model call with its retries; fills res, t's metrics and note. */
static enum call_outcome call_with_retries(struct engine_ctx *ctx, int role, struct chat_req *req,
					   struct chat_result *res, struct db_turn *t,
					   struct strbuf *note, struct perr *e)
{
	char moved[512];
	int64_t first = util_mono_us();
	int attempt, tries = 0, last_code = 0, moves = 0;
	struct note_run run = {0, 0, ""};

	for (attempt = 1;; attempt++) {
		long delay;
		int rc;

		if (fleet_call_begin(ctx->lease, role, ctx->cancel, req) < 0)
			return CALL_CANCELLED;
		if (atomic_load(ctx->stopping)) {
			/* shutting down: no new call, the job goes back to the queue */
			fleet_call_end(ctx->lease, role, NULL);
			return CALL_CANCELLED;
		}
		publish_turn_started(req->ud, attempt);
		t->started_at = util_now_us();
		rc = backend_chat(ctx->curl, req, res, e);
		t->finished_at = util_now_us();
		fleet_call_end(ctx->lease, role, rc == 0 ? &res->m : NULL);
		t->attempts = attempt;
		if (rc == 0)
			return CALL_OK;
		if (atomic_load(ctx->cancel) || e->code == PERR_CANCELLED)
			return CALL_CANCELLED;
		metrics_backend_error(req->be->name, perr_code_name(e->code));
		/* attempts count per kind of failure, so a server that was loading for a
		 * while and then restarts still gets its full share of reconnects */
		tries = e->code == last_code ? tries + 1 : 1;
		last_code = e->code;
		/* a pool member that fails: the conversation goes on on another one, cold (a few
		 * times a turn at most: members that died together still look up for a while) */
		if ((e->code == PERR_BACKEND_DOWN || e->code == PERR_BACKEND_TIMEOUT ||
		     e->code == PERR_BACKEND_PROTOCOL) &&
		    moves < 3 && fleet_conv_move(ctx->lease, role, moved, sizeof(moved))) {
			moves++;
			note_attempt(note, attempt, res->partial, e->msg, &run);
			strbuf_addf(note, " | %s", moved);
			run.from = 0;
			tries = 0;
			chat_result_release(res);
			continue;
		}
		if (!retryable(ctx, e, res, tries, util_mono_us() - first, req->be))
			return CALL_FAILED;
		note_attempt(note, attempt, res->partial, e->msg, &run);
		log_warn("retrying model call", "backend=%s model=%s attempt=%d error=\"%s\"",
			 req->be->name, req->model, attempt, e->msg);
		delay = engine_backoff_ms(ctx->cfg, attempt, res->retry_after_ms);
		/* a loading server is looked at again every few seconds at most */
		if (e->code == PERR_BACKEND_BUSY && !res->retry_after_ms && delay > 5000)
			delay = 5000;
		chat_result_release(res);
		if (ctx->wait_ms(ctx->wait_ud, delay))
			return CALL_CANCELLED;
	}
}

static void set_metrics(struct db_turn *t, const struct chat_metrics *m)
{
	t->wall_ms = m->wall_ms;
	t->ttft_ms = m->ttft_ms;
	t->prompt_tokens = m->prompt_tokens;
	t->cached_tokens = m->cached_tokens;
	t->completion_tokens = m->completion_tokens;
	t->prompt_ms = m->prompt_ms;
	t->gen_ms = m->gen_ms;
	t->tokens_per_s = m->tokens_per_s;
	t->load_ms = m->load_ms;
	t->finish_reason = m->finish_reason[0] ? xstrdup(m->finish_reason) : NULL;
}

static void turns_push(struct turns *ts, struct db_turn *t)
{
	if (ts->n == ts->alloc) {
		ts->alloc = ts->alloc ? ts->alloc * 2 : 8;
		ts->v = xrealloc(ts->v, ts->alloc * sizeof(*ts->v));
	}
	ts->v[ts->n++] = *t;
}

/* Extracts, scores, lets the judge grade when asked to, and ends the job. */
static enum job_end finish_success(struct engine_ctx *ctx, struct ending *en,
				   const struct db_job *job, const struct job_spec *spec,
				   const struct turns *ts)
{
	enum score_method sm = spec->scoring;
	enum job_end out = JOB_GOES_ON;
	struct optim_list ol, found;
	json_t *extractor;

	optim_list_init(&ol);
	outcome_extract(job->extraction, job->max_turns, ts->v, ts->n, &ol);
	/* from here on, whatever ends the job keeps the scores and the optimizations */
	ending_set_metrics(en, outcome_metrics(job->scoring, spec->scenario, ts->v, ts->n, &ol));
	en->optims = &ol;
	/* extraction "model" is one more model call (server/extract_model.h); what the tree
	 * extractor found stands if the job ends during it */
	if (spec->extraction == EXTRACT_MODEL &&
	    (out = ending_check(en, ENDING_BEFORE_CALL)) == JOB_GOES_ON) {
		optim_list_init(&found);
		extractor = extract_model_job(ctx->fleet, ctx->curl, ctx->cancel, job, ts->v, ts->n,
					      &found);
		if ((out = ending_check(en, ENDING_CALL_DONE)) == JOB_GOES_ON) {
			optim_list_release(&ol);
			ol = found;
			ending_set_metrics(
			    en, outcome_metrics(job->scoring, spec->scenario, ts->v, ts->n, &ol));
			if (extractor)
				json_object_set_new(en->metrics, "extractor", extractor);
		} else {
			optim_list_release(&found);
			json_decref(extractor);
		}
	}
	/* scoring "judge": a third model grades the transcript, stored beside the rubric scores;
	 * a judge that fails is recorded there and the job still succeeds (server/judge.h) */
	if (out == JOB_GOES_ON && sm == SCORE_JUDGE &&
	    (out = ending_check(en, ENDING_BEFORE_CALL)) == JOB_GOES_ON) {
		struct judge_call jc = {.fleet = ctx->fleet,
					.curl = ctx->curl,
					.cancel = ctx->cancel,
					.model = spec->judge_model,
					.backend = spec->judge_backend,
					.scenario = spec->scenario,
					.options = spec->options,
					.turns = ts->v,
					.nturns = ts->n};
		json_object_set_new(en->metrics, "judge", judge_run(&jc));
		out = ending_check(en, ENDING_CALL_DONE);
	}
	if (out == JOB_GOES_ON)
		out = ending_finish(en, "succeeded", NULL, NULL);
	en->optims = NULL;
	optim_list_release(&ol);
	return out;
}

static json_t *partial_metrics(const struct turns *ts)
{
	json_t *m = json_object();
	double total_ms = 0;
	size_t i;

	for (i = 0; i < ts->n; i++)
		total_ms += ts->v[i].wall_ms;
	json_object_set_new(m, "total_duration", json_real(total_ms / 1000.0));
	json_object_set_new(m, "turns_completed", json_integer((json_int_t)ts->n));
	return m;
}

/* A trial of the closed loop did not end: cancelled, shutting down, or the store failed. */
static enum job_end trial_interrupted(struct ending *en, const struct turns *ts, enum trial_end end,
				      const struct perr *e)
{
	/* what the job keeps if it ends here: its turns so far */
	ending_set_metrics(en, partial_metrics(ts));
	if (end == TRIAL_CANCELLED)
		/* a cancel ends it cancelled, shutdown requeues it: the trial resumes */
		return ending_check(en, ENDING_CALL_CUT);
	log_error("trial failed", "job=%s error=\"%s\"", en->job_id, e->msg);
	if (e->code == PERR_CONFLICT)
		return ending_lost(en);
	if (e->code == PERR_DB || e->code == PERR_STORE_BUSY || e->code == PERR_STORE_UNAVAILABLE)
		return ending_requeue(en); /* the store may come back; the trial resumes */
	/* anything else would fail again after a requeue */
	return ending_finish(en, "failed", perr_code_name(e->code), e->msg);
}

enum job_end engine_run(struct engine_ctx *ctx, struct db_job *job)
{
	struct trial_ctx tctx = {ctx->cfg, ctx->fleet, ctx->db, ctx->cancel, ctx->lease};
	struct trials_loop *loop = NULL;
	enum trial_end te;
	enum job_end out = JOB_GOES_ON;
	struct turns ts = {0};
	struct prompts pr = {0};
	struct strbuf scratch, note;
	struct chat_msg *msgs = NULL;
	struct ending en;
	struct job_spec spec;
	struct perr e = {0};
	size_t i;

	ending_init(&en, ctx->db, job->id, job->attempts, ctx->cancel, ctx->stopping);
	ending_set_waiter(&en, ctx->cfg, ctx->wait_ms, ctx->wait_ud, ctx->cancel);
	strbuf_init(&scratch, 4096);
	strbuf_init(&note, 0);
	if (job_spec_parse(job, &spec, &e) < 0) {
		log_error("cannot read job", "job=%s error=\"%s\"", job->id, e.msg);
		out = ending_finish(&en, "failed", "internal", e.msg);
		goto out;
	}
	prompt_render(spec.scenario, job->interviewer_model, job->candidate_model, job->max_turns,
		      &pr);
	{
		struct turn_list tl = {ctx, job, NULL, 0};
		enum ending_store so;
		int tries;

		so = ending_store(&en, "load turns", load_turns, &tl, 1, &tries, &e);
		if (so != ENDING_STORED) {
			log_error("cannot load turns", "job=%s error=\"%s\"", job->id, e.msg);
			out = ending_store_failed(&en, so, "its stored turns could not be read",
						  tries, &e);
			goto out;
		}
		ts.v = tl.v;
		ts.n = tl.n;
	}
	ts.alloc = ts.n;
	log_info("job started", "job=%s attempt=%d resume_at=%zu", job->id, job->attempts,
		 ts.n + 1);
	ending_publish(ctx->db, job->id);
	/* "optimize": the baseline runs before the interview (server/trials.h) */
	if (job->optimize) {
		loop = trials_loop_open(&tctx, job->id, job->attempts, job->optimize, spec.scenario,
					job->candidate_backend, job->candidate_model, job->judge,
					ctx->stopping, &e);
		if (!loop) {
			out = ending_finish(&en, "failed", perr_code_name(e.code), e.msg);
			goto out;
		}
		if ((te = trials_loop_baseline(loop, &pr.interviewer_system, &e)) != TRIAL_DONE) {
			out = trial_interrupted(&en, &ts, te, &e);
			goto out;
		}
	}

	for (;;) {
		int idx = (int)ts.n + 1;
		int last, analysis;
		int interviewer = idx % 2 == 1;
		struct chat_result res;
		struct chat_req req;
		struct db_turn t;
		struct token_ctx tc;
		enum call_outcome co;
		json_t *ev;

		/* the interviewer's proposal is tested before the candidate answers */
		if (loop && !interviewer && ts.n &&
		    ts.v[ts.n - 1].idx <
			trials_loop_analysis(loop,
					     engine_analysis_turn(job->max_turns, ts.v, ts.n)) &&
		    (te = trials_loop_turn(loop, ts.v[ts.n - 1].idx, ts.v[ts.n - 1].text, &e)) !=
			TRIAL_DONE) {
			out = trial_interrupted(&en, &ts, te, &e);
			goto out;
		}
		last = engine_last_turn(job->max_turns, ts.v, ts.n);
		analysis = engine_analysis_turn(job->max_turns, ts.v, ts.n);
		if (loop && trials_loop_analysis(loop, analysis) < analysis)
			analysis = last = trials_loop_analysis(loop, analysis);
		if (idx > last)
			break;
		/* what a job ended from here on keeps: its turns so far */
		ending_set_metrics(&en, partial_metrics(&ts));
		if ((out = ending_check(&en, ENDING_BEFORE_CALL)) != JOB_GOES_ON)
			goto out;
		memset(&req, 0, sizeof(req));
		req.be = fleet_find(ctx->fleet, interviewer ? job->interviewer_backend
							    : job->candidate_backend);
		req.model = interviewer ? job->interviewer_model : job->candidate_model;
		if (!req.be) {
			char msg[256];
			snprintf(msg, sizeof(msg), "backend '%s' is no longer configured",
				 interviewer ? job->interviewer_backend : job->candidate_backend);
			out = ending_finish(&en, "failed", "backend_missing", msg);
			goto out;
		}
		msgs = xrealloc(msgs, (ts.n + 3) * sizeof(*msgs));
		req.msgs = msgs;
		req.nmsgs = prompt_messages(&pr, ts.v, ts.n, idx, interviewer && idx == analysis,
					    msgs, &scratch);
		if (loop)
			req.msgs =
			    trials_loop_messages(loop, ts.v, ts.n, interviewer, msgs, &req.nmsgs);
		req.options = spec.options;
		req.cancel = ctx->cancel;
		tc.job_id = job->id;
		tc.turn = idx;
		tc.speaker = interviewer ? "interviewer" : "candidate";
		tc.model = req.model;
		req.on_token = on_token;
		req.ud = &tc;

		memset(&t, 0, sizeof(t));
		memset(&res, 0, sizeof(res));
		strbuf_reset(&note);
		co = call_with_retries(ctx, interviewer ? FLEET_INTERVIEWER : FLEET_CANDIDATE, &req,
				       &res, &t, &note, &e);
		if (co == CALL_CANCELLED) {
			chat_result_release(&res);
			out = ending_check(&en, ENDING_CALL_CUT);
			goto out;
		}
		if (co == CALL_FAILED) {
			char msg[sizeof(e.msg) + 64];

			chat_result_release(&res);
			if (t.attempts > 1)
				snprintf(msg, sizeof(msg), "turn %d (%s), after %d attempts: %s",
					 idx, tc.speaker, t.attempts, e.msg);
			else
				snprintf(msg, sizeof(msg), "turn %d (%s): %s", idx, tc.speaker,
					 e.msg);
			out = ending_finish(&en, "failed", perr_code_name(e.code), msg);
			goto out;
		}
		t.idx = idx;
		snprintf(t.role, sizeof(t.role), "%s", tc.speaker);
		t.model = xstrdup(req.model);
		t.backend = xstrdup(req.be->name);
		t.text = strbuf_detach(&res.text, NULL);
		set_metrics(&t, &res.m);
		if (res.note[0]) /* the reply itself: cut at the cap, or text repaired */
			strbuf_addf(&note, "%s%s", note.len ? " | " : "", res.note);
		t.note = note.len ? xstrdup(note.buf) : NULL;
		chat_result_release(&res);
		{
			struct turn_put tp = {ctx, job, &t};
			enum ending_store so;
			int tries;

			so = ending_store(&en, "store turn", store_turn, &tp, 1, &tries, &e);
			if (so != ENDING_STORED) {
				char what[64];
				/* a cancel or shutdown while the write waited is no error */
				if (so == ENDING_STALE || so == ENDING_GAVE_UP)
					log_error("cannot store turn",
						  "job=%s turn=%d attempts=%d error=\"%s\"",
						  job->id, idx, tries, e.msg);
				db_turn_release(&t);
				snprintf(what, sizeof(what), "turn %d (%s) could not be stored",
					 idx, interviewer ? "interviewer" : "candidate");
				out = ending_store_failed(&en, so, what, tries, &e);
				goto out;
			}
		}
		job->turns_completed = idx;
		metrics_turn(&t);
		events_turn_end(job->id);
		ev = record_turn(&t);
		events_publish(job->id, "turn_finished", idx, idx, ev);
		json_decref(ev);
		log_debug("turn stored", "job=%s turn=%d wall_ms=%.0f", job->id, idx, t.wall_ms);
		turns_push(&ts, &t);
	}
	/* the turns are done: their slots go to the judge and the next conversations */
	if (ctx->lease)
		fleet_conv_release(ctx->lease);
	tctx.lease = NULL; /* released: the held-out run takes free slots */
	/* the best trial and the baseline on the held-out tasks */
	if (loop && (te = trials_loop_verify(loop, &e)) != TRIAL_DONE) {
		out = trial_interrupted(&en, &ts, te, &e);
		goto out;
	}
	out = finish_success(ctx, &en, job, &spec, &ts);
out:
	trials_loop_close(loop);
	ending_release(&en);
	for (i = 0; i < ts.n; i++)
		db_turn_release(&ts.v[i]);
	free(ts.v);
	free(msgs);
	prompt_release(&pr);
	strbuf_release(&scratch);
	strbuf_release(&note);
	job_spec_release(&spec);
	return out;
}
