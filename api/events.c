/*
 * events.c - GET /v1/jobs/{id}/events: a job's live events as Server-Sent Events.
 *
 * DESIGN: the connection subscribes to the event hub (server/events.h)
 * first, then replays from the store what the client has not seen (the
 * finished turns after its Last-Event-ID, the current status, and
 * job_finished when the job has ended), so nothing falls between the replay
 * and the live stream. libmicrohttpd pulls the stream through a content
 * reader; when there is nothing to send the connection suspends itself and
 * the hub resumes it when an event arrives, so no thread ever waits on a
 * quiet client and no polling thread is blocked.
 *
 * A stream rests: after job_finished it ends, and a client that comes back
 * with a Last-Event-ID at or past the end of a finished job gets 204 No
 * Content, which tells an EventSource to stop reconnecting.
 */
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "api/html.h"
#include "api/views.h"
#include "db/job.h"
#include "db/turn.h"
#include "server/events.h"
#include "server/record.h"

struct sse {
	struct MHD_Connection *conn;
	struct events_sub *sub;
};

static void park(void *ud)
{
	MHD_suspend_connection(((struct sse *)ud)->conn);
}

static void wake(void *ud)
{
	MHD_resume_connection(((struct sse *)ud)->conn);
}

static ssize_t reader(void *cls, uint64_t pos, char *buf, size_t max)
{
	struct sse *s = cls;
	long n = events_sub_read(s->sub, buf, max);

	(void)pos;
	return n < 0 ? MHD_CONTENT_READER_END_OF_STREAM : (ssize_t)n;
}

static void release(void *cls)
{
	struct sse *s = cls;

	events_unsubscribe(s->sub);
	free(s);
}

/*
 * A finished turn carries its Markdown rendered safely, as the transcript
 * does; a job (status, job_finished) carries its links, as GET /v1/jobs/{id}
 * gives it. The hub calls this on the connection's thread as it reads the
 * event; data is shared with other readers, so the additions go on a copy.
 */
static void render(const char *type, const char *id, json_t *data, struct strbuf *out)
{
	json_t *ev = json_copy(data);

	if (strcmp(type, "turn_finished") == 0)
		json_object_set_new(
		    ev, "html",
		    html_render_json(json_string_value(json_object_get(data, "message"))));
	else if (json_is_string(json_object_get(data, "id")))
		json_object_set_new(ev, "links",
				    view_job_links(json_string_value(json_object_get(data, "id"))));
	events_format(out, type, id, ev);
	json_decref(ev);
}

static ssize_t no_stream(void *cls, uint64_t pos, char *buf, size_t max)
{
	(void)cls;
	(void)pos;
	(void)buf;
	(void)max;
	return MHD_CONTENT_READER_END_OF_STREAM;
}

static void stream_headers(struct api_resp *r)
{
	MHD_add_response_header(r->raw, "Content-Type", "text/event-stream; charset=utf-8");
	MHD_add_response_header(r->raw, "Cache-Control", "no-store");
	MHD_add_response_header(r->raw, "X-Accel-Buffering", "no");
	MHD_add_response_header(r->raw, "X-Content-Type-Options", "nosniff");
	r->status = 200;
}

static const char *const rendered_types[] = {"turn_finished", "status", "job_finished", NULL};
static const struct events_render rendering = {rendered_types, render};

static int terminal(const char *status)
{
	return strcmp(status, "succeeded") == 0 || strcmp(status, "failed") == 0 ||
	       strcmp(status, "cancelled") == 0;
}

/*
 * Whether a client whose last event was last ("<turns>-<n>", see
 * server/events.h) has seen all of the job: it has ended, and the id is of
 * its last turn and from after it ended (job_finished), or past it.
 */
static int seen_the_end(const char *last, const struct db_job *j)
{
	long long done, n = 0;
	char *end;

	if (!last || !terminal(j->status))
		return 0;
	done = strtoll(last, &end, 10);
	if (end == last || done < j->turns_completed)
		return 0;
	if (done > j->turns_completed)
		return 1;
	if (*end != '-')
		return 0;
	n = strtoll(end + 1, &end, 10);
	return *end == '\0' && j->finished_at > 0 && n >= j->finished_at;
}

void api_jobs_events(struct api_req *q, struct api_resp *r, const char *id)
{
	const char *last = api_header(q, "Last-Event-ID");
	struct db_turn *turns = NULL;
	struct db_job j;
	struct perr e = {0};
	struct strbuf replay, inflight;
	struct sse *s;
	int inflight_turn = 0;
	size_t n = 0, i;
	int seen = 0, max_turn = 0;
	char evid[48];
	json_t *rec;

	if (!last)
		last = api_query(q, "last_event_id");
	if (last)
		seen = atoi(last); /* "<turns completed>-<n>" */
	if (seen < 0)
		seen = 0;
	if (db_job_get(q->db, id, &j, &e) < 0)
		return api_perr(r, &e);
	if (seen_the_end(last, &j)) {
		db_job_release(&j);
		r->status = 204;
		r->content_type = NULL;
		return;
	}
	db_job_release(&j);
	if (q->head) {
		/* the headers a stream would have, and no subscription that nothing would read */
		r->raw = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 1024, no_stream, NULL,
							   NULL);
		if (!r->raw)
			return api_problem(r, 500, "Internal Server Error",
					   "cannot start the stream", NULL);
		stream_headers(r);
		return;
	}

	s = xcalloc(1, sizeof(*s));
	s->conn = q->conn;
	strbuf_init(&inflight, 0);
	s->sub =
	    events_subscribe_inflight(id, park, wake, &rendering, s, &inflight, &inflight_turn);

	strbuf_init(&replay, 4096);
	strbuf_addstr(&replay, "retry: 2000\n\n");
	if (db_turn_list(q->db, id, &turns, &n, &e) == 0) {
		for (i = 0; i < n; i++) {
			if (turns[i].idx <= seen)
				continue;
			rec = record_turn(&turns[i]);
			snprintf(evid, sizeof(evid), "%d-0", turns[i].idx);
			render("turn_finished", evid, rec, &replay);
			json_decref(rec);
		}
		if (n)
			max_turn = turns[n - 1].idx;
		db_turns_free(turns, n);
	}
	events_sub_skip_turns(s->sub, max_turn);
	if (db_job_get(q->db, id, &j, &e) == 0) {
		rec = record_job(&j);
		snprintf(evid, sizeof(evid), "%d-%lld", j.turns_completed,
			 (long long)events_sub_replay_id(s->sub, 0));
		render("status", evid, rec, &replay);
		if (terminal(j.status)) {
			snprintf(evid, sizeof(evid), "%d-%lld", j.turns_completed,
				 (long long)events_sub_replay_id(s->sub, 1));
			render("job_finished", evid, rec, &replay);
			events_sub_end(s->sub);
		}
		json_decref(rec);
		db_job_release(&j);
	}
	/* the turn being written, from its start, unless the store already has it whole */
	if (inflight_turn > max_turn)
		strbuf_add(&replay, inflight.buf, inflight.len);
	strbuf_release(&inflight);
	events_sub_prepend(s->sub, replay.buf, replay.len);
	strbuf_release(&replay);

	r->raw = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 16384, reader, s, release);
	if (!r->raw) {
		release(s);
		return api_problem(r, 500, "Internal Server Error", "cannot start the stream",
				   NULL);
	}
	stream_headers(r);
}
