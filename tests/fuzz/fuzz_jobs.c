/*
 * fuzz_jobs.c - POST /v1/jobs request bodies, through the real handler.
 *
 * DESIGN: api_jobs_post() runs as parleyd runs it, minus the socket: a
 * struct api_req with the body, a real configuration (config_load() with two
 * backends), a real fleet (its backends point at a closed port), and an
 * in-memory database migrated with db_migrate(), so the three origin
 * scenarios exist and valid bodies are inserted for real. What needs a live
 * connection or the workers is replaced here: MHD_lookup_connection_value()
 * (this file's definition wins over libmicrohttpd's) answers the
 * Idempotency-Key header, and pool_wake/pool_cancel/pool_busy do nothing, so
 * server/pool.c and the engine stay out. An input that starts with byte 0x01
 * carries a key up to its first newline, then the body. Every answer must be
 * 202, 200 (a repeated key and body), 400, 409 (a reused key) or 503, and a
 * well-formed JSON document: a job with an id, or a problem with a detail;
 * a 5xx other than 503 means the handler hit an error it should not have.
 * An accepted body is checked again here, independently, against the rules
 * the README states (known fields only, label keys of A-Z a-z 0-9 _ - .), so
 * a validation error that got lost on its way to the answer is caught too.
 */
#include <ctype.h>
#include <microhttpd.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "db/internal.h" /* to empty the tables between runs */
#include "server/log.h"

static struct config cfg;
static struct api_deps deps;
static struct db *db;
static char idem_key[256];
static int have_key;
static unsigned long runs;

const char *MHD_lookup_connection_value(struct MHD_Connection *connection, enum MHD_ValueKind kind,
					const char *key)
{
	(void)connection;
	if (kind == MHD_HEADER_KIND && have_key && key && !strcasecmp(key, "Idempotency-Key"))
		return idem_key;
	return NULL;
}

/* The workers stay out: a job is inserted and stays queued. */
void pool_wake(struct pool *p)
{
	(void)p;
}

int pool_cancel(struct pool *p, const char *job_id)
{
	(void)p;
	(void)job_id;
	return 0;
}

int pool_busy(struct pool *p)
{
	(void)p;
	return 0;
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	char *args[] = {"parleyd",
			"--db",
			":memory:",
			"--log-level",
			"error",
			"--backend",
			"name=ollama,kind=ollama,url=http://127.0.0.1:1",
			"--backend",
			"name=llama,kind=llama-server,url=http://127.0.0.1:1",
			NULL};
	struct perr e = {0};

	(void)argc;
	(void)argv;
	unsetenv("PARLEY_CONFIG");
	unsetenv("PARLEY_BACKENDS");
	if (config_load(&cfg, (int)(sizeof(args) / sizeof(args[0])) - 1, args, &e) != 0) {
		fprintf(stderr, "fuzz_jobs: config: %s\n", e.msg);
		abort();
	}
	log_set_level(LOG_ERROR);
	cfg.max_queued_jobs = 1000; /* the queue fills up too: 503 is a fine answer */
	if (!(db = db_open(cfg.db_path, &e)) || db_migrate(db, &e) < 0) {
		fprintf(stderr, "fuzz_jobs: database: %s\n", e.msg);
		abort();
	}
	deps.cfg = &cfg;
	deps.fleet = fleet_start(cfg.backends, cfg.nbackends);
	deps.pool = NULL;
	deps.started_at = util_now_us();
	return 0;
}

static int in(const char *key, const char *const *keys)
{
	for (; *keys; keys++)
		if (!strcmp(key, *keys))
			return 1;
	return 0;
}

/* Why an accepted body should not have been, or NULL. */
static const char *should_refuse(const char *body, size_t len)
{
	static const char *const top[] = {"scenario",	"interviewer", "candidate",
					  "max_turns",	"options",     "scoring",
					  "extraction", "labels",      NULL};
	static const char *const party[] = {"model", "backend", NULL};
	static const char *const opts[] = {"temperature", "top_p",   "top_k", "seed",
					   "num_predict", "num_ctx", "stop",  NULL};
	json_t *b = json_loadb(body, len, JSON_REJECT_DUPLICATES, NULL), *v;
	const char *key, *why = NULL;
	size_t i;

	if (!json_is_object(b))
		why = "not a JSON object";
	json_object_foreach(b, key, v) if (!why && !in(key, top)) why = "an unknown field";
	for (i = 0; !why && i < 2; i++) {
		json_t *p = json_object_get(b, i ? "candidate" : "interviewer");
		json_object_foreach(p, key, v) if (!why && !in(key, party)) why =
		    "an unknown field in a party";
	}
	json_object_foreach(json_object_get(b, "options"), key, v) if (!why && !in(key, opts)) why =
	    "an unknown option";
	json_object_foreach(json_object_get(b, "labels"), key, v)
	{
		size_t n = strlen(key), k;
		if (why)
			break;
		if (n == 0 || n > 64 || !json_is_string(v))
			why = "a bad label";
		for (k = 0; k < n && !why; k++)
			if (!isalnum((unsigned char)key[k]) && !strchr("_-.", key[k]))
				why = "a bad label key";
	}
	json_decref(b);
	return why;
}

static void fail(const char *why, const struct api_resp *r)
{
	fprintf(stderr, "fuzz_jobs: %s: status %d, body %.*s\n", why, r->status, (int)r->body.len,
		r->body.buf);
	abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct api_req q;
	struct api_resp r;
	char *body;
	json_t *answer;

	have_key = 0;
	if (size && data[0] == 0x01) {
		const uint8_t *nl = memchr(data, '\n', size);
		size_t n = nl ? (size_t)(nl - data) - 1 : size - 1;

		if (n >= sizeof(idem_key))
			n = sizeof(idem_key) - 1;
		memcpy(idem_key, data + 1, n);
		idem_key[n] = '\0';
		have_key = 1;
		size -= nl ? (size_t)(nl - data) + 1 : size;
		data = nl ? nl + 1 : data + size;
	}
	/* the body as parleyd holds it: a NUL-terminated buffer */
	body = malloc(size + 1);
	memcpy(body, data, size);
	body[size] = '\0';

	memset(&q, 0, sizeof(q));
	q.deps = &deps;
	q.db = db;
	q.method = "POST";
	q.path = "/v1/jobs";
	q.body = body;
	q.body_len = size;
	q.seg[0] = "v1";
	q.seg[1] = "jobs";
	q.nseg = 2;
	api_resp_init(&r);

	api_jobs_post(&q, &r);

	answer = json_loadb(r.body.buf, r.body.len, 0, NULL);
	if (!json_is_object(answer))
		fail("the answer is not a JSON object", &r);
	switch (r.status) {
	case 200:
	case 202:
		if (!json_is_string(json_object_get(answer, "id")) || !r.location)
			fail("a job without an id or a Location", &r);
		if (r.status == 202 && should_refuse(body, size))
			fail(should_refuse(body, size), &r);
		break;
	case 400:
	case 409:
	case 503:
		if (!json_is_string(json_object_get(answer, "detail")) ||
		    json_integer_value(json_object_get(answer, "status")) != r.status)
			fail("a problem without a detail or its status", &r);
		if (r.status == 503 && r.retry_after <= 0)
			fail("a 503 without Retry-After", &r);
		break;
	default:
		fail("an unexpected status", &r);
	}
	json_decref(answer);
	api_resp_release(&r);
	free(body);

	/* keep the database small: the queue cap is reached now and then, never for long */
	if (++runs % 1200 == 0) {
		sqlite3_exec(db_handle(db), "DELETE FROM idempotency_keys; DELETE FROM jobs;", NULL,
			     NULL, NULL);
	}
	return 0;
}
