/*
 * check_live.c - parleyd against a real model server: a llama.cpp llama-server serving the
 * tiny stories260K model (the default, what `make test` runs), or a real Ollama
 * (PARLEY_LIVE_KIND=ollama, `make test-ollama`).
 *
 * DESIGN: the suite starts its servers itself, each on a free port of 127.0.0.1, and every
 * child it starts gets SIGTERM when the test process that started it dies (Linux
 * PR_SET_PDEATHSIG), so a failed check or a timeout leaves nothing running. The
 * "conversation" cases share one llama-server (-np 2 -c 4096: two slots of 2048 tokens) and
 * one parleyd, started once in the parent (so do the "extraction" cases, one of which adds
 * a second llama-server too small for the extractor's call), but for the two-job comparison,
 * which starts a 4-slot server and a parleyd of its own; the "limits" and "pool" cases each
 * start what they need (a small context, a server that comes up late, a server killed
 * mid-stream, a pool of two servers). They print what they measured: per-turn timings, the
 * share of each prompt served from the backend's cache, and parleyd's wall time per ms of the
 * server's work beside that of a plain libcurl client making the same calls straight to the
 * server.
 *
 * Environment: PARLEY_LIVE_KIND (llama-server | ollama), LLAMA_SERVER (the binary, from
 * tests/live/llama-server.sh path), PARLEY_SHARED (the folder with models/stories260K.gguf),
 * OLLAMA_HOST and OLLAMA_MODEL (for ollama), PARLEYD. Exits 77 when it cannot run here.
 */
#include <check.h>
#include <ctype.h>
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "server/backend.h"
#include "server/engine.h"
#include "server/prompt.h"
#include "server/stats.h"
#include "tests/harness.h"

#define SCENARIO "response_speed_optimization"
#define LLAMA_ALIAS "stories260K"
#define MAX_TURNS_CAP 50
#define RATIO_RUNS 10 /* at most, of each kind, in two rounds */
/*
 * How long after the job the loading case starts the server. parleyd retries a refused
 * connection retry_max_attempts (5) times with backoff from 500 ms, jitter down to half:
 * at least 3.75 s in all; a server that binds its port later fails the job (see the report
 * on issue 3). Once bound, a loading server is waited for up to first_byte_timeout_ms.
 */
#define LOADING_DELAY_MS 2000

static struct {
	int ollama;	       /* PARLEY_LIVE_KIND=ollama */
	const char *llama_bin; /* LLAMA_SERVER */
	char model_file[1024]; /* the GGUF llama-server serves */
	char ollama_url[512];  /* OLLAMA_HOST, with a scheme */
	const char *model;     /* what jobs ask for */
	int num_predict;       /* per turn, small enough to keep the suite quick */
	const char *kind_name; /* for parleyd's --backend */
} live;

/* The shared server and parleyd of the "conversation" cases (started in the parent). */
static struct proc llama, parleyd;
static char shared_url[600];

/* ---- processes ---- */

/* Starts argv with stdout and stderr appended to log; the child gets SIGTERM when this
 * process dies. */
static pid_t spawn(const char *const *argv, const char *log)
{
	pid_t parent = getpid(), pid = fork();

	if (pid == 0) {
		char *v[64];
		int i, fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0644);

		prctl(PR_SET_PDEATHSIG, SIGTERM);
		if (getppid() != parent)
			_exit(127);
		if (fd >= 0) {
			dup2(fd, STDOUT_FILENO);
			dup2(fd, STDERR_FILENO);
			close(fd);
		}
		for (i = 0; argv[i] && i < 63; i++)
			v[i] = xstrdup(argv[i]);
		v[i] = NULL;
		execv(v[0], v);
		fprintf(stderr, "cannot run %s: %s\n", argv[0], strerror(errno));
		_exit(127);
	}
	return pid;
}

/* Waits until GET path answers 200; -1 when the process exits or timeout_ms passes. */
static int wait_ready(struct proc *p, const char *path, long timeout_ms)
{
	int64_t deadline = util_mono_us() + timeout_ms * 1000;
	int st;

	while (util_mono_us() < deadline) {
		if (harness_http(p->port, "GET", path, NULL, NULL, NULL) == 200)
			return 0;
		if (waitpid(p->pid, &st, WNOHANG) == p->pid) {
			p->pid = 0;
			return -1;
		}
		usleep(20000);
	}
	return -1;
}

static void print_log_tail(const char *log)
{
	char *text = harness_slurp(log, NULL);
	size_t n = text ? strlen(text) : 0;

	fprintf(stderr, "---- last lines of %s\n%s\n----\n", log,
		text ? text + (n > 2000 ? n - 2000 : 0) : "(none)");
	free(text);
}

/*
 * Starts llama-server on port with the suite's model and extra args (slots, context); waits
 * for /health when wait is set. Returns 0, or -1 after printing its log.
 *
 * One thread: the model keeps one core and parleyd, the plain client and the suite the other,
 * so that the two-job ratio measures waiting, not CPU taken from the model; and llama.cpp's
 * threads spin at barriers, so on a machine busy with other work two of them slow down
 * tenfold, where one does not.
 */
static int llama_start(struct proc *p, int port, const char *const *extra, int wait)
{
	char sport[16], slots_dir[600];
	const char *argv[40] = {live.llama_bin, "-m",	     live.model_file,	 "-a",
				LLAMA_ALIAS,	"--host",    "127.0.0.1",	 "--port",
				sport,		"--metrics", "--slot-save-path", slots_dir,
				"-t",		"1"};
	int n = 14, i;
	static int seq;

	memset(p, 0, sizeof(*p));
	p->port = port;
	snprintf(sport, sizeof(sport), "%d", port);
	/* with a save path, POST /slots/N?action=erase empties a slot's cache */
	snprintf(slots_dir, sizeof(slots_dir), "%s/slots", harness_tmpdir());
	mkdir(slots_dir, 0755);
	for (i = 0; extra && extra[i] && n < 39; i++)
		argv[n++] = extra[i];
	argv[n] = NULL;
	snprintf(p->log, sizeof(p->log), "%s/llama-server-%d-%d.log", harness_tmpdir(),
		 (int)getpid(), seq++);
	p->pid = spawn(argv, p->log);
	if (!wait || wait_ready(p, "/health", 30000) == 0)
		return 0;
	fprintf(stderr, "live: llama-server on port %d did not become healthy\n", port);
	print_log_tail(p->log);
	harness_stop(p, SIGKILL);
	return -1;
}

/* Starts parleyd on a free port with a fresh database and args; waits for /healthz. */
static int parleyd_start(struct proc *p, const char *const *args)
{
	const char *bin = getenv("PARLEYD");
	char listen[64], db[600];
	const char *argv[32];
	int n = 0, i;
	static int seq;

	memset(p, 0, sizeof(*p));
	p->port = harness_free_port();
	snprintf(listen, sizeof(listen), "127.0.0.1:%d", p->port);
	snprintf(db, sizeof(db), "%s/live-%d-%d.db", harness_tmpdir(), (int)getpid(), seq);
	snprintf(p->log, sizeof(p->log), "%s/parleyd-%d-%d.log", harness_tmpdir(), (int)getpid(),
		 seq++);
	argv[n++] = bin && *bin ? bin : "build/parleyd";
	argv[n++] = "--listen";
	argv[n++] = listen;
	argv[n++] = "--db";
	argv[n++] = db;
	for (i = 0; args && args[i] && n < 31; i++)
		argv[n++] = args[i];
	argv[n] = NULL;
	p->pid = spawn(argv, p->log);
	if (wait_ready(p, "/healthz", 10000) == 0)
		return 0;
	fprintf(stderr, "live: parleyd did not answer /healthz\n");
	print_log_tail(p->log);
	harness_stop(p, SIGKILL);
	return -1;
}

/* parleyd with one backend, "live", at url. */
static int parleyd_start_at(struct proc *p, const char *url)
{
	char spec[800];
	const char *args[] = {"--backend", spec, NULL};

	/* llama-server says how many slots it has; an Ollama server's parallel sequences are
	 * max_concurrency */
	snprintf(spec, sizeof(spec), "name=live,kind=%s,url=%s%s", live.kind_name, url,
		 live.ollama ? ",max_concurrency=2" : "");
	return parleyd_start(p, args);
}

/* ---- jobs ---- */

static char *submit_opts(int port, int max_turns, const char *options)
{
	char body[1024], *id;
	json_t *j = NULL;
	int st;

	snprintf(body, sizeof(body),
		 "{\"scenario\":\"%s\",\"interviewer\":{\"model\":\"%s\",\"backend\":\"live\"},"
		 "\"candidate\":{\"model\":\"%s\",\"backend\":\"live\"},\"max_turns\":%d,"
		 "\"options\":%s}",
		 SCENARIO, live.model, live.model, max_turns, options);
	st = harness_http_json(port, "POST", "/v1/jobs", body, &j);
	ck_assert_msg(st == 202, "POST /v1/jobs: %d", st);
	id = xstrdup(json_string_value(json_object_get(j, "id")));
	json_decref(j);
	return id;
}

/* The options every job of the suite uses: deterministic, short turns. */
static void job_options(char *out, size_t outsz, int num_predict)
{
	snprintf(out, outsz, "{\"temperature\":0.7,\"seed\":42,\"num_predict\":%d%s}", num_predict,
		 live.ollama ? ",\"num_ctx\":4096" : "");
}

static char *submit(int port, int max_turns, int num_predict)
{
	char opts[160];

	job_options(opts, sizeof(opts), num_predict);
	return submit_opts(port, max_turns, opts);
}

static const char *str(const json_t *o, const char *key)
{
	const char *s = json_string_value(json_object_get(o, key));

	return s ? s : "";
}

static json_t *wait_job(int port, const char *id, long timeout_ms)
{
	json_t *job = harness_wait_job(port, id, timeout_ms);

	ck_assert_msg(job != NULL, "job %s did not end within %ld ms", id, timeout_ms);
	return job;
}

static void assert_succeeded(const json_t *job)
{
	char *err = json_dumps(json_object_get(job, "error"), JSON_ENCODE_ANY);

	ck_assert_msg(!strcmp(str(job, "status"), "succeeded"), "job %s ended %s: %s",
		      str(job, "id"), str(job, "status"), err);
	free(err);
}

static json_t *transcript(int port, const char *id)
{
	char path[128];
	json_t *t = NULL;

	snprintf(path, sizeof(path), "/v1/jobs/%s/transcript", id);
	ck_assert_int_eq(harness_http_json(port, "GET", path, NULL, &t), 200);
	return t;
}

static json_t *metric(const json_t *turn, const char *key)
{
	return json_object_get(json_object_get(turn, "metrics"), key);
}

/* A metric as text for the table: "-" when the backend did not say. */
static const char *cell(const json_t *turn, const char *key, char buf[32])
{
	const json_t *v = metric(turn, key);

	if (json_is_integer(v))
		snprintf(buf, 32, "%lld", (long long)json_integer_value(v));
	else if (json_is_number(v))
		snprintf(buf, 32, "%.1f", json_number_value(v));
	else
		snprintf(buf, 32, "-");
	return buf;
}

static void print_turns(const char *title, const json_t *t)
{
	char b[9][32];
	const json_t *turn;
	size_t i;

	printf("\n%s\n", title);
	printf("  %4s %-11s %9s %9s %7s %7s %6s %6s %9s %9s\n", "turn", "role", "wall ms",
	       "ttft ms", "prompt", "cached", "share", "compl", "prompt ms", "gen ms");
	json_array_foreach(json_object_get(t, "conversation"), i, turn)
	{
		const json_t *p = metric(turn, "prompt_tokens"), *c = metric(turn, "cached_tokens");

		if (json_is_integer(p) && json_is_integer(c) && json_integer_value(p) > 0)
			snprintf(b[8], 32, "%.0f%%",
				 100.0 * (double)json_integer_value(c) /
				     (double)json_integer_value(p));
		else
			snprintf(b[8], 32, "-");
		printf("  %4lld %-11s %9s %9s %7s %7s %6s %6s %9s %9s\n",
		       (long long)json_integer_value(json_object_get(turn, "turn")),
		       str(turn, "speaker"), cell(turn, "wall_ms", b[0]),
		       cell(turn, "ttft_ms", b[1]), cell(turn, "prompt_tokens", b[2]),
		       cell(turn, "cached_tokens", b[3]), b[8],
		       cell(turn, "completion_tokens", b[4]), cell(turn, "prompt_ms", b[5]),
		       cell(turn, "gen_ms", b[6]));
	}
	fflush(stdout);
}

static void assert_contains(const char *hay, const char *needle)
{
	ck_assert_msg(hay && strstr(hay, needle), "'%s' not in: %s", needle, hay ? hay : "(null)");
}

/* ---- the llama-server itself ---- */

/* Empties the KV cache of the nslots slots of the llama-server on port (none when port is 0),
 * so that each timed run starts from the same state. */
static void erase_slots(int port, int nslots)
{
	char path[64];
	int i;

	for (i = 0; port && i < nslots; i++) {
		snprintf(path, sizeof(path), "/slots/%d?action=erase", i);
		ck_assert_int_eq(harness_http(port, "POST", path, NULL, NULL, NULL), 200);
	}
}

/* ---- a plain client: the same calls straight to the server ---- */

/* What the server said it did for a run's calls: its own prompt + generation time, and the
 * prompt tokens it processed (not from its cache; llama-server only, -1 when unknown). */
struct server_work {
	double ms;
	long prompt_n;
};

/* Adds ms and prompt_n (-1: not known, which makes the sum not known) to w. */
static void work_add(struct server_work *w, double ms, long prompt_n)
{
	w->ms += ms;
	w->prompt_n = w->prompt_n < 0 || prompt_n < 0 ? -1 : w->prompt_n + prompt_n;
}

/* Adds the work of a transcript's turns, as parleyd recorded it, to w. */
static void transcript_work(const json_t *t, struct server_work *w)
{
	const json_t *turn;
	size_t k;

	json_array_foreach(json_object_get(t, "conversation"), k, turn)
	{
		const json_t *cached = metric(turn, "cached_tokens");

		work_add(w,
			 json_number_value(metric(turn, "prompt_ms")) +
			     json_number_value(metric(turn, "gen_ms")),
			 json_is_integer(cached)
			     ? (long)(json_integer_value(metric(turn, "prompt_tokens")) -
				      json_integer_value(cached))
			     : -1);
	}
}

struct plain_conv {
	const struct backend_cfg *be;
	const json_t *scenario; /* borrowed */
	const json_t *options;	/* borrowed */
	int max_turns;
	double wall_ms;
	int turns;
	struct server_work work;
	char err[256];
};

static size_t plain_write(char *data, size_t size, size_t nmemb, void *ud)
{
	strbuf_add(ud, data, size * nmemb);
	return size * nmemb;
}

/* Adds the server's timings in a stream's last object (llama-server's "timings", Ollama's
 * durations in ns) to w. */
static void plain_work(const json_t *o, int sse, struct server_work *w)
{
	const json_t *t = json_object_get(o, "timings");

	if (sse && json_is_object(t))
		work_add(w,
			 json_number_value(json_object_get(t, "prompt_ms")) +
			     json_number_value(json_object_get(t, "predicted_ms")),
			 (long)json_integer_value(json_object_get(t, "prompt_n")));
	else if (!sse && json_is_true(json_object_get(o, "done")))
		work_add(w,
			 (json_number_value(json_object_get(o, "prompt_eval_duration")) +
			  json_number_value(json_object_get(o, "eval_duration"))) /
			     1e6,
			 -1);
}

/* The reply text in a streamed body: SSE data lines or NDJSON lines, and the server's work
 * into w. -1 on an error line. */
static int plain_text(const struct strbuf *body, int sse, struct strbuf *text,
		      struct server_work *w, char *err, size_t errsz)
{
	const char *p = body->buf, *end = body->buf + body->len;

	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p);
		json_t *o = NULL, *c;

		if (sse && n > 6 && !memcmp(p, "data: ", 6) && memcmp(p + 6, "[DONE]", 6))
			o = json_loadb(p + 6, n - 6, 0, NULL);
		else if (!sse && n > 0)
			o = json_loadb(p, n, 0, NULL);
		if (json_object_get(o, "error")) {
			snprintf(err, errsz, "error in the stream: %.*s", (int)(n < 200 ? n : 200),
				 p);
			json_decref(o);
			return -1;
		}
		if (sse)
			c = json_object_get(
			    json_object_get(json_array_get(json_object_get(o, "choices"), 0),
					    "delta"),
			    "content");
		else
			c = json_object_get(json_object_get(o, "message"), "content");
		if (json_is_string(c))
			strbuf_add(text, json_string_value(c), json_string_length(c));
		plain_work(o, sse, w);
		json_decref(o);
		p += n + 1;
	}
	return 0;
}

/* One streamed call with the body parleyd would send; the reply text is appended to text, the
 * server's work added to w. */
static int plain_call(CURL *curl, const struct chat_req *req, struct strbuf *text,
		      struct server_work *w, char *err, size_t errsz)
{
	int sse = req->be->kind == BACKEND_LLAMA;
	json_t *body = backend_request_body(req);
	char *payload = json_dumps(body, JSON_COMPACT), url[700];
	struct curl_slist *hl = curl_slist_append(NULL, "Content-Type: application/json");
	struct strbuf resp;
	long status = 0;
	CURLcode cc;
	int rc = -1;

	json_decref(body);
	strbuf_init(&resp, 0);
	snprintf(url, sizeof(url), "%s%s", req->be->url,
		 sse ? "/v1/chat/completions" : "/api/chat");
	hl = curl_slist_append(hl, "Expect:");
	curl_easy_setopt(curl, CURLOPT_URL, url);
	curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(curl, CURLOPT_POSTFIELDS, payload);
	curl_easy_setopt(curl, CURLOPT_HTTPHEADER, hl);
	curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, plain_write);
	curl_easy_setopt(curl, CURLOPT_WRITEDATA, &resp);
	curl_easy_setopt(curl, CURLOPT_TIMEOUT, 120L);
	cc = curl_easy_perform(curl);
	curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
	if (cc != CURLE_OK)
		snprintf(err, errsz, "%s", curl_easy_strerror(cc));
	else if (status != 200)
		snprintf(err, errsz, "HTTP %ld: %.200s", status, resp.buf);
	else
		rc = plain_text(&resp, sse, text, w, err, errsz);
	curl_slist_free_all(hl);
	strbuf_release(&resp);
	free(payload);
	return rc;
}

/* One conversation the way parleyd's engine runs it: the same messages turn by turn (prompt.h),
 * the same stop rules (engine.h), the same request bodies (backend.h). */
static void *plain_conv_run(void *arg)
{
	struct plain_conv *pc = arg;
	struct db_turn turns[MAX_TURNS_CAP];
	struct chat_msg msgs[MAX_TURNS_CAP + 3];
	struct prompts pr;
	struct strbuf scratch;
	CURL *curl = curl_easy_init();
	int64_t t0 = util_mono_us();
	size_t n = 0, i;

	memset(turns, 0, sizeof(turns));
	strbuf_init(&scratch, 0);
	prompt_render(pc->scenario, live.model, live.model, pc->max_turns, &pr);
	for (;;) {
		int idx = (int)n + 1, interviewer = idx % 2 == 1;
		int analysis = engine_analysis_turn(pc->max_turns, turns, n);
		struct chat_req req;
		struct strbuf text;

		if (idx > engine_last_turn(pc->max_turns, turns, n) || idx > MAX_TURNS_CAP)
			break;
		memset(&req, 0, sizeof(req));
		req.be = pc->be;
		req.model = live.model;
		req.msgs = msgs;
		req.nmsgs = prompt_messages(&pr, turns, n, idx, interviewer && idx == analysis,
					    msgs, &scratch);
		req.options = (json_t *)(uintptr_t)pc->options; /* only read */
		strbuf_init(&text, 0);
		if (plain_call(curl, &req, &text, &pc->work, pc->err, sizeof(pc->err))) {
			strbuf_release(&text);
			break;
		}
		turns[n].idx = idx;
		snprintf(turns[n].role, sizeof(turns[n].role), "%s",
			 interviewer ? "interviewer" : "candidate");
		turns[n++].text = strbuf_detach(&text, NULL);
	}
	pc->wall_ms = (double)(util_mono_us() - t0) / 1000.0;
	pc->turns = (int)n;
	for (i = 0; i < n; i++)
		free(turns[i].text);
	prompt_release(&pr);
	strbuf_release(&scratch);
	curl_easy_cleanup(curl);
	return NULL;
}

/* A server and a parleyd in front of it, for the two-job comparison. */
struct rig {
	int llama_port; /* 0 on Ollama: no slots to erase */
	int nslots;
	int pd_port;
	const char *url;
};

/* The options of conversation i of a timed run: its own seed, the same through either path. */
static json_t *conv_options(int i, int num_predict)
{
	char opts[160];

	snprintf(opts, sizeof(opts), "{\"temperature\":0.7,\"seed\":%d,\"num_predict\":%d%s}",
		 42 + i, num_predict, live.ollama ? ",\"num_ctx\":4096" : "");
	return json_loads(opts, 0, NULL);
}

/* nconv conversations at once, one thread each; returns the wall time of them all in ms, and
 * the server's work for them in w. */
static double plain_run(const struct rig *rig, int nconv, int max_turns, int num_predict,
			struct server_work *w)
{
	struct backend_cfg be;
	struct plain_conv pc[2];
	pthread_t th[2];
	json_t *scenario = NULL;
	char path[128];
	int64_t t0;
	int i;

	memset(&be, 0, sizeof(be));
	be.name = "plain";
	be.kind = live.ollama ? BACKEND_OLLAMA : BACKEND_LLAMA;
	be.url = (char *)(uintptr_t)rig->url; /* only read */
	snprintf(path, sizeof(path), "/v1/scenarios/%s", SCENARIO);
	ck_assert_int_eq(harness_http_json(rig->pd_port, "GET", path, NULL, &scenario), 200);
	for (i = 0; i < nconv; i++) {
		memset(&pc[i], 0, sizeof(pc[i]));
		pc[i].be = &be;
		pc[i].scenario = scenario;
		pc[i].options = conv_options(i, num_predict);
		pc[i].max_turns = max_turns;
	}
	erase_slots(rig->llama_port, rig->nslots);
	t0 = util_mono_us();
	for (i = 0; i < nconv; i++)
		ck_assert_int_eq(pthread_create(&th[i], NULL, plain_conv_run, &pc[i]), 0);
	for (i = 0; i < nconv; i++)
		pthread_join(th[i], NULL);
	memset(w, 0, sizeof(*w));
	for (i = 0; i < nconv; i++) {
		ck_assert_msg(pc[i].turns == max_turns, "plain conversation %d: %d turns: %s", i,
			      pc[i].turns, pc[i].err);
		json_decref((json_t *)(uintptr_t)pc[i].options);
		work_add(w, pc[i].work.ms, pc[i].work.prompt_n);
	}
	json_decref(scenario);
	return (double)(util_mono_us() - t0) / 1000.0;
}

/* "2026-11-26T14:19:48.893497Z" in microseconds since the epoch. */
static int64_t iso_us(const char *s)
{
	struct tm tm;
	const char *rest;
	long frac = 0;

	memset(&tm, 0, sizeof(tm));
	rest = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);
	ck_assert_msg(rest != NULL, "not a timestamp: %s", s);
	if (*rest == '.')
		frac = strtol(rest + 1, NULL, 10);
	return (int64_t)timegm(&tm) * 1000000 + frac;
}

/*
 * njobs jobs at once through parleyd, with the plain client's options: from the first submit
 * to the last finish, as parleyd's own timestamps say, in ms; the server's work for them, as
 * parleyd recorded it per turn, in w. Two jobs must run at once: each one's first turn starts
 * before either job ends.
 */
static double parley_run(const struct rig *rig, int njobs, int max_turns, int num_predict,
			 struct server_work *w)
{
	char *ids[2];
	int64_t first = 0, last = 0, last_start = 0, first_end = 0;
	int i;

	memset(w, 0, sizeof(*w));
	erase_slots(rig->llama_port, rig->nslots);
	for (i = 0; i < njobs; i++) {
		json_t *o = conv_options(i, num_predict);
		char *opts = json_dumps(o, JSON_COMPACT);

		ids[i] = submit_opts(rig->pd_port, max_turns, opts);
		free(opts);
		json_decref(o);
	}
	for (i = 0; i < njobs; i++) {
		json_t *job = wait_job(rig->pd_port, ids[i], 60000), *t;
		int64_t c, f, s1;

		assert_succeeded(job);
		c = iso_us(str(job, "created_at"));
		f = iso_us(str(job, "finished_at"));
		t = transcript(rig->pd_port, ids[i]);
		s1 = iso_us(
		    str(json_array_get(json_object_get(t, "conversation"), 0), "started_at"));
		transcript_work(t, w);
		json_decref(t);
		if (!first || c < first)
			first = c;
		if (f > last)
			last = f;
		if (s1 > last_start)
			last_start = s1;
		if (!first_end || f < first_end)
			first_end = f;
		json_decref(job);
		free(ids[i]);
	}
	ck_assert_msg(njobs < 2 || last_start < first_end,
		      "parleyd ran the jobs one after another: a first turn started %.0f ms after "
		      "a job ended",
		      (double)(last_start - first_end) / 1000.0);
	return (double)(last - first) / 1000.0;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

/* Prints v in ascending order, with decimals places. */
static void print_runs(const char *what, const double *v, int n, int decimals)
{
	double s[RATIO_RUNS];
	int i;

	memcpy(s, v, (size_t)n * sizeof(*s));
	qsort(s, (size_t)n, sizeof(*s), cmp_double);
	printf("  %-18s", what);
	for (i = 0; i < n; i++)
		printf(" %7.*f", decimals, s[i]);
	printf("\n");
}

/* The best of n runs: the machine may be busy with other work, which only ever adds time. */
static double best(const double *v, int n)
{
	double s[RATIO_RUNS];

	memcpy(s, v, (size_t)n * sizeof(*s));
	qsort(s, (size_t)n, sizeof(*s), cmp_double);
	return s[0];
}

/* ---- the conversation cases: one server, one parleyd ---- */

static void conversation_setup(void)
{
	/* no prompt cache in RAM beside the slots': the cache shares printed are the slots' */
	static const char *const args[] = {"-np", "2", "-c", "4096", "--cache-ram", "0", NULL};

	if (live.ollama) {
		snprintf(shared_url, sizeof(shared_url), "%s", live.ollama_url);
	} else {
		if (llama_start(&llama, harness_free_port(), args, 1) < 0)
			exit(1);
		snprintf(shared_url, sizeof(shared_url), "http://127.0.0.1:%d", llama.port);
	}
	if (parleyd_start_at(&parleyd, shared_url) < 0)
		exit(1);
	/* parleyd learns the slot count from /props: wait until it has, so that a conversation
	 * holds a slot per role from its first turn */
	if (harness_wait_members(parleyd.port, 1, 2, 15000) < 0) {
		fprintf(stderr, "live: parleyd does not see the backend at %s as up with 2 slots\n",
			shared_url);
		print_log_tail(parleyd.log);
		exit(1);
	}
}

static void conversation_teardown(void)
{
	harness_stop(&parleyd, SIGTERM);
	if (!live.ollama)
		harness_stop(&llama, SIGTERM);
}

/* README: the curl flow, 3 turns on the origin scenario. Every turn has its text and every
 * timing; the Markdown and JSON views render it. */
START_TEST(curl_flow_three_turns)
{
	char *id = submit(parleyd.port, 3, live.num_predict), path[128], *md = NULL;
	json_t *job = wait_job(parleyd.port, id, 60000), *t, *turn;
	size_t i;

	assert_succeeded(job);
	ck_assert_int_eq(json_integer_value(json_object_get(job, "turns_completed")), 3);
	ck_assert_str_eq(str(job, "progress"), "3 of 3 turns");
	t = transcript(parleyd.port, id);
	print_turns("3-turn job (README curl flow):", t);
	ck_assert_uint_eq(json_array_size(json_object_get(t, "conversation")), 3);
	json_array_foreach(json_object_get(t, "conversation"), i, turn)
	{
		ck_assert_str_eq(str(turn, "speaker"), i % 2 ? "candidate" : "interviewer");
		ck_assert_msg(strlen(str(turn, "message")) > 0, "turn %zu has no text", i + 1);
		ck_assert(json_real_value(json_object_get(turn, "duration")) > 0);
		ck_assert(json_number_value(metric(turn, "wall_ms")) > 0);
		ck_assert(json_number_value(metric(turn, "ttft_ms")) > 0);
		ck_assert(json_number_value(metric(turn, "ttft_ms")) <=
			  json_number_value(metric(turn, "wall_ms")));
		ck_assert_int_gt(json_integer_value(metric(turn, "prompt_tokens")), 0);
		ck_assert_int_gt(json_integer_value(metric(turn, "completion_tokens")), 0);
		ck_assert_int_le(json_integer_value(metric(turn, "completion_tokens")),
				 live.num_predict);
		ck_assert_msg(json_number_value(metric(turn, "prompt_ms")) > 0,
			      "turn %zu prompt_ms", i + 1);
		ck_assert_msg(json_number_value(metric(turn, "gen_ms")) > 0, "turn %zu gen_ms",
			      i + 1);
		ck_assert(json_number_value(metric(turn, "tokens_per_s")) > 0);
		ck_assert(json_is_string(metric(turn, "finish_reason")));
		if (!live.ollama)
			ck_assert(json_is_integer(metric(turn, "cached_tokens")));
	}
	ck_assert(json_is_object(json_object_get(t, "success_metrics")));
	ck_assert_str_eq(str(json_object_get(t, "scenario"), "description"),
			 "Reduce response time while maintaining quality");
	json_decref(t);

	snprintf(path, sizeof(path), "/v1/jobs/%s/transcript.md", id);
	ck_assert_int_eq(harness_http(parleyd.port, "GET", path, NULL, NULL, &md), 200);
	assert_contains(md, "# AI-to-AI Optimization Conversation");
	assert_contains(md, "### Turn 1: ");
	assert_contains(md, "### Turn 2: ");
	assert_contains(md, "### Turn 3: ");
	free(md);
	json_decref(job);
	free(id);
}
END_TEST

/* Lower-case letters and digits of s, one blank between words: titles compared as extraction
 * "model" compares them. */
static char *plain_words(const char *s)
{
	char *out = xmalloc(strlen(s) + 1), *o = out;
	int gap = 0;

	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;

		if (c >= 0x80 || isalnum(c)) {
			if (gap && o > out)
				*o++ = ' ';
			gap = 0;
			*o++ = (char)(c >= 0x80 ? c : tolower(c));
		} else {
			gap = 1;
		}
	}
	*o = '\0';
	return out;
}

/* extraction "model" on a real llama-server: the extractor's call goes out under json_schema
 * and the job ends with the extractor's record; what the model said is kept only where the
 * analysis says it, and when the reply is not the schema the tree extractor reads it. */
START_TEST(model_extraction_plumbing)
{
	char body[1024], opts[160], *id, *hay;
	json_t *j = NULL, *job, *t, *x, *o, *conv;
	const char *method, *analysis;
	size_t i;

	job_options(opts, sizeof(opts), live.num_predict);
	snprintf(body, sizeof(body),
		 "{\"scenario\":\"%s\",\"interviewer\":{\"model\":\"%s\",\"backend\":\"live\"},"
		 "\"candidate\":{\"model\":\"%s\",\"backend\":\"live\"},\"max_turns\":3,"
		 "\"options\":%s,\"extraction\":\"model\","
		 "\"extractor\":{\"model\":\"%s\",\"backend\":\"live\"}}",
		 SCENARIO, live.model, live.model, opts, live.model);
	ck_assert_int_eq(harness_http_json(parleyd.port, "POST", "/v1/jobs", body, &j), 202);
	id = xstrdup(str(j, "id"));
	json_decref(j);
	job = wait_job(parleyd.port, id, 120000);
	assert_succeeded(job);
	x = json_object_get(json_object_get(job, "metrics"), "extractor");
	ck_assert_msg(json_is_object(x), "no extractor record: %s",
		      json_dumps(json_object_get(job, "metrics"), 0));
	ck_assert_str_eq(str(x, "model"), live.model);
	method = str(x, "method");
	printf("model extraction: method %s, kept %lld, dropped %zu%s%s\n", method,
	       (long long)json_integer_value(json_object_get(x, "kept")),
	       json_array_size(json_object_get(x, "dropped")), *str(x, "error") ? ", error: " : "",
	       str(x, "error"));
	t = transcript(parleyd.port, id);
	conv = json_object_get(t, "conversation");
	analysis = str(json_array_get(conv, 2), "message");
	hay = plain_words(analysis);
	json_array_foreach(json_object_get(t, "optimizations_discovered"), i, o)
	{
		ck_assert_str_eq(str(o, "method"), !strcmp(method, "model") ? "model" : "rubric");
		if (!strcmp(method, "model")) {
			char *needle = plain_words(str(o, "title"));

			ck_assert_msg(strstr(hay, needle), "kept a title not in the analysis: %s",
				      str(o, "title"));
			free(needle);
		}
	}
	if (strcmp(method, "model") != 0) {
		ck_assert_str_eq(method, "rubric");
		ck_assert_msg(*str(x, "error"), "fell back without saying why");
	}
	free(hay);
	json_decref(t);
	json_decref(job);
	free(id);
}
END_TEST

/*
 * extraction "model" whose call the real server refuses: the extractor is served by a second
 * llama-server, "tiny", whose one slot of 256 tokens cannot hold the extractor's instructions,
 * so it answers 400 exceed_context_size_error. The job still succeeds, with the tree
 * extractor's items and the extractor's record saying why. The interviewer is scripted (the
 * fake backend) so that its analysis has known suggestions; the candidate is the real model.
 * tiny runs with -v, whose log shows the grammar it built from the request's json_schema: the
 * schema was sent and read, even though the request was then refused.
 */
static const char *const fallback_titles[] = {"Cache the system prompt",
					      "Lower num_predict for short answers",
					      "Warm the model before the first request"};

START_TEST(model_extraction_falls_back)
{
	static const char *const targs[] = {"-np", "1", "-c", "256", "-v", NULL};
	/* what -v logs of a request: the grammar made of its schema's fields, then the refusal */
	static const char *const grammar[] = {"response-format-schema-item-title-kv",
					      "response-format-schema-item-detail-kv",
					      "response-format-schema-item-test-kv",
					      "exceeds the available context size (256 tokens)"};
	char script[600], be[3][700], body[1024], opts[160], tiny_url[64], *id, *log;
	const char *fargs[] = {"--script", script, NULL};
	const char *pargs[] = {"--backend", be[0], "--backend", be[1], "--backend", be[2], NULL};
	struct proc tiny, fake, pd;
	json_t *j = NULL, *job, *t, *x, *o, *items;
	const char *err;
	int64_t t0;
	size_t i;
	FILE *f;

	ck_assert_int_eq(llama_start(&tiny, harness_free_port(), targs, 1), 0);
	snprintf(tiny_url, sizeof(tiny_url), "http://127.0.0.1:%d", tiny.port);
	snprintf(script, sizeof(script), "%s/fallback-iv.json", harness_tmpdir());
	ck_assert_ptr_nonnull(f = fopen(script, "w"));
	/* the analysis in the format parley's analysis prompt asks for */
	fprintf(f,
		"{\"models\":{\"iv\":{\"replies\":[\"How do you answer a request today?\","
		"\"### 1. Analysis of the candidate's approach\\nIt answers slowly.\\n\\n"
		"### 2. Optimization opportunities\\nThe prompt and the reply length.\\n\\n"
		"### 3. Concrete suggestions\\n"
		"1. **%s** \\u2014 keep it in the slot's cache. Test: time to first token.\\n"
		"2. **%s** \\u2014 cap replies at 64 tokens. Test: median wall time.\\n"
		"3. **%s** \\u2014 send one request at start-up. Test: first request's "
		"latency.\\n\\n"
		"### 4. Reasoning\\nThe three cut the time a user waits.\"]}}}",
		fallback_titles[0], fallback_titles[1], fallback_titles[2]);
	fclose(f);
	ck_assert_int_eq(harness_fake_start(&fake, fargs), 0);
	snprintf(be[0], sizeof(be[0]), "name=live,kind=llama-server,url=%s", shared_url);
	snprintf(be[1], sizeof(be[1]), "name=script,kind=ollama,url=http://127.0.0.1:%d",
		 fake.port);
	snprintf(be[2], sizeof(be[2]), "name=tiny,kind=llama-server,url=%s", tiny_url);
	ck_assert_int_eq(parleyd_start(&pd, pargs), 0);
	/* room for the whole analysis (the fake counts 4 bytes a token) */
	job_options(opts, sizeof(opts), 256);
	snprintf(body, sizeof(body),
		 "{\"scenario\":\"%s\",\"interviewer\":{\"model\":\"iv\",\"backend\":\"script\"},"
		 "\"candidate\":{\"model\":\"%s\",\"backend\":\"live\"},\"max_turns\":3,"
		 "\"options\":%s,\"extraction\":\"model\","
		 "\"extractor\":{\"model\":\"%s\",\"backend\":\"tiny\"}}",
		 SCENARIO, live.model, opts, live.model);
	t0 = util_mono_us();
	ck_assert_int_eq(harness_http_json(pd.port, "POST", "/v1/jobs", body, &j), 202);
	id = xstrdup(str(j, "id"));
	json_decref(j);
	job = wait_job(pd.port, id, 120000);
	assert_succeeded(job);
	x = json_object_get(json_object_get(job, "metrics"), "extractor");
	ck_assert_msg(json_is_object(x), "no extractor record");
	err = str(x, "error");
	printf("\nmodel extraction refused by llama-server -np 1 -c 256 (job %.1f s): method %s, "
	       "kept %lld, dropped %zu, error: %s\n",
	       (double)(util_mono_us() - t0) / 1e6, str(x, "method"),
	       (long long)json_integer_value(json_object_get(x, "kept")),
	       json_array_size(json_object_get(x, "dropped")), err);
	fflush(stdout);
	ck_assert_str_eq(str(x, "method"), "rubric");
	ck_assert_str_eq(str(x, "model"), live.model);
	ck_assert_str_eq(str(x, "backend"), "tiny");
	/* why: the server's own numbers, the backend by name and address, what to do */
	assert_contains(err, "backend 'tiny'");
	assert_contains(err, tiny_url);
	assert_contains(err, LLAMA_ALIAS);
	assert_contains(err, "a slot's context holds 256");
	assert_contains(err, "-c");
	ck_assert_int_eq(json_integer_value(json_object_get(x, "kept")), 3);
	ck_assert_uint_eq(json_array_size(json_object_get(x, "dropped")), 0);
	ck_assert_ptr_null(json_object_get(x, "wall_ms")); /* no reply was read */
	/* the tree extractor's items, each marked as the rubric's */
	t = transcript(pd.port, id);
	items = json_object_get(t, "optimizations_discovered");
	ck_assert_uint_eq(json_array_size(items), 3);
	json_array_foreach(items, i, o)
	{
		ck_assert_str_eq(str(o, "title"), fallback_titles[i]);
		ck_assert_str_eq(str(o, "method"), "rubric");
		ck_assert_int_eq(json_integer_value(json_object_get(o, "turn")), 3);
		ck_assert_msg(*str(o, "test"), "item %zu has no test", i + 1);
	}
	json_decref(t);
	/* the request tiny refused carried the schema: its grammar has the schema's fields */
	log = harness_slurp(tiny.log, NULL);
	for (i = 0; i < sizeof(grammar) / sizeof(*grammar); i++)
		ck_assert_msg(log && strstr(log, grammar[i]), "'%s' not in %s", grammar[i],
			      tiny.log);
	free(log);
	ck_assert_int_eq(harness_http(pd.port, "GET", "/healthz", NULL, NULL, NULL), 200);
	json_decref(job);
	free(id);
	ck_assert_int_eq(harness_stop(&pd, SIGTERM), 0);
	harness_stop(&fake, SIGTERM);
	harness_stop(&tiny, SIGTERM);
}
END_TEST

/* 7 turns: from the second turn of each role on, most of the prompt comes from the backend's
 * cache, which it can only be if every earlier message is resent byte for byte. */
START_TEST(seven_turns_reuse_the_prompt_cache)
{
	char *id = submit(parleyd.port, 7, live.num_predict);
	json_t *job = wait_job(parleyd.port, id, 60000), *t, *turn;
	size_t i;

	assert_succeeded(job);
	t = transcript(parleyd.port, id);
	print_turns("7-turn job (share = cached / prompt tokens):", t);
	ck_assert_uint_eq(json_array_size(json_object_get(t, "conversation")), 7);
	json_array_foreach(json_object_get(t, "conversation"), i, turn)
	{
		json_int_t p = json_integer_value(metric(turn, "prompt_tokens"));
		const json_t *c = metric(turn, "cached_tokens");

		if (live.ollama) {
			/* Ollama counts the cached prefix in prompt_eval_count but never says
			 * how much of it there was */
			ck_assert(json_is_null(c));
			continue;
		}
		if (i < 2)
			continue;
		ck_assert_msg(json_is_integer(c) && 2 * json_integer_value(c) > p,
			      "turn %zu: %lld of %lld prompt tokens from the cache", i + 1,
			      (long long)json_integer_value(c), (long long)p);
	}
	if (live.ollama)
		printf(
		    "  (Ollama does not report cached tokens: the cache share is not checked)\n");
	fflush(stdout);
	json_decref(t);
	json_decref(job);
	free(id);
}
END_TEST

/*
 * Two conversations that fit in the server's slots (a 4-slot llama-server: one slot per role
 * each) run at once through parleyd: each job's first turn starts before either job ends. And
 * parleyd waits no longer than a plain client making the same calls, one conversation alone
 * and two at once: its wall time per millisecond of the server's own work is within 15 % of
 * the plain client's, run by run; on llama-server it makes the server process no more prompt
 * tokens. Fitting, so that neither conversation evicts the other's prompts: a thrashing cache
 * makes a run's time depend on which call comes first.
 */
START_TEST(two_jobs_add_no_serialisation)
{
	static const char *const largs[] = {"-np", "4", "-c", "8192", "--cache-ram", "0", NULL};
	/* 4 turns: the opening, an answer, the analysis and the answer to it */
	const int turns = live.ollama ? 3 : 4, np = live.ollama ? live.num_predict : 64;
	double p1[RATIO_RUNS], p2[RATIO_RUNS], c1[RATIO_RUNS], c2[RATIO_RUNS];
	double q1[RATIO_RUNS], q2[RATIO_RUNS], m1 = HUGE_VAL, m2 = HUGE_VAL;
	struct server_work ptot = {0, 0}, ctot = {0, 0}; /* the prompt tokens of all runs */
	int n = 0, round;
	struct proc srv, pd;
	struct rig rig = {0, 4, 0, live.ollama_url};
	struct server_work w[4];
	char spec[800], url[64];
	const char *pargs[] = {"--backend", spec, NULL};

	if (live.ollama) {
		snprintf(spec, sizeof(spec), "name=live,kind=ollama,url=%s,max_concurrency=4",
			 live.ollama_url);
	} else {
		ck_assert_int_eq(llama_start(&srv, harness_free_port(), largs, 1), 0);
		snprintf(url, sizeof(url), "http://127.0.0.1:%d", srv.port);
		snprintf(spec, sizeof(spec), "name=live,kind=llama-server,url=%s", url);
		rig.llama_port = srv.port;
		rig.url = url;
	}
	ck_assert_int_eq(parleyd_start(&pd, pargs), 0);
	ck_assert_msg(harness_wait_members(pd.port, 1, 4, 15000) == 0,
		      "parleyd does not see the backend up with 4 slots");
	rig.pd_port = pd.port;
	/* warm up: the model's first use, the connections */
	parley_run(&rig, 1, 3, 8, &w[0]);
	plain_run(&rig, 1, 3, 8, &w[0]);
	/*
	 * Interleaved, each parleyd run beside the plain client's run of the same calls. The
	 * server's own time for the same tokens moves by a fifth from call to call on a shared
	 * host (one job alone took 2.4 - 5.2 s in one test on a quiet one): each wall is taken
	 * per millisecond of what the server says it worked, which a slower server moves alike,
	 * and the runs are compared on the median, which a burst of other work in one run does
	 * not move. A second round only when the first is off.
	 */
	for (round = 0; round < 2 && (m1 > 1.15 || m2 > 1.15); round++) {
		int r;

		for (r = 0; r < RATIO_RUNS / 2; r++, n++) {
			c1[n] = plain_run(&rig, 1, turns, np, &w[0]);
			p1[n] = parley_run(&rig, 1, turns, np, &w[1]);
			c2[n] = plain_run(&rig, 2, turns, np, &w[2]);
			p2[n] = parley_run(&rig, 2, turns, np, &w[3]);
			ck_assert(w[0].ms > 0 && w[1].ms > 0 && w[2].ms > 0 && w[3].ms > 0);
			q1[n] = (p1[n] / w[1].ms) / (c1[n] / w[0].ms);
			q2[n] = (p2[n] / w[3].ms) / (c2[n] / w[2].ms);
			work_add(&ctot, 0, w[0].prompt_n);
			work_add(&ctot, 0, w[2].prompt_n);
			work_add(&ptot, 0, w[1].prompt_n);
			work_add(&ptot, 0, w[3].prompt_n);
		}
		m1 = stats_median(q1, (size_t)n);
		m2 = stats_median(q2, (size_t)n);
	}
	printf("\nTwo jobs at once vs one alone (%d turns of up to %d tokens; wall ms of %d runs, "
	       "best first):\n",
	       turns, np, n);
	print_runs("parleyd, one job", p1, n, 0);
	print_runs("parleyd, two jobs", p2, n, 0);
	print_runs("plain, one conv.", c1, n, 0);
	print_runs("plain, two conv.", c2, n, 0);
	printf("  parleyd / plain client, wall per ms of the server's work, run by run:\n");
	print_runs("one alone", q1, n, 3);
	print_runs("two at once", q2, n, 3);
	printf("  medians: one alone %.3f, two at once %.3f (limit 1.15); two at once / one alone "
	       "(best runs): parleyd %.3f, plain client %.3f\n",
	       m1, m2, best(p2, n) / best(p1, n), best(c2, n) / best(c1, n));
	if (ptot.prompt_n >= 0 && ctot.prompt_n >= 0)
		printf("  prompt tokens the server processed (not cached), all runs: parleyd %ld, "
		       "plain client %ld\n",
		       ptot.prompt_n, ctot.prompt_n);
	fflush(stdout);
	ck_assert_msg(
	    m1 <= 1.15 && m2 <= 1.15,
	    "parleyd's wall per ms of server work was %.3f (one job) and %.3f (two at once) "
	    "of a plain client's for the same calls",
	    m1, m2);
	ck_assert_msg(ptot.prompt_n < 0 || ctot.prompt_n < 0 ||
			  ptot.prompt_n <= ctot.prompt_n + ctot.prompt_n / 10,
		      "parleyd made the server process %ld prompt tokens, the plain client %ld",
		      ptot.prompt_n, ctot.prompt_n);
	ck_assert_int_eq(harness_stop(&pd, SIGTERM), 0);
	if (!live.ollama)
		harness_stop(&srv, SIGTERM);
}
END_TEST

/* ---- a pool of two llama-servers ---- */

/*
 * Four conversations on a pool of two 2-slot llama-servers: one conversation per server at a
 * time (each holds a slot per role), every one succeeds, and each keeps its prompts cached
 * from turn 3 on (at least 0.75 of its prompt tokens, issue 14's goal).
 */
START_TEST(pool_of_two_servers_keeps_prefixes)
{
	static const char *const args[] = {"-np", "2", "-c", "4096", "--cache-ram", "0", NULL};
	struct proc srv[2], pd;
	char spec[600], *ids[4];
	const char *pargs[] = {"--backend", spec, "--workers", "4", NULL};
	int i;

	for (i = 0; i < 2; i++)
		ck_assert_int_eq(llama_start(&srv[i], harness_free_port(), args, 1), 0);
	snprintf(spec, sizeof(spec),
		 "name=live,kind=llama-server,url=http://127.0.0.1:%d,url=http://127.0.0.1:%d",
		 srv[0].port, srv[1].port);
	ck_assert_int_eq(parleyd_start(&pd, pargs), 0);
	ck_assert_msg(harness_wait_members(pd.port, 2, 2, 15000) == 0,
		      "parleyd does not see both members up with 2 slots");
	for (i = 0; i < 4; i++) {
		char opts[160];

		snprintf(opts, sizeof(opts), "{\"temperature\":0.7,\"seed\":%d,\"num_predict\":48}",
			 40 + i);
		ids[i] = submit_opts(pd.port, 7, opts);
	}
	for (i = 0; i < 4; i++) {
		json_t *job = wait_job(pd.port, ids[i], 180000), *t, *turn;
		long prompt = 0, cached = 0;
		size_t k;

		assert_succeeded(job);
		t = transcript(pd.port, ids[i]);
		json_array_foreach(json_object_get(t, "conversation"), k, turn)
		{
			if (k < 2)
				continue;
			prompt += (long)json_integer_value(metric(turn, "prompt_tokens"));
			cached += (long)json_integer_value(metric(turn, "cached_tokens"));
		}
		printf("pool: job %d cached %.2f of its prompt tokens, turns 3-7\n", i,
		       prompt ? (double)cached / (double)prompt : 0.0);
		fflush(stdout);
		ck_assert_msg(prompt > 0 && (double)cached >= 0.75 * (double)prompt,
			      "job %d: %ld of %ld prompt tokens cached, turns 3-7", i, cached,
			      prompt);
		json_decref(t);
		json_decref(job);
		free(ids[i]);
	}
	harness_stop(&pd, SIGTERM);
	for (i = 0; i < 2; i++)
		harness_stop(&srv[i], SIGTERM);
}
END_TEST

/* Submits n 7-turn jobs (seeds from seed on) at once, or each after the previous one ended;
 * returns the wall seconds from the first submit to the last end, the lowest cache share of a
 * job's turns 3-7 in *min_share, and the servers' work for all the jobs in w. */
static double run_jobs(int port, int n, int seed, int at_once, double *min_share,
		       struct server_work *w)
{
	char *ids[8], opts[160];
	int64_t t0 = util_mono_us();
	int i;

	*min_share = 1;
	memset(w, 0, sizeof(*w));
	for (i = 0; i < n; i++) {
		snprintf(opts, sizeof(opts), "{\"temperature\":0.7,\"seed\":%d,\"num_predict\":48}",
			 seed + i);
		ids[i] = submit_opts(port, 7, opts);
		if (!at_once)
			json_decref(wait_job(port, ids[i], 180000));
	}
	for (i = 0; i < n; i++) {
		json_t *job = wait_job(port, ids[i], 180000), *t, *turn;
		long prompt = 0, cached = 0;
		size_t k;

		assert_succeeded(job);
		t = transcript(port, ids[i]);
		json_array_foreach(json_object_get(t, "conversation"), k, turn)
		{
			if (k < 2)
				continue;
			prompt += (long)json_integer_value(metric(turn, "prompt_tokens"));
			cached += (long)json_integer_value(metric(turn, "cached_tokens"));
		}
		if (prompt && (double)cached / (double)prompt < *min_share)
			*min_share = (double)cached / (double)prompt;
		transcript_work(t, w);
		json_decref(t);
		json_decref(job);
	}
	for (i = 0; i < n; i++)
		free(ids[i]);
	return (double)(util_mono_us() - t0) / 1e6;
}

/*
 * Issue 14's goals on real servers (2 slots each): 4 conversations submitted at once finish in
 * about the time of the same 4 one after another, each keeping at least 0.75 of its prompt
 * tokens cached from turn 3; a pool of two such servers runs the 4 in well under one server's
 * time. One run of each here, on a host where llama-server's own time for the same tokens moves
 * by a fifth between runs: each wall is taken per millisecond of the work the servers report
 * for the run (at once / one after another <= 1.10, pool / one server <= 0.65), and the
 * servers must process no more prompt tokens at once than one after another (+5 %), which is
 * what a thrashing scheduler changes (as it does the cache share: 0.01 - 0.04 before slot
 * scheduling). The goals on the walls themselves (1.05, 0.60) are held in `make bench`
 * (BENCH_ONLY=slots), which repeats and orders the variants to cancel drift.
 */
START_TEST(slots_goals_on_real_servers)
{
	static const char *const args[] = {"-np", "2", "-c", "4096", "--cache-ram", "0", NULL};
	struct proc srv[2], pd;
	char spec[600];
	const char *pargs[] = {"--backend", spec, "--workers", "4", NULL};
	double seq, once, pool, share_seq, share_once, share_pool, r_once, r_pool;
	struct server_work w_seq, w_once, w_pool;
	int i;

	for (i = 0; i < 2; i++)
		ck_assert_int_eq(llama_start(&srv[i], harness_free_port(), args, 1), 0);
	snprintf(spec, sizeof(spec), "name=live,kind=llama-server,url=http://127.0.0.1:%d",
		 srv[0].port);
	ck_assert_int_eq(parleyd_start(&pd, pargs), 0);
	ck_assert_int_eq(harness_wait_members(pd.port, 1, 2, 15000), 0);
	run_jobs(pd.port, 1, 1, 1, &share_seq, &w_seq); /* warm up */
	/* the same 4 conversations (seeds) in every variant, so the variants differ only in when
	 * they run */
	seq = run_jobs(pd.port, 4, 50, 0, &share_seq, &w_seq);
	once = run_jobs(pd.port, 4, 50, 1, &share_once, &w_once);
	harness_stop(&pd, SIGTERM);
	snprintf(spec, sizeof(spec),
		 "name=live,kind=llama-server,url=http://127.0.0.1:%d,url=http://127.0.0.1:%d",
		 srv[0].port, srv[1].port);
	ck_assert_int_eq(parleyd_start(&pd, pargs), 0);
	ck_assert_int_eq(harness_wait_members(pd.port, 2, 2, 15000), 0);
	run_jobs(pd.port, 2, 1, 1, &share_pool, &w_pool); /* warm up the second server too */
	pool = run_jobs(pd.port, 4, 50, 1, &share_pool, &w_pool);
	ck_assert(w_seq.ms > 0 && w_once.ms > 0 && w_pool.ms > 0);
	r_once = (once / w_once.ms) / (seq / w_seq.ms);
	r_pool = (pool / w_pool.ms) / (once / w_once.ms);
	printf("\nIssue 14 goals (4 conversations of 7 turns, 48 tokens a reply, 2-slot servers):\n"
	       "  one after another %.2f s, at once %.2f s: ratio %.3f (goal <= 1.05); per ms of "
	       "the server's work (%.2f s, %.2f s) %.3f (limit 1.10)\n"
	       "  pool of two servers, at once %.2f s: %.3f of one server's (goal <= 0.60); per ms "
	       "of the servers' work (%.2f s) %.3f (limit 0.65)\n"
	       "  prompt tokens processed (not cached): %ld one after another, %ld at once, %ld on "
	       "the pool\n"
	       "  lowest cache share of a job, turns 3-7: %.2f one after another, %.2f at once, "
	       "%.2f on the pool (goal >= 0.75)\n",
	       seq, once, once / seq, w_seq.ms / 1000, w_once.ms / 1000, r_once, pool, pool / once,
	       w_pool.ms / 1000, r_pool, w_seq.prompt_n, w_once.prompt_n, w_pool.prompt_n,
	       share_seq, share_once, share_pool);
	fflush(stdout);
	ck_assert_msg(
	    r_once <= 1.10,
	    "at once %.2f s for %.2f s of server work, one after another %.2f s for %.2f s", once,
	    w_once.ms / 1000, seq, w_seq.ms / 1000);
	ck_assert_msg(r_pool <= 0.65,
		      "pool %.2f s for %.2f s of server work, one server %.2f s for %.2f s", pool,
		      w_pool.ms / 1000, once, w_once.ms / 1000);
	ck_assert_msg(
	    w_once.prompt_n <= w_seq.prompt_n + w_seq.prompt_n / 20 &&
		w_pool.prompt_n <= w_seq.prompt_n + w_seq.prompt_n / 20,
	    "prompt tokens processed: %ld at once, %ld on the pool, %ld one after another",
	    w_once.prompt_n, w_pool.prompt_n, w_seq.prompt_n);
	ck_assert(share_once >= 0.75 && share_pool >= 0.75);
	harness_stop(&pd, SIGTERM);
	for (i = 0; i < 2; i++)
		harness_stop(&srv[i], SIGTERM);
}
END_TEST

/* ---- the limits: each case starts what it needs ---- */

/* A conversation that outgrows the slot: parleyd fails the job with llama-server's
 * exceed_context_size_error explained, keeps the turns it had, and goes on serving. */
START_TEST(context_overflow_fails_the_job_clearly)
{
	static const char *const args[] = {"-np", "1", "-c", "1024", NULL};
	struct proc srv, pd;
	char url[64], *id, opts[160];
	json_t *job, *t;
	const char *msg;
	int64_t t0;

	ck_assert_int_eq(llama_start(&srv, harness_free_port(), args, 1), 0);
	snprintf(url, sizeof(url), "http://127.0.0.1:%d", srv.port);
	ck_assert_int_eq(parleyd_start_at(&pd, url), 0);
	job_options(opts, sizeof(opts), 128);
	t0 = util_mono_us();
	id = submit_opts(pd.port, 20, opts);
	job = wait_job(pd.port, id, 90000);
	msg = json_string_value(json_object_get(json_object_get(job, "error"), "message"));
	t = transcript(pd.port, id);
	print_turns("Context overflow (-np 1 -c 1024, 20 turns of up to 128 tokens):", t);
	printf("  job %s after %.1f s: %s: %s\n", str(job, "status"),
	       (double)(util_mono_us() - t0) / 1e6, str(json_object_get(job, "error"), "code"),
	       msg ? msg : "");
	fflush(stdout);
	ck_assert_str_eq(str(job, "status"), "failed");
	ck_assert_str_eq(str(json_object_get(job, "error"), "code"), "context_overflow");
	assert_contains(msg, "'live'");
	assert_contains(msg, url);
	assert_contains(msg, LLAMA_ALIAS);
	assert_contains(msg, "1024"); /* the slot's context, from the server's error */
	assert_contains(msg, "-c");   /* what to do about it */
	/* the turns before the overflow are kept */
	ck_assert_int_ge(json_integer_value(json_object_get(job, "turns_completed")), 2);
	ck_assert_uint_eq(json_array_size(json_object_get(t, "conversation")),
			  (size_t)json_integer_value(json_object_get(job, "turns_completed")));
	ck_assert_int_eq(harness_http(pd.port, "GET", "/healthz", NULL, NULL, NULL), 200);
	json_decref(t);
	json_decref(job);
	free(id);
	ck_assert_int_eq(harness_stop(&pd, SIGTERM), 0);
	harness_stop(&srv, SIGTERM);
}
END_TEST

/* A job submitted while the server is not up yet (connection refused, then 503 "Loading
 * model" while it loads) waits for it instead of failing. */
START_TEST(server_still_loading_is_waited_for)
{
	/* a huge context makes the tiny model load for a second or so, answering 503 meanwhile */
	static const char *const srv_args[] = {"-np", "1", "-c", "262144", NULL};
	struct proc srv, pd;
	char cfg_path[600], url[64], path[128], *id;
	const char *args[] = {"--config", cfg_path, NULL};
	json_t *job, *b = NULL, *t, *turn;
	int port = harness_free_port(), loading;
	FILE *f;

	snprintf(url, sizeof(url), "http://127.0.0.1:%d", port);
	snprintf(cfg_path, sizeof(cfg_path), "%s/loading.json", harness_tmpdir());
	f = fopen(cfg_path, "w");
	ck_assert_ptr_nonnull(f);
	/* the first-byte deadline bounds how long a turn waits for a loading server */
	fprintf(f,
		"{\"backends\":[{\"name\":\"live\",\"kind\":\"llama-server\",\"url\":\"%s\","
		"\"first_byte_timeout_ms\":60000}]}\n",
		url);
	fclose(f);
	ck_assert_int_eq(parleyd_start(&pd, args), 0);
	id = submit(pd.port, 3, 32);
	usleep(LOADING_DELAY_MS * 1000);
	ck_assert_int_eq(harness_http_json(pd.port, "GET", "/v1/backends", NULL, &b), 200);
	ck_assert_str_ne(str(json_array_get(json_object_get(b, "items"), 0), "status"), "up");
	json_decref(b);
	snprintf(path, sizeof(path), "/v1/jobs/%s", id);
	ck_assert_int_eq(harness_http_json(pd.port, "GET", path, NULL, &job), 200);
	ck_assert_msg(!strcmp(str(job, "status"), "running"),
		      "before the server started, the job is %s: %s", str(job, "status"),
		      str(json_object_get(job, "error"), "message"));
	json_decref(job);
	/* not waited for: the server binds its port, answers 503 while it loads, then 200 */
	ck_assert_int_eq(llama_start(&srv, port, srv_args, 0), 0);
	for (loading = 0; loading < 2000 && !harness_http(port, "GET", "/health", NULL, NULL, NULL);
	     loading++)
		usleep(5000);
	loading = harness_http(port, "GET", "/health", NULL, NULL, NULL) == 503;
	job = wait_job(pd.port, id, 60000);
	assert_succeeded(job);
	ck_assert_int_eq(json_integer_value(json_object_get(job, "turns_completed")), 3);
	t = transcript(pd.port, id);
	turn = json_array_get(json_object_get(t, "conversation"), 0);
	printf("\nserver started %d ms after the job%s: turn 1 took %lld attempts (%s)\n",
	       LOADING_DELAY_MS, loading ? " and answered 503 while it loaded" : "",
	       (long long)json_integer_value(metric(turn, "attempts")), str(turn, "note"));
	fflush(stdout);
	ck_assert_int_gt(json_integer_value(metric(turn, "attempts")), 1);
	json_decref(t);
	json_decref(job);
	free(id);
	ck_assert_int_eq(harness_stop(&pd, SIGTERM), 0);
	harness_stop(&srv, SIGTERM);
}
END_TEST

/* The busiest slot's generated token count; -1 when none is generating. */
static long decoding(int port)
{
	json_t *slots = NULL, *s;
	long best = -1;
	size_t i;

	if (harness_http_json(port, "GET", "/slots", NULL, &slots) != 200) {
		json_decref(slots);
		return -1;
	}
	json_array_foreach(slots, i, s)
	{
		json_t *nt = json_array_get(json_object_get(s, "next_token"), 0);

		if (json_is_true(json_object_get(s, "is_processing")) &&
		    json_integer_value(json_object_get(nt, "n_decoded")) > best)
			best = (long)json_integer_value(json_object_get(nt, "n_decoded"));
	}
	json_decref(slots);
	return best;
}

/* A server killed in the middle of a reply: the attempt fails with an error that says the reply
 * was cut short, and the retry policy applies: the turn restarts from scratch (never
 * appending to the text that streamed), waits for the server to come back, and says so in
 * its note. parleyd neither hangs nor crashes, and serves the next job. */
START_TEST(server_killed_mid_stream_fails_the_turn)
{
	static const char *const srv_args[] = {"-np", "1", "-c", "4096", NULL};
	struct proc srv, pd;
	char url[64], *id, opts[160];
	json_t *job, *t, *turn;
	int64_t deadline;
	const char *note;
	long n = -1;
	size_t i;
	int restarted = 0;

	ck_assert_int_eq(llama_start(&srv, harness_free_port(), srv_args, 1), 0);
	snprintf(url, sizeof(url), "http://127.0.0.1:%d", srv.port);
	ck_assert_int_eq(parleyd_start_at(&pd, url), 0);
	/* long enough to be caught streaming, short enough that every turn fits the slot */
	job_options(opts, sizeof(opts), 400);
	id = submit_opts(pd.port, 3, opts);
	deadline = util_mono_us() + 30000000;
	while (util_mono_us() < deadline && (n = decoding(srv.port)) < 16)
		usleep(5000);
	ck_assert_msg(n >= 16, "no reply was streaming within 30 s");
	ck_assert_int_eq(harness_stop(&srv, SIGKILL), 128 + SIGKILL);
	printf("\nkilled llama-server after %ld tokens of a reply\n", n);
	/* back a second later, on the same port */
	usleep(1000000);
	ck_assert_int_eq(llama_start(&srv, srv.port, srv_args, 1), 0);
	job = wait_job(pd.port, id, 90000);
	assert_succeeded(job);
	t = transcript(pd.port, id);
	json_array_foreach(json_object_get(t, "conversation"), i, turn)
	{
		if (json_integer_value(metric(turn, "attempts")) < 2)
			continue;
		note = str(turn, "note");
		printf("  turn %zu, attempt %lld: %s\n", i + 1,
		       (long long)json_integer_value(metric(turn, "attempts")), note);
		assert_contains(note, "cut after partial output, restarted from scratch");
		assert_contains(note, "'live'");
		assert_contains(note, LLAMA_ALIAS);
		assert_contains(note, "cut short");
		/* the text is the restarted reply alone, not the cut one plus it */
		ck_assert_int_le(json_integer_value(metric(turn, "completion_tokens")), 400);
		restarted = 1;
	}
	ck_assert_msg(restarted, "no turn says it was cut and restarted");
	json_decref(t);
	fflush(stdout);
	json_decref(job);
	free(id);
	/* parleyd goes on: the next job runs on the restarted server */
	id = submit(pd.port, 3, 32);
	job = wait_job(pd.port, id, 60000);
	assert_succeeded(job);
	json_decref(job);
	free(id);
	ck_assert_int_eq(harness_stop(&pd, SIGTERM), 0);
	harness_stop(&srv, SIGTERM);
}
END_TEST

/* ---- main ---- */

static int configure(void)
{
	const char *kind = getenv("PARLEY_LIVE_KIND");

	live.ollama = kind && !strcmp(kind, "ollama");
	live.kind_name = live.ollama ? "ollama" : "llama-server";
	if (kind && *kind && !live.ollama && strcmp(kind, "llama-server")) {
		fprintf(stderr,
			"check_live: PARLEY_LIVE_KIND is '%s', not ollama or llama-server\n", kind);
		return 2;
	}
	if (live.ollama) {
		const char *host = getenv("OLLAMA_HOST"), *model = getenv("OLLAMA_MODEL");

		if (!host || !*host)
			host = "http://127.0.0.1:11434";
		snprintf(live.ollama_url, sizeof(live.ollama_url), "%s%s",
			 strstr(host, "://") ? "" : "http://", host);
		while (strlen(live.ollama_url) > 8 &&
		       live.ollama_url[strlen(live.ollama_url) - 1] == '/')
			live.ollama_url[strlen(live.ollama_url) - 1] = '\0';
		live.model = model && *model ? model : "gemma3:1b";
		live.num_predict = 64;
		printf("live suite against Ollama at %s, model %s\n", live.ollama_url, live.model);
		return 0;
	}
	live.llama_bin = getenv("LLAMA_SERVER");
	if (!live.llama_bin || access(live.llama_bin, X_OK)) {
		fprintf(stderr, "check_live: set LLAMA_SERVER to a llama-server binary "
				"(tests/live/llama-server.sh path)\n");
		return 77;
	}
	snprintf(live.model_file, sizeof(live.model_file), "%s/models/stories260K.gguf",
		 harness_shared());
	if (access(live.model_file, R_OK)) {
		fprintf(stderr, "check_live: no model at %s (set PARLEY_SHARED)\n",
			live.model_file);
		return 77;
	}
	live.model = LLAMA_ALIAS;
	live.num_predict = 96;
	printf("live suite against llama-server %s serving %s\n", live.llama_bin, live.model_file);
	return 0;
}

/*
 * The closed loop on a real backend: a scripted interviewer (the fake backend) proposes
 * #test_setting {"num_predict": 16} against a baseline of 128; the candidate, stories260K
 * on llama-server, runs the tasks. The trial must be measured faster, with real timings.
 */
START_TEST(trial_of_a_shorter_reply_is_measured_faster)
{
	static const char *const largs[] = {"-np", "2", "-c", "4096", NULL};
	char script[600], be[1200], *id;
	const char *fargs[] = {"--script", script, NULL};
	const char *pargs[] = {"--backend", be, "--backend", be + 600, NULL};
	struct proc srv, fake, pd;
	struct strbuf body;
	json_t *j = NULL, *t0, *t1, *b;
	FILE *f;
	int k;

	if (llama_start(&srv, harness_free_port(), largs, 1) < 0)
		ck_abort_msg("llama-server did not start");
	snprintf(script, sizeof(script), "%s/trial-iv.json", harness_tmpdir());
	ck_assert_ptr_nonnull(f = fopen(script, "w"));
	fputs("{\"models\":{\"iv\":{\"replies\":[\"Shorter replies. #test_setting "
	      "{\\\"num_predict\\\": 16}\",\"#stop_progress: it is faster\",\"1. Analysis\"]}}}",
	      f);
	fclose(f);
	ck_assert_int_eq(harness_fake_start(&fake, fargs), 0);
	snprintf(be, 600, "name=live,kind=llama-server,url=http://127.0.0.1:%d", srv.port);
	snprintf(be + 600, 600, "name=script,kind=ollama,url=http://127.0.0.1:%d", fake.port);
	ck_assert_int_eq(parleyd_start(&pd, pargs), 0);
	strbuf_init(&body, 4096);
	strbuf_addf(&body,
		    "{\"scenario\":{\"name\":\"live-trials\",\"problem\":\"P\",\"context\":"
		    "\"C\",\"goal\":\"G\",\"baseline\":{\"system\":\"\",\"template\":"
		    "\"Once upon a time, {input}\",\"options\":{\"num_predict\":128,"
		    "\"temperature\":0.7,\"seed\":42}},\"objective\":\"latency\",\"tasks\":[");
	for (k = 0; k < 6; k++)
		strbuf_addf(&body,
			    "%s{\"id\":%d,\"input\":\"a %s went to the park\",\"checks\":[{"
			    "\"max_words\":500}]}",
			    k ? "," : "", k,
			    (const char *[]){"girl", "boy", "cat", "dog", "bird", "frog"}[k]);
	strbuf_addf(&body,
		    "]},\"interviewer\":{\"model\":\"iv\",\"backend\":\"script\"},"
		    "\"candidate\":{\"model\":\"%s\",\"backend\":\"live\"},\"max_turns\":5,"
		    "\"options\":{\"num_predict\":32},\"optimize\":{\"holdout\":0.34,"
		    "\"seed\":1}}",
		    live.model);
	ck_assert_int_eq(harness_http_json(pd.port, "POST", "/v1/jobs", body.buf, &j), 202);
	strbuf_release(&body);
	id = xstrdup(str(j, "id"));
	json_decref(j);
	j = wait_job(pd.port, id, 120000);
	assert_succeeded(j);
	t0 = json_array_get(json_object_get(j, "trials"), 0);
	t1 = json_array_get(json_object_get(j, "trials"), 1);
	b = json_object_get(j, "best");
	printf(
	    "trials on llama-server (%s): baseline num_predict 128: median %.0f ms, p90 %.0f ms, "
	    "%.1f completion tokens; num_predict 16: median %.0f ms, p90 %.0f ms, %.1f tokens; "
	    "best trial %lld, holdout median change %+.0f ms, verified %s\n",
	    live.model, json_number_value(json_object_get(t0, "median_ms")),
	    json_number_value(json_object_get(t0, "p90_ms")),
	    json_number_value(json_object_get(t0, "completion_tokens")),
	    json_number_value(json_object_get(t1, "median_ms")),
	    json_number_value(json_object_get(t1, "p90_ms")),
	    json_number_value(json_object_get(t1, "completion_tokens")),
	    (long long)json_integer_value(json_object_get(b, "trial")),
	    json_number_value(json_object_get(json_object_get(b, "delta"), "median_ms")),
	    json_is_true(json_object_get(b, "verified")) ? "yes" : "no");
	fflush(stdout);
	ck_assert_str_eq(str(t1, "kind"), "setting");
	ck_assert_int_eq(
	    json_integer_value(json_object_get(
		json_object_get(json_object_get(t1, "config"), "options"), "num_predict")),
	    16);
	ck_assert(json_number_value(json_object_get(t1, "completion_tokens")) <= 16);
	ck_assert(json_number_value(json_object_get(t0, "completion_tokens")) > 16);
	ck_assert(json_number_value(json_object_get(t1, "median_ms")) <
		  json_number_value(json_object_get(t0, "median_ms")));
	ck_assert_int_eq(json_integer_value(json_object_get(b, "trial")), 1);
	json_decref(j);
	free(id);
	harness_stop(&pd, SIGTERM);
	harness_stop(&fake, SIGTERM);
	harness_stop(&srv, SIGTERM);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("live");
	TCase *conv = tcase_create("conversation"), *extraction, *limits, *pool;
	SRunner *sr;
	int failed, rc;

	rc = configure();
	if (rc)
		return rc;
	fflush(stdout);
	curl_global_init(CURL_GLOBAL_DEFAULT);
	harness_tmpdir();
	tcase_add_unchecked_fixture(conv, conversation_setup, conversation_teardown);
	/* two_jobs_add_no_serialisation runs up to 40 conversations in two rounds: on a host that
	 * takes half the CPU time away (steal) that alone passed 300 s */
	tcase_set_timeout(conv, 600);
	tcase_add_test(conv, curl_flow_three_turns);
	tcase_add_test(conv, seven_turns_reuse_the_prompt_cache);
	tcase_add_test(conv, two_jobs_add_no_serialisation);
	suite_add_tcase(s, conv);
	extraction = tcase_create("extraction");
	tcase_add_unchecked_fixture(extraction, conversation_setup, conversation_teardown);
	tcase_set_timeout(extraction, 300);
	tcase_add_test(extraction, model_extraction_plumbing);
	if (!live.ollama)
		tcase_add_test(extraction, model_extraction_falls_back);
	suite_add_tcase(s, extraction);
	if (live.ollama) {
		printf("SKIP context overflow, loading, kill and extraction fallback cases: they "
		       "start and stop their own llama-server\n");
	} else {
		limits = tcase_create("limits");
		tcase_set_timeout(limits, 120);
		tcase_add_test(limits, context_overflow_fails_the_job_clearly);
		tcase_add_test(limits, server_still_loading_is_waited_for);
		tcase_add_test(limits, server_killed_mid_stream_fails_the_turn);
		tcase_add_test(limits, trial_of_a_shorter_reply_is_measured_faster);
		suite_add_tcase(s, limits);
		pool = tcase_create("pool");
		tcase_set_timeout(pool, 300);
		tcase_add_test(pool, pool_of_two_servers_keeps_prefixes);
		tcase_add_test(pool, slots_goals_on_real_servers);
		suite_add_tcase(s, pool);
	}
	fflush(stdout);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	harness_cleanup();
	curl_global_cleanup();
	return failed ? 1 : 0;
}
