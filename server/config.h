/*
 * config.h - parleyd's settings: JSON file, then PARLEY_* environment, then flags.
 *
 * DESIGN: config_load() builds the whole configuration once at start-up, in
 * that order of precedence (DESIGN §6), and refuses anything it does not know
 * (an unknown key in the file is an error, not a silent default). Every key is
 * documented in deploy/parley.example.json. After start-up the configuration
 * is read-only and shared by all threads without a lock.
 */
#ifndef PARLEY_CONFIG_H
#define PARLEY_CONFIG_H

#include <stddef.h>

#include "server/backend.h"

struct config {
	char *listen_host;
	int listen_port;
	char *db_path;
	int workers;
	int http_threads;
	char *log_level;
	char *synchronous; /* "FULL" or "NORMAL" */
	size_t max_body_bytes;
	int max_json_depth;
	int max_queued_jobs;
	int connection_timeout_s;
	int max_connections;
	int max_connections_per_ip;
	int request_timeout_s;	/* a request's headers and body must arrive within this */
	size_t max_reply_bytes; /* one model reply; the turn is cut there, with a note */
	char **allowed_hosts;	/* Host names served besides the listen address and localhost */
	size_t nallowed_hosts;
	char **allowed_origins; /* Origins whose state-changing requests are taken */
	size_t nallowed_origins;
	int drain_timeout_s;
	int idempotency_sweep_s; /* how often keys past their time are dropped */
	int retry_max_attempts;
	long retry_base_delay_ms;
	long retry_max_delay_ms;
	char **tokens; /* SHA-256 (hex) of the accepted bearer tokens; none = no auth */
	size_t ntokens;
	struct backend_cfg *backends;
	size_t nbackends;
};

/* Returns 0, or -1 with e set; prints help/version and returns 1 for --help/--version. */
int config_load(struct config *cfg, int argc, char **argv, struct perr *e);
void config_release(struct config *cfg);
/* Parses "name=N,kind=K,url=U[,max_concurrency=C]" into b (appended fields freed by caller). */
int config_parse_backend(const char *spec, struct backend_cfg *b, struct perr *e);
void config_usage(void);

#endif
