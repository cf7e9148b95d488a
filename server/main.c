/*
 * main.c - parleyd: configuration, start-up, signals, shutdown.
 *
 * DESIGN: the main thread sets everything up (config, database and
 * migrations, requeue of jobs a crash left running, backends, workers, the
 * HTTP daemon), tells systemd it is ready when run under a Type=notify unit,
 * then waits for SIGINT or SIGTERM, waking every idempotency_sweep_s to drop
 * idempotency keys older than IDEM_KEEP_HOURS (a daemon that never restarts
 * must not keep them forever, nor drop one before the README's 24 hours). Shutdown
 * closes the listening socket at once, lets the workers finish the turns in
 * flight up to the drain timeout, requeues what is left, and exits 0. The
 * signals are blocked in every thread, so only the main thread's
 * sigtimedwait() sees them.
 */
#include <curl/curl.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "db/db.h"
#include "db/job.h"
#include "server/config.h"
#include "server/events.h"
#include "server/fleet.h"
#include "server/log.h"
#include "server/metrics.h"
#include "server/notify.h"
#include "server/pool.h"

/* Idempotency keys are kept at least this long (README: at least 24 hours). */
#define IDEM_KEEP_HOURS 48

static void expire_idempotency_keys(struct db *db)
{
	struct perr e = {0};

	if (db_idem_expire(db, util_now_us() - (int64_t)IDEM_KEEP_HOURS * 3600 * 1000000, &e) < 0)
		log_warn("cannot expire idempotency keys", "error=\"%s\"", e.msg);
}

/* The store stopped or started taking writes again: said once per change. */
static void on_store(int ok, int code, const char *msg)
{
	if (ok)
		log_info("store recovered", "detail=\"%s\"", msg);
	else
		log_error("store refuses writes", "code=%s detail=\"%s\"", perr_code_name(code),
			  msg);
}

/* A damaged store: e says what is wrong; this adds what to do. */
static void corrupt_hint(struct perr *e, const char *path)
{
	char what[sizeof(e->msg)];

	snprintf(what, sizeof(what), "%s", e->msg);
	snprintf(e->msg, sizeof(e->msg),
		 "database '%.80s' is corrupt (%.160s); restore it from a backup, or move it "
		 "aside (parleyd then starts with an empty store) and save what can be read "
		 "with: sqlite3 '%.80s' .recover",
		 path, what, path);
}

static void die(const char *what, const struct perr *e)
{
	log_error(what, "error=\"%s\"", e->msg);
	fprintf(stderr, "parleyd: %s: %s\n", what, e->msg);
	exit(1);
}

int main(int argc, char **argv)
{
	struct config cfg;
	struct perr e = {0};
	struct api_deps deps;
	struct fleet *fleet;
	struct pool *pool;
	struct api *api;
	struct db *db;
	enum log_level lvl;
	sigset_t sigs;
	int rc, sig = 0, requeued;
	size_t i;

	metrics_start(util_now_us());
	rc = config_load(&cfg, argc, argv, &e);
	if (rc == 1)
		return 0;
	if (rc < 0) {
		fprintf(stderr, "parleyd: %s\n", e.msg);
		return 2;
	}
	if (log_level_parse(cfg.log_level, &lvl) < 0) {
		fprintf(stderr, "parleyd: log level '%s' is not debug, info, warn or error\n",
			cfg.log_level);
		return 2;
	}
	log_set_level(lvl);

	sigemptyset(&sigs);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);
	signal(SIGPIPE, SIG_IGN);
	srandom((unsigned)util_now_us());

	if (curl_global_init(CURL_GLOBAL_DEFAULT) != 0) {
		perr_set(&e, PERR_INTERNAL, "curl_global_init failed");
		die("cannot start", &e);
	}
	db_set_synchronous(cfg.synchronous);
	/* one database, one parleyd: before anything reads or writes the file */
	if (db_lock_take(cfg.db_path, &e) < 0)
		die("cannot start", &e);
	if (!(db = db_open(cfg.db_path, &e))) {
		if (e.code == PERR_STORE_CORRUPT)
			corrupt_hint(&e, cfg.db_path);
		die("cannot open the database", &e);
	}
	{
		char *qc = db_quick_check(db);
		if (strcmp(qc, "ok") != 0) {
			char *nl;
			while ((nl = strchr(qc, '\n')))
				*nl = ' '; /* one line in the log */
			e.code = PERR_STORE_CORRUPT;
			snprintf(e.msg, sizeof(e.msg), "PRAGMA quick_check: %.200s", qc);
			corrupt_hint(&e, cfg.db_path);
			free(qc);
			die("the database is corrupt", &e);
		}
		free(qc);
	}
	if (db_migrate(db, &e) < 0)
		die("cannot migrate the database", &e);
	if ((requeued = db_job_requeue_running(db, &e)) < 0)
		die("cannot requeue interrupted jobs", &e);
	expire_idempotency_keys(db);
	/* from here on the file is never created again, and must stay the one opened */
	db_pin(db, cfg.db_path);
	db_set_notify(on_store);

	events_init(15000);
	fleet = fleet_start(cfg.backends, cfg.nbackends);
	if (!(pool = pool_start(&cfg, fleet, &e)))
		die("cannot start workers", &e);
	memset(&deps, 0, sizeof(deps));
	deps.cfg = &cfg;
	deps.pool = pool;
	deps.fleet = fleet;
	deps.started_at = util_now_us();
	if (!(api = api_start(&deps, &e)))
		die("cannot start the HTTP server", &e);

	{
		char listen[300];
		snprintf(listen, sizeof(listen), "%s:%d", cfg.listen_host, api_port(api));
		db_lock_note_listen(listen);
	}
	log_info("parleyd started",
		 "version=%s listen=%s:%d db=%s workers=%d schema=%d requeued=%d auth=%s",
		 PARLEY_VERSION, cfg.listen_host, api_port(api), cfg.db_path, cfg.workers,
		 db_schema_version(db), requeued, cfg.ntokens ? "on" : "off");
	for (i = 0; i < cfg.nbackends; i++)
		log_info(
		    "backend configured",
		    "name=%s kind=%s url=%s members=%zu max_concurrency=%d max_conversations=%d",
		    cfg.backends[i].name, backend_kind_name(cfg.backends[i].kind),
		    cfg.backends[i].url, cfg.backends[i].nurls ? cfg.backends[i].nurls : 1,
		    cfg.backends[i].max_concurrency, cfg.backends[i].max_conversations);
	if (requeued)
		pool_wake(pool);
	/* under systemd (Type=notify): started means answering, not merely forked */
	if (notify_send("READY=1\nSTATUS=serving") < 0)
		log_warn("cannot notify systemd", "socket=%s", getenv("NOTIFY_SOCKET"));

	for (;;) {
		struct timespec every = {cfg.idempotency_sweep_s, 0};

		if ((sig = sigtimedwait(&sigs, NULL, &every)) > 0)
			break;
		if (errno == EAGAIN)
			expire_idempotency_keys(db);
	}
	log_info("shutting down", "signal=%s drain_timeout_s=%d",
		 sig == SIGTERM ? "SIGTERM" : "SIGINT", cfg.drain_timeout_s);
	notify_send("STOPPING=1\nSTATUS=draining");
	api_quiesce(api);
	pool_stop(pool, (long)cfg.drain_timeout_s * 1000);
	events_shutdown(); /* resumes every parked stream so the daemon can stop */
	events_wait_idle(2000);
	api_stop(api);
	fleet_stop(fleet);
	db_close(db);
	config_release(&cfg);
	curl_global_cleanup();
	log_info("stopped", "%s", "");
	return 0;
}
