/*
 * report.c - batch reports and comparisons as Markdown. See report.h.
 */
#include "api/report.h"

#include "api/markdown.h"

#include <stdio.h>
#include <string.h>

/* "" when missing or not a string. Borrowed. */
static const char *jstr(const json_t *o, const char *key)
{
	const char *s = json_string_value(json_object_get(o, key));

	return s ? s : "";
}

static int jnum(const json_t *o, const char *key, double *v)
{
	json_t *x = json_object_get(o, key); /* borrowed */

	if (!json_is_number(x))
		return 0;
	*v = json_number_value(x);
	return 1;
}

static long jint(const json_t *o, const char *key)
{
	return (long)json_integer_value(json_object_get(o, key));
}

/* o's number at key times scale, with fmt, or "—" when it is unknown. */
static void add_scaled(struct strbuf *out, const json_t *o, const char *key, const char *fmt,
		       double scale)
{
	double v;

	if (jnum(o, key, &v))
		strbuf_addf(out, fmt, v * scale);
	else
		strbuf_addstr(out, "—");
}

/* The first two cells of a ranking row, "| 1 | `model` | ". */
static void add_rank_model(struct strbuf *out, const json_t *r)
{
	strbuf_addf(out, "| %ld | `", jint(r, "rank"));
	markdown_table_cell(out, jstr(r, "model"));
	strbuf_addstr(out, "` | ");
}

/* "8.0/10" or "—". */
static void add_score(struct strbuf *out, const json_t *o, const char *key)
{
	markdown_table_num(out, o, key, "%.1f/10");
}

static void add_percent(struct strbuf *out, const json_t *o, const char *key)
{
	add_scaled(out, o, key, "%.1f%%", 100.0);
}

/* ---- the batch report ---- */

static void render_header(const json_t *b, int64_t now_us, struct strbuf *out)
{
	const json_t *sm = json_object_get(b, "summary_metrics"); /* borrowed */
	char now[32];
	long repeat = jint(b, "repeat");

	util_iso8601(now_us, now);
	strbuf_addf(out, "# Batch %s: AI-to-AI Optimization Conversations - Summary Report\n\n",
		    jstr(b, "id"));
	strbuf_addf(out, "**Generated:** %s  \n", now);
	strbuf_addf(out, "**Started:** %s  \n", jstr(b, "created_at"));
	if (*jstr(b, "finished_at"))
		strbuf_addf(out, "**Finished:** %s  \n", jstr(b, "finished_at"));
	else
		strbuf_addf(out, "**Finished:** not yet (%ld of %ld conversations have ended)  \n",
			    jint(sm, "conversations_ended"), jint(sm, "total_conversations"));
	strbuf_addf(out, "**AI Interviewer:** %s  \n", jstr(b, "interviewer_model"));
	strbuf_addf(out, "**Candidate Models:** %zu  \n",
		    json_array_size(json_object_get(b, "candidate_models")));
	if (repeat > 1) {
		strbuf_addf(out, "**Optimization Scenarios:** %zu  \n",
			    json_array_size(json_object_get(b, "scenarios")));
		strbuf_addf(out, "**Runs per Model and Scenario:** %ld\n\n", repeat);
	} else {
		strbuf_addf(out, "**Optimization Scenarios:** %zu\n\n",
			    json_array_size(json_object_get(b, "scenarios")));
	}
}

static void render_overall(const json_t *b, struct strbuf *out)
{
	const json_t *sm = json_object_get(b, "summary_metrics"); /* borrowed */
	const json_t *judge = json_object_get(sm, "judge");

	strbuf_addstr(out, "## 🎯 Overall Performance\n\n");
	strbuf_addf(out, "- **Total Conversations:** %ld\n", jint(sm, "total_conversations"));
	strbuf_addf(out, "- **Optimizations Discovered:** %ld\n",
		    jint(sm, "total_optimizations_discovered"));
	strbuf_addstr(out, "- **Average Interview Quality:** ");
	add_score(out, sm, "average_interview_quality");
	strbuf_addstr(out, "\n- **Average Candidate Engagement:** ");
	add_score(out, sm, "average_candidate_engagement");
	strbuf_addstr(out, "\n- **Success Rate:** ");
	add_percent(out, sm, "success_rate");
	strbuf_addf(out, "\n- **Succeeded / Failed / Cancelled:** %ld / %ld / %ld\n",
		    jint(sm, "succeeded"), jint(sm, "failed"), jint(sm, "cancelled"));
	if (json_is_object(judge)) {
		strbuf_addf(out, "- **Judge (%s) Average Interview Quality:** ",
			    jstr(json_object_get(b, "judge"), "model"));
		add_score(out, judge, "average_interview_quality");
		strbuf_addstr(out, "\n- **Judge Average Candidate Engagement:** ");
		add_score(out, judge, "average_candidate_engagement");
		strbuf_addf(out, "\n- **Judge Grades:** %ld graded, %ld failed\n",
			    jint(judge, "graded"), jint(judge, "failed"));
	}
	strbuf_addstr(out, "\nAverages are over the conversations that succeeded; the success "
			   "rate is succeeded / (succeeded + failed).\n\n");
}

/* With optimize: the candidates by what held up on tasks their trials were not tuned on. */
static void render_optimize_rankings(const json_t *b, struct strbuf *out)
{
	const json_t *rows = json_object_get(b, "optimize_rankings"); /* borrowed */
	json_t *r;
	size_t i;

	if (!json_is_array(rows))
		return;
	strbuf_addstr(out, "## 🧪 Verified Improvements\n\n");
	strbuf_addstr(out,
		      "Each conversation tested the interviewer's proposals on the scenario's "
		      "tasks; the best change of each was checked on held-out tasks. Ranked by "
		      "conversations whose best change was verified (larger than its noise), "
		      "then by the mean held-out change in score.\n\n");
	strbuf_addstr(out, "| Rank | Model | Conversations | Verified | Held-out checks | Mean "
			   "score change | Mean median change |\n");
	strbuf_addstr(out, "|------|-------|---------------|----------|-----------------|-------"
			   "------------|--------------------|\n");
	json_array_foreach(rows, i, r)
	{
		add_rank_model(out, r);
		strbuf_addf(out, "%ld | %ld | %ld | ", jint(r, "jobs"), jint(r, "verified"),
			    jint(r, "holdout_checked"));
		markdown_table_num(out, r, "mean_holdout_delta_score", "%+.3f");
		strbuf_addstr(out, " | ");
		markdown_table_num(out, r, "mean_holdout_delta_median_ms", "%+.0f ms");
		strbuf_addstr(out, " |\n");
	}
	strbuf_addch(out, '\n');
}

static void render_rankings(const json_t *b, struct strbuf *out)
{
	const json_t *rows = json_object_get(b, "rankings"); /* borrowed */
	const char *rule = jstr(b, "ranking_rule");
	json_t *r;
	size_t i;

	strbuf_addstr(out, "## 📊 Model Performance Rankings\n\n");
	if (*rule)
		strbuf_addf(out, "%c%s.\n\n",
			    rule[0] >= 'a' && rule[0] <= 'z' ? rule[0] - 32 : rule[0], rule + 1);
	strbuf_addstr(out,
		      "| Rank | Model | Conversations | Optimizations Found | Interview Quality | "
		      "Engagement |\n");
	strbuf_addstr(out, "|------|-------|---------------|---------------------|----------------"
			   "---|------------|\n");
	json_array_foreach(rows, i, r)
	{
		add_rank_model(out, r);
		strbuf_addf(out, "%ld", jint(r, "conversations"));
		if (jint(r, "failed") || jint(r, "cancelled")) {
			strbuf_addstr(out, " (");
			if (jint(r, "failed"))
				strbuf_addf(out, "%ld failed", jint(r, "failed"));
			if (jint(r, "failed") && jint(r, "cancelled"))
				strbuf_addstr(out, ", ");
			if (jint(r, "cancelled"))
				strbuf_addf(out, "%ld cancelled", jint(r, "cancelled"));
			strbuf_addch(out, ')');
		}
		strbuf_addf(out, " | %ld | ", jint(r, "total_optimizations"));
		add_score(out, r, "avg_quality");
		strbuf_addstr(out, " | ");
		add_score(out, r, "avg_engagement");
		strbuf_addstr(out, " |\n");
	}
	strbuf_addch(out, '\n');
}

static const struct markdown_num latency_cols[] = {
    {"median_turn_s", "%.2f s"}, {"p90_turn_s", "%.2f s"}, {"median_ttft_ms", "%.0f ms"},
    {"p90_ttft_ms", "%.0f ms"},	 {"tokens_per_s", "%.1f"},
};

static void latency_row(struct strbuf *out, const char *model, const char *role, const json_t *lat)
{
	strbuf_addstr(out, "| `");
	markdown_table_cell(out, model);
	strbuf_addf(out, "` | %s | %ld | ", role, jint(lat, "turns"));
	markdown_table_nums(out, lat, latency_cols, ARRAY_SIZE(latency_cols));
	strbuf_addstr(out, " |\n");
}

static void render_latency(const json_t *b, struct strbuf *out)
{
	const json_t *sm = json_object_get(b, "summary_metrics"); /* all borrowed */
	const json_t *iv = json_object_get(sm, "interviewer");
	json_t *mp = json_object_get(sm, "model_performance"), *perf;
	const char *label;

	strbuf_addstr(out, "## ⏱️ Latency\n\n");
	strbuf_addstr(out,
		      "Per model, over every turn it spoke in this batch: the median and 90th "
		      "percentile (nearest rank) of a turn's wall time and of its time to first "
		      "token; tokens per second is all completion tokens over all generation "
		      "time.\n\n");
	strbuf_addstr(out,
		      "| Model | Role | Turns | Median Turn | p90 Turn | Median TTFT | p90 TTFT "
		      "| Tokens/s |\n");
	strbuf_addstr(out, "|-------|------|------:|------------:|---------:|------------:|-------"
			   "--:|---------:|\n");
	latency_row(out, jstr(iv, "model"), "interviewer", json_object_get(iv, "latency"));
	json_object_foreach(mp, label, perf)
	{
		latency_row(out, label, "candidate", json_object_get(perf, "latency"));
	}
	strbuf_addch(out, '\n');
}

static void render_scenarios(const json_t *b, struct strbuf *out)
{
	json_t *sp = json_object_get(json_object_get(b, "summary_metrics"), "scenario_performance");
	json_t *perf;
	const char *name;

	strbuf_addstr(out, "## 🔍 Scenario Breakdown\n\n");
	json_object_foreach(sp, name, perf)
	{
		strbuf_addf(out, "### %s\n", name);
		strbuf_addf(out, "- **Problem:** %s\n", jstr(perf, "problem"));
		strbuf_addf(out, "- **Conversations:** %ld\n", jint(perf, "conversations"));
		strbuf_addf(out, "- **Optimizations Found:** %ld\n",
			    jint(perf, "total_optimizations"));
		if (jint(perf, "failed"))
			strbuf_addf(out, "- **Failed:** %ld\n", jint(perf, "failed"));
		strbuf_addch(out, '\n');
	}
}

/* "9.0 ± 1.0 (8.0–10.0)" */
static void add_spread(struct strbuf *out, const json_t *s)
{
	double mean, sd, lo = 0, hi = 0;

	if (!jnum(s, "mean", &mean)) {
		strbuf_addstr(out, "—");
		return;
	}
	jnum(s, "min", &lo);
	jnum(s, "max", &hi);
	strbuf_addf(out, "%.1f", mean);
	if (jnum(s, "stdev", &sd))
		strbuf_addf(out, " ± %.2f", sd);
	strbuf_addf(out, " (%.1f–%.1f)", lo, hi);
}

static void render_spread(const json_t *b, struct strbuf *out)
{
	const json_t *cells = json_object_get(json_object_get(b, "summary_metrics"), "spread");
	json_t *c;
	size_t i;

	if (!json_array_size(cells))
		return;
	strbuf_addstr(out, "## 📈 Stability Across Runs\n\n");
	strbuf_addstr(out, "Mean ± sample standard deviation (minimum–maximum) over the runs that "
			   "succeeded.\n\n");
	strbuf_addstr(out, "| Model | Scenario | Runs | Optimizations Found | Interview Quality | "
			   "Engagement |\n");
	strbuf_addstr(out, "|-------|----------|-----:|---------------------|-------------------|"
			   "------------|\n");
	json_array_foreach(cells, i, c)
	{
		strbuf_addstr(out, "| `");
		markdown_table_cell(out, jstr(c, "candidate"));
		strbuf_addstr(out, "` | ");
		markdown_table_cell(out, jstr(c, "scenario"));
		strbuf_addf(out, " | %ld of %ld | ",
			    jint(json_object_get(c, "interview_quality"), "runs"), jint(c, "runs"));
		add_spread(out, json_object_get(c, "optimizations_found"));
		strbuf_addstr(out, " | ");
		add_spread(out, json_object_get(c, "interview_quality"));
		strbuf_addstr(out, " | ");
		add_spread(out, json_object_get(c, "candidate_engagement"));
		strbuf_addstr(out, " |\n");
	}
	strbuf_addch(out, '\n');
}

static void render_judge(const json_t *b, struct strbuf *out)
{
	json_t *mp = json_object_get(json_object_get(b, "summary_metrics"), "model_performance");
	json_t *perf;
	const char *label;
	int any = 0;

	json_object_foreach(mp, label, perf)
	{
		const json_t *j = json_object_get(perf, "judge");
		if (!json_is_object(j))
			continue;
		if (!any) {
			strbuf_addf(out,
				    "## ⚖️ Judge\n\n`%s` graded every conversation that "
				    "succeeded against parley's written rubric; its grades "
				    "stand beside the rubric scores above.\n\n",
				    jstr(json_object_get(b, "judge"), "model"));
			strbuf_addstr(out,
				      "| Model | Graded | Judge Failed | Judge Interview Quality | "
				      "Judge Engagement |\n");
			strbuf_addstr(out,
				      "|-------|-------:|-------------:|-------------------------"
				      "|------------------|\n");
			any = 1;
		}
		strbuf_addstr(out, "| `");
		markdown_table_cell(out, label);
		strbuf_addf(out, "` | %ld | %ld | ", jint(j, "graded"), jint(j, "failed"));
		add_score(out, j, "average_interview_quality");
		strbuf_addstr(out, " | ");
		add_score(out, j, "average_candidate_engagement");
		strbuf_addstr(out, " |\n");
	}
	if (any)
		strbuf_addch(out, '\n');
}

static void render_assessment(const json_t *b, struct strbuf *out)
{
	const json_t *sm = json_object_get(b, "summary_metrics"); /* borrowed */

	strbuf_addstr(out, "## 🚀 Batch Success Assessment\n\n");
	strbuf_addf(out,
		    "**AI Interviewer Performance:** The selected model (%s) conducted %ld "
		    "optimization conversations: %ld succeeded, %ld failed",
		    jstr(b, "interviewer_model"), jint(sm, "conversations_ended"),
		    jint(sm, "succeeded"), jint(sm, "failed"));
	if (jint(sm, "cancelled"))
		strbuf_addf(out, ", %ld cancelled", jint(sm, "cancelled"));
	strbuf_addstr(out, " (success rate ");
	add_percent(out, sm, "success_rate");
	strbuf_addstr(out, ").\n\n");
	strbuf_addf(
	    out,
	    "**Optimization Discovery:** Found %ld concrete optimization suggestions across "
	    "%zu different scenarios.\n\n",
	    jint(sm, "total_optimizations_discovered"),
	    json_array_size(json_object_get(b, "scenarios")));
	strbuf_addstr(out, "**Collaboration Quality:** Average interview quality of ");
	add_score(out, sm, "average_interview_quality");
	strbuf_addf(out, " over the %ld conversations that succeeded.\n\n", jint(sm, "succeeded"));
}

static void render_insights(const json_t *b, struct strbuf *out)
{
	const json_t *rows = json_object_get(b, "rankings"); /* all borrowed */
	const json_t *sm = json_object_get(b, "summary_metrics");
	json_t *mp = json_object_get(sm, "model_performance"), *perf, *r;
	const json_t *top = json_array_get(rows, 0);
	double lo = 0, hi = 0, v, fastest = -1;
	const char *label, *fast = NULL;
	size_t i, ties = 0;
	int n = 1, any = 0;

	strbuf_addstr(out, "## 🎯 Key Insights\n\n");
	if (top && jint(sm, "succeeded") > 0) {
		json_array_foreach(rows, i, r)
		{
			if (i > 0 &&
			    jint(r, "total_optimizations") == jint(top, "total_optimizations"))
				ties++;
		}
		strbuf_addf(out,
			    "%d. **Best Performers:** %s generated the most optimization "
			    "suggestions (%ld)",
			    n++, jstr(top, "model"), jint(top, "total_optimizations"));
		if (ties)
			strbuf_addf(out,
				    "; %zu other model%s found as many and rank%s lower on the "
				    "tie-breaks",
				    ties, ties > 1 ? "s" : "", ties > 1 ? "" : "s");
		strbuf_addstr(out, "\n");
	}
	json_object_foreach(mp, label, perf)
	{
		if (!jnum(perf, "avg_quality", &v))
			continue;
		if (!any || v < lo)
			lo = v;
		if (!any || v > hi)
			hi = v;
		any = 1;
		if (jnum(json_object_get(perf, "latency"), "median_turn_s", &v) &&
		    (fastest < 0 || v < fastest)) {
			fastest = v;
			fast = label;
		}
	}
	if (any && hi - lo < 0.05) {
		strbuf_addf(
		    out,
		    "%d. **Interview Effectiveness:** average interview quality was %.1f for "
		    "every model (overall ",
		    n++, lo);
		add_score(out, sm, "average_interview_quality");
		strbuf_addstr(out, ")\n");
	} else if (any) {
		strbuf_addf(out,
			    "%d. **Interview Effectiveness:** average interview quality per model "
			    "ranged from %.1f to %.1f (overall ",
			    n++, lo, hi);
		add_score(out, sm, "average_interview_quality");
		strbuf_addstr(out, ")\n");
	}
	strbuf_addf(out, "%d. **Collaboration Success:** %ld of %ld conversations ran to the end",
		    n++, jint(sm, "succeeded"), jint(sm, "total_conversations"));
	if (jint(sm, "failed"))
		strbuf_addf(out, "; %ld failed (see Detailed Conversations)", jint(sm, "failed"));
	strbuf_addstr(out, "\n");
	if (fast)
		strbuf_addf(out,
			    "%d. **Fastest Candidate:** %s answered fastest (median turn %.2f s)\n",
			    n++, fast, fastest);
	strbuf_addch(out, '\n');
}

static void render_conversations(const json_t *b, struct strbuf *out)
{
	const json_t *convs = json_object_get(b, "conversations"); /* borrowed */
	json_t *c;
	size_t i;

	strbuf_addstr(out, "## 📁 Detailed Conversations\n\n");
	strbuf_addstr(out, "Every conversation's transcript, with its turns, timings and extracted "
			   "optimizations:\n\n");
	strbuf_addstr(out,
		      "| Model | Scenario | Run | Status | Optimizations | Interview Quality | "
		      "Transcript |\n");
	strbuf_addstr(out, "|-------|----------|----:|--------|--------------:|-------------------|"
			   "------------|\n");
	json_array_foreach(convs, i, c)
	{
		const json_t *err = json_object_get(c, "error");
		strbuf_addstr(out, "| `");
		markdown_table_cell(out, jstr(c, "candidate"));
		strbuf_addstr(out, "` | ");
		markdown_table_cell(out, jstr(c, "scenario_name"));
		strbuf_addf(out, " | %ld | %s", jint(c, "run"), jstr(c, "status"));
		if (json_is_object(err) && strcmp(jstr(c, "status"), "succeeded")) {
			strbuf_addstr(out, ": ");
			markdown_table_cell(out, jstr(err, "message"));
		}
		strbuf_addstr(out, " | ");
		markdown_table_num(out, c, "optimizations_found", "%.0f");
		strbuf_addstr(out, " | ");
		add_score(out, json_object_get(c, "success_metrics"), "interview_quality");
		strbuf_addstr(out, " | ");
		markdown_table_cell(out, jstr(c, "conversation_file"));
		strbuf_addstr(out, " |\n");
	}
	strbuf_addch(out, '\n');
}

static void render_footer(const json_t *b, struct strbuf *out)
{
	const char *st = jstr(b, "status");
	const json_t *sm = json_object_get(b, "summary_metrics");

	strbuf_addstr(out, "---\n\n");
	if (!strcmp(st, "finished"))
		strbuf_addstr(out, "**Batch Status:** COMPLETE ✅  \n");
	else if (!strcmp(st, "cancelled"))
		strbuf_addstr(out, "**Batch Status:** CANCELLED ⛔  \n");
	else
		strbuf_addf(out, "**Batch Status:** %s ⏳ (%ld of %ld conversations ended)  \n",
			    !strcmp(st, "queued") ? "QUEUED" : "RUNNING",
			    jint(sm, "conversations_ended"), jint(sm, "total_conversations"));
	strbuf_addf(out,
		    "**Next Phase:** Implement and test discovered optimizations (`GET "
		    "/v1/optimizations?batch=%s` lists them with their tests)\n",
		    jstr(b, "id"));
}

void report_batch(const json_t *batch, int64_t now_us, struct strbuf *out)
{
	render_header(batch, now_us, out);
	render_overall(batch, out);
	render_rankings(batch, out);
	render_optimize_rankings(batch, out);
	render_latency(batch, out);
	render_scenarios(batch, out);
	render_spread(batch, out);
	render_judge(batch, out);
	render_assessment(batch, out);
	render_insights(batch, out);
	render_conversations(batch, out);
	render_footer(batch, out);
}

/* ---- the comparison ---- */

/* d with fmt and a sign: "+2", "-0.5"; a value that rounds to zero is "+0". */
static void add_signed(struct strbuf *out, const char *fmt, double d)
{
	char buf[64];
	const char *p;

	snprintf(buf, sizeof(buf), fmt, d);
	p = buf[0] == '-' ? buf + 1 : buf;
	if (strspn(p, "0.") == strlen(p))
		strbuf_addf(out, "+%s", p);
	else if (buf[0] == '-')
		strbuf_addstr(out, buf);
	else
		strbuf_addf(out, "+%s", buf);
}

/* "5 → 7 (+2)" from {a, b, delta}; fmt formats one value. */
static void add_delta(struct strbuf *out, const json_t *sbs, const char *fmt, double scale)
{
	double d;

	add_scaled(out, sbs, "a", fmt, scale);
	strbuf_addstr(out, " → ");
	add_scaled(out, sbs, "b", fmt, scale);
	if (jnum(sbs, "delta", &d)) {
		strbuf_addstr(out, " (");
		add_signed(out, fmt, d * scale);
		strbuf_addch(out, ')');
	}
}

static void compare_row(struct strbuf *out, const char *name, const json_t *sbs, const char *fmt,
			double scale)
{
	double d;

	strbuf_addf(out, "| %s | ", name);
	add_scaled(out, sbs, "a", fmt, scale);
	strbuf_addstr(out, " | ");
	add_scaled(out, sbs, "b", fmt, scale);
	strbuf_addstr(out, " | ");
	if (jnum(sbs, "delta", &d)) {
		add_signed(out, fmt, d * scale);
	} else {
		strbuf_addstr(out, "—");
	}
	strbuf_addstr(out, " |\n");
}

static void add_names(struct strbuf *out, const json_t *names)
{
	json_t *v;
	size_t i;

	if (!json_array_size(names)) {
		strbuf_addstr(out, "none");
		return;
	}
	json_array_foreach(names, i, v)
	{
		strbuf_addf(out, "%s`%s`", i ? ", " : "", json_string_value(v));
	}
}

/* A number of the comparison: its heading, its key, how it is shown (printf format, scale). */
struct compare_col {
	const char *head, *key, *fmt;
	double scale;
};

/* The overall table: one row a number, A, B and the delta side by side. */
static const struct compare_col overall_rows[] = {
    {"Total Conversations", "total_conversations", "%.0f", 1},
    {"Optimizations Discovered", "total_optimizations_discovered", "%.0f", 1},
    {"Average Interview Quality", "average_interview_quality", "%.1f", 1},
    {"Average Candidate Engagement", "average_candidate_engagement", "%.1f", 1},
    {"Success Rate (%)", "success_rate", "%.1f", 100},
    {"Interviewer Median Turn (s)", "interviewer_median_turn_s", "%.2f", 1},
    {"Interviewer Tokens/s", "interviewer_tokens_per_s", "%.1f", 1},
};

/*
 * A table of the comparison: one row an item of cmp[rows], named by up to
 * two columns (a model name is shown as code), then one "A → B (Δ)" cell a
 * number. A NULL head ends a list.
 */
struct compare_table {
	const char *title, *note, *rows;
	struct {
		const char *head, *key;
		int code;
	} names[3];
	struct compare_col cols[9];
};

static const struct compare_table compare_tables[] = {
    {"📊 Models",
     NULL,
     "models",
     {{"Model", "model", 1}},
     {{"Rank", "rank", "%.0f", 1},
      {"Optimizations Found", "total_optimizations", "%.0f", 1},
      {"Interview Quality", "avg_quality", "%.1f", 1},
      {"Engagement", "avg_engagement", "%.1f", 1},
      {"Median Turn (s)", "median_turn_s", "%.2f", 1},
      {"p90 Turn (s)", "p90_turn_s", "%.2f", 1},
      {"Median TTFT (ms)", "median_ttft_ms", "%.0f", 1},
      {"Tokens/s", "tokens_per_s", "%.1f", 1}}},
    {"🔍 Scenarios",
     NULL,
     "scenarios",
     {{"Scenario", "scenario", 0}},
     {{"Optimizations Found", "total_optimizations", "%.0f", 1},
      {"Interview Quality", "avg_quality", "%.1f", 1},
      {"Engagement", "avg_engagement", "%.1f", 1},
      {"Success Rate (%)", "success_rate", "%.1f", 100}}},
    {"🧩 Model × Scenario",
     "Means over the runs that succeeded.",
     "pairs",
     {{"Model", "model", 1}, {"Scenario", "scenario", 0}},
     {{"Optimizations Found", "optimizations_found", "%.1f", 1},
      {"Interview Quality", "interview_quality", "%.1f", 1},
      {"Engagement", "candidate_engagement", "%.1f", 1},
      {"Duration (s)", "total_duration", "%.1f", 1}}},
};

static void compare_table(struct strbuf *out, const struct compare_table *t, const json_t *rows)
{
	const json_t *row;
	size_t i, k, ncols = 0;

	strbuf_addf(out, "\n## %s\n\n", t->title);
	if (t->note)
		strbuf_addf(out, "%s\n\n", t->note);
	for (k = 0; k < ARRAY_SIZE(t->names) && t->names[k].head; k++, ncols++)
		strbuf_addf(out, "| %s ", t->names[k].head);
	for (k = 0; k < ARRAY_SIZE(t->cols) && t->cols[k].head; k++, ncols++)
		strbuf_addf(out, "| %s ", t->cols[k].head);
	strbuf_addstr(out, "|\n");
	for (k = 0; k < ncols; k++)
		strbuf_addstr(out, "|---");
	strbuf_addstr(out, "|\n");
	json_array_foreach(rows, i, row)
	{
		for (k = 0; k < ARRAY_SIZE(t->names) && t->names[k].head; k++) {
			const char *q = t->names[k].code ? "`" : "";
			strbuf_addf(out, "| %s", q);
			markdown_table_cell(out, jstr(row, t->names[k].key));
			strbuf_addf(out, "%s ", q);
		}
		for (k = 0; k < ARRAY_SIZE(t->cols) && t->cols[k].head; k++) {
			strbuf_addstr(out, "| ");
			add_delta(out, json_object_get(row, t->cols[k].key), t->cols[k].fmt,
				  t->cols[k].scale);
			strbuf_addstr(out, " ");
		}
		strbuf_addstr(out, "|\n");
	}
}

void report_compare(const json_t *cmp, struct strbuf *out)
{
	const json_t *a = json_object_get(cmp, "a"), *b = json_object_get(cmp, "b");
	const json_t *ov = json_object_get(cmp, "overall");
	size_t i;

	strbuf_addf(out, "# Batch Comparison: %s → %s\n\n", jstr(a, "id"), jstr(b, "id"));
	strbuf_addf(out, "**A:** %s (interviewer %s, scoring %s, started %s)  \n", jstr(a, "id"),
		    jstr(json_object_get(a, "interviewer"), "model"), jstr(a, "scoring"),
		    jstr(a, "created_at"));
	strbuf_addf(out, "**B:** %s (interviewer %s, scoring %s, started %s)  \n", jstr(b, "id"),
		    jstr(json_object_get(b, "interviewer"), "model"), jstr(b, "scoring"),
		    jstr(b, "created_at"));
	strbuf_addstr(out, "**Deltas:** B − A\n\n");

	strbuf_addstr(out, "## 🎯 Overall\n\n| Metric | A | B | Δ |\n|---|---:|---:|---:|\n");
	for (i = 0; i < ARRAY_SIZE(overall_rows); i++)
		compare_row(out, overall_rows[i].head, json_object_get(ov, overall_rows[i].key),
			    overall_rows[i].fmt, overall_rows[i].scale);
	for (i = 0; i < ARRAY_SIZE(compare_tables); i++)
		compare_table(out, &compare_tables[i],
			      json_object_get(cmp, compare_tables[i].rows));

	strbuf_addstr(out, "\n## Not in Both\n\n- **Only in A:** models ");
	add_names(out, json_object_get(json_object_get(cmp, "only_in_a"), "models"));
	strbuf_addstr(out, "; scenarios ");
	add_names(out, json_object_get(json_object_get(cmp, "only_in_a"), "scenarios"));
	strbuf_addstr(out, "\n- **Only in B:** models ");
	add_names(out, json_object_get(json_object_get(cmp, "only_in_b"), "models"));
	strbuf_addstr(out, "; scenarios ");
	add_names(out, json_object_get(json_object_get(cmp, "only_in_b"), "scenarios"));
	strbuf_addstr(out, "\n");
}
