/*
 * check_limits.c - nobody let in who should not be, nobody kept out who
 * should not be: the real parleyd with a config file that sets its limits
 * low (connection_timeout_s 2, max_connections_per_ip 32, max_json_depth 8,
 * max_queued_jobs 3, one worker). Slow clients that send half a request and
 * stop neither block another client nor hold their sockets past the timeout;
 * a declared Content-Length over the limit is refused before the body is
 * sent; JSON nested past the limit is a 400; a full queue is a 503 with
 * Retry-After. Raw sockets where curl would hide what is tested.
 */
#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "tests/harness.h"

#define CONN_TIMEOUT_S 2
#define PER_IP_LIMIT 32
#define MAX_DEPTH 8
#define MAX_QUEUED 3
#define NSLOW 50

static struct proc fake, parleyd;

static void start(const char *const *fake_args)
{
	char cfgpath[512], dbpath[512], backend[256];
	const char *args[] = {"--config", cfgpath, "--workers", "1", "--backend", backend, NULL};
	static int seq;
	FILE *f;

	/* each test runs in its own child process: the pid keeps their files apart */
	snprintf(cfgpath, sizeof(cfgpath), "%s/limits-%d-%d.json", harness_tmpdir(), (int)getpid(),
		 seq);
	snprintf(dbpath, sizeof(dbpath), "%s/limits-%d-%d.db", harness_tmpdir(), (int)getpid(),
		 seq++);
	f = fopen(cfgpath, "w");
	ck_assert_ptr_nonnull(f);
	fprintf(f,
		"{\"connection_timeout_s\": %d, \"max_connections_per_ip\": %d,\n"
		" \"max_json_depth\": %d, \"max_queued_jobs\": %d, \"drain_timeout_s\": 1}\n",
		CONN_TIMEOUT_S, PER_IP_LIMIT, MAX_DEPTH, MAX_QUEUED);
	ck_assert_int_eq(fclose(f), 0);
	ck_assert_int_eq(harness_fake_start(&fake, fake_args), 0);
	snprintf(backend, sizeof(backend),
		 "name=ollama,kind=ollama,url=http://127.0.0.1:%d,max_concurrency=1", fake.port);
	ck_assert_int_eq(harness_parleyd_start(&parleyd, dbpath, args), 0);
}

static void setup(void)
{
	start(NULL);
}

static void teardown(void)
{
	if (parleyd.pid > 0)
		harness_stop(&parleyd, SIGKILL);
	if (fake.pid > 0)
		harness_stop(&fake, SIGKILL);
}

/* A TCP connection to parleyd from the local address src ("127.0.0.2": another client). */
static int tcp_connect(const char *src, int port)
{
	struct sockaddr_in sin;
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	ck_assert_int_ge(fd, 0);
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	if (src) {
		ck_assert_int_eq(inet_pton(AF_INET, src, &sin.sin_addr), 1);
		ck_assert_msg(bind(fd, (struct sockaddr *)&sin, sizeof(sin)) == 0,
			      "cannot bind to %s: %s", src, strerror(errno));
	}
	sin.sin_port = htons((uint16_t)port);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ck_assert_msg(connect(fd, (struct sockaddr *)&sin, sizeof(sin)) == 0, "connect: %s",
		      strerror(errno));
	return fd;
}

static void send_all(int fd, const char *s, size_t len)
{
	while (len) {
		ssize_t n = send(fd, s, len, MSG_NOSIGNAL);
		ck_assert_msg(n > 0, "send: %s", strerror(errno));
		s += n;
		len -= (size_t)n;
	}
}

/*
 * Reads what fd receives until the peer closes it or timeout_ms passes.
 * Returns 1 when closed (EOF or reset), 0 on timeout; *out (when not NULL)
 * gets the bytes read.
 */
static int read_until_closed(int fd, int timeout_ms, struct strbuf *out)
{
	int64_t deadline = util_mono_us() + (int64_t)timeout_ms * 1000;

	for (;;) {
		struct pollfd p = {fd, POLLIN, 0};
		int64_t left = (deadline - util_mono_us()) / 1000;
		char buf[4096];
		ssize_t n;

		if (left <= 0)
			return 0;
		if (poll(&p, 1, (int)left) <= 0)
			continue;
		n = recv(fd, buf, sizeof(buf), 0);
		if (n == 0 || (n < 0 && errno == ECONNRESET))
			return 1;
		if (n < 0) {
			ck_assert_msg(errno == EINTR || errno == EAGAIN, "recv: %s",
				      strerror(errno));
			continue;
		}
		if (out)
			strbuf_add(out, buf, (size_t)n);
	}
}

/* One raw request with Connection: close; the whole answer (headers and body). */
static char *raw_request(const char *req, int timeout_ms)
{
	int fd = tcp_connect(NULL, parleyd.port);
	struct strbuf sb;

	strbuf_init(&sb, 1024);
	send_all(fd, req, strlen(req));
	read_until_closed(fd, timeout_ms, &sb);
	close(fd);
	return strbuf_detach(&sb, NULL);
}

/*
 * Polls the sockets not yet seen closed for up to wait_ms; each one found
 * closed gets its time since t0 in closed_at_ms. Returns how many it found.
 */
static int poll_closed(const int *fds, int *closed_at_ms, int64_t t0, int wait_ms)
{
	struct pollfd p[NSLOW];
	int n = 0, map[NSLOW], i, found = 0;

	for (i = 0; i < NSLOW; i++) {
		if (closed_at_ms[i] >= 0)
			continue;
		p[n].fd = fds[i];
		p[n].events = POLLIN;
		p[n].revents = 0;
		map[n++] = i;
	}
	if (n == 0 || poll(p, (nfds_t)n, wait_ms) <= 0)
		return 0;
	for (i = 0; i < n; i++) {
		if (p[i].revents && read_until_closed(p[i].fd, 50, NULL)) {
			closed_at_ms[map[i]] = (int)((util_mono_us() - t0) / 1000);
			found++;
		}
	}
	return found;
}

START_TEST(slow_clients_block_nobody_and_are_timed_out)
{
	/* two kinds of half a request: headers cut short, and a body cut short */
	static const char half_headers[] =
	    "POST /v1/jobs HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Ty";
	static const char half_body[] = "POST /v1/jobs HTTP/1.1\r\nHost: 127.0.0.1\r\n"
					"Content-Type: application/json\r\nContent-Length: 200\r\n"
					"\r\n{\"scenario\":";
	int fds[NSLOW], closed_at_ms[NSLOW], i, nclosed = 0, early, held = 0;
	int held_min = 1 << 30, held_max = 0, served_ms, job_ms;
	int64_t t0;
	char *id;
	json_t *j = NULL;

	t0 = util_mono_us();
	for (i = 0; i < NSLOW; i++) {
		fds[i] = tcp_connect("127.0.0.2", parleyd.port);
		if (i % 2)
			send_all(fds[i], half_headers, sizeof(half_headers) - 1);
		else
			send_all(fds[i], half_body, sizeof(half_body) - 1);
		closed_at_ms[i] = -1;
	}
	/*
	 * Those past the per-address limit are refused at once: they close long
	 * before the timeout could close any (half of it is the margin for a
	 * loaded machine), and no fixed sleep decides which is which.
	 */
	while (nclosed < NSLOW - PER_IP_LIMIT &&
	       util_mono_us() - t0 < CONN_TIMEOUT_S * 1000000LL / 2)
		nclosed += poll_closed(fds, closed_at_ms, t0, 100);
	early = nclosed;

	/* another client is served, reads and writes, while the others hold their sockets */
	ck_assert_int_eq(harness_http(parleyd.port, "GET", "/healthz", NULL, NULL, NULL), 200);
	served_ms = (int)((util_mono_us() - t0) / 1000);
	ck_assert_int_eq(harness_http_json(parleyd.port, "POST", "/v1/jobs",
					   "{\"scenario\":\"response_speed_optimization\","
					   "\"interviewer\":{\"model\":\"a\"},"
					   "\"candidate\":{\"model\":\"b\"}}",
					   &j),
			 202);
	job_ms = (int)((util_mono_us() - t0) / 1000);
	id = xstrdup(json_string_value(json_object_get(j, "id")));
	json_decref(j);

	/* every slow socket is closed: the rest by the timeout */
	while (nclosed < NSLOW && util_mono_us() - t0 < (CONN_TIMEOUT_S + 4) * 1000000LL)
		nclosed += poll_closed(fds, closed_at_ms, t0, 100);
	for (i = 0; i < NSLOW; i++) {
		close(fds[i]);
		if (closed_at_ms[i] < 0)
			continue;
		if (closed_at_ms[i] < CONN_TIMEOUT_S * 1000 / 2)
			continue; /* one of the early ones */
		held++;
		held_min = closed_at_ms[i] < held_min ? closed_at_ms[i] : held_min;
		held_max = closed_at_ms[i] > held_max ? closed_at_ms[i] : held_max;
	}
	printf(
	    "limits: %d half-open sockets from 127.0.0.2: %d refused at once (limit %d per "
	    "address), %d held and closed by the %d s timeout after %d to %d ms, %d never closed; "
	    "another client served after %d ms, a job submitted after %d ms\n",
	    NSLOW, early, PER_IP_LIMIT, held, CONN_TIMEOUT_S, held_min, held_max, NSLOW - nclosed,
	    served_ms, job_ms);
	ck_assert_int_eq(nclosed, NSLOW);
	ck_assert_int_eq(early, NSLOW - PER_IP_LIMIT);
	ck_assert_int_eq(held, PER_IP_LIMIT);
	/*
	 * Nobody waited for the slow clients: within this one run, the other
	 * client's job was answered before the first of them was timed out. Had
	 * they held the server, it would have been answered only after.
	 */
	ck_assert_msg(job_ms < held_min,
		      "a job was answered after %d ms, the first slow client timed out after %d ms",
		      job_ms, held_min);

	/* and the address that held them is welcome again */
	{
		int fd = tcp_connect("127.0.0.2", parleyd.port);
		struct strbuf sb;
		static const char req[] = "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n"
					  "Connection: close\r\n\r\n";
		strbuf_init(&sb, 256);
		send_all(fd, req, sizeof(req) - 1);
		ck_assert(read_until_closed(fd, 3000, &sb));
		ck_assert_msg(strncmp(sb.buf, "HTTP/1.1 200", 12) == 0, "got: %.80s", sb.buf);
		strbuf_release(&sb);
		close(fd);
	}
	free(id);
}
END_TEST

START_TEST(content_length_over_the_limit_is_refused_before_the_body)
{
	static const char req[] = "POST /v1/jobs HTTP/1.1\r\nHost: 127.0.0.1\r\n"
				  "Content-Type: application/json\r\n"
				  "Content-Length: 5000000\r\n\r\n";
	int64_t t0 = util_mono_us();
	int fd = tcp_connect(NULL, parleyd.port), closed;
	struct strbuf sb;

	/* headers only: the answer must come without a byte of the body */
	strbuf_init(&sb, 1024);
	send_all(fd, req, sizeof(req) - 1);
	closed = read_until_closed(fd, 3000, &sb);
	close(fd);
	ck_assert_msg(strncmp(sb.buf, "HTTP/1.1 413", 12) == 0, "got: %.200s", sb.buf);
	ck_assert_ptr_nonnull(strstr(sb.buf, "application/problem+json"));
	ck_assert_ptr_nonnull(strstr(sb.buf, "larger than 1048576 bytes"));
	printf("limits: Content-Length 5000000 refused with 413 in %lld ms, body unsent, "
	       "connection %s\n",
	       (long long)(util_mono_us() - t0) / 1000, closed ? "closed" : "kept open");
	strbuf_release(&sb);
	ck_assert_int_eq(harness_http(parleyd.port, "GET", "/v1/jobs", NULL, NULL, NULL), 200);
}
END_TEST

/* A job body whose labels.x is the given JSON value. */
static int post_with_label(const char *value, char **out)
{
	char body[1024];

	snprintf(body, sizeof(body),
		 "{\"scenario\":\"response_speed_optimization\",\"interviewer\":{\"model\":\"a\"},"
		 "\"candidate\":{\"model\":\"b\"},\"labels\":{\"x\":%s}}",
		 value);
	return harness_http(parleyd.port, "POST", "/v1/jobs", body, NULL, out);
}

START_TEST(json_nested_past_the_limit_is_a_400)
{
	struct strbuf v;
	char *out = NULL;
	int i;

	/* the body is depth 2 before the label: depth MAX_DEPTH + 1 in all */
	strbuf_init(&v, 64);
	for (i = 0; i < MAX_DEPTH - 1; i++)
		strbuf_addch(&v, '[');
	for (i = 0; i < MAX_DEPTH - 1; i++)
		strbuf_addch(&v, ']');
	ck_assert_int_eq(post_with_label(v.buf, &out), 400);
	ck_assert_msg(strstr(out, "nested deeper than 8 levels") != NULL, "got: %s", out);
	free(out);
	/* at the limit: refused for what it is (labels are strings), not for its depth */
	strbuf_reset(&v);
	for (i = 0; i < MAX_DEPTH - 2; i++)
		strbuf_addch(&v, '[');
	for (i = 0; i < MAX_DEPTH - 2; i++)
		strbuf_addch(&v, ']');
	ck_assert_int_eq(post_with_label(v.buf, &out), 400);
	ck_assert_msg(strstr(out, "nested") == NULL && strstr(out, "labels.x") != NULL, "got: %s",
		      out);
	free(out);
	/* brackets inside a string are text, not depth */
	ck_assert_int_eq(post_with_label("\"[[[[[[[[[[{{{{{{{{{{ \\\" [[[[[[[[\"", &out), 202);
	free(out);
	strbuf_release(&v);
}
END_TEST

/*
 * Found by fuzz_jobs: an error message that quotes a key cut to fit ("%.64s")
 * could end inside a UTF-8 character; jansson refused the string and the
 * error was dropped, so the job was accepted with a label key the rules
 * forbid. And a body with bytes that are not UTF-8 got a problem document
 * without its detail.
 */
START_TEST(errors_that_quote_the_request_are_never_lost)
{
	char body[512], *out = NULL;
	json_t *p;

	/* a label key of 63 ASCII bytes and an 'é': "%.64s" cuts the 'é' in two */
	snprintf(body, sizeof(body),
		 "{\"scenario\":\"response_speed_optimization\",\"interviewer\":{\"model\":"
		 "\"a\"},\"candidate\":{\"model\":\"b\"},\"labels\":{\"%s\xc3\xa9\":\"v\"}}",
		 "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa");
	ck_assert_int_eq(harness_http(parleyd.port, "POST", "/v1/jobs", body, NULL, &out), 400);
	p = json_loads(out, 0, NULL);
	ck_assert_msg(p != NULL, "not JSON: %s", out);
	ck_assert_str_eq(json_string_value(json_object_get(
			     json_array_get(json_object_get(p, "errors"), 0), "field")),
			 "labels");
	json_decref(p);
	free(out);

	/* not UTF-8: the parser's message quotes the bad bytes */
	ck_assert_int_eq(harness_http(parleyd.port, "POST", "/v1/jobs",
				      "{\"scenario\":\"\xc7\xa3\x8a\x97\"}", NULL, &out),
			 400);
	p = json_loads(out, 0, NULL);
	ck_assert_msg(json_is_string(json_object_get(p, "detail")), "no detail: %s", out);
	json_decref(p);
	free(out);
	ck_assert_int_eq(harness_http(parleyd.port, "GET", "/v1/jobs", NULL, NULL, &out), 200);
	ck_assert_ptr_nonnull(strstr(out, "\"items\":[]"));
	free(out);
}
END_TEST

static int is_running(json_t *job, void *ud)
{
	(void)ud;
	return strcmp(json_string_value(json_object_get(job, "status")), "running") == 0;
}

static char *submit(int want)
{
	json_t *j = NULL;
	int st =
	    harness_http_json(parleyd.port, "POST", "/v1/jobs",
			      "{\"scenario\":\"job_extraction_improvement\","
			      "\"interviewer\":{\"model\":\"a\"},\"candidate\":{\"model\":\"b\"}}",
			      &j);
	char *id;

	ck_assert_msg(st == want, "POST /v1/jobs gave %d, want %d", st, want);
	id = xstrdup_or_null(json_string_value(json_object_get(j, "id")));
	json_decref(j);
	return id;
}

START_TEST(a_full_queue_is_a_503_with_retry_after)
{
	const char *slow[] = {"--token-delay-ms", "200", NULL};
	static const char body[] =
	    "{\"scenario\":\"job_extraction_improvement\","
	    "\"interviewer\":{\"model\":\"a\"},\"candidate\":{\"model\":\"b\"}}";
	char *ids[MAX_QUEUED + 1], req[1024], path[128], *resp;
	json_t *job;
	int i;

	/* a slow fake: the one worker stays on its job, the rest wait in the queue */
	teardown();
	start(slow);
	ids[0] = submit(202);
	job = harness_wait_until(parleyd.port, ids[0], 10000, is_running, NULL);
	ck_assert_ptr_nonnull(job);
	json_decref(job);
	for (i = 1; i <= MAX_QUEUED; i++)
		ids[i] = submit(202);

	snprintf(req, sizeof(req),
		 "POST /v1/jobs HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
		 "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n%s",
		 sizeof(body) - 1, body);
	resp = raw_request(req, 5000);
	ck_assert_msg(strncmp(resp, "HTTP/1.1 503", 12) == 0, "got: %.300s", resp);
	ck_assert_msg(strcasestr(resp, "\r\nRetry-After: ") != NULL, "no Retry-After: %.300s",
		      resp);
	ck_assert_ptr_nonnull(strstr(resp, "application/problem+json"));
	ck_assert_ptr_nonnull(strstr(resp, "queue is full"));
	printf("limits: with %d jobs queued the next POST got: %.*s\n", MAX_QUEUED,
	       (int)strcspn(resp, "\r\n"), resp);
	free(resp);

	/* a cancelled job frees its place */
	snprintf(path, sizeof(path), "/v1/jobs/%s/cancel", ids[MAX_QUEUED]);
	ck_assert_int_eq(harness_http(parleyd.port, "POST", path, "", NULL, NULL), 202);
	free(submit(202));
	free(submit(503));
	for (i = 0; i <= MAX_QUEUED; i++)
		free(ids[i]);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("limits");
	TCase *tc = tcase_create("parleyd");
	SRunner *sr;
	int failed;

	setvbuf(stdout, NULL, _IOLBF, 0);
	harness_tmpdir();
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, slow_clients_block_nobody_and_are_timed_out);
	tcase_add_test(tc, content_length_over_the_limit_is_refused_before_the_body);
	tcase_add_test(tc, json_nested_past_the_limit_is_a_400);
	tcase_add_test(tc, a_full_queue_is_a_503_with_retry_after);
	tcase_add_test(tc, errors_that_quote_the_request_are_never_lost);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	harness_cleanup();
	return failed ? 1 : 0;
}
