/*
 * http.c - the libmicrohttpd daemon, request bodies, routing. See api.h.
 */
#include "api/api.h"
#include "api/guard.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <zlib.h>

#include "server/log.h"
#include "server/metrics.h"

struct api {
	struct MHD_Daemon *d;
	struct api_deps deps;
	struct api_guard *guard;
	int port;
};

/* Per-connection state while a request body arrives. */
struct conn_state {
	struct strbuf body;
	int too_large;
	int started;	     /* the headers have been seen */
	int refuse;	     /* a status to answer at once (the URI was refused), or 0 */
	size_t render_bytes; /* the answer's share of the large-answer budget */
	char detail[128];    /* why */
};

/* Every thread-local database connection, so api_stop() can close them. */
static pthread_mutex_t dbs_lock = PTHREAD_MUTEX_INITIALIZER; /* guards dbs, ndbs */
static struct db **dbs;
static size_t ndbs;
static __thread struct db *thread_db;

static struct db *api_db(const struct api_deps *deps, struct perr *e)
{
	if (thread_db)
		return thread_db;
	thread_db = db_open(deps->cfg->db_path, e);
	if (!thread_db)
		return NULL;
	db_set_interactive(thread_db); /* a request thread is never held long by the store */
	pthread_mutex_lock(&dbs_lock);
	dbs = xrealloc(dbs, (ndbs + 1) * sizeof(*dbs));
	dbs[ndbs++] = thread_db;
	pthread_mutex_unlock(&dbs_lock);
	return thread_db;
}

const char *api_query(struct api_req *q, const char *name)
{
	return MHD_lookup_connection_value(q->conn, MHD_GET_ARGUMENT_KIND, name);
}

const char *api_header(struct api_req *q, const char *name)
{
	return MHD_lookup_connection_value(q->conn, MHD_HEADER_KIND, name);
}

/* Deepest nesting of arrays/objects in a JSON text, strings skipped. */
static int json_depth(const char *s, size_t n)
{
	int depth = 0, max = 0, in_str = 0;
	size_t i;

	for (i = 0; i < n; i++) {
		char c = s[i];
		if (in_str) {
			if (c == '\\')
				i++;
			else if (c == '"')
				in_str = 0;
		} else if (c == '"') {
			in_str = 1;
		} else if (c == '{' || c == '[') {
			if (++depth > max)
				max = depth;
		} else if (c == '}' || c == ']') {
			depth--;
		}
	}
	return max;
}

json_t *api_parse_body(struct api_req *q, struct api_resp *r)
{
	json_error_t jerr;
	json_t *j;

	if (!q->body_len) {
		api_fail(r, PERR_INVALID, NULL, "the request needs a JSON body");
		return NULL;
	}
	if (json_depth(q->body, q->body_len) > q->deps->cfg->max_json_depth) {
		api_fail(r, PERR_INVALID, NULL, "the JSON body is nested deeper than %d levels",
			 q->deps->cfg->max_json_depth);
		return NULL;
	}
	j = json_loadb(q->body, q->body_len, JSON_REJECT_DUPLICATES, &jerr);
	if (!j) {
		api_fail(r, PERR_INVALID, NULL,
			 "the body is not valid JSON: %s (line %d, column %d)", jerr.text,
			 jerr.line, jerr.column);
		return NULL;
	}
	if (!json_is_object(j)) {
		json_decref(j);
		api_fail(r, PERR_INVALID, NULL, "the body must be a JSON object");
		return NULL;
	}
	return j;
}

static int method_is(struct api_req *q, const char *m)
{
	return strcmp(q->method, m) == 0;
}

static void not_allowed(struct api_resp *r, const char *allow)
{
	char with_head[96];

	/* every GET resource answers HEAD too (the router sees HEAD as GET) */
	if (strncmp(allow, "GET", 3) == 0 && !strstr(allow, "HEAD")) {
		snprintf(with_head, sizeof(with_head), "GET, HEAD%s", allow + 3);
		allow = with_head;
	}
	api_fail(r, PERR_NOT_ALLOWED, NULL, "this resource allows %s", allow);
	api_add_header(r, "Allow", allow);
}

static void route(struct api_req *q, struct api_resp *r)
{
	const char *const *s = q->seg;
	int n = q->nseg;

	if (n == 1 && strcmp(s[0], "healthz") == 0) {
		if (method_is(q, "GET") || method_is(q, "HEAD"))
			return api_system_healthz(q, r);
		return not_allowed(r, "GET, HEAD");
	}
	if (n == 2 && strcmp(s[0], "v1") == 0 && strcmp(s[1], "openapi.json") == 0) {
		if (method_is(q, "GET") || method_is(q, "HEAD"))
			return api_openapi_get(q, r);
		return not_allowed(r, "GET, HEAD");
	}
	/* dashboard */
	if (n == 0 || (n == 2 && strcmp(s[0], "assets") == 0)) {
		if (!method_is(q, "GET") && !method_is(q, "HEAD"))
			return not_allowed(r, "GET, HEAD");
		if (n == 0)
			return api_dashboard_index(q, r);
		return api_dashboard_asset(q, r, s[1]);
	}
	/* end dashboard */
	/* everything below needs a token when tokens are configured */
	if (api_auth_check(q, r) < 0)
		return;
	if (n == 1 && strcmp(s[0], "metrics") == 0) {
		if (method_is(q, "GET"))
			return api_system_metrics(q, r);
		return not_allowed(r, "GET");
	}
	if (n == 1 && strcmp(s[0], "readyz") == 0) {
		if (method_is(q, "GET") || method_is(q, "HEAD"))
			return api_system_readyz(q, r);
		return not_allowed(r, "GET, HEAD");
	}
	if (n == 2 && strcmp(s[0], "v1") == 0 && strcmp(s[1], "session") == 0) {
		if (method_is(q, "POST"))
			return api_session_post(q, r);
		if (method_is(q, "DELETE"))
			return api_session_delete(q, r);
		return not_allowed(r, "POST, DELETE");
	}
	if (n >= 2 && strcmp(s[0], "v1") == 0) {
		if (strcmp(s[1], "jobs") == 0) {
			if (n == 2) {
				if (method_is(q, "POST"))
					return api_jobs_post(q, r);
				if (method_is(q, "GET"))
					return api_jobs_list(q, r);
				return not_allowed(r, "GET, POST");
			}
			if (n == 3 && strcmp(s[2], "import") == 0) {
				if (method_is(q, "POST"))
					return api_import_post(q, r);
				return not_allowed(r, "POST");
			}
			if (n == 3) {
				if (method_is(q, "GET"))
					return api_jobs_get(q, r, s[2]);
				return not_allowed(r, "GET");
			}
			if (n == 4 && strcmp(s[3], "extract") == 0) {
				if (method_is(q, "POST"))
					return api_import_extract(q, r, s[2]);
				return not_allowed(r, "POST");
			}
			if (n == 4 && (strcmp(s[3], "transcript") == 0 ||
				       strcmp(s[3], "transcript.md") == 0)) {
				int md =
				    strcmp(s[3], "transcript.md") == 0 || api_wants_markdown(q);
				if (method_is(q, "GET"))
					return api_jobs_transcript(q, r, s[2], md);
				return not_allowed(r, "GET");
			}
			if (n == 4 && strcmp(s[3], "events") == 0) {
				if (method_is(q, "GET"))
					return api_jobs_events(q, r, s[2]);
				return not_allowed(r, "GET");
			}
			if (n == 4 && strcmp(s[3], "trials") == 0) {
				if (method_is(q, "GET"))
					return api_jobs_trials(q, r, s[2]);
				return not_allowed(r, "GET");
			}
			if (n == 4 && strcmp(s[3], "cancel") == 0) {
				if (method_is(q, "POST"))
					return api_jobs_cancel(q, r, s[2]);
				return not_allowed(r, "POST");
			}
		}
		if (strcmp(s[1], "scenarios") == 0) {
			if (n == 2) {
				if (method_is(q, "GET"))
					return api_scenarios_list(q, r);
				return not_allowed(r, "GET");
			}
			if (n == 3) {
				if (method_is(q, "GET"))
					return api_scenarios_get(q, r, s[2]);
				if (method_is(q, "PUT"))
					return api_scenarios_put(q, r, s[2]);
				if (method_is(q, "DELETE"))
					return api_scenarios_delete(q, r, s[2]);
				return not_allowed(r, "GET, PUT, DELETE");
			}
		}
		/* batches and optimizations */
		if (strcmp(s[1], "batches") == 0) {
			if (n == 2) {
				if (method_is(q, "POST"))
					return api_batches_post(q, r);
				if (method_is(q, "GET"))
					return api_batches_list(q, r);
				return not_allowed(r, "GET, POST");
			}
			if (n == 3) {
				if (method_is(q, "GET"))
					return api_batches_get(q, r, s[2]);
				return not_allowed(r, "GET");
			}
			if (n == 4 && strcmp(s[3], "report.md") == 0) {
				if (method_is(q, "GET"))
					return api_batches_report(q, r, s[2]);
				return not_allowed(r, "GET");
			}
			if (n == 4 && strcmp(s[3], "cancel") == 0) {
				if (method_is(q, "POST"))
					return api_batches_cancel(q, r, s[2]);
				return not_allowed(r, "POST");
			}
			if (n == 5 && strcmp(s[3], "compare") == 0) {
				if (method_is(q, "GET"))
					return api_batches_compare(q, r, s[2], s[4]);
				return not_allowed(r, "GET");
			}
		}
		if (n == 2 && strcmp(s[1], "optimizations") == 0) {
			if (method_is(q, "GET"))
				return api_optimizations_list(q, r);
			return not_allowed(r, "GET");
		}
		/* end batches and optimizations */
		if (n == 2 && strcmp(s[1], "backends") == 0) {
			if (method_is(q, "GET"))
				return api_system_backends(q, r);
			return not_allowed(r, "GET");
		}
	}
	api_fail(r, PERR_NOT_FOUND, NULL, "no such resource; the API lives under /v1/");
}

void api_add_header(struct api_resp *r, const char *name, const char *value)
{
	if (r->nhdr == r->hdr_alloc) {
		r->hdr_alloc = r->hdr_alloc ? 2 * r->hdr_alloc : 4;
		r->hdr = xrealloc(r->hdr, (size_t)r->hdr_alloc * sizeof(*r->hdr));
	}
	r->hdr[r->nhdr].name = name;
	r->hdr[r->nhdr].value = xstrdup(value);
	r->nhdr++;
}

static void add_headers(struct MHD_Response *resp, const struct api_resp *r)
{
	int i;

	for (i = 0; i < r->nhdr; i++) {
		/* a handler's Cache-Control (the dashboard's) replaces the default no-store */
		if (strcasecmp(r->hdr[i].name, "Cache-Control") == 0)
			MHD_del_response_header(resp, "Cache-Control", "no-store");
		MHD_add_response_header(resp, r->hdr[i].name, r->hdr[i].value);
	}
}

static enum MHD_Result send_resp(struct MHD_Connection *conn, struct api_resp *r)
{
	struct MHD_Response *resp;
	enum MHD_Result ret;
	size_t len;
	char *body;
	char ra[16];

	if (r->raw) {
		add_headers(r->raw, r);
		ret = MHD_queue_response(conn, (unsigned)r->status, r->raw);
		MHD_destroy_response(r->raw);
		r->raw = NULL;
		return ret;
	}
	body = strbuf_detach(&r->body, &len);
	resp = MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
	if (!resp) {
		free(body);
		return MHD_NO;
	}
	MHD_add_response_header(resp, "Content-Type",
				r->content_type ? r->content_type
						: "application/json; charset=utf-8");
	MHD_add_response_header(resp, "Cache-Control", "no-store");
	MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
	if (r->location)
		MHD_add_response_header(resp, "Location", r->location);
	if (r->retry_after > 0) {
		snprintf(ra, sizeof(ra), "%d", r->retry_after);
		MHD_add_response_header(resp, "Retry-After", ra);
	}
	add_headers(resp, r);
	ret = MHD_queue_response(conn, (unsigned)r->status, resp);
	MHD_destroy_response(resp);
	return ret;
}

void api_resp_init(struct api_resp *r)
{
	memset(r, 0, sizeof(*r));
	strbuf_init(&r->body, 256);
	r->status = 200;
}

void api_resp_release(struct api_resp *r)
{
	int i;

	for (i = 0; i < r->nhdr; i++)
		free(r->hdr[i].value);
	free(r->hdr);
	if (r->raw)
		MHD_destroy_response(r->raw);
	strbuf_release(&r->body);
	free(r->location);
	free(r->etag_of);
}

/* ---- HTTP conventions: request ids, route templates, ETag, gzip, links, access log ---- */

/*
 * The routes as templates, for the access log and the metrics: a label is
 * one of these (or "other"), never a raw path a client made up. The methods
 * of each are the series the metrics start at zero.
 */
static const struct {
	const char *tmpl;
	const char *methods;
} routes[] = {
    {"/", "GET"},
    {"/assets/{name}", "GET"},
    {"/healthz", "GET"},
    {"/readyz", "GET"},
    {"/metrics", "GET"},
    {"/v1/session", "POST DELETE"},
    {"/v1/openapi.json", "GET"},
    {"/v1/jobs", "GET POST"},
    {"/v1/jobs/import", "POST"},
    {"/v1/jobs/{id}", "GET"},
    {"/v1/jobs/{id}/transcript", "GET"},
    {"/v1/jobs/{id}/transcript.md", "GET"},
    {"/v1/jobs/{id}/events", "GET"},
    {"/v1/jobs/{id}/trials", "GET"},
    {"/v1/jobs/{id}/cancel", "POST"},
    {"/v1/jobs/{id}/extract", "POST"},
    {"/v1/scenarios", "GET"},
    {"/v1/scenarios/{name}", "GET PUT DELETE"},
    {"/v1/batches", "GET POST"},
    {"/v1/batches/{id}", "GET"},
    {"/v1/batches/{id}/report.md", "GET"},
    {"/v1/batches/{id}/cancel", "POST"},
    {"/v1/batches/{id}/compare/{other}", "GET"},
    {"/v1/optimizations", "GET"},
    {"/v1/backends", "GET"},
};

/* Whether the path segments fit tmpl, a "{...}" segment matching any one segment. */
static int route_fits(const char *tmpl, const char *const *seg, int n)
{
	int i = 0;

	while (*tmpl == '/')
		tmpl++;
	while (*tmpl) {
		size_t len = strcspn(tmpl, "/");
		if (i >= n)
			return 0;
		if (tmpl[0] != '{' && (strlen(seg[i]) != len || strncmp(seg[i], tmpl, len) != 0))
			return 0;
		i++;
		tmpl += len;
		while (*tmpl == '/')
			tmpl++;
	}
	return i == n;
}

static const char *route_template(const char *const *seg, int n)
{
	size_t i;

	for (i = 0; i < ARRAY_SIZE(routes); i++)
		if (route_fits(routes[i].tmpl, seg, n))
			return routes[i].tmpl;
	return "other";
}

/* The method as a metrics label: a method a client invents counts as "other". */
static const char *method_label(const char *m)
{
	static const char *const known[] = {"GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS"};
	size_t i;

	for (i = 0; i < ARRAY_SIZE(known); i++)
		if (strcmp(m, known[i]) == 0)
			return known[i];
	return "other";
}

static void routes_register_metrics(void)
{
	size_t i;

	for (i = 0; i < ARRAY_SIZE(routes); i++) {
		const char *m = routes[i].methods;
		while (*m) {
			char method[16];
			size_t len = strcspn(m, " ");
			snprintf(method, sizeof(method), "%.*s", (int)len, m);
			metrics_http_series(method, routes[i].tmpl);
			m += len;
			while (*m == ' ')
				m++;
		}
	}
}

#define REQUEST_ID_MAX 64

/*
 * The client's X-Request-Id when it is short and of characters that are safe
 * in a header and a log line; otherwise a new one (64 bits, unique within
 * the process by a counter, across restarts by the clock).
 */
static void request_id(struct MHD_Connection *conn, char out[REQUEST_ID_MAX + 1])
{
	static const char safe[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
				   "0123456789-_.:+/=@";
	static atomic_ullong counter;
	const char *in = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "X-Request-Id");
	uint64_t x;
	size_t n;

	if (in && (n = strlen(in)) > 0 && n <= REQUEST_ID_MAX && strspn(in, safe) == n) {
		memcpy(out, in, n + 1);
		return;
	}
	/* splitmix64 of clock and counter: spread, so ids do not look sequential */
	x = (uint64_t)util_now_us() ^ ((uint64_t)atomic_fetch_add(&counter, 1) << 40);
	x += 0x9E3779B97F4A7C15ULL;
	x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ULL;
	x = (x ^ (x >> 27)) * 0x94D049BB133111EBULL;
	x ^= x >> 31;
	snprintf(out, REQUEST_ID_MAX + 1, "%016llx", (unsigned long long)x);
}

static void client_address(struct MHD_Connection *conn, char *out, size_t size)
{
	const union MHD_ConnectionInfo *ci =
	    MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	const struct sockaddr *sa = ci ? ci->client_addr : NULL;

	snprintf(out, size, "-");
	if (sa && sa->sa_family == AF_INET)
		inet_ntop(AF_INET, &((const struct sockaddr_in *)(const void *)sa)->sin_addr, out,
			  (socklen_t)size);
	else if (sa && sa->sa_family == AF_INET6)
		inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr,
			  out, (socklen_t)size);
}

/* Whether an Accept-Encoding header accepts gzip (a q of 0 refuses it). */
static int accepts_gzip(const char *ae)
{
	while (ae && *ae) {
		size_t len = strcspn(ae, ",");
		const char *p = ae, *end = ae + len, *q;
		size_t name;

		while (p < end && (*p == ' ' || *p == '\t'))
			p++;
		name = strcspn(p, ";, \t");
		if ((name == 4 && strncasecmp(p, "gzip", 4) == 0) ||
		    (name == 6 && strncasecmp(p, "x-gzip", 6) == 0) || (name == 1 && *p == '*')) {
			q = strstr(p, "q=");
			if (!q || q > end || strtod(q + 2, NULL) > 0)
				return 1;
		}
		ae = *end ? end + 1 : end;
	}
	return 0;
}

static int compressible(const char *type)
{
	return type && (strncmp(type, "text/", 5) == 0 || strstr(type, "json") ||
			strstr(type, "javascript") || strstr(type, "svg"));
}

/* Replaces body with its gzip encoding; -1 (body unchanged) when zlib fails. */
static int gzip_body(struct strbuf *body)
{
	struct strbuf out;
	z_stream zs;
	int rc;

	memset(&zs, 0, sizeof(zs));
	if (deflateInit2(&zs, 6, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
		return -1;
	strbuf_init(&out, deflateBound(&zs, (uLong)body->len) + 32);
	zs.next_in = (Bytef *)body->buf;
	zs.avail_in = (uInt)body->len;
	zs.next_out = (Bytef *)out.buf;
	zs.avail_out = (uInt)out.alloc;
	rc = deflate(&zs, Z_FINISH);
	if (rc == Z_STREAM_END)
		out.len = zs.total_out;
	deflateEnd(&zs);
	if (rc != Z_STREAM_END) {
		strbuf_release(&out);
		return -1;
	}
	strbuf_release(body);
	*body = out;
	return 0;
}

/* The value of a header a handler added, or NULL. */
static char **resp_header(struct api_resp *r, const char *name)
{
	int i;

	for (i = 0; i < r->nhdr; i++)
		if (strcasecmp(r->hdr[i].name, name) == 0)
			return &r->hdr[i].value;
	return NULL;
}

/* Weak comparison (RFC 9110 8.8.3.2) of each entity tag of If-None-Match with etag. */
static int none_match(const char *inm, const char *etag)
{
	size_t elen;

	if (!inm)
		return 0;
	if (strncmp(etag, "W/", 2) == 0)
		etag += 2;
	elen = strlen(etag);
	while (*inm) {
		size_t len;
		inm += strspn(inm, " \t,");
		if (*inm == '*')
			return 1;
		if (strncmp(inm, "W/", 2) == 0)
			inm += 2;
		len = strcspn(inm, ",");
		while (len && (inm[len - 1] == ' ' || inm[len - 1] == '\t'))
			len--;
		if (len == elen && strncmp(inm, etag, len) == 0)
			return 1;
		inm += len;
	}
	return 0;
}

/*
 * What every answer gets on its way out: the request id; for an immutable
 * answer an ETag (a hash of what is sent), Cache-Control, and 304 when the
 * client has it already; gzip when asked for and worth it.
 */
static void apply_conventions(struct api_req *q, struct api_resp *r, const char *rid)
{
	char **etag;

	api_add_header(r, "X-Request-Id", rid);
	if (r->raw || (r->status != 200 && r->status != 304))
		return;
	if (r->immutable && r->status == 200) {
		uint64_t h = 1469598103934665603ULL;
		const char *ct = r->content_type ? r->content_type : "";
		const char *of = r->etag_of ? r->etag_of : r->body.buf;
		size_t i, n = r->etag_of ? strlen(r->etag_of) : r->body.len;
		char tag[32];

		for (; *ct; ct++)
			h = (h ^ (unsigned char)*ct) * 1099511628211ULL;
		for (i = 0; i < n; i++)
			h = (h ^ (unsigned char)of[i]) * 1099511628211ULL;
		/* weak: the same tag stands for the plain and the gzip encoding */
		snprintf(tag, sizeof(tag), "W/\"%016llx\"", (unsigned long long)h);
		api_add_header(r, "ETag", tag);
		/* kept, but asked about again: a finished job can still be extracted anew */
		api_add_header(r, "Cache-Control", "private, no-cache");
		if (none_match(api_header(q, "If-None-Match"), tag)) {
			r->status = 304;
			strbuf_reset(&r->body);
			return;
		}
	}
	if (r->status != 200 || r->body.len < 1024 || !compressible(r->content_type))
		return;
	api_add_header(r, "Vary", "Accept-Encoding");
	if (!accepts_gzip(api_header(q, "Accept-Encoding")) || gzip_body(&r->body) < 0)
		return;
	api_add_header(r, "Content-Encoding", "gzip");
	/* a strong tag a handler set names the plain bytes: the gzip ones differ */
	if ((etag = resp_header(r, "ETag")) && strncmp(*etag, "W/", 2) != 0) {
		size_t n = strlen(*etag) + 3;
		char *weak = xmalloc(n);
		snprintf(weak, n, "W/%s", *etag);
		free(*etag);
		*etag = weak;
	}
}

int api_cursor_parse(const char *s, int64_t *out)
{
	int64_t x = 0;
	size_t i;

	/* 12 digits of base 36 hold more than any seq; more would overflow */
	if (!*s || strlen(s) > 12)
		return -1;
	for (i = 0; s[i]; i++) {
		char c = s[i];
		int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'z' ? c - 'a' + 10 : -1;
		if (d < 0)
			return -1;
		x = x * 36 + d;
	}
	if (x <= 0)
		return -1;
	*out = x;
	return 0;
}

struct link_ctx {
	struct strbuf *sb;
	int first;
};

static void url_escape(struct strbuf *sb, const char *s)
{
	static const char hexd[] = "0123456789ABCDEF";

	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		    c == '-' || c == '_' || c == '.' || c == '~') {
			strbuf_addch(sb, (char)c);
		} else {
			strbuf_addch(sb, '%');
			strbuf_addch(sb, hexd[c >> 4]);
			strbuf_addch(sb, hexd[c & 15]);
		}
	}
}

static enum MHD_Result link_arg(void *cls, enum MHD_ValueKind kind, const char *key,
				const char *value)
{
	struct link_ctx *c = cls;

	(void)kind;
	if (strcmp(key, "cursor") == 0)
		return MHD_YES;
	strbuf_addch(c->sb, c->first ? '?' : '&');
	c->first = 0;
	url_escape(c->sb, key);
	if (value) {
		strbuf_addch(c->sb, '=');
		url_escape(c->sb, value);
	}
	return MHD_YES;
}

void api_link_next(struct api_req *q, struct api_resp *r, const char *cursor)
{
	struct strbuf sb;
	struct link_ctx c = {&sb, 1};

	strbuf_init(&sb, 128);
	strbuf_addch(&sb, '<');
	strbuf_addstr(&sb, q->path);
	MHD_get_connection_values(q->conn, MHD_GET_ARGUMENT_KIND, link_arg, &c);
	strbuf_addstr(&sb, c.first ? "?cursor=" : "&cursor=");
	url_escape(&sb, cursor);
	strbuf_addstr(&sb, ">; rel=\"next\"");
	api_add_header(r, "Link", sb.buf);
	strbuf_release(&sb);
}

/*
 * The access log line and the request metrics of an answered request. The
 * metrics count by route template (a bounded set); the log line names the
 * path as the client sent it too, escaped by the logger like every value.
 */
static void access_log(struct MHD_Connection *conn, const char *route, const char *url,
		       const char *method, int status, int64_t t0)
{
	static const char *const classes[] = {"1xx", "2xx", "3xx", "4xx", "5xx"};
	double s = (double)(util_mono_us() - t0) / 1e6;
	char addr[INET6_ADDRSTRLEN + 1];
	int c = status / 100 - 1;

	client_address(conn, addr, sizeof(addr));
	metrics_http(method_label(method), route, classes[c >= 0 && c < 5 ? c : 4], s);
	log_info("request", "client=%s method=%s route=%s status=%d ms=%.1f path=%s", addr,
		 method_label(method), route, status, s * 1000, url);
}

static int split_path(const char *path, char *buf, size_t size, const char *seg[8])
{
	int n = 0;
	char *p, *save = NULL;

	snprintf(buf, size, "%s", path);
	for (p = strtok_r(buf, "/", &save); p; p = strtok_r(NULL, "/", &save)) {
		if (n == 8)
			return -1;
		seg[n++] = p;
	}
	return n;
}

/* The route template of a path, before a request is set up. */
static const char *early_route(const char *url)
{
	char buf[512];
	const char *seg[8];
	int n;

	if (strlen(url) >= sizeof(buf) || (n = split_path(url, buf, sizeof(buf), seg)) < 0)
		return "other";
	/* the templates are static strings: nothing points into buf afterwards */
	return route_template(seg, n);
}

static struct conn_state *conn_state_new(void)
{
	struct conn_state *cs = xcalloc(1, sizeof(*cs));

	strbuf_init(&cs->body, 0);
	return cs;
}

/*
 * Sees the request's URI as the client sent it, before libmicrohttpd decodes
 * it: a %00 would end the decoded path early (`/v1/scenarios/a%00b` would
 * name scenario `a`). What it returns is the request's conn_state.
 */
static void *on_uri(void *cls, const char *uri, struct MHD_Connection *conn)
{
	struct conn_state *cs = conn_state_new();

	(void)cls;
	(void)conn;
	cs->refuse = api_guard_uri(uri, cs->detail, sizeof(cs->detail));
	return cs;
}

/* Answers a request refused by its URI alone as soon as its headers are in. */
static enum MHD_Result refuse_at_once(struct MHD_Connection *conn, struct conn_state *cs,
				      const char *url, const char *method)
{
	char rid[REQUEST_ID_MAX + 1];
	struct api_resp r;
	enum MHD_Result ret;

	api_resp_init(&r);
	r.instance = url;
	request_id(conn, rid);
	api_problem(&r, cs->refuse, api_guard_title(cs->refuse), cs->detail, NULL);
	api_add_header(&r, "X-Request-Id", rid);
	log_set_request_id(rid);
	access_log(conn, early_route(url), url, method, r.status, util_mono_us());
	log_set_request_id(NULL);
	ret = send_resp(conn, &r);
	api_resp_release(&r);
	cs->too_large = 2; /* answered: whatever body follows is dropped */
	return ret;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
				  const char *method, const char *version, const char *upload_data,
				  size_t *upload_data_size, void **con_cls)
{
	struct api *a = cls;
	struct conn_state *cs = *con_cls;
	struct api_req q;
	struct api_resp r;
	struct perr e = {0};
	char pathbuf[512], rid[REQUEST_ID_MAX + 1];
	enum MHD_Result ret;
	int64_t t0;

	(void)version;
	if (!cs)
		*con_cls = cs = conn_state_new();
	if (!cs->started) {
		const char *cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
							     MHD_HTTP_HEADER_CONTENT_LENGTH);
		cs->started = 1;
		if (!cs->refuse)
			cs->refuse = api_guard_headers(conn, cs->detail, sizeof(cs->detail));
		if (cs->refuse)
			return refuse_at_once(conn, cs, url, method);
		if (cl && strtoull(cl, NULL, 10) > a->deps.cfg->max_body_bytes) {
			/* refuse before reading: the client may stop sending now */
			api_resp_init(&r);
			r.instance = url;
			request_id(conn, rid);
			api_fail(&r, PERR_TOO_LARGE, NULL, "the body is larger than %zu bytes",
				 a->deps.cfg->max_body_bytes);
			api_add_header(&r, "X-Request-Id", rid);
			log_set_request_id(rid);
			access_log(conn, early_route(url), url, method, 413, util_mono_us());
			log_set_request_id(NULL);
			ret = send_resp(conn, &r);
			api_resp_release(&r);
			cs->too_large = 2; /* answered */
			return ret;
		}
		return MHD_YES;
	}
	if (*upload_data_size) {
		if (!cs->too_large) {
			if (cs->body.len + *upload_data_size > a->deps.cfg->max_body_bytes) {
				cs->too_large = 1;
				strbuf_release(&cs->body);
				strbuf_init(&cs->body, 0);
			} else {
				strbuf_add(&cs->body, upload_data, *upload_data_size);
			}
		}
		*upload_data_size = 0;
		return MHD_YES;
	}
	if (cs->too_large == 2)
		return MHD_YES;

	api_guard_received(conn);
	t0 = util_mono_us();
	request_id(conn, rid);
	log_set_request_id(rid);
	api_resp_init(&r);
	r.instance = url;
	memset(&q, 0, sizeof(q));
	q.conn = conn;
	q.deps = &a->deps;
	/* HEAD is answered as GET; libmicrohttpd leaves the body out */
	q.head = strcmp(method, "HEAD") == 0;
	q.method = q.head ? "GET" : method;
	q.path = url;
	q.route = "other";
	q.body = cs->body.buf;
	q.body_len = cs->body.len;
	if (cs->too_large) {
		api_fail(&r, PERR_TOO_LARGE, NULL, "the body is larger than %zu bytes",
			 a->deps.cfg->max_body_bytes);
	} else if ((q.nseg = split_path(url, pathbuf, sizeof(pathbuf), q.seg)) < 0 ||
		   strlen(url) >= sizeof(pathbuf)) {
		api_fail(&r, PERR_NOT_FOUND, NULL, "no such resource");
	} else {
		q.route = route_template(q.seg, q.nseg);
		if (api_guard_origin(&q, &r) < 0)
			; /* r holds the 403 */
		else if (!(q.db = api_db(&a->deps, &e)))
			api_perr(&r, &e);
		else
			route(&q, &r);
	}
	apply_conventions(&q, &r, rid);
	access_log(conn, q.route, url, method, r.status, t0);
	log_set_request_id(NULL);
	cs->render_bytes = r.render_bytes;
	ret = send_resp(conn, &r);
	api_resp_release(&r);
	return ret;
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
			 enum MHD_RequestTerminationCode toe)
{
	struct conn_state *cs = *con_cls;

	(void)cls;
	(void)toe;
	api_guard_answered(conn);
	if (!cs)
		return;
	api_guard_render_end(cs->render_bytes);
	strbuf_release(&cs->body);
	free(cs);
	*con_cls = NULL;
}

/*
 * libmicrohttpd's messages. Under a flood of connections it writes one for
 * each it refuses (the per-address or total limit): a message repeated within
 * HTTP_LOG_QUIET_US is counted instead of written, and the count goes out with
 * the next line written, so an attacker cannot fill the disk with the log.
 */
#define HTTP_LOG_QUIET_US (10 * 1000000LL)

static pthread_mutex_t mhd_log_lock = PTHREAD_MUTEX_INITIALIZER; /* guards the three below */
static char mhd_log_last[512];
static int64_t mhd_log_last_us;
static long mhd_log_repeated;

static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
	char buf[512];
	size_t n;
	int64_t now = util_mono_us();
	long repeated;

	(void)cls;
	vsnprintf(buf, sizeof(buf), fmt, ap);
	n = strlen(buf);
	while (n && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
		buf[--n] = '\0';
	pthread_mutex_lock(&mhd_log_lock);
	if (strcmp(buf, mhd_log_last) == 0 && now - mhd_log_last_us < HTTP_LOG_QUIET_US) {
		mhd_log_repeated++;
		pthread_mutex_unlock(&mhd_log_lock);
		return;
	}
	repeated = mhd_log_repeated;
	mhd_log_repeated = 0;
	mhd_log_last_us = now;
	snprintf(mhd_log_last, sizeof(mhd_log_last), "%s", buf);
	pthread_mutex_unlock(&mhd_log_lock);
	if (repeated)
		log_warn("http", "detail=\"%s\" repeated_before=%ld", buf, repeated);
	else
		log_warn("http", "detail=\"%s\"", buf);
}

struct api *api_start(const struct api_deps *deps, struct perr *e)
{
	struct api *a = xcalloc(1, sizeof(*a));
	struct sockaddr_in sin;
	const union MHD_DaemonInfo *info;

	a->deps = *deps;
	api_auth_init();
	routes_register_metrics();
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_port = htons((uint16_t)deps->cfg->listen_port);
	if (strcmp(deps->cfg->listen_host, "localhost") == 0)
		sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	else if (inet_pton(AF_INET, deps->cfg->listen_host, &sin.sin_addr) != 1) {
		free(a);
		return perr_set(e, PERR_INVALID, "listen host '%s' is not an IPv4 address",
				deps->cfg->listen_host),
		       NULL;
	}
	a->guard = api_guard_start(deps->cfg->request_timeout_s, deps->cfg->max_connections);
	if (!a->guard) {
		free(a);
		return perr_set(e, PERR_INTERNAL, "cannot start the request deadline thread"), NULL;
	}
	a->d = MHD_start_daemon(
	    MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME |
		MHD_USE_ITC | MHD_USE_ERROR_LOG,
	    0, NULL, NULL, on_request, a, MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, a,
	    MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sin, MHD_OPTION_THREAD_POOL_SIZE,
	    (unsigned)deps->cfg->http_threads, MHD_OPTION_CONNECTION_TIMEOUT,
	    (unsigned)deps->cfg->connection_timeout_s, MHD_OPTION_CONNECTION_LIMIT,
	    (unsigned)deps->cfg->max_connections, MHD_OPTION_PER_IP_CONNECTION_LIMIT,
	    (unsigned)deps->cfg->max_connections_per_ip, MHD_OPTION_LISTEN_BACKLOG_SIZE, 1024u,
	    MHD_OPTION_NOTIFY_COMPLETED, on_completed, a, MHD_OPTION_NOTIFY_CONNECTION,
	    api_guard_notify, a->guard, MHD_OPTION_URI_LOG_CALLBACK, on_uri, a,
	    MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)API_GUARD_MHD_MEMORY, MHD_OPTION_END);
	if (!a->d) {
		api_guard_stop(a->guard);
		free(a);
		return perr_set(e, PERR_INVALID, "cannot listen on %s:%d (in use, or not allowed)",
				deps->cfg->listen_host, deps->cfg->listen_port),
		       NULL;
	}
	info = MHD_get_daemon_info(a->d, MHD_DAEMON_INFO_BIND_PORT);
	a->port = info ? info->port : deps->cfg->listen_port;
	return a;
}

int api_port(struct api *a)
{
	return a->port;
}

void api_quiesce(struct api *a)
{
	MHD_socket s = MHD_quiesce_daemon(a->d);

	if (s != MHD_INVALID_SOCKET)
		close(s);
}

void api_stop(struct api *a)
{
	size_t i;

	if (!a)
		return;
	MHD_stop_daemon(a->d);
	api_guard_stop(a->guard);
	pthread_mutex_lock(&dbs_lock);
	for (i = 0; i < ndbs; i++)
		db_close(dbs[i]);
	free(dbs);
	dbs = NULL;
	ndbs = 0;
	pthread_mutex_unlock(&dbs_lock);
	free(a);
}
