/*
 * guard.h - what a request must pass before it is routed: where it comes from
 * (Host and Origin, DESIGN §9), how long it may take to arrive, and what its
 * URI may hold.
 *
 * DESIGN: a page on another site can make the user's browser send requests to
 * parleyd (a form or text/plain POST needs no CORS preflight), and a DNS-
 * rebinding page can even read the answers, its own name now pointing at
 * 127.0.0.1. Both show in the headers the browser must send: a rebinding page
 * sends its own name as Host, a cross-site request its own Origin. So a Host
 * that is not the listen address, `localhost` or in allowed_hosts gets 403, and
 * so does a state-changing request whose Origin is neither this server's own
 * nor in allowed_origins. Clients that send no Origin (curl, scripts) are not
 * browsers acting for a page and pass.
 *
 * libmicrohttpd's connection timeout restarts on every byte, so a client that
 * trickles a byte every few seconds would hold its connection forever. The
 * guard keeps every connection on a list with a deadline: the request's
 * headers and body must have arrived within request_timeout_s of the
 * connection's start (or of the previous answer on a kept-alive connection),
 * 2 s once three quarters of max_connections are open (past max_connections
 * nobody new gets in: how long a trickler may hold a slot is then how long a
 * new client waits). A thread of its own shuts down the sockets that miss
 * it, and libmicrohttpd then closes them as it does any connection the
 * client dropped. The list is
 * changed only under its lock, and libmicrohttpd tells the guard a connection
 * is closed before it closes the socket, so the guard never touches a socket
 * number that has been reused.
 */
#ifndef PARLEY_GUARD_H
#define PARLEY_GUARD_H

#include <microhttpd.h>
#include <stddef.h>

struct api_req;
struct api_resp;
struct config;

/* 0 when Host and Origin may go on; -1 with r filled (403) otherwise. */
int api_guard_origin(struct api_req *q, struct api_resp *r);

/*
 * What is wrong with a raw request URI before libmicrohttpd decodes it (a
 * decoded %00 would silently end the path): 0 when nothing, else the status
 * to answer (400 for a NUL, 414 for a URI over API_GUARD_MAX_URI) with the
 * reason in detail.
 */
#define API_GUARD_MAX_URI 8192
int api_guard_uri(const char *uri, char *detail, size_t size);
/*
 * 431 with the reason in detail when the request's headers together pass
 * API_GUARD_MAX_HEADERS bytes, else 0. libmicrohttpd's own refusals (past its
 * per-connection memory, API_GUARD_MHD_MEMORY) are HTML pages it writes
 * itself with no hook to change them; with these limits well below its own,
 * every oversized request a client can plausibly send gets a problem document.
 */
#define API_GUARD_MAX_HEADERS (32 * 1024)
#define API_GUARD_MHD_MEMORY (256 * 1024)
int api_guard_headers(struct MHD_Connection *c, char *detail, size_t size);
/* The title of a status api_guard_uri() or api_guard_headers() returns. */
const char *api_guard_title(int status);

/*
 * Large answers. A transcript is built whole in memory, a few times the size
 * of its turns' text (the text, its JSON, its HTML, the answer): eight readers
 * of a job with 50 MB turns at once would take gigabytes. A reader takes the
 * job's text size from a process-wide budget of API_GUARD_RENDER_BUDGET bytes
 * until its answer has been sent; when the budget is taken it gets -1 (to
 * answer 503 with Retry-After) instead of waiting on an HTTP thread. A job
 * under API_GUARD_RENDER_FREE bytes (every ordinary one) takes nothing, and a
 * job larger than the whole budget is served when no other large one is.
 */
#define API_GUARD_RENDER_BUDGET ((size_t)64 << 20)
#define API_GUARD_RENDER_FREE ((size_t)1 << 20)
int api_guard_render_begin(size_t bytes);
void api_guard_render_end(size_t bytes);

struct api_guard;

/* Starts the deadline thread: request_timeout_s, and max_connections for the
 * shorter deadline (2 s) once three quarters of them are open. */
struct api_guard *api_guard_start(int timeout_s, int max_connections);
void api_guard_stop(struct api_guard *g);
/* MHD_OPTION_NOTIFY_CONNECTION: puts connections on the list and takes them off. */
void api_guard_notify(void *cls, struct MHD_Connection *c, void **socket_context,
		      enum MHD_ConnectionNotificationCode toe);
/* The whole request has arrived: no deadline while it is answered. */
void api_guard_received(struct MHD_Connection *c);
/* The answer is done: the next request on this connection has its own deadline. */
void api_guard_answered(struct MHD_Connection *c);

#endif
