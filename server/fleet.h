/*
 * fleet.h - the configured backends at run time: call slots and health.
 *
 * DESIGN: each backend has a limit on calls in flight (max_concurrency; by
 * default 1 for Ollama, the slot count for llama-server as /props reports it).
 * A worker takes a slot before each model call and gives it back after, so a
 * busy backend queues work inside parleyd rather than being flooded. Waiting
 * for a slot sleeps on a condition variable and wakes on release or when the
 * caller's cancel flag is raised (fleet_poke). A monitor thread probes every
 * backend every few seconds and keeps the last answer (up, models served,
 * error) for /v1/backends and /readyz, so request handlers never wait on a
 * model server.
 */
#ifndef PARLEY_FLEET_H
#define PARLEY_FLEET_H

#include <jansson.h>
#include <stdatomic.h>

#include "server/backend.h"

struct fleet;

/* Starts the monitor thread. cfgs must outlive the fleet. */
struct fleet *fleet_start(const struct backend_cfg *cfgs, size_t n);
void fleet_stop(struct fleet *f);

/* The backend configured under name, or NULL. */
const struct backend_cfg *fleet_find(struct fleet *f, const char *name);
/* The first configured backend's name (the default). */
const char *fleet_default_name(struct fleet *f);

/* The backend's call slots (its effective max_concurrency); 0 for an unknown name. */
int fleet_limit(struct fleet *f, const char *name);
/* Waits for a call slot; returns 0, or -1 when *cancel became non-zero. */
int fleet_acquire(struct fleet *f, const char *name, const atomic_int *cancel);
void fleet_release(struct fleet *f, const char *name);
/* Wakes every waiter so they re-check their cancel flags. */
void fleet_poke(struct fleet *f);

/* New JSON array describing every backend: name, kind, url, max_concurrency,
 * in_flight, waiting, status (up/down/loading/unknown), models[], error, checked_at. */
json_t *fleet_status_json(struct fleet *f);

#endif
