/*
 * stream.h - incremental parsers for the two streamed reply formats.
 *
 * DESIGN: curl hands the body over in pieces of any size, cut anywhere: in the
 * middle of a line, of a UTF-8 sequence inside a JSON string, or of a CRLF. A
 * line splitter buffers bytes and yields only complete "\n"-terminated lines;
 * on top of it, struct chat_stream reads Ollama's NDJSON (/api/chat, one JSON
 * object a line, ending with "done":true) or llama-server's Server-Sent Events
 * (/v1/chat/completions "data: {...}" events ending with "data: [DONE]", or
 * native /completion events ending with "stop":true). Each text delta goes to a
 * callback as soon as its line is complete; whatever the server reports about
 * tokens and timings lands in a struct chat_metrics, and what it does not
 * report stays unknown (-1). Text that is not clean (a byte that is not UTF-8,
 * an escaped lone UTF-16 surrogate) is the model's, not a broken protocol: each
 * such byte or escape becomes U+FFFD, is counted in `repaired`, and the stream
 * goes on. A server error inside the stream (HTTP 200 with an
 * "error" object) fails the stream, and so does its end without the end marker:
 * a reply cut short must never pass for a whole one. Pure parsing: no I/O, no
 * clock, no curl; the caller owns every buffer it passes in.
 */
#ifndef PARLEY_STREAM_H
#define PARLEY_STREAM_H

#include <stddef.h>

#include "db/util.h"
#include "server/backend.h"

/* Called once per complete line, without its "\n" or "\r\n"; line is not NUL-terminated and
 * lives only during the call. Return non-zero to stop. */
typedef int (*line_fn)(void *ud, const char *line, size_t len);

struct line_splitter {
	struct strbuf buf; /* the start of a line whose "\n" has not arrived yet */
};

void line_splitter_init(struct line_splitter *ls);
/*
 * Yields every line that data completes, in order. Returns 0, or the first non-zero value
 * fn returned, in which case the rest of data is dropped.
 */
int line_splitter_feed(struct line_splitter *ls, const char *data, size_t len, line_fn fn,
		       void *ud);
/* Bytes buffered since the last "\n". */
size_t line_splitter_pending(const struct line_splitter *ls);
/* Yields the unterminated tail, if any, as a last line, and empties the buffer. */
int line_splitter_flush(struct line_splitter *ls, line_fn fn, void *ud);
void line_splitter_release(struct line_splitter *ls);

enum stream_format {
	STREAM_NDJSON, /* Ollama /api/chat */
	STREAM_SSE,    /* llama-server /v1/chat/completions, or native /completion */
};

/* A line longer than this is not a chat chunk: the stream fails rather than buffer it. */
#define STREAM_MAX_LINE (8u << 20)

struct chat_stream {
	enum stream_format fmt;
	struct line_splitter ls;
	struct strbuf event;	/* SSE: the data lines of the event being read */
	int event_has_data;	/* SSE: a data line arrived since the last dispatch */
	struct chat_metrics *m; /* borrowed; filled as the server reports */
	chat_token_fn on_delta; /* may be NULL */
	void *ud;
	size_t content_bytes; /* text handed to on_delta so far */
	int done;	      /* the end marker arrived; later lines are ignored */
	int have_usage;	      /* SSE: usage{} seen, so it wins over timings{} for counts */
	int failed;
	struct perr err;       /* why, once failed */
	struct strbuf scratch; /* the fast path's decoded text */
	struct strbuf repair;  /* a line with its unclean text repaired */
	size_t repaired;       /* invalid UTF-8 bytes and lone surrogates replaced by U+FFFD */
};

/*
 * Sets up a parser that fills m (chat_metrics_init() it first) and calls on_delta with
 * every non-empty piece of reply text. Text is never split inside a line's delta; NUL bytes
 * in it are dropped.
 */
void chat_stream_init(struct chat_stream *s, enum stream_format fmt, struct chat_metrics *m,
		      chat_token_fn on_delta, void *ud);
/*
 * Feeds the next bytes of the body. Returns 0, or -1 with e (when not NULL) set once the
 * stream failed: PERR_BACKEND_ERROR for an error the server sent inside the stream,
 * PERR_BACKEND_PROTOCOL for a malformed line, PERR_CANCELLED when on_delta returned
 * non-zero. A failed stream stays failed; further feeds return -1 at once. The messages
 * describe the stream only; the caller adds which backend and model.
 */
int chat_stream_feed(struct chat_stream *s, const void *data, size_t len, struct perr *e);
/*
 * The body has ended. Reads an unterminated last line, then returns 0 when the end marker
 * arrived, or -1 with e set: the feed's failure, or PERR_BACKEND_PROTOCOL for a reply cut
 * short (no "done":true / "data: [DONE]").
 */
int chat_stream_finish(struct chat_stream *s, struct perr *e);
void chat_stream_release(struct chat_stream *s);

#endif
