/*
 * extract.h - the optimizations an interviewer suggested, read from its text.
 *
 * DESIGN: two methods. "rubric" (the default, and the one that reads what a
 * person would call a suggestion) parses the text as Markdown and takes the
 * items of its concrete-suggestions part, in whatever form the part comes (a
 * heading, a bold line, a numbered or inline "3. Concrete suggestions: ...")
 * and whatever form its items take: list items of any marker (nested items
 * belong to their parent), one block per sub-heading, table rows (title and
 * test columns), bold-lead or labelled paragraphs ("Suggestion A: ...").
 * Without such a part, items marked #test_this (any spelling) and labelled
 * paragraphs anywhere. A title is the bold lead, else the text up to the
 * first colon, spaced dash or full stop; a test is a "Test:", "Measure:",
 * "Validation:", "How to test:", "#test_this ..." part, an italic sentence,
 * or a table column. A heading that merely mentions the format is never a suggestion.
 * "origin" reproduces the system parley replaces: every line containing the
 * literal "#test_this", trimmed.
 * Pure functions over text; no I/O, no allocation failure paths.
 */
#ifndef PARLEY_EXTRACT_H
#define PARLEY_EXTRACT_H

#include <stddef.h>

struct optim {
	char *title;	  /* short name, markup stripped: "Implement a Knowledge Graph Interface" */
	char *detail;	  /* the item's text without the title and the test, markup stripped */
	char *test;	  /* how to measure it ("Replace the retrieval process ..."), or NULL */
	char *suggestion; /* the whole item as one line (origin field), markup kept */
	int turn;	  /* 1-based turn index the item came from */
	const char *method; /* how it was found: "rubric", "origin", "model" (a static string) */
};

struct optim_list {
	struct optim *v;
	size_t n;
	size_t alloc;
};

enum extract_method {
	EXTRACT_RUBRIC,
	EXTRACT_ORIGIN,
	EXTRACT_MODEL, /* a model lists them (server/extract_model.h); here, as the rubric */
};

/* "rubric" / "origin" / "model"; parse returns -1 on an unknown name. */
int extract_method_parse(const char *s, enum extract_method *out);
const char *extract_method_name(enum extract_method m);

void optim_list_init(struct optim_list *l);
void optim_list_release(struct optim_list *l);

/*
 * Appends to out the optimizations found in text (an interviewer turn).
 * Returns 1 when the text has a concrete-suggestions part (rubric), else 0.
 */
int extract_optimizations(enum extract_method m, const char *text, int turn,
			  struct optim_list *out);

/* Appends to out only the items of text marked test_this (any spelling), as the rubric reads them.
 */
void extract_marked(const char *text, int turn, struct optim_list *out);

#endif
