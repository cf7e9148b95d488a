/*
 * fake_server.h - what the HTTP side of the fake backend shares between its files:
 * fake_backend.c (start-up, routing, request state, the log, naps, responses),
 * fake_chat.c (a chat request of either protocol, streamed or whole), fake_ollama.c and
 * fake_llama.c (each wire protocol), fake_fault.c (fault injection) and fake_ctl.c (the
 * /_fake/... control API). Internal to the fake; the tests see only its HTTP API.
 *
 * DESIGN: every piece of shared state is in fake_st, guarded by fake_st.lock; functions named
 * ..._locked must be called with it held. A request's own state (struct fake_req) is shared
 * by its connection and its streamed response and freed by whichever lets go last.
 */
#ifndef PARLEY_FAKE_SERVER_H
#define PARLEY_FAKE_SERVER_H

#include <jansson.h>
#include <microhttpd.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "db/util.h"

#define FAKE_LLAMA_MODEL "models/fake-model.gguf" /* what llama-server reports with no "model" */
#define FAKE_N_CTX_TRAIN 32768
#define FAKE_JSON_FLAGS (JSON_COMPACT | JSON_REAL_PRECISION(15))
/* Nominal costs, so that no duration is ever reported as 0 (clients divide by them). */
#define FAKE_PROMPT_US_PER_TOKEN 50
#define FAKE_PREDICT_US_PER_TOKEN 200

/* The command line (fake_backend.c). */
struct fake_cfg {
	const char *host;
	long port;
	const char *script_path;
	long token_delay_ms;
	int slots;
	long n_ctx; /* per slot, and Ollama's num_ctx when a request gives none */
	long load_ms;
	int die_with_parent;
	long reply_ms;		  /* > 0: every reply ends this long after it starts (--reply-ms) */
	long prompt_ms_per_token; /* > 0: llama prompt tokens not cached cost this each */
};
extern struct fake_cfg fake_cfg;

/* Set once SIGTERM/SIGINT came: every sleep ends early. */
extern atomic_int fake_stopping;

/* ---- faults (fake_fault.c) ---- */

enum fake_fault_mode {
	FM_NONE = -1,
	FM_REFUSE,
	FM_RESET,
	FM_STALL_FIRST_BYTE,
	FM_STALL_MID_STREAM,
	FM_TRICKLE,
	FM_HTTP_500,
	FM_HTTP_503,
	FM_HTTP_429,
	FM_ERROR_IN_STREAM,
	FM_MALFORMED,
	FM_CUT,
	FM_CONTEXT_OVERFLOW,
	FM_LOADING,
	FM_BAD_OPTION,
	FM_OMIT_FIELDS,
	FM_ENDLESS,
	FM_INVALID_UTF8,
	FM_LONE_SURROGATE,
	FM_REDIRECT,
	FM__COUNT
};

struct fake_fault {
	int mode;	   /* enum fake_fault_mode */
	long id;	   /* order of arrival, for the listing */
	long count;	   /* chat requests it still applies to; -1 = until cleared */
	char *model;	   /* only requests for this model; NULL = any */
	char *path;	   /* only requests to this path; NULL = any */
	long after_tokens; /* content pieces sent before a mid-stream fault strikes */
	long ms;	   /* stall length, trickle gap, loading time (0 = by count only) */
	long retry_after;  /* seconds for Retry-After; -1 = no header */
	char *message;	   /* error text; NULL = what the real server says */
	char *option;	   /* bad_option: the option named; NULL = "num_ctx" */
	char *fields;	   /* omit_fields: comma-separated keys of Ollama's final object */
	int64_t since_us;  /* when it was queued, monotonic */
};

/* ---- shared state (fake_backend.c) ---- */

struct fake_logent {
	long id;
	char *path;
	/* owned: the parsed request, or its raw text as a string when it is not JSON */
	json_t *body;
	char *model;
	int64_t received_ms, finished_ms; /* wall clock, ms since the epoch */
	int status;			  /* HTTP status sent; 0 = none (refused, dropped) */
	int stream;
	const char *fault;   /* static name, or NULL */
	const char *outcome; /* static; NULL while it runs */
	int slot;	     /* llama slot it ran in; -1 = none */
	long id_slot;	     /* the id_slot the request asked for; -1 = none */
	long prompt_tokens;  /* -1 = not computed */
	long cached_tokens;  /* -1 = not computed */
};

struct fake_state {
	pthread_mutex_t lock; /* guards every field below */
	json_t *script;	      /* owned; replaced whole by POST /_fake/script */
	struct fake_fault *faults;
	size_t nfaults, afaults;
	long next_fault_id;
	struct fake_logent *log;
	size_t nlog, alog;
	long next_log_id;
	long chat_requests, in_flight, max_in_flight, disconnects;
	json_t *by_model; /* owned: model -> chat requests */
	json_t *loaded;	  /* owned: Ollama models in memory, name -> {"num_ctx"} */
	/* llama /metrics counters */
	long m_prompt_tokens, m_cached_tokens, m_predicted, m_tokens_max;
	double m_prompt_s, m_predicted_s;
};
extern struct fake_state fake_st;

/* ---- one request ---- */

enum fake_proto { PROTO_NONE, PROTO_OLLAMA, PROTO_LLAMA };
enum fake_phase { PH_CONTENT, PH_FINISH, PH_END };
enum fake_step { STEP_MORE, STEP_END, STEP_ABORT };

struct fake_req {
	atomic_int refs; /* the connection's, plus the streamed response's */
	struct MHD_Connection *conn;
	int fd;
	char *path;
	struct strbuf body;
	int too_large;

	/* chat requests only */
	enum fake_proto proto;
	long log_id; /* 0 = not logged */
	int counted; /* counted in fake_st.in_flight */
	int disconnected;
	int stream;
	int slot; /* -1 = none */
	struct fake_fault fault;
	int fault_fired;
	size_t fault_at; /* pieces sent when a mid-stream fault strikes */
	char *model;
	struct strbuf prompt; /* rendered */
	long prompt_tokens, cached_tokens;
	char *reply;
	size_t *ends; /* piece end offsets in reply */
	size_t npieces, next;
	long delay_ms;
	int include_usage;
	const char *finish_reason;
	enum fake_phase phase;
	int role_sent;
	struct strbuf out; /* bytes of the stream not yet handed to MHD */
	size_t out_off;
	int64_t t0_us, gen_t0_us, gen_t1_us, load_ns;
	char id[48];
	int64_t created;
};

/* ---- fake_backend.c: request state, the log, naps, responses ---- */

/* A new reference to the current script. */
json_t *fake_script_get(void);
void fake_req_unref(struct fake_req *r);
/* Bytes of the reply sent so far (all of it once a non-streamed reply went out). */
size_t fake_req_emitted(const struct fake_req *r);
/* Records the HTTP status sent in r's log entry. */
void fake_req_set_status(struct fake_req *r, int status);
/* The log entry with this id, or NULL. Must hold fake_st.lock. */
struct fake_logent *fake_log_find(long id);
void fake_logent_release(struct fake_logent *e);
/* Counts r's client as gone (once). */
void fake_mark_disconnected(struct fake_req *r);
/* Whether the client hung up; waits up to timeout_ms for it to. */
int fake_client_gone(struct fake_req *r, int timeout_ms);
/* Sleep until end (monotonic us) / for ms. Return 0, or -1 early when the client hangs up
 * or the fake stops. */
int fake_nap_until(struct fake_req *r, int64_t end);
int fake_nap(struct fake_req *r, long ms);
/* Send a response: body is taken (freed by MHD), j is stolen; retry_after < 0: no
 * Retry-After header. */
enum MHD_Result fake_send_body(struct fake_req *r, int status, const char *ctype, char *body,
			       size_t len, long retry_after);
enum MHD_Result fake_send_text(struct fake_req *r, int status, const char *ctype, const char *text);
enum MHD_Result fake_send_json(struct fake_req *r, int status, json_t *j, long retry_after);

/* ---- fake_chat.c: a chat request, either protocol ---- */

/* POST /api/chat (PROTO_OLLAMA) or /v1/chat/completions (PROTO_LLAMA). */
enum MHD_Result fake_chat(struct fake_req *r, enum fake_proto proto);
/* The request is over (sent, dropped, or refused): settle its books. */
void fake_chat_end(struct fake_req *r, enum MHD_RequestTerminationCode toe);
/* Sets the reply text and its pieces, cut to max_tokens (< 0: no limit). */
void fake_chat_set_reply(struct fake_req *r, const json_t *script, const json_t *body,
			 const json_t *msgs, long max_tokens);
/* Sends the reply, streamed or whole, once everything about it is decided. */
enum MHD_Result fake_chat_reply(struct fake_req *r);
/* An integer field of o, or def when absent or not an integer. */
long fake_chat_int(const json_t *o, const char *key, long def);
/* Appends j (stolen) to r's stream as one NDJSON line or one SSE event. */
void fake_chat_emit(struct fake_req *r, json_t *j);
/* Generation time so far (or in all), in us, never under the nominal cost per token. */
int64_t fake_chat_gen_us(struct fake_req *r);

/* ---- fake_ollama.c: Ollama ---- */

enum MHD_Result fake_ollama_error(struct fake_req *r, int status, const char *msg,
				  long retry_after);
/* One chat object: a stream chunk, or with done the final object with its metrics. New. */
json_t *fake_ollama_object(struct fake_req *r, const char *content, size_t len, int done);
/* Whether the request's omit_fields fault leaves key out of the final object. */
int fake_ollama_omitted(const struct fake_req *r, const char *key);
/* Checks an omit_fields fault's list; sets err when a name is unknown. */
void fake_ollama_check_fields(const char *fields, char *err, size_t errlen);
enum MHD_Result fake_ollama_chat(struct fake_req *r, const json_t *body, const json_t *script);
enum MHD_Result fake_ollama_tags(struct fake_req *r);
enum MHD_Result fake_ollama_ps(struct fake_req *r);
enum MHD_Result fake_ollama_show(struct fake_req *r);

/* ---- fake_llama.c: llama-server ---- */

/* llama-server's error object, new. */
json_t *fake_llama_error_json(int status, const char *type, const char *msg);
enum MHD_Result fake_llama_error(struct fake_req *r, int status, const char *type, const char *msg,
				 long retry_after);
/* One chat.completion.chunk around choices (stolen). New. */
json_t *fake_llama_chunk(struct fake_req *r, json_t *choices);
/* Emits the finish chunk, the usage chunk when asked for, and [DONE]. */
void fake_llama_finish(struct fake_req *r);
/* The whole chat.completion of a stream:false request. New. */
json_t *fake_llama_whole(struct fake_req *r);
/* Must hold fake_st.lock. r's slot now caches the prompt and what was generated. */
void fake_llama_release_locked(struct fake_req *r);
enum MHD_Result fake_llama_chat(struct fake_req *r, const json_t *body, const json_t *script);
enum MHD_Result fake_llama_models(struct fake_req *r);
enum MHD_Result fake_llama_props(struct fake_req *r);
enum MHD_Result fake_llama_slots(struct fake_req *r);
enum MHD_Result fake_llama_metrics(struct fake_req *r);

/* ---- fake_fault.c: fault injection ---- */

/* A mode's name as the control API spells it. */
const char *fake_fault_name(int mode);
void fake_fault_release(struct fake_fault *f);
/* Whether mode strikes in the middle of a stream. */
int fake_fault_midstream(int mode);
/* Must hold fake_st.lock. Drops "loading" faults whose time is up. */
void fake_fault_prune_locked(void);
/* Must hold fake_st.lock. The queue, as a new array. */
json_t *fake_fault_list_locked(void);
/* Must hold fake_st.lock. Drops every queued fault. */
void fake_fault_clear_locked(void);
/*
 * Whether a "loading" fault holds. A chat request (chat=1) uses up one of its
 * count and must match its model filter; other routes only look.
 */
int fake_fault_loading(const char *model, int chat);
/* Takes the first queued fault that matches the request into out; returns 1 if one did. */
int fake_fault_take(const char *model, const char *path, struct fake_fault *out);
/* Faults that answer before any model work; *handled says whether r's one did. */
enum MHD_Result fake_fault_early(struct fake_req *r, int *handled);
/* POST /_fake/fault. */
enum MHD_Result fake_fault_post(struct fake_req *r);

/* ---- fake_ctl.c: the control API ---- */

/* /_fake/WHAT. */
enum MHD_Result fake_ctl(struct fake_req *r, const char *what, int get, int post);
enum MHD_Result fake_ctl_error(struct fake_req *r, int status, const char *msg);

#endif
