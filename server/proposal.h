/*
 * proposal.h - what the interviewer proposes for a trial (DESIGN §7), read
 * from one of its turns.
 *
 * DESIGN: a turn is scanned for the markers #prompt_defined, #test_setting
 * and #stop_progress outside fenced code blocks and outside inline code (a
 * proposed prompt may itself mention a marker, and an interviewer that
 * writes `#stop_progress` in backticks is talking about it, not using it).
 * Models write the markers in many shapes, so the scan is forgiving where it
 * costs nothing: any case, '_' or '-' or a space between the words, in bold,
 * at the end of a sentence, LF or CRLF, ``` or ~~~ fences with or without a
 * language tag. What follows a marker is not guessed at: a proposal that
 * cannot be used exactly as written (no block, an empty one, bad JSON, an
 * unknown option, over PROPOSAL_MAX_BYTES) is returned with usable = 0 and a
 * reason a model can act on, so the loop answers it instead of testing
 * something the interviewer did not write.
 */
#ifndef PARLEY_PROPOSAL_H
#define PARLEY_PROPOSAL_H

#include <jansson.h>
#include <stddef.h>

#define PROPOSAL_MAX_BYTES 16384

enum proposal_kind {
	PROPOSAL_PROMPT,  /* #prompt_defined: a system prompt and/or a template */
	PROPOSAL_SETTING, /* #test_setting: options */
	PROPOSAL_STOP,	  /* #stop_progress: no more trials */
};

struct proposal {
	enum proposal_kind kind;
	int usable; /* 0: reason says why it cannot be tested */
	char reason[320];
	char *system;	 /* PROMPT: the new system prompt, or NULL when only a template is given */
	char *template;	 /* PROMPT: the new template (holds "{input}"), or NULL */
	json_t *options; /* SETTING: the options object (owned) */
	char *note;	 /* STOP: what the interviewer gave as its reason ("" when none) */
};

struct proposals {
	struct proposal *v;
	size_t n;
};

/*
 * Finds every marker of an interviewer's message, in the order written.
 * Always succeeds; out->n is 0 when the message proposes nothing. Release
 * with proposals_release().
 */
void proposal_parse(const char *msg, struct proposals *out);
void proposals_release(struct proposals *p);

/* The marker of a kind: "#prompt_defined", "#test_setting", "#stop_progress". */
const char *proposal_marker(enum proposal_kind k);

/* A usable PROMPT or SETTING as a trial's proposal {system?, template?, options?}. New. */
json_t *proposal_json(const struct proposal *p);

#endif
