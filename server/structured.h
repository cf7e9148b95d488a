/*
 * structured.h - one model call whose reply must follow a JSON schema, on a
 * free call slot of its backend.
 *
 * DESIGN: the one-shot calls made after a conversation (the judge's grade,
 * the model extractor's list) share this path: wait for a call slot on the
 * backend like any turn (the wait obeys cancel), make one call that carries
 * the schema as structured output (Ollama "format", llama-server
 * "json_schema", server/backend.h), give the slot back. Checking the reply
 * against the schema is the caller's: a server may ignore it.
 */
#ifndef PARLEY_STRUCTURED_H
#define PARLEY_STRUCTURED_H

#include <curl/curl.h>
#include <jansson.h>
#include <stdatomic.h>

#include "server/backend.h"
#include "server/fleet.h"

struct structured_req {
	struct fleet *fleet;
	CURL *curl;		  /* the worker's handle */
	const atomic_int *cancel; /* may be NULL */
	const struct backend_cfg *be;
	const char *model;
	const char *system, *user; /* the two messages */
	json_t *schema;		   /* borrowed */
	json_t *options;	   /* borrowed; may be NULL */
};

/*
 * Makes the call. Returns 0 with the reply in res, or -1 with e set
 * (PERR_CANCELLED when cancelled while waiting for the slot); res->text holds
 * whatever came either way: release res with chat_result_release().
 */
int structured_call(const struct structured_req *q, struct chat_result *res, struct perr *e);

#endif
