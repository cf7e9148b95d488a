/*
 * metrics.h - counters for GET /metrics (Prometheus text format).
 *
 * DESIGN: process-wide counters and histograms behind one mutex, fed by the
 * engine (turns, backend errors) and the HTTP layer (requests by status).
 * Label sets are bounded (MAX_SERIES per family); past that, samples count
 * under model="other", so a client inventing model names cannot grow memory.
 * Job counts by state and the queue depth come from the store when scraped.
 */
#ifndef PARLEY_METRICS_H
#define PARLEY_METRICS_H

#include <stdint.h>

#include "db/util.h"

void metrics_turn(const char *role, const char *model, double seconds, long completion_tokens);
void metrics_backend_error(const char *backend, const char *kind);
void metrics_http(int status);

/* Appends every family; job_counts in the order queued, running, succeeded, failed, cancelled. */
void metrics_render(struct strbuf *out, const int64_t job_counts[5], int busy_workers,
		    int64_t uptime_s);

#endif
