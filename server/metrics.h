/*
 * metrics.h - counters for GET /metrics (Prometheus text format).
 *
 * DESIGN: process-wide counters and histograms behind one mutex, fed by the
 * engine (turns, backend errors) and the HTTP layer (requests by method,
 * route template and status class). Label sets are bounded: a model name
 * becomes a label only once a backend has served a turn of it, and past
 * MAX_SERIES label sets samples count under model="other"; HTTP series are
 * the routes the HTTP layer registers (started at zero) plus its own
 * "other", so a client inventing names or paths cannot grow memory. Job
 * counts by state and the queue depth come from the store when scraped;
 * process_* from /proc at the same moment.
 */
#ifndef PARLEY_METRICS_H
#define PARLEY_METRICS_H

#include <stdint.h>

#include "db/turn.h"
#include "db/util.h"

/* The process's start (wall clock, microseconds), for process_start_time_seconds. */
void metrics_start(int64_t started_at);
/* A stored turn: its duration, time to first token and tokens, by role (and model). */
void metrics_turn(const struct db_turn *t);
void metrics_backend_error(const char *backend, const char *kind);
/* Starts a configured backend's prompt cache series at zero (the name is copied). */
void metrics_backend_series(const char *backend);
/* One model call's prompt as the backend reported it: its tokens, those it took from its
 * cache, and whether the slot had lost the prefix parleyd kept there (lost = 1). */
void metrics_backend_cache(const char *backend, long prompt_tokens, long cached_tokens, int lost);
/* Starts the series of a method and route at zero (label values are copied). */
void metrics_http_series(const char *method, const char *route);
/* One answered request; status_class is "2xx" .. "5xx". */
void metrics_http(const char *method, const char *route, const char *status_class, double seconds);

/* Appends every family; job_counts in the order queued, running, succeeded, failed, cancelled. */
void metrics_render(struct strbuf *out, const int64_t job_counts[5], int busy_workers);

#endif
