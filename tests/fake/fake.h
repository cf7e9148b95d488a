/*
 * fake.h - the fake backend's model side: reply scripting and token accounting
 * (fake_reply.c) and the llama slots (fake_slots.c), used by the HTTP side (fake_server.h).
 *
 * DESIGN: everything here is a pure function of its arguments (the script is
 * a JSON document the caller holds a reference to), so the HTTP side can call
 * it from any connection thread without a lock. A "token" is FAKE_TOKEN_BYTES
 * bytes of text everywhere: prompt sizes, cached prefixes, context limits and
 * the pieces a reply is streamed in (a piece is stretched to the end of a
 * UTF-8 sequence so that no chunk carries half a character).
 */
#ifndef PARLEY_FAKE_H
#define PARLEY_FAKE_H

#include <jansson.h>
#include <stddef.h>

#include "db/util.h"

#define FAKE_TOKEN_BYTES 4

/*
 * Checks a script's shape: {"models": {NAME: {"replies": [strings],
 * "cases": [{"contains": string or [strings], "replies": [strings]}],
 * "token_delay_ms": int}}, "missing": [strings]}, every key optional.
 * Returns 0, or -1 with a message in err.
 */
int fake_script_check(const json_t *script, char *err, size_t errlen);

/* Model names are equal, an absent tag counting as ":latest" (as Ollama resolves them). */
int fake_model_eq(const char *a, const char *b);

/* Whether model must answer "not found": listed in "missing" or named "missing...". */
int fake_model_missing(const json_t *script, const char *model);

/* The script's entry for model (borrowed), or NULL when it has none. */
json_t *fake_script_model(const json_t *script, const char *model);

/*
 * Every model the fake lists (its defaults, then the scripted ones, minus missing ones), as a
 * new array of strings; ollama_tags adds ":latest" to a name with no tag.
 */
json_t *fake_model_names(const json_t *script, int ollama_tags);

/*
 * The reply model gives to messages (a JSON array of {role, content}), as a
 * new string the caller frees: the replies of the first of the model's
 * "cases" whose every "contains" string appears in some message, else its
 * "replies"; of those, replies[k], k = the number of "assistant" messages
 * (clamped to the last reply). A model with no scripted reply that is asked
 * for structured output (schema, borrowed, may be NULL) and is named
 * "judge..." answers with a JSON value of the schema ("judge-garbage..."
 * answers with text that is not JSON); any other gets a generated reply.
 */
char *fake_reply_text(const json_t *script, const char *model, const json_t *messages,
		      const json_t *schema);

/*
 * The JSON schema a chat request asks the reply to follow (borrowed from
 * body), or NULL: Ollama's "format" (a schema object; "json" gives an empty
 * schema), llama-server's "json_schema", or OpenAI's "response_format"
 * ({"type":"json_schema","json_schema":{"schema":...}} or
 * {"type":"json_object","schema":...}).
 */
const json_t *fake_request_schema(const json_t *body);

/* A JSON value that follows schema, deterministic (see README "Structured output"). New. */
json_t *fake_from_schema(const json_t *schema, const char *name);

/* Number of messages whose role is role. */
long fake_count_role(const json_t *messages, const char *role);

/*
 * The prompt the model would see, in the ChatML layout of llama-server's
 * default template: "<|im_start|>ROLE\nCONTENT<|im_end|>\n" per message, then
 * "<|im_start|>assistant\n". Appended to out.
 */
void fake_render_prompt(const json_t *messages, struct strbuf *out);

/* Tokens in len bytes of text: len / FAKE_TOKEN_BYTES rounded up. */
long fake_count_tokens(size_t len);

/*
 * Splits s into stream pieces of FAKE_TOKEN_BYTES bytes (UTF-8 safe).
 * *ends gets a new array of piece end offsets (free it); returns its length.
 */
size_t fake_split_pieces(const char *s, size_t len, size_t **ends);

/*
 * The llama slots (fake_slots.c), safe from any thread. init before serving, free after.
 * acquire takes a slot for a prompt (want: the request's id_slot, -1 = let the fake choose
 * as llama-server does), waiting while none fits; it polls gone(ud) every 20 ms and returns -1
 * when that says the client hung up or the fake stops, else 0 with *slot and *cached (the
 * prompt tokens the slot already held). release stores what the slot now caches.
 */
void fake_slots_init(int n);
void fake_slots_free(void);
void fake_slots_stop(void);
int fake_slots_acquire(const char *prompt, size_t len, long prompt_tokens, long want,
		       int (*gone)(void *ud), void *ud, int *slot, long *cached);
void fake_slots_release(int slot, const char *prompt, size_t plen, const char *reply, size_t rlen);
int fake_slots_busy(void);
long fake_slots_deferred(void);
/* Empties every slot's cache and counters. */
void fake_slots_reset(void);
/* New array in the shape of llama-server's GET /slots (with "params" parsed from params when
 * it is not NULL); counters adds each slot's requests, pinned, tokens_processed,
 * tokens_cached and cache_tokens since start or the last reset. */
json_t *fake_slots_json(int counters, long n_ctx, const char *params);

#endif
