/*
 * check_hostile.c - a bad day from the outside, against the real parleyd and
 * the fake backend: requests a hostile web page can make (another Host,
 * another Origin), sign-out, NUL bytes in paths, clients trickling a byte
 * every few seconds from many addresses, a backend that never stops
 * streaming, model output that is not clean text, names that would forge
 * log lines, and URIs and headers past libmicrohttpd's limits.
 *
 * CHAOS_FULL=1 gives the long form: 40 s of trickling clients instead of 12.
 * Each test prints the figures it measured on one line beginning "hostile:".
 */
#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "tests/harness.h"

#define TOKEN "hostile-test-token-5e2a9c"

static struct proc fake, parleyd;

/* Starts the fake and a parleyd whose config file holds extra (JSON members, may be ""). */
static void start(const char *extra, const char *const *fake_args)
{
	char cfg[512], db[512];
	const char *args[] = {"--config", cfg, NULL};
	static int seq;
	FILE *f;

	ck_assert_int_eq(harness_fake_start(&fake, fake_args), 0);
	snprintf(cfg, sizeof(cfg), "%s/hostile-%d-%d.json", harness_tmpdir(), (int)getpid(), seq);
	snprintf(db, sizeof(db), "%s/hostile-%d-%d.db", harness_tmpdir(), (int)getpid(), seq++);
	f = fopen(cfg, "w");
	ck_assert_ptr_nonnull(f);
	fprintf(f,
		"{%s%s\"retry_base_delay_ms\": 50, \"retry_max_delay_ms\": 200,"
		" \"drain_timeout_s\": 1, \"backends\": ["
		"{\"name\":\"ollama\",\"kind\":\"ollama\",\"url\":\"http://127.0.0.1:%d\","
		"\"first_byte_timeout_ms\":3000,\"idle_timeout_ms\":3000},"
		"{\"name\":\"llama\",\"kind\":\"llama-server\",\"url\":\"http://127.0.0.1:%d\","
		"\"first_byte_timeout_ms\":3000,\"idle_timeout_ms\":3000}]}",
		extra, *extra ? ", " : "", fake.port, fake.port);
	ck_assert_int_eq(fclose(f), 0);
	ck_assert_int_eq(harness_parleyd_start(&parleyd, db, args), 0);
}

static void stop(void)
{
	if (parleyd.pid > 0)
		harness_stop(&parleyd, SIGTERM);
	if (fake.pid > 0)
		harness_stop(&fake, SIGTERM);
}

static void fault(const char *json)
{
	char *out = NULL;
	int st = harness_http(fake.port, "POST", "/_fake/fault", json, NULL, &out);

	ck_assert_msg(st == 200, "the fake refused fault %s: %d %s", json, st, out);
	free(out);
}

/* A key of the fake's /_fake/stats. */
static long fake_stat(const char *key)
{
	json_t *j = NULL;
	long v;

	ck_assert_int_eq(harness_http_json(fake.port, "GET", "/_fake/stats", NULL, &j), 200);
	v = (long)json_integer_value(json_object_get(j, key));
	json_decref(j);
	return v;
}

/* A field of /proc/<pid>/status in kB ("VmRSS", "VmHWM"); -1 when it cannot be read. */
static long proc_kb(pid_t pid, const char *field)
{
	char path[64], line[256];
	long kb = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	if (!(f = fopen(path, "r")))
		return -1;
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, field, strlen(field)) && line[strlen(field)] == ':')
			kb = strtol(line + strlen(field) + 1, NULL, 10);
	fclose(f);
	return kb;
}

/* Posts a job (body) and returns its id (caller frees). */
static char *post_job(const char *body)
{
	return harness_submit(parleyd.port, body);
}

static json_t *transcript(const char *id)
{
	char path[128];
	json_t *t = NULL;

	snprintf(path, sizeof(path), "/v1/jobs/%s/transcript", id);
	ck_assert_int_eq(harness_http_json(parleyd.port, "GET", path, NULL, &t), 200);
	return t;
}

static json_t *turn_of(json_t *t, size_t i)
{
	return json_array_get(json_object_get(t, "conversation"), i);
}

static const char job_body[] =
    "{\"scenario\":\"response_speed_optimization\","
    "\"interviewer\":{\"model\":\"iv\"},\"candidate\":{\"model\":\"cd\"},"
    "\"max_turns\":3}";

/* How many jobs the store holds. */
static size_t count_jobs(void)
{
	json_t *j = NULL;
	size_t n;

	ck_assert_int_eq(harness_http_json(parleyd.port, "GET", "/v1/jobs?limit=500", NULL, &j),
			 200);
	n = json_array_size(json_object_get(j, "items"));
	json_decref(j);
	return n;
}

/* The status of one request with the given headers (NULL-terminated list). */
static int req(const char *method, const char *path, const char *body, const char *h1,
	       const char *h2, char **out)
{
	const char *hdrs[] = {h1, h2, NULL};

	return harness_http(parleyd.port, method, path, body, h1 ? hdrs : NULL, out);
}

static int is_problem(const char *body, int status)
{
	json_t *j = json_loads(body ? body : "", 0, NULL);
	int ok = json_integer_value(json_object_get(j, "status")) == status &&
		 json_is_string(json_object_get(j, "detail"));

	json_decref(j);
	return ok && strstr(harness_last_headers(), "application/problem+json") != NULL;
}

/* ---- item 12: hostile web pages ---- */

START_TEST(hostile_pages_are_refused)
{
	char host[64], origin[80], *out = NULL;

	start("\"allowed_hosts\": [\"parley.lan\"], \"allowed_origins\": [\"http://dash.example\"]",
	      NULL);
	/* DNS rebinding: the page's own name arrives as Host, for reads and writes alike */
	ck_assert_int_eq(req("GET", "/v1/jobs", NULL, "Host: rebind.example", NULL, &out), 403);
	ck_assert(is_problem(out, 403));
	free(out);
	ck_assert_int_eq(req("GET", "/", NULL, "Host: rebind.example:8080", NULL, NULL), 403);
	ck_assert_int_eq(
	    req("POST", "/v1/jobs", job_body, "Host: rebind.example", "Origin: null", NULL), 403);
	/* a cross-site form or text/plain POST (no preflight) */
	ck_assert_int_eq(req("POST", "/v1/jobs", job_body, "Content-Type: text/plain",
			     "Origin: http://evil.example", &out),
			 403);
	ck_assert(is_problem(out, 403));
	free(out);
	ck_assert_int_eq(
	    req("PUT", "/v1/scenarios/x", "{}", "Origin: http://evil.example", NULL, NULL), 403);
	ck_assert_int_eq(count_jobs(), 0);

	/* what keeps working: scripts with no Origin, the dashboard's own origin, the lists */
	ck_assert_int_eq(req("POST", "/v1/jobs", job_body, NULL, NULL, NULL), 202);
	snprintf(origin, sizeof(origin), "Origin: http://127.0.0.1:%d", parleyd.port);
	ck_assert_int_eq(req("POST", "/v1/jobs", job_body, origin, NULL, NULL), 202);
	snprintf(host, sizeof(host), "Host: localhost:%d", parleyd.port);
	snprintf(origin, sizeof(origin), "Origin: http://localhost:%d", parleyd.port);
	ck_assert_int_eq(req("POST", "/v1/jobs", job_body, host, origin, NULL), 202);
	ck_assert_int_eq(req("GET", "/healthz", NULL, "Host: parley.lan:9000", NULL, NULL), 200);
	ck_assert_int_eq(
	    req("POST", "/v1/jobs", job_body, "Origin: http://dash.example", NULL, NULL), 202);
	/* a read from another page is not refused (the browser keeps its answer from it) */
	ck_assert_int_eq(req("GET", "/v1/jobs", NULL, "Origin: http://evil.example", NULL, NULL),
			 200);
	ck_assert_int_eq(count_jobs(), 4);
	stop();
}
END_TEST

/* ---- item 13: sign-out ---- */

START_TEST(sign_out_revokes_the_session)
{
	char cookie[256], *p, *end;
	int before, after;

	setenv("PARLEY_TOKEN", TOKEN, 1);
	start("", NULL);
	unsetenv("PARLEY_TOKEN");
	ck_assert_int_eq(req("POST", "/v1/session", "", "Authorization: Bearer " TOKEN, NULL, NULL),
			 200);
	p = strstr(harness_last_headers(), "Set-Cookie: parley_session=");
	ck_assert_ptr_nonnull(p);
	p += strlen("Set-Cookie: ");
	end = strchr(p, ';');
	snprintf(cookie, sizeof(cookie), "Cookie: %.*s", (int)(end - p), p);
	before = req("GET", "/v1/jobs", NULL, cookie, NULL, NULL);
	ck_assert_int_eq(req("DELETE", "/v1/session", NULL, cookie, NULL, NULL), 204);
	/* the cookie a browser (or anyone who copied it) still holds is worth nothing now */
	after = req("GET", "/v1/jobs", NULL, cookie, NULL, NULL);
	printf("hostile: sign-out: the session cookie answered %d before, %d after\n", before,
	       after);
	ck_assert_int_eq(before, 200);
	ck_assert_int_eq(after, 401);
	ck_assert_int_eq(req("POST", "/v1/jobs", job_body, cookie, NULL, NULL), 401);
	/* a new sign-in works */
	ck_assert_int_eq(req("POST", "/v1/session", "", "Authorization: Bearer " TOKEN, NULL, NULL),
			 200);
	stop();
}
END_TEST

/* ---- item 9: NUL in paths ---- */

START_TEST(nul_in_paths_is_refused)
{
	char *out = NULL;

	start("", NULL);
	ck_assert_int_eq(req("PUT", "/v1/scenarios/a%00b",
			     "{\"problem\":\"p\",\"context\":\"c\",\"goal\":\"g\"}", NULL, NULL,
			     &out),
			 400);
	ck_assert(is_problem(out, 400));
	free(out);
	ck_assert_int_eq(req("GET", "/v1/scenarios/a", NULL, NULL, NULL, NULL), 404);
	ck_assert_int_eq(req("GET", "/assets/app.js%00.txt", NULL, NULL, NULL, NULL), 400);
	ck_assert_int_eq(req("GET", "/v1/jobs?status=queued%00x", NULL, NULL, NULL, NULL), 400);
	ck_assert_int_eq(req("GET", "/v1/jobs?status=queued%2500", NULL, NULL, NULL, NULL), 400);
	ck_assert_int_eq(req("GET", "/assets/app.js", NULL, NULL, NULL, NULL), 200);
	stop();
}
END_TEST

/* ---- item 7: trickling clients from many addresses ---- */

#define TRICKLE_CONNS 2000
#define TRICKLE_ADDRS 8	     /* 127.0.0.2 ... 127.0.0.9 */
#define TRICKLE_GAP_MS 3000  /* one byte every 3 s */
#define REQUEST_TIMEOUT_S 10 /* parleyd's default request_timeout_s */

struct trickler {
	int fd;		   /* -1 while waiting to reconnect */
	int64_t opened_us; /* when the connection was made */
	int64_t next_us;   /* next byte, or the reconnect */
	size_t sent;	   /* bytes of the endless request sent */
};

struct probe_stats {
	int port;
	double base_max; /* the slowest of 10 probes before the trickling began */
	volatile int stop;
	int n, failed;
	double ms[4096];
};

static int connect_from(const char *src, int port, int nonblock)
{
	struct sockaddr_in sin;
	int fd = socket(AF_INET, SOCK_STREAM | (nonblock ? SOCK_NONBLOCK : 0), 0);

	if (fd < 0)
		return -1;
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	inet_pton(AF_INET, src, &sin.sin_addr);
	if (bind(fd, (struct sockaddr *)&sin, sizeof(sin)) < 0) {
		close(fd);
		return -1;
	}
	sin.sin_port = htons((uint16_t)port);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (connect(fd, (struct sockaddr *)&sin, sizeof(sin)) < 0 && errno != EINPROGRESS) {
		close(fd);
		return -1;
	}
	return fd;
}

/* GET /healthz from 127.0.0.99 on a new connection; its latency in ms, or -1 after 5 s. */
static double probe_once(int port)
{
	static const char rq[] = "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n"
				 "Connection: close\r\n\r\n";
	int64_t t0 = util_mono_us();
	char buf[512];
	size_t got = 0;
	int fd = connect_from("127.0.0.99", port, 0);

	if (fd < 0)
		return -1;
	if (send(fd, rq, sizeof(rq) - 1, MSG_NOSIGNAL) != (ssize_t)sizeof(rq) - 1) {
		close(fd);
		return -1;
	}
	while (util_mono_us() - t0 < 5000000) {
		struct pollfd p = {fd, POLLIN, 0};
		ssize_t n;

		if (poll(&p, 1, 100) <= 0)
			continue;
		n = recv(fd, buf + got, sizeof(buf) - 1 - got, 0);
		if (n <= 0)
			break;
		got += (size_t)n;
		buf[got] = '\0';
		if (strstr(buf, "\r\n\r\n") && strstr(buf, "HTTP/1.1 200"))
			break;
	}
	close(fd);
	buf[got] = '\0';
	if (!strstr(buf, "HTTP/1.1 200"))
		return -1;
	return (double)(util_mono_us() - t0) / 1000.0;
}

static void *probe_main(void *arg)
{
	struct probe_stats *ps = arg;

	while (!ps->stop && ps->n < (int)ARRAY_SIZE(ps->ms)) {
		double ms = probe_once(ps->port);
		if (ms < 0) {
			ps->failed++;
			ms = 5000;
		}
		ps->ms[ps->n++] = ms;
		usleep(100000);
	}
	return NULL;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/*
 * TRICKLE_CONNS connections from naddrs addresses (127.0.0.2 on), each
 * sending a header byte every 3 s, for seconds, while /healthz is asked from
 * 127.0.0.99 ten times a second. Fills ps with the probes, sorted; returns
 * how many connections parleyd held past the request deadline (+3 s).
 */
static long trickle(int naddrs, int seconds, struct probe_stats *ps)
{
	static struct trickler t[TRICKLE_CONNS];
	static struct pollfd pfd[TRICKLE_CONNS];
	/* a request whose headers never end: one more header byte every gap */
	static const char head[] = "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ";
	pthread_t th;
	int64_t t0, end;
	long opened = 0, closed_by_server = 0, held_too_long = 0;
	double longest_s = 0, base_max = 0;
	char src[32];
	int i, peak_open = 0;
	long hwm;

	for (i = 0; i < 10; i++) {
		double ms = probe_once(parleyd.port);
		ck_assert(ms >= 0);
		if (ms > base_max)
			base_max = ms;
	}
	ps->port = parleyd.port;
	t0 = util_mono_us();
	end = t0 + (int64_t)seconds * 1000000;
	for (i = 0; i < TRICKLE_CONNS; i++) {
		t[i].fd = -1;
		t[i].next_us = t0 + (int64_t)i * 1000; /* open them over 2 s */
	}
	ck_assert_int_eq(pthread_create(&th, NULL, probe_main, ps), 0);
	while (util_mono_us() < end) {
		int64_t now = util_mono_us();
		int n = 0, nopen = 0;

		for (i = 0; i < TRICKLE_CONNS; i++) {
			if (t[i].fd < 0 && now >= t[i].next_us) {
				snprintf(src, sizeof(src), "127.0.0.%d", 2 + i % naddrs);
				t[i].fd = connect_from(src, parleyd.port, 1);
				t[i].opened_us = now;
				t[i].sent = 0;
				t[i].next_us = now + 50000; /* the first bytes once connected */
				opened++;
			}
			if (t[i].fd < 0)
				continue;
			nopen++;
			if (now >= t[i].next_us) {
				/* the request line at once, then one more header byte every gap */
				ssize_t w =
				    t[i].sent ? send(t[i].fd, "a", 1, MSG_NOSIGNAL)
					      : send(t[i].fd, head, sizeof(head) - 1, MSG_NOSIGNAL);
				if (w > 0)
					t[i].sent += (size_t)w;
				/* not connected yet: try again shortly */
				t[i].next_us = now + (w > 0 ? TRICKLE_GAP_MS * 1000LL : 50000);
			}
			pfd[n].fd = t[i].fd;
			pfd[n].events = POLLIN;
			pfd[n].revents = 0;
			n++;
		}
		if (nopen > peak_open)
			peak_open = nopen;
		poll(pfd, (nfds_t)n, 20);
		now = util_mono_us();
		for (i = 0; i < TRICKLE_CONNS; i++) {
			char buf[512];
			ssize_t r;

			if (t[i].fd < 0)
				continue;
			r = recv(t[i].fd, buf, sizeof(buf), MSG_DONTWAIT);
			if (r > 0 ||
			    (r < 0 && errno != EAGAIN && errno != EWOULDBLOCK &&
			     errno != EINPROGRESS && errno != ENOTCONN) ||
			    r == 0) {
				double held = (double)(now - t[i].opened_us) / 1e6;
				if (held > longest_s)
					longest_s = held;
				closed_by_server++;
				close(t[i].fd);
				t[i].fd = -1;
				/* a bot tries again, but not in a tight loop */
				t[i].next_us = now + TRICKLE_GAP_MS * 1000LL;
			} else if (now - t[i].opened_us > (REQUEST_TIMEOUT_S + 3) * 1000000LL) {
				held_too_long++;
				close(t[i].fd);
				t[i].fd = -1;
				t[i].next_us = now + TRICKLE_GAP_MS * 1000LL;
			}
		}
	}
	ps->stop = 1;
	pthread_join(th, NULL);
	hwm = proc_kb(parleyd.pid, "VmHWM");
	for (i = 0; i < TRICKLE_CONNS; i++)
		if (t[i].fd >= 0)
			close(t[i].fd);
	qsort(ps->ms, (size_t)ps->n, sizeof(double), cmp_double);
	printf("hostile: %d s of %d trickling connections from %d addresses (%ld opened, %ld "
	       "closed by parleyd, longest held %.1f s, %ld held past %d s): /healthz from a new "
	       "address %d probes, %d failed, p50 %.1f ms, p99 %.1f ms, max %.1f ms (%.1f ms "
	       "before); parleyd peak RSS %ld kB\n",
	       seconds, TRICKLE_CONNS, naddrs, opened, closed_by_server, longest_s, held_too_long,
	       REQUEST_TIMEOUT_S + 3, ps->n, ps->failed, ps->ms[ps->n / 2],
	       ps->ms[(ps->n * 99) / 100], ps->ms[ps->n - 1], base_max, hwm);
	ps->base_max = base_max;
	return held_too_long;
}

START_TEST(trickling_clients_leave_room)
{
	int seconds = getenv("CHAOS_FULL") ? 40 : 12;
	struct probe_stats *ps = xcalloc(1, sizeof(*ps));

	start("", NULL);
	/* 8 addresses at the per-address limit hold half the slots: a new client gets in */
	ck_assert_int_eq(trickle(TRICKLE_ADDRS, seconds, ps), 0);
	ck_assert_int_gt(ps->n, seconds * 3);
	ck_assert_int_eq(ps->failed, 0);
	/* the goal is 100 ms; the margin is for a loaded 2-core machine */
	ck_assert_msg(ps->ms[ps->n - 1] < 1000.0 + 10 * ps->base_max, "/healthz took %.1f ms",
		      ps->ms[ps->n - 1]);
	ck_assert_int_eq(harness_http(parleyd.port, "GET", "/healthz", NULL, NULL, NULL), 200);
	free(ps);
	stop();
}
END_TEST

START_TEST(trickling_from_more_addresses_than_slots)
{
	struct probe_stats *ps = xcalloc(1, sizeof(*ps));

	start("", NULL);
	/*
	 * 24 addresses could hold 1,536 slots of 1,024: once three quarters are
	 * taken, a request gets 2 s to arrive instead of 10, so a new client waits
	 * at most about that long, where it waited until the 10 s deadline before
	 */
	ck_assert_int_eq(trickle(24, 12, ps), 0);
	ck_assert_int_eq(ps->failed, 0);
	ck_assert_int_gt(ps->n, 12 * 3);
	ck_assert_msg(ps->ms[ps->n / 2] < 100.0 + 10 * ps->base_max, "p50 %.1f ms",
		      ps->ms[ps->n / 2]);
	ck_assert_msg(ps->ms[ps->n - 1] < 3500.0, "/healthz took %.1f ms", ps->ms[ps->n - 1]);
	ck_assert_int_eq(harness_http(parleyd.port, "GET", "/healthz", NULL, NULL, NULL), 200);
	free(ps);
	stop();
}
END_TEST

/* ---- item 6: a backend that never stops streaming ---- */

#define RSS_LIMIT_KB (128 * 1024)

/* Runs one job whose first turn streams forever; returns peak RSS in kB while it ran. */
static long endless_job(const char *backend, int *seconds)
{
	char body[512], *id;
	json_t *job = NULL, *t, *t1;
	int64_t t0 = util_mono_us();
	long peak = 0, kb;
	const char *status = NULL;

	fault("{\"mode\":\"endless\",\"after_tokens\":2,\"model\":\"iv\"}");
	snprintf(body, sizeof(body),
		 "{\"scenario\":\"response_speed_optimization\",\"interviewer\":{\"model\":\"iv\","
		 "\"backend\":\"%s\"},\"candidate\":{\"model\":\"cd\",\"backend\":\"%s\"},"
		 "\"max_turns\":3}",
		 backend, backend);
	id = post_job(body);
	while (util_mono_us() - t0 < 90 * 1000000LL) {
		char path[96];
		kb = proc_kb(parleyd.pid, "VmRSS");
		if (kb > peak)
			peak = kb;
		/* never let a runaway take the machine down with it */
		ck_assert_msg(kb < 4 * RSS_LIMIT_KB, "parleyd RSS passed %ld kB", kb);
		snprintf(path, sizeof(path), "/v1/jobs/%s", id);
		json_decref(job);
		job = NULL;
		harness_http_json(parleyd.port, "GET", path, NULL, &job);
		status = json_string_value(json_object_get(job, "status"));
		if (status && strcmp(status, "queued") && strcmp(status, "running"))
			break;
		usleep(20000);
	}
	*seconds = (int)((util_mono_us() - t0) / 1000000);
	kb = proc_kb(parleyd.pid, "VmHWM");
	if (kb > peak)
		peak = kb;
	/* the cut turn stands; the next may then not fit a small context, which is said */
	ck_assert_msg(
	    status &&
		(!strcmp(status, "succeeded") ||
		 (!strcmp(status, "failed") &&
		  !strcmp(json_string_value(json_object_get(json_object_get(job, "error"), "code")),
			  "context_overflow"))),
	    "the job is %s: %s", status, json_dumps(json_object_get(job, "error"), 0));
	t = transcript(id);
	t1 = turn_of(t, 0);
	printf("hostile: endless stream (%s): turn 1 cut at %zu bytes, job %s in %d s, peak RSS "
	       "%ld kB; note: %s\n",
	       backend, strlen(json_string_value(json_object_get(t1, "message"))), status, *seconds,
	       peak, json_string_value(json_object_get(t1, "note")));
	ck_assert_uint_le(strlen(json_string_value(json_object_get(t1, "message"))), 4u << 20);
	ck_assert_uint_ge(strlen(json_string_value(json_object_get(t1, "message"))),
			  (4u << 20) - 16384);
	ck_assert_ptr_nonnull(
	    strstr(json_string_value(json_object_get(t1, "note")), "max_reply_bytes"));
	ck_assert_str_eq(
	    json_string_value(json_object_get(json_object_get(t1, "metrics"), "finish_reason")),
	    "length");
	json_decref(t);
	json_decref(job);
	free(id);
	return peak;
}

START_TEST(endless_stream_is_cut)
{
	long peak_o, peak_l;
	int s_o, s_l;

	start("", NULL);
	peak_o = endless_job("ollama", &s_o);
	peak_l = endless_job("llama", &s_l);
	ck_assert_int_lt(peak_o, RSS_LIMIT_KB);
	ck_assert_int_lt(peak_l, RSS_LIMIT_KB);
	stop();
}
END_TEST

/* ---- item 10: model output that is not clean text ---- */

static void unclean_job(const char *backend)
{
	char body[512], *id, path[128], *md = NULL;
	json_t *job, *t;
	long before = fake_stat("chat_requests");
	size_t i;

	fault("{\"mode\":\"invalid_utf8\",\"after_tokens\":2,\"model\":\"iv\"}");
	fault("{\"mode\":\"lone_surrogate\",\"after_tokens\":1,\"model\":\"cd\"}");
	snprintf(body, sizeof(body),
		 "{\"scenario\":\"response_speed_optimization\",\"interviewer\":{\"model\":\"iv\","
		 "\"backend\":\"%s\"},\"candidate\":{\"model\":\"cd\",\"backend\":\"%s\"},"
		 "\"max_turns\":3}",
		 backend, backend);
	id = post_job(body);
	job = harness_wait_job(parleyd.port, id, 30000);
	ck_assert_str_eq(json_string_value(json_object_get(job, "status")), "succeeded");
	t = transcript(id);
	for (i = 0; i < 2; i++) {
		json_t *ti = turn_of(t, i);
		const char *msg = json_string_value(json_object_get(ti, "message"));
		const char *note = json_string_value(json_object_get(ti, "note"));
		ck_assert_ptr_nonnull(msg);
		ck_assert_msg(strstr(msg, "\xEF\xBF\xBD"), "turn %zu has no U+FFFD: %s", i + 1,
			      msg);
		ck_assert_msg(note && strstr(note, "U+FFFD"), "turn %zu note: %s", i + 1, note);
		ck_assert_int_eq(
		    json_integer_value(json_object_get(json_object_get(ti, "metrics"), "attempts")),
		    1);
	}
	/* three turns, three calls: nothing was retried */
	ck_assert_int_eq(fake_stat("chat_requests") - before, 3);
	printf("hostile: unclean output (%s): turn 1 note: %s\n", backend,
	       json_string_value(json_object_get(turn_of(t, 0), "note")));
	snprintf(path, sizeof(path), "/v1/jobs/%s/transcript.md", id);
	ck_assert_int_eq(harness_http(parleyd.port, "GET", path, NULL, NULL, &md), 200);
	ck_assert_ptr_nonnull(strstr(md, "\xEF\xBF\xBD"));
	free(md);
	json_decref(t);
	json_decref(job);
	free(id);
}

START_TEST(unclean_output_is_repaired_not_retried)
{
	static const char script[] =
	    "{\"models\":{\"ctl\":{\"replies\":[\"red \\u001b[31mALERT\\u001b[0m\\rover"
	    "\\u007fwritten \\u001b]0;title\\u0007 done\"]}}}";
	char *id, *md = NULL, path[128];
	json_t *job, *t;
	long before;

	start("", NULL);
	unclean_job("ollama");
	unclean_job("llama");

	/* terminal control characters reach neither transcript.md nor the log raw */
	ck_assert_int_eq(harness_http(fake.port, "POST", "/_fake/script", script, NULL, NULL), 200);
	id = post_job("{\"scenario\":\"response_speed_optimization\",\"interviewer\":{\"model\":"
		      "\"ctl\"},\"candidate\":{\"model\":\"ctl\"},\"max_turns\":3}");
	job = harness_wait_job(parleyd.port, id, 30000);
	ck_assert_str_eq(json_string_value(json_object_get(job, "status")), "succeeded");
	t = transcript(id);
	/* the JSON keeps the model's text exactly; only the terminal view neutralises it */
	ck_assert_ptr_nonnull(
	    strstr(json_string_value(json_object_get(turn_of(t, 0), "message")), "\x1b[31m"));
	snprintf(path, sizeof(path), "/v1/jobs/%s/transcript.md", id);
	ck_assert_int_eq(harness_http(parleyd.port, "GET", path, NULL, NULL, &md), 200);
	ck_assert_ptr_null(strchr(md, '\x1b'));
	ck_assert_ptr_null(strchr(md, '\r'));
	ck_assert_ptr_null(strchr(md, '\x7f'));
	ck_assert_ptr_null(strchr(md, '\x07'));
	ck_assert_ptr_nonnull(strstr(md, "\xE2\x90\x9B[31mALERT")); /* U+241B, visible */
	free(md);
	json_decref(t);
	json_decref(job);
	free(id);

	/* a redirect answers the same on every try: one call, and the job says why */
	before = fake_stat("chat_requests");
	fault("{\"mode\":\"redirect\",\"model\":\"iv\"}");
	id = post_job(job_body);
	job = harness_wait_job(parleyd.port, id, 30000);
	ck_assert_str_eq(json_string_value(json_object_get(job, "status")), "failed");
	ck_assert_ptr_nonnull(
	    strstr(json_string_value(json_object_get(json_object_get(job, "error"), "message")),
		   "redirect"));
	ck_assert_int_eq(fake_stat("chat_requests") - before, 1);
	json_decref(job);
	free(id);
	stop();
}
END_TEST

/* ---- item 8: log injection ---- */

START_TEST(names_cannot_forge_log_lines)
{
	static const char forged[] = "{\"scenario\":\"response_speed_optimization\","
				     "\"interviewer\":{\"model\":\"x\\nts=2026-01-01T00:00:00Z "
				     "level=error msg=\\\"forged\\\"\"},"
				     "\"candidate\":{\"model\":\"cd\\u001b[2J\"}}";
	char *out = NULL, *log;
	json_t *j, *errs;
	const char *line;
	size_t n = 0;

	start("\"log_level\": \"debug\"", NULL);
	ck_assert_int_eq(harness_http(parleyd.port, "POST", "/v1/jobs", forged, NULL, &out), 400);
	j = json_loads(out, 0, NULL);
	errs = json_object_get(j, "errors");
	ck_assert_uint_eq(json_array_size(errs), 2);
	ck_assert_str_eq(json_string_value(json_object_get(json_array_get(errs, 0), "field")),
			 "interviewer.model");
	ck_assert_str_eq(json_string_value(json_object_get(json_array_get(errs, 1), "field")),
			 "candidate.model");
	json_decref(j);
	free(out);
	ck_assert_int_eq(count_jobs(), 0);
	/* a value that does reach the log (the request path) stays on its line */
	ck_assert_int_eq(harness_http(parleyd.port, "GET",
				      "/v1/jobs/x%0Ats=2026-01-01T00:00:00Z%20level=error%20msg="
				      "%22forged%22%1b%5B2J",
				      NULL, NULL, NULL),
			 404);
	stop();
	log = harness_slurp(parleyd.log, NULL);
	ck_assert_ptr_nonnull(log);
	for (line = log; line && *line; line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL) {
		ck_assert_msg(!strncmp(line, "ts=", 3), "a log line does not start with ts=: %.80s",
			      line);
		n++;
	}
	ck_assert_ptr_null(strchr(log, '\x1b'));
	ck_assert_ptr_nonnull(strstr(log, "x\\nts=2026-01-01T00:00:00Z level=error"));
	printf("hostile: log injection: %zu log lines, every one starts with ts=\n", n);
	free(log);
}
END_TEST

/* ---- item 11: libmicrohttpd's own refusals ---- */

/* Sends req on a new connection and returns all that comes back until it closes. */
static char *raw_exchange(const struct strbuf *rq)
{
	int fd = connect_from("127.0.0.1", parleyd.port, 0);
	struct strbuf out;
	size_t off = 0;
	int64_t t0 = util_mono_us();

	ck_assert_int_ge(fd, 0);
	strbuf_init(&out, 1024);
	while (off < rq->len) {
		ssize_t n = send(fd, rq->buf + off, rq->len - off, MSG_NOSIGNAL);
		if (n <= 0)
			break; /* refused before the end: the answer is what counts */
		off += (size_t)n;
	}
	while (util_mono_us() - t0 < 10000000) {
		struct pollfd p = {fd, POLLIN, 0};
		char buf[4096];
		ssize_t n;

		if (poll(&p, 1, 100) <= 0)
			continue;
		n = recv(fd, buf, sizeof(buf), 0);
		if (n <= 0)
			break;
		strbuf_add(&out, buf, (size_t)n);
	}
	close(fd);
	return strbuf_detach(&out, NULL);
}

START_TEST(oversized_requests_get_problem_documents)
{
	struct strbuf rq;
	char *ans;

	start("", NULL);
	/* a URI past 8 KiB */
	strbuf_init(&rq, 0);
	strbuf_addstr(&rq, "GET /v1/jobs/");
	for (int i = 0; i < 9000; i++)
		strbuf_addch(&rq, 'a');
	strbuf_addstr(&rq, " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
	ans = raw_exchange(&rq);
	ck_assert_msg(!strncmp(ans, "HTTP/1.1 414", 12), "%.200s", ans);
	ck_assert_ptr_nonnull(strstr(ans, "application/problem+json"));
	ck_assert_ptr_nonnull(strstr(ans, "\"status\":414"));
	free(ans);
	strbuf_release(&rq);
	/* headers past 32 KiB */
	strbuf_init(&rq, 0);
	strbuf_addstr(&rq, "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n");
	for (int h = 0; h < 5; h++) {
		strbuf_addf(&rq, "X-Big-%d: ", h);
		for (int i = 0; i < 8000; i++)
			strbuf_addch(&rq, 'b');
		strbuf_addstr(&rq, "\r\n");
	}
	strbuf_addstr(&rq, "\r\n");
	ans = raw_exchange(&rq);
	ck_assert_msg(!strncmp(ans, "HTTP/1.1 431", 12), "%.200s", ans);
	ck_assert_ptr_nonnull(strstr(ans, "application/problem+json"));
	ck_assert_ptr_nonnull(strstr(ans, "\"status\":431"));
	free(ans);
	strbuf_release(&rq);
	ck_assert_int_eq(harness_http(parleyd.port, "GET", "/healthz", NULL, NULL, NULL), 200);
	stop();
}
END_TEST

/* ---- item 6, the other half: serving large transcripts ---- */

#define BIG_TURN (12u << 20) /* max_reply_bytes here: three turns of 12 MiB */
#define NREADERS 8

struct reader {
	int port;
	char path[128];
	int status;
	size_t bytes;
};

/* GET path, the whole answer read and dropped; the status is kept. */
static void *reader_main(void *arg)
{
	struct reader *rd = arg;
	char rq[256], buf[65536];
	int fd = connect_from("127.0.0.1", rd->port, 0);
	ssize_t n;

	if (fd < 0)
		return NULL;
	snprintf(rq, sizeof(rq), "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n",
		 rd->path);
	if (send(fd, rq, strlen(rq), MSG_NOSIGNAL) > 0) {
		while ((n = recv(fd, buf, sizeof(buf) - 1, 0)) > 0) {
			if (!rd->bytes) {
				buf[n] = '\0';
				sscanf(buf, "HTTP/1.1 %d", &rd->status);
			}
			rd->bytes += (size_t)n;
		}
	}
	close(fd);
	return NULL;
}

/* n readers of the transcript at once (JSON and Markdown in turn); the peak RSS while they
 * read, in kB; *ok and *busy count the 200 and 503 answers, *largest the largest answer. */
static long serve_readers(const char *id, int n, int *ok, int *busy, size_t *largest)
{
	struct reader rd[NREADERS];
	pthread_t th[NREADERS];
	int i, joined[NREADERS] = {0};
	long peak = 0, kb;

	*ok = *busy = 0;
	for (i = 0; i < n; i++) {
		rd[i].port = parleyd.port;
		snprintf(rd[i].path, sizeof(rd[i].path), "/v1/jobs/%s/transcript%s", id,
			 i % 2 ? ".md" : "");
		rd[i].status = 0;
		rd[i].bytes = 0;
		ck_assert_int_eq(pthread_create(&th[i], NULL, reader_main, &rd[i]), 0);
	}
	for (;;) {
		int alive = 0;
		kb = proc_kb(parleyd.pid, "VmRSS");
		if (kb > peak)
			peak = kb;
		ck_assert_msg(kb < 3L * 1024 * 1024, "parleyd RSS passed %ld kB", kb);
		for (i = 0; i < n; i++) {
			if (!joined[i] && pthread_tryjoin_np(th[i], NULL) == 0)
				joined[i] = 1;
			alive += !joined[i];
		}
		if (!alive)
			break;
		usleep(5000);
	}
	for (i = 0; i < n; i++) {
		*ok += rd[i].status == 200;
		*busy += rd[i].status == 503;
		if (rd[i].status == 200 && rd[i].bytes > *largest)
			*largest = rd[i].bytes;
	}
	return peak;
}

START_TEST(large_transcripts_are_served_within_bounds)
{
	char extra[64], *id;
	json_t *job;
	long base_kb, one_kb, all_kb;
	int ok, busy;
	size_t largest = 0;
	double text = 3.0 * BIG_TURN;

	snprintf(extra, sizeof(extra), "\"max_reply_bytes\": %u", BIG_TURN);
	start(extra, NULL);
	fault("{\"mode\":\"endless\",\"after_tokens\":1,\"count\":-1}");
	id = post_job(job_body);
	job = harness_wait_job(parleyd.port, id, 60000);
	ck_assert_msg(!strcmp(json_string_value(json_object_get(job, "status")), "succeeded"), "%s",
		      json_dumps(json_object_get(job, "error"), 0));
	json_decref(job);
	usleep(500000);
	base_kb = proc_kb(parleyd.pid, "VmRSS");
	/* what one reader costs, then eight at once, in the same run */
	one_kb = serve_readers(id, 1, &ok, &busy, &largest);
	ck_assert_int_eq(ok, 1);
	all_kb = serve_readers(id, NREADERS, &ok, &busy, &largest);
	if (all_kb < one_kb)
		all_kb = one_kb;
	printf("hostile: a transcript of 3 x %u MiB: one reader +%ld MB (%.1f times its text); "
	       "%d at once: %d answered 200, %d 503 with Retry-After, +%ld MB (%.1f times)\n",
	       BIG_TURN >> 20, (one_kb - base_kb) / 1024, (one_kb - base_kb) * 1024.0 / text,
	       NREADERS, ok, busy, (all_kb - base_kb) / 1024, (all_kb - base_kb) * 1024.0 / text);
	ck_assert_int_ge(ok, 1);
	ck_assert_int_eq(ok + busy, NREADERS);
	ck_assert_uint_ge(largest, 3 * (size_t)BIG_TURN);
	/* eight readers cost about what one does (the allocator keeps some slack), not eight times
	 */
	ck_assert_msg(all_kb - base_kb < 2 * (one_kb - base_kb) + 32 * 1024,
		      "%d readers took %ld kB, one %ld kB", NREADERS, all_kb - base_kb,
		      one_kb - base_kb);
	free(id);
	stop();
}
END_TEST

int main(void)
{
	Suite *s = suite_create("hostile");
	TCase *tc = tcase_create("hostile");
	SRunner *sr;
	int failed;

	setvbuf(stdout, NULL, _IOLBF, 0); /* figures survive a failed check */
	harness_tmpdir();
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, hostile_pages_are_refused);
	tcase_add_test(tc, sign_out_revokes_the_session);
	tcase_add_test(tc, nul_in_paths_is_refused);
	tcase_add_test(tc, trickling_clients_leave_room);
	tcase_add_test(tc, trickling_from_more_addresses_than_slots);
	tcase_add_test(tc, endless_stream_is_cut);
	tcase_add_test(tc, unclean_output_is_repaired_not_retried);
	tcase_add_test(tc, names_cannot_forge_log_lines);
	tcase_add_test(tc, oversized_requests_get_problem_documents);
	tcase_add_test(tc, large_transcripts_are_served_within_bounds);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	harness_cleanup();
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
