/*
 * events.c - the live event hub. See events.h.
 */
#include "server/events.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct events_sub {
	struct events_sub *prev, *next;
	char job_id[32];
	struct strbuf buf; /* pending SSE text from off on */
	size_t off;
	int parked, ended, skip_turns;
	int64_t replay_id; /* first of the ids reserved for its replay */
	void (*park)(void *ud);
	void (*wake)(void *ud);
	void *ud;
};

/* The turn a job is writing now, for subscribers who join in the middle of it. */
struct inflight {
	struct inflight *next;
	char job_id[32];
	int turn, attempt;
	char speaker[16], model[128];
	int64_t started_at;
	struct strbuf text;
};

static struct {
	pthread_mutex_t lock; /* guards the lists, every subscriber's fields, stopping */
	pthread_cond_t tick;
	struct events_sub *head;
	int started, stopping, heartbeat_ms;
	pthread_t heartbeat;
	void (*decorate)(const char *type, json_t *data);
	struct inflight *turns;
	int64_t last_id; /* the last event id's sequence part handed out */
} hub = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, NULL, 0, 0, 0, 0, NULL, NULL, 0};

/*
 * The sequence part of the next event id, caller holds the lock: the wall
 * clock in microseconds, moved on by one where two events fall in the same
 * microsecond, so ids only grow, within a process and across restarts, and
 * one taken after a job ended is past its finished_at.
 */
static int64_t next_id(int n)
{
	int64_t now = util_now_us(), id = now > hub.last_id ? now : hub.last_id + 1;

	hub.last_id = id + n - 1;
	return id;
}

/* Caller holds the lock. */
static struct inflight **inflight_find(const char *job_id)
{
	struct inflight **p;

	for (p = &hub.turns; *p; p = &(*p)->next)
		if (strcmp((*p)->job_id, job_id) == 0)
			return p;
	return p;
}

void events_turn_begin(const char *job_id, int turn, const char *speaker, const char *model)
{
	struct inflight **p, *t;

	pthread_mutex_lock(&hub.lock);
	p = inflight_find(job_id);
	if (!*p) {
		*p = xcalloc(1, sizeof(**p));
		snprintf((*p)->job_id, sizeof((*p)->job_id), "%s", job_id);
		strbuf_init(&(*p)->text, 0);
	}
	t = *p;
	t->turn = turn;
	t->attempt = 1;
	snprintf(t->speaker, sizeof(t->speaker), "%s", speaker);
	snprintf(t->model, sizeof(t->model), "%s", model);
	t->started_at = util_now_us();
	strbuf_reset(&t->text);
	pthread_mutex_unlock(&hub.lock);
}

void events_turn_end(const char *job_id)
{
	struct inflight **p, *t;

	pthread_mutex_lock(&hub.lock);
	p = inflight_find(job_id);
	if ((t = *p)) {
		*p = t->next;
		strbuf_release(&t->text);
		free(t);
	}
	pthread_mutex_unlock(&hub.lock);
}

static size_t pending(const struct events_sub *s)
{
	return s->buf.len - s->off;
}

/* Caller holds the lock. */
static void wake(struct events_sub *s)
{
	if (s->parked) {
		s->parked = 0;
		s->wake(s->ud);
	}
}

/* Caller holds the lock. A subscriber too far behind is ended: it reconnects. */
static void append(struct events_sub *s, const char *text, size_t len)
{
	if (s->ended)
		return;
	if (pending(s) + len > EVENTS_SUB_MAX) {
		strbuf_release(&s->buf);
		s->off = 0;
		s->ended = 1;
	} else {
		if (s->off && s->off == s->buf.len) {
			strbuf_reset(&s->buf);
			s->off = 0;
		}
		strbuf_add(&s->buf, text, len);
	}
	wake(s);
}

static void *heartbeat_main(void *arg)
{
	static const char ping[] = ": ping\n\n";
	struct timespec ts;
	struct events_sub *s;

	(void)arg;
	pthread_mutex_lock(&hub.lock);
	while (!hub.stopping) {
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += hub.heartbeat_ms / 1000;
		ts.tv_nsec += (long)(hub.heartbeat_ms % 1000) * 1000000L;
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		pthread_cond_timedwait(&hub.tick, &hub.lock, &ts);
		if (hub.stopping)
			break;
		for (s = hub.head; s; s = s->next)
			if (!pending(s))
				append(s, ping, sizeof(ping) - 1);
	}
	pthread_mutex_unlock(&hub.lock);
	return NULL;
}

void events_init(int heartbeat_ms)
{
	pthread_mutex_lock(&hub.lock);
	hub.heartbeat_ms = heartbeat_ms > 0 ? heartbeat_ms : 15000;
	hub.stopping = 0;
	hub.started = 1;
	pthread_mutex_unlock(&hub.lock);
	if (pthread_create(&hub.heartbeat, NULL, heartbeat_main, NULL) != 0)
		abort();
}

void events_shutdown(void)
{
	struct events_sub *s;

	pthread_mutex_lock(&hub.lock);
	if (!hub.started) {
		pthread_mutex_unlock(&hub.lock);
		return;
	}
	hub.stopping = 1;
	hub.started = 0;
	for (s = hub.head; s; s = s->next) {
		s->ended = 1;
		wake(s);
	}
	while (hub.turns) {
		struct inflight *t = hub.turns;
		hub.turns = t->next;
		strbuf_release(&t->text);
		free(t);
	}
	pthread_cond_broadcast(&hub.tick);
	pthread_mutex_unlock(&hub.lock);
	pthread_join(hub.heartbeat, NULL);
}

void events_set_decorator(void (*fn)(const char *type, json_t *data))
{
	hub.decorate = fn;
}

struct events_sub *events_subscribe(const char *job_id, void (*park)(void *ud),
				    void (*wakefn)(void *ud), void *ud)
{
	return events_subscribe_inflight(job_id, park, wakefn, ud, NULL, NULL);
}

struct events_sub *events_subscribe_inflight(const char *job_id, void (*park)(void *ud),
					     void (*wakefn)(void *ud), void *ud,
					     struct strbuf *inflight, int *turn)
{
	struct events_sub *s = xcalloc(1, sizeof(*s));
	struct inflight *t;

	snprintf(s->job_id, sizeof(s->job_id), "%s", job_id);
	strbuf_init(&s->buf, 0);
	s->park = park;
	s->wake = wakefn;
	s->ud = ud;
	if (turn)
		*turn = 0;
	pthread_mutex_lock(&hub.lock);
	s->ended = hub.stopping;
	/* taken before any live event reaches it, so its replay sorts before them */
	s->replay_id = next_id(EVENTS_REPLAY_IDS);
	s->next = hub.head;
	if (hub.head)
		hub.head->prev = s;
	hub.head = s;
	t = *inflight_find(job_id);
	if (t && inflight && turn) {
		char id[48], ts[32];
		json_t *ev;

		*turn = t->turn;
		snprintf(id, sizeof(id), "%d-%lld", t->turn - 1, (long long)s->replay_id + 2);
		util_iso8601(t->started_at, ts);
		ev = json_pack("{s:i, s:s, s:s, s:i, s:s}", "turn", t->turn, "speaker", t->speaker,
			       "model", t->model, "attempt", t->attempt, "started_at", ts);
		events_format(inflight, "turn_started", id, ev);
		json_decref(ev);
		if (t->text.len) {
			snprintf(id, sizeof(id), "%d-%lld", t->turn - 1,
				 (long long)s->replay_id + 3);
			ev = json_pack("{s:i, s:s%}", "turn", t->turn, "text", t->text.buf,
				       t->text.len);
			if (ev)
				events_format(inflight, "token", id, ev);
			json_decref(ev);
		}
	}
	pthread_mutex_unlock(&hub.lock);
	return s;
}

void events_unsubscribe(struct events_sub *s)
{
	if (!s)
		return;
	pthread_mutex_lock(&hub.lock);
	if (s->prev)
		s->prev->next = s->next;
	else
		hub.head = s->next;
	if (s->next)
		s->next->prev = s->prev;
	pthread_cond_broadcast(&hub.tick);
	pthread_mutex_unlock(&hub.lock);
	strbuf_release(&s->buf);
	free(s);
}

int events_wait_idle(long ms)
{
	int64_t deadline = util_now_us() + ms * 1000;
	struct timespec ts;
	int idle;

	ts.tv_sec = (time_t)(deadline / 1000000);
	ts.tv_nsec = (long)(deadline % 1000000) * 1000;
	pthread_mutex_lock(&hub.lock);
	while (hub.head && util_now_us() < deadline)
		pthread_cond_timedwait(&hub.tick, &hub.lock, &ts);
	idle = hub.head == NULL;
	pthread_mutex_unlock(&hub.lock);
	return idle;
}

int64_t events_sub_replay_id(struct events_sub *s, int k)
{
	return s->replay_id + k;
}

void events_sub_skip_turns(struct events_sub *s, int up_to)
{
	pthread_mutex_lock(&hub.lock);
	if (up_to > s->skip_turns)
		s->skip_turns = up_to;
	pthread_mutex_unlock(&hub.lock);
}

void events_sub_prepend(struct events_sub *s, const char *text, size_t len)
{
	struct strbuf nb;

	pthread_mutex_lock(&hub.lock);
	strbuf_init(&nb, len + pending(s));
	strbuf_add(&nb, text, len);
	strbuf_add(&nb, s->buf.buf + s->off, pending(s));
	strbuf_release(&s->buf);
	s->buf = nb;
	s->off = 0;
	wake(s);
	pthread_mutex_unlock(&hub.lock);
}

void events_sub_end(struct events_sub *s)
{
	pthread_mutex_lock(&hub.lock);
	s->ended = 1;
	wake(s);
	pthread_mutex_unlock(&hub.lock);
}

long events_sub_read(struct events_sub *s, char *buf, size_t max)
{
	size_t n;

	pthread_mutex_lock(&hub.lock);
	n = pending(s);
	if (n) {
		if (n > max)
			n = max;
		memcpy(buf, s->buf.buf + s->off, n);
		s->off += n;
		pthread_mutex_unlock(&hub.lock);
		return (long)n;
	}
	if (s->ended) {
		pthread_mutex_unlock(&hub.lock);
		return -1;
	}
	s->parked = 1;
	s->park(s->ud);
	pthread_mutex_unlock(&hub.lock);
	return 0;
}

void events_format(struct strbuf *out, const char *type, const char *id, const json_t *data)
{
	char *text = json_dumps(data, JSON_COMPACT);

	strbuf_addf(out, "id: %s\nevent: %s\ndata: %s\n\n", id, type, text ? text : "null");
	free(text);
}

/* Whether anyone listens to job_id for an event of turn (0 = any). Caller holds the lock. */
static int listened(const char *job_id, int turn)
{
	struct events_sub *s;

	for (s = hub.head; s; s = s->next)
		if (!s->ended && strcmp(s->job_id, job_id) == 0 && (!turn || turn > s->skip_turns))
			return 1;
	return 0;
}

/* Caller holds the lock. The last event of a job ends its streams. */
int events_listening(const char *job_id)
{
	int any;

	pthread_mutex_lock(&hub.lock);
	any = listened(job_id, 0);
	pthread_mutex_unlock(&hub.lock);
	return any;
}

static void deliver(const char *job_id, int turn, const struct strbuf *text, int last)
{
	struct events_sub *s;

	for (s = hub.head; s; s = s->next) {
		if (strcmp(s->job_id, job_id) != 0)
			continue;
		if (!turn || turn > s->skip_turns)
			append(s, text->buf, text->len);
		if (last) {
			s->ended = 1;
			wake(s);
		}
	}
}

void events_publish(const char *job_id, const char *type, int turn, int done, json_t *data)
{
	struct strbuf sb;
	char *text;
	int any;

	pthread_mutex_lock(&hub.lock);
	if (strcmp(type, "turn_started") == 0) {
		/* kept for the replay of the turn in progress to late subscribers */
		struct inflight *t = *inflight_find(job_id);
		json_t *a = json_object_get(data, "attempt"); /* borrowed */
		if (t && t->turn == turn && json_is_integer(a))
			t->attempt = (int)json_integer_value(a);
	}
	any = listened(job_id, turn);
	pthread_mutex_unlock(&hub.lock);
	if (!any)
		return;
	if (hub.decorate)
		hub.decorate(type, data);
	text = json_dumps(data, JSON_COMPACT);
	strbuf_init(&sb, 256);
	pthread_mutex_lock(&hub.lock);
	/* the id is taken where the event is delivered, so ids reach each stream in order */
	strbuf_addf(&sb, "id: %d-%lld\nevent: %s\ndata: %s\n\n", done, (long long)next_id(1), type,
		    text ? text : "null");
	deliver(job_id, turn, &sb, strcmp(type, "job_finished") == 0);
	pthread_mutex_unlock(&hub.lock);
	free(text);
	strbuf_release(&sb);
}

void events_publish_token(const char *job_id, int turn, int done, const char *text, size_t len)
{
	struct inflight *t;
	json_t *data;
	int any;

	pthread_mutex_lock(&hub.lock);
	t = *inflight_find(job_id);
	if (t && t->turn == turn)
		strbuf_add(&t->text, text, len);
	any = listened(job_id, turn);
	pthread_mutex_unlock(&hub.lock);
	if (!any)
		return;
	data = json_pack("{s:i, s:s%}", "turn", turn, "text", text, len);
	if (data)
		events_publish(job_id, "token", turn, done, data);
	json_decref(data);
}
