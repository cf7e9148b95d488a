/*
 * markdown.h - a conversation as the Markdown report of the origin layout.
 *
 * DESIGN: input is the transcript JSON (api/views.h builds it; an origin
 * per-conversation JSON file is a valid input too, as it is a subset). Output
 * follows the origin report section for section: title, Scenario /
 * Interviewer / Candidate / Date lines, "## 🎯 Optimization Challenge",
 * "## 📊 Success Metrics", "## 💬 Conversation Log" with
 * "### Turn N: 🎤 INTERVIEWER (model)" / "🤖 CANDIDATE", Duration and Time
 * lines and "---" separators, "## 🎯 Optimizations Discovered" (omitted when
 * there are none, as the origin did), then a per-turn timing table when the
 * turns carry metrics.
 */
#ifndef PARLEY_MARKDOWN_H
#define PARLEY_MARKDOWN_H

#include <jansson.h>

#include "db/util.h"

/* Appends s as one Markdown table cell: on one line, with '|' escaped. */
void markdown_table_cell(struct strbuf *out, const char *s);
/* Appends the number o[key] (o may be NULL) formatted by fmt, or "—" when there is none. */
void markdown_table_num(struct strbuf *out, const json_t *o, const char *key, const char *fmt);
/* A number of a table row: its key and its printf format. */
struct markdown_num {
	const char *key, *fmt;
};
/* Appends the numbers of o named by cols as cells joined by " | " (markdown_table_num()). */
void markdown_table_nums(struct strbuf *out, const json_t *o, const struct markdown_num *cols,
			 size_t n);

/* Appends the report to out. transcript is borrowed. */
void markdown_render_transcript(const json_t *transcript, struct strbuf *out);

#endif
