/*
 * fuzz_extract.c - both extraction methods over arbitrary interviewer text.
 *
 * DESIGN: the input is the text of an interviewer turn (cut at its first NUL
 * byte, as a stored turn would be). Besides what the sanitizers catch, what
 * comes out must be usable downstream: every optimization has a title and a
 * suggestion, carries the turn it was given, and when the text is valid UTF-8
 * so is every field (a field cut inside a character would be dropped by the
 * JSON views); no field grows past twice the text it came from (lines joined
 * with "; "). The same bytes are also read as a model extractor's reply
 * (extraction "model") checked against themselves.
 */
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/extract.h"
#include "server/extract_model.h"

static int utf8_valid(const char *s)
{
	json_t *j = json_string(s);

	json_decref(j);
	return j != NULL;
}

static void check_field(const char *field, const char *v, size_t text_len, int text_utf8,
			int required)
{
	if (!v) {
		if (required) {
			fprintf(stderr, "fuzz_extract: an optimization without a %s\n", field);
			abort();
		}
		return;
	}
	/* lines are joined with "; " (two bytes for one "\n"): at most twice the text */
	if (strlen(v) > 2 * text_len + 16) {
		fprintf(stderr, "fuzz_extract: %s much longer than the text\n", field);
		abort();
	}
	if (text_utf8 && !utf8_valid(v)) {
		fprintf(stderr, "fuzz_extract: %s is not valid UTF-8 (the text was): %s\n", field,
			v);
		abort();
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const enum extract_method methods[] = {EXTRACT_RUBRIC, EXTRACT_ORIGIN};
	char *text = malloc(size + 1);
	size_t i, k, len;
	int utf8;

	memcpy(text, data, size);
	text[size] = '\0';
	len = strlen(text);
	utf8 = utf8_valid(text);
	for (k = 0; k < 2; k++) {
		struct optim_list l;

		optim_list_init(&l);
		extract_optimizations(methods[k], text, 3, &l);
		for (i = 0; i < l.n; i++) {
			const struct optim *o = &l.v[i];

			if (o->turn != 3) {
				fprintf(stderr, "fuzz_extract: turn %d, want 3\n", o->turn);
				abort();
			}
			check_field("title", o->title, len, utf8, 1);
			check_field("suggestion", o->suggestion, len, utf8, 1);
			check_field("detail", o->detail, len, utf8, 0);
			check_field("test", o->test, len, utf8, 0);
		}
		optim_list_release(&l);
	}
	/* the same bytes as a model extractor's reply about itself: kept items occur in it */
	{
		struct optim_list l;
		json_t *dropped = json_array();
		struct perr e = {0};

		optim_list_init(&l);
		extract_model_parse(text, text, 3, &l, dropped, &e);
		for (i = 0; i < l.n; i++) {
			check_field("title", l.v[i].title, len, utf8, 1);
			check_field("detail", l.v[i].detail, len, utf8, 0);
		}
		optim_list_release(&l);
		json_decref(dropped);
	}
	free(text);
	return 0;
}
