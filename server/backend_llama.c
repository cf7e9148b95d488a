/*
 * backend_llama.c - llama.cpp llama-server: the /v1/chat/completions request, what its
 * errors mean, its probe.
 *
 * DESIGN: the OpenAI-style route, streamed as server-sent events, with
 * stream_options.include_usage so the token counts arrive in a last choices:[] chunk, and
 * cache_prompt so a conversation's stable prefix is not processed again each turn, and id_slot
 * so that prefix stays in the slot parleyd chose for it. The
 * context size is fixed when llama-server starts (-c, shared by its -np slots): a request
 * cannot change it, and a prompt that does not fit gets a 400 exceed_context_size_error with
 * the numbers, which we pass on with what to do. While it loads its model, llama-server
 * answers 503 "Loading model" on every route but the model lists.
 */
#include "server/backend.h"

#include <string.h>

json_t *backend_llama_body(const struct chat_req *req)
{
	json_t *body = json_object();
	long n;

	/* every json_object_set_new() below steals the new value */
	json_object_set_new(body, "model", json_string(req->model));
	json_object_set_new(body, "messages", backend_messages(req));
	json_object_set_new(body, "stream", json_true());
	json_object_set_new(body, "stream_options", json_pack("{s:b}", "include_usage", 1));
	json_object_set_new(body, "cache_prompt", json_true());
	/* the slot parleyd keeps this conversation-role's prefix in (server/fleet.h): without it
	 * llama-server picks a slot by similarity and may evict another conversation's prefix */
	if (req->pinned)
		json_object_set_new(body, "id_slot", json_integer(req->id_slot));
	backend_copy_sampling(body, req->options);
	if (!backend_option_int(req->options, "num_predict", &n))
		json_object_set_new(body, "max_tokens", json_integer(n));
	/* llama-server turns the schema into a grammar; the reply cannot leave it */
	if (req->format)
		json_object_set(body, "json_schema", req->format); /* borrowed: set, not set_new */
	return body;
}

static int context_overflow(const struct chat_req *req, const json_t *err, const char *text,
			    struct perr *e)
{
	/* both borrowed from err */
	const json_t *np = json_object_get(err, "n_prompt_tokens");
	const json_t *nctx = json_object_get(err, "n_ctx");

	if (json_is_integer(np) && json_is_integer(nctx))
		return backend_fail(e, PERR_CONTEXT_OVERFLOW, req->be,
				    ", model '%s': the prompt is %lld tokens but a slot's context "
				    "holds %lld; shorten the conversation or restart llama-server "
				    "with a larger -c (its -np slots share it)",
				    req->model, (long long)json_integer_value(np),
				    (long long)json_integer_value(nctx));
	return backend_fail(e, PERR_CONTEXT_OVERFLOW, req->be,
			    ", model '%s': the prompt does not fit the context (%.90s); shorten "
			    "the conversation or raise llama-server's -c",
			    req->model, text);
}

int backend_llama_http_error(const struct chat_req *req, int status, const json_t *body,
			     const char *text, struct perr *e)
{
	const json_t *err = json_object_get(body, "error"); /* borrowed */
	const char *type = json_string_value(json_object_get(err, "type"));

	if ((type && !strcmp(type, "exceed_context_size_error")) ||
	    strstr(text, "exceeds the available context size"))
		return context_overflow(req, err, text, e);
	if (status == 503 && strstr(text, "oading"))
		return backend_fail(e, PERR_BACKEND_BUSY, req->be,
				    " is still loading its model (asked for '%s'); retry once GET "
				    "/health answers ok",
				    req->model);
	if ((status == 400 || status == 404) && strstr(text, "model") && strstr(text, "not found"))
		return backend_fail(e, PERR_MODEL_MISSING, req->be,
				    ": model '%s' is not served there (%.90s); load it into "
				    "llama-server or pick one that GET /v1/models lists",
				    req->model, text);
	if (status == 404)
		return backend_fail(e, PERR_BACKEND_REJECTED, req->be,
				    " answered 404 (%.60s) to POST /v1/chat/completions for model "
				    "'%s'; check that the url points at a llama-server (Ollama "
				    "needs kind=ollama)",
				    text[0] ? text : "no message", req->model);
	return 0;
}

static void add_name(json_t *names, const json_t *name)
{
	const json_t *v;
	size_t i;

	if (!json_is_string(name) || !json_string_length(name))
		return;
	json_array_foreach(names, i, v)
	{
		if (json_equal(v, name))
			return;
	}
	json_array_append_new(names, json_string(json_string_value(name)));
}

/* /v1/models: {"data":[{"id":..., "aliases":[...]}]}; a model is asked for by any of them. */
static json_t *model_names(const struct strbuf *body)
{
	json_t *j = json_loadb(body->buf, body->len, 0, NULL);
	json_t *data = json_object_get(j, "data"); /* borrowed, as are m and a */
	json_t *names, *m, *a;
	size_t i, k;

	if (!json_is_array(data)) {
		json_decref(j);
		return NULL;
	}
	names = json_array();
	json_array_foreach(data, i, m)
	{
		add_name(names, json_object_get(m, "id"));
		json_array_foreach(json_object_get(m, "aliases"), k, a)
		{
			add_name(names, a);
		}
	}
	json_decref(j);
	return names;
}

int backend_llama_probe(CURL *curl, const struct backend_cfg *be, json_t **models, int *slots,
			struct perr *e)
{
	struct strbuf body;
	struct perr ignored;
	json_t *props;
	char text[160];
	int status, rc = -1;

	strbuf_init(&body, 0);
	if (backend_get(curl, be, "/health", &status, &body, e))
		goto out;
	if (status != 200) {
		backend_error_text(body.buf, body.len, text, sizeof(text));
		if (status == 503)
			backend_fail(e, PERR_BACKEND_BUSY, be,
				     " is still loading its model (%.60s); retry once GET /health "
				     "answers ok",
				     text[0] ? text : "HTTP 503");
		else if (status == 404)
			backend_fail(
			    e, PERR_BACKEND_REJECTED, be,
			    " answered 404 to GET /health: it is not a llama-server (Ollama "
			    "needs kind=ollama)");
		else
			backend_fail(e, PERR_BACKEND_ERROR, be,
				     " answered HTTP %d to GET /health: %.100s; check the server",
				     status, text[0] ? text : "(no message)");
		goto out;
	}
	strbuf_reset(&body);
	if (backend_get(curl, be, "/v1/models", &status, &body, e))
		goto out;
	if (status != 200 || !(*models = model_names(&body))) {
		backend_fail(e, PERR_BACKEND_PROTOCOL, be,
			     " answered GET /v1/models with HTTP %d and no model list; check that "
			     "the url points at a llama-server",
			     status);
		goto out;
	}
	rc = 0;
	/* The slot count only sizes the pool; without it the server is still usable. */
	strbuf_reset(&body);
	if (slots && !backend_get(curl, be, "/props", &status, &body, &ignored) && status == 200) {
		props = json_loadb(body.buf, body.len, 0, NULL);
		if (json_is_integer(json_object_get(props, "total_slots")))
			*slots = (int)json_integer_value(json_object_get(props, "total_slots"));
		json_decref(props);
	}
out:
	strbuf_release(&body);
	return rc;
}
