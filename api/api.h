/*
 * api.h - the HTTP API (libmicrohttpd): router, JSON in and out, problems.
 *
 * DESIGN: libmicrohttpd runs its own pool of polling threads; each thread
 * opens its own SQLite connection on first use (thread-local), so a request
 * reads and writes the store directly and never waits on a model call: work
 * for the models goes to the worker pool through the store, then pool_wake().
 * A request body is collected up to the configured limit; a declared
 * Content-Length over it is refused with 413 before a byte of body is read.
 * Every error leaves as an RFC 9457 problem document, its status taken from
 * the one table in api/errors.c.
 */
#ifndef PARLEY_API_H
#define PARLEY_API_H

#include <jansson.h>
#include <microhttpd.h>

#include "db/db.h"
#include "server/config.h"
#include "server/fleet.h"
#include "server/pool.h"

struct api_deps {
	const struct config *cfg;
	struct pool *pool;
	struct fleet *fleet;
	int64_t started_at;
};

struct api;

struct api *api_start(const struct api_deps *deps, struct perr *e);
/* Stops accepting new connections (the listening socket closes). */
void api_quiesce(struct api *a);
void api_stop(struct api *a);
/* The port actually bound (useful with port 0). */
int api_port(struct api *a);

/* ---- for the handlers in api/ ---- */

struct api_req {
	struct MHD_Connection *conn;
	const struct api_deps *deps;
	struct db *db; /* this thread's connection */
	const char *method;
	const char *path;
	const char *body;
	size_t body_len;
	const char *seg[8]; /* path segments after the leading "/" */
	int nseg;
};

struct api_resp {
	int status;
	const char *content_type;
	struct strbuf body;
	char *location;      /* Location header or NULL */
	const char *allow;   /* Allow header on 405 */
	int retry_after;     /* seconds; 0 = none */
	struct MHD_Response *raw; /* a streamed response (SSE) sent instead of body; owned */
	struct {
		const char *name; /* a static string */
		char *value;      /* owned */
	} hdr[8];                 /* more headers: api_add_header() */
	int nhdr;
};

/* Adds a response header (value copied); the ninth and later are dropped. */
void api_add_header(struct api_resp *r, const char *name, const char *value);

/* Sets a JSON body; j is stolen. */
void api_json(struct api_resp *r, int status, json_t *j);
void api_text(struct api_resp *r, int status, const char *content_type, const char *text);
/* A problem document; errors (array of {field, message}) is stolen, may be NULL. */
void api_problem(struct api_resp *r, int status, const char *title, const char *detail,
		 json_t *errors);
/* A problem from a perr; the status comes from the table. */
void api_perr(struct api_resp *r, const struct perr *e);
int api_status_for(int perr_code);
/* A validation problem with one field error. */
void api_invalid(struct api_resp *r, const char *field, const char *message);
/*
 * s as a new JSON string. Text cut to fit a buffer ("%.64s" of a key) may end
 * inside a UTF-8 character, which json_string() refuses (NULL, and a problem
 * or field error silently lost); here each byte that is not part of a valid
 * UTF-8 character becomes U+FFFD instead. NULL gives "".
 */
json_t *api_json_text(const char *s);

const char *api_query(struct api_req *q, const char *name);
const char *api_header(struct api_req *q, const char *name);

/* Parses the body as a JSON object with the depth limit; on failure fills r (400). */
json_t *api_parse_body(struct api_req *q, struct api_resp *r);

/* Auth: 0 when the request may go on; -1 with r filled (401/403) otherwise. */
void api_auth_init(void);
int api_auth_check(struct api_req *q, struct api_resp *r);
void api_session_post(struct api_req *q, struct api_resp *r);
void api_session_delete(struct api_req *q, struct api_resp *r);

/* handlers */
void api_jobs_post(struct api_req *q, struct api_resp *r);
void api_jobs_list(struct api_req *q, struct api_resp *r);
void api_jobs_get(struct api_req *q, struct api_resp *r, const char *id);
void api_jobs_transcript(struct api_req *q, struct api_resp *r, const char *id, int markdown);
void api_jobs_cancel(struct api_req *q, struct api_resp *r, const char *id);
void api_jobs_trials(struct api_req *q, struct api_resp *r, const char *id);
void api_scenarios_list(struct api_req *q, struct api_resp *r);
void api_scenarios_get(struct api_req *q, struct api_resp *r, const char *name);
void api_scenarios_put(struct api_req *q, struct api_resp *r, const char *name);
void api_scenarios_delete(struct api_req *q, struct api_resp *r, const char *name);
void api_system_backends(struct api_req *q, struct api_resp *r);
void api_system_healthz(struct api_req *q, struct api_resp *r);
void api_system_readyz(struct api_req *q, struct api_resp *r);
void api_system_metrics(struct api_req *q, struct api_resp *r);
/* dashboard: GET / and GET /assets/{name} (api/dashboard.c) */
void api_dashboard_index(struct api_req *q, struct api_resp *r);
void api_dashboard_asset(struct api_req *q, struct api_resp *r, const char *name);
void api_jobs_events(struct api_req *q, struct api_resp *r, const char *id);
/* Adds rendered HTML to a turn_finished event's data (registered with the event hub). */
void api_events_decorate(const char *type, json_t *data);

/* batches and optimizations (api/batches.c, api/optimizations.c) */
void api_batches_post(struct api_req *q, struct api_resp *r);
void api_batches_list(struct api_req *q, struct api_resp *r);
/* The batch with its summary; its report with Accept: text/markdown. */
void api_batches_get(struct api_req *q, struct api_resp *r, const char *id);
void api_batches_report(struct api_req *q, struct api_resp *r, const char *id);
void api_batches_cancel(struct api_req *q, struct api_resp *r, const char *id);
/* b is "{id}" (JSON, or Markdown with Accept: text/markdown) or "{id}.md" (Markdown). */
void api_batches_compare(struct api_req *q, struct api_resp *r, const char *a, const char *b);
void api_optimizations_list(struct api_req *q, struct api_resp *r);
/* The next_cursor of a list page that ended at seq: base 36 (api/batches.c). */
void api_list_cursor(int64_t seq, char out[24]);
/* end batches and optimizations */

#endif
