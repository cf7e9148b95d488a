/*
 * backend.c - what both kinds of model server share: names, metrics, the curl transfer with
 * its deadlines, the mapping of failures to error codes, and dispatch by kind.
 *
 * DESIGN: a call runs on its worker's thread from start to end. The caller's easy handle is
 * reset, configured, and driven by a curl multi handle that belongs to the thread (made on
 * first use, freed when the thread exits). Owning the multi keeps connections cached across
 * turns, as curl_easy_perform() would, and lets the wait be cut into 100 ms polls: the
 * xferinfo callback then runs at least ten times a second even while the server is silent
 * (curl_easy_perform() waits up to a second), and it enforces the cancel flag and the
 * deadlines of each phase: first body byte (model load plus prompt processing), idle gap
 * between bytes, and total; connecting is bounded by CURLOPT_CONNECTTIMEOUT_MS. A 2xx body
 * goes from the write callback straight into the stream parser; any other body is kept, up
 * to 64 KiB, for the kind to read the server's error from. Messages always say which backend
 * (name and URL), which model, and what to do about it.
 */
#include "server/backend.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/stream.h"

#define ERROR_BODY_MAX (64 * 1024)
#define PROBE_BODY_MAX (1024 * 1024)
#define PROBE_TIMEOUT_MS 2000L
#define POLL_MS 100

#define DEFAULT_CONNECT_MS 3000L
#define DEFAULT_FIRST_BYTE_MS 300000L
#define DEFAULT_IDLE_OLLAMA_MS 120000L
#define DEFAULT_IDLE_LLAMA_MS 60000L
#define DEFAULT_TOTAL_MS 1800000L

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

/*
 * The curl multi handle of the calling thread. Every worker thread gets its own; nothing
 * else touches it, so it needs no lock.
 */
static pthread_once_t multi_once = PTHREAD_ONCE_INIT;
static pthread_key_t multi_key;

static void multi_free(void *multi)
{
	curl_multi_cleanup(multi);
}

static void multi_key_create(void)
{
	if (pthread_key_create(&multi_key, multi_free)) {
		fprintf(stderr, "fatal: cannot create a thread key for curl\n");
		abort();
	}
}

static CURLM *thread_multi(void)
{
	CURLM *multi;

	pthread_once(&multi_once, multi_key_create);
	multi = pthread_getspecific(multi_key);
	if (!multi) {
		multi = curl_multi_init();
		if (multi && pthread_setspecific(multi_key, multi)) {
			curl_multi_cleanup(multi);
			multi = NULL;
		}
	}
	return multi;
}

enum call_abort {
	ABORT_NONE,
	ABORT_CANCEL,
	ABORT_FIRST_BYTE,
	ABORT_IDLE,
	ABORT_TOTAL,
};

/* One HTTP exchange. */
struct call {
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
	enum call_abort abort;
	struct curl_slist *headers;
	const char *path; /* for messages: "/health" */
	char url[1024];
};

static size_t call_write(char *ptr, size_t size, size_t nmemb, void *ud)
{
	struct call *c = ud;
	size_t n = size * nmemb;

	c->last_byte_us = util_mono_us();
	if (!c->first_byte_us) {
		long status = 0;

		c->first_byte_us = c->last_byte_us;
		curl_easy_getinfo(c->curl, CURLINFO_RESPONSE_CODE, &status);
		c->status = (int)status;
	}
	if (c->stream && c->status / 100 == 2) {
		c->received += n;
		if (c->received_max && c->received > c->received_max) {
			c->flooded = 1;
			return 0;
		}
		if (chat_stream_feed(c->stream, ptr, n, NULL)) {
			c->stream_failed = 1;
			return 0; /* not n: curl aborts with CURLE_WRITE_ERROR */
		}
		return n;
	}
	if (c->body.len < c->body_max) {
		size_t room = c->body_max - c->body.len;

		strbuf_add(&c->body, ptr, n < room ? n : room);
		c->body_cut |= n > room;
	} else {
		/* Read on rather than abort, so that the connection can be reused. */
		c->body_cut |= n > 0;
	}
	return n;
}

static int call_progress(void *ud, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
			 curl_off_t ulnow)
{
	struct call *c = ud;
	int64_t now = util_mono_us();

	(void)dltotal, (void)dlnow, (void)ultotal, (void)ulnow;
	if (c->cancel && atomic_load(c->cancel))
		c->abort = ABORT_CANCEL;
	else if (now - c->t0_us > (int64_t)c->total_ms * 1000)
		c->abort = ABORT_TOTAL;
	else if (!c->first_byte_us && now - c->t0_us > (int64_t)c->first_byte_ms * 1000)
		c->abort = ABORT_FIRST_BYTE;
	else if (c->first_byte_us && now - c->last_byte_us > (int64_t)c->idle_ms * 1000)
		c->abort = ABORT_IDLE;
	return c->abort != ABORT_NONE;
}

static long pick_ms(long configured, long dflt)
{
	return configured > 0 ? configured : dflt;
}

static void call_init(struct call *c, CURL *curl, const struct backend_cfg *be,
		      struct chat_stream *stream, size_t body_max)
{
	memset(c, 0, sizeof(*c));
	c->curl = curl;
	c->be = be;
	c->stream = stream;
	strbuf_init(&c->body, 0);
	c->body_max = body_max;
	c->connect_ms = pick_ms(be->connect_timeout_ms, DEFAULT_CONNECT_MS);
	c->first_byte_ms = pick_ms(be->first_byte_timeout_ms, DEFAULT_FIRST_BYTE_MS);
	c->idle_ms =
	    pick_ms(be->idle_timeout_ms,
		    be->kind == BACKEND_LLAMA ? DEFAULT_IDLE_LLAMA_MS : DEFAULT_IDLE_OLLAMA_MS);
	c->total_ms = pick_ms(be->total_timeout_ms, DEFAULT_TOTAL_MS);
}

static void call_release(struct call *c)
{
	strbuf_release(&c->body);
	curl_slist_free_all(c->headers);
	c->headers = NULL;
}

/* Configures the caller's handle for one request; post is NULL for a GET. */
static void call_setup(struct call *c, const char *path, const char *post, const char *accept)
{
	CURL *curl = c->curl;
	const char *base = c->be->url ? c->be->url : "";
	size_t blen = strlen(base);

	while (blen && base[blen - 1] == '/')
		blen--;
	snprintf(c->url, sizeof(c->url), "%.*s%s", (int)blen, base, path);
	c->path = path;

	/* The reset keeps live connections; they live in the thread's multi handle anyway. */
	curl_easy_reset(curl);
	curl_easy_setopt(curl, CURLOPT_URL, c->url);
	curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(curl, CURLOPT_TCP_KEEPALIVE, 1L);
	curl_easy_setopt(curl, CURLOPT_TCP_KEEPIDLE, 30L);
	curl_easy_setopt(curl, CURLOPT_TCP_KEEPINTVL, 15L);
	curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, c->connect_ms);
	curl_easy_setopt(curl, CURLOPT_USERAGENT, "parleyd");
	curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, call_write);
	curl_easy_setopt(curl, CURLOPT_WRITEDATA, c);
	curl_easy_setopt(curl, CURLOPT_NOPROGRESS, 0L);
	curl_easy_setopt(curl, CURLOPT_XFERINFOFUNCTION, call_progress);
	curl_easy_setopt(curl, CURLOPT_XFERINFODATA, c);

	c->headers = curl_slist_append(c->headers, accept);
	if (post) {
		c->headers = curl_slist_append(c->headers, "Content-Type: application/json");
		/* curl would wait for "100 Continue" before sending a long history. */
		c->headers = curl_slist_append(c->headers, "Expect:");
		curl_easy_setopt(curl, CURLOPT_POSTFIELDS, post);
		curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(post));
	} else {
		curl_easy_setopt(curl, CURLOPT_HTTPGET, 1L);
	}
	curl_easy_setopt(curl, CURLOPT_HTTPHEADER, c->headers);
}

/* Runs the configured transfer to its end; returns curl's result for it. */
static CURLcode call_run(struct call *c)
{
	CURLM *multi = thread_multi();
	CURLcode cc = CURLE_FAILED_INIT;
	CURLMsg *msg;
	long status = 0;
	int running = 1, left;

	c->t0_us = util_mono_us();
	if (!multi || curl_multi_add_handle(multi, c->curl) != CURLM_OK)
		return CURLE_FAILED_INIT;
	while (running) {
		if (curl_multi_perform(multi, &running) != CURLM_OK)
			break;
		if (running && curl_multi_poll(multi, NULL, 0, POLL_MS, NULL) != CURLM_OK)
			break;
	}
	while ((msg = curl_multi_info_read(multi, &left)))
		if (msg->msg == CURLMSG_DONE && msg->easy_handle == c->curl)
			cc = msg->data.result;
	curl_multi_remove_handle(multi, c->curl);
	/* A response without a body never reached call_write(). */
	curl_easy_getinfo(c->curl, CURLINFO_RESPONSE_CODE, &status);
	c->status = (int)status;
	return cc;
}

/* "connection refused" rather than curl's "Couldn't connect to server". */
static void transport_reason(const struct call *c, CURLcode cc, char *out, size_t outsz)
{
	long oserr = 0;
	char buf[128];
	const char *s;

	curl_easy_getinfo(c->curl, CURLINFO_OS_ERRNO, &oserr);
	if (oserr && cc != CURLE_OPERATION_TIMEDOUT)
		s = strerror_r((int)oserr, buf, sizeof(buf));
	else if (cc == CURLE_OPERATION_TIMEDOUT)
		s = "no connection within the connect timeout";
	else
		s = curl_easy_strerror(cc);
	snprintf(out, outsz, "%s", s);
	if (out[0] >= 'A' && out[0] <= 'Z' && !(out[1] >= 'A' && out[1] <= 'Z'))
		out[0] = (char)(out[0] - 'A' + 'a');
}

/* A call that ended without a response to interpret: deadlines, cancel, network. */
static int call_transport_error(const struct call *c, const char *model, CURLcode cc,
				struct perr *e)
{
	const struct backend_cfg *be = c->be;
	char reason[160], hint[96];
	char mclause[160] = "";

	if (model)
		snprintf(mclause, sizeof(mclause), " for model '%s'", model);
	switch (c->abort) {
	case ABORT_CANCEL:
		return backend_fail(e, PERR_CANCELLED, be, ": the call%s was cancelled", mclause);
	case ABORT_FIRST_BYTE:
		if (!model)
			break;
		return backend_fail(
		    e, PERR_BACKEND_TIMEOUT, be,
		    " sent nothing for %ld ms%s (model load and prompt processing); "
		    "raise first_byte_timeout_ms or use a smaller model or prompt",
		    c->first_byte_ms, mclause);
	case ABORT_IDLE:
		if (!model)
			break;
		return backend_fail(e, PERR_BACKEND_TIMEOUT, be,
				    " went silent for %ld ms in the middle of the reply%s; raise "
				    "idle_timeout_ms or check the server",
				    c->idle_ms, mclause);
	case ABORT_TOTAL:
		if (!model)
			break;
		return backend_fail(e, PERR_BACKEND_TIMEOUT, be,
				    " did not finish the reply%s within %ld ms; raise "
				    "total_timeout_ms or lower num_predict",
				    mclause, c->total_ms);
	case ABORT_NONE:
		break;
	}
	if (c->abort != ABORT_NONE)
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
	struct call c;
	CURLcode cc;
	int rc = 0;

	call_init(&c, curl, be, NULL, PROBE_BODY_MAX);
	if (c.connect_ms > PROBE_TIMEOUT_MS)
		c.connect_ms = PROBE_TIMEOUT_MS;
	c.first_byte_ms = c.idle_ms = c.total_ms = PROBE_TIMEOUT_MS;
	call_setup(&c, path, NULL, "Accept: application/json");
	cc = call_run(&c);
	*status = c.status;
	if (c.abort == ABORT_NONE && c.status && (cc == CURLE_OK || c.status / 100 != 2)) {
		if (c.body_cut && c.status / 100 == 2)
			rc =
			    backend_fail(e, PERR_BACKEND_PROTOCOL, be,
					 " answered GET %s with more than %d bytes; check that the "
					 "url points at a %s",
					 path, PROBE_BODY_MAX, backend_kind_name(be->kind));
		else
			strbuf_add(body, c.body.buf, c.body.len);
	} else {
		rc = call_transport_error(&c, NULL, cc, e);
	}
	call_release(&c);
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

static int chat_http_error(const struct chat_req *req, const struct call *c, struct perr *e)
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
static int chat_stream_error(const struct chat_req *req, const struct call *c, CURLcode cc,
			     const struct perr *se, struct perr *e)
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
	const struct call *c;
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

static int chat_outcome(const struct chat_req *req, struct call *c, CURLcode cc, struct perr *e)
{
	struct perr se;

	/* A deadline that passed after the end marker cost nothing: the reply is whole. */
	if (c->abort != ABORT_NONE && c->abort != ABORT_CANCEL && c->stream->done)
		return chat_stream_finish(c->stream, &se)
			   ? call_transport_error(c, req->model, cc, e)
			   : 0;
	if (c->abort != ABORT_NONE)
		return call_transport_error(c, req->model, cc, e);
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
	return call_transport_error(c, req->model, cc, e);
}

int backend_chat(CURL *curl, const struct chat_req *req, struct chat_result *res, struct perr *e)
{
	const struct backend_cfg *be = req->be;
	int llama = be && be->kind == BACKEND_LLAMA;
	struct chat_stream cs;
	struct chat_call x;
	struct call c;
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
	call_init(&c, curl, be, &cs, ERROR_BODY_MAX);
	c.cancel = req->cancel;
	c.received_max = be->max_reply_bytes * BACKEND_CALL_BYTES_PER_REPLY_BYTE;
	call_setup(&c, llama ? "/v1/chat/completions" : "/api/chat", payload,
		   llama ? "Accept: text/event-stream" : "Accept: application/x-ndjson");
	cc = call_run(&c);
	res->m.wall_ms = (double)(util_mono_us() - c.t0_us) / 1000.0;
	res->http_status = c.status;
	if ((c.status == 429 || c.status == 503) &&
	    curl_easy_getinfo(curl, CURLINFO_RETRY_AFTER, &retry_after) == CURLE_OK &&
	    retry_after > 0)
		res->retry_after_ms = (long)retry_after * 1000;

	if (x.cut && !(c.abort == ABORT_CANCEL || (req->cancel && atomic_load(req->cancel)))) {
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

	call_release(&c);
	chat_stream_release(&cs);
	free(payload);
	return rc;
}
