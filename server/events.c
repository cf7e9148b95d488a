/*
 * events.c - the live event hub. See events.h.
 */
#include "server/events.h"
#include "server/record.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/*
 * One published event, shared by every subscriber it went to and freed by
 * the last one to read it. data is the publisher's, kept (never changed) only
 * when a subscriber renders events of this type; text is the event as plain
 * SSE, what every other subscriber reads and what counts against each
 * subscriber's EVENTS_SUB_MAX.
 */
struct event {
	atomic_int refs;
	char type[24], id[48];
	json_t *data; /* NULL for text that was formatted before (replay, heartbeat) */
	char *text;
	size_t len;
};

struct event_node {
	struct event_node *next;
	struct event *ev;
};

struct events_sub {
	struct events_sub *prev, *next;
	char job_id[32];
	struct event_node *head, *tail; /* events not yet formatted for the reader */
	size_t queued;			/* their plain text's bytes */
	struct strbuf out;		/* the event being read, formatted, from off on */
	size_t off;
	int parked, ended, skip_turns;
	int64_t replay_id; /* first of the ids reserved for its replay */
	void (*park)(void *ud);
	void (*wake)(void *ud);
	const struct events_render *render; /* NULL: plain text only */
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
	struct inflight *turns;
	int64_t last_id; /* the last event id's sequence part handed out */
} hub = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, NULL, 0, 0, 0, 0, NULL, 0};

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

/* An event of plain SSE text (steals text); data, when given, is kept (a new reference). */
static struct event *event_new(const char *type, const char *id, json_t *data, char *text,
			       size_t len)
{
	struct event *ev = xcalloc(1, sizeof(*ev));

	atomic_init(&ev->refs, 1);
	snprintf(ev->type, sizeof(ev->type), "%s", type ? type : "");
	snprintf(ev->id, sizeof(ev->id), "%s", id ? id : "");
	ev->data = data ? json_incref(data) : NULL;
	ev->text = text;
	ev->len = len;
	return ev;
}

static void event_put(struct event *ev)
{
	if (atomic_fetch_sub(&ev->refs, 1) != 1)
		return;
	json_decref(ev->data);
	free(ev->text);
	free(ev);
}

/* Caller holds the lock. */
static size_t pending(const struct events_sub *s)
{
	return s->queued + (s->out.len - s->off);
}

/* Caller holds the lock. Drops the events the reader has not had yet. */
static void drop_queue(struct events_sub *s)
{
	struct event_node *n;

	while ((n = s->head)) {
		s->head = n->next;
		event_put(n->ev);
		free(n);
	}
	s->tail = NULL;
	s->queued = 0;
}

/* Caller holds the lock. */
static void wake(struct events_sub *s)
{
	if (s->parked) {
		s->parked = 0;
		s->wake(s->ud);
	}
}

/* Caller holds the lock. Queues ev for s, first or last. */
static void enqueue(struct events_sub *s, struct event *ev, int first)
{
	struct event_node *n = xcalloc(1, sizeof(*n));

	atomic_fetch_add(&ev->refs, 1);
	n->ev = ev;
	if (first) {
		n->next = s->head;
		s->head = n;
		if (!s->tail)
			s->tail = n;
	} else {
		if (s->tail)
			s->tail->next = n;
		else
			s->head = n;
		s->tail = n;
	}
	s->queued += ev->len;
	wake(s);
}

/* Caller holds the lock. A subscriber too far behind is ended (after the event it is
 * reading): it reconnects and is replayed from the store. */
static void append(struct events_sub *s, struct event *ev)
{
	if (s->ended)
		return;
	if (pending(s) + ev->len > EVENTS_SUB_MAX) {
		drop_queue(s);
		s->ended = 1;
		wake(s);
		return;
	}
	enqueue(s, ev, 0);
}

static void *heartbeat_main(void *arg)
{
	static const char ping[] = ": ping\n\n";
	struct timespec ts;
	struct events_sub *s;
	struct event *ev;

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
		ev = event_new(NULL, NULL, NULL, xstrdup(ping), sizeof(ping) - 1);
		for (s = hub.head; s; s = s->next)
			if (!pending(s))
				append(s, ev);
		event_put(ev);
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

struct events_sub *events_subscribe(const char *job_id, void (*park)(void *ud),
				    void (*wakefn)(void *ud), void *ud)
{
	return events_subscribe_inflight(job_id, park, wakefn, NULL, ud, NULL, NULL);
}

struct events_sub *events_subscribe_inflight(const char *job_id, void (*park)(void *ud),
					     void (*wakefn)(void *ud),
					     const struct events_render *render, void *ud,
					     struct strbuf *inflight, int *turn)
{
	struct events_sub *s = xcalloc(1, sizeof(*s));
	struct inflight *t;

	snprintf(s->job_id, sizeof(s->job_id), "%s", job_id);
	strbuf_init(&s->out, 0);
	s->park = park;
	s->wake = wakefn;
	s->render = render;
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
			ev = json_pack("{s:i, s:s%}", "turn", t->turn, "text", t->text.buf,
				       t->text.len);
			snprintf(id, sizeof(id), "%d-%lld", t->turn - 1,
				 (long long)s->replay_id + 3);
			if (ev)
				events_format(inflight, "token", id, ev);
			json_decref(ev);
		}
	}
	pthread_mutex_unlock(&hub.lock);
	return s;
}

int64_t events_sub_replay_id(struct events_sub *s, int k)
{
	return s->replay_id + k;
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
	drop_queue(s);
	pthread_cond_broadcast(&hub.tick);
	pthread_mutex_unlock(&hub.lock);
	strbuf_release(&s->out);
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

void events_sub_skip_turns(struct events_sub *s, int up_to)
{
	pthread_mutex_lock(&hub.lock);
	if (up_to > s->skip_turns)
		s->skip_turns = up_to;
	pthread_mutex_unlock(&hub.lock);
}

void events_sub_prepend(struct events_sub *s, const char *text, size_t len)
{
	struct event *ev;
	struct strbuf copy;

	strbuf_init(&copy, len);
	strbuf_add(&copy, text, len);
	ev = event_new(NULL, NULL, NULL, strbuf_detach(&copy, NULL), len);
	pthread_mutex_lock(&hub.lock);
	enqueue(s, ev, 1); /* even to an ended stream: the replay is what it ends with */
	pthread_mutex_unlock(&hub.lock);
	event_put(ev);
}

void events_sub_end(struct events_sub *s)
{
	pthread_mutex_lock(&hub.lock);
	s->ended = 1;
	wake(s);
	pthread_mutex_unlock(&hub.lock);
}

/* Whether a subscriber's render formats events of type itself. */
static int renders(const struct events_render *r, const char *type)
{
	const char *const *t;

	for (t = r ? r->types : NULL; t && *t; t++)
		if (strcmp(*t, type) == 0)
			return 1;
	return 0;
}

long events_sub_read(struct events_sub *s, char *buf, size_t max)
{
	struct event_node *node;
	struct strbuf next;
	size_t n, got = 0;

	pthread_mutex_lock(&hub.lock);
	for (;;) {
		n = s->out.len - s->off;
		if (n > max - got)
			n = max - got;
		memcpy(buf + got, s->out.buf + s->off, n);
		s->off += n;
		got += n;
		if (got == max || !(node = s->head))
			break;
		/* the next event is formatted here, on the reader's thread, outside the lock */
		s->head = node->next;
		if (!s->head)
			s->tail = NULL;
		s->queued -= node->ev->len;
		pthread_mutex_unlock(&hub.lock);
		strbuf_init(&next, 0);
		if (node->ev->data && renders(s->render, node->ev->type)) {
			s->render->fn(node->ev->type, node->ev->id, node->ev->data, &next);
		} else {
			/* a published event's id is taken as it is delivered (events_publish) */
			if (node->ev->id[0])
				strbuf_addf(&next, "id: %s\n", node->ev->id);
			strbuf_add(&next, node->ev->text, node->ev->len);
		}
		event_put(node->ev);
		free(node);
		pthread_mutex_lock(&hub.lock);
		strbuf_release(&s->out);
		s->out = next;
		s->off = 0;
	}
	if (got) {
		pthread_mutex_unlock(&hub.lock);
		return (long)got;
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
	char *text = record_dumps(data);

	if (id)
		strbuf_addf(out, "id: %s\n", id);
	strbuf_addf(out, "event: %s\ndata: %s\n\n", type, text ? text : "null");
	free(text);
}

/*
 * Whether anyone listens to job_id for an event of turn (0 = any); with type,
 * *rendered says whether one of them renders that type itself. Caller holds
 * the lock.
 */
static int listened(const char *job_id, int turn, const char *type, int *rendered)
{
	struct events_sub *s;
	int any = 0;

	for (s = hub.head; s; s = s->next) {
		if (s->ended || strcmp(s->job_id, job_id) != 0 || (turn && turn <= s->skip_turns))
			continue;
		any = 1;
		if (!type)
			break;
		if (renders(s->render, type))
			*rendered = 1;
	}
	return any;
}

int events_listening(const char *job_id)
{
	int any;

	pthread_mutex_lock(&hub.lock);
	any = listened(job_id, 0, NULL, NULL);
	pthread_mutex_unlock(&hub.lock);
	return any;
}

/* Caller holds the lock. The last event of a job ends its streams. */
static void deliver(const char *job_id, int turn, struct event *ev, int last)
{
	struct events_sub *s;

	for (s = hub.head; s; s = s->next) {
		if (strcmp(s->job_id, job_id) != 0)
			continue;
		if (!turn || turn > s->skip_turns)
			append(s, ev);
		if (last) {
			s->ended = 1;
			wake(s);
		}
	}
}

void events_publish(const char *job_id, const char *type, int turn, int done, json_t *data)
{
	struct event *ev;
	struct strbuf sb;
	size_t len;
	int any, rendered = 0;

	pthread_mutex_lock(&hub.lock);
	if (strcmp(type, "turn_started") == 0) {
		/* kept for the replay of the turn in progress to late subscribers */
		struct inflight *t = *inflight_find(job_id);
		json_t *a = json_object_get(data, "attempt"); /* borrowed */
		if (t && t->turn == turn && json_is_integer(a))
			t->attempt = (int)json_integer_value(a);
	}
	any = listened(job_id, turn, type, &rendered);
	pthread_mutex_unlock(&hub.lock);
	if (!any)
		return;
	strbuf_init(&sb, 256);
	events_format(&sb, type, NULL, data);
	len = sb.len;
	/* a subscriber that renders this type and joins in the meantime gets the plain text */
	ev = event_new(type, NULL, rendered ? data : NULL, strbuf_detach(&sb, NULL), len);
	pthread_mutex_lock(&hub.lock);
	/* the id is taken where the event is delivered, so ids reach each stream in order */
	snprintf(ev->id, sizeof(ev->id), "%d-%lld", done, (long long)next_id(1));
	deliver(job_id, turn, ev, strcmp(type, "job_finished") == 0);
	pthread_mutex_unlock(&hub.lock);
	event_put(ev);
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
	any = listened(job_id, turn, NULL, NULL);
	pthread_mutex_unlock(&hub.lock);
	if (!any)
		return;
	data = json_pack("{s:i, s:s%}", "turn", turn, "text", text, len);
	if (data)
		events_publish(job_id, "token", turn, done, data);
	json_decref(data);
}
