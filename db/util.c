/*
 * util.c - allocation, errors, string buffers, clocks. See util.h.
 */
#include "util.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

static void oom(size_t n)
{
	fprintf(stderr, "fatal: out of memory allocating %zu bytes\n", n);
	abort();
}

void *xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);
	if (!p)
		oom(n);
	return p;
}

void *xcalloc(size_t nmemb, size_t size)
{
	void *p = calloc(nmemb ? nmemb : 1, size ? size : 1);
	if (!p)
		oom(nmemb * size);
	return p;
}

void *xrealloc(void *p, size_t n)
{
	void *q = realloc(p, n ? n : 1);
	if (!q)
		oom(n);
	return q;
}

char *xstrdup(const char *s)
{
	char *p = strdup(s);
	if (!p)
		oom(strlen(s));
	return p;
}

char *xstrndup(const char *s, size_t n)
{
	char *p = strndup(s, n);
	if (!p)
		oom(n);
	return p;
}

char *xstrdup_or_null(const char *s)
{
	return s ? xstrdup(s) : NULL;
}

int perr_set(struct perr *e, int code, const char *fmt, ...)
{
	va_list ap;

	if (!e)
		return -1;
	e->code = code;
	va_start(ap, fmt);
	vsnprintf(e->msg, sizeof(e->msg), fmt, ap);
	va_end(ap);
	return -1;
}

const char *perr_code_name(int code)
{
	static const char *const names[PERR__COUNT] = {
	    [PERR_OK] = "ok",
	    [PERR_INVALID] = "invalid",
	    [PERR_NOT_FOUND] = "not_found",
	    [PERR_CONFLICT] = "conflict",
	    [PERR_TOO_LARGE] = "too_large",
	    [PERR_UNAVAILABLE] = "unavailable",
	    [PERR_DB] = "database",
	    [PERR_INTERNAL] = "internal",
	    [PERR_BACKEND_DOWN] = "backend_down",
	    [PERR_BACKEND_BUSY] = "backend_busy",
	    [PERR_MODEL_MISSING] = "model_missing",
	    [PERR_BACKEND_REJECTED] = "backend_rejected",
	    [PERR_BACKEND_ERROR] = "backend_error",
	    [PERR_BACKEND_TIMEOUT] = "backend_timeout",
	    [PERR_BACKEND_PROTOCOL] = "backend_protocol",
	    [PERR_CONTEXT_OVERFLOW] = "context_overflow",
	    [PERR_CANCELLED] = "cancelled",
	    [PERR_UNAUTHORIZED] = "unauthorized",
	    [PERR_FORBIDDEN] = "forbidden",
	    [PERR_NOT_ALLOWED] = "not_allowed",
	    [PERR_STORE_BUSY] = "store_busy",
	    [PERR_STORE_UNAVAILABLE] = "store_unavailable",
	    [PERR_STORE_CORRUPT] = "store_corrupt",
	};
	if (code < 0 || code >= PERR__COUNT || !names[code])
		return "internal";
	return names[code];
}

/* An empty buffer points here until something is added: no allocation (git's slopbuf). */
static char strbuf_empty[1];

void strbuf_init(struct strbuf *sb, size_t hint)
{
	sb->buf = strbuf_empty;
	sb->len = sb->alloc = 0;
	if (hint)
		strbuf_grow(sb, hint);
}

void strbuf_release(struct strbuf *sb)
{
	if (sb->alloc)
		free(sb->buf);
	sb->buf = strbuf_empty;
	sb->len = sb->alloc = 0;
}

void strbuf_attach(struct strbuf *sb, char *buf, size_t len, size_t alloc)
{
	strbuf_release(sb);
	sb->buf = buf;
	sb->len = len;
	sb->alloc = alloc;
}

char *strbuf_detach(struct strbuf *sb, size_t *len)
{
	char *p = sb->alloc ? sb->buf : xcalloc(1, 1);

	if (len)
		*len = sb->len;
	sb->buf = strbuf_empty;
	sb->len = sb->alloc = 0;
	return p;
}

void strbuf_reset(struct strbuf *sb)
{
	sb->len = 0;
	if (sb->alloc)
		sb->buf[0] = '\0';
}

void strbuf_grow(struct strbuf *sb, size_t extra)
{
	size_t need = sb->len + extra + 1;

	size_t alloc = sb->alloc;

	if (need <= alloc)
		return;
	while (alloc < need)
		alloc = alloc < 64 ? 64 : alloc * 2;
	sb->buf = xrealloc(sb->alloc ? sb->buf : NULL, alloc);
	if (!sb->alloc)
		sb->buf[0] = '\0';
	sb->alloc = alloc;
}

void strbuf_add(struct strbuf *sb, const void *data, size_t len)
{
	strbuf_grow(sb, len);
	memcpy(sb->buf + sb->len, data, len);
	sb->len += len;
	sb->buf[sb->len] = '\0';
}

void strbuf_addstr(struct strbuf *sb, const char *s)
{
	strbuf_add(sb, s, strlen(s));
}

void strbuf_addch(struct strbuf *sb, int c)
{
	strbuf_grow(sb, 1);
	sb->buf[sb->len++] = (char)c;
	sb->buf[sb->len] = '\0';
}

void strbuf_vaddf(struct strbuf *sb, const char *fmt, va_list ap)
{
	va_list cp;
	int n;

	strbuf_grow(sb, 64);
	va_copy(cp, ap);
	n = vsnprintf(sb->buf + sb->len, sb->alloc - sb->len, fmt, cp);
	va_end(cp);
	if (n < 0) {
		sb->buf[sb->len] = '\0';
		return;
	}
	if ((size_t)n >= sb->alloc - sb->len) {
		strbuf_grow(sb, (size_t)n);
		vsnprintf(sb->buf + sb->len, sb->alloc - sb->len, fmt, ap);
	}
	sb->len += (size_t)n;
}

void strbuf_addf(struct strbuf *sb, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	strbuf_vaddf(sb, fmt, ap);
	va_end(ap);
}

void strbuf_remove_front(struct strbuf *sb, size_t n)
{
	if (n >= sb->len) {
		strbuf_reset(sb);
		return;
	}
	memmove(sb->buf, sb->buf + n, sb->len - n);
	sb->len -= n;
	sb->buf[sb->len] = '\0';
}

int64_t util_now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int64_t util_mono_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

void util_iso8601(int64_t us, char out[32])
{
	time_t secs = (time_t)(us / 1000000);
	struct tm tm;

	char buf[96];
	size_t n;

	gmtime_r(&secs, &tm);
	n = strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(buf + n, sizeof(buf) - n, ".%06uZ", (unsigned)(us % 1000000));
	n = strlen(buf);
	if (n > 31)
		n = 31;
	memcpy(out, buf, n);
	out[n] = '\0';
}

void util_sleep_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};

	while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
		;
}

void util_random_hex(char *out, size_t nbytes)
{
	static const char hex[] = "0123456789abcdef";
	unsigned char buf[64];
	size_t i;

	if (nbytes > sizeof(buf))
		nbytes = sizeof(buf);
	if (getrandom(buf, nbytes, 0) != (ssize_t)nbytes) {
		/* getrandom on Linux does not fail for <= 256 bytes once seeded */
		for (i = 0; i < nbytes; i++)
			buf[i] = (unsigned char)(util_mono_us() >> (i % 8));
	}
	for (i = 0; i < nbytes; i++) {
		out[2 * i] = hex[buf[i] >> 4];
		out[2 * i + 1] = hex[buf[i] & 15];
	}
	out[2 * nbytes] = '\0';
}

/* The length of the valid UTF-8 character at p (at most n bytes), or 0 when there is none. */
static size_t utf8_char_len(const unsigned char *p, size_t n)
{
	size_t need, k;
	unsigned int cp;

	if (p[0] < 0x80)
		return 1;
	if (p[0] >= 0xc2 && p[0] <= 0xdf)
		need = 1, cp = p[0] & 0x1f;
	else if (p[0] >= 0xe0 && p[0] <= 0xef)
		need = 2, cp = p[0] & 0x0f;
	else if (p[0] >= 0xf0 && p[0] <= 0xf4)
		need = 3, cp = p[0] & 0x07;
	else
		return 0;
	if (need >= n)
		return 0;
	for (k = 1; k <= need; k++) {
		if ((p[k] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (p[k] & 0x3f);
	}
	/* overlong forms, UTF-16 surrogates and code points past U+10FFFF are not UTF-8 */
	if ((need == 2 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
	    (need == 3 && (cp < 0x10000 || cp > 0x10ffff)))
		return 0;
	return need + 1;
}

size_t util_utf8_invalid(const char *s, size_t n)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t i = 0, bad = 0;

	while (i < n) {
		size_t k = utf8_char_len(p + i, n - i);
		if (!k) {
			bad++;
			k = 1;
		}
		i += k;
	}
	return bad;
}

size_t util_utf8_repair(const char *s, size_t n, struct strbuf *out)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t i = 0, run = 0, bad = 0;

	while (i < n) {
		size_t k = utf8_char_len(p + i, n - i);
		if (k) {
			i += k;
			continue;
		}
		strbuf_add(out, s + run, i - run);
		strbuf_addstr(out, "\xEF\xBF\xBD"); /* U+FFFD REPLACEMENT CHARACTER */
		bad++;
		run = ++i;
	}
	strbuf_add(out, s + run, n - run);
	return bad;
}
