/*
 * fuzz_markdown.c - the Markdown report of any transcript.
 *
 * DESIGN: an input that parses as a JSON object is rendered as it is (the
 * origin transcripts are the seeds, so the fuzzer mutates real shapes and
 * wrong types alike). Any other input is cut into length-prefixed pieces that
 * fill a well-typed transcript: scenario, models, turns with their messages
 * and metrics, optimizations, scores, an error; so arbitrary text reaches
 * every field. Strings that are not valid UTF-8 are left out, as jansson
 * would never hold them. The report of a transcript whose strings are all
 * valid UTF-8 must itself be valid UTF-8.
 */
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/markdown.h"

struct cursor {
	const uint8_t *p;
	size_t left;
};

static unsigned byte(struct cursor *c)
{
	if (!c->left)
		return 0;
	c->left--;
	return *c->p++;
}

/* The next piece as a JSON string: one length byte, then that many bytes. */
static json_t *piece(struct cursor *c)
{
	size_t n = byte(c);
	json_t *s;

	if (n > c->left)
		n = c->left;
	s = json_stringn((const char *)c->p, n);
	c->p += n;
	c->left -= n;
	return s ? s : json_string("");
}

static json_t *number(struct cursor *c)
{
	unsigned k = byte(c);
	double v;

	switch (k % 6) {
	case 0:
		return json_null();
	case 1:
		return json_integer((json_int_t)(int8_t)byte(c) * 1000);
	case 2:
		v = (double)byte(c) / 7.0;
		return json_real(v);
	case 3:
		return json_real(1e300 * (k & 1 ? 1 : -1));
	case 4:
		return json_integer(INT64_MAX - byte(c));
	default:
		return json_real(-0.5);
	}
}

static json_t *build(struct cursor *c)
{
	json_t *t = json_object(), *sc = json_object(), *sm = json_object();
	json_t *conv = json_array(), *opts = json_array();
	unsigned nturns = byte(c) % 8, nopts = byte(c) % 5, i;
	static const char *const speakers[] = {"interviewer", "candidate", "judge", ""};
	static const char *const statuses[] = {"succeeded", "failed", "cancelled"};
	static const char *const metrics[] = {"ttft_ms",	   "prompt_tokens", "cached_tokens",
					      "completion_tokens", "prompt_ms",	    "gen_ms",
					      "tokens_per_s",	   "load_ms"};

	json_object_set_new(sc, "name", piece(c));
	json_object_set_new(sc, "problem", piece(c));
	json_object_set_new(sc, "context", piece(c));
	json_object_set_new(sc, byte(c) & 1 ? "goal" : "description", piece(c));
	json_object_set_new(t, "scenario", sc);
	json_object_set_new(t, "interviewer_model", piece(c));
	json_object_set_new(t, "candidate_model", piece(c));
	json_object_set_new(t, "timestamp", piece(c));
	json_object_set_new(sm, "total_duration", number(c));
	json_object_set_new(sm, "turns_completed", number(c));
	json_object_set_new(sm, "optimizations_found", number(c));
	json_object_set_new(sm, "interview_quality", number(c));
	json_object_set_new(sm, "candidate_engagement", number(c));
	json_object_set_new(t, "success_metrics", sm);
	for (i = 0; i < nturns; i++) {
		json_t *turn = json_object(), *m = json_object();
		size_t k;

		json_object_set_new(turn, "turn", number(c));
		json_object_set_new(turn, "speaker", json_string(speakers[byte(c) % 4]));
		json_object_set_new(turn, "model", piece(c));
		json_object_set_new(turn, "message", piece(c));
		json_object_set_new(turn, "duration", number(c));
		json_object_set_new(turn, "timestamp", piece(c));
		for (k = 0; k < sizeof(metrics) / sizeof(metrics[0]); k++)
			json_object_set_new(m, metrics[k], number(c));
		json_object_set_new(m, "finish_reason", piece(c));
		if (byte(c) & 1)
			json_object_set_new(turn, "metrics", m);
		else
			json_decref(m);
		json_array_append_new(conv, turn);
	}
	json_object_set_new(t, "conversation", conv);
	for (i = 0; i < nopts; i++) {
		json_t *o = json_object();

		json_object_set_new(o, "title", piece(c));
		json_object_set_new(o, "suggestion", piece(c));
		json_object_set_new(o, "detail", byte(c) & 1 ? piece(c) : json_null());
		json_object_set_new(o, "test", byte(c) & 1 ? piece(c) : json_null());
		json_object_set_new(o, "turn", number(c));
		json_array_append_new(opts, o);
	}
	json_object_set_new(t, "optimizations_discovered", opts);
	if (byte(c) & 1) {
		json_t *scores = json_object(), *wrap;
		const char *const parts[] = {"interview_quality", "candidate_engagement"};
		for (i = 0; i < 2; i++) {
			json_t *p = json_object(), *comps = json_array();
			unsigned n = byte(c) % 4, k;
			for (k = 0; k < n; k++)
				json_array_append_new(comps,
						      json_pack("{s:o, s:o, s:o, s:o}", "name",
								piece(c), "points", number(c),
								"max", number(c), "why", piece(c)));
			json_object_set_new(p, "components", comps);
			json_object_set_new(p, "total", number(c));
			json_object_set_new(scores, parts[i], p);
		}
		/* score.h's object, or under "components" as the metrics hold it */
		if (byte(c) & 1) {
			wrap = json_object();
			json_object_set_new(wrap, "components", scores);
			scores = wrap;
		}
		json_object_set_new(t, "scores", scores);
	}
	json_object_set_new(t, "status", json_string(statuses[byte(c) % 3]));
	if (byte(c) & 1)
		json_object_set_new(t, "error",
				    json_pack("{s:o, s:o}", "code", piece(c), "message", piece(c)));
	return t;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	json_t *t = json_loadb((const char *)data, size, 0, NULL);
	struct strbuf out;
	json_t *check;

	if (!json_is_object(t)) {
		struct cursor c = {data, size};
		json_decref(t);
		t = build(&c);
	}
	strbuf_init(&out, 4096);
	markdown_render_transcript(t, &out);
	check = json_stringn(out.buf, out.len);
	if (!check) {
		fprintf(stderr, "fuzz_markdown: the report is not valid UTF-8\n");
		abort();
	}
	json_decref(check);
	strbuf_release(&out);
	json_decref(t);
	return 0;
}
