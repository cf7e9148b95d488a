/*
 * trials.c - the closed loop: running one trial. See trials.h.
 */
#include "server/trials.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "db/trial.h"
#include "server/log.h"

/* A finished task call, handed from a thread to the coordinator. */
struct result {
	size_t k; /* index into spec->tasks */
	int rep;
	char *input, *reply, *error;
	json_t *checks; /* [{check, passed, why?}] */
	double score;
	int passed;
	int64_t started_at, finished_at;
	struct chat_metrics m;
};

struct run {
	const struct trial_ctx *ctx;
	const struct trial_spec *spec;
	pthread_mutex_t lock; /* guards next, queue, nq, aq, threads */
	pthread_cond_t cond;  /* a result arrived, a thread ended, or stop was raised */
	size_t *todo;	      /* call numbers (rep * ntasks + k) still to make; read-only */
	size_t ntodo, next;
	struct result *queue;
	size_t nq, aq;
	int threads; /* still running */
	atomic_int stop;
};

char *trials_render(const char *template, const char *input)
{
	struct strbuf sb;
	const char *p = template, *hit;

	strbuf_init(&sb, strlen(template) + strlen(input));
	while ((hit = strstr(p, "{input}"))) {
		strbuf_add(&sb, p, (size_t)(hit - p));
		strbuf_addstr(&sb, input);
		p = hit + 7;
	}
	strbuf_addstr(&sb, p);
	return strbuf_detach(&sb, NULL);
}

static void result_release(struct result *r)
{
	free(r->input);
	free(r->reply);
	free(r->error);
	json_decref(r->checks);
}

void trial_outcome_release(struct trial_outcome *o)
{
	int i;

	for (i = 0; i < o->nfail; i++) {
		free(o->fail[i].task_id);
		free(o->fail[i].input);
		free(o->fail[i].reply);
		free(o->fail[i].why);
	}
	memset(o, 0, sizeof(*o));
}

static void raise_stop(struct run *r)
{
	pthread_mutex_lock(&r->lock);
	atomic_store(&r->stop, 1);
	pthread_cond_broadcast(&r->cond);
	pthread_mutex_unlock(&r->lock);
	fleet_poke(r->ctx->fleet);
}

/* Sleeps up to ms unless stop is raised; returns non-zero when it was. */
static int nap(struct run *r, long ms)
{
	struct timespec until;
	int stopped;

	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += ms / 1000;
	until.tv_nsec += (ms % 1000) * 1000000L;
	if (until.tv_nsec >= 1000000000L) {
		until.tv_sec++;
		until.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&r->lock);
	while (!atomic_load(&r->stop) &&
	       pthread_cond_timedwait(&r->cond, &r->lock, &until) != ETIMEDOUT)
		;
	stopped = atomic_load(&r->stop);
	pthread_mutex_unlock(&r->lock);
	return stopped;
}

/* The checks of task k on reply: fills res->checks, score, passed. */
static void grade(const struct trial_task *t, struct result *res)
{
	size_t i, ok = 0;
	char why[300];

	res->checks = json_array();
	for (i = 0; i < t->checks.n; i++) {
		int rc =
		    res->error ? 0 : checks_eval(&t->checks.v[i], res->reply, why, sizeof(why));
		json_t *c = json_pack("{s:o, s:b}", "check", checks_json(&t->checks.v[i]), "passed",
				      rc == 1);
		if (res->error)
			snprintf(why, sizeof(why), "the call failed");
		else if (rc < 0)
			snprintf(why, sizeof(why),
				 "judge checks are not evaluated by this version");
		if (rc != 1)
			json_object_set_new(c, "why", json_string(why));
		json_array_append_new(res->checks, c);
		ok += rc == 1;
	}
	res->score = t->checks.n ? (double)ok / (double)t->checks.n : 0;
	res->passed = t->checks.n && ok == t->checks.n;
}

/* One task call with retries of transient failures. Returns 0 with res filled (a call that
 * still failed has res->error), or -1 when the trial was stopped meanwhile. */
static int call_task(struct run *r, CURL *curl, size_t k, int rep, struct result *res)
{
	const struct trial_spec *sp = r->spec;
	const struct backend_cfg *be = fleet_find(r->ctx->fleet, sp->backend);
	struct chat_msg msgs[2];
	struct chat_req req;
	struct chat_result cr;
	struct perr e = {0};
	size_t nm = 0;
	int attempt;

	memset(res, 0, sizeof(*res));
	res->k = k;
	res->rep = rep;
	res->input = trials_render(sp->template, sp->tasks[k].input);
	if (sp->system && *sp->system)
		msgs[nm++] = (struct chat_msg){"system", sp->system};
	msgs[nm++] = (struct chat_msg){"user", res->input};
	memset(&req, 0, sizeof(req));
	req.be = be;
	req.model = sp->model;
	req.msgs = msgs;
	req.nmsgs = nm;
	req.options = sp->options;
	req.cancel = &r->stop;
	for (attempt = 1;; attempt++) {
		int rc;
		if (fleet_acquire(r->ctx->fleet, sp->backend, &r->stop) < 0)
			goto stopped;
		res->started_at = util_now_us();
		memset(&cr, 0, sizeof(cr));
		rc = backend_chat(curl, &req, &cr, &e);
		res->finished_at = util_now_us();
		fleet_release(r->ctx->fleet, sp->backend);
		if (rc == 0) {
			res->reply = strbuf_detach(&cr.text, NULL);
			res->m = cr.m;
			chat_result_release(&cr);
			break;
		}
		if (atomic_load(&r->stop)) {
			chat_result_release(&cr);
			goto stopped;
		}
		if (!backend_error_transient(&e, &cr) ||
		    attempt >= r->ctx->cfg->retry_max_attempts) {
			res->reply = strbuf_detach(&cr.text, NULL);
			res->m = cr.m;
			res->error = xstrdup(e.msg);
			chat_result_release(&cr);
			break;
		}
		chat_result_release(&cr);
		if (nap(r, r->ctx->cfg->retry_base_delay_ms << (attempt > 6 ? 6 : attempt - 1)))
			goto stopped;
	}
	grade(&sp->tasks[k], res);
	return 0;
stopped:
	free(res->input);
	memset(res, 0, sizeof(*res));
	return -1;
}

static void *thread_main(void *arg)
{
	struct run *r = arg;
	CURL *curl = curl_easy_init();

	for (;;) {
		struct result res;
		size_t call;

		pthread_mutex_lock(&r->lock);
		if (atomic_load(&r->stop) || r->next == r->ntodo || !curl) {
			pthread_mutex_unlock(&r->lock);
			break;
		}
		call = r->todo[r->next++];
		pthread_mutex_unlock(&r->lock);
		if (call_task(r, curl, call % r->spec->ntasks, (int)(call / r->spec->ntasks),
			      &res) < 0)
			continue;
		pthread_mutex_lock(&r->lock);
		if (r->nq == r->aq) {
			r->aq = r->aq ? r->aq * 2 : 8;
			r->queue = xrealloc(r->queue, r->aq * sizeof(*r->queue));
		}
		r->queue[r->nq++] = res;
		pthread_cond_broadcast(&r->cond);
		pthread_mutex_unlock(&r->lock);
	}
	if (curl)
		curl_easy_cleanup(curl);
	pthread_mutex_lock(&r->lock);
	r->threads--;
	pthread_cond_broadcast(&r->cond);
	pthread_mutex_unlock(&r->lock);
	return NULL;
}

/* The failures worth showing: lowest score first, one per task. */
struct fails {
	struct trial_failure *v;
	size_t n, alloc;
};

static void fails_add(struct fails *f, const char *task_id, const char *input, const char *reply,
		      json_t *checks, const char *error, double score)
{
	struct trial_failure *x;
	json_t *c; /* borrowed */
	size_t i;
	const char *why = error;

	if (score >= 1)
		return;
	json_array_foreach(checks, i, c)
	{
		if (!why && !json_is_true(json_object_get(c, "passed")))
			why = json_string_value(json_object_get(c, "why"));
	}
	if (f->n == f->alloc) {
		f->alloc = f->alloc ? f->alloc * 2 : 8;
		f->v = xrealloc(f->v, f->alloc * sizeof(*f->v));
	}
	x = &f->v[f->n++];
	x->task_id = xstrdup(task_id);
	x->input = xstrdup(input);
	x->reply = xstrdup(reply ? reply : "");
	x->why = xstrdup(why ? why : "a check failed");
	x->score = score;
}

static int cmp_fail(const void *a, const void *b)
{
	const struct trial_failure *x = a, *y = b;

	return x->score < y->score ? -1 : x->score > y->score;
}

static void fails_pick(struct fails *f, struct trial_outcome *out)
{
	size_t i;
	int k;

	if (f->n)
		qsort(f->v, f->n, sizeof(*f->v), cmp_fail);
	for (i = 0; i < f->n; i++) {
		int dup = 0;
		for (k = 0; k < out->nfail; k++)
			dup |= strcmp(out->fail[k].task_id, f->v[i].task_id) == 0;
		if (!dup && out->nfail < TRIAL_MAX_FAILURES) {
			out->fail[out->nfail++] = f->v[i];
			continue;
		}
		free(f->v[i].task_id);
		free(f->v[i].input);
		free(f->v[i].reply);
		free(f->v[i].why);
	}
	free(f->v);
}

static void outcome_of(struct call_outcome *o, size_t k, int rep, double score, int passed,
		       int failed, double wall_ms, double ttft_ms, double tokens)
{
	o->task = k;
	o->repeat = rep;
	o->score = score;
	o->passed = passed;
	o->failed = failed;
	o->wall_ms = wall_ms;
	o->ttft_ms = ttft_ms < 0 ? 0 : ttft_ms;
	o->completion_tokens = tokens < 0 ? 0 : tokens;
}

static int store(struct run *r, struct result *res, struct perr *e)
{
	const struct trial_spec *sp = r->spec;
	struct db_trial_call c;
	int rc;

	memset(&c, 0, sizeof(c));
	c.trial = sp->n;
	snprintf(c.split, sizeof(c.split), "%s", sp->split);
	c.task_idx = (int)sp->idx[res->k];
	c.rep = res->rep;
	c.task_id = xstrdup(sp->tasks[res->k].id);
	c.input = res->input;
	c.reply = res->reply;
	c.checks = json_dumps(res->checks, JSON_COMPACT);
	c.score = res->score;
	c.passed = res->passed;
	c.error = res->error;
	c.started_at = res->started_at;
	c.finished_at = res->finished_at;
	c.wall_ms = res->m.wall_ms;
	c.ttft_ms = res->m.ttft_ms;
	c.prompt_tokens = res->m.prompt_tokens;
	c.cached_tokens = res->m.cached_tokens;
	c.completion_tokens = res->m.completion_tokens;
	rc = db_trial_call_insert(r->ctx->db, sp->job_id, sp->attempt, &c, e);
	free(c.checks);
	free(c.task_id);
	return rc;
}

int trials_run(const struct trial_ctx *ctx, const struct trial_spec *sp, struct trial_outcome *out,
	       struct perr *e)
{
	struct db_trial_call *stored = NULL;
	size_t nstored = 0, total = sp->ntasks * (size_t)sp->repeat, i, k, maxidx = 0, nout = 0;
	size_t *where; /* scenario task index -> index in spec->tasks + 1, 0 when not in it */
	unsigned char *have;
	struct call_outcome *oc;
	struct fails fails = {0};
	pthread_t th[TRIALS_MAX_PARALLEL];
	struct run r;
	double sum = 0;
	int nthreads, t, stopped_early = 0, store_failed = 0;

	memset(out, 0, sizeof(*out));
	if (!fleet_find(ctx->fleet, sp->backend))
		return perr_set(e, PERR_INVALID, "backend '%s' is not configured", sp->backend);
	if (db_trial_calls(ctx->db, sp->job_id, sp->n, &stored, &nstored, e) < 0)
		return -1;
	for (k = 0; k < sp->ntasks; k++)
		if (sp->idx[k] > maxidx)
			maxidx = sp->idx[k];
	where = xcalloc(maxidx + 1, sizeof(*where));
	for (k = 0; k < sp->ntasks; k++)
		where[sp->idx[k]] = k + 1;
	have = xcalloc(total ? total : 1, 1);
	oc = xcalloc(total ? total : 1, sizeof(*oc));
	/* the calls already stored (a resumed trial) count as they are */
	for (i = 0; i < nstored; i++) {
		struct db_trial_call *c = &stored[i];
		json_t *checks;
		size_t slot;
		if (strcmp(c->split, sp->split) != 0 || (size_t)c->task_idx > maxidx ||
		    !where[c->task_idx] || c->rep < 0 || c->rep >= sp->repeat)
			continue;
		k = where[c->task_idx] - 1;
		slot = (size_t)c->rep * sp->ntasks + k;
		if (have[slot])
			continue;
		have[slot] = 1;
		outcome_of(&oc[nout++], k, c->rep, c->score, c->passed, c->error != NULL,
			   c->wall_ms, c->ttft_ms, (double)c->completion_tokens);
		sum += c->error ? 0 : c->score;
		checks = json_loads(c->checks, 0, NULL);
		fails_add(&fails, c->task_id, c->input, c->reply, checks, c->error, c->score);
		json_decref(checks);
		out->resumed++;
	}
	db_trial_calls_free(stored, nstored);

	memset(&r, 0, sizeof(r));
	r.ctx = ctx;
	r.spec = sp;
	pthread_mutex_init(&r.lock, NULL);
	pthread_cond_init(&r.cond, NULL);
	r.todo = xcalloc(total ? total : 1, sizeof(*r.todo));
	for (i = 0; i < total; i++)
		if (!have[i])
			r.todo[r.ntodo++] = i;
	atomic_init(&r.stop, 0);
	nthreads = fleet_limit(ctx->fleet, sp->backend);
	if (nthreads > TRIALS_MAX_PARALLEL)
		nthreads = TRIALS_MAX_PARALLEL;
	if (nthreads < 1)
		nthreads = 1;
	if ((size_t)nthreads > r.ntodo)
		nthreads = (int)r.ntodo;
	if (sp->best && stats_early_stop(&sp->objective, sum, nout, total, sp->best, sp->base))
		atomic_store(&r.stop, 1), stopped_early = 1;
	for (t = 0; t < nthreads && !atomic_load(&r.stop); t++) {
		if (pthread_create(&th[t], NULL, thread_main, &r) != 0)
			break;
		r.threads++;
	}
	nthreads = t;

	pthread_mutex_lock(&r.lock);
	while (r.threads > 0 || r.nq > 0) {
		struct result *batch;
		size_t nb;
		if (atomic_load(ctx->cancel) && !atomic_load(&r.stop)) {
			pthread_mutex_unlock(&r.lock);
			raise_stop(&r);
			pthread_mutex_lock(&r.lock);
		}
		if (r.nq == 0) {
			struct timespec until;
			clock_gettime(CLOCK_REALTIME, &until);
			until.tv_nsec += 100 * 1000000L;
			if (until.tv_nsec >= 1000000000L) {
				until.tv_sec++;
				until.tv_nsec -= 1000000000L;
			}
			pthread_cond_timedwait(&r.cond, &r.lock, &until);
			continue;
		}
		batch = r.queue;
		nb = r.nq;
		r.queue = NULL;
		r.nq = r.aq = 0;
		pthread_mutex_unlock(&r.lock);
		for (i = 0; i < nb; i++) {
			struct result *res = &batch[i];
			if (!store_failed && store(&r, res, e) < 0) {
				log_error("cannot store trial call", "job=%s trial=%d error=\"%s\"",
					  sp->job_id, sp->n, e->msg);
				store_failed = 1;
				raise_stop(&r);
			}
			if (!store_failed) {
				outcome_of(&oc[nout++], res->k, res->rep, res->score, res->passed,
					   res->error != NULL, res->m.wall_ms, res->m.ttft_ms,
					   (double)res->m.completion_tokens);
				sum += res->error ? 0 : res->score;
				fails_add(&fails, sp->tasks[res->k].id, res->input, res->reply,
					  res->checks, res->error, res->score);
				out->made++;
			}
			result_release(res);
		}
		free(batch);
		if (!store_failed && !atomic_load(&r.stop) && sp->best &&
		    stats_early_stop(&sp->objective, sum, nout, total, sp->best, sp->base)) {
			stopped_early = 1;
			raise_stop(&r);
		}
		pthread_mutex_lock(&r.lock);
	}
	pthread_mutex_unlock(&r.lock);
	for (t = 0; t < nthreads; t++)
		pthread_join(th[t], NULL);

	stats_figures(oc, nout, &out->fig);
	out->skipped = (int)(total - nout);
	if (store_failed)
		out->end = TRIAL_ERROR;
	else if (stopped_early)
		out->end = TRIAL_STOPPED;
	else if (nout < total)
		out->end = TRIAL_CANCELLED;
	else
		out->end = TRIAL_DONE;
	fails_pick(&fails, out);
	free(r.todo);
	free(r.queue);
	pthread_mutex_destroy(&r.lock);
	pthread_cond_destroy(&r.cond);
	free(where);
	free(have);
	free(oc);
	return 0;
}
