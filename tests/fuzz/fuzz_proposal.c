/*
 * fuzz_proposal.c - proposal parsing over arbitrary interviewer text.
 *
 * DESIGN: the input is the text of an interviewer turn (cut at its first NUL
 * byte, as a stored turn would be). Besides what the sanitizers catch, what
 * comes out must be safe to act on: a usable #prompt_defined has a system
 * prompt or a template, no part longer than the limit, and a template that
 * holds {input}; a usable #test_setting is a non-empty object of known
 * options that passes the same check a job's options pass; an unusable one
 * says why; and text that was valid UTF-8 gives valid UTF-8 parts.
 */
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "server/proposal.h"
#include "server/tasks.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int utf8_valid(const char *s)
{
	json_t *j = json_string(s);

	json_decref(j);
	return j != NULL;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text = malloc(size + 1);
	struct proposals ps;
	size_t i;
	int text_utf8;

	memcpy(text, data, size);
	text[size] = '\0';
	text_utf8 = utf8_valid(text);
	proposal_parse(text, &ps);
	for (i = 0; i < ps.n; i++) {
		const struct proposal *p = &ps.v[i];
		json_t *j;
		if (!p->usable) {
			if (!p->reason[0])
				abort();
			continue;
		}
		if (p->kind == PROPOSAL_PROMPT) {
			if (!p->system && !p->template)
				abort();
			if (p->system && (strlen(p->system) > PROPOSAL_MAX_BYTES ||
					  (text_utf8 && !utf8_valid(p->system))))
				abort();
			if (p->template && (!strstr(p->template, "{input}") ||
					    strlen(p->template) > PROPOSAL_MAX_BYTES ||
					    (text_utf8 && !utf8_valid(p->template))))
				abort();
		} else if (p->kind == PROPOSAL_SETTING) {
			json_t *errs = json_array();
			if (!json_is_object(p->options) || json_object_size(p->options) == 0 ||
			    tasks_options_check(p->options, "options", errs) < 0)
				abort();
			json_decref(errs);
		} else if (!p->note) {
			abort();
		}
		if (p->kind != PROPOSAL_STOP) {
			if (!(j = proposal_json(p)))
				abort();
			json_decref(j);
		}
	}
	proposals_release(&ps);
	free(text);
	return 0;
}
