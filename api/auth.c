/*
 * auth.c - bearer tokens and the dashboard's session cookie.
 *
 * DESIGN: with tokens configured, every request but /healthz and the
 * dashboard's static files (GET /, /assets/…: they hold no data) must carry
 * `Authorization: Bearer <token>`. Tokens are kept only as SHA-256 hashes
 * and compared in constant time; they are never logged. A browser cannot
 * put a header on an EventSource, so the dashboard trades its token once,
 * POST /v1/session with the bearer header, for an HttpOnly, SameSite=Strict
 * cookie: "<expiry>.<HMAC-SHA-256 of the expiry>" under a key made at start-up
 * (restarting parleyd ends every session). Requests that change something
 * and come with the cookie alone must also come from this origin.
 *
 * Sign-out (DELETE /v1/session) revokes the cookie on the server: its MAC goes
 * on a list that session_ok() consults until the cookie would have expired
 * anyway. The list lives in memory on purpose: the key is made at start-up, so
 * after a restart no cookie signed before it is valid and there is nothing
 * left to revoke. It is bounded: should it ever fill (thousands of sign-outs
 * within a session's lifetime), the key is renewed and the list emptied, which
 * ends every session: it errs towards signing people out, never in.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "server/sha256.h"

#define SESSION_SECONDS (12 * 3600)

#define MAX_REVOKED 4096

struct revoked {
	char mac[65];	  /* the cookie's MAC, hex */
	long long expiry; /* seconds since the epoch; the entry is dropped after it */
};

static pthread_mutex_t revoked_lock = PTHREAD_MUTEX_INITIALIZER; /* guards the below */
static unsigned char session_key[32];
static struct revoked revoked[MAX_REVOKED];
static size_t nrevoked;

/* Makes a new key: every cookie signed before is invalid. Caller holds revoked_lock. */
static void new_key_locked(void)
{
	char hex[65];
	size_t i;

	util_random_hex(hex, 32);
	for (i = 0; i < 32; i++) {
		unsigned int b;
		sscanf(hex + 2 * i, "%2x", &b);
		session_key[i] = (unsigned char)b;
	}
	nrevoked = 0;
}

void api_auth_init(void)
{
	pthread_mutex_lock(&revoked_lock);
	new_key_locked();
	pthread_mutex_unlock(&revoked_lock);
}

static int token_ok(const struct config *cfg, const char *token)
{
	char hex[65];
	size_t i;
	int ok = 0;

	sha256_hex(token, strlen(token), hex);
	for (i = 0; i < cfg->ntokens; i++)
		ok |= ct_equal(hex, cfg->tokens[i], 64);
	return ok;
}

static void session_sign(long long expiry, char out[96])
{
	static const char hexd[] = "0123456789abcdef";
	unsigned char mac[32];
	char msg[32];
	int n, i;

	n = snprintf(msg, sizeof(msg), "%lld", expiry);
	pthread_mutex_lock(&revoked_lock);
	hmac_sha256(session_key, sizeof(session_key), msg, (size_t)n, mac);
	pthread_mutex_unlock(&revoked_lock);
	n = snprintf(out, 96, "%lld.", expiry);
	for (i = 0; i < 32; i++) {
		out[n + 2 * i] = hexd[mac[i] >> 4];
		out[n + 2 * i + 1] = hexd[mac[i] & 15];
	}
	out[n + 64] = '\0';
}

/*
 * The expiry of a cookie value, in seconds: 1 to 12 digits and a dot, no sign
 * and no blanks (the cookie comes from an unauthenticated client, so nothing
 * it holds may reach an arithmetic overflow). 0, or -1 when malformed.
 */
static int session_expiry(const char *value, long long *expiry)
{
	long long v = 0;
	int n;

	for (n = 0; value[n] >= '0' && value[n] <= '9'; n++) {
		if (n == 12)
			return -1;
		v = v * 10 + (value[n] - '0');
	}
	if (n == 0 || value[n] != '.')
		return -1;
	*expiry = v;
	return 0;
}

static int session_revoked(const char *mac)
{
	size_t i;
	int found = 0;

	pthread_mutex_lock(&revoked_lock);
	for (i = 0; i < nrevoked && !found; i++)
		found = strcmp(revoked[i].mac, mac) == 0;
	pthread_mutex_unlock(&revoked_lock);
	return found;
}

/* Puts a valid cookie's MAC on the revoked list until its expiry. */
static void session_revoke(const char *value)
{
	long long expiry = strtoll(value, NULL, 10), now = (long long)(util_now_us() / 1000000);
	const char *mac = strchr(value, '.') + 1;
	size_t i, k = 0;

	pthread_mutex_lock(&revoked_lock);
	for (i = 0; i < nrevoked; i++)
		if (revoked[i].expiry >= now)
			revoked[k++] = revoked[i];
	nrevoked = k;
	if (nrevoked == MAX_REVOKED) {
		new_key_locked();
	} else {
		snprintf(revoked[nrevoked].mac, sizeof(revoked[nrevoked].mac), "%s", mac);
		revoked[nrevoked++].expiry = expiry;
	}
	pthread_mutex_unlock(&revoked_lock);
}

static int session_ok(const char *value)
{
	long long now = (long long)(util_now_us() / 1000000), expiry;
	char want[96];

	/* expired, or later than any cookie this process signs: refused before the MAC */
	if (session_expiry(value, &expiry) < 0 || expiry < now || expiry > now + SESSION_SECONDS)
		return 0;
	session_sign(expiry, want);
	if (strlen(value) != strlen(want) || !ct_equal(value, want, strlen(want)))
		return 0;
	return !session_revoked(strchr(value, '.') + 1); /* checked: it has one */
}

static const char *bearer(struct api_req *q)
{
	const char *h = api_header(q, "Authorization");

	if (!h || strncasecmp(h, "Bearer ", 7) != 0)
		return NULL;
	h += 7;
	while (*h == ' ')
		h++;
	return *h ? h : NULL;
}

/* Whether a state-changing request carrying only the cookie comes from our own pages. */
static int same_origin(struct api_req *q)
{
	const char *origin = api_header(q, "Origin"), *host = api_header(q, "Host");
	char want[300];

	if (!origin)
		return 1; /* not a cross-site browser request: browsers send Origin on those */
	if (!host)
		return 0;
	snprintf(want, sizeof(want), "http://%s", host);
	return strcmp(origin, want) == 0;
}

static void unauthorized(struct api_resp *r, const char *detail)
{
	api_fail(r, PERR_UNAUTHORIZED, NULL, "%s", detail);
	api_add_header(r, "WWW-Authenticate", "Bearer realm=\"parley\"");
}

int api_auth_check(struct api_req *q, struct api_resp *r)
{
	const struct config *cfg = q->deps->cfg;
	const char *tok, *cookie;

	if (cfg->ntokens == 0)
		return 0;
	if ((tok = bearer(q))) {
		if (token_ok(cfg, tok))
			return 0;
		unauthorized(r, "the bearer token is not valid");
		return -1;
	}
	cookie = MHD_lookup_connection_value(q->conn, MHD_COOKIE_KIND, "parley_session");
	if (cookie && session_ok(cookie)) {
		if (strcmp(q->method, "GET") == 0 || strcmp(q->method, "HEAD") == 0 ||
		    same_origin(q))
			return 0;
		api_fail(r, PERR_FORBIDDEN, NULL, "a cross-origin request cannot use the session");
		return -1;
	}
	unauthorized(r, "this server needs 'Authorization: Bearer <token>'");
	return -1;
}

void api_session_post(struct api_req *q, struct api_resp *r)
{
	const struct config *cfg = q->deps->cfg;
	const char *tok = bearer(q);
	char value[96], cookie[256];
	long long expiry;

	if (cfg->ntokens == 0) {
		api_json(r, 200, json_pack("{s:b}", "auth", 0));
		return;
	}
	if (!tok || !token_ok(cfg, tok))
		return unauthorized(
		    r, "POST /v1/session needs a valid 'Authorization: Bearer <token>'");
	expiry = (long long)(util_now_us() / 1000000) + SESSION_SECONDS;
	session_sign(expiry, value);
	snprintf(cookie, sizeof(cookie),
		 "parley_session=%s; Path=/; Max-Age=%d; HttpOnly; SameSite=Strict", value,
		 SESSION_SECONDS);
	api_json(r, 200,
		 json_pack("{s:b, s:I}", "auth", 1, "expires_in", (json_int_t)SESSION_SECONDS));
	api_add_header(r, "Set-Cookie", cookie);
}

void api_session_delete(struct api_req *q, struct api_resp *r)
{
	const char *cookie =
	    MHD_lookup_connection_value(q->conn, MHD_COOKIE_KIND, "parley_session");

	if (cookie && session_ok(cookie))
		session_revoke(cookie);
	r->status = 204;
	strbuf_reset(&r->body);
	api_add_header(r, "Set-Cookie",
		       "parley_session=; Path=/; Max-Age=0; HttpOnly; SameSite=Strict");
}
