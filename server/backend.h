/*
 * backend.h - one streamed chat call to a model server, and a health probe.
 *
 * DESIGN: a backend is a configured model server (Ollama or llama.cpp
 * llama-server) picked by name. backend_chat() makes one streamed call with
 * the caller's curl easy handle (each worker owns one, so connections are
 * kept alive between turns), hands every text delta to on_token as it
 * arrives, and fills the turn's metrics from what the server reports plus
 * what it measures itself (wall time, time to first token). The stream
 * parsers (stream.h) survive lines split across reads and many lines in one
 * read. Deadlines are per phase (connect, first byte, idle gap, total) and
 * are enforced from curl's progress callback (server/transport.h), which also
 * watches the cancel flag, so a cancelled call is aborted within a fraction of
 * a second; backend.c turns what went wrong into an error that says what to do.
 * Nothing here blocks a request handler: only workers call backend_chat().
 */
#ifndef PARLEY_BACKEND_H
#define PARLEY_BACKEND_H

#include <curl/curl.h>
#include <jansson.h>
#include <stdatomic.h>

#include "db/util.h"

enum backend_kind {
	BACKEND_OLLAMA,
	BACKEND_LLAMA, /* llama.cpp llama-server */
};

struct backend_cfg {
	char *name; /* what clients pick it by */
	enum backend_kind kind;
	char *url;   /* base URL without trailing slash, e.g. http://127.0.0.1:11434; in a
			pool, the member's (the first member's in the configuration) */
	char **urls; /* a pool: every member's base URL, urls[0] == url; owned by config */
	size_t nurls;
	int max_concurrency;   /* slots per member: llama-server when /props gives no total_slots,
				  Ollama per model (OLLAMA_NUM_PARALLEL); 0 = default (1, or
				  llama-server's total_slots) */
	int max_conversations; /* conversations at once per member; 0 = as many as have free slots
				  (a value above that overcommits the slots on purpose) */
	/* phase deadlines in milliseconds; 0 = the default */
	long connect_timeout_ms;    /* default 3000 */
	long first_byte_timeout_ms; /* default 300000: includes model load + prompt processing */
	long idle_timeout_ms;	    /* default 120000 (ollama), 60000 (llama-server) */
	long total_timeout_ms;	    /* default 1800000 */
	char *keep_alive;	    /* Ollama keep_alive, default "30m" */
	int num_ctx;		    /* Ollama num_ctx when options do not give one; default 8192 */
	size_t max_reply_bytes;	    /* the config's max_reply_bytes; 0 = no cap */
};

/* "ollama" / "llama-server"; parse returns -1 on an unknown name. */
const char *backend_kind_name(enum backend_kind kind);
int backend_kind_parse(const char *s, enum backend_kind *out);

struct chat_msg {
	const char *role; /* "system", "user", "assistant" */
	const char *content;
};

/*
 * Metrics of one call. Integers are -1 and doubles are negative when the
 * backend did not say (Ollama's fields are omitempty): unknown, never 0.
 */
struct chat_metrics {
	double wall_ms;		/* measured: request sent to end of stream */
	double ttft_ms;		/* measured: request sent to first content byte */
	long prompt_tokens;	/* Ollama prompt_eval_count; llama usage.prompt_tokens */
	long cached_tokens;	/* llama timings.cache_n / usage...cached_tokens; Ollama: unknown */
	long completion_tokens; /* Ollama eval_count; llama usage.completion_tokens */
	double prompt_ms;	/* Ollama prompt_eval_duration/1e6; llama timings.prompt_ms */
	double gen_ms;		/* Ollama eval_duration/1e6; llama timings.predicted_ms */
	double tokens_per_s;	/* completion_tokens / gen_ms; or llama predicted_per_second */
	double load_ms;		/* Ollama load_duration/1e6 */
	char finish_reason[24]; /* "stop", "length", ... ; "" when unknown */
};

void chat_metrics_init(struct chat_metrics *m);

/* Return non-zero from on_token to abort the call (it then fails with PERR_CANCELLED). */
typedef int (*chat_token_fn)(void *ud, const char *delta, size_t len);

struct chat_req {
	const struct backend_cfg *be;
	const char *model;
	const struct chat_msg *msgs;
	size_t nmsgs;
	json_t *options;	/* borrowed; may be NULL: temperature, seed, num_predict, num_ctx,
				   top_p, top_k, stop (the job's "options" object) */
	chat_token_fn on_token; /* may be NULL */
	void *ud;
	const atomic_int *cancel; /* may be NULL; non-zero aborts the call within ~100 ms */
	json_t *format;		  /* borrowed; may be NULL: a JSON schema the reply must follow
				     (structured output: Ollama "format", llama-server "json_schema") */
	int pinned;		  /* llama-server: send id_slot (server/fleet.h sets both) */
	int id_slot;		  /* the slot that holds this prompt's prefix, when pinned */
};

struct chat_result {
	struct strbuf text; /* the whole reply; strbuf_init()ed by backend_chat() */
	struct chat_metrics m;
	int http_status;     /* 0 when no response arrived */
	int partial;	     /* 1 when some content streamed before the failure */
	long retry_after_ms; /* from Retry-After on 429/503; 0 when absent */
	char note[256];	     /* what the turn's note should say about this reply, or "" */
};

/*
 * A backend that never stops streaming: a reply is cut at the backend's
 * max_reply_bytes of text and counts as complete (finish reason "length", and
 * res->note says so), and a call that receives more than
 * BACKEND_CALL_BYTES_PER_REPLY_BYTE times that in all (framing included)
 * fails, not retried: neither can grow without bound.
 */
#define BACKEND_CALL_BYTES_PER_REPLY_BYTE 64

/*
 * Makes one streamed chat call. Returns 0 on a complete reply, -1 with e set
 * otherwise; res->text holds whatever streamed either way and must be
 * released with chat_result_release(). e->msg names the backend, its URL and
 * the model, and what to do ("run 'ollama pull gemma3:1b'", "start
 * llama-server", ...). curl is a handle the caller owns; it is reset here.
 */
int backend_chat(CURL *curl, const struct chat_req *req, struct chat_result *res, struct perr *e);
void chat_result_release(struct chat_result *res);

/* Whether a failure is worth retrying: connection refused/reset before any
 * byte, 429/502/503/504, Ollama "server busy", llama-server loading. */
int backend_error_transient(const struct perr *e, const struct chat_result *res);

/*
 * Asks the server whether it is up and what it serves. On success *models is
 * a new JSON array of model name strings and, for llama-server, *slots the
 * slot count (/props total_slots; 0 when unknown). Short deadlines (2 s).
 * Returns 0 when reachable and ready, -1 with e set otherwise (a loading
 * llama-server is PERR_BACKEND_BUSY).
 */
int backend_probe(CURL *curl, const struct backend_cfg *be, json_t **models, int *slots,
		  struct perr *e);

/* Builds the JSON request body (exposed for tests). Returns a new reference. */
json_t *backend_request_body(const struct chat_req *req);

/*
 * Internal to server/backend*.c: what backend.c shares with the two kinds, and the
 * kinds' halves of the calls above. Other modules use only the calls above.
 */

/* Sets e to "backend 'NAME' (URL)" followed by the formatted rest; returns -1. */
int backend_fail(struct perr *e, int code, const struct backend_cfg *be, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/*
 * GET {url}{path} with the probe deadlines (2 s). Returns 0 once a response arrived,
 * whatever its status, with *status set and its body (at most 1 MiB) appended to body;
 * -1 with e set when none did.
 */
int backend_get(CURL *curl, const struct backend_cfg *be, const char *path, int *status,
		struct strbuf *body, struct perr *e);
/* The message of an error body ({"error":"..."} or {"error":{"message":...}}), else its first
 * line; "" for an empty body. */
void backend_error_text(const char *body, size_t len, char *out, size_t outsz);
/* req's messages as a new JSON array of {role, content}. */
json_t *backend_messages(const struct chat_req *req);
/* Copies temperature, top_p, seed, top_k and stop from the job's options into dst. */
void backend_copy_sampling(json_t *dst, const json_t *options);
/* An integer option (an integral number is accepted too); 0 when present, else -1. */
int backend_option_int(const json_t *options, const char *key, long *out);

/*
 * The kinds. *_http_error() explain an HTTP error status of a chat call: they return -1 with
 * e set when the status means something particular for that kind, else 0 (backend.c then
 * maps the status itself). body is the parsed error body (borrowed; NULL when not JSON) and
 * text its message.
 */
json_t *backend_ollama_body(const struct chat_req *req);
int backend_ollama_http_error(const struct chat_req *req, int status, const json_t *body,
			      const char *text, struct perr *e);
int backend_ollama_probe(CURL *curl, const struct backend_cfg *be, json_t **models, struct perr *e);
json_t *backend_llama_body(const struct chat_req *req);
int backend_llama_http_error(const struct chat_req *req, int status, const json_t *body,
			     const char *text, struct perr *e);
int backend_llama_probe(CURL *curl, const struct backend_cfg *be, json_t **models, int *slots,
			struct perr *e);

#endif
