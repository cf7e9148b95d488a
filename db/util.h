/*
 * util.h - the base layer every other module stands on.
 *
 * DESIGN: allocation that cannot fail (x*alloc abort on out-of-memory, as redis'
 * zmalloc does, so callers do not drown in NULL checks), the error record that
 * every fallible function fills (struct perr), a growable string buffer in the
 * manner of git's strbuf, and clock helpers; and db/banned.h, which makes the
 * C library's unsafe string and time functions compile errors. It lives in
 * db/ because db/ is the bottom layer: server/ and api/ may include it, it
 * includes nothing of theirs.
 */
#ifndef PARLEY_UTIL_H
#define PARLEY_UTIL_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include "db/banned.h"

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

void *xmalloc(size_t n);
void *xcalloc(size_t nmemb, size_t size);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);
/* xstrdup() that passes NULL through. */
char *xstrdup_or_null(const char *s);

/*
 * Error codes. One table in api/ maps them to HTTP statuses; nothing else
 * decides a status.
 */
enum perr_code {
	PERR_OK = 0,
	PERR_INVALID,		/* the request is malformed or breaks a rule */
	PERR_NOT_FOUND,		/* no such job, scenario, backend */
	PERR_CONFLICT,		/* idempotency key reused, stale attempt, duplicate */
	PERR_TOO_LARGE,		/* body over the limit */
	PERR_UNAVAILABLE,	/* queue full, shutting down */
	PERR_DB,		/* SQLite said no */
	PERR_INTERNAL,		/* a bug */
	PERR_BACKEND_DOWN,	/* connection refused, DNS, reset before any byte */
	PERR_BACKEND_BUSY,	/* 429/502/503/504, server busy, model loading */
	PERR_MODEL_MISSING,	/* 404 model not found */
	PERR_BACKEND_REJECTED,	/* 400/401/403/501: the request itself is wrong */
	PERR_BACKEND_ERROR,	/* 500 or an error inside the stream */
	PERR_BACKEND_TIMEOUT,	/* a phase deadline passed */
	PERR_BACKEND_PROTOCOL,	/* malformed reply, stream cut before its end marker */
	PERR_CONTEXT_OVERFLOW,	/* prompt longer than the context window */
	PERR_CANCELLED,		/* the job was cancelled while the call ran */
	PERR_UNAUTHORIZED,	/* no credentials, or credentials that are not valid */
	PERR_FORBIDDEN,		/* valid credentials that may not do this */
	PERR_NOT_ALLOWED,	/* the resource exists but not with this method */
	PERR_STORE_BUSY,	/* another process holds the database's lock past the wait */
	PERR_STORE_UNAVAILABLE, /* disk full, read-only, I/O error, file deleted: writes refused */
	PERR_STORE_CORRUPT,	/* the database file is damaged */
	PERR__COUNT
};

struct perr {
	int code;
	char msg[512];
};

/* Fills e (when e is not NULL); always returns -1 so callers can `return perr_set(...)`. */
int perr_set(struct perr *e, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Stable machine name of a code: "invalid", "backend_down", ... */
const char *perr_code_name(int code);

/*
 * A growable NUL-terminated buffer. buf is never NULL after strbuf_init(); an
 * empty buffer costs no allocation. strbuf_detach() is the one way to take
 * the buffer: it leaves sb empty, released and reusable.
 */
struct strbuf {
	char *buf;
	size_t len;
	size_t alloc;
};

void strbuf_init(struct strbuf *sb, size_t hint);
void strbuf_release(struct strbuf *sb);
/* Gives sb the malloc()ed, NUL-terminated buf of len bytes in alloc (> len): sb owns it,
 * whatever it held before is released. The way to take a string without a copy. */
void strbuf_attach(struct strbuf *sb, char *buf, size_t len, size_t alloc);
/* Hands the buffer to the caller (free() it); sb is left empty and reusable. */
char *strbuf_detach(struct strbuf *sb, size_t *len);
void strbuf_reset(struct strbuf *sb);
void strbuf_grow(struct strbuf *sb, size_t extra);
void strbuf_add(struct strbuf *sb, const void *data, size_t len);
void strbuf_addstr(struct strbuf *sb, const char *s);
void strbuf_addch(struct strbuf *sb, int c);
void strbuf_addf(struct strbuf *sb, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void strbuf_vaddf(struct strbuf *sb, const char *fmt, va_list ap);
/* Removes the first n bytes. */
void strbuf_remove_front(struct strbuf *sb, size_t n);

/*
 * UTF-8. Text from a model or a client is not always valid UTF-8 (a byte cut
 * off, a stray Latin-1 byte), and JSON cannot carry it: every byte that does
 * not begin a valid character becomes U+FFFD instead, so that no text is ever
 * dropped for one bad byte. util_utf8_invalid() counts those bytes in n bytes
 * of s; util_utf8_repair() appends s to out with each of them replaced and
 * returns how many there were.
 */
size_t util_utf8_invalid(const char *s, size_t n);
size_t util_utf8_repair(const char *s, size_t n, struct strbuf *out);

/* Wall clock, microseconds since the epoch. */
int64_t util_now_us(void);
/* Monotonic clock, microseconds. */
int64_t util_mono_us(void);
/* "2026-11-26T13:58:43.123456Z"; out must hold 32 bytes. */
void util_iso8601(int64_t us, char out[32]);
/* Sleeps for ms milliseconds (restarted on EINTR). */
void util_sleep_ms(long ms);
/* n random bytes as 2n lowercase hex characters plus NUL into out. */
void util_random_hex(char *out, size_t nbytes);

#endif
