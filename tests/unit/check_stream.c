/*
 * check_stream.c - the stream parsers read what real servers send, however the bytes are cut.
 *
 * Every stream is parsed three ways: in one block, one byte at a time, and in random pieces
 * (several seeds). The text and the metrics must come out the same every time. The
 * llama-server streams are real captures (../shared/fixtures/llama-server, or
 * $PARLEY_SHARED/fixtures/llama-server); the Ollama ones follow Ollama's documented shapes.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/stream.h"
#include "tests/harness.h"

/* ---- helpers ---- */

static char *read_fixture(const char *name, size_t *len)
{
	char rel[256];
	char *buf;

	snprintf(rel, sizeof(rel), "llama-server/%s", name);
	buf = harness_fixture(rel, len);
	ck_assert_msg(buf != NULL,
		      "cannot read fixture '%s' (run from the repo root or set PARLEY_SHARED)",
		      rel);
	return buf;
}

struct run {
	struct strbuf text;
	struct chat_metrics m;
	struct perr e;
	int rc;
	int deltas;
	int stop_at; /* on_delta asks to stop at this delta (1-based); 0: never */
};

static int on_delta(void *ud, const char *delta, size_t len)
{
	struct run *r = ud;

	ck_assert_uint_gt(len, 0);
	strbuf_add(&r->text, delta, len);
	r->deltas++;
	return r->stop_at && r->deltas >= r->stop_at;
}

enum cut { CUT_BLOCK, CUT_BYTES, CUT_RANDOM };

/* Parses data cut the given way; r must be released with run_release(). */
static void run_parse(struct run *r, enum stream_format fmt, const char *data, size_t len,
		      enum cut cut, unsigned seed, int stop_at)
{
	struct chat_stream s;
	size_t off = 0;

	memset(r, 0, sizeof(*r));
	r->stop_at = stop_at;
	strbuf_init(&r->text, 0);
	chat_metrics_init(&r->m);
	chat_stream_init(&s, fmt, &r->m, on_delta, r);
	srand(seed);
	while (off < len && !r->rc) {
		size_t n = len - off;

		if (cut == CUT_BYTES)
			n = 1;
		else if (cut == CUT_RANDOM)
			n = 1 + (size_t)rand() % 40;
		if (n > len - off)
			n = len - off;
		r->rc = chat_stream_feed(&s, data + off, n, &r->e);
		off += n;
	}
	if (!r->rc)
		r->rc = chat_stream_finish(&s, &r->e);
	else
		/* a failed stream stays failed */
		ck_assert_int_eq(chat_stream_finish(&s, NULL), -1);
	chat_stream_release(&s);
}

static void run_release(struct run *r)
{
	strbuf_release(&r->text);
}

#define ck_assert_ms(x, want) ck_assert_double_eq_tol((x), (want), 1e-6)

/* Checks that every way of cutting data gives the same outcome as one block, and returns
 * that outcome in *out. */
static void parse_all_ways(struct run *out, enum stream_format fmt, const char *data, size_t len)
{
	struct run r;
	unsigned seed;
	int way;

	run_parse(out, fmt, data, len, CUT_BLOCK, 0, 0);
	for (way = 0; way < 21; way++) {
		seed = (unsigned)way;
		run_parse(&r, fmt, data, len, way == 0 ? CUT_BYTES : CUT_RANDOM, seed, 0);
		ck_assert_int_eq(r.rc, out->rc);
		ck_assert_str_eq(r.text.buf, out->text.buf);
		ck_assert_int_eq(r.e.code, out->e.code);
		ck_assert_int_eq(r.m.prompt_tokens, out->m.prompt_tokens);
		ck_assert_int_eq(r.m.cached_tokens, out->m.cached_tokens);
		ck_assert_int_eq(r.m.completion_tokens, out->m.completion_tokens);
		ck_assert_ms(r.m.prompt_ms, out->m.prompt_ms);
		ck_assert_ms(r.m.gen_ms, out->m.gen_ms);
		ck_assert_ms(r.m.tokens_per_s, out->m.tokens_per_s);
		ck_assert_ms(r.m.load_ms, out->m.load_ms);
		ck_assert_str_eq(r.m.finish_reason, out->m.finish_reason);
		run_release(&r);
	}
}

static void parse_str_all_ways(struct run *out, enum stream_format fmt, const char *data)
{
	parse_all_ways(out, fmt, data, strlen(data));
}

/* ---- line splitter ---- */

struct lines {
	struct strbuf all; /* lines joined with '|' */
	int n;
	int stop_at;
};

static int on_line(void *ud, const char *line, size_t len)
{
	struct lines *l = ud;

	strbuf_add(&l->all, line, len);
	strbuf_addch(&l->all, '|');
	return ++l->n == l->stop_at;
}

START_TEST(test_lines_split_anywhere)
{
	static const char data[] = "first\r\nsecond\n\nthird line\r\n\r\nno newline";
	size_t len = strlen(data);
	size_t cut1, cut2;

	/* every way of cutting the input into three reads yields the same lines */
	for (cut1 = 0; cut1 <= len; cut1++) {
		for (cut2 = cut1; cut2 <= len; cut2++) {
			struct line_splitter ls;
			struct lines l = {.n = 0};

			strbuf_init(&l.all, 0);
			line_splitter_init(&ls);
			ck_assert_int_eq(line_splitter_feed(&ls, data, cut1, on_line, &l), 0);
			ck_assert_int_eq(
			    line_splitter_feed(&ls, data + cut1, cut2 - cut1, on_line, &l), 0);
			ck_assert_int_eq(
			    line_splitter_feed(&ls, data + cut2, len - cut2, on_line, &l), 0);
			ck_assert_str_eq(l.all.buf, "first|second||third line||");
			ck_assert_uint_eq(line_splitter_pending(&ls), strlen("no newline"));
			ck_assert_int_eq(line_splitter_flush(&ls, on_line, &l), 0);
			ck_assert_str_eq(l.all.buf, "first|second||third line||no newline|");
			ck_assert_uint_eq(line_splitter_pending(&ls), 0);
			line_splitter_release(&ls);
			strbuf_release(&l.all);
		}
	}
}
END_TEST

START_TEST(test_lines_stop)
{
	struct line_splitter ls;
	struct lines l = {.stop_at = 2};

	strbuf_init(&l.all, 0);
	line_splitter_init(&ls);
	ck_assert_int_eq(line_splitter_feed(&ls, "a\nb\nc\n", 6, on_line, &l), 1);
	ck_assert_str_eq(l.all.buf, "a|b|");
	line_splitter_release(&ls);
	strbuf_release(&l.all);
}
END_TEST

/* ---- llama-server SSE, real captures ---- */

START_TEST(test_sse_chat_stream_fixture)
{
	struct run r;
	size_t len;
	char *data = read_fixture("chat_stream.txt", &len);

	parse_all_ways(&r, STREAM_SSE, data, len);
	ck_assert_int_eq(r.rc, 0);
	ck_assert_str_eq(r.text.buf, "Shen as they");
	ck_assert_str_eq(r.m.finish_reason, "length");
	/* usage{} wins for counts; timings{} gives the cache and the times */
	ck_assert_int_eq(r.m.prompt_tokens, 52);
	ck_assert_int_eq(r.m.cached_tokens, 11);
	ck_assert_int_eq(r.m.completion_tokens, 6);
	ck_assert_ms(r.m.prompt_ms, 2.119);
	ck_assert_ms(r.m.gen_ms, 1.055);
	ck_assert_ms(r.m.tokens_per_s, 4739.336492890996);
	ck_assert(r.m.load_ms < 0); /* llama-server does not say */
	run_release(&r);
	free(data);
}
END_TEST

START_TEST(test_sse_chat_stream_crlf)
{
	struct run r;
	struct strbuf crlf;
	size_t len, i;
	char *data = read_fixture("chat_stream.txt", &len);

	strbuf_init(&crlf, len * 2);
	for (i = 0; i < len; i++) {
		if (data[i] == '\n')
			strbuf_addch(&crlf, '\r');
		strbuf_addch(&crlf, data[i]);
	}
	parse_all_ways(&r, STREAM_SSE, crlf.buf, crlf.len);
	ck_assert_int_eq(r.rc, 0);
	ck_assert_str_eq(r.text.buf, "Shen as they");
	ck_assert_int_eq(r.m.prompt_tokens, 52);
	run_release(&r);
	strbuf_release(&crlf);
	free(data);
}
END_TEST

START_TEST(test_sse_no_usage_fixture)
{
	struct run r;
	size_t len;
	char *data = read_fixture("chat_stream_nousage.txt", &len);

	parse_all_ways(&r, STREAM_SSE, data, len);
	ck_assert_int_eq(r.rc, 0);
	ck_assert_str_eq(r.text.buf, "Lide for");
	ck_assert_str_eq(r.m.finish_reason, "length");
	/* without usage{}: prompt = cached + processed, as Ollama counts it */
	ck_assert_int_eq(r.m.prompt_tokens, 15 + 27);
	ck_assert_int_eq(r.m.cached_tokens, 15);
	ck_assert_int_eq(r.m.completion_tokens, 4);
	ck_assert_ms(r.m.prompt_ms, 1.795);
	ck_assert_ms(r.m.gen_ms, 0.752);
	ck_assert_ms(r.m.tokens_per_s, 3989.3617021276596);
	run_release(&r);
	free(data);
}
END_TEST

START_TEST(test_sse_native_completion_fixture)
{
	struct run r;
	size_t len;
	char *data = read_fixture("completion_stream.txt", &len);

	/* native /completion: no [DONE], the end marker is stop:true */
	parse_all_ways(&r, STREAM_SSE, data, len);
	ck_assert_int_eq(r.rc, 0);
	ck_assert_str_eq(r.text.buf, ", there was a little girl");
	ck_assert_str_eq(r.m.finish_reason, "length");
	ck_assert_int_eq(r.m.prompt_tokens, 5);
	ck_assert_int_eq(r.m.cached_tokens, 4);
	ck_assert_int_eq(r.m.completion_tokens, 8);
	run_release(&r);
	free(data);
}
END_TEST

START_TEST(test_sse_pings_and_other_fields_ignored)
{
	struct run r;
	static const char data[] =
	    ":\n\n"
	    ": ping\n\n"
	    "event: message\n"
	    "id: 1\n"
	    "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hel\"}}]}\n\n"
	    ": ping - 2026-11-26 13:58:43.123456+00:00\n\n"
	    "retry: 1000\n"
	    "data:{\"choices\":[{\"index\":0,\"delta\":{\"content\":\"lo\"}}]}\n\n"
	    ":\n\n"
	    "data: {\"choices\":[{\"finish_reason\":\"stop\",\"index\":0,\"delta\":{}}]}\n\n"
	    "data: [DONE]\n\n";

	parse_str_all_ways(&r, STREAM_SSE, data);
	ck_assert_int_eq(r.rc, 0);
	ck_assert_str_eq(r.text.buf, "Hello");
	ck_assert_str_eq(r.m.finish_reason, "stop");
	/* nothing reported: all unknown, never 0 */
	ck_assert_int_eq(r.m.prompt_tokens, -1);
	ck_assert_int_eq(r.m.cached_tokens, -1);
	ck_assert_int_eq(r.m.completion_tokens, -1);
	ck_assert(r.m.prompt_ms < 0 && r.m.gen_ms < 0 && r.m.tokens_per_s < 0);
	run_release(&r);
}
END_TEST

START_TEST(test_sse_without_done_is_truncated)
{
	struct run r;
	size_t len;
	char *data = read_fixture("chat_stream.txt", &len);
	char *done = strstr(data, "data: [DONE]");

	ck_assert_ptr_nonnull(done);
	parse_all_ways(&r, STREAM_SSE, data, (size_t)(done - data));
	ck_assert_int_eq(r.rc, -1);
	ck_assert_int_eq(r.e.code, PERR_BACKEND_PROTOCOL);
	ck_assert_ptr_nonnull(strstr(r.e.msg, "cut short"));
	/* what did arrive is kept */
	ck_assert_str_eq(r.text.buf, "Shen as they");
	run_release(&r);

	/* cut in the middle of an event */
	parse_all_ways(&r, STREAM_SSE, data, 300);
	ck_assert_int_eq(r.rc, -1);
	ck_assert_int_eq(r.e.code, PERR_BACKEND_PROTOCOL);
	run_release(&r);
	free(data);
}
END_TEST

START_TEST(test_sse_done_without_final_newline)
{
	struct run r;

	parse_str_all_ways(
	    &r, STREAM_SSE,
	    "data: {\"choices\":[{\"delta\":{\"content\":\"ok\"}}]}\n\ndata: [DONE]");
	ck_assert_int_eq(r.rc, 0);
	ck_assert_str_eq(r.text.buf, "ok");
	run_release(&r);
}
END_TEST

START_TEST(test_sse_error_mid_stream)
{
	struct run r;
	static const char data[] =
	    "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Once\"}}]}\n\n"
	    ": ping\n\n"
	    "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\" upon\"}}]}\n\n"
	    "data: {\"error\":{\"code\":500,\"message\":\"slot 1 crashed\",\"type\":"
	    "\"server_error\"}}\n\n"
	    "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\" never\"}}]}\n\n"
	    "data: [DONE]\n\n";

	parse_str_all_ways(&r, STREAM_SSE, data);
	ck_assert_int_eq(r.rc, -1);
	ck_assert_int_eq(r.e.code, PERR_BACKEND_ERROR);
	ck_assert_ptr_nonnull(strstr(r.e.msg, "slot 1 crashed"));
	ck_assert_str_eq(r.text.buf, "Once upon");
	run_release(&r);
}
END_TEST

START_TEST(test_sse_malformed_json)
{
	struct run r;

	parse_str_all_ways(&r, STREAM_SSE, "data: {\"choices\":[{\"delta\":\n\ndata: [DONE]\n\n");
	ck_assert_int_eq(r.rc, -1);
	ck_assert_int_eq(r.e.code, PERR_BACKEND_PROTOCOL);
	ck_assert_ptr_nonnull(strstr(r.e.msg, "malformed json"));
	run_release(&r);
}
END_TEST

/* ---- Ollama NDJSON, in the shapes of Ollama's docs/api.md ---- */

static const char ollama_stream[] =
    "{\"model\":\"gemma3:1b\",\"created_at\":\"2026-11-26T13:58:43.1Z\",\"message\":"
    "{\"role\":\"assistant\",\"content\":\"The\"},\"done\":false}\n"
    "{\"model\":\"gemma3:1b\",\"created_at\":\"2026-11-26T13:58:43.2Z\",\"message\":"
    "{\"role\":\"assistant\",\"content\":\" caf\\u00e9 \"},\"done\":false}\n"
    "{\"model\":\"gemma3:1b\",\"created_at\":\"2026-11-26T13:58:43.3Z\",\"message\":"
    "{\"role\":\"assistant\",\"content\":\"\xf0\x9f\x8c\x8d is\"},\"done\":false}\n"
    "{\"model\":\"gemma3:1b\",\"created_at\":\"2026-11-26T13:58:43.4Z\",\"message\":"
    "{\"role\":\"assistant\",\"content\":\" open.\"},\"done\":true,\"done_reason\":\"stop\","
    "\"total_duration\":5191566416,\"load_duration\":2154458,\"prompt_eval_count\":26,"
    "\"prompt_eval_duration\":383809000,\"eval_count\":298,\"eval_duration\":4799921000}\n";

/*
 * The fast path for token chunks decodes the text itself; it must give
 * exactly what jansson gives, and leave to jansson (and its errors) anything
 * it is not sure of. Text jansson refuses only for being unclean (a lone
 * surrogate, a byte that is not UTF-8) is the model's: it arrives repaired.
 */
START_TEST(test_fast_path_agrees_with_jansson)
{
	static const char *const bodies[] = {
	    "plain",
	    "",
	    "tab\\tnew\\nline\\r \\\"quoted\\\" back\\\\slash \\/ \\b\\f",
	    "caf\\u00e9 \\u20ac \\ud83d\\ude00 emoji",
	    "caf\xc3\xa9 raw utf-8 \xe2\x82\xac \xf0\x9f\x98\x80",
	    "nul \\u0000 inside",
	    "lone \\ud800 surrogate",
	    "bad \\x escape",
	    "raw\x01control",
	    "invalid \xc3\x28 utf-8",
	    "\\u00",
	};
	size_t i;
	int fmt;

	for (fmt = 0; fmt < 2; fmt++) {
		for (i = 0; i < ARRAY_SIZE(bodies); i++) {
			struct strbuf line, want;
			json_t *o, *c;
			struct run r;

			strbuf_init(&line, 0);
			strbuf_init(&want, 0);
			if (fmt == 0)
				strbuf_addf(
				    &line,
				    "{\"model\":\"m\",\"created_at\":\"x\",\"message\":"
				    "{\"role\":\"assistant\",\"content\":\"%s\"},\"done\":false}",
				    bodies[i]);
			else
				strbuf_addf(&line,
					    "{\"choices\":[{\"finish_reason\":null,\"index\":0,"
					    "\"delta\":{\"content\":\"%s\"}}],\"created\":1,"
					    "\"object\":\"chat.completion.chunk\"}",
					    bodies[i]);
			o = json_loadb(line.buf, line.len, JSON_ALLOW_NUL, NULL);
			c = fmt == 0 ? json_object_get(json_object_get(o, "message"), "content")
				     : json_object_get(
					   json_object_get(
					       json_array_get(json_object_get(o, "choices"), 0),
					       "delta"),
					   "content");
			if (c) {
				/* NUL bytes are dropped on delivery, as always */
				const char *t = json_string_value(c);
				size_t k, n = json_string_length(c);
				for (k = 0; k < n; k++)
					if (t[k])
						strbuf_addch(&want, t[k]);
			}
			if (fmt == 0)
				strbuf_addstr(&line, "\n{\"model\":\"m\",\"done\":true}\n");
			else {
				struct strbuf sse;
				strbuf_init(&sse, 0);
				strbuf_addf(&sse, "data: %s\n\ndata: [DONE]\n\n", line.buf);
				strbuf_release(&line);
				line = sse;
			}
			run_parse(&r, fmt == 0 ? STREAM_NDJSON : STREAM_SSE, line.buf, line.len,
				  CUT_BLOCK, 0, 0);
			if (!o && strstr(bodies[i], "lone")) {
				ck_assert_msg(r.rc == 0, "body %zu: %s", i, r.e.msg);
				ck_assert_str_eq(r.text.buf, "lone \xEF\xBF\xBD surrogate");
			} else if (!o && strstr(bodies[i], "invalid")) {
				ck_assert_msg(r.rc == 0, "body %zu: %s", i, r.e.msg);
				ck_assert_str_eq(r.text.buf, "invalid \xEF\xBF\xBD( utf-8");
			} else if (o) {
				ck_assert_msg(r.rc == 0, "body %zu (%s): %s", i,
					      fmt ? "sse" : "ndjson", r.e.msg);
				ck_assert_uint_eq(r.text.len, want.len);
				ck_assert_msg(memcmp(r.text.buf, want.buf, want.len) == 0,
					      "body %zu differs", i);
			} else {
				ck_assert_msg(r.rc == -1 && r.e.code == PERR_BACKEND_PROTOCOL,
					      "body %zu: jansson refuses it, the stream must fail",
					      i);
			}
			json_decref(o);
			run_release(&r);
			strbuf_release(&line);
			strbuf_release(&want);
		}
	}
}
END_TEST

START_TEST(test_ndjson_stream)
{
	struct run r;

	parse_str_all_ways(&r, STREAM_NDJSON, ollama_stream);
	ck_assert_int_eq(r.rc, 0);
	/* the last chunk carries text too; UTF-8 survives any cut */
	ck_assert_str_eq(r.text.buf, "The caf\xc3\xa9 \xf0\x9f\x8c\x8d is open.");
	ck_assert_str_eq(r.m.finish_reason, "stop");
	ck_assert_int_eq(r.m.prompt_tokens, 26);
	ck_assert_int_eq(r.m.cached_tokens, -1); /* Ollama does not say */
	ck_assert_int_eq(r.m.completion_tokens, 298);
	ck_assert_ms(r.m.prompt_ms, 383.809);
	ck_assert_ms(r.m.gen_ms, 4799.921);
	ck_assert_ms(r.m.load_ms, 2.154458);
	ck_assert_ms(r.m.tokens_per_s, 298 / 4.799921);
	run_release(&r);
}
END_TEST

START_TEST(test_ndjson_crlf_and_blank_lines)
{
	struct run r;

	parse_str_all_ways(
	    &r, STREAM_NDJSON,
	    "{\"message\":{\"role\":\"assistant\",\"content\":\"a\"},\"done\":false}"
	    "\r\n\r\n"
	    "{\"message\":{\"role\":\"assistant\",\"content\":\"b\"},\"done\":true}\r\n");
	ck_assert_int_eq(r.rc, 0);
	ck_assert_str_eq(r.text.buf, "ab");
	run_release(&r);
}
END_TEST

START_TEST(test_ndjson_missing_metrics_are_unknown)
{
	struct run r;

	/* omitempty: an old Ollama on a cache hit sends no prompt_eval_count */
	parse_str_all_ways(
	    &r, STREAM_NDJSON,
	    "{\"message\":{\"role\":\"assistant\",\"content\":\"Hi\"},\"done\":false}\n"
	    "{\"message\":{\"role\":\"assistant\",\"content\":\"\"},\"done\":true,"
	    "\"done_reason\":\"stop\",\"eval_count\":3}\n");
	ck_assert_int_eq(r.rc, 0);
	ck_assert_str_eq(r.text.buf, "Hi");
	ck_assert_int_eq(r.m.prompt_tokens, -1);
	ck_assert_int_eq(r.m.cached_tokens, -1);
	ck_assert_int_eq(r.m.completion_tokens, 3);
	ck_assert(r.m.prompt_ms < 0);
	ck_assert(r.m.gen_ms < 0);
	ck_assert(r.m.load_ms < 0);
	ck_assert(r.m.tokens_per_s < 0); /* no eval_duration, no rate */
	run_release(&r);

	parse_str_all_ways(&r, STREAM_NDJSON, "{\"done\":true}\n");
	ck_assert_int_eq(r.rc, 0);
	ck_assert_str_eq(r.text.buf, "");
	ck_assert_str_eq(r.m.finish_reason, "");
	ck_assert_int_eq(r.m.completion_tokens, -1);
	run_release(&r);
}
END_TEST

START_TEST(test_ndjson_done_reason_length)
{
	struct run r;

	parse_str_all_ways(&r, STREAM_NDJSON,
			   "{\"message\":{\"role\":\"assistant\",\"content\":\"one two\"},"
			   "\"done\":false}\n"
			   "{\"message\":{\"role\":\"assistant\",\"content\":\"\"},\"done\":true,"
			   "\"done_reason\":\"length\",\"prompt_eval_count\":10,"
			   "\"prompt_eval_duration\":1000000,\"eval_count\":2,"
			   "\"eval_duration\":20000000}\n");
	ck_assert_int_eq(r.rc, 0);
	ck_assert_str_eq(r.m.finish_reason, "length");
	ck_assert_ms(r.m.prompt_ms, 1.0);
	ck_assert_ms(r.m.gen_ms, 20.0);
	ck_assert_ms(r.m.tokens_per_s, 100.0);
	run_release(&r);
}
END_TEST

START_TEST(test_ndjson_error_line_mid_stream)
{
	struct run r;

	/* HTTP 200 all along: the error is only in the stream */
	parse_str_all_ways(
	    &r, STREAM_NDJSON,
	    "{\"message\":{\"role\":\"assistant\",\"content\":\"Par\"},\"done\":false}\n"
	    "{\"error\":\"model runner has unexpectedly stopped, this may be due to "
	    "resource limitations\"}\n");
	ck_assert_int_eq(r.rc, -1);
	ck_assert_int_eq(r.e.code, PERR_BACKEND_ERROR);
	ck_assert_ptr_nonnull(strstr(r.e.msg, "model runner has unexpectedly stopped"));
	ck_assert_str_eq(r.text.buf, "Par");
	run_release(&r);
}
END_TEST

START_TEST(test_ndjson_without_done_is_truncated)
{
	struct run r;
	const char *last = strstr(ollama_stream, "{\"model\":\"gemma3:1b\",\"created_at\":"
						 "\"2026-11-26T13:58:43.4Z\"");

	ck_assert_ptr_nonnull(last);
	/* cut between lines */
	parse_all_ways(&r, STREAM_NDJSON, ollama_stream, (size_t)(last - ollama_stream));
	ck_assert_int_eq(r.rc, -1);
	ck_assert_int_eq(r.e.code, PERR_BACKEND_PROTOCOL);
	ck_assert_ptr_nonnull(strstr(r.e.msg, "cut short"));
	ck_assert_str_eq(r.text.buf, "The caf\xc3\xa9 \xf0\x9f\x8c\x8d is");
	ck_assert_int_eq(r.m.completion_tokens, -1);
	run_release(&r);

	/* cut in the middle of the last line */
	parse_all_ways(&r, STREAM_NDJSON, ollama_stream, strlen(ollama_stream) - 30);
	ck_assert_int_eq(r.rc, -1);
	ck_assert_int_eq(r.e.code, PERR_BACKEND_PROTOCOL);
	ck_assert_ptr_nonnull(strstr(r.e.msg, "cut off"));
	run_release(&r);

	/* nothing at all */
	parse_str_all_ways(&r, STREAM_NDJSON, "");
	ck_assert_int_eq(r.rc, -1);
	ck_assert_int_eq(r.e.code, PERR_BACKEND_PROTOCOL);
	run_release(&r);
}
END_TEST

START_TEST(test_ndjson_last_line_without_newline)
{
	struct run r;

	parse_all_ways(&r, STREAM_NDJSON, ollama_stream, strlen(ollama_stream) - 1);
	ck_assert_int_eq(r.rc, 0);
	ck_assert_int_eq(r.m.completion_tokens, 298);
	run_release(&r);
}
END_TEST

START_TEST(test_ndjson_given_sse_says_which_kind)
{
	struct run r;
	size_t len;
	char *data = read_fixture("chat_stream.txt", &len);

	parse_all_ways(&r, STREAM_NDJSON, data, len);
	ck_assert_int_eq(r.rc, -1);
	ck_assert_int_eq(r.e.code, PERR_BACKEND_PROTOCOL);
	ck_assert_ptr_nonnull(strstr(r.e.msg, "kind=llama-server"));
	run_release(&r);
	free(data);
}
END_TEST

START_TEST(test_ndjson_nul_dropped)
{
	struct run r;

	parse_str_all_ways(&r, STREAM_NDJSON,
			   "{\"message\":{\"content\":\"a\\u0000b\"},\"done\":true}\n");
	ck_assert_int_eq(r.rc, 0);
	ck_assert_uint_eq(r.text.len, 2);
	ck_assert_str_eq(r.text.buf, "ab");
	run_release(&r);
}
END_TEST

/* Found by fuzz_stream: a count written as a float too big for a long was converted anyway
 * (undefined behaviour). It is not a count: unknown. */
START_TEST(test_counts_beyond_long_are_unknown)
{
	struct run r;

	parse_str_all_ways(&r, STREAM_NDJSON,
			   "{\"message\":{\"content\":\"x\"},\"done\":true,"
			   "\"prompt_eval_count\":1e300,\"eval_count\":-1e300}\n");
	ck_assert_int_eq(r.rc, 0);
	ck_assert_int_eq(r.m.prompt_tokens, -1);
	ck_assert_int_eq(r.m.completion_tokens, -1);
	run_release(&r);
	parse_str_all_ways(
	    &r, STREAM_SSE,
	    "data: {\"choices\":[{\"delta\":{\"content\":\"x\"}}],\"usage\":"
	    "{\"prompt_tokens\":12.0,\"completion_tokens\":1e19}}\n\ndata: [DONE]\n\n");
	ck_assert_int_eq(r.rc, 0);
	ck_assert_int_eq(r.m.prompt_tokens, 12);
	ck_assert_int_eq(r.m.completion_tokens, -1);
	run_release(&r);
}
END_TEST

START_TEST(test_reader_can_stop_the_stream)
{
	struct run r;

	run_parse(&r, STREAM_NDJSON, ollama_stream, strlen(ollama_stream), CUT_BYTES, 0, 2);
	ck_assert_int_eq(r.rc, -1);
	ck_assert_int_eq(r.e.code, PERR_CANCELLED);
	ck_assert_int_eq(r.deltas, 2);
	run_release(&r);
}
END_TEST

START_TEST(test_overlong_line_fails)
{
	struct chat_stream s;
	struct chat_metrics m;
	struct perr e;
	size_t chunk = 1 << 20, sent = 0;
	char *junk = xmalloc(chunk);
	int rc = 0;

	memset(junk, 'x', chunk);
	chat_metrics_init(&m);
	chat_stream_init(&s, STREAM_NDJSON, &m, NULL, NULL);
	while (!rc && sent <= STREAM_MAX_LINE + chunk) {
		rc = chat_stream_feed(&s, junk, chunk, &e);
		sent += chunk;
	}
	ck_assert_int_eq(rc, -1);
	ck_assert_int_eq(e.code, PERR_BACKEND_PROTOCOL);
	chat_stream_release(&s);
	free(junk);
}
END_TEST

static Suite *stream_suite(void)
{
	Suite *s = suite_create("stream");
	TCase *lines = tcase_create("lines");
	TCase *sse = tcase_create("sse");
	TCase *ndjson = tcase_create("ndjson");

	tcase_add_test(lines, test_lines_split_anywhere);
	tcase_add_test(lines, test_lines_stop);
	suite_add_tcase(s, lines);

	tcase_set_timeout(sse, 60);
	tcase_add_test(sse, test_sse_chat_stream_fixture);
	tcase_add_test(sse, test_sse_chat_stream_crlf);
	tcase_add_test(sse, test_sse_no_usage_fixture);
	tcase_add_test(sse, test_sse_native_completion_fixture);
	tcase_add_test(sse, test_sse_pings_and_other_fields_ignored);
	tcase_add_test(sse, test_sse_without_done_is_truncated);
	tcase_add_test(sse, test_sse_done_without_final_newline);
	tcase_add_test(sse, test_sse_error_mid_stream);
	tcase_add_test(sse, test_sse_malformed_json);
	suite_add_tcase(s, sse);

	tcase_set_timeout(ndjson, 60);
	tcase_add_test(ndjson, test_ndjson_stream);
	tcase_add_test(ndjson, test_ndjson_crlf_and_blank_lines);
	tcase_add_test(ndjson, test_ndjson_missing_metrics_are_unknown);
	tcase_add_test(ndjson, test_ndjson_done_reason_length);
	tcase_add_test(ndjson, test_ndjson_error_line_mid_stream);
	tcase_add_test(ndjson, test_ndjson_without_done_is_truncated);
	tcase_add_test(ndjson, test_ndjson_last_line_without_newline);
	tcase_add_test(ndjson, test_ndjson_given_sse_says_which_kind);
	tcase_add_test(ndjson, test_ndjson_nul_dropped);
	tcase_add_test(ndjson, test_reader_can_stop_the_stream);
	tcase_add_test(ndjson, test_counts_beyond_long_are_unknown);
	tcase_add_test(ndjson, test_overlong_line_fails);
	tcase_add_test(ndjson, test_fast_path_agrees_with_jansson);
	suite_add_tcase(s, ndjson);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(stream_suite());
	int failed;

	harness_shared_note("check_stream");
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed != 0;
}
