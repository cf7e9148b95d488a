/*
 * backend_ollama.c - Ollama: the /api/chat request, what its errors mean, its probe.
 *
 * DESIGN: every request carries options.num_ctx, because Ollama's default context has
 * changed from version to version and a num_ctx that changes between requests reloads the
 * model; keep_alive, because the default five minutes unloads the model between slow turns
 * and a reload costs tens of seconds; and think:false, because a model that can think does
 * so by default and spends the token budget on it. Errors arrive as {"error":"text"}, and
 * the text says more than the status: a 404 is "model 'x' not found" from Ollama, but also
 * any other server that has no /api/chat.
 */
#include "server/backend.h"

#include <stdlib.h>
#include <string.h>

#define DEFAULT_NUM_CTX 8192
#define DEFAULT_KEEP_ALIVE "30m"

/* Ollama reads a string as a Go duration ("30m"), so a bare "3600" would be refused; sent as
 * a number it means seconds. */
static json_t *keep_alive_value(const char *ka)
{
	const char *digits = ka;

	if (!ka || !*ka)
		return json_string(DEFAULT_KEEP_ALIVE);
	if (*digits == '-')
		digits++;
	if (*digits && strspn(digits, "0123456789") == strlen(digits))
		return json_integer(strtol(ka, NULL, 10));
	return json_string(ka);
}

json_t *backend_ollama_body(const struct chat_req *req)
{
	const struct backend_cfg *be = req->be;
	json_t *body = json_object();
	json_t *opts = json_object();
	long n;

	/* every json_object_set_new() below steals the new value */
	json_object_set_new(body, "model", json_string(req->model));
	json_object_set_new(body, "messages", backend_messages(req));
	json_object_set_new(body, "stream", json_true());
	json_object_set_new(body, "think", json_false());
	json_object_set_new(body, "keep_alive", keep_alive_value(be->keep_alive));

	backend_copy_sampling(opts, req->options);
	if (!backend_option_int(req->options, "num_predict", &n))
		json_object_set_new(opts, "num_predict", json_integer(n));
	if (backend_option_int(req->options, "num_ctx", &n) || n <= 0)
		n = be->num_ctx > 0 ? be->num_ctx : DEFAULT_NUM_CTX;
	json_object_set_new(opts, "num_ctx", json_integer(n));
	json_object_set_new(body, "options", opts);
	if (req->format)
		json_object_set(body, "format", req->format); /* borrowed: set, not set_new */
	return body;
}

int backend_ollama_http_error(const struct chat_req *req, int status, const json_t *body,
			      const char *text, struct perr *e)
{
	const struct backend_cfg *be = req->be;

	(void)body; /* Ollama's error body is a bare string: text has all of it */
	switch (status) {
	case 404:
		if (strstr(text, "model") && strstr(text, "not found"))
			return backend_fail(e, PERR_MODEL_MISSING, be,
					    ": model '%s' not found; run 'ollama pull %s'",
					    req->model, req->model);
		return backend_fail(e, PERR_BACKEND_REJECTED, be,
				    " answered 404 (%.60s) to POST /api/chat for model '%s'; check "
				    "that the url points at Ollama (a llama-server needs "
				    "kind=llama-server)",
				    text[0] ? text : "no message", req->model);
	case 403:
		if (text[0])
			break;
		return backend_fail(e, PERR_BACKEND_REJECTED, be,
				    " refused the request for model '%s' (HTTP 403); Ollama only "
				    "serves requests for a local host name unless OLLAMA_ORIGINS "
				    "allows others",
				    req->model);
	case 400:
		if (!strstr(text, "context length") && !strstr(text, "too long"))
			break;
		return backend_fail(
		    e, PERR_CONTEXT_OVERFLOW, be,
		    ", model '%s': the prompt does not fit its context (%.90s); raise "
		    "num_ctx or shorten the conversation",
		    req->model, text);
	case 503:
		if (!strstr(text, "busy"))
			break;
		return backend_fail(e, PERR_BACKEND_BUSY, be,
				    " is busy for model '%s' (%.90s); retry later or raise "
				    "OLLAMA_MAX_QUEUE",
				    req->model, text);
	case 500:
		if (strstr(text, "memory"))
			return backend_fail(
			    e, PERR_BACKEND_ERROR, be,
			    ": model '%s' failed to load (%.90s); use a smaller model or "
			    "a smaller num_ctx",
			    req->model, text);
		if (strstr(text, "timed out waiting"))
			return backend_fail(e, PERR_BACKEND_ERROR, be,
					    ": model '%s' did not load in time (%.90s); raise "
					    "OLLAMA_LOAD_TIMEOUT or use a smaller model",
					    req->model, text);
		break;
	}
	return 0;
}

/* A probe's GET answered with something other than 200. */
static int probe_status_error(const struct backend_cfg *be, const char *path, int status,
			      const struct strbuf *body, struct perr *e)
{
	char text[160];

	backend_error_text(body->buf, body->len, text, sizeof(text));
	if (status == 404)
		return backend_fail(e, PERR_BACKEND_REJECTED, be,
				    " answered 404 to GET %s: it is not an Ollama server (a "
				    "llama-server needs kind=llama-server)",
				    path);
	return backend_fail(e,
			    status == 429 || status == 503 ? PERR_BACKEND_BUSY : PERR_BACKEND_ERROR,
			    be, " answered HTTP %d to GET %s: %.100s; check the server", status,
			    path, text[0] ? text : "(no message)");
}

int backend_ollama_probe(CURL *curl, const struct backend_cfg *be, json_t **models, struct perr *e)
{
	struct strbuf body;
	json_t *tags = NULL, *list, *m;
	int status, rc = -1;
	size_t i;

	strbuf_init(&body, 0);
	if (backend_get(curl, be, "/api/version", &status, &body, e))
		goto out;
	if (status != 200) {
		probe_status_error(be, "/api/version", status, &body, e);
		goto out;
	}
	strbuf_reset(&body);
	if (backend_get(curl, be, "/api/tags", &status, &body, e))
		goto out;
	if (status != 200) {
		probe_status_error(be, "/api/tags", status, &body, e);
		goto out;
	}
	tags = json_loadb(body.buf, body.len, 0, NULL);
	list = json_object_get(tags, "models"); /* borrowed */
	if (!json_is_array(list)) {
		backend_fail(e, PERR_BACKEND_PROTOCOL, be,
			     " answered GET /api/tags without a model list; check that the url "
			     "points at Ollama");
		goto out;
	}
	*models = json_array();
	json_array_foreach(list, i, m)
	{
		const char *name = json_string_value(json_object_get(m, "name"));

		if (name)
			json_array_append_new(*models, json_string(name));
	}
	rc = 0;
out:
	json_decref(tags);
	strbuf_release(&body);
	return rc;
}
