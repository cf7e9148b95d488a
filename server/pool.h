/*
 * pool.h - the worker threads that run jobs.
 *
 * DESIGN: N plain pthreads, each owning its database connection and its curl
 * handle. An idle worker sleeps on a condition variable; pool_wake() (called
 * after a job is committed) wakes one. A worker claims the oldest queued job
 * in the store, runs it with the engine, and claims again until the queue is
 * empty: the store is the queue, so nothing is lost when the process dies.
 * Each worker has a cancel flag that pool_cancel() raises when that worker is
 * running the job named, which aborts its model call within a fraction of a
 * second. pool_stop() stops claiming, lets turns in flight finish up to the
 * drain timeout, then aborts them; unfinished jobs go back to the queue.
 */
#ifndef PARLEY_POOL_H
#define PARLEY_POOL_H

#include "server/config.h"
#include "server/fleet.h"

struct pool;

struct pool *pool_start(const struct config *cfg, struct fleet *fleet, struct perr *e);
void pool_wake(struct pool *p);
/* Raises the cancel flag of the worker running job_id; 1 if one was, else 0. */
int pool_cancel(struct pool *p, const char *job_id);
/* Workers that are running a job right now. */
int pool_busy(struct pool *p);
void pool_stop(struct pool *p, long drain_ms);

#endif
