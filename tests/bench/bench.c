/*
 * bench.c - `make bench`: what parleyd adds to the model's own time, in numbers.
 *
 * DESIGN: one program drives every figure of the suite against the real build/parleyd, the
 * fake model server (build/fake-backend), wrk, and a real llama-server provisioned by
 * tests/live/llama-server.sh. Each figure is taken BENCH_RUNS times (default 3) and reported
 * as the median with its spread; where the issue asks for it, a figure is a ratio against a
 * reference measured in the same run (the ideal wall time of a fixed-latency backend, the
 * /healthz rate, a plain client talking straight to llama-server), so it holds on a noisy
 * shared machine. Databases live under build/bench-work (the real disk: synchronous=FULL
 * means an fsync per commit, which a tmpfs would hide).
 *
 * One run, in order:
 *   1. orchestration: fake at a fixed 200 ms per call, 32 jobs x 3 turns, max_concurrency 8,
 *      --workers 8; ideal = 96 x 200 ms / 8.
 *   2. API submit, to a parleyd whose only worker is stuck on a call that never ends (so the
 *      engine stays out of the way): the bench's own client times every answer of 2 s of
 *      posts on 8 kept-alive connections (p99, slowest), then wrk posts until the database
 *      holds 10,000 jobs (jobs/s); parleyd stops and leaves them queued.
 *   3. engine throughput: a parleyd (--workers 8) starts on that database against the fake
 *      answering at once; turns of the jobs finished in the first 10 s; peak RSS (VmHWM).
 *      It then works the queue to the end: idle RSS after a settle period.
 *   4. API read: wrk on GET /healthz and GET /v1/jobs/{id} of that idle parleyd.
 *   5. real backend: llama-server -np 2 -t 1 (stories260K), restarted before each of:
 *      parleyd (--workers 2), a plain client 2 at a time, the plain client one call after
 *      another (the origin's way); 6 conversations of 4 turns, 64 tokens a reply. One
 *      llama-server thread (BENCH_LLAMA_THREADS): with two, ggml's spinning thread pool
 *      turns any other runnable thread on 2 shared cores into stalls of seconds (64 tokens
 *      measured at 48 ms and at 8.8 s), so the comparison would measure the scheduler.
 *   6. scheduling by slots: a 60-job batch on a pool of three 2-slot fake llama-servers at a
 *      fixed 100 ms a call, against the ideal schedule (one conversation per member), and
 *      again with a member killed a third of the way in (no job may be lost); the cache
 *      share per job at 1, 2, 4 and 8 conversations at once on one 2-slot fake whose
 *      uncached prompt tokens cost 1 ms each.
 *   References taken in the same run, to read the figures by: the latency of one durable
 *   SQLite commit on this disk, and the calls per second the fake serves to a plain client.
 *
 * The plain client builds each turn's messages and request body with the same libparley
 * functions the engine uses (prompt_messages, backend_llama_body), so it makes the same
 * calls; its transport is its own: a libcurl easy handle and a few lines of SSE parsing, and
 * it stores nothing.
 *
 * Output: a table on stdout, the same figures with per-run details in build/bench.json
 * (BENCH_JSON), progress on stderr. Exit status 0 even when a goal is missed (the table says
 * so); 1 when the suite itself could not run.
 */
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "server/backend.h"
#include "server/engine.h"
#include "server/prompt.h"
#include "tests/harness.h"

#define MAX_RUNS 15

/* ---- figures ---- */

enum fig_id {
	F_ORCH,
	F_THROUGHPUT,
	F_CPU_TURN,
	F_READ_RATIO,
	F_READ_P99,
	F_SUBMIT_RPS,
	F_SUBMIT_P99,
	F_SUBMIT_MAX,
	F_REAL_RATIO,
	F_REAL_SPEEDUP,
	F_DIRECT_SPEEDUP,
	F_CACHE,
	F_CACHE_REUSE,
	F_RSS_IDLE,
	F_RSS_LOAD,
	F_REF_COMMIT,
	F_REF_FAKE,
	F_TRIAL_EFF,
	F_TRIAL_SAVED,
	F_POOL_EFF,
	F_POOL_KILL_LOST,
	F_SLOT_CACHE_1,
	F_SLOT_CACHE_2,
	F_SLOT_CACHE_4,
	F_SLOT_CACHE_8,
	F_LIVE_ONCE,
	F_LIVE_SHARE,
	F_LIVE_POOL,
	F_LIVE_POOL_REF,
	F__COUNT
};

struct figure {
	const char *key;
	const char *title;
	const char *unit; /* printed after the number */
	int prec;
	int dir;     /* +1: goal is a minimum, -1: a maximum, 0: reported only */
	double goal; /* met when the median reaches it (a maximum: when it stays at or under) */
	const char *goal_text;
	int strict; /* a maximum the median must stay under, not reach */
	double v[MAX_RUNS];
	int n;
	json_t *runs; /* per-run details (owned) */
	char note[200];
};

static struct figure figs[F__COUNT] = {
    [F_ORCH] = {"orchestration_efficiency", "orchestration efficiency: ideal / measured wall", "",
		3, +1, 0.95, ">= 0.95"},
    [F_THROUGHPUT] = {"engine_throughput", "engine throughput: turns committed per s", "", 0, +1,
		      1000, ">= 1000"},
    [F_CPU_TURN] = {"engine_cpu_ms_per_turn", "engine: parleyd CPU time per turn", " ms", 2, 0, 0,
		    "report"},
    [F_READ_RATIO] = {"api_read_ratio", "API read: GET /v1/jobs/{id} rate / /healthz rate", "", 2,
		      +1, 0.70, ">= 0.70"},
    [F_READ_P99] = {"api_read_p99_ms", "API read: GET /v1/jobs/{id} p99", " ms", 2, -1, 5, "< 5 ms",
		    .strict = 1},
    [F_SUBMIT_RPS] = {"api_submit_rps", "API submit: POST /v1/jobs, FULL, jobs per s", "", 0, +1,
		      500, ">= 500"},
    [F_SUBMIT_P99] = {"api_submit_p99_ms", "API submit: p99 (8 connections)", " ms", 2, 0, 0,
		      "report"},
    [F_SUBMIT_MAX] = {"api_submit_max_ms", "API submit: slowest answer (8 connections)", " ms", 0,
		      0, 0, "report"},
    [F_REAL_RATIO] = {"real_backend_ratio", "real backend: parleyd wall / direct client wall", "",
		      3, -1, 1.10, "<= 1.10"},
    [F_REAL_SPEEDUP] = {"real_parleyd_vs_origin",
			"real backend: parleyd vs origin (one call at a time)", "x", 2, 0, 0,
			"report"},
    [F_DIRECT_SPEEDUP] = {"real_direct_vs_origin",
			  "real backend: direct vs origin (one call at a time)", "x", 2, 0, 0,
			  "report"},
    [F_CACHE] = {"prompt_cache_share", "prompt cache: cached / prompt tokens, turns >= 3", "", 4,
		 +1, 0.80, ">= 0.80"},
    [F_CACHE_REUSE] = {"prompt_cache_reuse", "prompt cache: cached / reusable prefix, turns >= 3",
		       "", 4, 0, 0, "report"},
    [F_RSS_IDLE] = {"rss_idle_mb", "memory: idle RSS holding 10,000 finished jobs", " MB", 1, -1,
		    24, "<= 24 MB"},
    [F_RSS_LOAD] = {"rss_load_mb", "memory: peak RSS during the throughput run", " MB", 1, -1, 64,
		    "<= 64 MB"},
    [F_REF_COMMIT] = {"ref_commit_ms", "reference: one SQLite commit with fsync (FULL)", " ms", 2,
		      0, 0, "report"},
    [F_REF_FAKE] = {"ref_fake_calls_per_s", "reference: the fake alone, calls per s (8 clients)",
		    "", 0, 0, 0, "report"},
    [F_TRIAL_EFF] = {"trial_call_efficiency", "trials: 200 task calls, ideal / measured wall", "",
		     3, +1, 0.90, ">= 0.90"},
    [F_TRIAL_SAVED] = {"trial_early_stop_saved",
		       "trials: early stop, share of a hopeless trial saved", "", 3, 0, 0,
		       "report"},
    [F_POOL_EFF] = {"pool_batch_wall_ratio", "pool 3 x 2 slots: 60-job batch wall / ideal", "", 3,
		    -1, 1.05, "<= 1.05"},
    [F_POOL_KILL_LOST] = {"pool_kill_jobs_lost", "pool: jobs lost when a member dies mid-batch", "",
			  0, -1, 0, "0"},
    [F_SLOT_CACHE_1] = {"slot_cache_share_1", "slots: cache share per job, 1 at once (fake)", "", 2,
			0, 0, "report"},
    [F_SLOT_CACHE_2] = {"slot_cache_share_2", "slots: cache share per job, 2 at once (fake)", "", 2,
			0, 0, "report"},
    [F_SLOT_CACHE_4] = {"slot_cache_share_4", "slots: cache share per job, 4 at once (fake)", "", 2,
			0, 0, "report"},
    [F_SLOT_CACHE_8] = {"slot_cache_share_8", "slots: cache share per job, 8 at once (fake)", "", 2,
			0, 0, "report"},
    [F_LIVE_ONCE] = {"live_slots_at_once_ratio",
		     "llama-server 2 slots: 4 jobs at once / one after another", "", 3, -1, 1.05,
		     "<= 1.05"},
    [F_LIVE_SHARE] = {"live_slots_cache_share_min",
		      "llama-server 2 slots: lowest cache share of a job, turns >= 3", "", 3, +1,
		      0.75, ">= 0.75"},
    [F_LIVE_POOL] = {"live_pool_ratio", "llama-server pool of 2: 4 jobs, pool / one server", "", 3,
		     -1, 0.60, "<= 0.60"},
    [F_LIVE_POOL_REF] = {"live_pool_ratio_direct",
			 "reference: plain client, two servers / one server", "", 3, 0, 0,
			 "report"},
};

static int nruns = 3;
static int failures; /* steps that could not run */
static char workdir[256];
static const char *repo_llama_sh = "tests/live/llama-server.sh";

static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void say(const char *fmt, ...)
{
	va_list ap;

	fputs("bench: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

/* Records one run's value of a figure with its details (stolen). */
static void fig_add(enum fig_id id, double v, json_t *details)
{
	struct figure *f = &figs[id];

	if (!f->runs)
		f->runs = json_array();
	if (f->n < MAX_RUNS)
		f->v[f->n++] = v;
	if (!details)
		details = json_object();
	json_object_set_new(details, "value", json_real(v));
	json_array_append_new(f->runs, details);
}

static void fig_note(enum fig_id id, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void fig_note(enum fig_id id, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(figs[id].note, sizeof(figs[id].note), fmt, ap);
	va_end(ap);
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static void fig_stats(const struct figure *f, double *med, double *lo, double *hi)
{
	double s[MAX_RUNS];

	memcpy(s, f->v, (size_t)f->n * sizeof(double));
	qsort(s, (size_t)f->n, sizeof(double), cmp_double);
	*lo = s[0];
	*hi = s[f->n - 1];
	*med = f->n % 2 ? s[f->n / 2] : (s[f->n / 2 - 1] + s[f->n / 2]) / 2;
}

static const char *fig_verdict(const struct figure *f, double med)
{
	if (!f->n)
		return "not run";
	if (f->dir == 0)
		return "-";
	if (f->dir > 0)
		return med >= f->goal ? "pass" : "FAIL";
	if (f->strict)
		return med < f->goal ? "pass" : "FAIL";
	return med <= f->goal ? "pass" : "FAIL";
}

/* ---- small helpers ---- */

static const char *str_or_empty(const char *s)
{
	return s ? s : "";
}

static double now_s(void)
{
	return (double)util_now_us() / 1e6;
}

/* "2026-11-26T14:24:09.696266Z" -> microseconds since the epoch; -1 when unreadable. */
static int64_t iso_us(const char *s)
{
	struct tm tm;
	const char *p;
	int64_t frac = 0, scale = 1000000;

	if (!s)
		return -1;
	memset(&tm, 0, sizeof(tm));
	p = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);
	if (!p)
		return -1;
	if (*p == '.')
		for (p++; *p >= '0' && *p <= '9'; p++) {
			frac = frac * 10 + (*p - '0');
			scale /= 10;
		}
	return (int64_t)timegm(&tm) * 1000000 + frac * (scale ? scale : 1);
}

/* A field of /proc/PID/status in kB (VmRSS, VmHWM); -1 when unreadable. */
static long proc_kb(pid_t pid, const char *key)
{
	char path[64], line[256];
	size_t klen = strlen(key);
	long v = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	if (!(f = fopen(path, "r")))
		return -1;
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, key, klen) && line[klen] == ':') {
			v = strtol(line + klen + 1, NULL, 10);
			break;
		}
	fclose(f);
	return v;
}

/* User + system CPU seconds of a process, all its threads. */
static double proc_cpu_s(pid_t pid)
{
	char path[64], buf[1024], *p;
	unsigned long ut = 0, st = 0;
	FILE *f;
	size_t n;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	if (!(f = fopen(path, "r")))
		return -1;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	/* fields after the command name in parentheses: state is field 3, utime 14, stime 15 */
	if (!(p = strrchr(buf, ')')))
		return -1;
	if (sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st) != 2)
		return -1;
	return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

/* /proc/pressure/cpu "some avg10": the share of the last 10 s in which something waited for a
 * CPU (how noisy the machine is); -1 when the kernel does not say. */
static double cpu_pressure(void)
{
	double v = -1;
	FILE *f = fopen("/proc/pressure/cpu", "r");

	if (f) {
		if (fscanf(f, "some avg10=%lf", &v) != 1)
			v = -1;
		fclose(f);
	}
	return v;
}

static double loadavg1(void)
{
	double l = -1;
	FILE *f = fopen("/proc/loadavg", "r");

	if (f) {
		if (fscanf(f, "%lf", &l) != 1)
			l = -1;
		fclose(f);
	}
	return l;
}

/* Starts argv with its stdout on a pipe (*fd) and its stderr appended to errlog; its pid. */
static pid_t run_start(const char *const *argv, const char *errlog, int *fd)
{
	int fds[2];
	pid_t pid;

	if (pipe(fds) < 0)
		return -1;
	pid = fork();
	if (pid < 0) {
		close(fds[0]);
		close(fds[1]);
		return -1;
	}
	if (pid == 0) {
		int efd = open(errlog ? errlog : "/dev/null", O_WRONLY | O_CREAT | O_APPEND, 0644);
		char *v[32];
		int i;

		if (efd >= 0)
			dup2(efd, STDERR_FILENO);
		dup2(fds[1], STDOUT_FILENO);
		close(fds[0]);
		close(fds[1]);
		for (i = 0; argv[i] && i < 31; i++)
			v[i] = xstrdup(argv[i]);
		v[i] = NULL;
		execvp(v[0], v);
		fprintf(stderr, "cannot run %s: %s\n", argv[0], strerror(errno));
		_exit(127);
	}
	close(fds[1]);
	*fd = fds[0];
	return pid;
}

/* Reads the child's stdout to its end, waits for it; its exit status, *out its output. */
static int run_finish(pid_t pid, int fd, char **out)
{
	struct strbuf sb;
	char buf[4096];
	ssize_t r;
	int st = 0;

	strbuf_init(&sb, 0);
	while ((r = read(fd, buf, sizeof(buf))) > 0)
		strbuf_add(&sb, buf, (size_t)r);
	close(fd);
	waitpid(pid, &st, 0);
	if (out)
		*out = strbuf_detach(&sb, NULL);
	strbuf_release(&sb);
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

/* Runs argv, waits, returns its exit status; its stdout into *out (caller frees) if out. */
static int run_capture(const char *const *argv, char **out, const char *errlog)
{
	int fd;
	pid_t pid = run_start(argv, errlog, &fd);

	if (pid < 0)
		return -1;
	return run_finish(pid, fd, out);
}

/* A read-only look at a database parleyd wrote. */
static sqlite3 *db_ro(const char *path)
{
	sqlite3 *h = NULL;

	if (sqlite3_open_v2(path, &h, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK) {
		say("cannot open %s: %s", path, h ? sqlite3_errmsg(h) : "?");
		sqlite3_close(h);
		return NULL;
	}
	sqlite3_busy_timeout(h, 10000);
	return h;
}

/* The first column of the first row as a double (one optional int64 parameter); NAN if none. */
static double sql_num(sqlite3 *h, const char *sql, int64_t p1, int64_t p2)
{
	sqlite3_stmt *st;
	double v = NAN;

	if (!h || sqlite3_prepare_v2(h, sql, -1, &st, NULL) != SQLITE_OK) {
		say("sql: %s: %s", sql, h ? sqlite3_errmsg(h) : "no database");
		return NAN;
	}
	if (sqlite3_bind_parameter_count(st) >= 1)
		sqlite3_bind_int64(st, 1, p1);
	if (sqlite3_bind_parameter_count(st) >= 2)
		sqlite3_bind_int64(st, 2, p2);
	if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_type(st, 0) != SQLITE_NULL)
		v = sqlite3_column_double(st, 0);
	sqlite3_finalize(st);
	return v;
}

static char *sql_text(sqlite3 *h, const char *sql)
{
	sqlite3_stmt *st;
	char *v = NULL;

	if (!h || sqlite3_prepare_v2(h, sql, -1, &st, NULL) != SQLITE_OK)
		return NULL;
	if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_text(st, 0))
		v = xstrdup((const char *)sqlite3_column_text(st, 0));
	sqlite3_finalize(st);
	return v;
}

static int write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	if (!f)
		return -1;
	fputs(text, f);
	return fclose(f);
}

/* parleyd's config for the bench: durable commits, stated explicitly; a short drain. */
static const char *bench_config(void)
{
	static char path[600];

	if (!path[0]) {
		const char *sync = getenv("BENCH_SYNCHRONOUS");
		char text[256];

		snprintf(path, sizeof(path), "%s/parley.json", workdir);
		snprintf(text, sizeof(text),
			 "{\"synchronous\": \"%s\", \"drain_timeout_s\": 1, "
			 "\"max_queued_jobs\": 100000}\n",
			 sync && !strcmp(sync, "NORMAL") ? "NORMAL" : "FULL");
		write_file(path, text);
	}
	return path;
}

/* The count of jobs in a state, from GET /metrics; -1 when it cannot be read. */
static long metrics_jobs(int port, const char *state)
{
	char *text = NULL, needle[64], *p;
	long v = -1;

	if (harness_http(port, "GET", "/metrics", NULL, NULL, &text) == 200) {
		snprintf(needle, sizeof(needle), "parley_jobs{state=\"%s\"} ", state);
		if ((p = strstr(text, needle)))
			v = strtol(p + strlen(needle), NULL, 10);
	}
	free(text);
	return v;
}

/* Waits until no job is queued or running; 0, or -1 at the timeout. */
static int wait_idle(int port, double timeout_s, double poll_s)
{
	double end = now_s() + timeout_s;

	while (now_s() < end) {
		long q = metrics_jobs(port, "queued"), r = metrics_jobs(port, "running");
		if (q == 0 && r == 0)
			return 0;
		usleep((useconds_t)(poll_s * 1e6));
	}
	return -1;
}

static void stop_proc(struct proc *p)
{
	if (p->pid > 0)
		harness_stop(p, SIGTERM);
}

static char *db_path(const char *name, int run)
{
	char *p = xmalloc(700);

	snprintf(p, 700, "%s/%s-%d.db", workdir, name, run + 1);
	return p;
}

/* ---- wrk ---- */

struct wrk_result {
	double rps, p50_ms, p90_ms, p99_ms, max_ms;
	long requests, socket_errors, status_errors;
};

static int64_t count_jobs(const char *db);

/*
 * Runs wrk with a script that prints "BENCH {json}" from its done() hook. With stop_db, wrk
 * is interrupted (SIGINT: it then reports as usual, over the time it actually ran) as soon as
 * that database holds stop_count jobs, so a run submits a known number of jobs; -d only caps
 * it.
 */
static int wrk_run(const char *script, const char *url, int threads, int conns, int secs,
		   const char *stop_db, int64_t stop_count, struct wrk_result *r)
{
	char t[16], c[16], d[16];
	const char *argv[16];
	char *out = NULL, *line;
	json_t *j;
	int n = 0, rc, fd;
	char errlog[600];
	pid_t pid;

	snprintf(t, sizeof(t), "-t%d", threads);
	snprintf(c, sizeof(c), "-c%d", conns);
	snprintf(d, sizeof(d), "-d%ds", secs);
	argv[n++] = "wrk";
	argv[n++] = t;
	argv[n++] = c;
	argv[n++] = d;
	argv[n++] = "--timeout";
	argv[n++] = "10s";
	argv[n++] = "-s";
	argv[n++] = script;
	argv[n++] = url;
	argv[n] = NULL;
	snprintf(errlog, sizeof(errlog), "%s/wrk.log", workdir);
	if ((pid = run_start(argv, errlog, &fd)) < 0)
		return -1;
	if (stop_db) {
		int st;
		while (waitpid(pid, &st, WNOHANG) == 0) {
			if (count_jobs(stop_db) >= stop_count) {
				kill(pid, SIGINT);
				break;
			}
			usleep(20000);
		}
	}
	rc = run_finish(pid, fd, &out);
	line = out ? strstr(out, "BENCH {") : NULL;
	if (rc != 0 || !line) {
		say("wrk failed (status %d); output: %.300s", rc, out ? out : "");
		free(out);
		return -1;
	}
	j = json_loads(line + 6, JSON_DISABLE_EOF_CHECK, NULL);
	free(out);
	if (!j)
		return -1;
	memset(r, 0, sizeof(*r));
	r->requests = (long)json_integer_value(json_object_get(j, "requests"));
	r->rps = (double)r->requests /
		 ((double)json_integer_value(json_object_get(j, "duration_us")) / 1e6);
	r->p50_ms = (double)json_integer_value(json_object_get(j, "p50_us")) / 1000;
	r->p90_ms = (double)json_integer_value(json_object_get(j, "p90_us")) / 1000;
	r->p99_ms = (double)json_integer_value(json_object_get(j, "p99_us")) / 1000;
	r->max_ms = (double)json_integer_value(json_object_get(j, "max_us")) / 1000;
	r->socket_errors = (long)json_integer_value(json_object_get(j, "socket_errors"));
	r->status_errors = (long)json_integer_value(json_object_get(j, "status_errors"));
	json_decref(j);
	return 0;
}

static json_t *wrk_json(const struct wrk_result *r)
{
	return json_pack("{s:f, s:f, s:f, s:f, s:f, s:I, s:I, s:I}", "rps", r->rps, "p50_ms",
			 r->p50_ms, "p90_ms", r->p90_ms, "p99_ms", r->p99_ms, "max_ms", r->max_ms,
			 "requests", (json_int_t)r->requests, "socket_errors",
			 (json_int_t)r->socket_errors, "status_errors",
			 (json_int_t)r->status_errors);
}

/* ---- 1. orchestration efficiency ---- */

#define ORCH_JOBS 32
#define ORCH_TURNS 3
#define ORCH_REPLY_MS 200
#define ORCH_CONC 8
#define ORCH_WORKERS 8

struct poster {
	int port, from, to;
	const char *body;
	char (*ids)[32];
	atomic_int *bad;
};

static void *poster_main(void *arg)
{
	struct poster *p = arg;
	int i;

	for (i = p->from; i < p->to; i++) {
		json_t *j = NULL;
		int st = harness_http_json(p->port, "POST", "/v1/jobs", p->body, &j);
		const char *id = json_string_value(json_object_get(j, "id"));

		if (st != 202 || !id)
			atomic_fetch_add(p->bad, 1);
		else
			snprintf(p->ids[i], sizeof(p->ids[i]), "%s", id);
		json_decref(j);
	}
	return NULL;
}

/* Posts n copies of body from nthreads client threads; ids[n][32]. Returns how many failed. */
static int post_jobs(int port, const char *body, int n, int nthreads, char (*ids)[32])
{
	pthread_t th[16];
	struct poster ps[16];
	atomic_int bad = 0;
	int i;

	for (i = 0; i < nthreads; i++) {
		ps[i].port = port;
		ps[i].from = n * i / nthreads;
		ps[i].to = n * (i + 1) / nthreads;
		ps[i].body = body;
		ps[i].ids = ids;
		ps[i].bad = &bad;
		pthread_create(&th[i], NULL, poster_main, &ps[i]);
	}
	for (i = 0; i < nthreads; i++)
		pthread_join(th[i], NULL);
	return atomic_load(&bad);
}

static void bench_orchestration(int run)
{
	static const char body[] =
	    "{\"scenario\":\"response_speed_optimization\","
	    "\"interviewer\":{\"model\":\"gemma3:1b\",\"backend\":\"fake\"},"
	    "\"candidate\":{\"model\":\"gemma3n:latest\",\"backend\":\"fake\"},\"max_turns\":3}";
	const char *fargs[] = {"--reply-ms", "200", "--load-ms", "0", "--die-with-parent", NULL};
	char be[256], workers[8], (*ids)[32] = xcalloc(ORCH_JOBS, 32);
	struct proc fake, pd;
	char *db = db_path("orchestration", run);
	double t0, ideal, measured;
	int64_t last_us = 0;
	int i, bad, ok = 0;
	sqlite3 *h;
	json_t *d;

	memset(&pd, 0, sizeof(pd));
	if (harness_fake_start(&fake, fargs) < 0)
		goto fail;
	snprintf(be, sizeof(be), "name=fake,kind=ollama,url=http://127.0.0.1:%d,max_concurrency=%d",
		 fake.port, ORCH_CONC);
	snprintf(workers, sizeof(workers), "%d", ORCH_WORKERS);
	{
		const char *args[] = {"--workers", workers,	   "--backend", be,
				      "--config",  bench_config(), NULL};
		if (harness_parleyd_start(&pd, db, args) < 0)
			goto fail;
	}
	t0 = now_s();
	bad = post_jobs(pd.port, body, ORCH_JOBS, 8, ids);
	if (bad || wait_idle(pd.port, 60, 0.05) < 0) {
		say("orchestration: %d posts failed or the jobs did not end", bad);
		goto fail;
	}
	for (i = 0; i < ORCH_JOBS; i++) {
		char path[64];
		json_t *j = NULL;
		int64_t fin;

		snprintf(path, sizeof(path), "/v1/jobs/%s", ids[i]);
		harness_http_json(pd.port, "GET", path, NULL, &j);
		fin = iso_us(json_string_value(json_object_get(j, "finished_at")));
		if (!strcmp(str_or_empty(json_string_value(json_object_get(j, "status"))),
			    "succeeded"))
			ok++;
		if (fin > last_us)
			last_us = fin;
		json_decref(j);
	}
	stop_proc(&pd);
	stop_proc(&fake);
	if (ok != ORCH_JOBS) {
		say("orchestration: only %d of %d jobs succeeded", ok, ORCH_JOBS);
		goto fail;
	}
	ideal = (double)ORCH_JOBS * ORCH_TURNS * ORCH_REPLY_MS / 1000.0 / ORCH_CONC;
	measured = (double)last_us / 1e6 - t0;
	d = json_pack("{s:f, s:f, s:i, s:i, s:i}", "measured_s", measured, "ideal_s", ideal,
		      "workers", ORCH_WORKERS, "max_concurrency", ORCH_CONC, "reply_ms",
		      ORCH_REPLY_MS);
	/* where the time goes, from the stored turns (microsecond timestamps) */
	if ((h = db_ro(db))) {
		json_object_set_new(d, "mean_call_ms",
				    json_real(sql_num(h, "SELECT avg(wall_ms) FROM turns", 0, 0)));
		json_object_set_new(
		    d, "mean_gap_between_turns_ms",
		    json_real(sql_num(h,
				      "SELECT avg(b.started_at - a.finished_at) / 1000.0 FROM "
				      "turns a JOIN turns b ON b.job_id = a.job_id AND b.idx = "
				      "a.idx + 1",
				      0, 0)));
		json_object_set_new(
		    d, "mean_claim_to_first_call_ms",
		    json_real(sql_num(h,
				      "SELECT avg(t.started_at - j.started_at) / 1000.0 FROM jobs "
				      "j JOIN turns t ON t.job_id = j.id AND t.idx = 1",
				      0, 0)));
		json_object_set_new(
		    d, "mean_last_call_to_finished_ms",
		    json_real(sql_num(h,
				      "SELECT avg(j.finished_at - t.finished_at) / 1000.0 FROM "
				      "jobs j JOIN turns t ON t.job_id = j.id AND t.idx = 3",
				      0, 0)));
		json_object_set_new(
		    d, "max_last_call_to_finished_ms",
		    json_real(sql_num(h,
				      "SELECT max(j.finished_at - t.finished_at) / 1000.0 FROM "
				      "jobs j JOIN turns t ON t.job_id = j.id AND t.idx = 3",
				      0, 0)));
		sqlite3_close(h);
	}
	json_object_set_new(d, "cpu_pressure", json_real(cpu_pressure()));
	fig_add(F_ORCH, ideal / measured, d);
	say("run %d: orchestration efficiency %.3f (%.3f s measured, %.3f s ideal)", run + 1,
	    ideal / measured, measured, ideal);
	free(ids);
	free(db);
	return;
fail:
	stop_proc(&pd);
	stop_proc(&fake);
	free(ids);
	free(db);
	failures++;
}

/* ---- trials: task calls side by side, and early stop ---- */

#define TRIAL_TRAIN 200
#define TRIAL_TASKS 250 /* holdout 0.2 keeps 50 back */
#define TRIAL_SLOTS 4
#define TRIAL_REPLY_MS 50

/*
 * One job with optimize on a 250-task scenario: the baseline runs the 200 train tasks on a
 * backend of fixed latency and TRIAL_SLOTS slots (every reply passes); the scripted
 * interviewer then proposes a prompt under which every reply fails, which stops early.
 */
static void bench_trials(int run)
{
	char script[600], be[256], *db = db_path("trials", run), *id = NULL;
	const char *fargs[] = {"--reply-ms", "50",   "--load-ms",	  "0", "--slots", "4",
			       "--script",   script, "--die-with-parent", NULL};
	struct proc fake, pd;
	struct strbuf body;
	json_t *j = NULL;
	double wall, ideal, made;
	sqlite3 *h;
	int i;

	memset(&pd, 0, sizeof(pd));
	memset(&fake, 0, sizeof(fake));
	snprintf(script, sizeof(script), "%s/trials-script.json", workdir);
	if (write_file(script,
		       "{\"models\":{\"task\":{\"replies\":[\"ok\"],\"cases\":[{"
		       "\"contains\":\"Ramble.\",\"replies\":[\"well, it depends on many "
		       "things\"]}]},\"iv\":{\"replies\":[\"#prompt_defined\\n```\\n"
		       "Ramble.\\n```\",\"#stop_progress: done\",\"1. Analysis\"]}}}") < 0 ||
	    harness_fake_start(&fake, fargs) < 0)
		goto fail;
	snprintf(be, sizeof(be),
		 "name=fake,kind=llama-server,url=http://127.0.0.1:%d,"
		 "max_concurrency=%d",
		 fake.port, TRIAL_SLOTS);
	{
		const char *args[] = {"--backend", be, "--config", bench_config(), NULL};
		if (harness_parleyd_start(&pd, db, args) < 0)
			goto fail;
	}
	strbuf_init(&body, 32768);
	strbuf_addstr(&body, "{\"scenario\":{\"name\":\"bench\",\"problem\":\"P\",\"context\":"
			     "\"C\",\"goal\":\"G\",\"tasks\":[");
	for (i = 0; i < TRIAL_TASKS; i++)
		strbuf_addf(&body,
			    "%s{\"id\":%d,\"input\":\"task %d\",\"checks\":[{"
			    "\"max_words\":3}]}",
			    i ? "," : "", i, i);
	strbuf_addstr(&body, "]},\"interviewer\":{\"model\":\"iv\"},\"candidate\":{\"model\":"
			     "\"task\"},\"optimize\":{\"max_trials\":1,\"holdout\":0.2}}");
	if (harness_http_json(pd.port, "POST", "/v1/jobs", body.buf, &j) != 202) {
		strbuf_release(&body);
		say("trials: the job was refused");
		goto fail;
	}
	strbuf_release(&body);
	id = xstrdup(str_or_empty(json_string_value(json_object_get(j, "id"))));
	json_decref(j);
	j = harness_wait_job(pd.port, id, 120000);
	if (!j ||
	    strcmp(str_or_empty(json_string_value(json_object_get(j, "status"))), "succeeded")) {
		say("trials: the job did not succeed");
		json_decref(j);
		goto fail;
	}
	json_decref(j);
	stop_proc(&pd);
	stop_proc(&fake);
	if (!(h = db_ro(db)))
		goto fail;
	wall = sql_num(h,
		       "SELECT (max(finished_at) - min(started_at)) / 1e6 FROM trial_calls WHERE "
		       "trial = 0 AND split = 'train'",
		       0, 0);
	made = sql_num(h, "SELECT count(*) FROM trial_calls WHERE trial = 1", 0, 0);
	sqlite3_close(h);
	ideal = (double)TRIAL_TRAIN * TRIAL_REPLY_MS / 1000.0 / TRIAL_SLOTS;
	fig_add(F_TRIAL_EFF, ideal / wall,
		json_pack("{s:f, s:f, s:i, s:i, s:i}", "measured_s", wall, "ideal_s", ideal,
			  "calls", TRIAL_TRAIN, "slots", TRIAL_SLOTS, "reply_ms", TRIAL_REPLY_MS));
	fig_add(F_TRIAL_SAVED, 1 - made / TRIAL_TRAIN,
		json_pack("{s:f, s:i}", "calls_made", made, "calls_planned", TRIAL_TRAIN));
	say("run %d: trials: %d calls in %.3f s (ideal %.3f s, %.3f); the hopeless trial made %.0f "
	    "of %d calls",
	    run + 1, TRIAL_TRAIN, wall, ideal, ideal / wall, made, TRIAL_TRAIN);
	free(id);
	free(db);
	return;
fail:
	stop_proc(&pd);
	stop_proc(&fake);
	free(id);
	free(db);
	failures++;
}

/* ---- 2-4. submit, engine throughput, memory, reads ---- */

#define FILL_JOBS 10000
#define SUBMIT_THREADS 2
#define SUBMIT_CONNS 8
#define ENGINE_WORKERS 8
#define WINDOW_S 10
#define READ_THREADS 2
#define READ_CONNS 8
#define READ_SECS 5

/* Jobs in a database (a read-only look; parleyd may be writing it). */
static int64_t count_jobs(const char *db)
{
	sqlite3 *h = NULL;
	int64_t n = -1;
	sqlite3_stmt *st;

	if (sqlite3_open_v2(db, &h, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK &&
	    sqlite3_prepare_v2(h, "SELECT max(seq) FROM jobs", -1, &st, NULL) == SQLITE_OK) {
		if (sqlite3_step(st) == SQLITE_ROW)
			n = sqlite3_column_int64(st, 0);
		sqlite3_finalize(st);
	}
	sqlite3_close(h);
	return n;
}

/* Calls straight to the fake, to learn how many it serves per second on this machine now. */
struct direct_fake {
	int port;
	double until;
	const char *body;
	atomic_long *calls;
};

static size_t discard(char *p, size_t size, size_t n, void *ud)
{
	(void)p, (void)ud;
	return size * n;
}

static void *direct_fake_main(void *arg)
{
	struct direct_fake *df = arg;
	CURL *c = curl_easy_init();
	struct curl_slist *hl = curl_slist_append(NULL, "Content-Type: application/json");
	char url[128];

	snprintf(url, sizeof(url), "http://127.0.0.1:%d/api/chat", df->port);
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_POSTFIELDS, df->body);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, hl);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, discard);
	while (now_s() < df->until)
		if (curl_easy_perform(c) == CURLE_OK)
			atomic_fetch_add(df->calls, 1);
	curl_slist_free_all(hl);
	curl_easy_cleanup(c);
	return NULL;
}

/* The request body of an engine-throughput turn 2, as parleyd sends it to an Ollama backend. */
static char *fake_turn_body(void)
{
	static const char scen[] = "{\"name\":\"response_speed_optimization\",\"problem\":\"p\","
				   "\"context\":\"c\",\"goal\":\"g\"}";
	struct backend_cfg be;
	struct prompts pr;
	struct db_turn t;
	struct chat_msg msgs[4];
	struct chat_req req;
	struct strbuf scratch;
	json_t *scenario = json_loads(scen, 0, NULL), *body;
	char *s;

	memset(&be, 0, sizeof(be));
	be.name = (char *)"bench";
	be.kind = BACKEND_OLLAMA;
	memset(&t, 0, sizeof(t));
	t.idx = 1;
	snprintf(t.role, sizeof(t.role), "interviewer");
	t.text = (char *)"This is gemma3:1b speaking on turn 1. Tell me about your current "
			 "approach to the problem, what works and what does not, and where it "
			 "stops. I would like numbers where you have them.";
	strbuf_init(&scratch, 0);
	prompt_render(scenario, "gemma3:1b", "gemma3n:latest", 3, &pr);
	memset(&req, 0, sizeof(req));
	req.be = &be;
	req.model = "gemma3n:latest";
	req.msgs = msgs;
	req.nmsgs = prompt_messages(&pr, &t, 1, 2, 0, msgs, &scratch);
	body = backend_request_body(&req);
	s = json_dumps(body, JSON_COMPACT);
	json_decref(body);
	json_decref(scenario);
	prompt_release(&pr);
	strbuf_release(&scratch);
	return s;
}

static double direct_fake_rate(int port, int nthreads, double secs)
{
	pthread_t th[16];
	struct direct_fake df;
	atomic_long calls = 0;
	char *body = fake_turn_body();
	double t0 = now_s();
	int i;

	df.port = port;
	df.until = t0 + secs;
	df.body = body;
	df.calls = &calls;
	for (i = 0; i < nthreads; i++)
		pthread_create(&th[i], NULL, direct_fake_main, &df);
	for (i = 0; i < nthreads; i++)
		pthread_join(th[i], NULL);
	free(body);
	return (double)atomic_load(&calls) / (now_s() - t0);
}

/*
 * Submit latency as a client sees it: SUBMIT_CONNS threads, each on its own kept-alive
 * connection, post jobs back to back for secs seconds and time every answer. wrk's own
 * latency figures are not used for POST: under parleyd's stalls their mean came out many
 * times what wrk's request rate and connection count allow (Little's law), while this
 * client's agree with it.
 */
struct lat_client {
	int port;
	double until;
	double *v; /* latencies in ms */
	size_t n, alloc;
	long bad;
};

static void *lat_client_main(void *arg)
{
	static const char body[] =
	    "{\"scenario\":\"response_speed_optimization\","
	    "\"interviewer\":{\"model\":\"gemma3:1b\",\"backend\":\"bench\"},"
	    "\"candidate\":{\"model\":\"gemma3n:latest\",\"backend\":\"bench\"},\"max_turns\":3}";
	struct lat_client *lc = arg;
	CURL *c = curl_easy_init();
	struct curl_slist *hl = curl_slist_append(NULL, "Content-Type: application/json");
	char url[128];

	hl = curl_slist_append(hl, "Expect:");
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/v1/jobs", lc->port);
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, hl);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, discard);
	while (now_s() < lc->until) {
		double t0 = now_s();
		long status = 0;

		if (curl_easy_perform(c) != CURLE_OK ||
		    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status) != CURLE_OK ||
		    status != 202)
			lc->bad++;
		if (lc->n == lc->alloc) {
			lc->alloc = lc->alloc ? lc->alloc * 2 : 1024;
			lc->v = xrealloc(lc->v, lc->alloc * sizeof(*lc->v));
		}
		lc->v[lc->n++] = (now_s() - t0) * 1000;
	}
	curl_slist_free_all(hl);
	curl_easy_cleanup(c);
	return NULL;
}

struct latency {
	double rps, p50, p90, p99, max, mean;
	long n, bad;
};

static void submit_latency(int port, double secs, struct latency *out)
{
	struct lat_client lc[SUBMIT_CONNS];
	pthread_t th[SUBMIT_CONNS];
	double t0 = now_s(), *all, sum = 0;
	size_t n = 0, i, k;

	memset(lc, 0, sizeof(lc));
	for (i = 0; i < SUBMIT_CONNS; i++) {
		lc[i].port = port;
		lc[i].until = t0 + secs;
		pthread_create(&th[i], NULL, lat_client_main, &lc[i]);
	}
	for (i = 0; i < SUBMIT_CONNS; i++) {
		pthread_join(th[i], NULL);
		n += lc[i].n;
	}
	memset(out, 0, sizeof(*out));
	out->rps = (double)n / (now_s() - t0);
	all = xcalloc(n ? n : 1, sizeof(*all));
	for (n = 0, i = 0; i < SUBMIT_CONNS; i++) {
		for (k = 0; k < lc[i].n; k++, n++) {
			all[n] = lc[i].v[k];
			sum += all[n];
		}
		out->bad += lc[i].bad;
		free(lc[i].v);
	}
	qsort(all, n, sizeof(*all), cmp_double);
	if (n) {
		out->n = (long)n;
		out->p50 = all[n / 2];
		out->p90 = all[n * 9 / 10];
		out->p99 = all[n * 99 / 100];
		out->max = all[n - 1];
		out->mean = sum / (double)n;
	}
	free(all);
}

/*
 * How long one durable commit takes on this disk right now: 200 one-row transactions in WAL
 * mode with synchronous=FULL, as parleyd commits them, in milliseconds.
 */
static double commit_ms(void)
{
	char path[600], *err = NULL;
	sqlite3 *h = NULL;
	double t0, ms = -1;
	int i, ok = 1;

	snprintf(path, sizeof(path), "%s/commit-probe.db", workdir);
	unlink(path);
	if (sqlite3_open(path, &h) != SQLITE_OK ||
	    sqlite3_exec(h, "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; CREATE TABLE t (x)",
			 NULL, NULL, &err) != SQLITE_OK) {
		say("commit probe: %s", err ? err : sqlite3_errmsg(h));
		sqlite3_free(err);
		sqlite3_close(h);
		return -1;
	}
	t0 = now_s();
	for (i = 0; i < 200 && ok; i++)
		ok = sqlite3_exec(h, "BEGIN IMMEDIATE; INSERT INTO t VALUES (1); COMMIT", NULL,
				  NULL, NULL) == SQLITE_OK;
	if (ok)
		ms = (now_s() - t0) * 1000 / 200;
	sqlite3_close(h);
	unlink(path);
	return ms;
}

static void bench_engine(int run)
{
	const char *hang_args[] = {"--reply-ms", "3600000",	      "--load-ms",
				   "0",		 "--die-with-parent", NULL};
	const char *fast_args[] = {"--load-ms", "0", "--die-with-parent", NULL};
	struct proc hang, fast, pd;
	struct wrk_result wr, wh, wj;
	struct latency sl;
	char be[256], url[256], workers[8], script[600];
	char *db = db_path("engine", run), *job_id = NULL;
	double t_spawn, cpu1, fcpu0, fcpu1, turns_rate, t_cpu;
	int64_t t0_us;
	long queued, hwm, idle_kb, finished;
	double jobs_in_window, turns_in_window, bad_turns, turns_by_cpu;
	int i;
	sqlite3 *h;
	json_t *d;

	memset(&hang, 0, sizeof(hang));
	memset(&fast, 0, sizeof(fast));
	memset(&pd, 0, sizeof(pd));

	/* 2. API submit: fills the queue with FILL_JOBS jobs that nothing runs */
	if (harness_fake_start(&hang, hang_args) < 0)
		goto fail;
	snprintf(be, sizeof(be), "name=bench,kind=ollama,url=http://127.0.0.1:%d,max_concurrency=1",
		 hang.port);
	{
		const char *args[] = {"--workers",    "1", "--backend", be, "--config",
				      bench_config(), NULL};
		if (harness_parleyd_start(&pd, db, args) < 0)
			goto fail;
	}
	submit_latency(pd.port, 2.0, &sl);
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/v1/jobs", pd.port);
	snprintf(script, sizeof(script), "tests/bench/wrk-post.lua");
	if (wrk_run(script, url, SUBMIT_THREADS, SUBMIT_CONNS, 120, db, FILL_JOBS, &wr) < 0)
		goto fail;
	stop_proc(&pd); /* the stuck job goes back to the queue */
	stop_proc(&hang);
	h = db_ro(db);
	queued = (long)sql_num(h, "SELECT count(*) FROM jobs WHERE status = 'queued'", 0, 0);
	sqlite3_close(h);
	d = wrk_json(&wr);
	json_object_set_new(d, "threads", json_integer(SUBMIT_THREADS));
	json_object_set_new(d, "connections", json_integer(SUBMIT_CONNS));
	json_object_set_new(d, "jobs_stored", json_integer(queued));
	json_object_set_new(d, "cpu_pressure", json_real(cpu_pressure()));
	fig_add(F_SUBMIT_RPS, wr.rps, d);
	fig_add(F_SUBMIT_P99, sl.p99,
		json_pack("{s:f, s:f, s:f, s:f, s:f, s:f, s:I, s:I, s:i, s:f}", "jobs_per_s",
			  sl.rps, "p50_ms", sl.p50, "p90_ms", sl.p90, "mean_ms", sl.mean, "max_ms",
			  sl.max, "little_mean_ms", sl.rps > 0 ? SUBMIT_CONNS * 1000 / sl.rps : 0,
			  "answers", (json_int_t)sl.n, "failed", (json_int_t)sl.bad, "connections",
			  SUBMIT_CONNS, "wrk_p99_ms", wr.p99_ms));
	fig_add(F_SUBMIT_MAX, sl.max, NULL);
	say("run %d: API submit %.0f jobs/s (wrk: %ld answers, %ld non-2xx; %ld queued); latency "
	    "(own client, %d connections, %.0f jobs/s): p50 %.2f ms, p99 %.2f ms, max %.1f ms",
	    run + 1, wr.rps, wr.requests, wr.status_errors, queued, SUBMIT_CONNS, sl.rps, sl.p50,
	    sl.p99, sl.max);
	if (queued < FILL_JOBS - 50) {
		say("engine: only %ld jobs queued", queued);
		goto fail;
	}

	/* 3. engine throughput on the filled queue */
	{
		double cm = commit_ms();
		if (cm > 0)
			fig_add(F_REF_COMMIT, cm, NULL);
	}
	if (harness_fake_start(&fast, fast_args) < 0)
		goto fail;
	snprintf(be, sizeof(be),
		 "name=bench,kind=ollama,url=http://127.0.0.1:%d,max_concurrency=64", fast.port);
	snprintf(workers, sizeof(workers), "%d", ENGINE_WORKERS);
	t_spawn = now_s();
	fcpu0 = proc_cpu_s(fast.pid);
	{
		const char *args[] = {"--workers", workers,	   "--backend", be,
				      "--config",  bench_config(), NULL};
		if (harness_parleyd_start(&pd, db, args) < 0)
			goto fail;
	}
	while (now_s() < t_spawn + WINDOW_S + 1.0)
		usleep(50000);
	cpu1 = proc_cpu_s(pd.pid); /* parleyd's CPU counts from its start */
	fcpu1 = proc_cpu_s(fast.pid);
	t_cpu = now_s();
	hwm = proc_kb(pd.pid, "VmHWM");
	h = db_ro(db);
	t0_us = (int64_t)sql_num(h, "SELECT min(started_at) FROM jobs WHERE started_at >= ?1",
				 (int64_t)(t_spawn * 1e6), 0);
	jobs_in_window = sql_num(h,
				 "SELECT count(*) FROM jobs WHERE status = 'succeeded' AND "
				 "started_at >= ?1 AND finished_at <= ?2",
				 t0_us, t0_us + (int64_t)WINDOW_S * 1000000);
	turns_in_window = sql_num(h,
				  "SELECT count(*) FROM turns t JOIN jobs j ON j.id = t.job_id "
				  "WHERE j.status = 'succeeded' AND j.started_at >= ?1 AND "
				  "j.finished_at <= ?2",
				  t0_us, t0_us + (int64_t)WINDOW_S * 1000000);
	bad_turns = sql_num(h,
			    "SELECT count(*) FROM jobs j WHERE j.status = 'succeeded' AND "
			    "j.started_at >= ?1 AND j.finished_at <= ?2 AND (SELECT count(*) FROM "
			    "turns t WHERE t.job_id = j.id) <> 3",
			    t0_us, t0_us + (int64_t)WINDOW_S * 1000000);
	turns_by_cpu = sql_num(h, "SELECT count(*) FROM turns WHERE finished_at <= ?1",
			       (int64_t)(t_cpu * 1e6), 0);
	sqlite3_close(h);
	turns_rate = jobs_in_window * 3 / WINDOW_S;
	d = json_pack("{s:i, s:f, s:f, s:f, s:f, s:f}", "workers", ENGINE_WORKERS, "jobs_finished",
		      jobs_in_window, "turns_committed", turns_in_window, "jobs_with_missing_turns",
		      bad_turns, "parleyd_cpu_ms_per_turn",
		      cpu1 * 1000 / (turns_by_cpu > 0 ? turns_by_cpu : 1), "fake_cpu_ms_per_turn",
		      (fcpu1 - fcpu0) * 1000 / (turns_by_cpu > 0 ? turns_by_cpu : 1));
	json_object_set_new(d, "loadavg_1m", json_real(loadavg1()));
	json_object_set_new(d, "cpu_pressure", json_real(cpu_pressure()));
	fig_add(F_THROUGHPUT, turns_rate, d);
	fig_add(F_CPU_TURN, cpu1 * 1000 / (turns_by_cpu > 0 ? turns_by_cpu : 1), NULL);
	fig_add(F_RSS_LOAD, (double)hwm / 1024, json_pack("{s:s}", "source", "VmHWM"));
	say("run %d: engine throughput %.0f turns/s (%.0f jobs in %d s, %.0f turns stored, "
	    "%.0f jobs missing turns), parleyd %.2f ms CPU/turn, peak RSS %.1f MB",
	    run + 1, turns_rate, jobs_in_window, WINDOW_S, turns_in_window, bad_turns,
	    cpu1 * 1000 / (turns_by_cpu > 0 ? turns_by_cpu : 1), (double)hwm / 1024);

	/* the rest of the queue, then idle memory */
	if (wait_idle(pd.port, 240, 0.5) < 0)
		say("engine: the queue did not drain in 240 s; idle memory is taken anyway");
	sleep(3);
	idle_kb = proc_kb(pd.pid, "VmRSS");
	h = db_ro(db);
	finished = (long)sql_num(h, "SELECT count(*) FROM jobs WHERE status = 'succeeded'", 0, 0);
	job_id = sql_text(h, "SELECT id FROM jobs WHERE status = 'succeeded' ORDER BY seq DESC "
			     "LIMIT 1");
	sqlite3_close(h);
	fig_add(F_RSS_IDLE, (double)idle_kb / 1024,
		json_pack("{s:i, s:f, s:i}", "jobs_finished", (int)finished, "peak_mb",
			  (double)proc_kb(pd.pid, "VmHWM") / 1024, "settle_s", 3));
	say("run %d: idle RSS %.1f MB holding %ld finished jobs", run + 1, (double)idle_kb / 1024,
	    finished);

	/* 4. API read, on the idle parleyd; the order alternates between runs */
	if (!job_id)
		goto fail;
	snprintf(script, sizeof(script), "tests/bench/wrk-report.lua");
	for (i = 0; i < 2; i++) {
		int job_first = run % 2 == 1;
		int want_job = i == 0 ? job_first : !job_first;
		if (want_job)
			snprintf(url, sizeof(url), "http://127.0.0.1:%d/v1/jobs/%s", pd.port,
				 job_id);
		else
			snprintf(url, sizeof(url), "http://127.0.0.1:%d/healthz", pd.port);
		if (wrk_run(script, url, READ_THREADS, READ_CONNS, READ_SECS, NULL, 0,
			    want_job ? &wj : &wh) < 0)
			goto fail;
	}
	d = json_pack("{s:o, s:o, s:i, s:i, s:i}", "job", wrk_json(&wj), "healthz", wrk_json(&wh),
		      "threads", READ_THREADS, "connections", READ_CONNS, "seconds", READ_SECS);
	json_object_set_new(d, "cpu_pressure", json_real(cpu_pressure()));
	fig_add(F_READ_RATIO, wj.rps / wh.rps, d);
	fig_add(F_READ_P99, wj.p99_ms, json_pack("{s:f}", "healthz_p99_ms", wh.p99_ms));
	say("run %d: API read %.0f/s vs /healthz %.0f/s = %.2f; p99 %.2f ms (healthz %.2f ms)",
	    run + 1, wj.rps, wh.rps, wj.rps / wh.rps, wj.p99_ms, wh.p99_ms);

	/* reference: the fake alone, called straight, as many at a time as parleyd's workers */
	stop_proc(&pd);
	{
		double rate = direct_fake_rate(fast.port, ENGINE_WORKERS, 3.0);
		json_t *last = json_array_get(figs[F_THROUGHPUT].runs,
					      json_array_size(figs[F_THROUGHPUT].runs) - 1);
		json_object_set_new(last, "reference_direct_calls_per_s", json_real(rate));
		fig_add(F_REF_FAKE, rate, NULL);
		say("run %d: reference: the fake alone answers %.0f calls/s to a plain client",
		    run + 1, rate);
	}
	stop_proc(&fast);
	free(job_id);
	free(db);
	return;
fail:
	stop_proc(&pd);
	stop_proc(&hang);
	stop_proc(&fast);
	free(job_id);
	free(db);
	failures++;
}

/* ---- 5. real backend ---- */

#define REAL_CONVS 6
#define REAL_TURNS 4
#define REAL_PREDICT 64
#define REAL_MODEL "stories260K"

static const char real_scenario[] =
    "{\"name\":\"bench_story_latency\",\"problem\":\"Bedtime stories take too long to "
    "write.\",\"context\":\"A small team writes one short story a night for a children's "
    "app.\",\"goal\":\"Write a good story in less time.\"}";

static int llama_skip; /* 1: llama-server cannot be provisioned here */
static const char *llama_threads = "1";

struct llama {
	int port;
	char pidfile[1024];
};

/* Starts a 2-slot llama-server with extra arguments (up to 4) after the usual ones. */
static int llama_start_args(struct llama *l, const char *const *extra)
{
	char port[16], runenv[700], errlog[700], *out = NULL;
	const char *argv[12] = {repo_llama_sh, "start", port, "-np", "2", "-t", llama_threads};
	int rc, i;

	for (i = 0; extra && extra[i] && i < 4; i++)
		argv[7 + i] = extra[i];
	l->port = harness_free_port();
	snprintf(port, sizeof(port), "%d", l->port);
	snprintf(runenv, sizeof(runenv), "%s/llama", workdir);
	setenv("PARLEY_RUN_DIR", runenv, 1);
	snprintf(errlog, sizeof(errlog), "%s/llama-server-sh.log", workdir);
	rc = run_capture(argv, &out, errlog);
	free(out);
	snprintf(l->pidfile, sizeof(l->pidfile), "%s/llama-server-%d.pid", runenv, l->port);
	if (rc == 77) {
		llama_skip = 1;
		say("llama-server cannot be provisioned here (see %s); real-backend figures "
		    "skipped",
		    errlog);
		return -1;
	}
	if (rc != 0) {
		say("llama-server did not start (status %d, see %s)", rc, errlog);
		return -1;
	}
	return 0;
}

static int llama_start(struct llama *l)
{
	return llama_start_args(l, NULL);
}

static void llama_stop(struct llama *l)
{
	const char *argv[] = {repo_llama_sh, "stop", l->pidfile, NULL};

	run_capture(argv, NULL, NULL);
}

/* What a run of 6 conversations gave. */
struct real_result {
	double wall_s;
	long prompt3, cached3; /* tokens, turns >= 3 */
	long prompt1;	       /* turn 1 prompt tokens of the first conversation */
	long completion;
	int turns;
	long reusable3;	   /* tokens the previous turn of the same side left in the cache */
	double backend_ms; /* prompt + generation time as llama-server reports it, summed */
	int reconnects;	   /* plain client: calls made again on a fresh connection */
	int retried;	   /* parleyd: turns that took more than one attempt */
	int ok;
};

/* ---- the plain client ---- */

struct sse {
	struct strbuf line;
	struct strbuf text;
	long prompt, cached, completion;
	double prompt_ms, predicted_ms;
	int done;
};

static void sse_line(struct sse *s, const char *l, size_t n)
{
	json_t *j, *u, *c;
	const char *content;

	if (n < 6 || strncmp(l, "data: ", 6) != 0)
		return;
	l += 6;
	n -= 6;
	if (n == 6 && !strncmp(l, "[DONE]", 6)) {
		s->done = 1;
		return;
	}
	if (!(j = json_loadb(l, n, 0, NULL)))
		return;
	c = json_object_get(
	    json_object_get(json_array_get(json_object_get(j, "choices"), 0), "delta"), "content");
	if ((content = json_string_value(c)))
		strbuf_add(&s->text, content, json_string_length(c));
	u = json_object_get(j, "timings");
	if (json_is_object(u)) {
		s->prompt_ms = json_number_value(json_object_get(u, "prompt_ms"));
		s->predicted_ms = json_number_value(json_object_get(u, "predicted_ms"));
	}
	u = json_object_get(j, "usage");
	if (json_is_object(u)) {
		s->prompt = (long)json_integer_value(json_object_get(u, "prompt_tokens"));
		s->completion = (long)json_integer_value(json_object_get(u, "completion_tokens"));
		s->cached = (long)json_integer_value(
		    json_object_get(json_object_get(u, "prompt_tokens_details"), "cached_tokens"));
	}
	json_decref(j);
}

static size_t sse_write(char *p, size_t size, size_t nmemb, void *ud)
{
	struct sse *s = ud;
	size_t n = size * nmemb, i, start = 0;

	for (i = 0; i < n; i++) {
		if (p[i] != '\n')
			continue;
		strbuf_add(&s->line, p + start, i - start);
		if (s->line.len && s->line.buf[s->line.len - 1] == '\r')
			s->line.buf[--s->line.len] = '\0';
		sse_line(s, s->line.buf, s->line.len);
		strbuf_reset(&s->line);
		start = i + 1;
	}
	strbuf_add(&s->line, p + start, n - start);
	return n;
}

#define DIRECT_MAX_TURNS 8

struct direct {
	const int *ports; /* thread i talks to ports[i % nports] */
	int nports;
	int nconvs, turns, predict, seed0; /* the conversations: how many, their shape */
	atomic_int next;		   /* next conversation */
	atomic_int thread;		   /* next thread's index */
	pthread_mutex_t lock;		   /* guards the sums below */
	struct real_result *res;
	int failed;
};

/* One conversation of dc->turns turns straight to llama-server at port; 0 or -1. */
static int direct_conversation(struct direct *dc, CURL *c, int port, int conv)
{
	struct backend_cfg be;
	struct prompts pr;
	struct db_turn turns[DIRECT_MAX_TURNS];
	struct chat_msg msgs[DIRECT_MAX_TURNS + 2];
	struct strbuf scratch;
	json_t *scenario = json_loads(real_scenario, 0, NULL);
	json_t *options = json_pack("{s:f, s:i, s:i}", "temperature", 0.7, "seed", dc->seed0 + conv,
				    "num_predict", dc->predict);
	struct curl_slist *hl = curl_slist_append(NULL, "Content-Type: application/json");
	char url[128];
	long ptok[DIRECT_MAX_TURNS], ctok[DIRECT_MAX_TURNS];
	size_t n = 0, i;
	int rc = 0;

	memset(&be, 0, sizeof(be));
	be.name = (char *)"llama";
	be.kind = BACKEND_LLAMA;
	strbuf_init(&scratch, 0);
	prompt_render(scenario, REAL_MODEL, REAL_MODEL, dc->turns, &pr);
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/v1/chat/completions", port);
	hl = curl_slist_append(hl, "Expect:");
	for (n = 0; n < (size_t)dc->turns; n++) {
		int idx = (int)n + 1, interviewer = idx % 2 == 1;
		int analysis = engine_analysis_turn(dc->turns, turns, n);
		struct chat_req req;
		struct sse s;
		json_t *body;
		char *post;
		long status = 0;
		CURLcode cc;
		int attempt;

		memset(&req, 0, sizeof(req));
		req.be = &be;
		req.model = REAL_MODEL;
		req.msgs = msgs;
		req.options = options;
		req.nmsgs = prompt_messages(&pr, turns, n, idx, interviewer && idx == analysis,
					    msgs, &scratch);
		body = backend_llama_body(&req);
		post = json_dumps(body, JSON_COMPACT);
		json_decref(body);
		memset(&s, 0, sizeof(s));
		strbuf_init(&s.line, 0);
		strbuf_init(&s.text, 0);
		curl_easy_setopt(c, CURLOPT_URL, url);
		curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, post);
		curl_easy_setopt(c, CURLOPT_HTTPHEADER, hl);
		curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, sse_write);
		curl_easy_setopt(c, CURLOPT_WRITEDATA, &s);
		for (attempt = 1;; attempt++) {
			strbuf_reset(&s.line);
			strbuf_reset(&s.text);
			s.prompt = s.cached = s.completion = 0;
			s.prompt_ms = s.predicted_ms = 0;
			s.done = 0;
			cc = curl_easy_perform(c);
			status = 0;
			curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
			/* a kept-alive connection the server closed as we reused it: nothing was
			 * answered, so the call is simply made again, as any client would */
			if (attempt == 1 && status == 0 &&
			    (cc == CURLE_SEND_ERROR || cc == CURLE_RECV_ERROR ||
			     cc == CURLE_GOT_NOTHING)) {
				pthread_mutex_lock(&dc->lock);
				dc->res->reconnects++;
				pthread_mutex_unlock(&dc->lock);
				continue;
			}
			break;
		}
		if (cc != CURLE_OK || status != 200 || !s.done) {
			say("direct client: conversation %d turn %d: %s, HTTP %ld, %s", conv, idx,
			    curl_easy_strerror(cc), status, s.done ? "ended" : "no [DONE]");
			rc = -1;
		}
		free(post);
		memset(&turns[n], 0, sizeof(turns[n]));
		turns[n].idx = idx;
		snprintf(turns[n].role, sizeof(turns[n].role), "%s",
			 interviewer ? "interviewer" : "candidate");
		turns[n].text = strbuf_detach(&s.text, NULL);
		strbuf_release(&s.line);
		ptok[n] = s.prompt;
		ctok[n] = s.completion;
		pthread_mutex_lock(&dc->lock);
		dc->res->turns++;
		dc->res->completion += s.completion;
		dc->res->backend_ms += s.prompt_ms + s.predicted_ms;
		if (idx >= 3) {
			long reusable = ptok[n - 2] + ctok[n - 2] - 1;
			dc->res->prompt3 += s.prompt;
			dc->res->cached3 += s.cached > 0 ? s.cached : 0;
			dc->res->reusable3 += reusable < s.prompt - 1 ? reusable : s.prompt - 1;
		}
		if (idx == 1 && conv == 0)
			dc->res->prompt1 = s.prompt;
		pthread_mutex_unlock(&dc->lock);
		if (rc < 0) {
			n++;
			break;
		}
	}
	for (i = 0; i < n; i++)
		free(turns[i].text);
	curl_slist_free_all(hl);
	prompt_release(&pr);
	strbuf_release(&scratch);
	json_decref(scenario);
	json_decref(options);
	return rc;
}

static void *direct_main(void *arg)
{
	struct direct *dc = arg;
	CURL *c = curl_easy_init(); /* kept across calls: the connection is reused */
	int conv, port = dc->ports[atomic_fetch_add(&dc->thread, 1) % dc->nports];

	while ((conv = atomic_fetch_add(&dc->next, 1)) < dc->nconvs)
		if (direct_conversation(dc, c, port, conv) < 0) {
			pthread_mutex_lock(&dc->lock);
			dc->failed++;
			pthread_mutex_unlock(&dc->lock);
		}
	curl_easy_cleanup(c);
	return NULL;
}

/* A plain client's conversations (shape in dc) on nthreads threads, each its own connection. */
static int direct_run(struct direct *proto, int nthreads, struct real_result *r)
{
	pthread_t th[4];
	struct direct dc = *proto;
	double t0;
	int i;

	memset(r, 0, sizeof(*r));
	atomic_init(&dc.next, 0);
	atomic_init(&dc.thread, 0);
	dc.failed = 0;
	dc.res = r;
	pthread_mutex_init(&dc.lock, NULL);
	t0 = now_s();
	for (i = 0; i < nthreads; i++)
		pthread_create(&th[i], NULL, direct_main, &dc);
	for (i = 0; i < nthreads; i++)
		pthread_join(th[i], NULL);
	r->wall_s = now_s() - t0;
	pthread_mutex_destroy(&dc.lock);
	r->ok = dc.failed == 0;
	return r->ok ? 0 : -1;
}

static int real_direct(int port, int nthreads, struct real_result *r)
{
	struct direct dc;

	memset(&dc, 0, sizeof(dc));
	dc.ports = &port;
	dc.nports = 1;
	dc.nconvs = REAL_CONVS;
	dc.turns = REAL_TURNS;
	dc.predict = REAL_PREDICT;
	dc.seed0 = 1000;
	return direct_run(&dc, nthreads, r);
}

static int real_parleyd(int port, int run, struct real_result *r)
{
	char be[256], body[1024], (*ids)[32] = xcalloc(REAL_CONVS, 32);
	char *db = db_path("real", run);
	struct proc pd;
	int64_t last_us = 0;
	double t0;
	int i, ok = 0;
	sqlite3 *h;

	memset(r, 0, sizeof(*r));
	snprintf(be, sizeof(be),
		 "name=llama,kind=llama-server,url=http://127.0.0.1:%d,max_concurrency=2", port);
	{
		const char *args[] = {"--workers",    "2", "--backend", be, "--config",
				      bench_config(), NULL};
		if (harness_parleyd_start(&pd, db, args) < 0) {
			free(ids);
			free(db);
			return -1;
		}
	}
	t0 = now_s();
	for (i = 0; i < REAL_CONVS; i++) {
		json_t *j = NULL;
		snprintf(body, sizeof(body),
			 "{\"scenario\":%s,\"interviewer\":{\"model\":\"" REAL_MODEL
			 "\",\"backend\":\"llama\"},\"candidate\":{\"model\":\"" REAL_MODEL
			 "\",\"backend\":\"llama\"},\"max_turns\":%d,\"options\":{\"temperature\":"
			 "0.7,\"seed\":%d,\"num_predict\":%d}}",
			 real_scenario, REAL_TURNS, 1000 + i, REAL_PREDICT);
		if (harness_http_json(pd.port, "POST", "/v1/jobs", body, &j) == 202)
			snprintf(ids[i], 32, "%s", json_string_value(json_object_get(j, "id")));
		json_decref(j);
	}
	if (wait_idle(pd.port, 600, 0.1) < 0)
		say("real backend: parleyd's jobs did not end in 600 s");
	for (i = 0; i < REAL_CONVS; i++) {
		char path[64];
		json_t *j = NULL;
		int64_t fin;

		snprintf(path, sizeof(path), "/v1/jobs/%s", ids[i]);
		harness_http_json(pd.port, "GET", path, NULL, &j);
		fin = iso_us(json_string_value(json_object_get(j, "finished_at")));
		if (!strcmp(str_or_empty(json_string_value(json_object_get(j, "status"))),
			    "succeeded"))
			ok++;
		if (fin > last_us)
			last_us = fin;
		json_decref(j);
	}
	stop_proc(&pd);
	r->wall_s = (double)last_us / 1e6 - t0;
	r->ok = ok == REAL_CONVS;
	if ((h = db_ro(db))) {
		r->turns = (int)sql_num(h, "SELECT count(*) FROM turns", 0, 0);
		r->prompt3 =
		    (long)sql_num(h, "SELECT sum(prompt_tokens) FROM turns WHERE idx >= 3", 0, 0);
		r->cached3 = (long)sql_num(
		    h, "SELECT sum(coalesce(cached_tokens, 0)) FROM turns WHERE idx >= 3", 0, 0);
		r->completion = (long)sql_num(h, "SELECT sum(completion_tokens) FROM turns", 0, 0);
		r->retried = (int)sql_num(h, "SELECT count(*) FROM turns WHERE attempts > 1", 0, 0);
		r->backend_ms = sql_num(h, "SELECT sum(prompt_ms + gen_ms) FROM turns", 0, 0);
		r->reusable3 = (long)sql_num(
		    h,
		    "SELECT sum(min(t.prompt_tokens - 1, p.prompt_tokens + p.completion_tokens - "
		    "1)) "
		    "FROM turns t JOIN turns p ON p.job_id = t.job_id AND p.idx = t.idx - 2",
		    0, 0);
		r->prompt1 = (long)sql_num(
		    h,
		    "SELECT prompt_tokens FROM turns t JOIN jobs j ON j.id = t.job_id WHERE "
		    "t.idx = 1 ORDER BY j.seq LIMIT 1",
		    0, 0);
		sqlite3_close(h);
	}
	if (!r->ok)
		say("real backend: %d of %d parleyd jobs succeeded", ok, REAL_CONVS);
	free(ids);
	free(db);
	return r->ok ? 0 : -1;
}

static json_t *real_json(const struct real_result *r)
{
	return json_pack("{s:f, s:f, s:i, s:I, s:I, s:I, s:I, s:I, s:i, s:i}", "wall_s", r->wall_s,
			 "backend_s", r->backend_ms / 1000, "turns", r->turns, "completion_tokens",
			 (json_int_t)r->completion, "prompt_tokens_turn1", (json_int_t)r->prompt1,
			 "prompt_tokens_turns3plus", (json_int_t)r->prompt3,
			 "cached_tokens_turns3plus", (json_int_t)r->cached3,
			 "reusable_tokens_turns3plus", (json_int_t)r->reusable3, "reconnects",
			 r->reconnects, "turns_retried", r->retried);
}

static void bench_real(int run)
{
	struct real_result rp, r2, r1;
	struct llama l;
	int v, ok = 1;

	if (llama_skip)
		return;
	/* three variants, each on a fresh llama-server (its prompt cache starts empty); the
	 * order rotates between runs */
	for (v = 0; v < 3 && ok; v++) {
		int which = (v + run) % 3;
		if (llama_start(&l) < 0) {
			ok = 0;
			break;
		}
		if (which == 0)
			ok = real_parleyd(l.port, run, &rp) == 0;
		else if (which == 1)
			ok = real_direct(l.port, 2, &r2) == 0;
		else
			ok = real_direct(l.port, 1, &r1) == 0;
		llama_stop(&l);
	}
	if (!ok) {
		if (!llama_skip)
			failures++;
		return;
	}
	fig_add(F_REAL_RATIO, rp.wall_s / r2.wall_s,
		json_pack("{s:o, s:o, s:o, s:i, s:i, s:i, s:s, s:f}", "parleyd", real_json(&rp),
			  "direct_2", real_json(&r2), "direct_1", real_json(&r1), "conversations",
			  REAL_CONVS, "turns", REAL_TURNS, "num_predict", REAL_PREDICT,
			  "llama_threads", llama_threads, "cpu_pressure", cpu_pressure()));
	fig_add(F_REAL_SPEEDUP, r1.wall_s / rp.wall_s, NULL);
	fig_add(F_DIRECT_SPEEDUP, r1.wall_s / r2.wall_s, NULL);
	fig_add(F_CACHE, rp.prompt3 ? (double)rp.cached3 / (double)rp.prompt3 : 0,
		json_pack("{s:f}", "direct_client_share",
			  r2.prompt3 ? (double)r2.cached3 / (double)r2.prompt3 : 0));
	fig_add(F_CACHE_REUSE, rp.reusable3 ? (double)rp.cached3 / (double)rp.reusable3 : 0,
		json_pack("{s:f}", "direct_client",
			  r2.reusable3 ? (double)r2.cached3 / (double)r2.reusable3 : 0));
	say("run %d: real backend: parleyd %.2f s, direct 2 at a time %.2f s (ratio %.3f), one "
	    "call at a time %.2f s; cache share turns>=3: parleyd %.3f, direct %.3f; completion "
	    "tokens %ld / %ld / %ld; turn-1 prompt %ld / %ld",
	    run + 1, rp.wall_s, r2.wall_s, rp.wall_s / r2.wall_s, r1.wall_s,
	    rp.prompt3 ? (double)rp.cached3 / (double)rp.prompt3 : 0,
	    r2.prompt3 ? (double)r2.cached3 / (double)r2.prompt3 : 0, rp.completion, r2.completion,
	    r1.completion, rp.prompt1, r2.prompt1);
}

/* ---- report ---- */

/* ---- 6. scheduling by slots (issue 14) ---- */

#define POOL_MEMBERS 3
#define POOL_REPLY_MS 100
#define POOL_TURNS 3
#define POOL_JOBS 60

/* Posts a batch of n_cand candidates x repeat jobs on backend "llama"; its id into id. */
static int post_batch(int port, int n_cand, int repeat, int turns, char id[32])
{
	char body[2048];
	json_t *j = NULL;
	size_t len;
	int i, st;

	len = (size_t)snprintf(body, sizeof(body),
			       "{\"interviewer\":{\"model\":\"iv\",\"backend\":\"llama\"},"
			       "\"candidates\":[");
	for (i = 0; i < n_cand; i++)
		len += (size_t)snprintf(body + len, sizeof(body) - len,
					"%s{\"model\":\"cd-%d\",\"backend\":\"llama\"}",
					i ? "," : "", i);
	snprintf(body + len, sizeof(body) - len,
		 "],\"scenarios\":[\"response_speed_optimization\"],\"repeat\":%d,"
		 "\"max_turns\":%d}",
		 repeat, turns);
	st = harness_http_json(port, "POST", "/v1/batches", body, &j);
	snprintf(id, 32, "%s", str_or_empty(json_string_value(json_object_get(j, "id"))));
	json_decref(j);
	return st == 202 ? 0 : -1;
}

/*
 * A 60-job batch on a pool of three 2-slot fake llama-servers at a fixed 100 ms a call: one
 * conversation per member at a time, so ideal = 60 x 3 turns x 100 ms / 3. With kill = 1 one
 * member is killed a third of the way in: every job must still succeed.
 */
static void bench_pool(int run, int kill)
{
	const char *fargs[] = {"--slots",   "2", "--reply-ms",	      "100",
			       "--load-ms", "0", "--die-with-parent", NULL};
	struct proc fakes[POOL_MEMBERS], pd;
	char be[512], id[32], path[96];
	char *db = db_path(kill ? "pool-kill" : "pool", run);
	double t0, measured, ideal;
	int64_t last = 0;
	size_t len, k;
	int i, ok = 0, killed = 0;
	json_t *list = NULL, *x;

	memset(fakes, 0, sizeof(fakes));
	memset(&pd, 0, sizeof(pd));
	len = (size_t)snprintf(be, sizeof(be), "name=llama,kind=llama-server");
	for (i = 0; i < POOL_MEMBERS; i++) {
		if (harness_fake_start(&fakes[i], fargs) < 0)
			goto fail;
		len += (size_t)snprintf(be + len, sizeof(be) - len, ",url=http://127.0.0.1:%d",
					fakes[i].port);
	}
	{
		const char *args[] = {"--workers",    "6", "--backend", be, "--config",
				      bench_config(), NULL};
		if (harness_parleyd_start(&pd, db, args) < 0)
			goto fail;
	}
	usleep(300000); /* the first probes read the slots */
	t0 = now_s();
	if (post_batch(pd.port, 3, POOL_JOBS / 3, POOL_TURNS, id) < 0)
		goto fail;
	for (;;) {
		if (kill && !killed && now_s() - t0 > 2.0) {
			harness_stop(&fakes[POOL_MEMBERS - 1], SIGKILL);
			killed = 1;
		}
		if (metrics_jobs(pd.port, "queued") == 0 && metrics_jobs(pd.port, "running") == 0)
			break;
		if (now_s() - t0 > 120) {
			say("pool: the batch did not end");
			goto fail;
		}
		usleep(20000);
	}
	snprintf(path, sizeof(path), "/v1/jobs?batch=%s&limit=100", id);
	harness_http_json(pd.port, "GET", path, NULL, &list);
	json_array_foreach(json_object_get(list, "items"), k, x)
	{
		int64_t fin = iso_us(json_string_value(json_object_get(x, "finished_at")));

		ok += !strcmp(str_or_empty(json_string_value(json_object_get(x, "status"))),
			      "succeeded");
		last = fin > last ? fin : last;
	}
	json_decref(list);
	measured = (double)last / 1e6 - t0;
	ideal = (double)POOL_JOBS * POOL_TURNS * POOL_REPLY_MS / 1000.0 / POOL_MEMBERS;
	if (kill) {
		fig_add(F_POOL_KILL_LOST, POOL_JOBS - ok,
			json_pack("{s:i, s:f}", "succeeded", ok, "wall_s", measured));
		say("run %d: pool with a member killed: %d of %d jobs succeeded in %.2f s", run + 1,
		    ok, POOL_JOBS, measured);
	} else {
		if (ok != POOL_JOBS)
			say("pool: only %d of %d jobs succeeded", ok, POOL_JOBS);
		fig_add(F_POOL_EFF, measured / ideal,
			json_pack("{s:f, s:f, s:i}", "measured_s", measured, "ideal_s", ideal,
				  "succeeded", ok));
		say("run %d: pool batch %.2f s, ideal %.2f s (%.3f)", run + 1, measured, ideal,
		    measured / ideal);
	}
	stop_proc(&pd);
	for (i = 0; i < POOL_MEMBERS; i++)
		stop_proc(&fakes[i]);
	free(db);
	return;
fail:
	stop_proc(&pd);
	for (i = 0; i < POOL_MEMBERS; i++)
		stop_proc(&fakes[i]);
	free(db);
	failures++;
}

/* section 7 below (slots and pools on real servers): its shape, and per-job sums that section 6
 * uses too */
#define LS_CONVS 4
#define LS_TURNS 7
#define LS_PREDICT 48
#define LS_SEED 2000

/* What LS_CONVS jobs gave on parleyd. */
struct ls_result {
	double wall_s;	   /* at once: first submit to last end; one after another: the sum */
	double min_share;  /* the lowest cache share of a job, turns >= 3 */
	double mean_share; /* the mean of those */
	long completion;   /* tokens generated, all turns */
	double backend_s;  /* prompt + generation time as llama-server reports it, summed */
	double turns_s;	   /* the turns' own walls as parleyd measured them, summed */
	double cpu_s;	   /* parleyd's CPU time over the measured jobs */
	int ok;		   /* jobs that succeeded */
};

/* Adds a job's turns to r: tokens, the server's time, the turns' walls; its cache share of
 * turns >= 3 is returned. */
static double ls_job_sums(int port, const char *id, struct ls_result *r)
{
	char path[160];
	json_t *t = NULL, *turn;
	double prompt = 0, cached = 0;
	size_t i;

	snprintf(path, sizeof(path), "/v1/jobs/%s/transcript", id);
	harness_http_json(port, "GET", path, NULL, &t);
	json_array_foreach(json_object_get(t, "conversation"), i, turn)
	{
		json_t *m = json_object_get(turn, "metrics");

		r->completion += (long)json_integer_value(json_object_get(m, "completion_tokens"));
		r->backend_s += (json_number_value(json_object_get(m, "prompt_ms")) +
				 json_number_value(json_object_get(m, "gen_ms"))) /
				1000;
		r->turns_s += json_number_value(json_object_get(m, "wall_ms")) / 1000;
		if (json_integer_value(json_object_get(turn, "turn")) < 3)
			continue;
		prompt += (double)json_integer_value(json_object_get(m, "prompt_tokens"));
		cached += (double)json_integer_value(json_object_get(m, "cached_tokens"));
	}
	json_decref(t);
	return prompt > 0 ? cached / prompt : 0;
}

/* Cached / prompt tokens over turns 3 on, of one job. */
static double job_cache_share(int port, const char *id)
{
	struct ls_result scratch;

	memset(&scratch, 0, sizeof(scratch));
	return ls_job_sums(port, id, &scratch);
}

/* The cache share per job with n conversations submitted at once to a 2-slot fake whose
 * uncached prompt tokens cost 1 ms each (workers = n, as a user raising concurrency would). */
static void bench_slot_cache(int run, int n, enum fig_id fig)
{
	const char *fargs[] = {
	    "--slots",	 "2", "--reply-ms",	   "30", "--prompt-ms-per-token", "1",
	    "--load-ms", "0", "--die-with-parent", NULL};
	struct proc fake, pd;
	char be[256], workers[8], (*ids)[32] = xcalloc((size_t)n, 32), body[512];
	char *db = db_path("slots", run * 10 + n);
	double sum = 0, lo = 1, t0;
	int i;

	memset(&pd, 0, sizeof(pd));
	if (harness_fake_start(&fake, fargs) < 0)
		goto fail;
	snprintf(be, sizeof(be), "name=llama,kind=llama-server,url=http://127.0.0.1:%d", fake.port);
	snprintf(workers, sizeof(workers), "%d", n);
	{
		const char *args[] = {"--workers", workers,	   "--backend", be,
				      "--config",  bench_config(), NULL};
		if (harness_parleyd_start(&pd, db, args) < 0)
			goto fail;
	}
	usleep(300000);
	t0 = now_s();
	for (i = 0; i < n; i++) {
		json_t *j = NULL;

		snprintf(
		    body, sizeof(body),
		    "{\"scenario\":\"response_speed_optimization\","
		    "\"interviewer\":{\"model\":\"iv-%d\",\"backend\":\"llama\"},"
		    "\"candidate\":{\"model\":\"cd-%d\",\"backend\":\"llama\"},\"max_turns\":7}",
		    i, i);
		if (harness_http_json(pd.port, "POST", "/v1/jobs", body, &j) != 202)
			goto fail;
		snprintf(ids[i], 32, "%s", json_string_value(json_object_get(j, "id")));
		json_decref(j);
	}
	if (wait_idle(pd.port, 120, 0.05) < 0)
		goto fail;
	for (i = 0; i < n; i++) {
		double share = job_cache_share(pd.port, ids[i]);

		sum += share;
		lo = share < lo ? share : lo;
	}
	fig_add(fig, sum / n,
		json_pack("{s:f, s:f, s:f}", "mean", sum / n, "min", lo, "wall_s", now_s() - t0));
	say("run %d: %d at once: cache share per job mean %.2f, min %.2f", run + 1, n, sum / n, lo);
	stop_proc(&pd);
	stop_proc(&fake);
	free(ids);
	free(db);
	return;
fail:
	stop_proc(&pd);
	stop_proc(&fake);
	free(ids);
	free(db);
	failures++;
}

static void bench_sched(int run)
{
	bench_pool(run, 0);
	bench_pool(run, 1);
	bench_slot_cache(run, 1, F_SLOT_CACHE_1);
	bench_slot_cache(run, 2, F_SLOT_CACHE_2);
	bench_slot_cache(run, 4, F_SLOT_CACHE_4);
	bench_slot_cache(run, 8, F_SLOT_CACHE_8);
}

/* ---- 7. slots and pools on real llama-servers (issue 14) ---- */

/* Submits a job of the section's shape with turns turns and the given seed; its id into id.
 * 0 or -1. */
static int ls_submit(int port, int seed, int turns, char id[32])
{
	char body[1024];
	json_t *j = NULL;
	int st;

	snprintf(body, sizeof(body),
		 "{\"scenario\":%s,\"interviewer\":{\"model\":\"" REAL_MODEL
		 "\",\"backend\":\"llama\"},\"candidate\":{\"model\":\"" REAL_MODEL
		 "\",\"backend\":\"llama\"},\"max_turns\":%d,\"options\":{\"temperature\":0.7,"
		 "\"seed\":%d,\"num_predict\":%d}}",
		 real_scenario, turns, seed, LS_PREDICT);
	st = harness_http_json(port, "POST", "/v1/jobs", body, &j);
	snprintf(id, 32, "%s", str_or_empty(json_string_value(json_object_get(j, "id"))));
	json_decref(j);
	return st == 202 ? 0 : -1;
}

/*
 * LS_CONVS jobs (seeds LS_SEED on, the same in every variant) on a parleyd whose backend
 * "llama" is the given llama-servers: submitted at once, or each after the previous one
 * ended. The wall comes from parleyd's own timestamps: at once, the first job's creation to
 * the last one's end; one after another, the sum of each job's creation to its end (no gap
 * of the client's between them).
 */
static int ls_parleyd(const int *ports, int nports, int at_once, const char *tag, int run,
		      struct ls_result *r)
{
	char be[512], ids[LS_CONVS][32], warm[2][32];
	char *db = db_path(tag, run);
	struct proc pd;
	int64_t first = INT64_MAX, last = 0;
	double sum = 0;
	size_t len;
	int i;

	memset(r, 0, sizeof(*r));
	r->min_share = 1;
	len = (size_t)snprintf(be, sizeof(be), "name=llama,kind=llama-server");
	for (i = 0; i < nports; i++)
		len += (size_t)snprintf(be + len, sizeof(be) - len, ",url=http://127.0.0.1:%d",
					ports[i]);
	{
		const char *args[] = {"--workers",    "4", "--backend", be, "--config",
				      bench_config(), NULL};
		if (harness_parleyd_start(&pd, db, args) < 0) {
			free(db);
			return -1;
		}
	}
	if (harness_wait_members(pd.port, nports, 2, 30000) < 0) {
		say("live slots: parleyd does not see %d members up with 2 slots", nports);
		goto fail;
	}
	/* a job of the same shape on each member first, as a server in service has had: its
	 * slots hold the scenario's first prompts (the system prompts name max_turns), so the
	 * first prefill a fresh server ever does is not what is measured */
	for (i = 0; i < nports; i++)
		if (ls_submit(pd.port, 1 + i, LS_TURNS, warm[i]) < 0) {
			say("live slots: parleyd refused a job");
			goto fail;
		}
	for (i = 0; i < nports; i++)
		json_decref(harness_wait_job(pd.port, warm[i], 300000));
	r->cpu_s = proc_cpu_s(pd.pid);
	for (i = 0; i < LS_CONVS; i++) {
		if (ls_submit(pd.port, LS_SEED + i, LS_TURNS, ids[i]) < 0) {
			say("live slots: parleyd refused a job");
			goto fail;
		}
		if (!at_once)
			json_decref(harness_wait_job(pd.port, ids[i], 300000));
	}
	for (i = 0; i < LS_CONVS; i++) {
		json_t *j = harness_wait_job(pd.port, ids[i], 300000);
		int64_t c = iso_us(json_string_value(json_object_get(j, "created_at")));
		int64_t f = iso_us(json_string_value(json_object_get(j, "finished_at")));
		double share;

		sum += (double)(f - c) / 1e6;
		r->ok += !strcmp(str_or_empty(json_string_value(json_object_get(j, "status"))),
				 "succeeded");
		first = c < first ? c : first;
		last = f > last ? f : last;
		json_decref(j);
		share = ls_job_sums(pd.port, ids[i], r);
		r->mean_share += share / LS_CONVS;
		r->min_share = share < r->min_share ? share : r->min_share;
	}
	r->wall_s = at_once ? (double)(last - first) / 1e6 : sum;
	r->cpu_s = proc_cpu_s(pd.pid) - r->cpu_s;
	stop_proc(&pd);
	free(db);
	if (r->ok != LS_CONVS) {
		say("live slots: %d of %d jobs succeeded (%s)", r->ok, LS_CONVS, tag);
		return -1;
	}
	return 0;
fail:
	stop_proc(&pd);
	free(db);
	return -1;
}

static json_t *ls_json(const struct ls_result *r)
{
	return json_pack("{s:f, s:f, s:f, s:I, s:f, s:f, s:f}", "wall_s", r->wall_s,
			 "min_cache_share", r->min_share, "mean_cache_share", r->mean_share,
			 "completion_tokens", (json_int_t)r->completion, "backend_s", r->backend_s,
			 "turns_s", r->turns_s, "parleyd_cpu_s", r->cpu_s);
}

/* Adds a second measurement of a variant to its first (walls and sums add up). */
static void ls_add(struct ls_result *to, const struct ls_result *r)
{
	int first = to->wall_s == 0;

	to->wall_s += r->wall_s;
	to->min_share = first || r->min_share < to->min_share ? r->min_share : to->min_share;
	to->mean_share = first ? r->mean_share : (to->mean_share + r->mean_share) / 2;
	to->completion += r->completion;
	to->backend_s += r->backend_s;
	to->turns_s += r->turns_s;
	to->cpu_s += r->cpu_s;
	to->ok += r->ok;
}

static void real_add(struct real_result *to, const struct real_result *r)
{
	to->wall_s += r->wall_s;
	to->completion += r->completion;
	to->backend_ms += r->backend_ms;
	to->prompt3 += r->prompt3;
	to->cached3 += r->cached3;
	to->turns += r->turns;
}

/*
 * Issue 14's goals on two real 2-slot llama-servers (stories260K, -t BENCH_LLAMA_THREADS,
 * no host-memory prompt cache): the same 4 seven-turn conversations one after another and at
 * once on one server, at once on the pool of both; and, for reference, what a plain client
 * gets from the same machine, one conversation per server at a time on one server and on two.
 */
static void bench_live_slots(int run)
{
	static const char *const extra[] = {"-c", "4096", "--cache-ram", "0", NULL};
	static const char order[] = "sop12"
				    "21pos";
	struct llama l[2];
	struct ls_result seq, once, pool;
	struct real_result d1, d2;
	struct direct dc;
	int ports[2], started = 0, v, ok = 1;

	if (llama_skip)
		return;
	for (started = 0; started < 2; started++)
		if (llama_start_args(&l[started], extra) < 0)
			goto fail;
	ports[0] = l[0].port;
	ports[1] = l[1].port;
	memset(&dc, 0, sizeof(dc));
	dc.ports = ports;
	dc.nconvs = LS_CONVS;
	dc.turns = LS_TURNS;
	dc.predict = LS_PREDICT;
	dc.seed0 = LS_SEED;
	/* each variant twice, in an order that reads the same both ways: a machine that drifts
	 * slower or faster during the run weighs on every variant alike */
	memset(&seq, 0, sizeof(seq));
	memset(&once, 0, sizeof(once));
	memset(&pool, 0, sizeof(pool));
	memset(&d1, 0, sizeof(d1));
	memset(&d2, 0, sizeof(d2));
	for (v = 0; v < (int)sizeof(order) - 1 && ok; v++) {
		struct ls_result r;
		struct real_result d;

		switch (order[v]) {
		case 's':
			ok = ls_parleyd(ports, 1, 0, "live-seq", run * 20 + v, &r) == 0;
			ls_add(&seq, &r);
			break;
		case 'o':
			ok = ls_parleyd(ports, 1, 1, "live-once", run * 20 + v, &r) == 0;
			ls_add(&once, &r);
			break;
		case 'p':
			ok = ls_parleyd(ports, 2, 1, "live-pool", run * 20 + v, &r) == 0;
			ls_add(&pool, &r);
			break;
		default:
			dc.nports = order[v] == '1' ? 1 : 2;
			ok = direct_run(&dc, dc.nports, &d) == 0;
			real_add(order[v] == '1' ? &d1 : &d2, &d);
			break;
		}
	}
	if (!ok)
		goto fail;
	fig_add(F_LIVE_ONCE, once.wall_s / seq.wall_s,
		json_pack("{s:o, s:o, s:i, s:i, s:i, s:s, s:f}", "one_after_another", ls_json(&seq),
			  "at_once", ls_json(&once), "conversations", LS_CONVS, "turns", LS_TURNS,
			  "num_predict", LS_PREDICT, "llama_threads", llama_threads, "cpu_pressure",
			  cpu_pressure()));
	fig_add(F_LIVE_SHARE, once.min_share < pool.min_share ? once.min_share : pool.min_share,
		json_pack("{s:f, s:f, s:f}", "one_after_another", seq.min_share, "at_once",
			  once.min_share, "pool", pool.min_share));
	fig_add(F_LIVE_POOL, pool.wall_s / once.wall_s,
		json_pack("{s:o, s:o}", "pool", ls_json(&pool), "one_server", ls_json(&once)));
	fig_add(
	    F_LIVE_POOL_REF, d2.wall_s / d1.wall_s,
	    json_pack("{s:o, s:o}", "two_servers", real_json(&d2), "one_server", real_json(&d1)));
	say("run %d: live slots: one after another %.2f s, at once %.2f s (%.3f); pool %.2f s "
	    "(%.3f of one server); plain client two servers / one %.2f / %.2f s (%.3f); lowest "
	    "cache share %.2f / %.2f / %.2f",
	    run + 1, seq.wall_s, once.wall_s, once.wall_s / seq.wall_s, pool.wall_s,
	    pool.wall_s / once.wall_s, d2.wall_s, d1.wall_s, d2.wall_s / d1.wall_s, seq.min_share,
	    once.min_share, pool.min_share);
	say("run %d: live slots: completion tokens %ld / %ld / %ld, plain client %ld / %ld; "
	    "server time %.2f / %.2f / %.2f s, plain client %.2f / %.2f s; turn walls %.2f / %.2f "
	    "/ %.2f s; parleyd CPU %.2f / %.2f / %.2f s",
	    run + 1, seq.completion, once.completion, pool.completion, d2.completion, d1.completion,
	    seq.backend_s, once.backend_s, pool.backend_s, d2.backend_ms / 1000,
	    d1.backend_ms / 1000, seq.turns_s, once.turns_s, pool.turns_s, seq.cpu_s, once.cpu_s,
	    pool.cpu_s);
	llama_stop(&l[0]);
	llama_stop(&l[1]);
	return;
fail:
	while (started-- > 0)
		llama_stop(&l[started]);
	if (!llama_skip)
		failures++;
}

static int cores(void)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);

	return n > 0 ? (int)n : 1;
}

static char *cpu_model(void)
{
	char line[512], *p;
	FILE *f = fopen("/proc/cpuinfo", "r");

	if (!f)
		return xstrdup("unknown");
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, "model name", 10) && (p = strchr(line, ':'))) {
			fclose(f);
			p += 2;
			p[strcspn(p, "\n")] = '\0';
			return xstrdup(p);
		}
	fclose(f);
	return xstrdup("unknown");
}

static void fmt_val(char *buf, size_t n, const struct figure *f, double v)
{
	snprintf(buf, n, "%.*f%s", f->prec, v, f->unit);
}

static void report(const char *json_path, double started, double load_start, double psi_start)
{
	json_t *root = json_object(), *arr = json_array(), *o;
	struct utsname un;
	char *model = cpu_model(), med_s[32], lo_s[32], hi_s[32], spread[80];
	int i;

	uname(&un);
	printf("\nparley benchmarks: %d run%s per figure, median and spread (min-max)\n", nruns,
	       nruns == 1 ? "" : "s");
	printf("machine: %d cores, %s, %s %s; at start: load average %.2f, CPU pressure %.0f%%\n\n",
	       cores(), model, un.sysname, un.release, load_start, psi_start);
	printf("| %-58s | %10s | %-25s | %-8s | %-7s |\n", "figure", "median", "spread (min - max)",
	       "goal", "result");
	printf("|%.60s|%.12s|%.27s|%.10s|%.9s|\n",
	       "------------------------------------------------------------", "------------",
	       "---------------------------", "----------", "---------");
	for (i = 0; i < F__COUNT; i++) {
		struct figure *f = &figs[i];
		double med = 0, lo = 0, hi = 0;
		const char *verdict;

		if (f->n) {
			fig_stats(f, &med, &lo, &hi);
			fmt_val(med_s, sizeof(med_s), f, med);
			fmt_val(lo_s, sizeof(lo_s), f, lo);
			fmt_val(hi_s, sizeof(hi_s), f, hi);
			snprintf(spread, sizeof(spread), "%s - %s", lo_s, hi_s);
		} else {
			snprintf(med_s, sizeof(med_s), "-");
			snprintf(spread, sizeof(spread), "-");
		}
		verdict = fig_verdict(f, med);
		printf("| %-58s | %10s | %-25s | %-8s | %-7s |\n", f->title, med_s, spread,
		       f->goal_text, verdict);
		o = json_pack("{s:s, s:s, s:s, s:s, s:i, s:O}", "key", f->key, "title", f->title,
			      "goal", f->goal_text, "result", verdict, "n", f->n, "runs",
			      f->runs ? f->runs : json_array());
		if (f->n) {
			json_object_set_new(o, "median", json_real(med));
			json_object_set_new(o, "min", json_real(lo));
			json_object_set_new(o, "max", json_real(hi));
		}
		if (f->note[0]) {
			json_object_set_new(o, "note", json_string(f->note));
			printf("|   %-56s | %10s | %-25s | %-8s | %-7s |\n", f->note, "", "", "",
			       "");
		}
		json_array_append_new(arr, o);
	}
	printf("\nreproduce: make bench (BENCH_RUNS=%d); details per run in %s\n", nruns,
	       json_path);
	json_object_set_new(root, "machine",
			    json_pack("{s:i, s:s, s:s, s:s, s:f, s:f, s:f, s:f}", "cores", cores(),
				      "cpu", model, "kernel", un.release, "os", un.sysname,
				      "loadavg_1m_start", load_start, "loadavg_1m_end", loadavg1(),
				      "cpu_pressure_start", psi_start, "cpu_pressure_end",
				      cpu_pressure()));
	json_object_set_new(root, "runs", json_integer(nruns));
	json_object_set_new(root, "seconds", json_real(now_s() - started));
	json_object_set_new(root, "command", json_string("make bench"));
	json_object_set_new(root, "figures", arr);
	if (json_dump_file(root, json_path, JSON_INDENT(2) | JSON_REAL_PRECISION(6)) != 0)
		say("cannot write %s", json_path);
	json_decref(root);
	free(model);
}

int main(void)
{
	const char *s = getenv("BENCH_RUNS"), *json_path = getenv("BENCH_JSON");
	const char *only = getenv("BENCH_ONLY");
	double started = now_s(), load_start = loadavg1(), psi_start = cpu_pressure();
	char cmd[1200];
	int run;

	if (s && *s)
		nruns = atoi(s);
	if (nruns < 1 || nruns > MAX_RUNS) {
		fprintf(stderr, "bench: BENCH_RUNS must be 1 to %d\n", MAX_RUNS);
		return 2;
	}
	if (!json_path || !*json_path)
		json_path = "build/bench.json";
	if (getenv("BENCH_LLAMA_SH"))
		repo_llama_sh = getenv("BENCH_LLAMA_SH");
	if (getenv("BENCH_LLAMA_THREADS") && *getenv("BENCH_LLAMA_THREADS"))
		llama_threads = getenv("BENCH_LLAMA_THREADS");
	snprintf(workdir, sizeof(workdir), "%s",
		 getenv("BENCH_DIR") && *getenv("BENCH_DIR") ? getenv("BENCH_DIR")
							     : "build/bench-work");
	snprintf(cmd, sizeof(cmd), "rm -rf '%s' && mkdir -p '%s/llama'", workdir, workdir);
	if (system(cmd) != 0) {
		fprintf(stderr, "bench: cannot make %s\n", workdir);
		return 1;
	}
	setenv("TMPDIR", workdir, 1); /* the harness keeps process logs there */
	signal(SIGPIPE, SIG_IGN);
	curl_global_init(CURL_GLOBAL_DEFAULT);
	if (getenv("BENCH_LIVE") && !strcmp(getenv("BENCH_LIVE"), "0"))
		llama_skip = 1;
	if (llama_skip)
		fig_note(F_REAL_RATIO, "skipped (BENCH_LIVE=0 or no llama-server)");
	say("%d runs; work files in %s; load average %.2f", nruns, workdir, load_start);
	for (run = 0; run < nruns; run++) {
		if (!only || strstr(only, "orch"))
			bench_orchestration(run);
		if (!only || strstr(only, "engine"))
			bench_engine(run);
		if (!only || strstr(only, "real"))
			bench_real(run);
		if (!only || strstr(only, "trials"))
			bench_trials(run);
		if (!only || strstr(only, "sched"))
			bench_sched(run);
		if (!only || strstr(only, "slots"))
			bench_live_slots(run);
	}
	if (llama_skip)
		fig_note(F_REAL_RATIO, "skipped: llama-server cannot be provisioned here");
	report(json_path, started, load_start, psi_start);
	curl_global_cleanup();
	fflush(stdout);
	if (failures) {
		say("%d step%s could not run; logs kept in %s", failures, failures == 1 ? "" : "s",
		    workdir);
		return 1;
	}
	if (!getenv("BENCH_KEEP")) {
		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", workdir);
		if (system(cmd) != 0)
			say("cannot remove %s", workdir);
	}
	return 0;
}
