/*
 * prompt.c - prompt templates and per-turn message lists. See prompt.h.
 */
#include "server/prompt.h"

#include <stdlib.h>
#include <string.h>

const char *const prompt_keys[] = {"interviewer_system", "candidate_system", "opening", "analysis",
				   NULL};

static const char default_interviewer_system[] =
    "You are Alex, an AI optimization specialist. You are interviewing another AI model, "
    "{candidate_model}, about an optimization challenge, in a conversation of at most "
    "{max_turns} turns.\n"
    "\n"
    "Scenario: {name}\n"
    "Problem: {problem}\n"
    "Context: {context}\n"
    "Goal: {goal}\n"
    "\n"
    "Ask one focused question at a time about the candidate's current approach: its workflow, "
    "what works, what does not, and its limits. Ask for numbers where they matter. If you "
    "have learned enough before the last turn, write #stop_progress on a line of its own and "
    "you will be asked for your analysis next.\n"
    "\n"
    "When you are asked for your analysis, write it in four numbered sections:\n"
    "\n"
    "1. Analysis of the candidate's approach\n"
    "2. Specific optimization opportunities identified\n"
    "3. Concrete suggestions (#test_this): a numbered list, one item per suggestion, each "
    "written as \"**Short title** \xe2\x80\x94 what to change. Test: how to measure whether it "
    "worked\"\n"
    "4. Reasoning for why these optimizations will help";

static const char default_candidate_system[] =
    "You are {candidate_model}, an AI model taking part in an optimization interview led by "
    "an AI optimization specialist.\n"
    "\n"
    "The challenge you face:\n"
    "Problem: {problem}\n"
    "Context: {context}\n"
    "Goal: {goal}\n"
    "\n"
    "Answer the interviewer's questions about your current workflow honestly and specifically: "
    "what you do step by step, what works, what does not, and your limits. Give numbers where "
    "you can.";

static const char default_opening[] =
    "Open the interview: introduce yourself in a sentence, restate the challenge in your own "
    "words, and ask the candidate about its current approach to it.";

/*
 * Short on purpose: the instructions for the analysis are in the system
 * prompt, which every turn sends first, so the backend has them in its
 * prompt cache from the first turn on; only this cue is new on the last.
 */
static const char default_analysis[] =
    "Final turn: write your analysis now, with your concrete suggestions (#test_this).";

static const char *field(const json_t *o, const char *key)
{
	const json_t *v = json_object_get(o, key); /* borrowed */

	return json_is_string(v) ? json_string_value(v) : "";
}

static char *render(const char *tmpl, const json_t *scenario, const char *interviewer_model,
		    const char *candidate_model, int max_turns)
{
	struct strbuf sb;
	const char *p = tmpl, *open, *close;

	strbuf_init(&sb, strlen(tmpl) + 256);
	while ((open = strchr(p, '{')) && (close = strchr(open, '}'))) {
		size_t klen = (size_t)(close - open - 1);
		const char *key = open + 1;
		const char *val = NULL;
		strbuf_add(&sb, p, (size_t)(open - p));
		if (klen == 4 && strncmp(key, "name", 4) == 0)
			val = field(scenario, "name");
		else if (klen == 7 && strncmp(key, "problem", 7) == 0)
			val = field(scenario, "problem");
		else if (klen == 7 && strncmp(key, "context", 7) == 0)
			val = field(scenario, "context");
		else if (klen == 4 && strncmp(key, "goal", 4) == 0)
			val = field(scenario, "goal");
		else if (klen == 17 && strncmp(key, "interviewer_model", 17) == 0)
			val = interviewer_model;
		else if (klen == 15 && strncmp(key, "candidate_model", 15) == 0)
			val = candidate_model;
		if (val) {
			strbuf_addstr(&sb, val);
		} else if (klen == 9 && strncmp(key, "max_turns", 9) == 0) {
			strbuf_addf(&sb, "%d", max_turns);
		} else {
			/* not a placeholder: keep the brace and go on after it */
			strbuf_addch(&sb, '{');
			p = open + 1;
			continue;
		}
		p = close + 1;
	}
	strbuf_addstr(&sb, p);
	return strbuf_detach(&sb, NULL);
}

static const char *pick(const json_t *scenario, const char *key, const char *fallback)
{
	const json_t *prompts = json_object_get(scenario, "prompts"); /* borrowed */
	const json_t *v = json_object_get(prompts, key);	      /* borrowed */

	return json_is_string(v) ? json_string_value(v) : fallback;
}

void prompt_render(const json_t *scenario, const char *interviewer_model,
		   const char *candidate_model, int max_turns, struct prompts *out)
{
	out->interviewer_system =
	    render(pick(scenario, "interviewer_system", default_interviewer_system), scenario,
		   interviewer_model, candidate_model, max_turns);
	out->candidate_system = render(pick(scenario, "candidate_system", default_candidate_system),
				       scenario, interviewer_model, candidate_model, max_turns);
	out->opening = render(pick(scenario, "opening", default_opening), scenario,
			      interviewer_model, candidate_model, max_turns);
	out->analysis = render(pick(scenario, "analysis", default_analysis), scenario,
			       interviewer_model, candidate_model, max_turns);
}

void prompt_release(struct prompts *p)
{
	free(p->interviewer_system);
	free(p->candidate_system);
	free(p->opening);
	free(p->analysis);
	memset(p, 0, sizeof(*p));
}

size_t prompt_messages(const struct prompts *p, const struct db_turn *turns, size_t nturns, int idx,
		       int analysis, struct chat_msg *msgs, struct strbuf *scratch)
{
	int interviewer = idx % 2 == 1;
	const char *self = interviewer ? "interviewer" : "candidate";
	size_t n = 0, i;

	msgs[n].role = "system";
	msgs[n++].content = interviewer ? p->interviewer_system : p->candidate_system;
	if (interviewer) {
		msgs[n].role = "user";
		msgs[n++].content = p->opening;
	}
	for (i = 0; i < nturns; i++) {
		msgs[n].role = strcmp(turns[i].role, self) == 0 ? "assistant" : "user";
		msgs[n++].content = turns[i].text;
	}
	if (analysis && interviewer && n > 0 && strcmp(msgs[n - 1].role, "user") == 0) {
		strbuf_reset(scratch);
		strbuf_addstr(scratch, msgs[n - 1].content);
		strbuf_addstr(scratch, "\n\n---\n\n");
		strbuf_addstr(scratch, p->analysis);
		msgs[n - 1].content = scratch->buf;
	}
	return n;
}
