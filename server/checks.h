/*
 * checks.h - the checks of a task (DESIGN §7): what a candidate's reply to a
 * task must satisfy for the task to pass.
 *
 * DESIGN: a check list is compiled once, when a scenario is submitted (or
 * loaded for a trial): regular expressions are compiled, schemas checked
 * against the supported subset, and every fault is a field error with its
 * path, so a check that could not be honoured is refused instead of passing
 * silently. checks_eval() then tests one reply with no I/O; a judge check
 * needs a model and is answered by the caller (checks_eval says so).
 *
 *   contains / not_contains  substring, ASCII case ignored
 *   regex                    POSIX extended, matched anywhere in the reply
 *   equals                   the reply, leading and trailing white space trimmed
 *   max_words                words are runs of non-white-space
 *   json_schema              the trimmed reply parses as JSON and matches
 *   judge                    a yes/no criterion for a judge model
 */
#ifndef PARLEY_CHECKS_H
#define PARLEY_CHECKS_H

#include <jansson.h>
#include <regex.h>
#include <stddef.h>

#define CHECKS_MAX 20	     /* checks per task */
#define CHECKS_MAX_TEXT 4096 /* bytes of a string operand */
#define CHECKS_MAX_WORDS 100000

enum check_kind {
	CHECK_CONTAINS,
	CHECK_NOT_CONTAINS,
	CHECK_REGEX,
	CHECK_EQUALS,
	CHECK_MAX_WORDS,
	CHECK_JSON_SCHEMA,
	CHECK_JUDGE,
};

struct check {
	enum check_kind kind;
	char *text;	/* operand of contains, not_contains, regex, equals, judge */
	long n;		/* max_words */
	json_t *schema; /* json_schema: owned reference */
	regex_t re;	/* regex: compiled when kind is CHECK_REGEX */
};

struct checks {
	struct check *v;
	size_t n;
};

/* Regular expressions a client may send: bytes of the pattern, and how many nodes their
 * compiled form may have (repetition copies what it repeats). */
#define CHECKS_MAX_REGEX 1024
#define CHECKS_MAX_REGEX_COST 10000

/*
 * Compiles a POSIX extended pattern that a client sent (REG_EXTENDED | REG_NOSUB). The C
 * library compiles some short patterns into huge automata ("a{255}{255}", "(a+)+" nested
 * deep) and runs back-references in exponential time, so before regcomp the pattern is
 * refused when it is longer than CHECKS_MAX_REGEX, uses a back-reference, puts one
 * repetition right after another, repeats more than 255 times, or would compile to more
 * than CHECKS_MAX_REGEX_COST nodes by a conservative count. Returns 0, or -1 with why.
 */
int checks_regcomp(regex_t *re, const char *pattern, char *why, size_t size);

/* The name of a kind as it is written in a task: "contains", "json_schema", ... */
const char *checks_kind_name(enum check_kind k);

/*
 * Compiles a task's check list (a JSON array of 1 to CHECKS_MAX objects of
 * one key each). Faults go to errs (ferr.h) with paths under prefix
 * ("tasks[3].checks" gives "tasks[3].checks[0].regex"). On success returns 0
 * and, when out is not NULL, fills it (release with checks_release); on
 * failure returns -1 and out is left empty.
 */
int checks_compile(json_t *list, const char *prefix, struct checks *out, json_t *errs);
void checks_release(struct checks *c);

/*
 * Tests one reply against one check: 1 passed, 0 failed (why, size bytes,
 * says how), -1 for a judge check, which only a judge model can answer.
 */
int checks_eval(const struct check *c, const char *reply, char *why, size_t size);

/* The check as the task wrote it, for reports: {"regex": "..."}. A new reference. */
json_t *checks_json(const struct check *c);

#endif
