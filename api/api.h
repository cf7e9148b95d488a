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
	const char *route; /* the route template ("/v1/jobs/{id}"), "other" when none */
	int head;	   /* HEAD, routed as GET: libmicrohttpd sends no body */
};

struct api_resp {
	int status;
	const char *content_type;
	struct strbuf body;
	char *location;		  /* Location header or NULL */
	int retry_after;	  /* seconds; 0 = none */
	size_t render_bytes;	  /* held from the large-answer budget until sent (guard.h) */
	struct MHD_Response *raw; /* a streamed response (SSE) sent instead of body; owned */
	struct api_hdr {
		const char *name; /* a static string */
		char *value;	  /* owned */
	} * hdr;		  /* more headers: api_add_header() */
	int nhdr, hdr_alloc;
	/*
	 * Set by a handler when what it answers no longer changes (a finished job,
	 * its transcript, a finished batch): the answer then gets an ETag, a 304
	 * for a matching If-None-Match, and a Cache-Control that lets it be kept.
	 */
	int immutable;
	char *etag_of;	      /* what the ETag is made from instead of the body, or NULL; owned */
	const char *instance; /* the request path, a problem document's "instance" */
};

/* A response as a handler receives it (status 200, empty body); api_resp_release() frees it. */
void api_resp_init(struct api_resp *r);
void api_resp_release(struct api_resp *r);
/* Adds a response header (value copied); the list grows, none is ever dropped. */
void api_add_header(struct api_resp *r, const char *name, const char *value);

/* Response bodies and problems (api/errors.c). Sets a JSON body; j is stolen. */
void api_json(struct api_resp *r, int status, json_t *j);
void api_text(struct api_resp *r, int status, const char *content_type, const char *text);
/*
 * A page of a list: 200 {items, next_cursor}; items is stolen. When more,
 * next_cursor names the page after last (the sequence number of the page's
 * last item), as api_list_params() reads it back, with a Link rel="next" header.
 */
void api_list_page(struct api_req *q, struct api_resp *r, json_t *items, int more, int64_t last);
/* A 200 Markdown body; md's buffer is taken (md is left empty). */
void api_markdown(struct api_resp *r, struct strbuf *md);
/* Whether the request's Accept asks for text/markdown. */
int api_wants_markdown(struct api_req *q);
/* A problem document; errors (array of {field, message}) is stolen, may be NULL. */
void api_problem(struct api_resp *r, int status, const char *title, const char *detail,
		 json_t *errors);
/*
 * A problem for an error code: the status and title come from the one table
 * (api/errors.c), the detail from fmt; errors is stolen, may be NULL. Every
 * handler answers an error through this, api_perr() or api_invalid().
 */
void api_fail(struct api_resp *r, int code, json_t *errors, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* A problem from a perr; the status comes from the table. */
void api_perr(struct api_resp *r, const struct perr *e);
int api_status_for(int perr_code);
/* A validation problem with one field error. */
void api_invalid(struct api_resp *r, const char *field, const char *message);
/*
 * s as a new JSON string. Text cut to fit a buffer ("%.64s" of a key) may end
 * inside a UTF-8 character, which json_string() refuses (NULL, and a problem
 * or field error silently lost); here each byte that is not part of a valid
 * UTF-8 character becomes U+FFFD instead (util_utf8_repair()). NULL gives "".
 */
json_t *api_json_text(const char *s);

const char *api_query(struct api_req *q, const char *name);
const char *api_header(struct api_req *q, const char *name);

/*
 * Reads a list cursor (what api_list_page() wrote): 0 with *out > 0, or -1
 * for anything else (empty, not base 36, too large), which is a 400.
 */
int api_cursor_parse(const char *s, int64_t *out);
/*
 * Adds Link: <this path and query, cursor=cursor>; rel="next" beside a list
 * page's next_cursor.
 */
void api_link_next(struct api_req *q, struct api_resp *r, const char *cursor);

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
/* import and re-extraction (api/import.c) */
void api_import_post(struct api_req *q, struct api_resp *r);
void api_import_extract(struct api_req *q, struct api_resp *r, const char *id);
void api_jobs_trials(struct api_req *q, struct api_resp *r, const char *id);
struct db_job;
/* A job as GET /v1/jobs/{id} answers it: with optimize, its settings, trials and best too.
 * New reference, or NULL with e set. */
json_t *api_job_view(struct api_req *q, const struct db_job *j, struct perr *e);
void api_scenarios_list(struct api_req *q, struct api_resp *r);
void api_scenarios_get(struct api_req *q, struct api_resp *r, const char *name);
void api_scenarios_put(struct api_req *q, struct api_resp *r, const char *name);
void api_scenarios_delete(struct api_req *q, struct api_resp *r, const char *name);
void api_system_backends(struct api_req *q, struct api_resp *r);
void api_system_healthz(struct api_req *q, struct api_resp *r);
void api_system_readyz(struct api_req *q, struct api_resp *r);
void api_system_metrics(struct api_req *q, struct api_resp *r);
/* GET /v1/openapi.json: the API's description, built in (api/openapi.c). */
void api_openapi_get(struct api_req *q, struct api_resp *r);
/* dashboard: GET / and GET /assets/{name} (api/dashboard.c) */
void api_dashboard_index(struct api_req *q, struct api_resp *r);
void api_dashboard_asset(struct api_req *q, struct api_resp *r, const char *name);
void api_jobs_events(struct api_req *q, struct api_resp *r, const char *id);

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
/* end batches and optimizations */

#endif
