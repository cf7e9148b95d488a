/*
 * report.h - a batch's summary, and the comparison of two batches, as
 * Markdown.
 *
 * DESIGN: input is the JSON that api/summary.h builds, so the report and
 * GET /v1/batches/{id} can never disagree. The batch report follows the
 * origin's phase2_summary_report.md section for section (header lines,
 * Overall Performance, Model Performance Rankings, Scenario Breakdown,
 * Success Assessment, Key Insights, Detailed Conversations, status footer)
 * and fixes what it got wrong: "Generated" is when the report was written
 * (the origin printed the start time), failures show in the success rate and
 * nowhere in the averages, the ranking rule is stated, and the insights are
 * read from the numbers instead of being fixed sentences. It adds a latency
 * table, and the spread of repeated runs and the judge's grades when the
 * batch has them.
 */
#ifndef PARLEY_REPORT_H
#define PARLEY_REPORT_H

#include <jansson.h>
#include <stdint.h>

#include "db/util.h"

/* Appends the report of batch (a summary_batch() result) written at now_us to out. */
void report_batch(const json_t *batch, int64_t now_us, struct strbuf *out);

/* Appends the comparison (a summary_compare() result) to out. */
void report_compare(const json_t *cmp, struct strbuf *out);

#endif
