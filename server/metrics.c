/*
 * metrics.c - Prometheus counters. See metrics.h.
 */
#include "server/metrics.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>

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
static uint64_t http_by_status[600];

void metrics_turn(const char *role, const char *model, double seconds, long completion_tokens)
{
	struct turn_series *t = NULL;
	size_t b;
	int i;

	pthread_mutex_lock(&lock);
	for (i = 0; i < nturns; i++)
		if (strcmp(turns[i].role, role) == 0 && strcmp(turns[i].model, model) == 0)
			t = &turns[i];
	if (!t && nturns < MAX_SERIES) {
		t = &turns[nturns++];
		snprintf(t->role, sizeof(t->role), "%s", role);
		snprintf(t->model, sizeof(t->model), "%s", model);
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
	if (completion_tokens > 0)
		t->tokens += (uint64_t)completion_tokens;
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

void metrics_http(int status)
{
	pthread_mutex_lock(&lock);
	if (status >= 100 && status < 600)
		http_by_status[status]++;
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

void metrics_render(struct strbuf *out, const int64_t job_counts[5], int busy_workers,
		    int64_t uptime_s)
{
	static const char *const states[5] = {"queued", "running", "succeeded", "failed",
					      "cancelled"};
	size_t b;
	int i;

	strbuf_addstr(out, "# HELP parley_jobs Jobs in the store by state.\n# TYPE parley_jobs gauge\n");
	for (i = 0; i < 5; i++)
		strbuf_addf(out, "parley_jobs{state=\"%s\"} %lld\n", states[i],
			    (long long)job_counts[i]);
	strbuf_addf(out, "# HELP parley_queue_depth Jobs waiting for a worker.\n"
			 "# TYPE parley_queue_depth gauge\nparley_queue_depth %lld\n",
		    (long long)job_counts[0]);
	strbuf_addf(out, "# HELP parley_workers_busy Workers running a job.\n"
			 "# TYPE parley_workers_busy gauge\nparley_workers_busy %d\n",
		    busy_workers);
	strbuf_addf(out, "# HELP parley_uptime_seconds Seconds since start.\n"
			 "# TYPE parley_uptime_seconds gauge\nparley_uptime_seconds %lld\n",
		    (long long)uptime_s);

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
		strbuf_addf(out, "parley_turn_duration_seconds_bucket{role=\"%s\",model=\"", t->role);
		label(out, t->model);
		strbuf_addf(out, "\",le=\"+Inf\"} %llu\n", (unsigned long long)t->count);
		strbuf_addf(out, "parley_turn_duration_seconds_sum{role=\"%s\",model=\"", t->role);
		label(out, t->model);
		strbuf_addf(out, "\"} %.6f\n", t->sum);
		strbuf_addf(out, "parley_turn_duration_seconds_count{role=\"%s\",model=\"", t->role);
		label(out, t->model);
		strbuf_addf(out, "\"} %llu\n", (unsigned long long)t->count);
	}
	strbuf_addstr(out, "# HELP parley_turns_total Turns stored.\n# TYPE parley_turns_total counter\n");
	for (i = 0; i <= MAX_SERIES; i++) {
		if (!turns[i].role[0])
			continue;
		strbuf_addf(out, "parley_turns_total{role=\"%s\",model=\"", turns[i].role);
		label(out, turns[i].model);
		strbuf_addf(out, "\"} %llu\n", (unsigned long long)turns[i].count);
	}
	strbuf_addstr(out, "# HELP parley_completion_tokens_total Tokens generated.\n"
			   "# TYPE parley_completion_tokens_total counter\n");
	for (i = 0; i <= MAX_SERIES; i++) {
		if (!turns[i].role[0])
			continue;
		strbuf_addf(out, "parley_completion_tokens_total{role=\"%s\",model=\"", turns[i].role);
		label(out, turns[i].model);
		strbuf_addf(out, "\"} %llu\n", (unsigned long long)turns[i].tokens);
	}
	strbuf_addstr(out, "# HELP parley_backend_errors_total Failed model calls by kind.\n"
			   "# TYPE parley_backend_errors_total counter\n");
	for (i = 0; i < nerrors; i++) {
		strbuf_addstr(out, "parley_backend_errors_total{backend=\"");
		label(out, errors[i].backend);
		strbuf_addf(out, "\",kind=\"%s\"} %llu\n", errors[i].kind,
			    (unsigned long long)errors[i].count);
	}
	strbuf_addstr(out, "# HELP parley_http_requests_total HTTP requests answered, by status.\n"
			   "# TYPE parley_http_requests_total counter\n");
	for (i = 100; i < 600; i++)
		if (http_by_status[i])
			strbuf_addf(out, "parley_http_requests_total{status=\"%d\"} %llu\n", i,
				    (unsigned long long)http_by_status[i]);
	pthread_mutex_unlock(&lock);
}
