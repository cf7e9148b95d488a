/*
 * fake_slots.c - the fake llama-server's slots and their prompt caches. See fake.h.
 *
 * DESIGN: N slots, each remembering the text its KV cache would hold (the last
 * prompt it processed and the reply it sent). A request takes one slot for as
 * long as it runs: the one its id_slot names, or, as llama-server chooses,
 * the idle slot sharing the longest prefix with its prompt, else the least
 * recently used. The shared prefix is "cached"; the rest of the prompt costs
 * --prompt-ms-per-token each (fake_llama.c sleeps for it). While no slot is
 * idle (or the one asked for is busy) the request waits, as llama-server
 * defers it. Every slot keeps counters (requests served, tokens processed and
 * cached) that GET /_fake/slots shows, so tests can check parleyd's pinning
 * and cache accounting. Everything here sits under its own mutex; waits sleep
 * on a condition variable in 20 ms steps so that a client that hangs up is
 * noticed.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tests/fake/fake.h"

struct slot {
	int busy;
	long id_task;
	int64_t last_used_us;
	long n_prompt, n_cached;
	struct strbuf cache; /* rendered prompt + reply: what its KV cache holds */
	/* since start or the last reset */
	long requests, pinned, tokens_processed, tokens_cached;
};

static struct {
	pthread_mutex_t lock; /* guards every field below */
	pthread_cond_t cv;    /* broadcast when a slot is freed or the fake stops */
	struct slot *s;
	int n;
	long next_task, deferred;
	int stopping;
} S = {.lock = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};

void fake_slots_init(int n)
{
	int i;

	S.n = n;
	S.s = xcalloc((size_t)n, sizeof(*S.s));
	for (i = 0; i < n; i++)
		strbuf_init(&S.s[i].cache, 0);
}

void fake_slots_free(void)
{
	int i;

	for (i = 0; i < S.n; i++)
		strbuf_release(&S.s[i].cache);
	free(S.s);
	S.s = NULL;
	S.n = 0;
}

void fake_slots_stop(void)
{
	pthread_mutex_lock(&S.lock);
	S.stopping = 1;
	pthread_cond_broadcast(&S.cv);
	pthread_mutex_unlock(&S.lock);
}

static size_t common_prefix(const char *a, size_t na, const char *b, size_t nb)
{
	size_t i, n = na < nb ? na : nb;

	for (i = 0; i < n && a[i] == b[i]; i++)
		;
	return i;
}

/*
 * The slot llama-server would give the prompt among the idle ones: the longest common
 * prefix, if that prefix is at least a tenth of the prompt (its slot_prompt_similarity) and
 * at least half of what the slot holds (so that two conversations sharing a short system
 * prompt do not evict each other); else the least recently used. -1 when none is idle. Lock
 * held.
 */
static int choose(const char *prompt, size_t len, long want)
{
	int best = -1, lru = -1, i;
	size_t best_pre = 0;

	for (i = 0; i < S.n; i++) {
		struct slot *s = &S.s[i];
		size_t pre;

		if (s->busy || (want >= 0 && i != want))
			continue;
		pre = common_prefix(s->cache.buf, s->cache.len, prompt, len);
		if (pre > best_pre && pre * 10 >= len && pre * 2 >= s->cache.len) {
			best = i;
			best_pre = pre;
		}
		if (lru < 0 || s->last_used_us < S.s[lru].last_used_us)
			lru = i;
	}
	return best >= 0 ? best : lru;
}

int fake_slots_acquire(const char *prompt, size_t len, long prompt_tokens, long want,
		       int (*gone)(void *ud), void *ud, int *slot, long *cached)
{
	int deferred = 0, best;
	size_t pre;

	if (want >= S.n) /* no such slot: take any rather than wait forever */
		want = -1;
	pthread_mutex_lock(&S.lock);
	while ((best = choose(prompt, len, want)) < 0) {
		struct timespec ts;

		if (!deferred) {
			deferred = 1;
			S.deferred++;
		}
		if (S.stopping || gone(ud)) {
			S.deferred--;
			pthread_mutex_unlock(&S.lock);
			return -1;
		}
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += 20 * 1000000L;
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		pthread_cond_timedwait(&S.cv, &S.lock, &ts);
	}
	if (deferred)
		S.deferred--;
	pre = common_prefix(S.s[best].cache.buf, S.s[best].cache.len, prompt, len);
	/* llama.cpp always evaluates at least the prompt's last token */
	*cached = (long)(pre / FAKE_TOKEN_BYTES);
	if (*cached > prompt_tokens - 1)
		*cached = prompt_tokens - 1;
	if (*cached < 0)
		*cached = 0;
	*slot = best;
	S.s[best].busy = 1;
	S.s[best].id_task = ++S.next_task;
	S.s[best].n_prompt = prompt_tokens;
	S.s[best].n_cached = *cached;
	S.s[best].requests++;
	S.s[best].pinned += want >= 0;
	S.s[best].tokens_processed += prompt_tokens - *cached;
	S.s[best].tokens_cached += *cached;
	pthread_mutex_unlock(&S.lock);
	return 0;
}

void fake_slots_release(int slot, const char *prompt, size_t plen, const char *reply, size_t rlen)
{
	struct slot *s;

	pthread_mutex_lock(&S.lock);
	s = &S.s[slot];
	strbuf_reset(&s->cache);
	strbuf_add(&s->cache, prompt, plen);
	if (reply)
		strbuf_add(&s->cache, reply, rlen);
	s->busy = 0;
	s->last_used_us = util_mono_us();
	pthread_cond_broadcast(&S.cv);
	pthread_mutex_unlock(&S.lock);
}

int fake_slots_busy(void)
{
	int i, n = 0;

	pthread_mutex_lock(&S.lock);
	for (i = 0; i < S.n; i++)
		n += S.s[i].busy;
	pthread_mutex_unlock(&S.lock);
	return n;
}

long fake_slots_deferred(void)
{
	long n;

	pthread_mutex_lock(&S.lock);
	n = S.deferred;
	pthread_mutex_unlock(&S.lock);
	return n;
}

void fake_slots_reset(void)
{
	int i;

	pthread_mutex_lock(&S.lock);
	for (i = 0; i < S.n; i++) {
		struct slot *s = &S.s[i];

		strbuf_reset(&s->cache);
		s->n_prompt = s->n_cached = 0;
		s->requests = s->pinned = s->tokens_processed = s->tokens_cached = 0;
	}
	pthread_mutex_unlock(&S.lock);
}

json_t *fake_slots_json(int counters, long n_ctx, const char *params)
{
	json_t *list = json_array(), *o;
	int i;

	pthread_mutex_lock(&S.lock);
	for (i = 0; i < S.n; i++) {
		struct slot *s = &S.s[i];

		/* llama-server's GET /slots entry; every json_object_set_new() steals */
		o = json_pack("{s:i,s:I,s:b,s:b,s:I,s:I,s:I,s:I,s:[{s:b,s:b,s:i,s:i}]}", "id", i,
			      "n_ctx", (json_int_t)n_ctx, "speculative", 0, "is_processing",
			      s->busy, "id_task", (json_int_t)s->id_task, "n_prompt_tokens",
			      (json_int_t)s->n_prompt, "n_prompt_tokens_processed",
			      (json_int_t)(s->n_prompt - s->n_cached), "n_prompt_tokens_cache",
			      (json_int_t)s->n_cached, "next_token", "has_next_token", s->busy,
			      "has_new_line", 0, "n_remain", -1, "n_decoded", 0);
		if (params)
			json_object_set_new(o, "params", json_loads(params, 0, NULL));
		if (counters) {
			json_object_set_new(o, "requests", json_integer(s->requests));
			json_object_set_new(o, "pinned", json_integer(s->pinned));
			json_object_set_new(o, "tokens_processed",
					    json_integer(s->tokens_processed));
			json_object_set_new(o, "tokens_cached", json_integer(s->tokens_cached));
			json_object_set_new(
			    o, "cache_tokens",
			    json_integer((json_int_t)fake_count_tokens(s->cache.len)));
		}
		json_array_append_new(list, o);
	}
	pthread_mutex_unlock(&S.lock);
	return list;
}
