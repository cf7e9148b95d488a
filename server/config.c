/*
 * config.c - file, environment and flags. See config.h.
 */
#include "server/config.h"

#include "server/sha256.h"

#include <errno.h>
#include <getopt.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void backend_cfg_release(struct backend_cfg *b)
{
	size_t i;

	free(b->name);
	/* url is urls[0] */
	for (i = 0; i < b->nurls; i++)
		free(b->urls[i]);
	free(b->urls);
	free(b->keep_alive);
	memset(b, 0, sizeof(*b));
}

/* A member of the backend's pool (url taken); url stays the first one. */
static void add_url(struct backend_cfg *b, char *url)
{
	b->urls = xrealloc(b->urls, (b->nurls + 1) * sizeof(*b->urls));
	b->urls[b->nurls++] = url;
	b->url = b->urls[0];
}

/* Whether url is already a member of b's pool. */
static int has_url(const struct backend_cfg *b, const char *url)
{
	size_t i;

	for (i = 0; i < b->nurls; i++)
		if (strcmp(b->urls[i], url) == 0)
			return 1;
	return 0;
}

static void clear_backends(struct config *cfg)
{
	size_t i;

	for (i = 0; i < cfg->nbackends; i++)
		backend_cfg_release(&cfg->backends[i]);
	free(cfg->backends);
	cfg->backends = NULL;
	cfg->nbackends = 0;
}

static void add_backend(struct config *cfg, const struct backend_cfg *b)
{
	cfg->backends = xrealloc(cfg->backends, (cfg->nbackends + 1) * sizeof(*b));
	cfg->backends[cfg->nbackends++] = *b;
}

static void set_str(char **dst, const char *s)
{
	free(*dst);
	*dst = xstrdup(s);
}

/*
 * Keeps a token only as its SHA-256: "sha256:<64 hex>" is taken as a hash
 * already (how the config file should hold them); anything else is a token,
 * hashed here and not kept.
 */
static int add_token(struct config *cfg, const char *tok, struct perr *e)
{
	char hex[65];
	size_t i;

	if (strncmp(tok, "sha256:", 7) == 0) {
		const char *h = tok + 7;
		if (strlen(h) != 64)
			return perr_set(e, PERR_INVALID,
					"a token hash is 'sha256:' and 64 hex digits");
		for (i = 0; i < 64; i++) {
			if (!strchr("0123456789abcdef", h[i]))
				return perr_set(
				    e, PERR_INVALID,
				    "a token hash is 'sha256:' and 64 lowercase hex digits");
			hex[i] = h[i];
		}
		hex[64] = '\0';
	} else {
		if (strlen(tok) < 16)
			return perr_set(e, PERR_INVALID, "a token must be at least 16 characters");
		sha256_hex(tok, strlen(tok), hex);
	}
	cfg->tokens = xrealloc(cfg->tokens, (cfg->ntokens + 1) * sizeof(char *));
	cfg->tokens[cfg->ntokens++] = xstrdup(hex);
	return 0;
}

/* Normalises a URL: adds http://, drops trailing slashes. */
static char *normalize_url(const char *u, const char *default_port)
{
	struct strbuf sb;

	strbuf_init(&sb, strlen(u) + 16);
	if (!strstr(u, "://"))
		strbuf_addstr(&sb, "http://");
	strbuf_addstr(&sb, u);
	while (sb.len > 0 && sb.buf[sb.len - 1] == '/')
		sb.buf[--sb.len] = '\0';
	if (default_port) {
		/* OLLAMA_HOST may be "0.0.0.0" or "host" without a port */
		const char *p = strstr(sb.buf, "://") + 3;
		if (strncmp(p, "0.0.0.0", 7) == 0) {
			size_t off = (size_t)(p - sb.buf);
			char *rest = xstrdup(p + 7);
			sb.len = off;
			strbuf_addstr(&sb, "127.0.0.1");
			strbuf_addstr(&sb, rest);
			free(rest);
			p = sb.buf + off;
		}
		if (!strchr(p, ':') && !strchr(p, '/'))
			strbuf_addf(&sb, ":%s", default_port);
	}
	return strbuf_detach(&sb, NULL);
}

static int parse_int(const char *s, long lo, long hi, long *out)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || end == s || *end || v < lo || v > hi)
		return -1;
	*out = v;
	return 0;
}

static int parse_listen(struct config *cfg, const char *s, struct perr *e)
{
	const char *colon = strrchr(s, ':');
	long port;

	if (!colon || colon == s || parse_int(colon + 1, 0, 65535, &port) < 0)
		return perr_set(e, PERR_INVALID, "listen address '%s' is not HOST:PORT", s);
	free(cfg->listen_host);
	cfg->listen_host = xstrndup(s, (size_t)(colon - s));
	cfg->listen_port = (int)port;
	return 0;
}

int config_parse_backend(const char *spec, struct backend_cfg *b, struct perr *e)
{
	char *copy = xstrdup(spec), *save = NULL, *tok;
	int have_kind = 0;
	long v;

	memset(b, 0, sizeof(*b));
	for (tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		char *eq = strchr(tok, '=');
		if (!eq) {
			perr_set(e, PERR_INVALID, "backend '%s': '%s' is not key=value", spec, tok);
			goto fail;
		}
		*eq++ = '\0';
		if (strcmp(tok, "name") == 0) {
			set_str(&b->name, eq);
		} else if (strcmp(tok, "kind") == 0) {
			if (backend_kind_parse(eq, &b->kind) < 0) {
				perr_set(
				    e, PERR_INVALID,
				    "backend '%s': kind '%s' is not 'ollama' or 'llama-server'",
				    spec, eq);
				goto fail;
			}
			have_kind = 1;
		} else if (strcmp(tok, "url") == 0) {
			/* repeated: the members of a pool (DESIGN §8) */
			char *u = normalize_url(eq, NULL);
			if (has_url(b, u)) {
				perr_set(e, PERR_INVALID, "backend '%s': url '%s' is given twice",
					 spec, u);
				free(u);
				goto fail;
			}
			add_url(b, u);
		} else if (strcmp(tok, "max_conversations") == 0) {
			if (parse_int(eq, 1, 65536, &v) < 0) {
				perr_set(e, PERR_INVALID,
					 "backend '%s': max_conversations must be 1 to 65536",
					 spec);
				goto fail;
			}
			b->max_conversations = (int)v;
		} else if (strcmp(tok, "max_concurrency") == 0) {
			if (parse_int(eq, 1, 1024, &v) < 0) {
				perr_set(e, PERR_INVALID,
					 "backend '%s': max_concurrency must be 1 to 1024", spec);
				goto fail;
			}
			b->max_concurrency = (int)v;
		} else {
			perr_set(e, PERR_INVALID, "backend '%s': unknown key '%s'", spec, tok);
			goto fail;
		}
	}
	if (!b->name || !*b->name || !have_kind || !b->url) {
		perr_set(e, PERR_INVALID, "backend '%s' needs name, kind and url", spec);
		goto fail;
	}
	free(copy);
	return 0;
fail:
	free(copy);
	backend_cfg_release(b);
	return -1;
}

/* ---- the config file: every error names the file, the key, what is wrong, what is expected */

/* One integer key of the file: its field, its range, and a line for --help. */
struct int_key {
	const char *name;
	size_t offset; /* in struct config, or in struct backend_cfg for backend keys */
	int size;      /* sizeof the field */
	long lo, hi;
	const char *help;
};

#define CFG_INT(name, field, lo, hi, help)                                                         \
	{                                                                                          \
		name, offsetof(struct config, field), (int)sizeof(((struct config *)0)->field),    \
		    lo, hi, help                                                                   \
	}
#define BE_INT(name, field, lo, hi, help)                                                          \
	{                                                                                          \
		name, offsetof(struct backend_cfg, field),                                         \
		    (int)sizeof(((struct backend_cfg *)0)->field), lo, hi, help                    \
	}

/* A day: longer than any model call should be allowed to take. */
#define MAX_TIMEOUT_MS 86400000L

static const struct int_key file_ints[] = {
    CFG_INT("workers", workers, 1, 256, "worker threads (also --workers); default 4"),
    CFG_INT("http_threads", http_threads, 1, 64, "HTTP polling threads; default 4"),
    CFG_INT("max_body_bytes", max_body_bytes, 1024, 64 << 20,
	    "largest request body; default 1048576"),
    CFG_INT("max_json_depth", max_json_depth, 2, 1000, "deepest JSON nesting; default 32"),
    CFG_INT("max_queued_jobs", max_queued_jobs, 1, 10000000,
	    "queued jobs before 503; default 100000"),
    CFG_INT("connection_timeout_s", connection_timeout_s, 1, 3600,
	    "idle HTTP connection timeout; default 30"),
    CFG_INT("max_connections", max_connections, 1, 100000, "HTTP connections; default 1024"),
    CFG_INT("max_connections_per_ip", max_connections_per_ip, 1, 100000,
	    "HTTP connections per client; default 256"),
    CFG_INT("request_timeout_s", request_timeout_s, 1, 3600,
	    "time for a request's headers and body to arrive; default 10"),
    CFG_INT("max_reply_bytes", max_reply_bytes, 4096, 1L << 30,
	    "one model reply, cut there with a note; default 4194304"),
    CFG_INT("drain_timeout_s", drain_timeout_s, 0, 3600,
	    "on SIGTERM, time for turns in flight; default 30"),
    CFG_INT("idempotency_sweep_s", idempotency_sweep_s, 1, 86400,
	    "how often idempotency keys past 48 hours are dropped; default 3600"),
    CFG_INT("retry_max_attempts", retry_max_attempts, 1, 20,
	    "attempts of a failing model call; default 5"),
    CFG_INT("retry_base_delay_ms", retry_base_delay_ms, 1, 600000,
	    "first retry delay; default 500"),
    CFG_INT("retry_max_delay_ms", retry_max_delay_ms, 1, 3600000,
	    "longest retry delay; default 30000"),
};

static const struct int_key backend_ints[] = {
    BE_INT("max_concurrency", max_concurrency, 1, 1024,
	   "slots per member; Ollama: per model (OLLAMA_NUM_PARALLEL), default 1; "
	   "llama-server: caps /props total_slots, stands in without it"),
    BE_INT("max_conversations", max_conversations, 1, 65536,
	   "conversations at once per member; default: as many as have free slots"),
    BE_INT("connect_timeout_ms", connect_timeout_ms, 0, MAX_TIMEOUT_MS, "0 = default 3000"),
    BE_INT("first_byte_timeout_ms", first_byte_timeout_ms, 0, MAX_TIMEOUT_MS,
	   "0 = default 300000 (model load and prompt included)"),
    BE_INT("idle_timeout_ms", idle_timeout_ms, 0, MAX_TIMEOUT_MS,
	   "0 = default 120000 (Ollama), 60000 (llama-server)"),
    BE_INT("total_timeout_ms", total_timeout_ms, 0, MAX_TIMEOUT_MS, "0 = default 1800000"),
    BE_INT("num_ctx", num_ctx, 0, 4194304, "Ollama context when a job sets none; default 8192"),
};

static const char *const file_strs[] = {"listen", "db",	      "log_level",     "synchronous",
					"tokens", "backends", "allowed_hosts", "allowed_origins",
					NULL};
static const char *const backend_strs[] = {"name", "kind", "url", "urls", "keep_alive", NULL};

/* What a JSON value is, for a message: "a string", "the number 2.5", ... */
static const char *json_kind(const json_t *v, char *buf, size_t size)
{
	switch (json_typeof(v)) {
	case JSON_OBJECT:
		return "an object";
	case JSON_ARRAY:
		return "an array";
	case JSON_STRING:
		return "a string";
	case JSON_INTEGER:
		snprintf(buf, size, "the number %lld", (long long)json_integer_value(v));
		return buf;
	case JSON_REAL:
		snprintf(buf, size, "the number %g", json_real_value(v));
		return buf;
	case JSON_TRUE:
	case JSON_FALSE:
		return "a boolean";
	default:
		return "null";
	}
}

static int wrong_type(struct perr *e, const char *path, const char *key, const json_t *v,
		      const char *expected)
{
	char buf[64];

	return perr_set(e, PERR_INVALID, "config '%s': key '%s' is %s; expected %s", path, key,
			json_kind(v, buf, sizeof(buf)), expected);
}

static int out_of_range(struct perr *e, const char *path, const char *key, const char *value,
			const char *expected)
{
	return perr_set(e, PERR_INVALID, "config '%s': key '%s' is %s, out of range; expected %s",
			path, key, value, expected);
}

/* Edit distance of two short names, for "did you mean". */
static size_t distance(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b), i, j, row[64];

	if (la >= 63 || lb >= 63)
		return 64;
	for (j = 0; j <= lb; j++)
		row[j] = j;
	for (i = 1; i <= la; i++) {
		size_t diag = row[0];
		row[0] = i;
		for (j = 1; j <= lb; j++) {
			size_t up = row[j], best = diag + (a[i - 1] != b[j - 1]);
			if (up + 1 < best)
				best = up + 1;
			if (row[j - 1] + 1 < best)
				best = row[j - 1] + 1;
			diag = up;
			row[j] = best;
		}
	}
	return row[lb];
}

static int unknown_key(struct perr *e, const char *path, const char *where, const char *key,
		       const struct int_key *ints, size_t nints, const char *const *strs)
{
	const char *best = NULL;
	size_t d = 3, i, k;

	for (i = 0; i < nints; i++)
		if ((k = distance(key, ints[i].name)) < d)
			d = k, best = ints[i].name;
	for (i = 0; strs[i]; i++)
		if ((k = distance(key, strs[i])) < d)
			d = k, best = strs[i];
	if (best)
		return perr_set(e, PERR_INVALID,
				"config '%s': unknown key '%s%s'; expected a known key: did you "
				"mean '%s'? (parleyd --help lists them)",
				path, where, key, best);
	return perr_set(e, PERR_INVALID,
			"config '%s': unknown key '%s%s'; expected a known key (parleyd --help "
			"lists them)",
			path, where, key);
}

/* Sets an integer key from the table if key is one: 1 when set, 0 when not its key, -1 on error. */
static int set_int_key(void *base, const struct int_key *ints, size_t n, const char *path,
		       const char *shown, const char *key, const json_t *v, struct perr *e)
{
	char expected[96], value[48];
	json_int_t x;
	size_t i;

	for (i = 0; i < n && strcmp(ints[i].name, key) != 0; i++)
		;
	if (i == n)
		return 0;
	snprintf(expected, sizeof(expected), "an integer from %ld to %ld", ints[i].lo, ints[i].hi);
	if (!json_is_integer(v))
		return wrong_type(e, path, shown, v, expected);
	x = json_integer_value(v);
	if (x < ints[i].lo || x > ints[i].hi) {
		snprintf(value, sizeof(value), "%lld", (long long)x);
		if (x < 0 && strstr(key, "timeout"))
			snprintf(expected, sizeof(expected),
				 "milliseconds from %ld to %ld (a timeout cannot be negative)",
				 ints[i].lo, ints[i].hi);
		return out_of_range(e, path, shown, value, expected);
	}
	if (ints[i].size == (int)sizeof(int))
		*(int *)(void *)((char *)base + ints[i].offset) = (int)x;
	else if (ints[i].size == (int)sizeof(long))
		*(long *)(void *)((char *)base + ints[i].offset) = (long)x;
	return 1;
}

/*
 * Whether s is a Go duration as Ollama parses keep_alive: "0", or an optional
 * sign and one or more <number><unit> ("5m", "1h30m", "1.5h", "-1m"), units
 * ns us µs ms s m h.
 */
static int go_duration(const char *s)
{
	static const char *const units[] = {"ns", "us", "\xC2\xB5s", "ms", "s", "m", "h"};

	if (*s == '-' || *s == '+')
		s++;
	if (strcmp(s, "0") == 0)
		return 1;
	if (!*s)
		return 0;
	while (*s) {
		size_t digits = strspn(s, "0123456789"), frac = 0, i;
		s += digits;
		if (*s == '.') {
			frac = strspn(s + 1, "0123456789");
			s += 1 + frac;
		}
		if (!digits && !frac)
			return 0;
		for (i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
			size_t n = strlen(units[i]);
			/* "m" must not take the "m" of "ms" */
			if (strncmp(s, units[i], n) == 0 && !(n == 1 && s[0] == 'm' && s[1] == 's'))
				break;
		}
		if (i == sizeof(units) / sizeof(units[0]))
			return 0;
		s += strlen(units[i]);
	}
	return 1;
}

/*
 * Ollama's keep_alive forms: seconds as a number (negative: keep the model
 * loaded), a duration string ("5m", "1h30m"), or "-1". Kept as the string
 * backend_ollama sends: digits go out as a number of seconds.
 */
static int keep_alive_set(struct backend_cfg *b, const char *path, const char *shown,
			  const json_t *v, struct perr *e)
{
	static const char expected[] = "seconds as a number, -1 (keep loaded), or a duration such "
				       "as \"5m\" or \"1h30m\"";
	char buf[48];
	const char *str;

	free(b->keep_alive);
	b->keep_alive = NULL;
	if (json_is_integer(v)) {
		snprintf(buf, sizeof(buf), "%lld", (long long)json_integer_value(v));
	} else if (json_is_real(v)) {
		double x = json_real_value(v);
		if (x < 0)
			snprintf(buf, sizeof(buf), "-1");
		else if (x > 1e12)
			return out_of_range(e, path, shown, "too large", expected);
		else
			snprintf(buf, sizeof(buf), "%lldms", (long long)(x * 1000 + 0.5));
	} else if (json_is_string(v)) {
		const char *d;
		str = json_string_value(v);
		d = str + (*str == '-');
		if (!(*d && strspn(d, "0123456789") == strlen(d)) && !go_duration(str))
			return perr_set(e, PERR_INVALID,
					"config '%s': key '%s' is \"%.64s\", not a duration; "
					"expected %s",
					path, shown, str, expected);
		snprintf(buf, sizeof(buf), "%.40s", str);
	} else {
		return wrong_type(e, path, shown, v, expected);
	}
	b->keep_alive = xstrdup(buf);
	return 0;
}

/* "urls": the members of a pool, a non-empty array of distinct URL strings. */
static int json_backend_urls(const char *path, const char *shown, const json_t *v,
			     struct backend_cfg *b, struct perr *e)
{
	static const char expected[] = "a non-empty array of distinct URL strings";
	char at[128];
	const json_t *u; /* borrowed */
	size_t i;

	if (!json_is_array(v) || json_array_size(v) == 0) {
		if (json_is_array(v))
			return perr_set(e, PERR_INVALID,
					"config '%s': key '%s' is empty; expected %s", path, shown,
					expected);
		return wrong_type(e, path, shown, v, expected);
	}
	if (b->nurls)
		return perr_set(e, PERR_INVALID,
				"config '%s': key '%s' is given with 'url'; expected one of 'url' "
				"or 'urls'",
				path, shown);
	json_array_foreach(v, i, u)
	{
		char *url;

		snprintf(at, sizeof(at), "%s[%zu]", shown, i);
		if (!json_is_string(u) || !*json_string_value(u)) {
			if (json_is_string(u))
				return perr_set(e, PERR_INVALID,
						"config '%s': key '%s' is empty; expected a URL",
						path, at);
			return wrong_type(e, path, at, u, "a URL string");
		}
		url = normalize_url(json_string_value(u), NULL);
		if (has_url(b, url)) {
			perr_set(e, PERR_INVALID,
				 "config '%s': key '%s' is \"%.80s\", given twice; expected %s",
				 path, at, url, expected);
			free(url);
			return -1;
		}
		add_url(b, url);
	}
	return 0;
}

static int json_backend(const char *path, size_t idx, json_t *o, struct backend_cfg *b,
			struct perr *e)
{
	char where[32], shown[96];
	const char *key;
	json_t *v; /* borrowed */
	int rc;

	memset(b, 0, sizeof(*b));
	snprintf(where, sizeof(where), "backends[%zu].", idx);
	if (!json_is_object(o)) {
		snprintf(shown, sizeof(shown), "backends[%zu]", idx);
		return wrong_type(e, path, shown, o, "an object {name, kind, url, ...}");
	}
	json_object_foreach(o, key, v)
	{
		snprintf(shown, sizeof(shown), "%s%.60s", where, key);
		rc = set_int_key(b, backend_ints, ARRAY_SIZE(backend_ints), path, shown, key, v, e);
		if (rc < 0)
			goto fail;
		if (rc > 0)
			continue;
		if (strcmp(key, "keep_alive") == 0) {
			if (keep_alive_set(b, path, shown, v, e) < 0)
				goto fail;
			continue;
		}
		if (strcmp(key, "urls") == 0) {
			if (json_backend_urls(path, shown, v, b, e) < 0)
				goto fail;
			continue;
		}
		if (strcmp(key, "name") != 0 && strcmp(key, "kind") != 0 &&
		    strcmp(key, "url") != 0) {
			unknown_key(e, path, where, key, backend_ints, ARRAY_SIZE(backend_ints),
				    backend_strs);
			goto fail;
		}
		if (!json_is_string(v) || !*json_string_value(v)) {
			if (json_is_string(v))
				perr_set(e, PERR_INVALID,
					 "config '%s': key '%s' is empty; expected %s", path, shown,
					 strcmp(key, "kind") == 0 ? "\"ollama\" or \"llama-server\""
								  : "a non-empty string");
			else
				wrong_type(e, path, shown, v,
					   strcmp(key, "kind") == 0
					       ? "\"ollama\" or \"llama-server\""
					       : "a string");
			goto fail;
		}
		if (strcmp(key, "name") == 0) {
			set_str(&b->name, json_string_value(v));
		} else if (strcmp(key, "kind") == 0) {
			if (backend_kind_parse(json_string_value(v), &b->kind) < 0) {
				perr_set(e, PERR_INVALID,
					 "config '%s': key '%s' is \"%.40s\", not a backend kind; "
					 "expected \"ollama\" or \"llama-server\"",
					 path, shown, json_string_value(v));
				goto fail;
			}
		} else {
			char *u = normalize_url(json_string_value(v), NULL);
			if (b->nurls) {
				free(u);
				perr_set(
				    e, PERR_INVALID,
				    "config '%s': key '%s' is given with 'urls'; expected one of "
				    "'url' or 'urls'",
				    path, shown);
				goto fail;
			}
			add_url(b, u);
		}
	}
	if (!b->name || !b->url) {
		perr_set(e, PERR_INVALID,
			 "config '%s': backends[%zu] has no '%s'; expected name, kind and url "
			 "(or urls)",
			 path, idx, !b->name ? "name" : "url");
		goto fail;
	}
	return 0;
fail:
	backend_cfg_release(b);
	return -1;
}

/* A string key of the file; NULL (with e set) when v is not a non-empty string. */
static const char *file_str(const char *path, const char *key, const json_t *v,
			    const char *expected, struct perr *e)
{
	if (!json_is_string(v)) {
		wrong_type(e, path, key, v, expected);
		return NULL;
	}
	if (!*json_string_value(v)) {
		perr_set(e, PERR_INVALID, "config '%s': key '%s' is empty; expected %s", path, key,
			 expected);
		return NULL;
	}
	return json_string_value(v);
}

static int one_of(const char *s, const char *const *allowed)
{
	for (; *allowed; allowed++)
		if (strcmp(s, *allowed) == 0)
			return 1;
	return 0;
}

static void free_names(char **v, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

/*
 * A list of host names or origins: non-empty strings of printable ASCII (a
 * Host or Origin header holds nothing else), kept in lower case because both
 * compare case-insensitively.
 */
static int load_names(json_t *arr, char ***out, size_t *nout)
{
	json_t *t; /* borrowed */
	size_t i, k;

	free_names(*out, *nout);
	*out = NULL;
	*nout = 0;
	json_array_foreach(arr, i, t)
	{
		const char *s = json_string_value(t);
		char *copy;

		if (!s || !*s)
			return -1;
		for (k = 0; s[k]; k++)
			if ((unsigned char)s[k] <= ' ' || (unsigned char)s[k] >= 0x7f)
				return -1;
		copy = xstrdup(s);
		for (k = 0; copy[k]; k++)
			if (copy[k] >= 'A' && copy[k] <= 'Z')
				copy[k] = (char)(copy[k] - 'A' + 'a');
		*out = xrealloc(*out, (*nout + 1) * sizeof(char *));
		(*out)[(*nout)++] = copy;
	}
	return 0;
}

static int load_file(struct config *cfg, const char *path, struct perr *e)
{
	static const char *const levels[] = {"debug", "info", "warn", "error", NULL};
	static const char *const syncs[] = {"FULL", "NORMAL", NULL};
	json_error_t jerr;
	json_t *root = json_load_file(path, JSON_REJECT_DUPLICATES, &jerr),
	       *v; /* owned; borrowed */
	const char *key, *str;
	size_t i;
	int rc;

	if (!root)
		return perr_set(e, PERR_INVALID, "cannot read config '%s': %s (line %d)", path,
				jerr.text, jerr.line);
	if (!json_is_object(root)) {
		json_decref(root);
		return perr_set(e, PERR_INVALID, "config '%s' must be a JSON object", path);
	}
	json_object_foreach(root, key, v)
	{
		rc = set_int_key(cfg, file_ints, ARRAY_SIZE(file_ints), path, key, key, v, e);
		if (rc < 0)
			goto fail;
		if (rc > 0)
			continue;
		if (strcmp(key, "listen") == 0) {
			if (!(str = file_str(path, key, v, "a string HOST:PORT", e)))
				goto fail;
			if (parse_listen(cfg, str, e) < 0) {
				perr_set(e, PERR_INVALID,
					 "config '%s': key 'listen' is \"%.64s\", not an address; "
					 "expected HOST:PORT with a port from 0 to 65535",
					 path, str);
				goto fail;
			}
		} else if (strcmp(key, "db") == 0) {
			if (!(str = file_str(path, key, v, "a file name", e)))
				goto fail;
			set_str(&cfg->db_path, str);
		} else if (strcmp(key, "log_level") == 0 || strcmp(key, "synchronous") == 0) {
			int lvl = key[0] == 'l';
			const char *expected =
			    lvl ? "one of \"debug\", \"info\", \"warn\", \"error\""
				: "\"FULL\" or \"NORMAL\"";
			if (!(str = file_str(path, key, v, expected, e)))
				goto fail;
			if (!one_of(str, lvl ? levels : syncs)) {
				perr_set(e, PERR_INVALID,
					 "config '%s': key '%s' is \"%.32s\"; expected %s", path,
					 key, str, expected);
				goto fail;
			}
			set_str(lvl ? &cfg->log_level : &cfg->synchronous, str);
		} else if (strcmp(key, "tokens") == 0) {
			json_t *t; /* borrowed */
			if (!json_is_array(v)) {
				wrong_type(e, path, key, v, "an array of token strings");
				goto fail;
			}
			json_array_foreach(v, i, t)
			{
				char shown[32];
				snprintf(shown, sizeof(shown), "tokens[%zu]", i);
				if (!(str = file_str(path, shown, t,
						     "a token of at least 16 characters or "
						     "sha256:<64 hex digits>",
						     e)))
					goto fail;
				if (add_token(cfg, str, e) < 0) {
					char why[sizeof(e->msg)];
					snprintf(why, sizeof(why), "%s", e->msg);
					perr_set(e, PERR_INVALID, "config '%s': key '%s': %s", path,
						 shown, why);
					goto fail;
				}
			}
		} else if (strcmp(key, "allowed_hosts") == 0 ||
			   strcmp(key, "allowed_origins") == 0) {
			int hosts = key[8] == 'h';
			if (!json_is_array(v)) {
				wrong_type(e, path, key, v,
					   hosts ? "an array of host names"
						 : "an array of origins");
				goto fail;
			}
			if (load_names(v, hosts ? &cfg->allowed_hosts : &cfg->allowed_origins,
				       hosts ? &cfg->nallowed_hosts : &cfg->nallowed_origins) < 0) {
				perr_set(
				    e, PERR_INVALID,
				    "config '%s': key '%s' holds an empty string, a non-string "
				    "or a name with a blank or control character; expected %s",
				    path, key,
				    hosts ? "host names such as \"parley.lan\""
					  : "origins such as \"http://parley.lan:8080\"");
				goto fail;
			}
		} else if (strcmp(key, "backends") == 0) {
			json_t *b; /* borrowed */
			if (!json_is_array(v)) {
				wrong_type(e, path, key, v, "an array of backend objects");
				goto fail;
			}
			clear_backends(cfg);
			json_array_foreach(v, i, b)
			{
				struct backend_cfg bc;
				if (json_backend(path, i, b, &bc, e) < 0)
					goto fail;
				add_backend(cfg, &bc);
			}
		} else {
			unknown_key(e, path, "", key, file_ints, ARRAY_SIZE(file_ints), file_strs);
			goto fail;
		}
	}
	json_decref(root);
	return 0;
fail:
	json_decref(root);
	return -1;
}

static int load_backends_list(struct config *cfg, const char *list, struct perr *e)
{
	char *copy = xstrdup(list), *save = NULL, *tok;

	clear_backends(cfg);
	for (tok = strtok_r(copy, ";", &save); tok; tok = strtok_r(NULL, ";", &save)) {
		struct backend_cfg b;
		if (!*tok)
			continue;
		if (config_parse_backend(tok, &b, e) < 0) {
			free(copy);
			return -1;
		}
		add_backend(cfg, &b);
	}
	free(copy);
	return 0;
}

static int read_token_file(struct config *cfg, const char *path, struct perr *e)
{
	FILE *f = fopen(path, "r");
	char line[1024];

	if (!f)
		return perr_set(e, PERR_INVALID, "cannot read token file '%s': %s", path,
				strerror(errno));
	while (fgets(line, sizeof(line), f)) {
		size_t n = strcspn(line, "\r\n");
		line[n] = '\0';
		if (n == 0 || line[0] == '#')
			continue;
		if (add_token(cfg, line, e) < 0) {
			fclose(f);
			return -1;
		}
	}
	fclose(f);
	if (cfg->ntokens == 0)
		return perr_set(e, PERR_INVALID, "token file '%s' holds no token", path);
	return 0;
}

void config_usage(void)
{
	size_t i;

	fputs(
	    "usage: parleyd [options]\n"
	    "\n"
	    "Runs AI-to-AI optimization conversations against Ollama or llama-server.\n"
	    "\n"
	    "  --config FILE        JSON config file (PARLEY_CONFIG)\n"
	    "  --listen HOST:PORT   address to listen on (PARLEY_LISTEN, default 127.0.0.1:8080)\n"
	    "  --db FILE            SQLite database (PARLEY_DB, default ./parley.db)\n"
	    "  --workers N          worker threads (PARLEY_WORKERS, default 4)\n"
	    "  --backend SPEC       name=N,kind=ollama|llama-server,url=U[,url=U2...]\n"
	    "                       [,max_concurrency=C][,max_conversations=M]; a repeated url\n"
	    "                       makes a pool; repeatable (PARLEY_BACKENDS, entries separated\n"
	    "                       by ';')\n"
	    "  --token-file FILE    bearer tokens, one a line, plain or as sha256:<hex>\n"
	    "                       (PARLEY_TOKEN: one token)\n"
	    "  --hash-token         print the sha256:<hex> form of the token on stdin\n"
	    "  --log-level LEVEL    debug, info, warn, error (PARLEY_LOG_LEVEL)\n"
	    "  -h, --help           this text\n"
	    "  --version            the version\n"
	    "\n"
	    "With no backend configured, one Ollama backend named 'ollama' is used at\n"
	    "$OLLAMA_HOST or http://127.0.0.1:11434.\n"
	    "\n"
	    "The config file also takes (integers; the file's key, its range, what it is):\n",
	    stdout);
	for (i = 0; i < ARRAY_SIZE(file_ints); i++)
		if (strcmp(file_ints[i].name, "workers") != 0)
			printf("  %-24s %ld-%ld: %s\n", file_ints[i].name, file_ints[i].lo,
			       file_ints[i].hi, file_ints[i].help);
	fputs("  synchronous              \"FULL\" (default) or \"NORMAL\": SQLite's durability\n"
	      "  tokens                   bearer tokens, plain or as sha256:<hex>\n"
	      "  backends                 [{name, kind, url or urls (a pool), and:}]\n",
	      stdout);
	for (i = 0; i < ARRAY_SIZE(backend_ints); i++)
		printf("    %-22s %ld-%ld: %s\n", backend_ints[i].name, backend_ints[i].lo,
		       backend_ints[i].hi, backend_ints[i].help);
	fputs("    keep_alive             Ollama's: seconds, -1 (keep loaded), or \"5m\", "
	      "\"1h30m\";\n"
	      "                           default \"30m\"\n",
	      stdout);
}

int config_load(struct config *cfg, int argc, char **argv, struct perr *e)
{
	static const struct option longopts[] = {
	    {"config", required_argument, NULL, 'c'},
	    {"listen", required_argument, NULL, 'l'},
	    {"db", required_argument, NULL, 'd'},
	    {"workers", required_argument, NULL, 'w'},
	    {"backend", required_argument, NULL, 'b'},
	    {"token-file", required_argument, NULL, 't'},
	    {"log-level", required_argument, NULL, 'L'},
	    {"help", no_argument, NULL, 'h'},
	    {"version", no_argument, NULL, 'V'},
	    {"hash-token", no_argument, NULL, 'H'},
	    {NULL, 0, NULL, 0},
	};
	const char *config_path = getenv("PARLEY_CONFIG"), *s;
	int opt, flag_backends = 0;
	long v;

	memset(cfg, 0, sizeof(*cfg));
	cfg->listen_host = xstrdup("127.0.0.1");
	cfg->listen_port = 8080;
	cfg->db_path = xstrdup("./parley.db");
	cfg->workers = 4;
	cfg->http_threads = 4;
	cfg->log_level = xstrdup("info");
	cfg->synchronous = xstrdup("FULL");
	cfg->max_body_bytes = 1 << 20;
	cfg->max_json_depth = 32;
	cfg->max_queued_jobs = 100000;
	cfg->connection_timeout_s = 30;
	cfg->max_connections = 1024;
	/* 8 addresses at the limit still leave half of max_connections to everyone else */
	cfg->max_connections_per_ip = 64;
	cfg->request_timeout_s = 10;
	cfg->max_reply_bytes = 4 << 20;
	cfg->drain_timeout_s = 30;
	cfg->idempotency_sweep_s = 3600;
	cfg->retry_max_attempts = 5;
	cfg->retry_base_delay_ms = 500;
	cfg->retry_max_delay_ms = 30000;

	/* the config file comes first whatever the order of the flags */
	opterr = 0;
	optind = 1;
	while ((opt = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		if (opt == 'h') {
			config_usage();
			return 1;
		}
		if (opt == 'V') {
			printf("parleyd %s\n", PARLEY_VERSION);
			return 1;
		}
		if (opt == 'H') {
			char line[1024], hex[65];
			size_t n;
			if (!fgets(line, sizeof(line), stdin))
				return perr_set(e, PERR_INVALID,
						"--hash-token reads a token on stdin");
			n = strcspn(line, "\r\n");
			line[n] = '\0';
			sha256_hex(line, n, hex);
			printf("sha256:%s\n", hex);
			return 1;
		}
		if (opt == 'c')
			config_path = optarg;
		if (opt == '?')
			return perr_set(e, PERR_INVALID,
					"unknown or incomplete option '%s'; see --help",
					argv[optind - 1]);
	}
	if (config_path && load_file(cfg, config_path, e) < 0)
		return -1;

	if ((s = getenv("PARLEY_LISTEN")) && parse_listen(cfg, s, e) < 0)
		return -1;
	if ((s = getenv("PARLEY_DB")))
		set_str(&cfg->db_path, s);
	if ((s = getenv("PARLEY_WORKERS"))) {
		if (parse_int(s, 1, 256, &v) < 0)
			return perr_set(e, PERR_INVALID, "PARLEY_WORKERS must be 1 to 256");
		cfg->workers = (int)v;
	}
	if ((s = getenv("PARLEY_BACKENDS")) && *s && load_backends_list(cfg, s, e) < 0)
		return -1;
	if ((s = getenv("PARLEY_TOKEN")) && *s && add_token(cfg, s, e) < 0)
		return -1;
	if ((s = getenv("PARLEY_LOG_LEVEL")))
		set_str(&cfg->log_level, s);

	optind = 1;
	while ((opt = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (opt) {
		case 'l':
			if (parse_listen(cfg, optarg, e) < 0)
				return -1;
			break;
		case 'd':
			set_str(&cfg->db_path, optarg);
			break;
		case 'w':
			if (parse_int(optarg, 1, 256, &v) < 0)
				return perr_set(e, PERR_INVALID, "--workers must be 1 to 256");
			cfg->workers = (int)v;
			break;
		case 'b': {
			struct backend_cfg b;
			if (!flag_backends)
				clear_backends(cfg);
			flag_backends = 1;
			if (config_parse_backend(optarg, &b, e) < 0)
				return -1;
			add_backend(cfg, &b);
			break;
		}
		case 't':
			if (read_token_file(cfg, optarg, e) < 0)
				return -1;
			break;
		case 'L':
			set_str(&cfg->log_level, optarg);
			break;
		default:
			break;
		}
	}
	if (optind < argc)
		return perr_set(e, PERR_INVALID, "unexpected argument '%s'; see --help",
				argv[optind]);

	if (cfg->nbackends == 0) {
		struct backend_cfg b;
		memset(&b, 0, sizeof(b));
		b.name = xstrdup("ollama");
		b.kind = BACKEND_OLLAMA;
		s = getenv("OLLAMA_HOST");
		add_url(&b, normalize_url(s && *s ? s : "http://127.0.0.1:11434", "11434"));
		add_backend(cfg, &b);
	}
	for (size_t i = 0; i < cfg->nbackends; i++)
		for (size_t j = 0; j < i; j++)
			if (strcmp(cfg->backends[i].name, cfg->backends[j].name) == 0)
				return perr_set(e, PERR_INVALID, "backend name '%s' is used twice",
						cfg->backends[i].name);
	for (size_t i = 0; i < cfg->nbackends; i++)
		cfg->backends[i].max_reply_bytes = cfg->max_reply_bytes;
	if (strcmp(cfg->synchronous, "FULL") != 0 && strcmp(cfg->synchronous, "NORMAL") != 0)
		return perr_set(e, PERR_INVALID, "synchronous must be FULL or NORMAL");
	return 0;
}

void config_release(struct config *cfg)
{
	size_t i;

	free(cfg->listen_host);
	free(cfg->db_path);
	free(cfg->log_level);
	free(cfg->synchronous);
	for (i = 0; i < cfg->ntokens; i++)
		free(cfg->tokens[i]);
	free(cfg->tokens);
	free_names(cfg->allowed_hosts, cfg->nallowed_hosts);
	free_names(cfg->allowed_origins, cfg->nallowed_origins);
	clear_backends(cfg);
	memset(cfg, 0, sizeof(*cfg));
}
