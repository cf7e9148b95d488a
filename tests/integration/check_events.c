/*
 * check_events.c - GET /v1/jobs/{id}/events against the real parleyd: a
 * finished job replays its history and ends; a client that reconnects with
 * Last-Event-ID gets only what it missed, then the live stream; a client
 * that stops reading slows no worker and grows no memory.
 */
#include <arpa/inet.h>
#include <check.h>
#include <curl/curl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "tests/harness.h"

static struct proc fake, parleyd;
static char dbpath[512];

static void start(const char *delay_ms)
{
	const char *fargs[] = {"--token-delay-ms", delay_ms, NULL};

	snprintf(dbpath, sizeof(dbpath), "%s/events-%d.db", harness_tmpdir(), (int)getpid());
	ck_assert_int_eq(harness_start_with_ollama(&fake, fargs, &parleyd, dbpath, 4), 0);
}

static void stop(void)
{
	harness_stop(&parleyd, SIGTERM);
	harness_stop(&fake, SIGTERM);
}

static char *submit(void)
{
	return harness_submit(parleyd.port, "{\"scenario\":\"response_speed_optimization\","
					    "\"interviewer\":{\"model\":\"gemma3:1b\"},"
					    "\"candidate\":{\"model\":\"gemma3n:latest\"}}");
}

struct stream {
	struct strbuf text;
	const char *stop_after; /* stop once this event has been seen */
};

static size_t on_data(char *data, size_t size, size_t nmemb, void *ud)
{
	struct stream *s = ud;

	strbuf_add(&s->text, data, size * nmemb);
	if (s->stop_after) {
		char needle[64];
		snprintf(needle, sizeof(needle), "event: %s\n", s->stop_after);
		if (strstr(s->text.buf, needle) && strstr(strstr(s->text.buf, needle), "\n\n"))
			return 0; /* enough: hang up */
	}
	return size * nmemb;
}

/* Reads the event stream until it ends, stop_after is seen, or timeout. */
static char *read_events(const char *id, const char *last_id, const char *stop_after,
			 long timeout_ms, int *ended)
{
	struct stream s = {{0}, stop_after};
	struct curl_slist *h = NULL;
	char url[256], hdr[128];
	CURL *c = curl_easy_init();
	CURLcode rc;

	strbuf_init(&s.text, 0);
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/v1/jobs/%s/events", parleyd.port, id);
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, timeout_ms);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &s);
	if (last_id) {
		snprintf(hdr, sizeof(hdr), "Last-Event-ID: %s", last_id);
		h = curl_slist_append(h, hdr);
		curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
	}
	rc = curl_easy_perform(c);
	*ended = rc == CURLE_OK; /* the server closed the stream itself */
	curl_slist_free_all(h);
	curl_easy_cleanup(c);
	return strbuf_detach(&s.text, NULL);
}

static int count(const char *text, const char *needle)
{
	int n = 0;

	for (; (text = strstr(text, needle)); text += strlen(needle))
		n++;
	return n;
}

START_TEST(finished_job_replays_and_ends)
{
	char *id, *text;
	json_t *job;
	int ended;

	start("0");
	id = submit();
	job = harness_wait_job(parleyd.port, id, 20000);
	ck_assert_ptr_nonnull(job);
	json_decref(job);
	text = read_events(id, NULL, NULL, 5000, &ended);
	ck_assert_msg(ended, "the stream of a finished job must end");
	ck_assert_int_eq(count(text, "event: turn_finished\n"), 3);
	ck_assert_int_eq(count(text, "event: job_finished\n"), 1);
	ck_assert_int_eq(count(text, "event: token\n"), 0);
	ck_assert_ptr_nonnull(strstr(text, "\"speaker\":\"candidate\""));
	ck_assert_ptr_nonnull(strstr(text, "\"ttft_ms\""));
	/* every event has an id */
	ck_assert_int_eq(count(text, "\nid: ") + (strncmp(text, "id: ", 4) == 0),
			 count(text, "event: "));
	free(text);
	free(id);
	stop();
}
END_TEST

START_TEST(reconnect_with_last_event_id)
{
	char *id, *text, *p, last[32];
	int ended, n;

	start("4");
	id = submit();
	/* watch live until the first turn is finished, then hang up */
	text = read_events(id, NULL, "turn_finished", 20000, &ended);
	ck_assert_int_gt(count(text, "event: token\n"), 5);
	ck_assert_int_eq(count(text, "event: turn_finished\n"), 1);
	p = strstr(text, "event: turn_finished\n");
	/* the id line stands right before the event line */
	while (p > text && strncmp(p, "id: ", 4) != 0)
		p--;
	n = sscanf(p, "id: %31s", last);
	ck_assert_int_eq(n, 1);
	ck_assert_int_eq(atoi(last), 1);
	free(text);
	/* come back: turn 1 is not sent again, turns 2 and 3 are, then the end */
	text = read_events(id, last, NULL, 30000, &ended);
	ck_assert(ended);
	ck_assert_ptr_null(strstr(text, "\"turn\":1,\"speaker\":\"interviewer\",\"model\""));
	ck_assert_int_eq(count(text, "event: turn_finished\n"), 2);
	ck_assert_int_eq(count(text, "event: job_finished\n"), 1);
	free(text);
	free(id);
	stop();
}
END_TEST

/* Concatenates the text of every token event of turn in an event stream. */
static void tokens_of(const char *text, int turn, struct strbuf *out)
{
	const char *p = text;

	while ((p = strstr(p, "event: token\ndata: "))) {
		const char *data = p + strlen("event: token\ndata: ");
		const char *end = strchr(data, '\n');
		json_t *j = json_loadb(data, (size_t)(end - data), 0, NULL);
		if (j && json_integer_value(json_object_get(j, "turn")) == turn)
			strbuf_addstr(out, json_string_value(json_object_get(j, "text")));
		json_decref(j);
		p = end;
	}
}

START_TEST(joining_mid_turn_shows_the_whole_turn)
{
	struct strbuf got;
	char *id, *text, *fin;
	json_t *t;
	int ended;

	start("15");
	id = submit();
	usleep(400000); /* turn 1 is part written */
	text = read_events(id, NULL, "turn_finished", 20000, &ended);
	strbuf_init(&got, 0);
	tokens_of(text, 1, &got);
	fin = strstr(text, "event: turn_finished\ndata: ");
	ck_assert_ptr_nonnull(fin);
	fin += strlen("event: turn_finished\ndata: ");
	t = json_loadb(fin, (size_t)(strchr(fin, '\n') - fin), 0, NULL);
	ck_assert_ptr_nonnull(t);
	/* the tokens seen add up to the whole turn, from its first word */
	ck_assert_str_eq(got.buf, json_string_value(json_object_get(t, "message")));
	ck_assert_ptr_nonnull(json_object_get(t, "html"));
	json_decref(t);
	/* the replayed turn_started says which attempt it is, as the live one does */
	ck_assert_ptr_nonnull(strstr(text, "event: turn_started\ndata: {\"turn\":1,"));
	ck_assert_ptr_nonnull(strstr(text, "\"attempt\":1"));
	strbuf_release(&got);
	free(text);
	free(id);
	stop();
}
END_TEST

/* The ids of the events in text, in order; "<turns>-<n>" parsed into pairs. */
static int event_ids(const char *text, long long ids[][2], int max)
{
	const char *p = text;
	int n = 0;

	while (n < max && (p = strstr(p, "id: "))) {
		if (p == text || p[-1] == '\n') {
			ck_assert_int_eq(sscanf(p, "id: %lld-%lld", &ids[n][0], &ids[n][1]), 2);
			n++;
		}
		p += 4;
	}
	return n;
}

/* The id of the last event of type in text (copied into out). */
static void last_id_of(const char *text, const char *type, char *out, size_t size)
{
	char needle[64];
	const char *p = NULL, *q = text;

	snprintf(needle, sizeof(needle), "event: %s\n", type);
	while ((q = strstr(q, needle)))
		p = q++;
	ck_assert_ptr_nonnull(p);
	while (p > text && strncmp(p, "id: ", 4) != 0)
		p--;
	snprintf(out, size, "%.*s", (int)strcspn(p + 4, "\n"), p + 4);
}

START_TEST(the_stream_rests_after_the_end)
{
	char *id, *text, *again, fin[64], turn3[64], path[160], hdr[128];
	const char *hdrs[] = {hdr, NULL};
	long long ids[4096][2];
	int ended, n, i;

	start("1");
	id = submit();
	/* live from the start to the end: ids unique and increasing */
	text = read_events(id, NULL, NULL, 30000, &ended);
	ck_assert_msg(ended, "the stream must end after job_finished");
	ck_assert_int_eq(count(text, "event: job_finished\n"), 1);
	n = event_ids(text, ids, 4096);
	ck_assert_int_gt(n, 10);
	for (i = 1; i < n; i++)
		ck_assert_msg(ids[i][0] > ids[i - 1][0] ||
				  (ids[i][0] == ids[i - 1][0] && ids[i][1] > ids[i - 1][1]),
			      "event %d: %lld-%lld after %lld-%lld", i, ids[i][0], ids[i][1],
			      ids[i - 1][0], ids[i - 1][1]);
	last_id_of(text, "job_finished", fin, sizeof(fin));
	last_id_of(text, "turn_finished", turn3, sizeof(turn3));
	free(text);

	/* the replay of the finished job: status and job_finished have ids of their own */
	again = read_events(id, NULL, NULL, 5000, &ended);
	n = event_ids(again, ids, 4096);
	ck_assert_int_eq(n, 5);
	ck_assert(ids[4][1] > ids[3][1] && ids[3][1] > ids[2][1]);
	free(again);

	/* back with job_finished's id: 204, which tells EventSource to stop */
	snprintf(path, sizeof(path), "/v1/jobs/%s/events", id);
	snprintf(hdr, sizeof(hdr), "Last-Event-ID: %s", fin);
	ck_assert_int_eq(harness_http(parleyd.port, "GET", path, NULL, hdrs, &again), 204);
	ck_assert_str_eq(again, "");
	free(again);
	/* past the end too */
	snprintf(hdr, sizeof(hdr), "Last-Event-ID: 99-0");
	ck_assert_int_eq(harness_http(parleyd.port, "GET", path, NULL, hdrs, NULL), 204);
	/* from before the end: what was missed, then the stream ends */
	again = read_events(id, turn3, NULL, 5000, &ended);
	ck_assert(ended);
	ck_assert_int_eq(count(again, "event: turn_finished\n"), 0);
	ck_assert_int_eq(count(again, "event: job_finished\n"), 1);
	free(again);
	free(id);
	stop();
}
END_TEST

static long rss_kb(pid_t pid)
{
	char path[64], *s, *p;
	long kb = -1;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	s = harness_slurp(path, NULL);
	if (s && (p = strstr(s, "VmRSS:")))
		kb = atol(p + 6);
	free(s);
	return kb;
}

static double job_seconds(const char *id)
{
	json_t *job = harness_wait_job(parleyd.port, id, 60000);
	double d;

	ck_assert_ptr_nonnull(job);
	ck_assert_str_eq(json_string_value(json_object_get(job, "status")), "succeeded");
	d = json_number_value(json_object_get(json_object_get(job, "metrics"), "total_duration"));
	json_decref(job);
	return d;
}

START_TEST(slow_clients_slow_nothing)
{
	struct sockaddr_in sin;
	int fds[20], i, rcvbuf = 1024;
	char req[256], *id;
	double alone, watched;
	long rss0, rss1;

	start("1");
	id = submit();
	alone = job_seconds(id);
	free(id);

	id = submit();
	rss0 = rss_kb(parleyd.pid);
	/* twenty clients ask for the stream and never read a byte */
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_port = htons((uint16_t)parleyd.port);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	snprintf(req, sizeof(req), "GET /v1/jobs/%s/events HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
		 id);
	for (i = 0; i < 20; i++) {
		fds[i] = socket(AF_INET, SOCK_STREAM, 0);
		setsockopt(fds[i], SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
		ck_assert_int_eq(connect(fds[i], (struct sockaddr *)&sin, sizeof(sin)), 0);
		ck_assert_int_eq(write(fds[i], req, strlen(req)), (ssize_t)strlen(req));
	}
	watched = job_seconds(id);
	rss1 = rss_kb(parleyd.pid);
	printf("slow clients: job alone %.2f s, with 20 stalled streams %.2f s; RSS %ld → %ld kB\n",
	       alone, watched, rss0, rss1);
	ck_assert_msg(watched < alone * 1.5 + 0.5, "stalled readers slowed the job: %.2f vs %.2f",
		      watched, alone);
	ck_assert_msg(rss1 - rss0 < 30 * 1024, "memory grew by %ld kB", rss1 - rss0);
	/* the server still answers */
	ck_assert_int_eq(harness_http(parleyd.port, "GET", "/healthz", NULL, NULL, NULL), 200);
	for (i = 0; i < 20; i++)
		close(fds[i]);
	free(id);
	stop();
}
END_TEST

int main(void)
{
	Suite *s = suite_create("events");
	TCase *tc = tcase_create("sse");
	SRunner *sr;
	int failed;

	harness_tmpdir();
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, finished_job_replays_and_ends);
	tcase_add_test(tc, reconnect_with_last_event_id);
	tcase_add_test(tc, slow_clients_slow_nothing);
	tcase_add_test(tc, joining_mid_turn_shows_the_whole_turn);
	tcase_add_test(tc, the_stream_rests_after_the_end);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	harness_cleanup();
	return failed ? 1 : 0;
}
