/*
 * check_backend.c - backend calls as a worker sees them: the request each kind of server gets,
 * and what a failure looks like (code, message, whether to retry).
 *
 * The chat and probe tests talk over real sockets to a small scripted HTTP server in this
 * file, which answers with real llama-server captures (../shared/fixtures/llama-server, or
 * $PARLEY_SHARED/fixtures/llama-server) and with Ollama's documented shapes, cut into pieces
 * and delayed, cut off, or silent, as the test needs.
 */
#include <arpa/inet.h>
#include <check.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "server/backend.h"
#include "tests/harness.h"

/* ---- helpers ---- */

static char *read_fixture(const char *name);

/* The captured error bodies end with their status, " [400]": that is not the body. */
static char *read_error_fixture(const char *name)
{
	char *body = read_fixture(name);
	char *tag = strrchr(body, '[');

	if (tag && tag > body && tag[-1] == ' ')
		tag[-1] = '\0';
	return body;
}

static char *read_fixture(const char *name)
{
	char rel[256];
	char *buf;

	snprintf(rel, sizeof(rel), "llama-server/%s", name);
	buf = harness_fixture(rel, NULL);
	ck_assert_msg(buf != NULL,
		      "cannot read fixture '%s' (run from the repo root or set PARLEY_SHARED)",
		      rel);
	return buf;
}

#define ck_assert_has(hay, needle)                                                                 \
	ck_assert_msg(strstr((hay), (needle)) != NULL, "'%s' does not contain '%s'", (hay),        \
		      (needle))

/* A port on 127.0.0.1 that nothing listens on. */
static int closed_port(void)
{
	struct sockaddr_in sa = {.sin_family = AF_INET};
	socklen_t sl = sizeof(sa);
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ck_assert_int_eq(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&sa, &sl), 0);
	close(fd);
	return ntohs(sa.sin_port);
}

/* ---- a scripted HTTP server ---- */

struct route {
	const char *req; /* "POST /api/chat" */
	int status;
	const char *headers; /* extra header lines, each ending in "\r\n"; may be NULL */
	const char *body;    /* may be NULL */
	size_t piece;	     /* send the body in pieces of this many bytes; 0: at once */
	int piece_ms;	     /* pause before each piece */
	int wait_ms;	     /* pause before the status line: a model loading */
	int hang_ms;	     /* pause after the body, before ending it: a model gone quiet */
	int cut;	     /* close without ending the chunked body */
};

struct fake {
	int fd;
	int port;
	pthread_t thread;
	atomic_int stop;
	const struct route *routes;
	size_t nroutes;
	pthread_mutex_t lock; /* guards requests and last_body */
	int requests;
	struct strbuf last_body; /* body of the last request */
};

/* Sleeps ms, or less once the test is over. */
static void nap(struct fake *f, int ms)
{
	while (ms > 0 && !atomic_load(&f->stop)) {
		util_sleep_ms(ms < 10 ? ms : 10);
		ms -= 10;
	}
}

static void send_all(int fd, const void *p, size_t n)
{
	const char *s = p;
	ssize_t w;

	while (n && (w = send(fd, s, n, MSG_NOSIGNAL)) > 0) {
		s += w;
		n -= (size_t)w;
	}
}

static void send_chunk(int fd, const char *p, size_t n)
{
	char head[32];

	snprintf(head, sizeof(head), "%zx\r\n", n);
	send_all(fd, head, strlen(head));
	send_all(fd, p, n);
	send_all(fd, "\r\n", 2);
}

/* Reads one request; returns its "METHOD /path" line in line. */
static int read_request(struct fake *f, int fd, char *line, size_t linesz)
{
	struct strbuf in;
	char buf[4096], method[16], path[201], *end, *cl;
	size_t need = 0, head;
	ssize_t r;

	strbuf_init(&in, 0);
	while (!(end = strstr(in.buf, "\r\n\r\n"))) {
		if ((r = recv(fd, buf, sizeof(buf), 0)) <= 0) {
			strbuf_release(&in);
			return -1;
		}
		strbuf_add(&in, buf, (size_t)r);
	}
	head = (size_t)(end - in.buf) + 4;
	for (cl = in.buf; cl < end; cl++)
		if (!strncasecmp(cl, "\r\nContent-Length:", 17))
			need = strtoul(cl + 17, NULL, 10);
	while (in.len < head + need && (r = recv(fd, buf, sizeof(buf), 0)) > 0)
		strbuf_add(&in, buf, (size_t)r);
	if (sscanf(in.buf, "%15s %200s", method, path) == 2)
		snprintf(line, linesz, "%s %s", method, path);
	pthread_mutex_lock(&f->lock);
	f->requests++;
	strbuf_reset(&f->last_body);
	strbuf_add(&f->last_body, in.buf + head, in.len - head);
	pthread_mutex_unlock(&f->lock);
	strbuf_release(&in);
	return 0;
}

static void serve(struct fake *f, int fd)
{
	static const struct route not_found = {.status = 404,
					       .body = "{\"error\":\"404 page not found\"}"};
	const struct route *rt = &not_found;
	char line[256] = "", head[512];
	size_t i, off, len;

	if (read_request(f, fd, line, sizeof(line)))
		return;
	for (i = 0; i < f->nroutes; i++)
		if (!strcmp(f->routes[i].req, line))
			rt = &f->routes[i];
	nap(f, rt->wait_ms);
	snprintf(head, sizeof(head),
		 "HTTP/1.1 %d Scripted\r\nContent-Type: application/json\r\n"
		 "Transfer-Encoding: chunked\r\nConnection: close\r\n%s\r\n",
		 rt->status, rt->headers ? rt->headers : "");
	send_all(fd, head, strlen(head));
	len = rt->body ? strlen(rt->body) : 0;
	for (off = 0; off < len && !atomic_load(&f->stop);) {
		size_t n = rt->piece && rt->piece < len - off ? rt->piece : len - off;

		nap(f, rt->piece_ms);
		send_chunk(fd, rt->body + off, n);
		off += n;
	}
	nap(f, rt->hang_ms);
	if (!rt->cut)
		send_all(fd, "0\r\n\r\n", 5);
}

static void *fake_main(void *ud)
{
	struct fake *f = ud;

	while (!atomic_load(&f->stop)) {
		struct pollfd p = {.fd = f->fd, .events = POLLIN};
		int c;

		if (poll(&p, 1, 20) <= 0)
			continue;
		if ((c = accept(f->fd, NULL, NULL)) < 0)
			continue;
		serve(f, c);
		shutdown(c, SHUT_WR);
		close(c);
	}
	return NULL;
}

static void fake_start(struct fake *f, const struct route *routes, size_t n)
{
	struct sockaddr_in sa = {.sin_family = AF_INET};
	socklen_t sl = sizeof(sa);

	memset(f, 0, sizeof(*f));
	f->routes = routes;
	f->nroutes = n;
	pthread_mutex_init(&f->lock, NULL);
	strbuf_init(&f->last_body, 0);
	f->fd = socket(AF_INET, SOCK_STREAM, 0);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ck_assert_int_eq(bind(f->fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	ck_assert_int_eq(listen(f->fd, 16), 0);
	ck_assert_int_eq(getsockname(f->fd, (struct sockaddr *)&sa, &sl), 0);
	f->port = ntohs(sa.sin_port);
	ck_assert_int_eq(pthread_create(&f->thread, NULL, fake_main, f), 0);
}

static void fake_stop(struct fake *f)
{
	atomic_store(&f->stop, 1);
	pthread_join(f->thread, NULL);
	close(f->fd);
	strbuf_release(&f->last_body);
	pthread_mutex_destroy(&f->lock);
}

/* ---- a worker's view ---- */

struct world {
	struct backend_cfg be;
	char url[64];
	CURL *curl;
	struct chat_msg msgs[2];
	struct chat_req req;
	struct chat_result res;
	struct perr e;
	int rc;
	struct strbuf tokens; /* what on_token saw */
	int stop_tokens_at;   /* on_token asks to stop at this call; 0: never */
	int ntokens;
};

static int on_token(void *ud, const char *delta, size_t len)
{
	struct world *w = ud;

	strbuf_add(&w->tokens, delta, len);
	return ++w->ntokens == w->stop_tokens_at;
}

/* Sets up a backend of the kind at port (0: a closed port), asking for model. */
static void world_init(struct world *w, enum backend_kind kind, int port, const char *model)
{
	memset(w, 0, sizeof(*w));
	snprintf(w->url, sizeof(w->url), "http://127.0.0.1:%d", port ? port : closed_port());
	w->be.name = kind == BACKEND_LLAMA ? "llama" : "ollama";
	w->be.kind = kind;
	w->be.url = w->url;
	w->curl = curl_easy_init();
	ck_assert_ptr_nonnull(w->curl);
	w->msgs[0] = (struct chat_msg){"system", "You are the candidate."};
	w->msgs[1] = (struct chat_msg){"user", "How do you speed up retrieval?"};
	w->req.be = &w->be;
	w->req.model = model;
	w->req.msgs = w->msgs;
	w->req.nmsgs = 2;
	w->req.on_token = on_token;
	w->req.ud = w;
	strbuf_init(&w->tokens, 0);
}

static void world_chat(struct world *w)
{
	w->rc = backend_chat(w->curl, &w->req, &w->res, &w->e);
}

static void world_release(struct world *w)
{
	chat_result_release(&w->res);
	strbuf_release(&w->tokens);
	curl_easy_cleanup(w->curl);
}

/* ---- names and defaults ---- */

START_TEST(test_kind_names)
{
	enum backend_kind k;

	ck_assert_int_eq(backend_kind_parse("ollama", &k), 0);
	ck_assert_int_eq(k, BACKEND_OLLAMA);
	ck_assert_int_eq(backend_kind_parse("llama-server", &k), 0);
	ck_assert_int_eq(k, BACKEND_LLAMA);
	ck_assert_str_eq(backend_kind_name(BACKEND_OLLAMA), "ollama");
	ck_assert_str_eq(backend_kind_name(BACKEND_LLAMA), "llama-server");
	ck_assert_int_eq(backend_kind_parse("vllm", &k), -1);
	ck_assert_int_eq(backend_kind_parse("", &k), -1);
}
END_TEST

START_TEST(test_metrics_start_unknown)
{
	struct chat_metrics m;

	memset(&m, 0, sizeof(m));
	chat_metrics_init(&m);
	ck_assert_int_eq(m.prompt_tokens, -1);
	ck_assert_int_eq(m.cached_tokens, -1);
	ck_assert_int_eq(m.completion_tokens, -1);
	ck_assert(m.wall_ms < 0 && m.ttft_ms < 0 && m.prompt_ms < 0 && m.gen_ms < 0);
	ck_assert(m.tokens_per_s < 0 && m.load_ms < 0);
	ck_assert_str_eq(m.finish_reason, "");
}
END_TEST

/* ---- request bodies ---- */

START_TEST(test_ollama_body_defaults)
{
	struct world w;
	json_t *b, *opts, *msgs;

	world_init(&w, BACKEND_OLLAMA, 1, "gemma3:1b");
	b = backend_request_body(&w.req);
	ck_assert_str_eq(json_string_value(json_object_get(b, "model")), "gemma3:1b");
	ck_assert(json_is_true(json_object_get(b, "stream")));
	ck_assert(json_is_false(json_object_get(b, "think")));
	ck_assert_str_eq(json_string_value(json_object_get(b, "keep_alive")), "30m");
	msgs = json_object_get(b, "messages");
	ck_assert_uint_eq(json_array_size(msgs), 2);
	ck_assert_str_eq(json_string_value(json_object_get(json_array_get(msgs, 0), "role")),
			 "system");
	ck_assert_str_eq(json_string_value(json_object_get(json_array_get(msgs, 1), "content")),
			 "How do you speed up retrieval?");
	opts = json_object_get(b, "options");
	/* always sent: Ollama's own default has changed between versions */
	ck_assert_int_eq(json_integer_value(json_object_get(opts, "num_ctx")), 8192);
	ck_assert_ptr_null(json_object_get(opts, "num_predict"));
	ck_assert_ptr_null(json_object_get(opts, "temperature"));
	json_decref(b);

	/* the backend's own num_ctx and keep_alive */
	w.be.num_ctx = 4096;
	w.be.keep_alive = "1h";
	b = backend_request_body(&w.req);
	ck_assert_int_eq(
	    json_integer_value(json_object_get(json_object_get(b, "options"), "num_ctx")), 4096);
	ck_assert_str_eq(json_string_value(json_object_get(b, "keep_alive")), "1h");
	json_decref(b);

	/* a bare number of seconds goes as a number: Ollama refuses the string "3600" */
	w.be.keep_alive = "3600";
	b = backend_request_body(&w.req);
	ck_assert(json_is_integer(json_object_get(b, "keep_alive")));
	ck_assert_int_eq(json_integer_value(json_object_get(b, "keep_alive")), 3600);
	json_decref(b);
	world_release(&w);
}
END_TEST

START_TEST(test_ollama_body_job_options)
{
	struct world w;
	json_t *b, *opts, *jopts;

	world_init(&w, BACKEND_OLLAMA, 1, "gemma3:1b");
	w.be.num_ctx = 4096;
	jopts = json_pack("{s:f, s:i, s:i, s:i, s:f, s:i, s:[s]}", "temperature", 0.7, "seed", 42,
			  "num_predict", 1024, "num_ctx", 16384, "top_p", 0.9, "top_k", 40, "stop",
			  "###");
	w.req.options = jopts;
	b = backend_request_body(&w.req);
	opts = json_object_get(b, "options");
	ck_assert_double_eq_tol(json_number_value(json_object_get(opts, "temperature")), 0.7, 1e-9);
	ck_assert_int_eq(json_integer_value(json_object_get(opts, "seed")), 42);
	ck_assert_int_eq(json_integer_value(json_object_get(opts, "num_predict")), 1024);
	ck_assert_int_eq(json_integer_value(json_object_get(opts, "num_ctx")), 16384);
	ck_assert_double_eq_tol(json_number_value(json_object_get(opts, "top_p")), 0.9, 1e-9);
	ck_assert_int_eq(json_integer_value(json_object_get(opts, "top_k")), 40);
	ck_assert_str_eq(json_string_value(json_array_get(json_object_get(opts, "stop"), 0)),
			 "###");
	/* options live under "options" for Ollama, not at the top */
	ck_assert_ptr_null(json_object_get(b, "temperature"));
	ck_assert_ptr_null(json_object_get(b, "max_tokens"));
	json_decref(b);
	json_decref(jopts);
	world_release(&w);
}
END_TEST

START_TEST(test_llama_body)
{
	struct world w;
	json_t *b, *jopts;

	world_init(&w, BACKEND_LLAMA, 1, "stories260K");
	jopts = json_pack("{s:f, s:i, s:i, s:i, s:s}", "temperature", 0.2, "seed", 7, "num_predict",
			  256, "num_ctx", 16384, "stop", "THE END");
	w.req.options = jopts;
	b = backend_request_body(&w.req);
	ck_assert_str_eq(json_string_value(json_object_get(b, "model")), "stories260K");
	ck_assert(json_is_true(json_object_get(b, "stream")));
	ck_assert(
	    json_is_true(json_object_get(json_object_get(b, "stream_options"), "include_usage")));
	ck_assert(json_is_true(json_object_get(b, "cache_prompt")));
	ck_assert_int_eq(json_integer_value(json_object_get(b, "max_tokens")), 256);
	ck_assert_double_eq_tol(json_number_value(json_object_get(b, "temperature")), 0.2, 1e-9);
	ck_assert_int_eq(json_integer_value(json_object_get(b, "seed")), 7);
	ck_assert_str_eq(json_string_value(json_array_get(json_object_get(b, "stop"), 0)),
			 "THE END");
	ck_assert_uint_eq(json_array_size(json_object_get(b, "messages")), 2);
	/* llama-server's context is fixed at its start; Ollama's fields are not sent */
	ck_assert_ptr_null(json_object_get(b, "num_ctx"));
	ck_assert_ptr_null(json_object_get(b, "options"));
	ck_assert_ptr_null(json_object_get(b, "think"));
	/* not pinned: llama-server picks the slot */
	ck_assert_ptr_null(json_object_get(b, "id_slot"));
	json_decref(b);
	/* pinned to the slot that holds the conversation-role's prefix (server/fleet.h) */
	w.req.pinned = 1;
	w.req.id_slot = 0;
	b = backend_request_body(&w.req);
	ck_assert(json_is_integer(json_object_get(b, "id_slot")));
	ck_assert_int_eq(json_integer_value(json_object_get(b, "id_slot")), 0);
	ck_assert(json_is_true(json_object_get(b, "cache_prompt")));
	json_decref(b);
	w.req.pinned = 0;
	json_decref(jopts);

	/* no options at all: no max_tokens */
	w.req.options = NULL;
	b = backend_request_body(&w.req);
	ck_assert_ptr_null(json_object_get(b, "max_tokens"));
	json_decref(b);
	world_release(&w);
}
END_TEST

/* structured output: the schema goes as Ollama's "format" and llama-server's "json_schema" */
static json_t *grade_schema(void)
{
	return json_pack("{s:s, s:{s:{s:s}, s:{s:s, s:i, s:i}}, s:[s, s]}", "type", "object",
			 "properties", "why", "type", "string", "score", "type", "number",
			 "minimum", 0, "maximum", 10, "required", "why", "score");
}

START_TEST(test_ollama_body_format)
{
	struct world w;
	json_t *b, *schema = grade_schema();

	world_init(&w, BACKEND_OLLAMA, 1, "judge:1b");
	b = backend_request_body(&w.req);
	ck_assert_ptr_null(json_object_get(b, "format"));
	json_decref(b);
	w.req.format = schema;
	b = backend_request_body(&w.req);
	ck_assert(json_equal(json_object_get(b, "format"), schema));
	ck_assert_ptr_null(json_object_get(b, "json_schema"));
	/* still a streamed chat with the usual fields */
	ck_assert(json_is_true(json_object_get(b, "stream")));
	ck_assert_uint_eq(json_array_size(json_object_get(b, "messages")), 2);
	json_decref(b);
	/* the schema was borrowed, not stolen */
	ck_assert_int_eq(schema->refcount, 1);
	json_decref(schema);
	world_release(&w);
}
END_TEST

START_TEST(test_llama_body_format)
{
	struct world w;
	json_t *b, *schema = grade_schema();

	world_init(&w, BACKEND_LLAMA, 1, "judge");
	b = backend_request_body(&w.req);
	ck_assert_ptr_null(json_object_get(b, "json_schema"));
	json_decref(b);
	w.req.format = schema;
	b = backend_request_body(&w.req);
	ck_assert(json_equal(json_object_get(b, "json_schema"), schema));
	ck_assert_ptr_null(json_object_get(b, "format"));
	ck_assert(json_is_true(json_object_get(b, "stream")));
	json_decref(b);
	ck_assert_int_eq(schema->refcount, 1);
	json_decref(schema);
	world_release(&w);
}
END_TEST

/* ---- nothing listening ---- */

START_TEST(test_chat_connection_refused_ollama)
{
	struct world w;

	world_init(&w, BACKEND_OLLAMA, 0, "gemma3:1b");
	world_chat(&w);
	ck_assert_int_eq(w.rc, -1);
	ck_assert_int_eq(w.e.code, PERR_BACKEND_DOWN);
	ck_assert_has(w.e.msg, "backend 'ollama'");
	ck_assert_has(w.e.msg, w.url);
	ck_assert_has(w.e.msg, "model 'gemma3:1b'");
	ck_assert_has(w.e.msg, "connection refused");
	ck_assert_has(w.e.msg, "ollama serve");
	ck_assert(backend_error_transient(&w.e, &w.res));
	ck_assert_int_eq(w.res.http_status, 0);
	ck_assert_int_eq(w.res.partial, 0);
	ck_assert_uint_eq(w.res.text.len, 0);
	ck_assert_int_eq(w.res.m.prompt_tokens, -1);
	world_release(&w);
}
END_TEST

START_TEST(test_chat_connection_refused_llama)
{
	struct world w;

	world_init(&w, BACKEND_LLAMA, 0, "stories260K");
	world_chat(&w);
	ck_assert_int_eq(w.rc, -1);
	ck_assert_int_eq(w.e.code, PERR_BACKEND_DOWN);
	ck_assert_has(w.e.msg, "backend 'llama'");
	ck_assert_has(w.e.msg, w.url);
	ck_assert_has(w.e.msg, "model 'stories260K'");
	ck_assert_has(w.e.msg, "llama-server -m");
	ck_assert(backend_error_transient(&w.e, &w.res));
	world_release(&w);
}
END_TEST

START_TEST(test_probe_connection_refused)
{
	struct world w;
	json_t *models = NULL;
	int slots = -1;

	world_init(&w, BACKEND_LLAMA, 0, "x");
	ck_assert_int_eq(backend_probe(w.curl, &w.be, &models, &slots, &w.e), -1);
	ck_assert_int_eq(w.e.code, PERR_BACKEND_DOWN);
	ck_assert_has(w.e.msg, w.url);
	ck_assert_ptr_null(models);
	ck_assert_int_eq(slots, 0);
	world_release(&w);
}
END_TEST

/* ---- Ollama over the wire ---- */

static const char ollama_reply[] =
    "{\"model\":\"gemma3:1b\",\"message\":{\"role\":\"assistant\",\"content\":\"Cache\"},"
    "\"done\":false}\n"
    "{\"model\":\"gemma3:1b\",\"message\":{\"role\":\"assistant\",\"content\":\" the "
    "embeddings\"},\"done\":false}\n"
    "{\"model\":\"gemma3:1b\",\"message\":{\"role\":\"assistant\",\"content\":\".\"},"
    "\"done\":true,\"done_reason\":\"stop\",\"total_duration\":900000000,"
    "\"load_duration\":1500000,\"prompt_eval_count\":31,\"prompt_eval_duration\":120000000,"
    "\"eval_count\":4,\"eval_duration\":80000000}\n";

START_TEST(test_ollama_chat_streams)
{
	static const struct route routes[] = {
	    {.req = "POST /api/chat",
	     .status = 200,
	     .body = ollama_reply,
	     .piece = 7,
	     .piece_ms = 2,
	     .wait_ms = 30},
	};
	struct fake f;
	struct world w;
	json_t *sent;

	fake_start(&f, routes, 1);
	world_init(&w, BACKEND_OLLAMA, f.port, "gemma3:1b");
	world_chat(&w);
	ck_assert_msg(w.rc == 0, "%s", w.e.msg);
	ck_assert_str_eq(w.res.text.buf, "Cache the embeddings.");
	ck_assert_str_eq(w.tokens.buf, "Cache the embeddings.");
	ck_assert_int_eq(w.res.http_status, 200);
	ck_assert_int_eq(w.res.partial, 0);
	ck_assert_int_eq(w.res.m.prompt_tokens, 31);
	ck_assert_int_eq(w.res.m.completion_tokens, 4);
	ck_assert_int_eq(w.res.m.cached_tokens, -1);
	ck_assert_double_eq_tol(w.res.m.prompt_ms, 120.0, 1e-9);
	ck_assert_double_eq_tol(w.res.m.gen_ms, 80.0, 1e-9);
	ck_assert_double_eq_tol(w.res.m.load_ms, 1.5, 1e-9);
	ck_assert_double_eq_tol(w.res.m.tokens_per_s, 50.0, 1e-9);
	ck_assert_str_eq(w.res.m.finish_reason, "stop");
	/* measured: the server waited 30 ms before its first byte */
	ck_assert(w.res.m.ttft_ms >= 25.0);
	ck_assert(w.res.m.wall_ms >= w.res.m.ttft_ms);

	/* the wire request: the streamed chat Ollama documents */
	pthread_mutex_lock(&f.lock);
	sent = json_loads(f.last_body.buf, 0, NULL);
	pthread_mutex_unlock(&f.lock);
	ck_assert_ptr_nonnull(sent);
	ck_assert(json_is_true(json_object_get(sent, "stream")));
	ck_assert_int_eq(
	    json_integer_value(json_object_get(json_object_get(sent, "options"), "num_ctx")), 8192);
	json_decref(sent);
	fake_stop(&f);
	world_release(&w);
}
END_TEST

START_TEST(test_ollama_model_missing)
{
	static const struct route routes[] = {
	    {.req = "POST /api/chat",
	     .status = 404,
	     .body = "{\"error\":\"model 'gemma3:1b' not found\"}"},
	};
	struct fake f;
	struct world w;
	char want[256];

	fake_start(&f, routes, 1);
	world_init(&w, BACKEND_OLLAMA, f.port, "gemma3:1b");
	world_chat(&w);
	ck_assert_int_eq(w.rc, -1);
	ck_assert_int_eq(w.e.code, PERR_MODEL_MISSING);
	snprintf(want, sizeof(want),
		 "backend 'ollama' (%s): model 'gemma3:1b' not found; run 'ollama pull gemma3:1b'",
		 w.url);
	ck_assert_str_eq(w.e.msg, want);
	ck_assert_int_eq(w.res.http_status, 404);
	ck_assert(!backend_error_transient(&w.e, &w.res));
	fake_stop(&f);
	world_release(&w);
}
END_TEST

START_TEST(test_ollama_busy_with_retry_after)
{
	static const struct route routes[] = {
	    {.req = "POST /api/chat",
	     .status = 503,
	     .headers = "Retry-After: 7\r\n",
	     .body = "{\"error\":\"server busy, please try again.  maximum pending requests "
		     "exceeded\"}"},
	};
	struct fake f;
	struct world w;

	fake_start(&f, routes, 1);
	world_init(&w, BACKEND_OLLAMA, f.port, "gemma3:1b");
	world_chat(&w);
	ck_assert_int_eq(w.rc, -1);
	ck_assert_int_eq(w.e.code, PERR_BACKEND_BUSY);
	ck_assert_has(w.e.msg, "server busy");
	ck_assert_has(w.e.msg, "model 'gemma3:1b'");
	ck_assert_has(w.e.msg, w.url);
	ck_assert_int_eq(w.res.http_status, 503);
	ck_assert_int_eq(w.res.retry_after_ms, 7000);
	ck_assert(backend_error_transient(&w.e, &w.res));
	fake_stop(&f);
	world_release(&w);
}
END_TEST

START_TEST(test_ollama_server_error_not_retried)
{
	static const struct route routes[] = {
	    {.req = "POST /api/chat",
	     .status = 500,
	     .body = "{\"error\":\"model requires more system memory (9.1 GiB) than is "
		     "available (4.0 GiB)\"}"},
	};
	struct fake f;
	struct world w;

	fake_start(&f, routes, 1);
	world_init(&w, BACKEND_OLLAMA, f.port, "gemma3:27b");
	world_chat(&w);
	ck_assert_int_eq(w.rc, -1);
	ck_assert_int_eq(w.e.code, PERR_BACKEND_ERROR);
	ck_assert_has(w.e.msg, "more system memory");
	ck_assert_has(w.e.msg, "smaller model");
	ck_assert(!backend_error_transient(&w.e, &w.res));
	fake_stop(&f);
	world_release(&w);
}
END_TEST

START_TEST(test_ollama_kind_at_a_llama_server)
{
	struct route routes[] = {
	    {.req = "POST /api/chat", .status = 404},
	};
	char *body = read_error_fixture("ollama_api_chat.POST.body");
	struct fake f;
	struct world w;

	routes[0].body = body;
	fake_start(&f, routes, 1);
	world_init(&w, BACKEND_OLLAMA, f.port, "gemma3:1b");
	world_chat(&w);
	ck_assert_int_eq(w.rc, -1);
	ck_assert_int_eq(w.e.code, PERR_BACKEND_REJECTED);
	ck_assert_has(w.e.msg, "File Not Found");
	ck_assert_has(w.e.msg, "kind=llama-server");
	fake_stop(&f);
	world_release(&w);
	free(body);
}
END_TEST

START_TEST(test_ollama_error_mid_stream)
{
	static const struct route routes[] = {
	    {.req = "POST /api/chat",
	     .status = 200,
	     .body = "{\"message\":{\"role\":\"assistant\",\"content\":\"Well\"},\"done\":false}\n"
		     "{\"error\":\"model runner has unexpectedly stopped\"}\n"},
	};
	struct fake f;
	struct world w;

	fake_start(&f, routes, 1);
	world_init(&w, BACKEND_OLLAMA, f.port, "gemma3:1b");
	world_chat(&w);
	ck_assert_int_eq(w.rc, -1);
	ck_assert_int_eq(w.e.code, PERR_BACKEND_ERROR);
	ck_assert_has(w.e.msg, "unexpectedly stopped");
	ck_assert_has(w.e.msg, "model 'gemma3:1b'");
	ck_assert_str_eq(w.res.text.buf, "Well");
	ck_assert_int_eq(w.res.partial, 1);
	/* never retried silently once text has streamed */
	ck_assert(!backend_error_transient(&w.e, &w.res));
	fake_stop(&f);
	world_release(&w);
}
END_TEST

/* ---- llama-server over the wire ---- */

START_TEST(test_llama_chat_streams_fixture)
{
	struct route routes[] = {
	    {.req = "POST /v1/chat/completions", .status = 200, .piece = 100, .piece_ms = 1},
	};
	char *body = read_fixture("chat_stream.txt");
	struct fake f;
	struct world w;
	json_t *sent;

	routes[0].body = body;
	fake_start(&f, routes, 1);
	world_init(&w, BACKEND_LLAMA, f.port, "stories260K");
	world_chat(&w);
	ck_assert_msg(w.rc == 0, "%s", w.e.msg);
	ck_assert_str_eq(w.res.text.buf, "Shen as they");
	ck_assert_str_eq(w.tokens.buf, "Shen as they");
	ck_assert_int_eq(w.res.m.prompt_tokens, 52);
	ck_assert_int_eq(w.res.m.cached_tokens, 11);
	ck_assert_int_eq(w.res.m.completion_tokens, 6);
	ck_assert_double_eq_tol(w.res.m.prompt_ms, 2.119, 1e-9);
	ck_assert_double_eq_tol(w.res.m.gen_ms, 1.055, 1e-9);
	ck_assert_str_eq(w.res.m.finish_reason, "length");
	ck_assert(w.res.m.ttft_ms >= 0 && w.res.m.wall_ms >= w.res.m.ttft_ms);

	pthread_mutex_lock(&f.lock);
	sent = json_loads(f.last_body.buf, 0, NULL);
	pthread_mutex_unlock(&f.lock);
	ck_assert(json_is_true(
	    json_object_get(json_object_get(sent, "stream_options"), "include_usage")));
	json_decref(sent);
	fake_stop(&f);
	world_release(&w);
	free(body);
}
END_TEST

START_TEST(test_llama_context_overflow)
{
	struct route routes[] = {
	    {.req = "POST /v1/chat/completions", .status = 400},
	};
	char *body = read_error_fixture("err_too_long.json");
	struct fake f;
	struct world w;

	routes[0].body = body;
	fake_start(&f, routes, 1);
	world_init(&w, BACKEND_LLAMA, f.port, "stories260K");
	world_chat(&w);
	ck_assert_int_eq(w.rc, -1);
	ck_assert_int_eq(w.e.code, PERR_CONTEXT_OVERFLOW);
	ck_assert_has(w.e.msg, "backend 'llama'");
	ck_assert_has(w.e.msg, w.url);
	ck_assert_has(w.e.msg, "model 'stories260K'");
	ck_assert_has(w.e.msg, "1842 tokens");
	ck_assert_has(w.e.msg, "512");
	ck_assert_has(w.e.msg, "-c");
	ck_assert(!backend_error_transient(&w.e, &w.res));
	fake_stop(&f);
	world_release(&w);
	free(body);
}
END_TEST

START_TEST(test_llama_loading_is_busy)
{
	static const struct route routes[] = {
	    {.req = "POST /v1/chat/completions",
	     .status = 503,
	     .body = "{\"error\":{\"code\":503,\"message\":\"Loading model\",\"type\":"
		     "\"unavailable_error\"}}"},
	};
	struct fake f;
	struct world w;

	fake_start(&f, routes, 1);
	world_init(&w, BACKEND_LLAMA, f.port, "stories260K");
	world_chat(&w);
	ck_assert_int_eq(w.rc, -1);
	ck_assert_int_eq(w.e.code, PERR_BACKEND_BUSY);
	ck_assert_has(w.e.msg, "loading");
	ck_assert(backend_error_transient(&w.e, &w.res));
	ck_assert_int_eq(w.res.retry_after_ms, 0);
	fake_stop(&f);
	world_release(&w);
}
END_TEST

START_TEST(test_llama_stream_cut_off)
{
	struct route routes[] = {
	    {.req = "POST /v1/chat/completions", .status = 200, .cut = 1},
	};
	char *body = read_fixture("chat_stream.txt");
	struct fake f;
	struct world w;

	*strstr(body, "data: {\"choices\":[]") = '\0'; /* the server died before the usage */
	routes[0].body = body;
	fake_start(&f, routes, 1);
	world_init(&w, BACKEND_LLAMA, f.port, "stories260K");
	world_chat(&w);
	ck_assert_int_eq(w.rc, -1);
	ck_assert_int_eq(w.e.code, PERR_BACKEND_PROTOCOL);
	ck_assert_has(w.e.msg, "model 'stories260K'");
	ck_assert_str_eq(w.res.text.buf, "Shen as they");
	ck_assert_int_eq(w.res.partial, 1);
	ck_assert(!backend_error_transient(&w.e, &w.res));
	fake_stop(&f);
	world_release(&w);
	free(body);
}
END_TEST

START_TEST(test_llama_error_event_mid_stream)
{
	static const struct route routes[] = {
	    {.req = "POST /v1/chat/completions",
	     .status = 200,
	     .body = "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Once\"}}]}\n\n"
		     "data: {\"error\":{\"code\":500,\"message\":\"decode failed\",\"type\":"
		     "\"server_error\"}}\n\n"},
	};
	struct fake f;
	struct world w;

	fake_start(&f, routes, 1);
	world_init(&w, BACKEND_LLAMA, f.port, "stories260K");
	world_chat(&w);
	ck_assert_int_eq(w.rc, -1);
	ck_assert_int_eq(w.e.code, PERR_BACKEND_ERROR);
	ck_assert_has(w.e.msg, "decode failed");
	ck_assert_int_eq(w.res.partial, 1);
	fake_stop(&f);
	world_release(&w);
}
END_TEST

/* ---- deadlines and cancel ---- */

static atomic_int cancel_flag;

static void *cancel_later(void *ud)
{
	(void)ud;
	util_sleep_ms(200);
	atomic_store(&cancel_flag, 1);
	return NULL;
}

START_TEST(test_cancel_while_server_is_silent)
{
	static const struct route routes[] = {
	    {.req = "POST /api/chat", .status = 200, .wait_ms = 10000, .body = "{\"done\":true}\n"},
	};
	struct fake f;
	struct world w;
	pthread_t t;
	int64_t t0, ms;

	atomic_store(&cancel_flag, 0);
	fake_start(&f, routes, 1);
	world_init(&w, BACKEND_OLLAMA, f.port, "gemma3:1b");
	w.req.cancel = &cancel_flag;
	pthread_create(&t, NULL, cancel_later, NULL);
	t0 = util_mono_us();
	world_chat(&w);
	ms = (util_mono_us() - t0) / 1000;
	pthread_join(t, NULL);
	ck_assert_int_eq(w.rc, -1);
	ck_assert_int_eq(w.e.code, PERR_CANCELLED);
	ck_assert_has(w.e.msg, "cancelled");
	ck_assert_has(w.e.msg, "model 'gemma3:1b'");
	/* cancelled at 200 ms, aborted within a poll or two */
	ck_assert_msg(ms < 600, "cancel took %lld ms", (long long)ms);
	ck_assert(!backend_error_transient(&w.e, &w.res));
	fake_stop(&f);
	world_release(&w);
}
END_TEST

START_TEST(test_reader_stops_the_call)
{
	static const struct route routes[] = {
	    {.req = "POST /api/chat", .status = 200, .body = ollama_reply},
	};
	struct fake f;
	struct world w;

	fake_start(&f, routes, 1);
	world_init(&w, BACKEND_OLLAMA, f.port, "gemma3:1b");
	w.stop_tokens_at = 1;
	world_chat(&w);
	ck_assert_int_eq(w.rc, -1);
	ck_assert_int_eq(w.e.code, PERR_CANCELLED);
	ck_assert_str_eq(w.res.text.buf, "Cache");
	fake_stop(&f);
	world_release(&w);
}
END_TEST

START_TEST(test_first_byte_deadline)
{
	static const struct route routes[] = {
	    {.req = "POST /api/chat", .status = 200, .wait_ms = 10000, .body = "{\"done\":true}\n"},
	};
	struct fake f;
	struct world w;

	fake_start(&f, routes, 1);
	world_init(&w, BACKEND_OLLAMA, f.port, "gemma3:1b");
	w.be.first_byte_timeout_ms = 300;
	world_chat(&w);
	ck_assert_int_eq(w.rc, -1);
	ck_assert_int_eq(w.e.code, PERR_BACKEND_TIMEOUT);
	ck_assert_has(w.e.msg, "sent nothing for 300 ms");
	ck_assert_has(w.e.msg, "first_byte_timeout_ms");
	ck_assert(w.res.m.wall_ms >= 300 && w.res.m.wall_ms < 1000);
	fake_stop(&f);
	world_release(&w);
}
END_TEST

START_TEST(test_idle_deadline)
{
	static const struct route routes[] = {
	    {.req = "POST /api/chat",
	     .status = 200,
	     .hang_ms = 10000,
	     .body =
		 "{\"message\":{\"role\":\"assistant\",\"content\":\"Let me\"},\"done\":false}\n"},
	};
	struct fake f;
	struct world w;

	fake_start(&f, routes, 1);
	world_init(&w, BACKEND_OLLAMA, f.port, "gemma3:1b");
	w.be.idle_timeout_ms = 300;
	world_chat(&w);
	ck_assert_int_eq(w.rc, -1);
	ck_assert_int_eq(w.e.code, PERR_BACKEND_TIMEOUT);
	ck_assert_has(w.e.msg, "went silent for 300 ms");
	ck_assert_str_eq(w.res.text.buf, "Let me");
	ck_assert_int_eq(w.res.partial, 1);
	fake_stop(&f);
	world_release(&w);
}
END_TEST

START_TEST(test_total_deadline)
{
	static const struct route routes[] = {
	    {.req = "POST /api/chat",
	     .status = 200,
	     .piece = 20,
	     .piece_ms = 100,
	     .body = ollama_reply},
	};
	struct fake f;
	struct world w;

	fake_start(&f, routes, 1);
	world_init(&w, BACKEND_OLLAMA, f.port, "gemma3:1b");
	w.be.total_timeout_ms = 400;
	world_chat(&w);
	ck_assert_int_eq(w.rc, -1);
	ck_assert_int_eq(w.e.code, PERR_BACKEND_TIMEOUT);
	ck_assert_has(w.e.msg, "within 400 ms");
	fake_stop(&f);
	world_release(&w);
}
END_TEST

/* ---- probes ---- */

START_TEST(test_probe_llama)
{
	struct route routes[] = {
	    {.req = "GET /health", .status = 200, .body = "{\"status\":\"ok\"}"},
	    {.req = "GET /v1/models", .status = 200},
	    {.req = "GET /props", .status = 200},
	};
	char *models_body = read_fixture("models.GET.body");
	char *props_body = read_fixture("props.json");
	struct fake f;
	struct world w;
	json_t *models = NULL;
	int slots = -1;

	routes[1].body = models_body;
	routes[2].body = props_body;
	fake_start(&f, routes, 3);
	world_init(&w, BACKEND_LLAMA, f.port, "x");
	ck_assert_msg(backend_probe(w.curl, &w.be, &models, &slots, &w.e) == 0, "%s", w.e.msg);
	ck_assert_uint_eq(json_array_size(models), 1);
	ck_assert_str_eq(json_string_value(json_array_get(models, 0)), "models/stories260K.gguf");
	ck_assert_int_eq(slots, 2);
	json_decref(models);
	fake_stop(&f);
	world_release(&w);
	free(models_body);
	free(props_body);
}
END_TEST

START_TEST(test_probe_llama_loading)
{
	static const struct route routes[] = {
	    {.req = "GET /health",
	     .status = 503,
	     .body = "{\"error\":{\"code\":503,\"message\":\"Loading model\",\"type\":"
		     "\"unavailable_error\"}}"},
	};
	struct fake f;
	struct world w;
	json_t *models = NULL;
	int slots = -1;

	fake_start(&f, routes, 1);
	world_init(&w, BACKEND_LLAMA, f.port, "x");
	ck_assert_int_eq(backend_probe(w.curl, &w.be, &models, &slots, &w.e), -1);
	ck_assert_int_eq(w.e.code, PERR_BACKEND_BUSY);
	ck_assert_has(w.e.msg, "Loading model");
	ck_assert_ptr_null(models);
	ck_assert(backend_error_transient(&w.e, NULL));
	fake_stop(&f);
	world_release(&w);
}
END_TEST

START_TEST(test_probe_ollama)
{
	static const struct route routes[] = {
	    {.req = "GET /api/version", .status = 200, .body = "{\"version\":\"0.12.6\"}"},
	    {.req = "GET /api/tags",
	     .status = 200,
	     .body =
		 "{\"models\":[{\"name\":\"gemma3:1b\",\"model\":\"gemma3:1b\",\"size\":815319791,"
		 "\"details\":{\"family\":\"gemma3\"}},{\"name\":\"gemma3n:latest\","
		 "\"model\":\"gemma3n:latest\"}]}"},
	};
	struct fake f;
	struct world w;
	json_t *models = NULL;
	int slots = -1;

	fake_start(&f, routes, 2);
	world_init(&w, BACKEND_OLLAMA, f.port, "x");
	ck_assert_msg(backend_probe(w.curl, &w.be, &models, &slots, &w.e) == 0, "%s", w.e.msg);
	ck_assert_uint_eq(json_array_size(models), 2);
	ck_assert_str_eq(json_string_value(json_array_get(models, 0)), "gemma3:1b");
	ck_assert_str_eq(json_string_value(json_array_get(models, 1)), "gemma3n:latest");
	ck_assert_int_eq(slots, 0);
	json_decref(models);
	fake_stop(&f);
	world_release(&w);
}
END_TEST

START_TEST(test_probe_ollama_at_a_llama_server)
{
	struct route routes[] = {
	    {.req = "GET /api/version", .status = 404},
	};
	char *body = read_error_fixture("ollama_api_version.GET.body");
	struct fake f;
	struct world w;
	json_t *models = NULL;

	routes[0].body = body;
	fake_start(&f, routes, 1);
	world_init(&w, BACKEND_OLLAMA, f.port, "x");
	ck_assert_int_eq(backend_probe(w.curl, &w.be, &models, NULL, &w.e), -1);
	ck_assert_int_eq(w.e.code, PERR_BACKEND_REJECTED);
	ck_assert_has(w.e.msg, "kind=llama-server");
	ck_assert_ptr_null(models);
	fake_stop(&f);
	world_release(&w);
	free(body);
}
END_TEST

static Suite *backend_suite(void)
{
	Suite *s = suite_create("backend");
	TCase *basics = tcase_create("basics");
	TCase *wire = tcase_create("wire");

	tcase_add_test(basics, test_kind_names);
	tcase_add_test(basics, test_metrics_start_unknown);
	tcase_add_test(basics, test_ollama_body_defaults);
	tcase_add_test(basics, test_ollama_body_job_options);
	tcase_add_test(basics, test_llama_body);
	tcase_add_test(basics, test_ollama_body_format);
	tcase_add_test(basics, test_llama_body_format);
	suite_add_tcase(s, basics);

	tcase_set_timeout(wire, 30);
	tcase_add_test(wire, test_chat_connection_refused_ollama);
	tcase_add_test(wire, test_chat_connection_refused_llama);
	tcase_add_test(wire, test_probe_connection_refused);
	tcase_add_test(wire, test_ollama_chat_streams);
	tcase_add_test(wire, test_ollama_model_missing);
	tcase_add_test(wire, test_ollama_busy_with_retry_after);
	tcase_add_test(wire, test_ollama_server_error_not_retried);
	tcase_add_test(wire, test_ollama_kind_at_a_llama_server);
	tcase_add_test(wire, test_ollama_error_mid_stream);
	tcase_add_test(wire, test_llama_chat_streams_fixture);
	tcase_add_test(wire, test_llama_context_overflow);
	tcase_add_test(wire, test_llama_loading_is_busy);
	tcase_add_test(wire, test_llama_stream_cut_off);
	tcase_add_test(wire, test_llama_error_event_mid_stream);
	tcase_add_test(wire, test_cancel_while_server_is_silent);
	tcase_add_test(wire, test_reader_stops_the_call);
	tcase_add_test(wire, test_first_byte_deadline);
	tcase_add_test(wire, test_idle_deadline);
	tcase_add_test(wire, test_total_deadline);
	tcase_add_test(wire, test_probe_llama);
	tcase_add_test(wire, test_probe_llama_loading);
	tcase_add_test(wire, test_probe_ollama);
	tcase_add_test(wire, test_probe_ollama_at_a_llama_server);
	suite_add_tcase(s, wire);
	return s;
}

int main(void)
{
	SRunner *sr;
	int failed;

	curl_global_init(CURL_GLOBAL_DEFAULT);
	harness_shared_note("check_backend");
	sr = srunner_create(backend_suite());
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	curl_global_cleanup();
	return failed != 0;
}
