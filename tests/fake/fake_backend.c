/*
 * fake_backend.c - a fake Ollama and llama-server for parley's integration tests: start-up,
 * routing, and what every route uses (a request's state, the request log, naps that notice a
 * client hanging up, sending a response).
 *
 * DESIGN: one libmicrohttpd daemon, a thread per connection, serves both wire
 * protocols at once: Ollama's (/, /api/..., NDJSON streams; fake_ollama.c) and
 * llama-server's (/health, /v1/..., /props, /slots, /metrics, SSE streams; fake_llama.c).
 * Replies come from a script or are generated (fake_reply.c). A streamed reply is produced
 * by a content-reader callback that sleeps between pieces on the connection's own thread
 * (fake_chat.c); every sleep polls the socket, so a client that hangs up is noticed
 * within 20 ms and its llama slot is freed. llama requests hold a slot while
 * they run and wait for one when all are busy (llama-server defers them, it
 * never answers 503); each slot remembers the text its KV cache would hold, so
 * a request that shares a prefix with it reports cached tokens (fake_slots.c). Tests steer
 * the fake through /_fake/... (fake_ctl.c): faults queued for the next matching chat
 * requests (fake_fault.c), a log of chat requests, concurrency counters. The main thread
 * only waits for SIGTERM/SIGINT, then stops the daemon (which joins the connection threads).
 * Every piece of shared state is in fake_st, guarded by fake_st.lock. A request's own
 * state (struct fake_req) is shared by its connection and its streamed response and
 * freed by whichever lets go last.
 */
#include <arpa/inet.h>
#include <getopt.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "db/util.h"
#include "tests/fake/fake.h"
#include "tests/fake/fake_server.h"

#define MAX_BODY (32u << 20)
#define OLLAMA_VERSION "0.12.0"

struct fake_cfg fake_cfg = {"127.0.0.1", 0, NULL, 0, 2, 4096, 100, 0, 0, 0};
atomic_int fake_stopping;
static volatile sig_atomic_t got_signal;

static void on_signal(int sig)
{
	(void)sig;
	got_signal = 1;
}

/* ---- shared state ---- */

struct fake_state fake_st = {.lock = PTHREAD_MUTEX_INITIALIZER};

json_t *fake_script_get(void)
{
	json_t *s;

	pthread_mutex_lock(&fake_st.lock);
	s = json_incref(fake_st.script);
	pthread_mutex_unlock(&fake_st.lock);
	return s;
}

/* ---- one request, the log, naps ---- */

static struct fake_req *req_new(struct MHD_Connection *conn, const char *url)
{
	struct fake_req *r = xcalloc(1, sizeof(*r));
	const union MHD_ConnectionInfo *ci;

	atomic_init(&r->refs, 1);
	r->conn = conn;
	ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
	r->fd = ci ? ci->connect_fd : -1;
	r->path = xstrdup(url);
	strbuf_init(&r->body, 0);
	strbuf_init(&r->prompt, 0);
	strbuf_init(&r->out, 0);
	r->slot = -1;
	r->fault.mode = FM_NONE;
	r->finish_reason = "stop";
	return r;
}

void fake_req_unref(struct fake_req *r)
{
	if (atomic_fetch_sub(&r->refs, 1) != 1)
		return;
	free(r->path);
	strbuf_release(&r->body);
	strbuf_release(&r->prompt);
	strbuf_release(&r->out);
	fake_fault_release(&r->fault);
	free(r->model);
	free(r->reply);
	free(r->ends);
	free(r);
}

/* Bytes of the reply sent so far (all of it once a non-streamed reply went out). */
size_t fake_req_emitted(const struct fake_req *r)
{
	return r->next ? r->ends[r->next - 1] : 0;
}

/* Must hold fake_st.lock. */
struct fake_logent *fake_log_find(long id)
{
	size_t i;

	for (i = 0; id && i < fake_st.nlog; i++)
		if (fake_st.log[i].id == id)
			return &fake_st.log[i];
	return NULL;
}

void fake_logent_release(struct fake_logent *e)
{
	free(e->path);
	free(e->model);
	json_decref(e->body);
}

void fake_req_set_status(struct fake_req *r, int status)
{
	struct fake_logent *e;

	if (!r->log_id)
		return;
	pthread_mutex_lock(&fake_st.lock);
	e = fake_log_find(r->log_id);
	if (e)
		e->status = status;
	pthread_mutex_unlock(&fake_st.lock);
}

void fake_mark_disconnected(struct fake_req *r)
{
	if (r->disconnected)
		return;
	r->disconnected = 1;
	pthread_mutex_lock(&fake_st.lock);
	fake_st.disconnects++;
	pthread_mutex_unlock(&fake_st.lock);
}

/* Whether the client hung up; waits up to timeout_ms for it to. */
int fake_client_gone(struct fake_req *r, int timeout_ms)
{
	struct pollfd p = {.fd = r->fd, .events = POLLRDHUP};

	if (r->fd < 0) {
		if (timeout_ms > 0)
			util_sleep_ms(timeout_ms);
		return 0;
	}
	if (poll(&p, 1, timeout_ms) > 0 && (p.revents & (POLLRDHUP | POLLHUP | POLLERR | POLLNVAL)))
		return 1;
	return 0;
}

/* Sleeps until end_us (monotonic). Returns 0, or -1 early when the client hangs up or the fake
 * stops. */
int fake_nap_until(struct fake_req *r, int64_t end)
{
	for (;;) {
		int64_t left = end - util_mono_us();

		if (atomic_load(&fake_stopping))
			return -1;
		if (left <= 0)
			return 0;
		if (fake_client_gone(r, left > 20000 ? 20 : (int)((left + 999) / 1000))) {
			fake_mark_disconnected(r);
			return -1;
		}
	}
}

/* Sleeps ms. Returns 0, or -1 early when the client hangs up or the fake stops. */
int fake_nap(struct fake_req *r, long ms)
{
	return fake_nap_until(r, util_mono_us() + (int64_t)ms * 1000);
}

/* ---- responses ---- */

/* Sends body (taken: it is freed by MHD). retry_after < 0: no Retry-After. */
enum MHD_Result fake_send_body(struct fake_req *r, int status, const char *ctype, char *body,
			       size_t len, long retry_after)
{
	struct MHD_Response *resp;
	enum MHD_Result ret;

	resp = MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
	if (!resp) {
		free(body);
		return MHD_NO;
	}
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, ctype);
	if (retry_after >= 0) {
		char v[24];

		snprintf(v, sizeof(v), "%ld", retry_after);
		MHD_add_response_header(resp, MHD_HTTP_HEADER_RETRY_AFTER, v);
	}
	ret = MHD_queue_response(r->conn, (unsigned)status, resp);
	MHD_destroy_response(resp);
	fake_req_set_status(r, status);
	return ret;
}

enum MHD_Result fake_send_text(struct fake_req *r, int status, const char *ctype, const char *text)
{
	return fake_send_body(r, status, ctype, xstrdup(text), strlen(text), -1);
}

/* j is stolen. */
enum MHD_Result fake_send_json(struct fake_req *r, int status, json_t *j, long retry_after)
{
	char *s = json_dumps(j, FAKE_JSON_FLAGS);

	json_decref(j);
	if (!s)
		return MHD_NO;
	return fake_send_body(r, status, "application/json; charset=utf-8", s, strlen(s),
			      retry_after);
}

/* ---- routing ---- */

static enum MHD_Result route(struct fake_req *r, const char *url, const char *method)
{
	int get = !strcmp(method, "GET") || !strcmp(method, "HEAD"), post = !strcmp(method, "POST");

	if (!strncmp(url, "/_fake/", 7))
		return fake_ctl(r, url + 7, get, post);
	if (r->too_large)
		return fake_send_text(r, 413, "text/plain; charset=utf-8",
				      "request body too large");
	if (post && !strcmp(url, "/api/chat"))
		return fake_chat(r, PROTO_OLLAMA);
	if (post && (!strcmp(url, "/v1/chat/completions") || !strcmp(url, "/chat/completions")))
		return fake_chat(r, PROTO_LLAMA);
	/* a loading llama-server answers 503 everywhere but its model lists */
	if (strcmp(url, "/models") && strcmp(url, "/v1/models") && strcmp(url, "/api/tags") &&
	    fake_fault_loading(NULL, 0))
		return fake_llama_error(r, 503, "unavailable_error", "Loading model", -1);
	if (get && !strcmp(url, "/"))
		return fake_send_text(r, 200, "text/plain; charset=utf-8", "Ollama is running");
	if (get && !strcmp(url, "/api/version"))
		return fake_send_json(r, 200, json_pack("{s:s}", "version", OLLAMA_VERSION), -1);
	if (get && !strcmp(url, "/api/tags"))
		return fake_ollama_tags(r);
	if (get && !strcmp(url, "/api/ps"))
		return fake_ollama_ps(r);
	if (post && !strcmp(url, "/api/show"))
		return fake_ollama_show(r);
	if (get && (!strcmp(url, "/health") || !strcmp(url, "/v1/health")))
		return fake_send_json(r, 200, json_pack("{s:s}", "status", "ok"), -1);
	if (get && (!strcmp(url, "/v1/models") || !strcmp(url, "/models")))
		return fake_llama_models(r);
	if (get && !strcmp(url, "/props"))
		return fake_llama_props(r);
	if (get && !strcmp(url, "/slots"))
		return fake_llama_slots(r);
	if (get && !strcmp(url, "/metrics"))
		return fake_llama_metrics(r);
	if (!strncmp(url, "/api/", 5))
		return fake_send_text(r, 404, "text/plain", "404 page not found");
	return fake_send_json(r, 404,
			      json_pack("{s:{s:s,s:s,s:i}}", "error", "message", "File Not Found",
					"type", "not_found_error", "code", 404),
			      -1);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
				  const char *method, const char *version, const char *upload,
				  size_t *upload_size, void **con_cls)
{
	struct fake_req *r = *con_cls;

	(void)cls;
	(void)version;
	if (!r) {
		*con_cls = req_new(conn, url);
		return MHD_YES;
	}
	if (*upload_size) {
		if (r->body.len + *upload_size > MAX_BODY)
			r->too_large = 1;
		else
			strbuf_add(&r->body, upload, *upload_size);
		*upload_size = 0;
		return MHD_YES;
	}
	return route(r, url, method);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
			 enum MHD_RequestTerminationCode toe)
{
	struct fake_req *r = *con_cls;

	(void)cls;
	(void)conn;
	if (!r)
		return;
	*con_cls = NULL;
	if (r->proto != PROTO_NONE)
		fake_chat_end(r, toe);
	fake_req_unref(r);
}

/* ---- start-up ---- */

static void usage(FILE *f)
{
	fprintf(
	    f, "usage: fake-backend [--port N] [--host ADDR] [--script FILE] [--token-delay-ms N]\n"
	       "                    [--slots N] [--n-ctx N] [--load-ms N] [--reply-ms N]\n"
	       "                    [--prompt-ms-per-token N]\n"
	       "                    [--die-with-parent]\n"
	       "Serves Ollama's and llama-server's HTTP APIs with scripted replies; prints\n"
	       "port=N on stdout once listening. See tests/fake/README.md.\n");
}

static long parse_num(const char *opt, const char *s, long min, long max)
{
	char *end;
	long v = strtol(s, &end, 10);

	if (!*s || *end || v < min || v > max) {
		fprintf(stderr, "fake-backend: bad value '%s' for --%s\n", s, opt);
		exit(2);
	}
	return v;
}

static void parse_args(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"port", required_argument, NULL, 'p'},
	    {"host", required_argument, NULL, 'H'},
	    {"script", required_argument, NULL, 's'},
	    {"token-delay-ms", required_argument, NULL, 'd'},
	    {"slots", required_argument, NULL, 'n'},
	    {"n-ctx", required_argument, NULL, 'c'},
	    {"load-ms", required_argument, NULL, 'l'},
	    {"reply-ms", required_argument, NULL, 'r'},
	    {"prompt-ms-per-token", required_argument, NULL, 'T'},
	    {"die-with-parent", no_argument, NULL, 'P'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	int c;

	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'p':
			fake_cfg.port = parse_num("port", optarg, 0, 65535);
			break;
		case 'H':
			fake_cfg.host = optarg;
			break;
		case 's':
			fake_cfg.script_path = optarg;
			break;
		case 'd':
			fake_cfg.token_delay_ms = parse_num("token-delay-ms", optarg, 0, 3600000);
			break;
		case 'n':
			fake_cfg.slots = (int)parse_num("slots", optarg, 1, 256);
			break;
		case 'c':
			fake_cfg.n_ctx = parse_num("n-ctx", optarg, 1, 1L << 30);
			break;
		case 'l':
			fake_cfg.load_ms = parse_num("load-ms", optarg, 0, 3600000);
			break;
		case 'r':
			fake_cfg.reply_ms = parse_num("reply-ms", optarg, 0, 3600000);
			break;
		case 'T':
			fake_cfg.prompt_ms_per_token =
			    parse_num("prompt-ms-per-token", optarg, 0, 60000);
			break;
		case 'P':
			fake_cfg.die_with_parent = 1;
			break;
		case 'h':
			usage(stdout);
			exit(0);
		default:
			usage(stderr);
			exit(2);
		}
	}
	if (optind < argc) {
		usage(stderr);
		exit(2);
	}
}

static json_t *load_script(const char *path)
{
	json_error_t je;
	json_t *s;
	char err[300];

	if (!path)
		return json_object();
	s = json_load_file(path, JSON_REJECT_DUPLICATES, &je);
	if (!s) {
		fprintf(stderr, "fake-backend: cannot load script '%s': %s (line %d)\n", path,
			je.text, je.line);
		exit(1);
	}
	if (fake_script_check(s, err, sizeof(err))) {
		fprintf(stderr, "fake-backend: bad script '%s': %s\n", path, err);
		exit(1);
	}
	return s;
}

int main(int argc, char **argv)
{
	struct sockaddr_storage ss;
	struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;
	const union MHD_DaemonInfo *info;
	struct MHD_Daemon *d;
	unsigned int flags = MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD;
	struct sigaction sa;
	sigset_t sigs, old;
	size_t k;

	parse_args(argc, argv);
	if (!strcmp(fake_cfg.host, "localhost"))
		fake_cfg.host = "127.0.0.1";
	memset(&ss, 0, sizeof(ss));
	if (inet_pton(AF_INET, fake_cfg.host, &sin->sin_addr) == 1) {
		sin->sin_family = AF_INET;
		sin->sin_port = htons((uint16_t)fake_cfg.port);
	} else if (inet_pton(AF_INET6, fake_cfg.host, &sin6->sin6_addr) == 1) {
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons((uint16_t)fake_cfg.port);
		flags |= MHD_USE_IPv6;
	} else {
		fprintf(stderr, "fake-backend: '--host %s' is not an IP address\n", fake_cfg.host);
		return 2;
	}
	fake_st.script = load_script(fake_cfg.script_path);
	fake_st.by_model = json_object();
	fake_st.loaded = json_object();
	fake_slots_init(fake_cfg.slots);

	/*
	 * MHD's threads inherit a mask that blocks the signals, so only the main
	 * thread, waiting in sigsuspend(), ever takes them (sigwait() with the
	 * signal blocked everywhere loses signals under valgrind).
	 */
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &sigs, &old);
	sigdelset(&old, SIGINT);
	sigdelset(&old, SIGTERM);
	signal(SIGPIPE, SIG_IGN);
	if (fake_cfg.die_with_parent) {
		prctl(PR_SET_PDEATHSIG, SIGTERM);
		if (getppid() == 1)
			return 1;
	}

	d = MHD_start_daemon(flags, 0, NULL, NULL, on_request, NULL, MHD_OPTION_SOCK_ADDR, &ss,
			     MHD_OPTION_NOTIFY_COMPLETED, on_completed, NULL, MHD_OPTION_END);
	if (!d) {
		fprintf(stderr, "fake-backend: cannot listen on %s port %ld\n", fake_cfg.host,
			fake_cfg.port);
		return 1;
	}
	info = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
	printf("port=%u\n", info ? (unsigned)info->port : (unsigned)fake_cfg.port);
	fflush(stdout);
	fprintf(stderr, "fake-backend: listening on %s port %u\n", fake_cfg.host,
		info ? (unsigned)info->port : (unsigned)fake_cfg.port);

	while (!got_signal)
		sigsuspend(&old);
	atomic_store(&fake_stopping, 1);
	fake_slots_stop();
	MHD_stop_daemon(d);

	fake_fault_clear_locked();
	free(fake_st.faults);
	for (k = 0; k < fake_st.nlog; k++)
		fake_logent_release(&fake_st.log[k]);
	free(fake_st.log);
	fake_slots_free();
	json_decref(fake_st.script);
	json_decref(fake_st.by_model);
	json_decref(fake_st.loaded);
	return 0;
}
