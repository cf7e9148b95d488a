/*
 * backend.c - what both kinds of model server share: names, metrics, requests, dispatch by
 * kind, and the mapping of what went wrong to an error code and a message.
 *
 * DESIGN: the HTTP exchange itself (curl, deadlines, the thread's multi handle) is
 * server/transport.c; this file decides what its outcome means. A deadline, a cancel, a
 * network failure, an HTTP error status (the kind reads its server's error body first, kept
 * up to 64 KiB) and a stream the parser refused each become one perr code, and the message
 * always says which backend (name and URL), which model, and what to do about it.
 */
#include "server/backend.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/transport.h"

#define ERROR_BODY_MAX (64 * 1024)
#define PROBE_BODY_MAX (1024 * 1024)
#define PROBE_TIMEOUT_MS 2000L

const char *backend_kind_name(enum backend_kind kind)
{
	switch (kind) {
	case BACKEND_OLLAMA:
		return "ollama";
	case BACKEND_LLAMA:
		return "llama-server";
	}
	return "unknown";
}

int backend_kind_parse(const char *s, enum backend_kind *out)
{
	if (s && !strcmp(s, "ollama")) {
		*out = BACKEND_OLLAMA;
		return 0;
	}
	if (s && !strcmp(s, "llama-server")) {
		*out = BACKEND_LLAMA;
		return 0;
	}
	return -1;
}

void chat_metrics_init(struct chat_metrics *m)
{
	m->wall_ms = -1.0;
	m->ttft_ms = -1.0;
	m->prompt_tokens = -1;
	m->cached_tokens = -1;
	m->completion_tokens = -1;
	m->prompt_ms = -1.0;
	m->gen_ms = -1.0;
	m->tokens_per_s = -1.0;
	m->load_ms = -1.0;
	m->finish_reason[0] = '\0';
}

void chat_result_release(struct chat_result *res)
{
	strbuf_release(&res->text);
}

int backend_fail(struct perr *e, int code, const struct backend_cfg *be, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (!e)
		return -1;
	e->code = code;
	n = snprintf(e->msg, sizeof(e->msg), "backend '%s' (%s)", be->name ? be->name : "?",
		     be->url ? be->url : "?");
	if (n < 0 || (size_t)n >= sizeof(e->msg))
		return -1;
	va_start(ap, fmt);
	vsnprintf(e->msg + n, sizeof(e->msg) - (size_t)n, fmt, ap);
	va_end(ap);
	return -1;
}

/* What to do when nothing answers at the backend's address. */
static void start_hint(const struct backend_cfg *be, char *out, size_t outsz)
{
	const char *url = be->url ? be->url : "";
	const char *host = strstr(url, "://");
	const char *port = NULL, *p;
	size_t plen = 0;

	if (be->kind != BACKEND_LLAMA) {
		snprintf(out, outsz, "start it with 'ollama serve' or fix the url");
		return;
	}
	/* the port of http://host:port/..., so the hint can be pasted as it is */
	for (p = host ? host + 3 : url; *p && *p != '/'; p++)
		if (*p == ':')
			port = p + 1;
	if (port)
		plen = strspn(port, "0123456789");
	if (plen)
		snprintf(out, outsz,
			 "start it with 'llama-server -m MODEL.gguf --port %.*s' or fix "
			 "the url",
			 (int)plen, port);
	else
		snprintf(out, outsz, "start it with 'llama-server -m MODEL.gguf' or fix the url");
}

/* A call that ended without a response to interpret: deadlines, cancel, network. */
static int call_error(const struct transport_call *c, const char *model, CURLcode cc,
		      struct perr *e)
{
	const struct backend_cfg *be = c->be;
	char reason[160], hint[96];
	char mclause[160] = "";

	if (model)
		snprintf(mclause, sizeof(mclause), " for model '%s'", model);
	switch (c->abort) {
	case TRANSPORT_ABORT_CANCEL:
		return backend_fail(e, PERR_CANCELLED, be, ": the call%s was cancelled", mclause);
	case TRANSPORT_ABORT_FIRST_BYTE:
		if (!model)
			break;
		return backend_fail(
		    e, PERR_BACKEND_TIMEOUT, be,
		    " sent nothing for %ld ms%s (model load and prompt processing); "
		    "raise first_byte_timeout_ms or use a smaller model or prompt",
		    c->first_byte_ms, mclause);
	case TRANSPORT_ABORT_IDLE:
		if (!model)
			break;
		return backend_fail(e, PERR_BACKEND_TIMEOUT, be,
				    " went silent for %ld ms in the middle of the reply%s; raise "
				    "idle_timeout_ms or check the server",
				    c->idle_ms, mclause);
	case TRANSPORT_ABORT_TOTAL:
		if (!model)
			break;
		return backend_fail(e, PERR_BACKEND_TIMEOUT, be,
				    " did not finish the reply%s within %ld ms; raise "
				    "total_timeout_ms or lower num_predict",
				    mclause, c->total_ms);
	case TRANSPORT_ABORT_NONE:
		break;
	}
	if (c->abort != TRANSPORT_ABORT_NONE)
		return backend_fail(
		    e, PERR_BACKEND_TIMEOUT, be,
		    " did not answer %s within %ld ms; check that the url points at "
		    "a %s",
		    c->path, c->total_ms, backend_kind_name(be->kind));

	transport_reason(c, cc, reason, sizeof(reason));
	switch (cc) {
	case CURLE_COULDNT_CONNECT:
	case CURLE_COULDNT_RESOLVE_HOST:
	case CURLE_COULDNT_RESOLVE_PROXY:
	case CURLE_OPERATION_TIMEDOUT: /* no CURLOPT_TIMEOUT is set: this is the connect one */
		start_hint(be, hint, sizeof(hint));
		return backend_fail(e, PERR_BACKEND_DOWN, be, " is unreachable%s: %s; %s", mclause,
				    reason, hint);
	case CURLE_URL_MALFORMAT:
	case CURLE_UNSUPPORTED_PROTOCOL:
		return backend_fail(e, PERR_INVALID, be, " has an unusable url: %s; fix the url",
				    reason);
	case CURLE_GOT_NOTHING:
	case CURLE_SEND_ERROR:
	case CURLE_RECV_ERROR:
	case CURLE_PARTIAL_FILE:
		if (!c->status)
			return backend_fail(e, PERR_BACKEND_DOWN, be,
					    " dropped the connection before answering%s: %s; check "
					    "that it is running and the url points at it",
					    mclause, reason);
		return backend_fail(e, PERR_BACKEND_PROTOCOL, be,
				    " broke the connection in the middle of the reply%s: %s; check "
				    "the server log",
				    mclause, reason);
	default:
		return backend_fail(e, PERR_BACKEND_ERROR, be, ": the call%s failed: %s", mclause,
				    reason);
	}
}

int backend_get(CURL *curl, const struct backend_cfg *be, const char *path, int *status,
		struct strbuf *body, struct perr *e)
{
	struct transport_call c;
	CURLcode cc;
	int rc = 0;

	transport_init(&c, curl, be, NULL, PROBE_BODY_MAX);
	if (c.connect_ms > PROBE_TIMEOUT_MS)
		c.connect_ms = PROBE_TIMEOUT_MS;
	c.first_byte_ms = c.idle_ms = c.total_ms = PROBE_TIMEOUT_MS;
	transport_setup(&c, path, NULL, "Accept: application/json");
	cc = transport_run(&c);
	*status = c.status;
	if (c.abort == TRANSPORT_ABORT_NONE && c.status &&
	    (cc == CURLE_OK || c.status / 100 != 2)) {
		if (c.body_cut && c.status / 100 == 2)
			rc =
			    backend_fail(e, PERR_BACKEND_PROTOCOL, be,
					 " answered GET %s with more than %d bytes; check that the "
					 "url points at a %s",
					 path, PROBE_BODY_MAX, backend_kind_name(be->kind));
		else
			strbuf_add(body, c.body.buf, c.body.len);
	} else {
		rc = call_error(&c, NULL, cc, e);
	}
	transport_release(&c);
	return rc;
}

static void copy_first_line(const char *s, size_t len, char *out, size_t outsz)
{
	size_t n = 0;

	while (len && (*s == ' ' || *s == '\t' || *s == '\r' || *s == '\n'))
		s++, len--;
	while (n < len && s[n] != '\n' && s[n] != '\r')
		n++;
	snprintf(out, outsz, "%.*s", (int)n, s);
}

/* The error text of an already parsed body (borrowed; may be NULL), else its first line. */
static void error_text(const json_t *body, const char *raw, size_t len, char *out, size_t outsz)
{
	const json_t *err = json_object_get(body, "error"); /* borrowed */
	const char *msg = json_string_value(err);

	if (!msg)
		msg = json_string_value(json_object_get(err, "message"));
	if (msg)
		copy_first_line(msg, strlen(msg), out, outsz);
	else
		copy_first_line(raw, len, out, outsz);
}

void backend_error_text(const char *body, size_t len, char *out, size_t outsz)
{
	/* An error body is read as far as its JSON goes: what follows does not matter. */
	json_t *j = json_loadb(body, len, JSON_DISABLE_EOF_CHECK, NULL);

	error_text(j, body, len, out, outsz);
	json_decref(j);
}

json_t *backend_messages(const struct chat_req *req)
{
	json_t *arr = json_array();
	size_t i;

	for (i = 0; i < req->nmsgs; i++) {
		const struct chat_msg *m = &req->msgs[i];

		json_t *o = json_object();
		const char *content = m->content ? m->content : "";

		json_object_set_new(o, "role", json_string(m->role ? m->role : "user"));
		/* Unchecked so that a message is never dropped silently: invalid UTF-8 (which no
		 * JSON source can hand us) makes json_dumps() fail the call instead. */
		json_object_set_new(o, "content", json_stringn_nocheck(content, strlen(content)));
		json_array_append_new(arr, o);
	}
	return arr;
}

int backend_option_int(const json_t *options, const char *key, long *out)
{
	const json_t *v = json_object_get(options, key); /* borrowed */
	double d;

	if (json_is_integer(v)) {
		*out = (long)json_integer_value(v);
		return 0;
	}
	/* 42.0 from a client's float formatting still means 42; the servers want an integer. */
	if (json_is_real(v)) {
		d = json_real_value(v);
		if (d == (double)(long)d) {
			*out = (long)d;
			return 0;
		}
	}
	return -1;
}

void backend_copy_sampling(json_t *dst, const json_t *options)
{
	static const char *const reals[] = {"temperature", "top_p"};
	static const char *const ints[] = {"seed", "top_k"};
	const json_t *v;
	size_t i;
	long n;

	for (i = 0; i < ARRAY_SIZE(reals); i++) {
		v = json_object_get(options, reals[i]); /* borrowed */
		if (json_is_number(v))
			json_object_set_new(dst, reals[i], json_real(json_number_value(v)));
	}
	for (i = 0; i < ARRAY_SIZE(ints); i++)
		if (!backend_option_int(options, ints[i], &n))
			json_object_set_new(dst, ints[i], json_integer(n));
	v = json_object_get(options, "stop"); /* borrowed */
	if (json_is_string(v))
		json_object_set_new(dst, "stop", json_pack("[O]", v));
	else if (json_is_array(v))
		json_object_set_new(dst, "stop", json_deep_copy(v));
}

json_t *backend_request_body(const struct chat_req *req)
{
	if (req->be->kind == BACKEND_LLAMA)
		return backend_llama_body(req);
	return backend_ollama_body(req);
}

int backend_probe(CURL *curl, const struct backend_cfg *be, json_t **models, int *slots,
		  struct perr *e)
{
	*models = NULL;
	if (slots)
		*slots = 0;
	if (be->kind == BACKEND_LLAMA)
		return backend_llama_probe(curl, be, models, slots, e);
	return backend_ollama_probe(curl, be, models, e);
}

int backend_error_transient(const struct perr *e, const struct chat_result *res)
{
	if (!e)
		return 0;
	/* A retry would show the reader the same text twice: never after partial output. */
	if (res && res->partial)
		return 0;
	return e->code == PERR_BACKEND_DOWN || e->code == PERR_BACKEND_BUSY;
}

/* What an HTTP error status means when the kind has nothing more particular to say. */
static int status_code(int status)
{
	switch (status) {
	case 408:
		return PERR_BACKEND_TIMEOUT;
	case 429:
	case 502:
	case 503:
	case 504:
		return PERR_BACKEND_BUSY;
	case 501:
		return PERR_BACKEND_REJECTED;
	}
	if (status >= 500)
		return PERR_BACKEND_ERROR;
	/* a redirect (a proxy, a login page, a wrong url) answers the same on every try */
	if (status >= 400 || (status >= 300 && status < 400))
		return PERR_BACKEND_REJECTED;
	return PERR_BACKEND_PROTOCOL;
}

static int chat_http_error(const struct chat_req *req, const struct transport_call *c,
			   struct perr *e)
{
	/* NULL: not json; anything after the JSON value is ignored */
	json_t *body = json_loadb(c->body.buf, c->body.len, JSON_DISABLE_EOF_CHECK, NULL);
	char text[160];
	const char *hint;
	int code = status_code(c->status);
	int rc;

	error_text(body, c->body.buf, c->body.len, text, sizeof(text));
	if (req->be->kind == BACKEND_LLAMA)
		rc = backend_llama_http_error(req, c->status, body, text, e);
	else
		rc = backend_ollama_http_error(req, c->status, body, text, e);
	json_decref(body);
	if (rc)
		return rc;
	switch (code) {
	case PERR_BACKEND_BUSY:
		hint = "retry later";
		break;
	case PERR_BACKEND_REJECTED:
		hint = c->status < 400 ? "the url answers with a redirect: point it at the server "
					 "itself"
				       : "check the model name and the job's options";
		break;
	case PERR_BACKEND_PROTOCOL:
		hint = "check that the url points at the server itself";
		break;
	default:
		hint = "check the server log";
		break;
	}
	return backend_fail(e, code, req->be, " answered HTTP %d for model '%s': %.100s; %s",
			    c->status, req->model, text[0] ? text : "(no message)", hint);
}

/* The parser refused the stream, or it ended early: say so with the backend and model. */
static int chat_stream_error(const struct chat_req *req, const struct transport_call *c,
			     CURLcode cc, const struct perr *se, struct perr *e)
{
	char reason[160];

	switch (se->code) {
	case PERR_CANCELLED:
		return backend_fail(e, PERR_CANCELLED, req->be,
				    ": the call for model '%s' was cancelled", req->model);
	case PERR_BACKEND_ERROR:
		return backend_fail(e, se->code, req->be,
				    ", model '%s': %.300s; check the server log", req->model,
				    se->msg);
	default:
		if (cc != CURLE_OK && cc != CURLE_WRITE_ERROR) {
			transport_reason(c, cc, reason, sizeof(reason));
			return backend_fail(
			    e, se->code, req->be,
			    " broke the connection in the middle of the reply from "
			    "model '%s' (%.60s), so the reply was cut short; check the "
			    "server log",
			    req->model, reason);
		}
		return backend_fail(e, se->code, req->be,
				    ", model '%s': %.300s; check the server log", req->model,
				    se->msg);
	}
}

/* State the delta callback needs. */
struct chat_call {
	const struct chat_req *req;
	struct chat_result *res;
	const struct transport_call *c;
	int cut; /* the reply reached max_reply_bytes: the rest was not read */
};

/* How much of delta fits in room bytes without cutting a UTF-8 character. */
static size_t fit_utf8(const char *delta, size_t len, size_t room)
{
	if (len <= room)
		return len;
	while (room > 0 && ((unsigned char)delta[room] & 0xc0) == 0x80)
		room--;
	return room;
}

static int chat_delta(void *ud, const char *delta, size_t len)
{
	struct chat_call *x = ud;
	size_t max = x->req->be->max_reply_bytes;

	if (x->res->m.ttft_ms < 0)
		x->res->m.ttft_ms = (double)(util_mono_us() - x->c->t0_us) / 1000.0;
	if (max && x->res->text.len + len > max) {
		len = fit_utf8(delta, len, max - x->res->text.len);
		x->cut = 1;
	}
	strbuf_add(&x->res->text, delta, len);
	if (x->cut) {
		if (len && x->req->on_token)
			x->req->on_token(x->req->ud, delta, len);
		return 1; /* stops the stream */
	}
	if (x->req->on_token)
		return x->req->on_token(x->req->ud, delta, len);
	return 0;
}

static int chat_outcome(const struct chat_req *req, struct transport_call *c, CURLcode cc,
			struct perr *e)
{
	struct perr se;

	/* A deadline that passed after the end marker cost nothing: the reply is whole. */
	if (c->abort != TRANSPORT_ABORT_NONE && c->abort != TRANSPORT_ABORT_CANCEL &&
	    c->stream->done)
		return chat_stream_finish(c->stream, &se) ? call_error(c, req->model, cc, e) : 0;
	if (c->abort != TRANSPORT_ABORT_NONE)
		return call_error(c, req->model, cc, e);
	if (c->stream_failed) {
		chat_stream_finish(c->stream, &se); /* hands back the failure */
		return chat_stream_error(req, c, cc, &se, e);
	}
	if (c->status / 100 == 2) {
		/* The end marker may have arrived before the connection broke: then all is well. */
		if (!chat_stream_finish(c->stream, &se))
			return 0;
		return chat_stream_error(req, c, cc, &se, e);
	}
	if (c->status)
		return chat_http_error(req, c, e);
	return call_error(c, req->model, cc, e);
}

int backend_chat(CURL *curl, const struct chat_req *req, struct chat_result *res, struct perr *e)
{
	const struct backend_cfg *be = req->be;
	int llama = be && be->kind == BACKEND_LLAMA;
	struct chat_stream cs;
	struct chat_call x;
	struct transport_call c;
	json_t *body;
	char *payload;
	CURLcode cc;
	curl_off_t retry_after = 0;
	int rc;

	memset(res, 0, sizeof(*res));
	strbuf_init(&res->text, 0);
	chat_metrics_init(&res->m);
	if (!be || !req->model || !*req->model)
		return perr_set(e, PERR_INVALID, "backend call without a backend or a model");

	body = backend_request_body(req);
	payload = json_dumps(body, JSON_COMPACT);
	json_decref(body);
	if (!payload)
		return backend_fail(e, PERR_INTERNAL, be,
				    ": cannot encode the request for model '%s': a message is not "
				    "valid UTF-8",
				    req->model);

	x.req = req;
	x.res = res;
	x.c = &c;
	x.cut = 0;
	chat_stream_init(&cs, llama ? STREAM_SSE : STREAM_NDJSON, &res->m, chat_delta, &x);
	transport_init(&c, curl, be, &cs, ERROR_BODY_MAX);
	c.cancel = req->cancel;
	transport_setup(&c, llama ? "/v1/chat/completions" : "/api/chat", payload,
			llama ? "Accept: text/event-stream" : "Accept: application/x-ndjson");
	cc = transport_run(&c);
	res->m.wall_ms = (double)(util_mono_us() - c.t0_us) / 1000.0;
	res->http_status = c.status;
	if ((c.status == 429 || c.status == 503) &&
	    curl_easy_getinfo(curl, CURLINFO_RETRY_AFTER, &retry_after) == CURLE_OK &&
	    retry_after > 0)
		res->retry_after_ms = (long)retry_after * 1000;

	if (x.cut &&
	    !(c.abort == TRANSPORT_ABORT_CANCEL || (req->cancel && atomic_load(req->cancel)))) {
		/* the text so far is the turn: a retry would only stream as much again */
		rc = 0;
		snprintf(res->m.finish_reason, sizeof(res->m.finish_reason), "length");
		snprintf(res->note, sizeof(res->note),
			 "the reply was cut at max_reply_bytes (%zu bytes): the backend was still "
			 "sending",
			 be->max_reply_bytes);
	} else if (c.flooded) {
		rc = backend_fail(e, PERR_BACKEND_ERROR, be,
				  ", model '%s': sent more than %zu bytes for one reply, with %zu "
				  "bytes of text; check the server",
				  req->model, c.received_max, res->text.len);
	} else {
		rc = chat_outcome(req, &c, cc, e);
	}
	if (cs.repaired) {
		size_t used = strlen(res->note);
		snprintf(res->note + used, sizeof(res->note) - used,
			 "%s%zu bytes of the reply were not UTF-8 (or were lone surrogates): "
			 "replaced by U+FFFD",
			 used ? " | " : "", cs.repaired);
	}
	res->partial = rc && res->text.len > 0;

	transport_release(&c);
	chat_stream_release(&cs);
	free(payload);
	return rc;
}
