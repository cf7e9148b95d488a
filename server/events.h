/*
 * events.h - in-process publish/subscribe of a job's live events.
 *
 * DESIGN: workers publish (status, turn_started, token, turn_finished,
 * job_finished) plain data; the hub formats each event once as plain SSE
 * text and queues it, shared, to every subscriber (an SSE connection), each
 * with its own bounded queue. A subscriber may format an event its own way
 * (the API adds a finished turn's HTML): its renderer runs when it reads,
 * on its own thread, never on the worker that published. Publishing never
 * blocks on a subscriber: it queues under the hub's lock and, if the
 * subscriber's connection is parked, wakes it through the callback it
 * registered. A
 * subscriber that falls more than EVENTS_SUB_MAX bytes behind is closed; its
 * client reconnects with Last-Event-ID and is replayed from the store, so a
 * slow or vanished client never slows a worker nor grows memory without
 * bound. A heartbeat thread writes a comment line to idle subscribers every
 * few seconds, which keeps proxies open and finds clients that went away.
 * With no subscriber for a job, publishing costs one lock and a lookup.
 *
 * Event ids are "<turns completed>-<n>": the part before the dash tells a
 * reconnecting client's position in the conversation; n grows with every
 * event (microseconds of the wall clock, kept strictly increasing), so ids
 * are unique and increasing within a job, and the n of an event published
 * after a job ended is at least its finished_at. A subscriber's replay uses
 * ids reserved when it subscribed (before any live event reaches it), and a
 * finished turn replayed from the store is "<turn>-0".
 */
#ifndef PARLEY_EVENTS_H
#define PARLEY_EVENTS_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "db/util.h"

#define EVENTS_SUB_MAX (1 << 20)

struct events_sub;

/* Starts the hub (and its heartbeat thread); events_shutdown() closes every subscriber. */
void events_init(int heartbeat_ms);
void events_shutdown(void);
/* Waits up to ms for every subscriber to have gone; 1 when none is left. */
int events_wait_idle(long ms);

/*
 * How a subscriber formats some types of event itself (the API: turn_finished
 * with its HTML, status and job_finished with their links). types ends with
 * NULL. fn appends the whole SSE event (events_format()) to out;
 * events_sub_read() calls it on the reader's thread, without the hub's lock.
 * data is the publisher's, shared with other readers: read it, never change
 * it. The hub keeps an event's data only for a subscriber that renders its
 * type, so the other events cost their plain text alone.
 */
struct events_render {
	const char *const *types;
	void (*fn)(const char *type, const char *id, json_t *data, struct strbuf *out);
};

/*
 * park(ud) is called, under the hub's lock, when the subscriber has nothing
 * to read (the connection suspends itself); wake(ud) is called, under the
 * same lock, when something arrives for a parked subscriber.
 */
struct events_sub *events_subscribe(const char *job_id, void (*park)(void *ud),
				    void (*wake)(void *ud), void *ud);
/*
 * The same, with a renderer (may be NULL; kept, so static), and at the same instant (so that
 * no token is in both or in neither) appends to inflight the events that show
 * the turn in progress, if any: its turn_started and one token holding its
 * text so far. *turn is that turn's number, 0 when none is in progress.
 */
struct events_sub *events_subscribe_inflight(const char *job_id, void (*park)(void *ud),
					     void (*wake)(void *ud),
					     const struct events_render *render, void *ud,
					     struct strbuf *inflight, int *turn);
void events_unsubscribe(struct events_sub *s);

/* Ids a subscriber reserved for its replay, k from 0 to EVENTS_REPLAY_IDS - 1: 0 for the
 * status, 1 for job_finished; the turn in progress (from events_subscribe_inflight) takes
 * 2 and 3. */
#define EVENTS_REPLAY_IDS 4
int64_t events_sub_replay_id(struct events_sub *s, int k);

/* Turn number up to which turn_finished (and its tokens) must not be sent again. */
void events_sub_skip_turns(struct events_sub *s, int up_to);
/* Puts preformatted SSE text (the replay) before anything buffered since subscribing. */
void events_sub_prepend(struct events_sub *s, const char *text, size_t len);
/* Marks the stream to end once its buffer is drained. */
void events_sub_end(struct events_sub *s);

/*
 * Copies up to max bytes of pending text into buf, formatting the next queued
 * event (through the subscriber's renderer) when the last one has been read.
 * Returns the number copied; 0 after parking the subscriber when nothing is
 * pending; -1 when the stream has ended (closed, overflowed, or the hub shut
 * down) and everything before the end has been read.
 */
long events_sub_read(struct events_sub *s, char *buf, size_t max);

/*
 * Appends one SSE event to out: an "id:" line when id is not NULL, then the
 * "event:" and "data:" lines. data is borrowed.
 */
void events_format(struct strbuf *out, const char *type, const char *id, const json_t *data);

/*
 * Publishes an event of a job. turn is the turn it belongs to (0 for status
 * and job events), done the number of turns completed. data is borrowed and
 * never changed; the hub keeps a reference to it until every subscriber has
 * read the event, so the caller must not change it after publishing.
 */
void events_publish(const char *job_id, const char *type, int turn, int done, json_t *data);
/* Whether anyone listens to the job now (publishers may skip building an event). */
int events_listening(const char *job_id);

/* A turn (re)starts: its text so far is kept for late subscribers until events_turn_end(). */
void events_turn_begin(const char *job_id, int turn, const char *speaker, const char *model);
void events_turn_end(const char *job_id);
/* A text delta of a turn in progress; builds no event when nobody listens. */
void events_publish_token(const char *job_id, int turn, int done, const char *text, size_t len);

#endif
