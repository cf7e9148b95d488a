/*
 * http.c - the libmicrohttpd daemon, request bodies, routing. See api.h.
 */
#include "api/api.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "server/log.h"
#include "server/metrics.h"

struct api {
	struct MHD_Daemon *d;
	struct api_deps deps;
	int port;
};

/* Per-connection state while a request body arrives. */
struct conn_state {
	struct strbuf body;
	int too_large;
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
	char detail[300];

	if (!q->body_len) {
		api_problem(r, 400, "Bad Request", "the request needs a JSON body", NULL);
		return NULL;
	}
	if (json_depth(q->body, q->body_len) > q->deps->cfg->max_json_depth) {
		snprintf(detail, sizeof(detail), "the JSON body is nested deeper than %d levels",
			 q->deps->cfg->max_json_depth);
		api_problem(r, 400, "Bad Request", detail, NULL);
		return NULL;
	}
	j = json_loadb(q->body, q->body_len, JSON_REJECT_DUPLICATES, &jerr);
	if (!j) {
		snprintf(detail, sizeof(detail), "the body is not valid JSON: %s (line %d, column %d)",
			 jerr.text, jerr.line, jerr.column);
		api_problem(r, 400, "Bad Request", detail, NULL);
		return NULL;
	}
	if (!json_is_object(j)) {
		json_decref(j);
		api_problem(r, 400, "Bad Request", "the body must be a JSON object", NULL);
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
	char detail[128];

	snprintf(detail, sizeof(detail), "this resource allows %s", allow);
	r->allow = allow;
	api_problem(r, 405, "Method Not Allowed", detail, NULL);
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
			if (n == 3) {
				if (method_is(q, "GET"))
					return api_jobs_get(q, r, s[2]);
				return not_allowed(r, "GET");
			}
			if (n == 4 && (strcmp(s[3], "transcript") == 0 ||
				       strcmp(s[3], "transcript.md") == 0)) {
				const char *accept = api_header(q, "Accept");
				int md = strcmp(s[3], "transcript.md") == 0 ||
					 (accept && strstr(accept, "text/markdown"));
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
	api_problem(r, 404, "Not Found", "no such resource; the API lives under /v1/", NULL);
}

void api_add_header(struct api_resp *r, const char *name, const char *value)
{
	if (r->nhdr >= (int)ARRAY_SIZE(r->hdr))
		return;
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
				r->content_type ? r->content_type : "application/json; charset=utf-8");
	MHD_add_response_header(resp, "Cache-Control", "no-store");
	MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
	if (r->location)
		MHD_add_response_header(resp, "Location", r->location);
	if (r->allow)
		MHD_add_response_header(resp, "Allow", r->allow);
	if (r->retry_after > 0) {
		snprintf(ra, sizeof(ra), "%d", r->retry_after);
		MHD_add_response_header(resp, "Retry-After", ra);
	}
	add_headers(resp, r);
	ret = MHD_queue_response(conn, (unsigned)r->status, resp);
	MHD_destroy_response(resp);
	return ret;
}

static void resp_init(struct api_resp *r)
{
	memset(r, 0, sizeof(*r));
	strbuf_init(&r->body, 256);
	r->status = 200;
}

static void resp_release(struct api_resp *r)
{
	int i;

	for (i = 0; i < r->nhdr; i++)
		free(r->hdr[i].value);
	if (r->raw)
		MHD_destroy_response(r->raw);
	strbuf_release(&r->body);
	free(r->location);
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

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
				  const char *method, const char *version,
				  const char *upload_data, size_t *upload_data_size,
				  void **con_cls)
{
	struct api *a = cls;
	struct conn_state *cs = *con_cls;
	struct api_req q;
	struct api_resp r;
	struct perr e = {0};
	char pathbuf[512];
	enum MHD_Result ret;
	int64_t t0;

	(void)version;
	if (!cs) {
		const char *cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
							     MHD_HTTP_HEADER_CONTENT_LENGTH);
		cs = xcalloc(1, sizeof(*cs));
		strbuf_init(&cs->body, 0);
		*con_cls = cs;
		if (cl && strtoull(cl, NULL, 10) > a->deps.cfg->max_body_bytes) {
			char detail[128];
			/* refuse before reading: the client may stop sending now */
			resp_init(&r);
			snprintf(detail, sizeof(detail), "the body is larger than %zu bytes",
				 a->deps.cfg->max_body_bytes);
			api_problem(&r, 413, "Content Too Large", detail, NULL);
			ret = send_resp(conn, &r);
			resp_release(&r);
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

	t0 = util_mono_us();
	resp_init(&r);
	memset(&q, 0, sizeof(q));
	q.conn = conn;
	q.deps = &a->deps;
	q.method = method;
	q.path = url;
	q.body = cs->body.buf;
	q.body_len = cs->body.len;
	if (cs->too_large) {
		char detail[128];
		snprintf(detail, sizeof(detail), "the body is larger than %zu bytes",
			 a->deps.cfg->max_body_bytes);
		api_problem(&r, 413, "Content Too Large", detail, NULL);
	} else if ((q.nseg = split_path(url, pathbuf, sizeof(pathbuf), q.seg)) < 0 ||
		   strlen(url) >= sizeof(pathbuf)) {
		api_problem(&r, 404, "Not Found", "no such resource", NULL);
	} else if (!(q.db = api_db(&a->deps, &e))) {
		api_perr(&r, &e);
	} else {
		route(&q, &r);
	}
	metrics_http(r.status);
	log_debug("request", "method=%s path=%s status=%d us=%lld", method, url, r.status,
		  (long long)(util_mono_us() - t0));
	ret = send_resp(conn, &r);
	resp_release(&r);
	return ret;
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
			 enum MHD_RequestTerminationCode toe)
{
	struct conn_state *cs = *con_cls;

	(void)cls;
	(void)conn;
	(void)toe;
	if (!cs)
		return;
	strbuf_release(&cs->body);
	free(cs);
	*con_cls = NULL;
}

static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
	char buf[512];
	size_t n;

	(void)cls;
	vsnprintf(buf, sizeof(buf), fmt, ap);
	n = strlen(buf);
	while (n && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
		buf[--n] = '\0';
	log_warn("http", "detail=\"%s\"", buf);
}

struct api *api_start(const struct api_deps *deps, struct perr *e)
{
	struct api *a = xcalloc(1, sizeof(*a));
	struct sockaddr_in sin;
	const union MHD_DaemonInfo *info;

	a->deps = *deps;
	api_auth_init();
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
	a->d = MHD_start_daemon(
	    MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ITC |
		MHD_USE_ERROR_LOG,
	    0, NULL, NULL, on_request, a, MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, a,
	    MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sin,
	    MHD_OPTION_THREAD_POOL_SIZE, (unsigned)deps->cfg->http_threads,
	    MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)deps->cfg->connection_timeout_s,
	    MHD_OPTION_CONNECTION_LIMIT, (unsigned)deps->cfg->max_connections,
	    MHD_OPTION_PER_IP_CONNECTION_LIMIT, (unsigned)deps->cfg->max_connections_per_ip,
	    MHD_OPTION_LISTEN_BACKLOG_SIZE, 1024u, MHD_OPTION_NOTIFY_COMPLETED, on_completed, a,
	    MHD_OPTION_END);
	if (!a->d) {
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
	pthread_mutex_lock(&dbs_lock);
	for (i = 0; i < ndbs; i++)
		db_close(dbs[i]);
	free(dbs);
	dbs = NULL;
	ndbs = 0;
	pthread_mutex_unlock(&dbs_lock);
	free(a);
}
