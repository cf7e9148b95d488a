/*
 * transport.h - one HTTP exchange with a model server: curl, the per-thread
 * multi handle, and the deadlines of each phase.
 *
 * DESIGN: an exchange runs on its worker's thread from start to end. The
 * caller's easy handle is reset, configured, and driven by a curl multi
 * handle that belongs to the thread (made on first use, freed when the thread
 * exits). Owning the multi keeps connections cached across turns, as
 * curl_easy_perform() would, and lets the wait be cut into 100 ms polls: the
 * xferinfo callback then runs at least ten times a second even while the
 * server is silent (curl_easy_perform() waits up to a second), and it
 * enforces the cancel flag and the deadlines of each phase: first body byte
 * (model load plus prompt processing), idle gap between bytes, and total;
 * connecting is bounded by CURLOPT_CONNECTTIMEOUT_MS. A 2xx body goes from
 * the write callback straight into the stream parser; any other body is kept,
 * up to body_max, for the caller to read the server's error from. What a
 * failure means (an error code and a message that says what to do) is not
 * decided here: server/backend.c maps what the exchange reports.
 *
 * Internal to server/backend*.c.
 */
#ifndef PARLEY_TRANSPORT_H
#define PARLEY_TRANSPORT_H

#include <curl/curl.h>
#include <stdatomic.h>

#include "server/backend.h"
#include "server/stream.h"

/* Which deadline (or the cancel flag) cut the exchange short. */
enum transport_abort {
	TRANSPORT_ABORT_NONE,
	TRANSPORT_ABORT_CANCEL,
	TRANSPORT_ABORT_FIRST_BYTE,
	TRANSPORT_ABORT_IDLE,
	TRANSPORT_ABORT_TOTAL,
};

struct transport_call {
	CURL *curl;
	const struct backend_cfg *be;
	struct chat_stream *stream; /* a 2xx body is parsed here; NULL: kept in body */
	struct strbuf body;	    /* a body that is not parsed, up to body_max bytes */
	size_t body_max;
	int body_cut;	   /* the body was longer than body_max */
	int status;	   /* HTTP status; 0 until a response arrived */
	int stream_failed; /* the parser refused the body: see stream->err */
	/* bytes of the body so far; more than received_max (0: no limit) fail the call */
	size_t received, received_max;
	int flooded;
	const atomic_int *cancel;
	long connect_ms, first_byte_ms, idle_ms, total_ms;
	int64_t t0_us, first_byte_us, last_byte_us;
	enum transport_abort abort;
	struct curl_slist *headers;
	const char *path; /* for messages: "/health" */
	char url[1024];
};

/*
 * Sets t up for one exchange on curl with be's deadlines (the defaults where
 * be gives none); a 2xx body goes to stream when it is not NULL, any other
 * body is kept up to body_max bytes. The caller may then change the deadlines
 * and set cancel.
 */
void transport_init(struct transport_call *t, CURL *curl, const struct backend_cfg *be,
		    struct chat_stream *stream, size_t body_max);
void transport_release(struct transport_call *t);
/* Configures the caller's handle for one request to be->url + path; post is NULL for a GET. */
void transport_setup(struct transport_call *t, const char *path, const char *post,
		     const char *accept);
/* Runs the configured transfer to its end; returns curl's result for it (t->status is set). */
CURLcode transport_run(struct transport_call *t);
/* Why the network failed, lower case: "connection refused" rather than curl's
 * "Couldn't connect to server". */
void transport_reason(const struct transport_call *t, CURLcode cc, char *out, size_t outsz);

#endif
