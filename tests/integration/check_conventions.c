/*
 * check_conventions.c - the HTTP conventions clients and operators' tools
 * expect, against the real parleyd and the fake backend: HEAD on every GET
 * resource, ETag and 304 for what no longer changes, gzip when asked for,
 * X-Request-Id echoed and in the access log, Link headers on lists, problem
 * documents with their instance, and /metrics as Prometheus and promtool
 * (when PROMTOOL names it) want it.
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
#include <sys/wait.h>
#include <unistd.h>

#include "tests/harness.h"

static struct proc fake, parleyd;
static char dbpath[512];

static void setup(void)
{
	static int seq;

	snprintf(dbpath, sizeof(dbpath), "%s/conv-%d-%d.db", harness_tmpdir(), (int)getpid(),
		 seq++);
	ck_assert_int_eq(harness_start_with_ollama(&fake, NULL, &parleyd, dbpath, 4), 0);
}

static void teardown(void)
{
	harness_stop(&parleyd, SIGTERM);
	harness_stop(&fake, SIGTERM);
}

/* A finished job's id (caller frees). */
static char *finished_job(void)
{
	json_t *j = NULL;
	char *id;

	id = harness_submit(parleyd.port, "{\"scenario\":\"response_speed_optimization\","
					  "\"interviewer\":{\"model\":\"gemma3:1b\"},"
					  "\"candidate\":{\"model\":\"gemma3n:latest\"}}");
	j = harness_wait_job(parleyd.port, id, 30000);
	ck_assert_ptr_nonnull(j);
	ck_assert_str_eq(json_string_value(json_object_get(j, "status")), "succeeded");
	json_decref(j);
	return id;
}

/* A header of the last answer (value copied into out), or NULL. */
static const char *header(const char *name, char *out, size_t size)
{
	const char *h = harness_last_headers(), *p;
	size_t n = strlen(name);

	for (p = h; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL) {
		if (strncasecmp(p, name, n) == 0 && p[n] == ':') {
			const char *v = p + n + 1;
			size_t len;
			while (*v == ' ')
				v++;
			len = strcspn(v, "\r\n");
			snprintf(out, size, "%.*s", (int)len, v);
			return out;
		}
	}
	return NULL;
}

START_TEST(head_answers_every_get_resource)
{
	char *id = finished_job(), *body = NULL, *hbody = NULL;
	char paths[20][160], len[32], allow[96];
	int n = 0, i;
	json_t *b = NULL;
	char *bid;

	ck_assert_int_eq(harness_http_json(parleyd.port, "POST", "/v1/batches",
					   "{\"interviewer\":{\"model\":\"gemma3:1b\"},"
					   "\"candidates\":[{\"model\":\"x\"}],"
					   "\"scenarios\":[\"job_extraction_improvement\"]}",
					   &b),
			 202);
	bid = xstrdup(json_string_value(json_object_get(b, "id")));
	json_decref(b);
	snprintf(paths[n++], 160, "/");
	snprintf(paths[n++], 160, "/assets/app.js");
	snprintf(paths[n++], 160, "/healthz");
	snprintf(paths[n++], 160, "/readyz");
	snprintf(paths[n++], 160, "/v1/jobs");
	snprintf(paths[n++], 160, "/v1/jobs/%s", id);
	snprintf(paths[n++], 160, "/v1/jobs/%s/transcript", id);
	snprintf(paths[n++], 160, "/v1/jobs/%s/transcript.md", id);
	snprintf(paths[n++], 160, "/v1/jobs/%s/events", id);
	snprintf(paths[n++], 160, "/v1/scenarios");
	snprintf(paths[n++], 160, "/v1/scenarios/response_speed_optimization");
	snprintf(paths[n++], 160, "/v1/batches");
	snprintf(paths[n++], 160, "/v1/batches/%s", bid);
	snprintf(paths[n++], 160, "/v1/batches/%s/report.md", bid);
	snprintf(paths[n++], 160, "/v1/optimizations");
	snprintf(paths[n++], 160, "/v1/backends");
	for (i = 0; i < n; i++) {
		size_t glen;
		ck_assert_int_eq(harness_http(parleyd.port, "GET", paths[i], NULL, NULL, &body),
				 200);
		glen = strlen(body);
		ck_assert_msg(harness_http(parleyd.port, "HEAD", paths[i], NULL, NULL, &hbody) ==
				  200,
			      "HEAD %s", paths[i]);
		ck_assert_msg(hbody[0] == '\0', "HEAD %s sent a body", paths[i]);
		if (strstr(paths[i], "/events")) {
			/* a stream has no length, as its GET has none */
			ck_assert_ptr_nonnull(strstr(harness_last_headers(), "text/event-stream"));
			ck_assert_ptr_null(header("Content-Length", len, sizeof(len)));
			free(body);
			free(hbody);
			continue;
		}
		/* the length of what GET would send (the two may differ by a clock tick) */
		ck_assert_ptr_nonnull(header("Content-Length", len, sizeof(len)));
		if (strstr(paths[i], "/v1/jobs/"))
			ck_assert_msg((size_t)atol(len) == glen, "HEAD %s: %s, GET %zu", paths[i],
				      len, glen);
		free(body);
		free(hbody);
	}
	/* a 405 names HEAD beside GET */
	ck_assert_int_eq(harness_http(parleyd.port, "DELETE", "/v1/backends", NULL, NULL, NULL),
			 405);
	ck_assert_str_eq(header("Allow", allow, sizeof(allow)), "GET, HEAD");
	/* HEAD on what has no GET is still refused */
	ck_assert_int_eq(harness_http(parleyd.port, "HEAD", "/v1/session", NULL, NULL, NULL), 405);
	free(bid);
	free(id);
}
END_TEST

START_TEST(finished_resources_have_etags_and_304)
{
	char *id = finished_job(), *body = NULL;
	char path[160], etag[96], inm[160], cc[96];
	const char *suffixes[] = {"", "/transcript", "/transcript.md"};
	size_t i;
	char *queued;

	for (i = 0; i < 3; i++) {
		const char *hdrs[] = {inm, NULL};
		snprintf(path, sizeof(path), "/v1/jobs/%s%s", id, suffixes[i]);
		ck_assert_int_eq(harness_http(parleyd.port, "GET", path, NULL, NULL, &body), 200);
		ck_assert_msg(header("ETag", etag, sizeof(etag)) != NULL, "no ETag on %s", path);
		ck_assert_str_eq(header("Cache-Control", cc, sizeof(cc)), "private, no-cache");
		free(body);
		/* the same tag again: nothing changed */
		ck_assert_int_eq(harness_http(parleyd.port, "GET", path, NULL, NULL, NULL), 200);
		ck_assert_str_eq(header("ETag", inm, sizeof(inm)), etag);
		snprintf(inm, sizeof(inm), "If-None-Match: \"other\", %s", etag);
		ck_assert_int_eq(harness_http(parleyd.port, "GET", path, NULL, hdrs, &body), 304);
		ck_assert_str_eq(body, "");
		free(body);
		snprintf(inm, sizeof(inm), "If-None-Match: \"other\"");
		ck_assert_int_eq(harness_http(parleyd.port, "GET", path, NULL, hdrs, NULL), 200);
	}
	/* a finished batch and its report */
	{
		json_t *b = NULL;
		const char *bpaths[] = {"", "/report.md"};
		char *bid;
		int k, st = 0;

		ck_assert_int_eq(
		    harness_http_json(parleyd.port, "POST", "/v1/batches",
				      "{\"interviewer\":{\"model\":\"gemma3:1b\"},"
				      "\"candidates\":[{\"model\":\"gemma3n:latest\"}],"
				      "\"scenarios\":[\"job_extraction_improvement\"]}",
				      &b),
		    202);
		bid = xstrdup(json_string_value(json_object_get(b, "id")));
		json_decref(b);
		for (k = 0; k < 600; k++) {
			snprintf(path, sizeof(path), "/v1/batches/%s", bid);
			ck_assert_int_eq(harness_http_json(parleyd.port, "GET", path, NULL, &b),
					 200);
			st = strcmp(json_string_value(json_object_get(b, "status")), "finished") ==
			     0;
			json_decref(b);
			if (st)
				break;
			usleep(50000);
		}
		ck_assert_msg(st, "the batch did not finish");
		for (i = 0; i < 2; i++) {
			const char *hdrs[] = {inm, NULL};
			snprintf(path, sizeof(path), "/v1/batches/%s%s", bid, bpaths[i]);
			ck_assert_int_eq(harness_http(parleyd.port, "GET", path, NULL, NULL, NULL),
					 200);
			ck_assert_msg(header("ETag", etag, sizeof(etag)) != NULL, "no ETag on %s",
				      path);
			/* the report says when it was generated: still the same tag a second later
			 */
			usleep(i ? 1100000 : 0);
			snprintf(inm, sizeof(inm), "If-None-Match: %s", etag);
			ck_assert_int_eq(harness_http(parleyd.port, "GET", path, NULL, hdrs, NULL),
					 304);
		}
		free(bid);
	}
	/* what can still change gets neither */
	ck_assert_int_eq(harness_http(parleyd.port, "GET", "/v1/jobs", NULL, NULL, NULL), 200);
	ck_assert_ptr_null(header("ETag", etag, sizeof(etag)));
	ck_assert_str_eq(header("Cache-Control", cc, sizeof(cc)), "no-store");
	queued = harness_submit(parleyd.port, "{\"scenario\":\"response_speed_optimization\","
					      "\"interviewer\":{\"model\":\"gemma3:1b\"},"
					      "\"candidate\":{\"model\":\"gemma3n:latest\"}}");
	snprintf(path, sizeof(path), "/v1/jobs/%s", queued);
	ck_assert_int_eq(harness_http(parleyd.port, "GET", path, NULL, NULL, &body), 200);
	if (!strstr(body, "\"succeeded\""))
		ck_assert_ptr_null(header("ETag", etag, sizeof(etag)));
	free(body);
	free(queued);
	free(id);
}
END_TEST

struct got {
	struct strbuf body, headers;
};

static size_t on_bytes(char *data, size_t size, size_t nmemb, void *ud)
{
	strbuf_add(ud, data, size * nmemb);
	return size * nmemb;
}

/* GET with Accept-Encoding: ae; curl decodes gzip so the body is what a client reads. */
static void get_encoded(const char *path, const char *ae, struct got *g)
{
	CURL *c = curl_easy_init();
	struct curl_slist *hl = NULL;
	char url[256], h[128];

	strbuf_init(&g->body, 0);
	strbuf_init(&g->headers, 0);
	snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", parleyd.port, path);
	snprintf(h, sizeof(h), "Accept-Encoding: %s", ae);
	hl = curl_slist_append(hl, h);
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, hl);
	curl_easy_setopt(c, CURLOPT_HTTP_CONTENT_DECODING, 1L);
	/* "" enables decoding without replacing our own Accept-Encoding header */
	curl_easy_setopt(c, CURLOPT_ACCEPT_ENCODING, "");
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_bytes);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &g->body);
	curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_bytes);
	curl_easy_setopt(c, CURLOPT_HEADERDATA, &g->headers);
	ck_assert_int_eq(curl_easy_perform(c), CURLE_OK);
	curl_slist_free_all(hl);
	curl_easy_cleanup(c);
}

static void got_release(struct got *g)
{
	strbuf_release(&g->body);
	strbuf_release(&g->headers);
}

START_TEST(gzip_when_asked_and_worth_it)
{
	char *id = finished_job(), *plain = NULL;
	char path[160];
	struct got g;

	snprintf(path, sizeof(path), "/v1/jobs/%s/transcript", id);
	ck_assert_int_eq(harness_http(parleyd.port, "GET", path, NULL, NULL, &plain), 200);
	ck_assert_uint_gt(strlen(plain), 1024);
	ck_assert_ptr_null(strcasestr(harness_last_headers(), "Content-Encoding"));
	ck_assert_ptr_nonnull(strcasestr(harness_last_headers(), "Vary: Accept-Encoding"));

	get_encoded(path, "br, gzip;q=0.8", &g);
	ck_assert_ptr_nonnull(strcasestr(g.headers.buf, "Content-Encoding: gzip"));
	ck_assert_str_eq(g.body.buf, plain);
	got_release(&g);
	/* q=0 refuses it */
	get_encoded(path, "gzip;q=0, identity", &g);
	ck_assert_ptr_null(strcasestr(g.headers.buf, "Content-Encoding"));
	ck_assert_str_eq(g.body.buf, plain);
	got_release(&g);
	/* the dashboard's script: a strong tag becomes weak once the bytes are gzip */
	get_encoded("/assets/app.js", "gzip", &g);
	ck_assert_ptr_nonnull(strcasestr(g.headers.buf, "Content-Encoding: gzip"));
	ck_assert_ptr_nonnull(strcasestr(g.headers.buf, "ETag: W/\""));
	got_release(&g);
	/* a small answer is not worth it */
	get_encoded("/healthz", "gzip", &g);
	ck_assert_ptr_null(strcasestr(g.headers.buf, "Content-Encoding"));
	got_release(&g);
	free(plain);
	free(id);
}
END_TEST

START_TEST(request_ids_are_echoed_and_logged)
{
	const char *mine[] = {"X-Request-Id: trace-42.abc_DEF:1", NULL};
	char long_id[200], hdr[260], rid[96], rid2[96], path[160], *log;
	const char *bad[] = {hdr, NULL};
	char *id = finished_job();

	snprintf(path, sizeof(path), "/v1/jobs/%s", id);
	ck_assert_int_eq(harness_http(parleyd.port, "GET", path, NULL, mine, NULL), 200);
	ck_assert_str_eq(header("X-Request-Id", rid, sizeof(rid)), "trace-42.abc_DEF:1");
	/* too long, or with characters unsafe in a log line: a new one */
	memset(long_id, 'a', 100);
	long_id[100] = '\0';
	snprintf(hdr, sizeof(hdr), "X-Request-Id: %s", long_id);
	ck_assert_int_eq(harness_http(parleyd.port, "GET", "/healthz", NULL, bad, NULL), 200);
	ck_assert_uint_eq(strlen(header("X-Request-Id", rid, sizeof(rid))), 16);
	snprintf(hdr, sizeof(hdr), "X-Request-Id: a b\" level=error");
	ck_assert_int_eq(harness_http(parleyd.port, "GET", "/nowhere/at/all", NULL, bad, NULL),
			 404);
	ck_assert_uint_eq(strlen(header("X-Request-Id", rid2, sizeof(rid2))), 16);
	ck_assert_str_ne(rid, rid2);

	/* a body refused before it is read is logged too */
	{
		static const char req[] = "POST /v1/jobs HTTP/1.1\r\nHost: 127.0.0.1\r\n"
					  "Content-Length: 50000000\r\nX-Request-Id: big-1\r\n\r\n";
		struct sockaddr_in sin;
		char got[512];
		ssize_t n;
		int fd = socket(AF_INET, SOCK_STREAM, 0);

		memset(&sin, 0, sizeof(sin));
		sin.sin_family = AF_INET;
		sin.sin_port = htons((uint16_t)parleyd.port);
		sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		ck_assert_int_eq(connect(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
		ck_assert_int_eq(write(fd, req, sizeof(req) - 1), (ssize_t)sizeof(req) - 1);
		n = read(fd, got, sizeof(got) - 1);
		ck_assert_int_gt(n, 0);
		got[n] = '\0';
		ck_assert_ptr_nonnull(strstr(got, " 413 "));
		ck_assert_ptr_nonnull(strstr(got, "X-Request-Id: big-1"));
		close(fd);
	}
	/* the access log: client, method, route template, status, duration, path, id */
	log = harness_slurp(parleyd.log, NULL);
	ck_assert_ptr_nonnull(log);
	ck_assert_msg(strstr(log, "msg=\"request\" client=127.0.0.1 method=GET route=/v1/jobs/{id} "
				  "status=200 ms="),
		      "%s", log);
	ck_assert_ptr_nonnull(strstr(log, "request_id=trace-42.abc_DEF:1\n"));
	ck_assert_ptr_nonnull(strstr(log, "route=other status=404"));
	ck_assert_ptr_nonnull(strstr(log, "method=POST route=/v1/jobs status=413 ms="));
	ck_assert_ptr_nonnull(strstr(log, " request_id=big-1\n"));
	ck_assert_ptr_null(strstr(log, "level=error"));
	/* the path as sent, beside the template the metrics count by */
	ck_assert_ptr_nonnull(strstr(log, "path=/nowhere/at/all"));
	free(log);
	free(id);
}
END_TEST

START_TEST(lists_link_the_next_page)
{
	char link[256], want[256], *ids[3];
	json_t *page = NULL, *p2 = NULL, *p = NULL;
	const char *cur;
	int i;

	for (i = 0; i < 3; i++)
		ids[i] = finished_job();
	ck_assert_int_eq(harness_http_json(parleyd.port, "GET",
					   "/v1/jobs?limit=2&model=gemma3n%3Alatest", NULL, &page),
			 200);
	cur = json_string_value(json_object_get(page, "next_cursor"));
	ck_assert_ptr_nonnull(cur);
	ck_assert_ptr_nonnull(header("Link", link, sizeof(link)));
	snprintf(want, sizeof(want),
		 "</v1/jobs?limit=2&model=gemma3n%%3Alatest&cursor=%s>; rel=\"next\"", cur);
	ck_assert_str_eq(link, want);
	/* following it gives the rest, and no further link */
	snprintf(want, sizeof(want), "/v1/jobs?limit=2&model=gemma3n%%3Alatest&cursor=%s", cur);
	ck_assert_int_eq(harness_http_json(parleyd.port, "GET", want, NULL, &p2), 200);
	ck_assert_uint_eq(json_array_size(json_object_get(p2, "items")), 1);
	ck_assert_ptr_null(header("Link", link, sizeof(link)));
	ck_assert(json_is_null(json_object_get(p2, "next_cursor")));
	/* a cursor that does not parse is a 400, not the first page again */
	ck_assert_int_eq(harness_http_json(parleyd.port, "GET", "/v1/jobs?cursor=%21%21", NULL, &p),
			 400);
	ck_assert_str_eq(json_string_value(json_object_get(p, "instance")), "/v1/jobs");
	ck_assert_str_eq(json_string_value(json_object_get(
			     json_array_get(json_object_get(p, "errors"), 0), "field")),
			 "cursor");
	json_decref(p);
	ck_assert_int_eq(harness_http_json(parleyd.port, "GET", "/v1/batches?cursor=", NULL, &p),
			 400);
	json_decref(p);
	/* too large to be one, rather than the first page again */
	ck_assert_int_eq(harness_http(parleyd.port, "GET", "/v1/jobs?cursor=zzzzzzzzzzzzzzzzzzzzzz",
				      NULL, NULL, NULL),
			 400);
	ck_assert_int_eq(
	    harness_http(parleyd.port, "GET", "/v1/optimizations?cursor=-5", NULL, NULL, NULL),
	    400);
	/* every problem names its instance */
	ck_assert_int_eq(harness_http_json(parleyd.port, "GET", "/v1/jobs/jnope", NULL, &p), 404);
	ck_assert_str_eq(json_string_value(json_object_get(p, "instance")), "/v1/jobs/jnope");
	json_decref(p);
	json_decref(page);
	json_decref(p2);
	for (i = 0; i < 3; i++)
		free(ids[i]);
}
END_TEST

/* Pipes text to $PROMTOOL check metrics; its exit status (0 when it is not set). */
static int promtool(const char *text, char *out, size_t size)
{
	const char *tool = getenv("PROMTOOL");
	char cmd[600], path[512];
	FILE *f;
	int rc;
	size_t n;

	out[0] = '\0';
	if (!tool || !*tool)
		return 0;
	snprintf(path, sizeof(path), "%s/metrics-%d.txt", harness_tmpdir(), (int)getpid());
	f = fopen(path, "w");
	ck_assert_ptr_nonnull(f);
	fputs(text, f);
	fclose(f);
	snprintf(cmd, sizeof(cmd), "'%s' check metrics < '%s' 2>&1", tool, path);
	f = popen(cmd, "r");
	ck_assert_ptr_nonnull(f);
	n = fread(out, 1, size - 1, f);
	out[n] = '\0';
	rc = pclose(f);
	return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

START_TEST(metrics_for_prometheus)
{
	char *id = finished_job(), *text = NULL, verdict[4096];
	const char *p;

	ck_assert_int_eq(harness_http(parleyd.port, "GET", "/nowhere/made/up", NULL, NULL, NULL),
			 404);
	ck_assert_int_eq(harness_http(parleyd.port, "GET", "/v1/jobs/jmadeup", NULL, NULL, NULL),
			 404);
	ck_assert_int_eq(harness_http(parleyd.port, "GET", "/metrics", NULL, NULL, &text), 200);
	/* the process and the build */
	ck_assert_ptr_nonnull(strstr(text, "\nprocess_start_time_seconds 1"));
	ck_assert_ptr_nonnull(strstr(text, "\nprocess_cpu_seconds_total "));
	ck_assert_ptr_nonnull(strstr(text, "\nprocess_resident_memory_bytes "));
	ck_assert_ptr_nonnull(strstr(text, "\nprocess_open_fds "));
	ck_assert_ptr_nonnull(
	    strstr(text, "parley_build_info{version=\"" PARLEY_VERSION "\",commit=\""));
	ck_assert_ptr_null(strstr(text, "uptime"));
	/* the headline figures, by role */
	ck_assert_ptr_nonnull(
	    strstr(text, "parley_time_to_first_token_seconds_count{role=\"candidate\"} 1\n"));
	ck_assert_ptr_nonnull(
	    strstr(text, "parley_time_to_first_token_seconds_count{role=\"interviewer\"} 2\n"));
	ck_assert_ptr_nonnull(strstr(text, "parley_prompt_tokens_total{role=\"candidate\"} "));
	ck_assert_ptr_nonnull(
	    strstr(text, "parley_cached_prompt_tokens_total{role=\"interviewer\"} "));
	ck_assert_ptr_null(strstr(text, "parley_completion_tokens_total{role=\"candidate\"} 0\n"));
	/* HTTP by method and route template, started at zero, never a raw path */
	ck_assert_ptr_nonnull(strstr(text, "parley_http_requests_total{method=\"POST\","
					   "route=\"/v1/jobs\",code=\"2xx\"} 1\n"));
	ck_assert_ptr_nonnull(strstr(text, "parley_http_requests_total{method=\"DELETE\","
					   "route=\"/v1/scenarios/{name}\",code=\"2xx\"} 0\n"));
	ck_assert_ptr_nonnull(strstr(text, "parley_http_requests_total{method=\"GET\","
					   "route=\"/v1/jobs/{id}\",code=\"4xx\"} 1\n"));
	ck_assert_ptr_nonnull(strstr(text, "parley_http_requests_total{method=\"GET\","
					   "route=\"other\",code=\"4xx\"} 1\n"));
	ck_assert_ptr_nonnull(strstr(text, "parley_http_request_duration_seconds_count{method="
					   "\"GET\",route=\"/v1/jobs/{id}\"} "));
	ck_assert_ptr_null(strstr(text, "jmadeup"));
	ck_assert_ptr_null(strstr(text, "nowhere"));
	/* one TYPE per family */
	for (p = text; (p = strstr(p, "# TYPE ")); p++) {
		char name[128], again[140];
		sscanf(p + 7, "%127s", name);
		snprintf(again, sizeof(again), "# TYPE %s ", name);
		ck_assert_msg(!strstr(p + 1, again), "TYPE %s twice", name);
	}
	ck_assert_msg(promtool(text, verdict, sizeof(verdict)) == 0, "promtool: %s", verdict);
	ck_assert_msg(verdict[0] == '\0', "promtool: %s", verdict);
	free(text);
	free(id);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("conventions");
	TCase *tc = tcase_create("parleyd");
	SRunner *sr;
	int failed;

	harness_tmpdir();
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, head_answers_every_get_resource);
	tcase_add_test(tc, finished_resources_have_etags_and_304);
	tcase_add_test(tc, gzip_when_asked_and_worth_it);
	tcase_add_test(tc, request_ids_are_echoed_and_logged);
	tcase_add_test(tc, lists_link_the_next_page);
	suite_add_tcase(s, tc);
	/* its own case, so tests/metrics/metrics.mk can run it alone with promtool */
	tc = tcase_create("metrics");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, metrics_for_prometheus);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	harness_cleanup();
	return failed ? 1 : 0;
}
