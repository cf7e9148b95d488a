/*
 * markdown.h - a conversation as the Markdown report of the origin layout.
 *
 * DESIGN: input is the transcript JSON (api/transcript.h builds it; an origin
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

/* Appends the report to out. transcript is borrowed. */
void markdown_render_transcript(const json_t *transcript, struct strbuf *out);

#endif
