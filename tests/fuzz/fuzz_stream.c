/*
 * fuzz_stream.c - the NDJSON and SSE chat stream parsers, fed arbitrary bytes
 * in arbitrary pieces.
 *
 * DESIGN: every input is read as both formats, three ways each: in one piece,
 * one byte at a time (inputs up to 64 KiB), and in pieces whose sizes follow a
 * pseudo-random sequence seeded by the input. The parser promises that where
 * the body is cut never matters, so the three readings must agree on
 * everything it reports: the text handed out, the result of every feed and of
 * the finish, the error code and the metrics. The line splitter beneath it is
 * held to the same promise on its own. A disagreement aborts, and so does
 * anything the sanitizers catch.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/stream.h"

struct reading {
	struct strbuf text;  /* every delta, in order */
	struct strbuf lines; /* line splitter: each line, then "\x1e" */
	int feed_failed;     /* the first chunk whose feed returned -1, or -1 */
	int finish_rc;
	int code;
	int done;
	struct chat_metrics m;
	size_t content_bytes;
};

static int on_delta(void *ud, const char *delta, size_t len)
{
	struct reading *r = ud;

	if (!len || memchr(delta, '\0', len)) {
		fprintf(stderr, "fuzz_stream: empty delta or a NUL byte in one\n");
		abort();
	}
	strbuf_add(&r->text, delta, len);
	return 0;
}

static int on_line(void *ud, const char *line, size_t len)
{
	struct reading *r = ud;

	strbuf_add(&r->lines, line, len);
	strbuf_addch(&r->lines, '\x1e');
	return 0;
}

/* Chunk sizes: 0 = the whole input, 1 = a byte at a time, else pseudo-random from seed. */
static size_t next_chunk(uint64_t *seed, int mode, size_t left)
{
	size_t n;

	if (mode == 0)
		return left;
	if (mode == 1)
		return 1;
	*seed = *seed * 6364136223846793005ULL + 1442695040888963407ULL;
	n = (size_t)(*seed >> 33) % 97 + 1;
	return n < left ? n : left;
}

static void read_stream(enum stream_format fmt, const uint8_t *data, size_t size, int mode,
			struct reading *r)
{
	struct chat_stream s;
	struct line_splitter ls;
	struct perr e = {0};
	uint64_t seed = size * 0x9e3779b97f4a7c15ULL + (size ? data[0] : 0);
	size_t off = 0;
	int chunk = 0;

	memset(r, 0, sizeof(*r));
	strbuf_init(&r->text, 0);
	strbuf_init(&r->lines, 0);
	r->feed_failed = -1;
	chat_metrics_init(&r->m);
	chat_stream_init(&s, fmt, &r->m, on_delta, r);
	line_splitter_init(&ls);
	while (off < size) {
		size_t n = next_chunk(&seed, mode, size - off);

		if (chat_stream_feed(&s, data + off, n, &e) < 0 && r->feed_failed < 0)
			r->feed_failed =
			    1; /* when, varies with the cuts; that it failed does not */
		line_splitter_feed(&ls, (const char *)data + off, n, on_line, r);
		off += n;
		chunk++;
	}
	line_splitter_flush(&ls, on_line, r);
	if (line_splitter_pending(&ls) != 0) {
		fprintf(stderr, "fuzz_stream: bytes left in the splitter after a flush\n");
		abort();
	}
	line_splitter_release(&ls);
	r->finish_rc = chat_stream_finish(&s, &e);
	r->code = r->finish_rc < 0 ? e.code : 0;
	r->done = s.done;
	r->content_bytes = s.content_bytes;
	chat_stream_release(&s);
	(void)chunk;
}

static void reading_release(struct reading *r)
{
	strbuf_release(&r->text);
	strbuf_release(&r->lines);
}

#define SAME(field)                                                                                \
	do {                                                                                       \
		if (memcmp(&a->field, &b->field, sizeof(a->field)) != 0) {                         \
			fprintf(stderr, "fuzz_stream: %s: '" #field "' depends on the cuts\n",     \
				what);                                                             \
			abort();                                                                   \
		}                                                                                  \
	} while (0)

static void compare(const struct reading *a, const struct reading *b, const char *what)
{
	if (a->text.len != b->text.len || memcmp(a->text.buf, b->text.buf, a->text.len) != 0) {
		fprintf(stderr, "fuzz_stream: %s: the text depends on the cuts\n", what);
		abort();
	}
	if (a->lines.len != b->lines.len || memcmp(a->lines.buf, b->lines.buf, a->lines.len) != 0) {
		fprintf(stderr, "fuzz_stream: %s: the lines depend on the cuts\n", what);
		abort();
	}
	SAME(feed_failed);
	SAME(finish_rc);
	SAME(code);
	SAME(done);
	SAME(content_bytes);
	SAME(m.prompt_tokens);
	SAME(m.cached_tokens);
	SAME(m.completion_tokens);
	SAME(m.prompt_ms);
	SAME(m.gen_ms);
	SAME(m.tokens_per_s);
	SAME(m.load_ms);
	SAME(m.finish_reason);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const enum stream_format fmts[] = {STREAM_NDJSON, STREAM_SSE};
	static const char *const names[][2] = {{"ndjson, bytes", "ndjson, pieces"},
					       {"sse, bytes", "sse, pieces"}};
	size_t f;

	for (f = 0; f < 2; f++) {
		struct reading whole, other;

		read_stream(fmts[f], data, size, 0, &whole);
		if (whole.content_bytes != whole.text.len) {
			fprintf(stderr, "fuzz_stream: content_bytes %zu for %zu bytes of text\n",
				whole.content_bytes, whole.text.len);
			abort();
		}
		if (whole.finish_rc == 0 && !whole.done) {
			fprintf(stderr, "fuzz_stream: finished without the end marker\n");
			abort();
		}
		if (size <= 65536) {
			read_stream(fmts[f], data, size, 1, &other);
			compare(&whole, &other, names[f][0]);
			reading_release(&other);
		}
		read_stream(fmts[f], data, size, 2, &other);
		compare(&whole, &other, names[f][1]);
		reading_release(&other);
		reading_release(&whole);
	}
	return 0;
}
