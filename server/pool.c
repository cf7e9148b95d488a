/*
 * pool.c - worker threads. See pool.h.
 */
#include "server/pool.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "db/job.h"
#include "server/engine.h"
#include "server/log.h"

struct worker {
	struct pool *pool;
	int index;
	pthread_t thread;
	atomic_int cancel;
	pthread_mutex_t lock;	    /* guards job_id and pairs with nap */
	pthread_cond_t nap;	    /* backoff sleeps; signalled on cancel */
	char job_id[DB_JOB_ID_LEN]; /* "" when idle */
};

/* When a stream (a batch's jobs, or the single jobs, for one pair of backends) last started a
 * job: the stream that waited longest goes first. */
struct stream {
	char key[128];
	unsigned long tick;
};

#define MAX_STREAMS 1024
#define HEADS 64 /* queued streams looked at per pick */

struct pool {
	const struct config *cfg;
	struct fleet *fleet;
	struct worker *w;
	int n;
	pthread_mutex_t lock; /* guards wake_seq, the sleep of idle workers, and streams */
	pthread_cond_t work;
	unsigned long wake_seq;
	struct stream *streams;
	size_t nstreams;
	unsigned long tick;
	atomic_int stopping;
	atomic_int busy;
};

static void stream_key(const struct db_job *j, char *key, size_t size)
{
	snprintf(key, size, "%.40s|%.40s|%.40s", j->batch_id ? j->batch_id : "",
		 j->interviewer_backend, j->candidate_backend);
}

/* Lock held. */
static unsigned long stream_tick(struct pool *p, const char *key)
{
	size_t i;

	for (i = 0; i < p->nstreams; i++)
		if (!strcmp(p->streams[i].key, key))
			return p->streams[i].tick;
	return 0;
}

static void stream_started(struct pool *p, const struct db_job *j)
{
	char key[128];
	size_t i;

	stream_key(j, key, sizeof(key));
	pthread_mutex_lock(&p->lock);
	for (i = 0; i < p->nstreams && strcmp(p->streams[i].key, key); i++)
		;
	if (i == p->nstreams) {
		/* forgetting every stream only loses one round of turn-taking */
		if (p->nstreams == MAX_STREAMS)
			p->nstreams = i = 0;
		snprintf(p->streams[i].key, sizeof(p->streams[i].key), "%s", key);
		p->nstreams++;
	}
	p->streams[i].tick = ++p->tick;
	pthread_mutex_unlock(&p->lock);
}

struct head {
	struct db_job *job;
	unsigned long tick;
};

static int head_cmp(const void *a, const void *b)
{
	const struct head *x = a, *y = b;

	if (x->tick != y->tick)
		return x->tick < y->tick ? -1 : 1;
	return x->job->seq < y->job->seq ? -1 : x->job->seq > y->job->seq;
}

static int blocked(char *const *names, size_t n, const char *name)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (!strcmp(names[i], name))
			return 1;
	return 0;
}

/*
 * Claims the next job that can start now, with the slots its conversation needs (lease).
 * Candidates are the oldest queued job of each stream, the stream that started a job least
 * recently first (batches and single jobs take turns); once a candidate finds no room on a
 * backend, no later one starts there (within a backend, jobs start in order). Returns 1 with
 * out and lease filled, 0 when no job can start now, -1 with e set.
 */
static int pick(struct pool *p, struct db *db, struct db_job *out, struct fleet_lease *lease,
		struct perr *e)
{
	struct db_job *jobs;
	struct head *h;
	char *full[2 * HEADS];
	size_t n, i, nfull = 0;
	int rc = 0;

	if (db_job_heads(db, HEADS, &jobs, &n, e) < 0)
		return -1;
	h = xcalloc(n ? n : 1, sizeof(*h));
	pthread_mutex_lock(&p->lock);
	for (i = 0; i < n; i++) {
		char key[128];

		stream_key(&jobs[i], key, sizeof(key));
		h[i].job = &jobs[i];
		h[i].tick = stream_tick(p, key);
	}
	pthread_mutex_unlock(&p->lock);
	qsort(h, n, sizeof(*h), head_cmp);
	for (i = 0; i < n && rc == 0; i++) {
		const struct db_job *j = h[i].job;
		const char *be[FLEET_NROLES] = {j->interviewer_backend, j->candidate_backend};
		const char *model[FLEET_NROLES] = {j->interviewer_model, j->candidate_model};

		if (blocked(full, nfull, be[0]) || blocked(full, nfull, be[1]))
			continue;
		if (!fleet_conv_try(p->fleet, be, model, lease)) {
			full[nfull++] = j->interviewer_backend;
			full[nfull++] = j->candidate_backend;
			continue;
		}
		rc = db_job_claim_id(db, j->id, out, e);
		if (rc != 1)
			fleet_conv_release(
			    lease); /* taken or cancelled meanwhile, or the store failed */
		else
			stream_started(p, out);
	}
	free(h);
	db_jobs_free(jobs, n);
	return rc;
}

/* The fleet has room again: an idle worker looks for a job that fits. */
static void on_room(void *ud)
{
	pool_wake(ud);
}

static void deadline_after(struct timespec *ts, long ms)
{
	clock_gettime(CLOCK_REALTIME, ts);
	ts->tv_sec += ms / 1000;
	ts->tv_nsec += (ms % 1000) * 1000000L;
	if (ts->tv_nsec >= 1000000000L) {
		ts->tv_sec++;
		ts->tv_nsec -= 1000000000L;
	}
}

static int worker_wait_ms(void *ud, long ms)
{
	struct worker *w = ud;
	struct timespec ts;
	int rc = 0;

	/* a backoff is no turn in flight: shutting down ends it at once (the job is requeued) */
	deadline_after(&ts, ms);
	pthread_mutex_lock(&w->lock);
	while (!atomic_load(&w->cancel) && !atomic_load(&w->pool->stopping) && rc != ETIMEDOUT)
		rc = pthread_cond_timedwait(&w->nap, &w->lock, &ts);
	pthread_mutex_unlock(&w->lock);
	return atomic_load(&w->cancel) || atomic_load(&w->pool->stopping);
}

static void worker_raise(struct worker *w)
{
	pthread_mutex_lock(&w->lock);
	atomic_store(&w->cancel, 1);
	pthread_cond_broadcast(&w->nap);
	pthread_mutex_unlock(&w->lock);
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	struct pool *p = w->pool;
	struct perr e = {0};
	struct engine_ctx ctx;
	unsigned long seen = 0;
	int claim_failures = 0;
	struct db *db;
	CURL *curl;

	db = db_open(p->cfg->db_path, &e);
	curl = curl_easy_init();
	if (!db || !curl) {
		log_error("worker cannot start", "worker=%d error=\"%s\"", w->index, e.msg);
		curl_easy_cleanup(curl);
		db_close(db);
		return NULL;
	}
	memset(&ctx, 0, sizeof(ctx));
	ctx.cfg = p->cfg;
	ctx.fleet = p->fleet;
	ctx.db = db;
	ctx.curl = curl;
	ctx.cancel = &w->cancel;
	ctx.stopping = &p->stopping;
	ctx.wait_ms = worker_wait_ms;
	ctx.wait_ud = w;

	while (!atomic_load(&p->stopping)) {
		struct db_job job;
		struct fleet_lease lease;
		enum job_end end;
		int rc;

		pthread_mutex_lock(&p->lock);
		seen = p->wake_seq;
		pthread_mutex_unlock(&p->lock);

		rc = pick(p, db, &job, &lease, &e);
		if (rc < 0) {
			/* the store refuses writes (full disk, locked, deleted): said once, then
			 * looked at again every 250 ms doubling to 5 s while it lasts */
			if (claim_failures++ == 0)
				log_error("cannot claim a job", "worker=%d error=\"%s\"", w->index,
					  e.msg);
			worker_wait_ms(w, claim_failures > 5 ? 5000 : 125L << claim_failures);
			continue;
		}
		claim_failures = 0;
		if (rc == 0) {
			pthread_mutex_lock(&p->lock);
			while (p->wake_seq == seen && !atomic_load(&p->stopping))
				pthread_cond_wait(&p->work, &p->lock);
			pthread_mutex_unlock(&p->lock);
			continue;
		}
		/* there may be more: let another idle worker look */
		pool_wake(p);
		pthread_mutex_lock(&w->lock);
		snprintf(w->job_id, sizeof(w->job_id), "%s", job.id);
		atomic_store(&w->cancel, atomic_load(&p->stopping) ? 1 : 0);
		pthread_mutex_unlock(&w->lock);
		atomic_fetch_add(&p->busy, 1);

		ctx.lease = &lease;
		end = engine_run(&ctx, &job);
		ctx.lease = NULL;
		fleet_conv_release(&lease);

		atomic_fetch_sub(&p->busy, 1);
		pthread_mutex_lock(&w->lock);
		w->job_id[0] = '\0';
		if (!atomic_load(&p->stopping))
			atomic_store(&w->cancel, 0);
		pthread_mutex_unlock(&w->lock);
		db_job_release(&job);
		if (end == JOB_REQUEUED && !atomic_load(&p->stopping)) {
			/* given back outside shutdown: the store failed under the job. Another
			 * worker may take it now; this one pauses so a store that keeps failing
			 * is not claimed from in a tight loop */
			pool_wake(p);
			worker_wait_ms(w, 1000);
		} else if (end == JOB_LOST && !atomic_load(&p->stopping)) {
			/* a stale claim (another process has the job) or a store that failed
			 * twice: either way, pause before claiming again */
			worker_wait_ms(w, 1000);
		}
	}
	curl_easy_cleanup(curl);
	db_close(db);
	return NULL;
}

struct pool *pool_start(const struct config *cfg, struct fleet *fleet, struct perr *e)
{
	struct pool *p = xcalloc(1, sizeof(*p));
	int i;

	p->cfg = cfg;
	p->fleet = fleet;
	p->n = cfg->workers;
	p->w = xcalloc((size_t)p->n, sizeof(*p->w));
	p->streams = xcalloc(MAX_STREAMS, sizeof(*p->streams));
	pthread_mutex_init(&p->lock, NULL);
	pthread_cond_init(&p->work, NULL);
	fleet_on_room(fleet, on_room, p);
	for (i = 0; i < p->n; i++) {
		struct worker *w = &p->w[i];
		w->pool = p;
		w->index = i;
		pthread_mutex_init(&w->lock, NULL);
		pthread_cond_init(&w->nap, NULL);
		if (pthread_create(&w->thread, NULL, worker_main, w) != 0) {
			p->n = i;
			pool_stop(p, 0);
			return perr_set(e, PERR_INTERNAL, "cannot start worker threads"), NULL;
		}
	}
	return p;
}

void pool_wake(struct pool *p)
{
	pthread_mutex_lock(&p->lock);
	p->wake_seq++;
	pthread_cond_signal(&p->work);
	pthread_mutex_unlock(&p->lock);
}

int pool_cancel(struct pool *p, const char *job_id)
{
	int i, found = 0;

	for (i = 0; i < p->n; i++) {
		struct worker *w = &p->w[i];
		pthread_mutex_lock(&w->lock);
		if (strcmp(w->job_id, job_id) == 0) {
			atomic_store(&w->cancel, 1);
			pthread_cond_broadcast(&w->nap);
			found = 1;
		}
		pthread_mutex_unlock(&w->lock);
	}
	if (found)
		fleet_poke(p->fleet);
	return found;
}

int pool_busy(struct pool *p)
{
	return atomic_load(&p->busy);
}

void pool_stop(struct pool *p, long drain_ms)
{
	int64_t deadline = util_mono_us() + drain_ms * 1000;
	int i;

	if (!p)
		return;
	atomic_store(&p->stopping, 1);
	pthread_mutex_lock(&p->lock);
	pthread_cond_broadcast(&p->work);
	pthread_mutex_unlock(&p->lock);
	for (i = 0; i < p->n; i++) {
		pthread_mutex_lock(&p->w[i].lock);
		pthread_cond_broadcast(&p->w[i].nap);
		pthread_mutex_unlock(&p->w[i].lock);
	}
	/* turns in flight may finish until the deadline; then they are aborted */
	while (atomic_load(&p->busy) > 0 && util_mono_us() < deadline)
		util_sleep_ms(20);
	for (i = 0; i < p->n; i++)
		worker_raise(&p->w[i]);
	fleet_poke(p->fleet);
	for (i = 0; i < p->n; i++)
		pthread_join(p->w[i].thread, NULL);
	fleet_on_room(p->fleet, NULL, NULL);
	for (i = 0; i < p->n; i++) {
		pthread_mutex_destroy(&p->w[i].lock);
		pthread_cond_destroy(&p->w[i].nap);
	}
	pthread_mutex_destroy(&p->lock);
	pthread_cond_destroy(&p->work);
	free(p->w);
	free(p->streams);
	free(p);
}
