/*
 * metrics.c - Prometheus counters. See metrics.h.
 */
#include "server/metrics.h"

#include <dirent.h>
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "build_info.h"

#define MAX_SERIES 64

static const double bounds[] = {0.5, 1, 2.5, 5, 10, 30, 60, 120, 300};
#define NBOUNDS (sizeof(bounds) / sizeof(bounds[0]))

struct turn_series {
	char role[16], model[96];
	uint64_t buckets[NBOUNDS], count, tokens;
	double sum;
};

struct error_series {
	char backend[64], kind[32];
	uint64_t count;
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER; /* guards everything below */
static struct turn_series turns[MAX_SERIES + 1];
static int nturns;
static struct error_series errors[MAX_SERIES + 1];
static int nerrors;

/* Per configured backend: the prompt tokens its calls reported, and how many were cached. */
struct cache_series {
	char backend[64];
	uint64_t prompt, cached, lost, calls;
};
static struct cache_series caches[MAX_SERIES];
static int ncaches;

/* Per role: the headline figures (time to first token, tokens by kind). */
static const double ttft_bounds[] = {0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60};
#define NTTFT (sizeof(ttft_bounds) / sizeof(ttft_bounds[0]))
static const char *const roles[] = {"interviewer", "candidate"};
#define NROLES (sizeof(roles) / sizeof(roles[0]))
static struct {
	uint64_t ttft_buckets[NTTFT], ttft_count;
	double ttft_sum;
	uint64_t prompt, cached, completion;
} by_role[NROLES];

/* HTTP requests by method and route template; counts by status class. */
static const double http_bounds[] = {0.001, 0.005, 0.01, 0.025, 0.05, 0.1,
				     0.25,  0.5,   1,	 2.5,	5,    10};
#define NHTTP_BOUNDS (sizeof(http_bounds) / sizeof(http_bounds[0]))
#define MAX_HTTP_SERIES 256
static const char *const classes[] = {"2xx", "3xx", "4xx", "5xx"};
#define NCLASSES (sizeof(classes) / sizeof(classes[0]))
struct http_series {
	char method[12], route[64];
	uint64_t by_class[NCLASSES];
	uint64_t buckets[NHTTP_BOUNDS], count;
	double sum;
};
static struct http_series http[MAX_HTTP_SERIES];
static int nhttp;
static int64_t started_at_us = -1;

void metrics_start(int64_t started_at)
{
	pthread_mutex_lock(&lock);
	started_at_us = started_at;
	pthread_mutex_unlock(&lock);
}

void metrics_turn(const struct db_turn *turn)
{
	struct turn_series *t = NULL;
	double seconds = turn->wall_ms / 1000.0;
	size_t b, r;
	int i;

	pthread_mutex_lock(&lock);
	for (i = 0; i < nturns; i++)
		if (strcmp(turns[i].role, turn->role) == 0 &&
		    strcmp(turns[i].model, turn->model) == 0)
			t = &turns[i];
	if (!t && nturns < MAX_SERIES) {
		t = &turns[nturns++];
		snprintf(t->role, sizeof(t->role), "%s", turn->role);
		snprintf(t->model, sizeof(t->model), "%s", turn->model);
	} else if (!t) {
		/* past MAX_SERIES label sets, one overflow series takes the rest */
		t = &turns[MAX_SERIES];
		snprintf(t->role, sizeof(t->role), "any");
		snprintf(t->model, sizeof(t->model), "other");
	}
	for (b = 0; b < NBOUNDS; b++)
		if (seconds <= bounds[b])
			t->buckets[b]++;
	t->count++;
	t->sum += seconds;
	if (turn->completion_tokens > 0)
		t->tokens += (uint64_t)turn->completion_tokens;
	for (r = 0; r < NROLES; r++) {
		if (strcmp(roles[r], turn->role) != 0)
			continue;
		if (turn->ttft_ms >= 0) {
			double ttft = turn->ttft_ms / 1000.0;
			for (b = 0; b < NTTFT; b++)
				if (ttft <= ttft_bounds[b])
					by_role[r].ttft_buckets[b]++;
			by_role[r].ttft_count++;
			by_role[r].ttft_sum += ttft;
		}
		if (turn->prompt_tokens > 0)
			by_role[r].prompt += (uint64_t)turn->prompt_tokens;
		if (turn->cached_tokens > 0)
			by_role[r].cached += (uint64_t)turn->cached_tokens;
		if (turn->completion_tokens > 0)
			by_role[r].completion += (uint64_t)turn->completion_tokens;
	}
	pthread_mutex_unlock(&lock);
}

void metrics_backend_error(const char *backend, const char *kind)
{
	struct error_series *x = NULL;
	int i;

	pthread_mutex_lock(&lock);
	for (i = 0; i < nerrors; i++)
		if (strcmp(errors[i].backend, backend) == 0 && strcmp(errors[i].kind, kind) == 0)
			x = &errors[i];
	if (!x && nerrors < MAX_SERIES) {
		x = &errors[nerrors++];
		snprintf(x->backend, sizeof(x->backend), "%s", backend);
		snprintf(x->kind, sizeof(x->kind), "%s", kind);
	}
	if (x)
		x->count++;
	pthread_mutex_unlock(&lock);
}

/* Caller holds the lock. NULL when the table is full. */
static struct cache_series *cache_find(const char *backend)
{
	int i;

	for (i = 0; i < ncaches; i++)
		if (strcmp(caches[i].backend, backend) == 0)
			return &caches[i];
	if (ncaches == MAX_SERIES)
		return NULL;
	snprintf(caches[ncaches].backend, sizeof(caches[ncaches].backend), "%s", backend);
	return &caches[ncaches++];
}

void metrics_backend_series(const char *backend)
{
	pthread_mutex_lock(&lock);
	cache_find(backend);
	pthread_mutex_unlock(&lock);
}

void metrics_backend_cache(const char *backend, long prompt_tokens, long cached_tokens, int lost)
{
	struct cache_series *c;

	pthread_mutex_lock(&lock);
	if ((c = cache_find(backend))) {
		c->calls++;
		c->prompt += prompt_tokens > 0 ? (uint64_t)prompt_tokens : 0;
		c->cached += cached_tokens > 0 ? (uint64_t)cached_tokens : 0;
		c->lost += lost != 0;
	}
	pthread_mutex_unlock(&lock);
}

/* Caller holds the lock. NULL when the table is full. */
static struct http_series *http_find(const char *method, const char *route)
{
	struct http_series *h;
	int i;

	for (i = 0; i < nhttp; i++)
		if (strcmp(http[i].method, method) == 0 && strcmp(http[i].route, route) == 0)
			return &http[i];
	if (nhttp == MAX_HTTP_SERIES)
		return NULL;
	h = &http[nhttp++];
	snprintf(h->method, sizeof(h->method), "%s", method);
	snprintf(h->route, sizeof(h->route), "%s", route);
	return h;
}

void metrics_http_series(const char *method, const char *route)
{
	pthread_mutex_lock(&lock);
	http_find(method, route);
	pthread_mutex_unlock(&lock);
}

void metrics_http(const char *method, const char *route, const char *status_class, double seconds)
{
	struct http_series *h;
	size_t b;

	pthread_mutex_lock(&lock);
	if ((h = http_find(method, route))) {
		for (b = 0; b < NCLASSES; b++)
			if (strcmp(classes[b], status_class) == 0)
				h->by_class[b]++;
		for (b = 0; b < NHTTP_BOUNDS; b++)
			if (seconds <= http_bounds[b])
				h->buckets[b]++;
		h->count++;
		h->sum += seconds;
	}
	pthread_mutex_unlock(&lock);
}

/* Label values are ours or model names: escape \ " and newlines as the format wants. */
static void label(struct strbuf *out, const char *s)
{
	for (; *s; s++) {
		if (*s == '\\' || *s == '"')
			strbuf_addch(out, '\\');
		if (*s == '\n') {
			strbuf_addstr(out, "\\n");
			continue;
		}
		strbuf_addch(out, *s);
	}
}

/* process_*: what every Prometheus client library exports, read from /proc on Linux. */
static void render_process(struct strbuf *out)
{
	struct rusage ru;
	struct rlimit rl;
	long page = sysconf(_SC_PAGESIZE);
	unsigned long long vsize = 0, rss = 0;
	FILE *f;
	DIR *d;
	long fds = 0;

	if (getrusage(RUSAGE_SELF, &ru) == 0)
		strbuf_addf(out,
			    "# HELP process_cpu_seconds_total User and system CPU time spent.\n"
			    "# TYPE process_cpu_seconds_total counter\n"
			    "process_cpu_seconds_total %.3f\n",
			    (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
				(double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6);
	if ((f = fopen("/proc/self/statm", "r"))) {
		if (fscanf(f, "%llu %llu", &vsize, &rss) == 2) {
			strbuf_addf(out,
				    "# HELP process_virtual_memory_bytes Virtual memory size.\n"
				    "# TYPE process_virtual_memory_bytes gauge\n"
				    "process_virtual_memory_bytes %llu\n"
				    "# HELP process_resident_memory_bytes Resident memory size.\n"
				    "# TYPE process_resident_memory_bytes gauge\n"
				    "process_resident_memory_bytes %llu\n",
				    vsize * (unsigned long long)page,
				    rss * (unsigned long long)page);
		}
		fclose(f);
	}
	if ((d = opendir("/proc/self/fd"))) {
		struct dirent *de;
		while ((de = readdir(d)))
			if (de->d_name[0] != '.')
				fds++;
		closedir(d);
		strbuf_addf(out,
			    "# HELP process_open_fds Open file descriptors.\n"
			    "# TYPE process_open_fds gauge\nprocess_open_fds %ld\n",
			    fds - 1 /* the directory's own */);
	}
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY)
		strbuf_addf(out,
			    "# HELP process_max_fds Limit of open file descriptors.\n"
			    "# TYPE process_max_fds gauge\nprocess_max_fds %llu\n",
			    (unsigned long long)rl.rlim_cur);
	if (started_at_us >= 0)
		strbuf_addf(out,
			    "# HELP process_start_time_seconds Start time of the process since the "
			    "Unix epoch.\n# TYPE process_start_time_seconds gauge\n"
			    "process_start_time_seconds %.3f\n",
			    (double)started_at_us / 1e6);
}

static void render_histogram_line(struct strbuf *out, const char *name, const char *labels,
				  const char *le, uint64_t v)
{
	strbuf_addf(out, "%s_bucket{%s%sle=\"%s\"} %llu\n", name, labels, *labels ? "," : "", le,
		    (unsigned long long)v);
}

/*
 * One counter family with a series a configured backend; field is the offsetof() of the
 * uint64_t in struct cache_series it counts. The caller holds the lock.
 */
static void render_backend_counter(struct strbuf *out, const char *name, const char *help,
				   size_t field)
{
	int i;

	strbuf_addf(out, "# HELP %s %s\n# TYPE %s counter\n", name, help, name);
	for (i = 0; i < ncaches; i++) {
		const uint64_t *v =
		    (const uint64_t *)(const void *)((const char *)&caches[i] + field);

		strbuf_addf(out, "%s{backend=\"", name);
		label(out, caches[i].backend);
		strbuf_addf(out, "\"} %llu\n", (unsigned long long)*v);
	}
}

void metrics_render(struct strbuf *out, const int64_t job_counts[5], int busy_workers)
{
	static const char *const states[5] = {"queued", "running", "succeeded", "failed",
					      "cancelled"};
	char le[32], labels[160];
	size_t b, r, c;
	int i;

	strbuf_addf(out,
		    "# HELP parley_build_info The running build: version and git commit.\n"
		    "# TYPE parley_build_info gauge\n"
		    "parley_build_info{version=\"%s\",commit=\"%s\"} 1\n",
		    PARLEY_VERSION, PARLEY_COMMIT);
	render_process(out);
	strbuf_addstr(out,
		      "# HELP parley_jobs Jobs in the store by state.\n# TYPE parley_jobs gauge\n");
	for (i = 0; i < 5; i++)
		strbuf_addf(out, "parley_jobs{state=\"%s\"} %lld\n", states[i],
			    (long long)job_counts[i]);
	strbuf_addf(out,
		    "# HELP parley_queue_depth Jobs waiting for a worker.\n"
		    "# TYPE parley_queue_depth gauge\nparley_queue_depth %lld\n",
		    (long long)job_counts[0]);
	strbuf_addf(out,
		    "# HELP parley_workers_busy Workers running a job.\n"
		    "# TYPE parley_workers_busy gauge\nparley_workers_busy %d\n",
		    busy_workers);

	pthread_mutex_lock(&lock);
	strbuf_addstr(out, "# HELP parley_turn_duration_seconds Wall time of stored turns.\n"
			   "# TYPE parley_turn_duration_seconds histogram\n");
	for (i = 0; i <= MAX_SERIES; i++) {
		struct turn_series *t = &turns[i];
		if (!t->role[0])
			continue;
		for (b = 0; b < NBOUNDS; b++) {
			strbuf_addf(out, "parley_turn_duration_seconds_bucket{role=\"%s\",model=\"",
				    t->role);
			label(out, t->model);
			strbuf_addf(out, "\",le=\"%g\"} %llu\n", bounds[b],
				    (unsigned long long)t->buckets[b]);
		}
		strbuf_addf(out, "parley_turn_duration_seconds_bucket{role=\"%s\",model=\"",
			    t->role);
		label(out, t->model);
		strbuf_addf(out, "\",le=\"+Inf\"} %llu\n", (unsigned long long)t->count);
		strbuf_addf(out, "parley_turn_duration_seconds_sum{role=\"%s\",model=\"", t->role);
		label(out, t->model);
		strbuf_addf(out, "\"} %.6f\n", t->sum);
		strbuf_addf(out, "parley_turn_duration_seconds_count{role=\"%s\",model=\"",
			    t->role);
		label(out, t->model);
		strbuf_addf(out, "\"} %llu\n", (unsigned long long)t->count);
	}
	strbuf_addstr(
	    out, "# HELP parley_turns_total Turns stored.\n# TYPE parley_turns_total counter\n");
	for (i = 0; i <= MAX_SERIES; i++) {
		if (!turns[i].role[0])
			continue;
		strbuf_addf(out, "parley_turns_total{role=\"%s\",model=\"", turns[i].role);
		label(out, turns[i].model);
		strbuf_addf(out, "\"} %llu\n", (unsigned long long)turns[i].count);
	}
	strbuf_addstr(out, "# HELP parley_time_to_first_token_seconds Time from a model call to "
			   "its first token.\n"
			   "# TYPE parley_time_to_first_token_seconds histogram\n");
	for (r = 0; r < NROLES; r++) {
		snprintf(labels, sizeof(labels), "role=\"%s\"", roles[r]);
		for (b = 0; b < NTTFT; b++) {
			snprintf(le, sizeof(le), "%g", ttft_bounds[b]);
			render_histogram_line(out, "parley_time_to_first_token_seconds", labels, le,
					      by_role[r].ttft_buckets[b]);
		}
		render_histogram_line(out, "parley_time_to_first_token_seconds", labels, "+Inf",
				      by_role[r].ttft_count);
		strbuf_addf(out, "parley_time_to_first_token_seconds_sum{%s} %.6f\n", labels,
			    by_role[r].ttft_sum);
		strbuf_addf(out, "parley_time_to_first_token_seconds_count{%s} %llu\n", labels,
			    (unsigned long long)by_role[r].ttft_count);
	}
	strbuf_addstr(out, "# HELP parley_prompt_tokens_total Prompt tokens of stored turns.\n"
			   "# TYPE parley_prompt_tokens_total counter\n");
	for (r = 0; r < NROLES; r++)
		strbuf_addf(out, "parley_prompt_tokens_total{role=\"%s\"} %llu\n", roles[r],
			    (unsigned long long)by_role[r].prompt);
	strbuf_addstr(out, "# HELP parley_cached_prompt_tokens_total Prompt tokens the backend "
			   "took from its cache.\n"
			   "# TYPE parley_cached_prompt_tokens_total counter\n");
	for (r = 0; r < NROLES; r++)
		strbuf_addf(out, "parley_cached_prompt_tokens_total{role=\"%s\"} %llu\n", roles[r],
			    (unsigned long long)by_role[r].cached);
	strbuf_addstr(out, "# HELP parley_completion_tokens_total Tokens generated.\n"
			   "# TYPE parley_completion_tokens_total counter\n");
	for (r = 0; r < NROLES; r++)
		strbuf_addf(out, "parley_completion_tokens_total{role=\"%s\"} %llu\n", roles[r],
			    (unsigned long long)by_role[r].completion);
	strbuf_addstr(out, "# HELP parley_backend_errors_total Failed model calls by kind.\n"
			   "# TYPE parley_backend_errors_total counter\n");
	for (i = 0; i < nerrors; i++) {
		strbuf_addstr(out, "parley_backend_errors_total{backend=\"");
		label(out, errors[i].backend);
		strbuf_addf(out, "\",kind=\"%s\"} %llu\n", errors[i].kind,
			    (unsigned long long)errors[i].count);
	}
	render_backend_counter(out, "parley_backend_prompt_tokens_total",
			       "Prompt tokens of model calls whose backend reported its cache use, "
			       "by backend.",
			       offsetof(struct cache_series, prompt));
	render_backend_counter(out, "parley_backend_cached_prompt_tokens_total",
			       "Of those, the tokens the backend took from its prompt cache.",
			       offsetof(struct cache_series, cached));
	strbuf_addstr(out, "# HELP parley_backend_cache_hit_ratio Cached share of those prompt "
			   "tokens since start (0 before any call).\n"
			   "# TYPE parley_backend_cache_hit_ratio gauge\n");
	for (i = 0; i < ncaches; i++) {
		strbuf_addstr(out, "parley_backend_cache_hit_ratio{backend=\"");
		label(out, caches[i].backend);
		strbuf_addf(out, "\"} %.4f\n",
			    caches[i].prompt ? (double)caches[i].cached / (double)caches[i].prompt
					     : 0.0);
	}
	render_backend_counter(
	    out, "parley_backend_prefix_lost_total",
	    "Calls whose slot no longer held the conversation's prefix (less than "
	    "half of it cached).",
	    offsetof(struct cache_series, lost));
	strbuf_addstr(out, "# HELP parley_http_requests_total HTTP requests answered, by method, "
			   "route and status class.\n"
			   "# TYPE parley_http_requests_total counter\n");
	for (i = 0; i < nhttp; i++)
		for (c = 0; c < NCLASSES; c++) {
			strbuf_addf(out, "parley_http_requests_total{method=\"%s\",route=\"",
				    http[i].method);
			label(out, http[i].route);
			strbuf_addf(out, "\",code=\"%s\"} %llu\n", classes[c],
				    (unsigned long long)http[i].by_class[c]);
		}
	strbuf_addstr(out, "# HELP parley_http_request_duration_seconds Time to answer an HTTP "
			   "request (to the first byte of a stream).\n"
			   "# TYPE parley_http_request_duration_seconds histogram\n");
	for (i = 0; i < nhttp; i++) {
		struct strbuf lb;
		strbuf_init(&lb, 96);
		strbuf_addf(&lb, "method=\"%s\",route=\"", http[i].method);
		label(&lb, http[i].route);
		strbuf_addch(&lb, '"');
		for (b = 0; b < NHTTP_BOUNDS; b++) {
			snprintf(le, sizeof(le), "%g", http_bounds[b]);
			render_histogram_line(out, "parley_http_request_duration_seconds", lb.buf,
					      le, http[i].buckets[b]);
		}
		render_histogram_line(out, "parley_http_request_duration_seconds", lb.buf, "+Inf",
				      http[i].count);
		strbuf_addf(out, "parley_http_request_duration_seconds_sum{%s} %.6f\n", lb.buf,
			    http[i].sum);
		strbuf_addf(out, "parley_http_request_duration_seconds_count{%s} %llu\n", lb.buf,
			    (unsigned long long)http[i].count);
		strbuf_release(&lb);
	}
	pthread_mutex_unlock(&lock);
}
