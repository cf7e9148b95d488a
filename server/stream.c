/*
 * stream.c - NDJSON and SSE chat stream parsers. See stream.h.
 */
#include "server/stream.h"

#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

void line_splitter_init(struct line_splitter *ls)
{
	strbuf_init(&ls->buf, 0);
}

void line_splitter_release(struct line_splitter *ls)
{
	strbuf_release(&ls->buf);
}

size_t line_splitter_pending(const struct line_splitter *ls)
{
	return ls->buf.len;
}

static int emit_line(const char *line, size_t len, line_fn fn, void *ud)
{
	if (len && line[len - 1] == '\r')
		len--;
	return fn(ud, line, len);
}

int line_splitter_feed(struct line_splitter *ls, const char *data, size_t len, line_fn fn, void *ud)
{
	const char *end = data + len;
	const char *nl;
	int rc;

	while (data < end && (nl = memchr(data, '\n', (size_t)(end - data)))) {
		size_t n = (size_t)(nl - data);

		/* Lines wholly inside data are handed out in place, without a copy. */
		if (ls->buf.len) {
			strbuf_add(&ls->buf, data, n);
			rc = emit_line(ls->buf.buf, ls->buf.len, fn, ud);
			strbuf_reset(&ls->buf);
		} else {
			rc = emit_line(data, n, fn, ud);
		}
		data = nl + 1;
		if (rc)
			return rc;
	}
	if (data < end)
		strbuf_add(&ls->buf, data, (size_t)(end - data));
	return 0;
}

int line_splitter_flush(struct line_splitter *ls, line_fn fn, void *ud)
{
	int rc = 0;

	if (ls->buf.len)
		rc = emit_line(ls->buf.buf, ls->buf.len, fn, ud);
	strbuf_reset(&ls->buf);
	return rc;
}

static int stream_fail(struct chat_stream *s, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int stream_fail(struct chat_stream *s, int code, const char *fmt, ...)
{
	va_list ap;

	s->failed = 1;
	s->err.code = code;
	va_start(ap, fmt);
	vsnprintf(s->err.msg, sizeof(s->err.msg), fmt, ap);
	va_end(ap);
	return -1;
}

/* An integer field, -1 when absent or not a number (the servers omit what they do not know). */
static long json_long(const json_t *o, const char *key)
{
	const json_t *v = json_object_get(o, key); /* borrowed */

	if (json_is_integer(v))
		return (long)json_integer_value(v);
	if (json_is_real(v)) {
		double d = json_real_value(v);
		/* a count no long can hold is no count, and converting it would be undefined */
		if (!(d > -1.0 && d < 9.0e18))
			return -1;
		return (long)(d + 0.5);
	}
	return -1;
}

/* A number field, -1 when absent. */
static double json_double(const json_t *o, const char *key)
{
	const json_t *v = json_object_get(o, key); /* borrowed */

	return json_is_number(v) ? json_number_value(v) : -1.0;
}

static void set_finish_reason(struct chat_metrics *m, const char *reason)
{
	snprintf(m->finish_reason, sizeof(m->finish_reason), "%s", reason);
}

/* Hands reply text to on_delta, skipping NUL bytes so readers can treat the text as a C
 * string. */
static int deliver_bytes(struct chat_stream *s, const char *p, size_t n)
{
	while (n) {
		const char *z = memchr(p, '\0', n);
		size_t k = z ? (size_t)(z - p) : n;

		if (k) {
			s->content_bytes += k;
			if (s->on_delta && s->on_delta(s->ud, p, k))
				return stream_fail(s, PERR_CANCELLED,
						   "the reader stopped the stream");
		}
		if (!z)
			break;
		p = z + 1;
		n -= k + 1;
	}
	return 0;
}

static int deliver(struct chat_stream *s, const json_t *str)
{
	return deliver_bytes(s, json_string_value(str), json_string_length(str));
}

/*
 * The fast path. Nearly every line of a stream is one token in a fixed
 * shape; building a jansson tree for each was a quarter of parleyd's CPU per
 * turn. For exactly these shapes the text is decoded here:
 *   Ollama:       {"model":…,"message":{"role":"assistant","content":"…"},"done":false}
 *   llama-server: {"choices":[{"finish_reason":null,"index":0,"delta":{"content":"…"}}],…}
 * with no "error", "usage" or "timings" in what follows. Anything else, or
 * anything odd inside the string (bad escapes, control bytes, invalid UTF-8),
 * goes to jansson as before: returns 1 when the line was handled, 0 when not.
 */
static int utf8_valid(const unsigned char *p, size_t n)
{
	size_t i = 0;

	while (i < n) {
		unsigned char c = p[i];
		size_t k, need;
		unsigned int cp;

		if (c < 0x80) {
			i++;
			continue;
		}
		if (c >= 0xc2 && c <= 0xdf)
			need = 1, cp = c & 0x1f;
		else if (c >= 0xe0 && c <= 0xef)
			need = 2, cp = c & 0x0f;
		else if (c >= 0xf0 && c <= 0xf4)
			need = 3, cp = c & 0x07;
		else
			return 0;
		for (k = 1; k <= need; k++) {
			if (i + k >= n || (p[i + k] & 0xc0) != 0x80)
				return 0;
			cp = cp << 6 | (p[i + k] & 0x3f);
		}
		if ((need == 2 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
		    (need == 3 && (cp < 0x10000 || cp > 0x10ffff)))
			return 0;
		i += need + 1;
	}
	return 1;
}

static void put_utf8(struct strbuf *out, unsigned int cp)
{
	if (cp < 0x80) {
		strbuf_addch(out, (int)cp);
	} else if (cp < 0x800) {
		strbuf_addch(out, (int)(0xc0 | cp >> 6));
		strbuf_addch(out, (int)(0x80 | (cp & 0x3f)));
	} else if (cp < 0x10000) {
		strbuf_addch(out, (int)(0xe0 | cp >> 12));
		strbuf_addch(out, (int)(0x80 | ((cp >> 6) & 0x3f)));
		strbuf_addch(out, (int)(0x80 | (cp & 0x3f)));
	} else {
		strbuf_addch(out, (int)(0xf0 | cp >> 18));
		strbuf_addch(out, (int)(0x80 | ((cp >> 12) & 0x3f)));
		strbuf_addch(out, (int)(0x80 | ((cp >> 6) & 0x3f)));
		strbuf_addch(out, (int)(0x80 | (cp & 0x3f)));
	}
}

static int hex4(const char *p, unsigned int *v)
{
	int i;

	*v = 0;
	for (i = 0; i < 4; i++) {
		char c = p[i];
		*v <<= 4;
		if (c >= '0' && c <= '9')
			*v |= (unsigned)(c - '0');
		else if (c >= 'a' && c <= 'f')
			*v |= (unsigned)(c - 'a' + 10);
		else if (c >= 'A' && c <= 'F')
			*v |= (unsigned)(c - 'A' + 10);
		else
			return -1;
	}
	return 0;
}

/* Decodes the JSON string body at p (after its opening quote) into out; returns the length
 * consumed up to and including the closing quote, or 0 when it is not a plain valid string. */
static size_t decode_string(const char *p, size_t n, struct strbuf *out)
{
	size_t i = 0, run = 0;

	strbuf_reset(out);
	while (i < n) {
		unsigned char c = (unsigned char)p[i];
		unsigned int cp, lo;

		if (c == '"') {
			if (!utf8_valid((const unsigned char *)p + run, i - run))
				return 0;
			strbuf_add(out, p + run, i - run);
			return i + 1;
		}
		if (c < 0x20)
			return 0;
		if (c != '\\') {
			i++;
			continue;
		}
		if (!utf8_valid((const unsigned char *)p + run, i - run))
			return 0;
		strbuf_add(out, p + run, i - run);
		if (i + 1 >= n)
			return 0;
		switch (p[i + 1]) {
		case '"':
			strbuf_addch(out, '"');
			break;
		case '\\':
			strbuf_addch(out, '\\');
			break;
		case '/':
			strbuf_addch(out, '/');
			break;
		case 'b':
			strbuf_addch(out, '\b');
			break;
		case 'f':
			strbuf_addch(out, '\f');
			break;
		case 'n':
			strbuf_addch(out, '\n');
			break;
		case 'r':
			strbuf_addch(out, '\r');
			break;
		case 't':
			strbuf_addch(out, '\t');
			break;
		case 'u':
			if (i + 6 > n || hex4(p + i + 2, &cp) < 0)
				return 0;
			if (cp >= 0xd800 && cp <= 0xdbff) {
				if (i + 12 > n || p[i + 6] != '\\' || p[i + 7] != 'u' ||
				    hex4(p + i + 8, &lo) < 0 || lo < 0xdc00 || lo > 0xdfff)
					return 0;
				cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
				i += 6;
			} else if (cp >= 0xdc00 && cp <= 0xdfff) {
				return 0;
			}
			put_utf8(out, cp);
			i += 4;
			break;
		default:
			return 0;
		}
		i += 2;
		run = i;
	}
	return 0;
}

static int has(const char *p, size_t n, const char *needle)
{
	return memmem(p, n, needle, strlen(needle)) != NULL;
}

static int fast_path(struct chat_stream *s, const char *p, size_t n)
{
	static const char ollama_mid[] = "\"message\":{\"role\":\"assistant\",\"content\":\"";
	static const char ollama_end[] = "},\"done\":false}";
	static const char llama_head[] =
	    "{\"choices\":[{\"finish_reason\":null,\"index\":0,\"delta\":{\"content\":\"";
	static const char llama_next[] = "}}],";
	const char *text, *rest;
	size_t used, tail;

	if (s->fmt == STREAM_NDJSON) {
		if (n < sizeof(ollama_end) + 8 || memcmp(p, "{\"model\":", 9) != 0 ||
		    memcmp(p + n - (sizeof(ollama_end) - 1), ollama_end, sizeof(ollama_end) - 1) !=
			0)
			return 0;
		text = memmem(p, n, ollama_mid, sizeof(ollama_mid) - 1);
		if (!text)
			return 0;
		text += sizeof(ollama_mid) - 1;
		used = decode_string(text, (size_t)(p + n - text), &s->scratch);
		/* the string must close right before the end of the line */
		if (!used || text + used != p + n - (sizeof(ollama_end) - 1) ||
		    has(p, (size_t)(text - p), "\"error\""))
			return 0;
	} else {
		if (n <= sizeof(llama_head) || memcmp(p, llama_head, sizeof(llama_head) - 1) != 0)
			return 0;
		text = p + sizeof(llama_head) - 1;
		used = decode_string(text, n - (sizeof(llama_head) - 1), &s->scratch);
		if (!used)
			return 0;
		rest = text + used;
		tail = (size_t)(p + n - rest);
		if (tail < sizeof(llama_next) - 1 ||
		    memcmp(rest, llama_next, sizeof(llama_next) - 1) ||
		    has(rest, tail, "\"usage\"") || has(rest, tail, "\"timings\"") ||
		    has(rest, tail, "\"error\"") || rest[tail - 1] != '}')
			return 0;
	}
	if (s->scratch.len && deliver_bytes(s, s->scratch.buf, s->scratch.len))
		return -1;
	return 1;
}

/* {"error":"text"} (Ollama) or {"error":{"message":..., "type":...}} (llama-server). */
static int fail_server_error(struct chat_stream *s, const json_t *err)
{
	const char *msg = NULL, *type = NULL;

	if (json_is_string(err)) {
		msg = json_string_value(err);
	} else if (json_is_object(err)) {
		msg = json_string_value(json_object_get(err, "message"));
		type = json_string_value(json_object_get(err, "type"));
	}
	if (!msg || !*msg)
		msg = "no message";
	if (type)
		return stream_fail(s, PERR_BACKEND_ERROR, "error mid-stream: %.300s (%.40s)", msg,
				   type);
	return stream_fail(s, PERR_BACKEND_ERROR, "error mid-stream: %.300s", msg);
}

/* Replaces each \uD800-\uDFFF escape that is not half of a pair by \uFFFD, in place. */
static size_t repair_surrogates(char *p, size_t n)
{
	size_t i = 0, bad = 0;
	unsigned int cp, lo;

	while (i < n) {
		if (p[i] != '\\') {
			i++;
			continue;
		}
		if (i + 6 > n || p[i + 1] != 'u' || hex4(p + i + 2, &cp) < 0) {
			i += 2; /* another escape, or a broken one for jansson to refuse */
			continue;
		}
		if (cp >= 0xd800 && cp <= 0xdbff && i + 12 <= n && p[i + 6] == '\\' &&
		    p[i + 7] == 'u' && hex4(p + i + 8, &lo) == 0 && lo >= 0xdc00 && lo <= 0xdfff) {
			i += 12;
			continue;
		}
		if (cp >= 0xd800 && cp <= 0xdfff) {
			memcpy(p + i + 2, "fffd", 4);
			bad++;
		}
		i += 6;
	}
	return bad;
}

/*
 * A line whose text holds bytes that are not UTF-8, or an escaped lone
 * surrogate, is the model's output, not a broken stream: jansson refuses both,
 * so the line is repaired first (U+FFFD for each) and the count kept for the
 * turn's note. A retry would get the same bytes again. Returns the line to
 * parse, which may be s->repair.
 */
static const char *repair_line(struct chat_stream *s, const char *p, size_t *n)
{
	size_t bad;

	if (!util_utf8_invalid(p, *n) && !memmem(p, *n, "\\ud", 3) && !memmem(p, *n, "\\uD", 3))
		return p;
	strbuf_reset(&s->repair);
	bad = util_utf8_repair(p, *n, &s->repair);
	bad += repair_surrogates(s->repair.buf, s->repair.len);
	if (!bad)
		return p;
	s->repaired += bad;
	*n = s->repair.len;
	return s->repair.buf;
}

static json_t *parse_object(struct chat_stream *s, const char *p, size_t n)
{
	json_error_t jerr;
	json_t *o;

	p = repair_line(s, p, &n);
	/* JSON_ALLOW_NUL: a model may emit \u0000; deliver() drops it instead of failing. */
	o = json_loadb(p, n, JSON_ALLOW_NUL, &jerr);
	if (!o) {
		stream_fail(s, PERR_BACKEND_PROTOCOL, "malformed json in the stream: %s: '%.*s'",
			    jerr.text, (int)(n < 60 ? n : 60), p);
		return NULL;
	}
	if (!json_is_object(o)) {
		json_decref(o);
		stream_fail(s, PERR_BACKEND_PROTOCOL, "stream line is not a json object: '%.*s'",
			    (int)(n < 60 ? n : 60), p);
		return NULL;
	}
	return o;
}

static void ollama_metrics(struct chat_metrics *m, const json_t *o)
{
	double load = json_double(o, "load_duration");
	double pdur = json_double(o, "prompt_eval_duration");
	double edur = json_double(o, "eval_duration");
	const char *reason = json_string_value(json_object_get(o, "done_reason"));

	/* prompt_eval_count already counts the cached prefix; how much was cached is not said. */
	m->prompt_tokens = json_long(o, "prompt_eval_count");
	m->completion_tokens = json_long(o, "eval_count");
	m->prompt_ms = pdur >= 0 ? pdur / 1e6 : -1.0;
	m->gen_ms = edur >= 0 ? edur / 1e6 : -1.0;
	m->load_ms = load >= 0 ? load / 1e6 : -1.0;
	if (m->completion_tokens >= 0 && edur > 0)
		m->tokens_per_s = (double)m->completion_tokens * 1e9 / edur;
	if (reason)
		set_finish_reason(m, reason);
}

static int ndjson_chunk(struct chat_stream *s, const json_t *o)
{
	const json_t *err = json_object_get(o, "error"); /* borrowed, as below */
	const json_t *content = json_object_get(json_object_get(o, "message"), "content");

	if (err)
		return fail_server_error(s, err);
	/* The last chunk may carry text as well as done:true. */
	if (json_is_string(content) && deliver(s, content))
		return -1;
	if (json_is_true(json_object_get(o, "done"))) {
		ollama_metrics(s->m, o);
		s->done = 1;
	}
	return 0;
}

static void trim(const char **p, size_t *n)
{
	while (*n && (**p == ' ' || **p == '\t' || **p == '\r')) {
		(*p)++;
		(*n)--;
	}
	while (*n && ((*p)[*n - 1] == ' ' || (*p)[*n - 1] == '\t' || (*p)[*n - 1] == '\r'))
		(*n)--;
}

static int ndjson_line(struct chat_stream *s, const char *line, size_t len)
{
	json_t *o;
	int rc;

	trim(&line, &len);
	if (!len)
		return 0;
	if (len >= 5 && !memcmp(line, "data:", 5))
		return stream_fail(s, PERR_BACKEND_PROTOCOL,
				   "the reply is server-sent events, not ndjson: a llama-server "
				   "needs kind=llama-server");
	if ((rc = fast_path(s, line, len)) != 0)
		return rc < 0 ? -1 : 0;
	o = parse_object(s, line, len);
	if (!o)
		return -1;
	rc = ndjson_chunk(s, o);
	json_decref(o);
	return rc;
}

static void llama_usage(struct chat_stream *s, const json_t *u)
{
	long cached = json_long(json_object_get(u, "prompt_tokens_details"), "cached_tokens");

	s->have_usage = 1;
	s->m->prompt_tokens = json_long(u, "prompt_tokens");
	s->m->completion_tokens = json_long(u, "completion_tokens");
	if (cached >= 0)
		s->m->cached_tokens = cached;
}

static void llama_timings(struct chat_stream *s, const json_t *t)
{
	struct chat_metrics *m = s->m;
	long cache_n = json_long(t, "cache_n");
	long prompt_n = json_long(t, "prompt_n");
	long predicted_n = json_long(t, "predicted_n");
	double tps = json_double(t, "predicted_per_second");

	if (cache_n >= 0)
		m->cached_tokens = cache_n;
	/* Without usage{} (include_usage off, or native /completion) the prompt is what was
	 * reused plus what was processed, the same meaning as Ollama's prompt_eval_count. */
	if (!s->have_usage) {
		if (cache_n >= 0 && prompt_n >= 0)
			m->prompt_tokens = cache_n + prompt_n;
		if (predicted_n >= 0)
			m->completion_tokens = predicted_n;
	}
	m->prompt_ms = json_double(t, "prompt_ms");
	m->gen_ms = json_double(t, "predicted_ms");
	if (tps >= 0)
		m->tokens_per_s = tps;
	else if (m->completion_tokens >= 0 && m->gen_ms > 0)
		m->tokens_per_s = (double)m->completion_tokens * 1000.0 / m->gen_ms;
}

/* Native /completion ends with stop:true and a stop_type instead of a finish_reason. */
static const char *native_finish_reason(const char *stop_type)
{
	if (!strcmp(stop_type, "eos") || !strcmp(stop_type, "word"))
		return "stop";
	if (!strcmp(stop_type, "limit"))
		return "length";
	return stop_type;
}

static int sse_chunk(struct chat_stream *s, const json_t *o)
{
	/* every json_t here is borrowed from o */
	const json_t *err = json_object_get(o, "error");
	const json_t *choices = json_object_get(o, "choices");
	const json_t *v;

	if (err)
		return fail_server_error(s, err);
	if (json_is_array(choices)) {
		/* The usage chunk has choices:[]; json_array_get() gives NULL then. */
		const json_t *c0 = json_array_get(choices, 0);
		const char *reason = json_string_value(json_object_get(c0, "finish_reason"));

		v = json_object_get(json_object_get(c0, "delta"), "content");
		if (json_is_string(v) && deliver(s, v))
			return -1;
		if (reason)
			set_finish_reason(s->m, reason);
	} else if (json_object_get(o, "content") || json_object_get(o, "stop")) {
		const char *stop_type = json_string_value(json_object_get(o, "stop_type"));

		v = json_object_get(o, "content");
		if (json_is_string(v) && deliver(s, v))
			return -1;
		if (json_is_true(json_object_get(o, "stop"))) {
			if (stop_type)
				set_finish_reason(s->m, native_finish_reason(stop_type));
			s->done = 1;
		}
	}
	v = json_object_get(o, "usage");
	if (json_is_object(v))
		llama_usage(s, v);
	v = json_object_get(o, "timings");
	if (json_is_object(v))
		llama_timings(s, v);
	return 0;
}

static int sse_dispatch(struct chat_stream *s)
{
	const char *p = s->event.buf;
	size_t n = s->event.len;
	json_t *o;
	int rc;

	s->event_has_data = 0;
	trim(&p, &n);
	if (n == 6 && !memcmp(p, "[DONE]", 6)) {
		s->done = 1;
		rc = 0;
	} else if (!n) {
		rc = 0;
	} else if ((rc = fast_path(s, p, n)) != 0) {
		rc = rc < 0 ? -1 : 0;
	} else if (!(o = parse_object(s, p, n))) {
		rc = -1;
	} else {
		rc = sse_chunk(s, o);
		json_decref(o);
	}
	strbuf_reset(&s->event);
	return rc;
}

static int sse_line(struct chat_stream *s, const char *line, size_t len)
{
	const char *colon;
	size_t flen;

	if (!len)
		return s->event_has_data ? sse_dispatch(s) : 0;
	/* ":" and ": ping" are keep-alive comments sent while the model is busy. */
	if (line[0] == ':')
		return 0;
	colon = memchr(line, ':', len);
	flen = colon ? (size_t)(colon - line) : len;
	/* event:, id:, retry: carry nothing a chat reply needs. */
	if (flen != 4 || memcmp(line, "data", 4))
		return 0;
	line += flen;
	len -= flen;
	if (len) {
		line++, len--;
		if (len && *line == ' ')
			line++, len--;
	}
	if (s->event_has_data)
		strbuf_addch(&s->event, '\n');
	strbuf_add(&s->event, line, len);
	s->event_has_data = 1;
	return 0;
}

static int stream_line(void *ud, const char *line, size_t len)
{
	struct chat_stream *s = ud;

	/* After the end marker nothing can change the reply. */
	if (s->done)
		return 0;
	if (s->fmt == STREAM_NDJSON)
		return ndjson_line(s, line, len);
	return sse_line(s, line, len);
}

void chat_stream_init(struct chat_stream *s, enum stream_format fmt, struct chat_metrics *m,
		      chat_token_fn on_delta, void *ud)
{
	memset(s, 0, sizeof(*s));
	s->fmt = fmt;
	line_splitter_init(&s->ls);
	strbuf_init(&s->event, 0);
	strbuf_init(&s->scratch, 0);
	strbuf_init(&s->repair, 0);
	s->m = m;
	s->on_delta = on_delta;
	s->ud = ud;
}

void chat_stream_release(struct chat_stream *s)
{
	line_splitter_release(&s->ls);
	strbuf_release(&s->event);
	strbuf_release(&s->scratch);
	strbuf_release(&s->repair);
}

static int stream_result(const struct chat_stream *s, struct perr *e)
{
	if (!s->failed)
		return 0;
	if (e)
		*e = s->err;
	return -1;
}

int chat_stream_feed(struct chat_stream *s, const void *data, size_t len, struct perr *e)
{
	if (!s->failed && !line_splitter_feed(&s->ls, data, len, stream_line, s) &&
	    line_splitter_pending(&s->ls) > STREAM_MAX_LINE)
		stream_fail(s, PERR_BACKEND_PROTOCOL,
			    "a line of the stream is longer than %u bytes", STREAM_MAX_LINE);
	return stream_result(s, e);
}

int chat_stream_finish(struct chat_stream *s, struct perr *e)
{
	int had_tail = line_splitter_pending(&s->ls) > 0;

	if (s->failed)
		return stream_result(s, e);
	line_splitter_flush(&s->ls, stream_line, s);
	if (!s->failed && s->fmt == STREAM_SSE && s->event_has_data)
		sse_dispatch(s);
	/* A last line without its "\n" that does not parse was cut off, not malformed. */
	if (s->failed && had_tail && s->err.code == PERR_BACKEND_PROTOCOL)
		stream_fail(
		    s, PERR_BACKEND_PROTOCOL,
		    "the stream was cut off in the middle of a line after %zu bytes of text",
		    s->content_bytes);
	if (!s->failed && !s->done)
		stream_fail(s, PERR_BACKEND_PROTOCOL,
			    "the stream ended without its end marker (%s) after %zu bytes of text: "
			    "the reply was cut short",
			    s->fmt == STREAM_NDJSON ? "\"done\":true" : "data: [DONE]",
			    s->content_bytes);
	return stream_result(s, e);
}
