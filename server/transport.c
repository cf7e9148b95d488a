/*
 * transport.c - one HTTP exchange with a model server. See transport.h.
 */
#include "server/transport.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define POLL_MS 100

#define DEFAULT_CONNECT_MS 3000L
#define DEFAULT_FIRST_BYTE_MS 300000L
#define DEFAULT_IDLE_OLLAMA_MS 120000L
#define DEFAULT_IDLE_LLAMA_MS 60000L
#define DEFAULT_TOTAL_MS 1800000L

/*
 * The curl multi handle of the calling thread. Every worker thread gets its own; nothing
 * else touches it, so it needs no lock.
 */
static pthread_once_t multi_once = PTHREAD_ONCE_INIT;
static pthread_key_t multi_key;

static void multi_free(void *multi)
{
	curl_multi_cleanup(multi);
}

static void multi_key_create(void)
{
	if (pthread_key_create(&multi_key, multi_free)) {
		fprintf(stderr, "fatal: cannot create a thread key for curl\n");
		abort();
	}
}

static CURLM *thread_multi(void)
{
	CURLM *multi;

	pthread_once(&multi_once, multi_key_create);
	multi = pthread_getspecific(multi_key);
	if (!multi) {
		multi = curl_multi_init();
		if (multi && pthread_setspecific(multi_key, multi)) {
			curl_multi_cleanup(multi);
			multi = NULL;
		}
	}
	return multi;
}

static size_t call_write(char *ptr, size_t size, size_t nmemb, void *ud)
{
	struct transport_call *c = ud;
	size_t n = size * nmemb;

	c->last_byte_us = util_mono_us();
	if (!c->first_byte_us) {
		long status = 0;

		c->first_byte_us = c->last_byte_us;
		curl_easy_getinfo(c->curl, CURLINFO_RESPONSE_CODE, &status);
		c->status = (int)status;
	}
	if (c->stream && c->status / 100 == 2) {
		c->received += n;
		if (c->received_max && c->received > c->received_max) {
			c->flooded = 1;
			return 0;
		}
		if (chat_stream_feed(c->stream, ptr, n, NULL)) {
			c->stream_failed = 1;
			return 0; /* not n: curl aborts with CURLE_WRITE_ERROR */
		}
		return n;
	}
	if (c->body.len < c->body_max) {
		size_t room = c->body_max - c->body.len;

		strbuf_add(&c->body, ptr, n < room ? n : room);
		c->body_cut |= n > room;
	} else {
		/* Read on rather than abort, so that the connection can be reused. */
		c->body_cut |= n > 0;
	}
	return n;
}

static int call_progress(void *ud, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
			 curl_off_t ulnow)
{
	struct transport_call *c = ud;
	int64_t now = util_mono_us();

	(void)dltotal, (void)dlnow, (void)ultotal, (void)ulnow;
	if (c->cancel && atomic_load(c->cancel))
		c->abort = TRANSPORT_ABORT_CANCEL;
	else if (now - c->t0_us > (int64_t)c->total_ms * 1000)
		c->abort = TRANSPORT_ABORT_TOTAL;
	else if (!c->first_byte_us && now - c->t0_us > (int64_t)c->first_byte_ms * 1000)
		c->abort = TRANSPORT_ABORT_FIRST_BYTE;
	else if (c->first_byte_us && now - c->last_byte_us > (int64_t)c->idle_ms * 1000)
		c->abort = TRANSPORT_ABORT_IDLE;
	return c->abort != TRANSPORT_ABORT_NONE;
}

static long pick_ms(long configured, long dflt)
{
	return configured > 0 ? configured : dflt;
}

void transport_init(struct transport_call *c, CURL *curl, const struct backend_cfg *be,
		    struct chat_stream *stream, size_t body_max)
{
	memset(c, 0, sizeof(*c));
	c->curl = curl;
	c->be = be;
	c->stream = stream;
	strbuf_init(&c->body, 0);
	c->body_max = body_max;
	c->connect_ms = pick_ms(be->connect_timeout_ms, DEFAULT_CONNECT_MS);
	c->first_byte_ms = pick_ms(be->first_byte_timeout_ms, DEFAULT_FIRST_BYTE_MS);
	c->idle_ms =
	    pick_ms(be->idle_timeout_ms,
		    be->kind == BACKEND_LLAMA ? DEFAULT_IDLE_LLAMA_MS : DEFAULT_IDLE_OLLAMA_MS);
	c->total_ms = pick_ms(be->total_timeout_ms, DEFAULT_TOTAL_MS);
}

void transport_release(struct transport_call *c)
{
	strbuf_release(&c->body);
	curl_slist_free_all(c->headers);
	c->headers = NULL;
}

void transport_setup(struct transport_call *c, const char *path, const char *post,
		     const char *accept)
{
	CURL *curl = c->curl;
	const char *base = c->be->url ? c->be->url : "";
	size_t blen = strlen(base);

	while (blen && base[blen - 1] == '/')
		blen--;
	snprintf(c->url, sizeof(c->url), "%.*s%s", (int)blen, base, path);
	c->path = path;

	/* The reset keeps live connections; they live in the thread's multi handle anyway. */
	curl_easy_reset(curl);
	curl_easy_setopt(curl, CURLOPT_URL, c->url);
	curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(curl, CURLOPT_TCP_KEEPALIVE, 1L);
	curl_easy_setopt(curl, CURLOPT_TCP_KEEPIDLE, 30L);
	curl_easy_setopt(curl, CURLOPT_TCP_KEEPINTVL, 15L);
	curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, c->connect_ms);
	curl_easy_setopt(curl, CURLOPT_USERAGENT, "parleyd");
	curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, call_write);
	curl_easy_setopt(curl, CURLOPT_WRITEDATA, c);
	curl_easy_setopt(curl, CURLOPT_NOPROGRESS, 0L);
	curl_easy_setopt(curl, CURLOPT_XFERINFOFUNCTION, call_progress);
	curl_easy_setopt(curl, CURLOPT_XFERINFODATA, c);

	c->headers = curl_slist_append(c->headers, accept);
	if (post) {
		c->headers = curl_slist_append(c->headers, "Content-Type: application/json");
		/* curl would wait for "100 Continue" before sending a long history. */
		c->headers = curl_slist_append(c->headers, "Expect:");
		curl_easy_setopt(curl, CURLOPT_POSTFIELDS, post);
		curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(post));
	} else {
		curl_easy_setopt(curl, CURLOPT_HTTPGET, 1L);
	}
	curl_easy_setopt(curl, CURLOPT_HTTPHEADER, c->headers);
}

CURLcode transport_run(struct transport_call *c)
{
	CURLM *multi = thread_multi();
	CURLcode cc = CURLE_FAILED_INIT;
	CURLMsg *msg;
	long status = 0;
	int running = 1, left;

	c->t0_us = util_mono_us();
	if (!multi || curl_multi_add_handle(multi, c->curl) != CURLM_OK)
		return CURLE_FAILED_INIT;
	while (running) {
		if (curl_multi_perform(multi, &running) != CURLM_OK)
			break;
		if (running && curl_multi_poll(multi, NULL, 0, POLL_MS, NULL) != CURLM_OK)
			break;
	}
	while ((msg = curl_multi_info_read(multi, &left)))
		if (msg->msg == CURLMSG_DONE && msg->easy_handle == c->curl)
			cc = msg->data.result;
	curl_multi_remove_handle(multi, c->curl);
	/* A response without a body never reached call_write(). */
	curl_easy_getinfo(c->curl, CURLINFO_RESPONSE_CODE, &status);
	c->status = (int)status;
	return cc;
}

void transport_reason(const struct transport_call *c, CURLcode cc, char *out, size_t outsz)
{
	long oserr = 0;
	char buf[128];
	const char *s;

	curl_easy_getinfo(c->curl, CURLINFO_OS_ERRNO, &oserr);
	if (oserr && cc != CURLE_OPERATION_TIMEDOUT)
		s = strerror_r((int)oserr, buf, sizeof(buf));
	else if (cc == CURLE_OPERATION_TIMEDOUT)
		s = "no connection within the connect timeout";
	else
		s = curl_easy_strerror(cc);
	snprintf(out, outsz, "%s", s);
	if (out[0] >= 'A' && out[0] <= 'Z' && !(out[1] >= 'A' && out[1] <= 'Z'))
		out[0] = (char)(out[0] - 'A' + 'a');
}
