/*
 * guard.c - Host and Origin checks, the request deadline, URI checks. See guard.h.
 */
#include "api/guard.h"

#include <arpa/inet.h>
#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>

#include "api/api.h"
#include "server/log.h"

/* ---- Host and Origin ---- */

static int name_listed(char *const *list, size_t n, const char *s, size_t len)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (strlen(list[i]) == len && strncasecmp(list[i], s, len) == 0)
			return 1;
	return 0;
}

/* The host part of a Host header: "name" of "name:port", "[v6]" of "[v6]:port". */
static size_t host_part(const char *host)
{
	const char *colon;

	if (host[0] == '[') {
		const char *end = strchr(host, ']');
		return end ? (size_t)(end - host) + 1 : strlen(host);
	}
	colon = strchr(host, ':');
	return colon ? (size_t)(colon - host) : strlen(host);
}

static int host_allowed(const struct config *cfg, const char *host)
{
	size_t n = host_part(host);
	char name[256];
	struct in_addr a;

	if (n == 0 || n >= sizeof(name))
		return 0;
	memcpy(name, host, n);
	name[n] = '\0';
	if (strcasecmp(name, "localhost") == 0 || strcasecmp(name, cfg->listen_host) == 0)
		return 1;
	if (strcmp(cfg->listen_host, "localhost") == 0 && strcmp(name, "127.0.0.1") == 0)
		return 1;
	/* listening on every address: any address literal is one of ours; a rebinding page
	 * can only ever send a name */
	if (strcmp(cfg->listen_host, "0.0.0.0") == 0 && inet_pton(AF_INET, name, &a) == 1)
		return 1;
	/* an entry names a host on any port, or one "host:port" */
	return name_listed(cfg->allowed_hosts, cfg->nallowed_hosts, name, n) ||
	       name_listed(cfg->allowed_hosts, cfg->nallowed_hosts, host, strlen(host));
}

static int changes_state(const char *method)
{
	return strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0 &&
	       strcmp(method, "OPTIONS") != 0;
}

static int origin_allowed(const struct config *cfg, const char *origin, const char *host)
{
	size_t hn = host ? strlen(host) : 0;

	/* our own pages: the origin is this very scheme, host and port */
	if (host && strncasecmp(origin, "http://", 7) == 0 && strlen(origin + 7) == hn &&
	    strncasecmp(origin + 7, host, hn) == 0)
		return 1;
	return name_listed(cfg->allowed_origins, cfg->nallowed_origins, origin, strlen(origin));
}

int api_guard_origin(struct api_req *q, struct api_resp *r)
{
	const struct config *cfg = q->deps->cfg;
	const char *host = api_header(q, "Host"), *origin;
	char detail[320];

	/* no Host at all is an HTTP/1.0 client, never a browser */
	if (host && !host_allowed(cfg, host)) {
		snprintf(detail, sizeof(detail),
			 "the Host '%.200s' is not this server's; add it to allowed_hosts to "
			 "serve it",
			 host);
		api_problem(r, 403, "Forbidden", detail, NULL);
		return -1;
	}
	if (!changes_state(q->method))
		return 0;
	origin = api_header(q, "Origin");
	if (origin && !origin_allowed(cfg, origin, host)) {
		snprintf(detail, sizeof(detail),
			 "a request from the page at '%.200s' cannot change anything here; add "
			 "the origin to allowed_origins to let it",
			 origin);
		api_problem(r, 403, "Forbidden", detail, NULL);
		return -1;
	}
	return 0;
}

/* ---- the URI before decoding ---- */

int api_guard_uri(const char *uri, char *detail, size_t size)
{
	const char *p;

	if (strlen(uri) > API_GUARD_MAX_URI) {
		snprintf(detail, size, "the URI is longer than %d bytes", API_GUARD_MAX_URI);
		return 414;
	}
	for (p = uri; (p = strchr(p, '%')); p++) {
		if (p[1] == '0' && p[2] == '0') {
			snprintf(detail, size, "the path or query holds a NUL byte (%%00)");
			return 400;
		}
	}
	return 0;
}

static enum MHD_Result add_header_size(void *cls, enum MHD_ValueKind kind, const char *key,
				       const char *value)
{
	size_t *sum = cls;

	(void)kind;
	*sum += strlen(key) + (value ? strlen(value) : 0) + 4; /* ": " and CRLF */
	return MHD_YES;
}

int api_guard_headers(struct MHD_Connection *c, char *detail, size_t size)
{
	size_t sum = 0;

	MHD_get_connection_values(c, MHD_HEADER_KIND, add_header_size, &sum);
	if (sum <= API_GUARD_MAX_HEADERS)
		return 0;
	snprintf(detail, size, "the request's headers are %zu bytes, more than %d", sum,
		 API_GUARD_MAX_HEADERS);
	return 431;
}

const char *api_guard_title(int status)
{
	switch (status) {
	case 414:
		return "URI Too Long";
	case 431:
		return "Request Header Fields Too Large";
	default:
		return "Bad Request";
	}
}

/* ---- large answers ---- */

static pthread_mutex_t render_lock = PTHREAD_MUTEX_INITIALIZER; /* guards rendering */
static size_t rendering; /* bytes of text whose answers are being built */

int api_guard_render_begin(size_t bytes)
{
	int ok;

	if (bytes < API_GUARD_RENDER_FREE)
		return 0;
	pthread_mutex_lock(&render_lock);
	ok = rendering == 0 || rendering + bytes <= API_GUARD_RENDER_BUDGET;
	if (ok)
		rendering += bytes;
	pthread_mutex_unlock(&render_lock);
	return ok ? 0 : -1;
}

void api_guard_render_end(size_t bytes)
{
	if (bytes < API_GUARD_RENDER_FREE)
		return;
	pthread_mutex_lock(&render_lock);
	rendering -= bytes;
	pthread_mutex_unlock(&render_lock);
	/* each HTTP thread allocates from its own malloc arena, which keeps what was freed:
	 * without this, large answers built on four threads in turn would hold four times
	 * the memory of one */
	malloc_trim(0);
}

/* ---- the request deadline ---- */

struct guard_conn {
	struct api_guard *g;
	MHD_socket fd;
	int64_t since_us; /* its request is awaited since; 0: one is being answered */
	struct guard_conn *prev, *next;
};

struct api_guard {
	pthread_mutex_t lock; /* guards the list, nconns, every since_us, stopping */
	pthread_cond_t wake;
	struct guard_conn list; /* sentinel of a circular list */
	int64_t timeout_us;
	size_t nconns, pressure; /* connections open; as many as make the pressure deadline */
	int stopping;
	pthread_t thread;
};

/* How often the deadlines are looked at: the deadline is kept to within this. */
#define GUARD_TICK_MS 250
/*
 * The deadline once three quarters of max_connections are open. Past
 * max_connections libmicrohttpd accepts nobody, so when many addresses
 * trickle at once (more than max_connections / max_connections_per_ip of
 * them), the time each may hold a slot decides how soon a new client is in.
 */
#define GUARD_PRESSURE_US (2 * 1000000LL)

static void *guard_main(void *arg)
{
	struct api_guard *g = arg;
	struct timespec ts;
	int64_t last_log = 0;
	long cut = 0;

	pthread_mutex_lock(&g->lock);
	while (!g->stopping) {
		int64_t now = util_mono_us(), limit = g->timeout_us;
		struct guard_conn *c;

		/* slots running out: whoever is still sending a request gets less time */
		if (g->nconns >= g->pressure && limit > GUARD_PRESSURE_US)
			limit = GUARD_PRESSURE_US;
		for (c = g->list.next; c != &g->list; c = c->next) {
			if (c->since_us && now - c->since_us > limit) {
				/* libmicrohttpd sees the end of the stream and closes it */
				shutdown(c->fd, SHUT_RDWR);
				c->since_us = 0;
				cut++;
			}
		}
		if (cut && now - last_log > 10 * 1000000LL) {
			log_warn("connections cut",
				 "count=%ld reason=\"request not complete within "
				 "request_timeout_s=%lld\"",
				 cut, (long long)(g->timeout_us / 1000000));
			cut = 0;
			last_log = now;
		}
		clock_gettime(CLOCK_MONOTONIC, &ts);
		ts.tv_nsec += GUARD_TICK_MS * 1000000L;
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		pthread_cond_timedwait(&g->wake, &g->lock, &ts);
	}
	pthread_mutex_unlock(&g->lock);
	return NULL;
}

struct api_guard *api_guard_start(int timeout_s, int max_connections)
{
	struct api_guard *g = xcalloc(1, sizeof(*g));
	pthread_condattr_t ca;

	pthread_mutex_init(&g->lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&g->wake, &ca);
	pthread_condattr_destroy(&ca);
	g->list.next = g->list.prev = &g->list;
	g->timeout_us = (int64_t)timeout_s * 1000000;
	g->pressure = (size_t)max_connections * 3 / 4;
	if (pthread_create(&g->thread, NULL, guard_main, g) != 0) {
		pthread_cond_destroy(&g->wake);
		pthread_mutex_destroy(&g->lock);
		free(g);
		return NULL;
	}
	return g;
}

void api_guard_stop(struct api_guard *g)
{
	if (!g)
		return;
	pthread_mutex_lock(&g->lock);
	g->stopping = 1;
	pthread_cond_signal(&g->wake);
	pthread_mutex_unlock(&g->lock);
	pthread_join(g->thread, NULL);
	/* libmicrohttpd has stopped: every connection was taken off the list */
	pthread_cond_destroy(&g->wake);
	pthread_mutex_destroy(&g->lock);
	free(g);
}

void api_guard_notify(void *cls, struct MHD_Connection *c, void **socket_context,
		      enum MHD_ConnectionNotificationCode toe)
{
	struct api_guard *g = cls;
	struct guard_conn *gc;
	const union MHD_ConnectionInfo *info;

	if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
		info = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
		if (!info)
			return;
		gc = xcalloc(1, sizeof(*gc));
		gc->g = g;
		gc->fd = info->connect_fd;
		pthread_mutex_lock(&g->lock);
		gc->since_us = util_mono_us();
		g->nconns++;
		gc->next = &g->list;
		gc->prev = g->list.prev;
		g->list.prev->next = gc;
		g->list.prev = gc;
		pthread_mutex_unlock(&g->lock);
		*socket_context = gc;
		return;
	}
	gc = *socket_context;
	if (!gc)
		return;
	pthread_mutex_lock(&g->lock);
	gc->prev->next = gc->next;
	gc->next->prev = gc->prev;
	g->nconns--;
	pthread_mutex_unlock(&g->lock);
	free(gc);
	*socket_context = NULL;
}

static struct guard_conn *conn_of(struct MHD_Connection *c)
{
	const union MHD_ConnectionInfo *info =
	    MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);

	return info ? info->socket_context : NULL;
}

static void set_deadline(struct MHD_Connection *c, int on)
{
	struct guard_conn *gc = conn_of(c);

	if (!gc)
		return;
	pthread_mutex_lock(&gc->g->lock);
	gc->since_us = on ? util_mono_us() : 0;
	pthread_mutex_unlock(&gc->g->lock);
}

void api_guard_received(struct MHD_Connection *c)
{
	set_deadline(c, 0);
}

void api_guard_answered(struct MHD_Connection *c)
{
	set_deadline(c, 1);
}
