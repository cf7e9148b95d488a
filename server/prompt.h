/*
 * prompt.h - what each model is told: system prompts, the opening cue and
 * the analysis instruction, and the message list of a turn.
 *
 * DESIGN: each model sees the conversation from its own side — its own turns
 * as "assistant", the other's as "user" — under its own system prompt, which
 * carries the scenario. Nothing that was sent on an earlier turn is ever
 * rewritten, so the message prefix is byte-stable from turn to turn and the
 * backend's prompt cache is reused; the only text that is not a stored turn
 * is appended at the very end (the analysis instruction on the interviewer's
 * last turn). Templates are defaults that a scenario's "prompts" object may
 * override; {name}, {problem}, {context}, {goal}, {interviewer_model},
 * {candidate_model} and {max_turns} are substituted.
 */
#ifndef PARLEY_PROMPT_H
#define PARLEY_PROMPT_H

#include <jansson.h>

#include "db/turn.h"
#include "server/backend.h"

struct prompts {
	char *interviewer_system;
	char *candidate_system;
	char *opening;	/* the user message the interviewer's first turn answers */
	char *analysis; /* appended to the last user message of the analysis turn */
};

/* Keys a scenario's "prompts" object may carry (NULL-terminated). */
extern const char *const prompt_keys[];

void prompt_render(const json_t *scenario, const char *interviewer_model,
		   const char *candidate_model, int max_turns, struct prompts *out);
void prompt_release(struct prompts *p);

/*
 * Fills msgs (room for nturns + 2) with the messages for turn idx (1-based)
 * given the nturns turns stored before it; analysis says whether this
 * interviewer turn is the closing analysis. scratch holds the one message
 * that is not a stored turn verbatim. Returns the number of messages.
 */
size_t prompt_messages(const struct prompts *p, const struct db_turn *turns, size_t nturns, int idx,
		       int analysis, struct chat_msg *msgs, struct strbuf *scratch);

#endif
