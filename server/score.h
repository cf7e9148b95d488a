/*
 * score.h - how good a finished conversation was.
 *
 * DESIGN: "origin" reproduces the replaced system's numbers: interview
 * quality = min(10, 7 + optimizations found); candidate engagement = 8.0 when
 * the candidate's turn took under 30 s, else 7.0 (neither reads the text).
 * "rubric" (default) is deterministic and reads the content: suggestions that
 * carry a test, the four analysis sections present, the candidate's
 * specificity (numbers, named techniques, concrete steps) and relevance to
 * what the interviewer asked; every component is reported with its points and
 * its maximum, so a user can see why a conversation scored what it did.
 */
#ifndef PARLEY_SCORE_H
#define PARLEY_SCORE_H

#include <jansson.h>
#include <stddef.h>

#include "server/extract.h"

enum score_method {
	SCORE_RUBRIC,
	SCORE_ORIGIN,
	SCORE_JUDGE,
};

int score_method_parse(const char *s, enum score_method *out);
const char *score_method_name(enum score_method m);

struct score_turn {
	const char *role; /* "interviewer" / "candidate" */
	const char *text;
	double duration_s;
};

struct score_input {
	const struct score_turn *turns;
	size_t nturns;
	const struct optim_list *optims; /* what extraction found */
	const char *problem;		 /* the scenario, for relevance */
	const char *goal;
};

struct score_result {
	double interview_quality;    /* 0..10, one decimal */
	double candidate_engagement; /* 0..10, one decimal */
	json_t *components;	     /* new reference or NULL (origin): {"interview_quality":
					{"total":x,"components":[{"name","points","max","why"}]},
					"candidate_engagement":{...}} */
};

/* SCORE_JUDGE falls back to the rubric here; the judge runs in the engine. */
void score_conversation(enum score_method m, const struct score_input *in,
			struct score_result *out);
void score_result_release(struct score_result *r);

#endif
