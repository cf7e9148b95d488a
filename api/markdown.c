/*
 * markdown.c - a conversation as the Markdown report of the origin layout.
 * See markdown.h.
 *
 * DESIGN: one pass over the transcript JSON, appending to the caller's
 * strbuf. The first part reproduces the origin report byte for byte (the
 * fixtures in origin-phase2 are the specification: two trailing spaces on the
 * header lines, one-decimal durations, "---" after every turn, the
 * optimizations section left out when empty). Everything parley adds (rich
 * optimizations, per-turn timings, the score breakdown, the error) only
 * appears when the transcript carries the fields the origin never had, so an
 * origin JSON file renders exactly as the origin rendered it. Missing fields
 * render as empty text or 0 rather than failing: a report of a failed job is
 * still a report.
 */
#include "api/markdown.h"

#include <stdlib.h>
#include <string.h>

/* "" when key is missing or not a string. Borrowed from obj. */
static const char *jstr(const json_t *obj, const char *key)
{
	const char *s = json_string_value(json_object_get(obj, key));

	return s ? s : "";
}

static double jnum(const json_t *obj, const char *key)
{
	return json_number_value(json_object_get(obj, key));
}

/* A metric is known when it is a number; null or absent means the backend did not say. */
static int jknown(const json_t *obj, const char *key, double *v)
{
	json_t *x = json_object_get(obj, key); /* borrowed */

	if (!json_is_number(x))
		return 0;
	*v = json_number_value(x);
	return 1;
}

void markdown_table_cell(struct strbuf *out, const char *s)
{
	for (; *s; s++) {
		if (*s == '|')
			strbuf_addstr(out, "\\|");
		else if (*s == '\n' || *s == '\r')
			strbuf_addch(out, ' ');
		else
			strbuf_addch(out, *s);
	}
}

void markdown_table_num(struct strbuf *out, const json_t *o, const char *key, const char *fmt)
{
	double v;

	if (o && jknown(o, key, &v))
		strbuf_addf(out, fmt, v);
	else
		strbuf_addstr(out, "—");
}

void markdown_table_nums(struct strbuf *out, const json_t *o, const struct markdown_num *cols,
			 size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		if (i)
			strbuf_addstr(out, " | ");
		markdown_table_num(out, o, cols[i].key, cols[i].fmt);
	}
}

static void render_header(const json_t *t, struct strbuf *out)
{
	const json_t *sc = json_object_get(t, "scenario");	  /* borrowed */
	const json_t *sm = json_object_get(t, "success_metrics"); /* borrowed */
	const char *goal = jstr(sc, "goal");

	/* parley calls it goal; the origin JSON calls the same text description */
	if (!*goal)
		goal = jstr(sc, "description");
	strbuf_addstr(out, "# AI-to-AI Optimization Conversation\n\n");
	strbuf_addf(out, "**Scenario:** %s  \n", jstr(sc, "name"));
	strbuf_addf(out, "**Interviewer:** %s  \n", jstr(t, "interviewer_model"));
	strbuf_addf(out, "**Candidate:** %s  \n", jstr(t, "candidate_model"));
	strbuf_addf(out, "**Date:** %s\n\n", jstr(t, "timestamp"));
	strbuf_addstr(out, "## 🎯 Optimization Challenge\n\n");
	strbuf_addf(out, "**Problem:** %s  \n", jstr(sc, "problem"));
	strbuf_addf(out, "**Context:** %s  \n", jstr(sc, "context"));
	strbuf_addf(out, "**Goal:** %s\n\n", goal);
	strbuf_addstr(out, "## 📊 Success Metrics\n\n");
	strbuf_addf(out, "- **Total Duration:** %.1fs\n", jnum(sm, "total_duration"));
	strbuf_addf(out, "- **Turns Completed:** %.0f\n", jnum(sm, "turns_completed"));
	strbuf_addf(out, "- **Optimizations Found:** %.0f\n", jnum(sm, "optimizations_found"));
	strbuf_addf(out, "- **Interview Quality:** %.1f/10\n", jnum(sm, "interview_quality"));
	strbuf_addf(out, "- **Candidate Engagement:** %.1f/10\n\n",
		    jnum(sm, "candidate_engagement"));
}

/* text in a fenced block whose fence no run of backticks inside it can close */
static void add_fenced(struct strbuf *out, const char *text, const char *info)
{
	size_t run = 0, longest = 0, n;
	const char *p;

	for (p = text; *p; p++) {
		run = *p == '`' ? run + 1 : 0;
		if (run > longest)
			longest = run;
	}
	n = longest < 3 ? 3 : longest + 1;
	for (run = 0; run < n; run++)
		strbuf_addch(out, '`');
	strbuf_addf(out, "%s\n%s\n", info, text);
	for (run = 0; run < n; run++)
		strbuf_addch(out, '`');
	strbuf_addch(out, '\n');
}

static int turn_number(const json_t *item, size_t index)
{
	json_t *n = json_object_get(item, "turn"); /* borrowed */

	return json_is_integer(n) ? (int)json_integer_value(n) : (int)index + 1;
}

static void render_turns(const json_t *conv, struct strbuf *out)
{
	size_t i;
	json_t *item;

	strbuf_addstr(out, "## 💬 Conversation Log\n\n");
	json_array_foreach(conv, i, item)
	{
		const char *speaker = jstr(item, "speaker");
		const char *who = !strcmp(speaker, "interviewer") ? "🎤 INTERVIEWER"
				  : !strcmp(speaker, "candidate") ? "🤖 CANDIDATE"
								  : speaker;

		/* a trial's result, as both models saw it between the turns (closed loop) */
		if (!strcmp(speaker, "parley")) {
			strbuf_addf(out, "### 🧪 PARLEY: trial %.0f\n\n", jnum(item, "trial"));
			add_fenced(out, jstr(item, "message"), "text");
			strbuf_addstr(out, "\n---\n\n");
			continue;
		}
		strbuf_addf(out, "### Turn %d: %s (%s)\n\n", turn_number(item, i), who,
			    jstr(item, "model"));
		strbuf_addf(out, "**Duration:** %.1fs  \n", jnum(item, "duration"));
		strbuf_addf(out, "**Time:** %s\n\n", jstr(item, "timestamp"));
		strbuf_addf(out, "%s\n\n---\n\n", jstr(item, "message"));
	}
}

static void render_optimizations(const json_t *opts, struct strbuf *out)
{
	size_t i;
	json_t *o;

	if (!json_array_size(opts))
		return;
	strbuf_addstr(out, "\n## 🎯 Optimizations Discovered\n\n");
	json_array_foreach(opts, i, o)
	{
		const char *title = jstr(o, "title"), *sugg = jstr(o, "suggestion");
		const char *detail = jstr(o, "detail"), *test = jstr(o, "test");

		/*
		 * An origin extraction's title is the suggestion itself; writing it
		 * in bold would change what the origin report showed.
		 */
		if (!*title || (!strcmp(title, sugg) && !*test)) {
			strbuf_addf(out, "%zu. %s\n", i + 1, sugg);
			continue;
		}
		strbuf_addf(out, "%zu. **%s**", i + 1, title);
		if (*detail)
			strbuf_addf(out, " — %s", detail);
		strbuf_addch(out, '\n');
		if (*test)
			strbuf_addf(out, "   - Test: %s\n", test);
	}
}

static int has_metrics(const json_t *conv)
{
	size_t i;
	json_t *item;

	json_array_foreach(conv, i, item)
	{
		if (json_is_object(json_object_get(item, "metrics")))
			return 1;
	}
	return 0;
}

/* The timing table's last columns, after the prompt tokens. */
static const struct markdown_num timing_cols[] = {
    {"completion_tokens", "%.0f"},
    {"prompt_ms", "%.0f"},
    {"gen_ms", "%.0f"},
    {"tokens_per_s", "%.1f"},
};

static void render_timings(const json_t *conv, struct strbuf *out)
{
	size_t i;
	json_t *item;

	if (!has_metrics(conv))
		return;
	strbuf_addstr(out, "\n## ⏱️ Turn Timings\n\n");
	strbuf_addstr(out, "| Turn | Speaker | Model | Wall s | TTFT ms | Prompt tokens (cached) | "
			   "Completion tokens | Prompt ms | Gen ms | Tok/s |\n");
	strbuf_addstr(out, "|---:|---|---|---:|---:|---:|---:|---:|---:|---:|\n");
	json_array_foreach(conv, i, item)
	{
		const json_t *m = json_object_get(item, "metrics"); /* borrowed, may be NULL */
		double v;

		if (!strcmp(jstr(item, "speaker"), "parley"))
			continue; /* not a turn: its calls are in the Trials section */
		if (!json_is_object(m))
			m = NULL;
		strbuf_addf(out, "| %d | ", turn_number(item, i));
		markdown_table_cell(out, jstr(item, "speaker"));
		strbuf_addstr(out, " | ");
		markdown_table_cell(out, jstr(item, "model"));
		strbuf_addstr(out, " | ");
		markdown_table_num(out, item, "duration", "%.1f");
		strbuf_addstr(out, " | ");
		markdown_table_num(out, m, "ttft_ms", "%.0f");
		strbuf_addstr(out, " | ");
		if (m && jknown(m, "prompt_tokens", &v)) {
			strbuf_addf(out, "%.0f (", v);
			markdown_table_num(out, m, "cached_tokens", "%.0f");
			strbuf_addch(out, ')');
		} else {
			strbuf_addstr(out, "—");
		}
		strbuf_addstr(out, " | ");
		markdown_table_nums(out, m, timing_cols, ARRAY_SIZE(timing_cols));
		strbuf_addstr(out, " |\n");
	}
}

static void render_score_part(const json_t *part, const char *label, struct strbuf *out)
{
	const json_t *comps = json_object_get(part, "components"); /* borrowed */
	size_t i;
	json_t *c;

	if (!json_is_array(comps))
		return;
	strbuf_addf(out, "**%s:** %.1f/10\n\n", label, jnum(part, "total"));
	strbuf_addstr(out, "| Component | Points | Why |\n|---|---:|---|\n");
	json_array_foreach(comps, i, c)
	{
		strbuf_addstr(out, "| ");
		markdown_table_cell(out, jstr(c, "name"));
		strbuf_addf(out, " | %.1f/%.1f | ", jnum(c, "points"), jnum(c, "max"));
		markdown_table_cell(out, jstr(c, "why"));
		strbuf_addstr(out, " |\n");
	}
	strbuf_addch(out, '\n');
}

/* "scores" is score.h's components object, possibly under a "components" key. */
static void render_scores(const json_t *t, struct strbuf *out)
{
	const json_t *s = json_object_get(t, "scores"); /* borrowed */
	const json_t *iq, *ce;

	if (json_is_object(json_object_get(s, "components")))
		s = json_object_get(s, "components");
	iq = json_object_get(s, "interview_quality");
	ce = json_object_get(s, "candidate_engagement");
	if (!json_is_array(json_object_get(iq, "components")) &&
	    !json_is_array(json_object_get(ce, "components")))
		return;
	strbuf_addstr(out, "\n## 🧮 Score Breakdown\n\n");
	render_score_part(iq, "Interview Quality", out);
	render_score_part(ce, "Candidate Engagement", out);
	/* one trailing newline, as every other section ends */
	if (out->len >= 2 && out->buf[out->len - 1] == '\n' && out->buf[out->len - 2] == '\n') {
		out->len--;
		out->buf[out->len] = '\0';
	}
}

static void render_error(const json_t *t, struct strbuf *out)
{
	const char *status = jstr(t, "status");
	const json_t *err = json_object_get(t, "error"); /* borrowed */
	const char *code, *msg;

	if (!json_is_object(err) || (strcmp(status, "failed") && strcmp(status, "cancelled")))
		return;
	code = jstr(err, "code");
	msg = jstr(err, "message");
	strbuf_addstr(out, "\n## ⚠️ Error\n\n");
	if (*code)
		strbuf_addf(out, "**%s:** %s\n", code, msg);
	else
		strbuf_addf(out, "%s\n", msg);
}

/*
 * Makes the report from byte `from` on safe to print in a terminal: a model's
 * ESC sequences would recolour or rewrite the screen of whoever runs `curl`
 * or `cat` on it, and a lone CR would overwrite the line. A CR is dropped (a
 * CRLF becomes the LF it means); any other control character but tab and
 * newline becomes its visible Unicode picture (ESC is U+241B, DEL U+2421).
 */
static void neutralise_controls(struct strbuf *out, size_t from)
{
	struct strbuf clean;
	size_t i;

	for (i = from; i < out->len; i++) {
		unsigned char c = (unsigned char)out->buf[i];
		if ((c < 0x20 && c != '\n' && c != '\t') || c == 0x7f)
			break;
	}
	if (i == out->len)
		return;
	strbuf_init(&clean, out->len - from + 64);
	for (i = from; i < out->len; i++) {
		unsigned char c = (unsigned char)out->buf[i];
		unsigned int pic;

		if ((c >= 0x20 && c != 0x7f) || c == '\n' || c == '\t') {
			strbuf_addch(&clean, c);
			continue;
		}
		if (c == '\r')
			continue;
		pic = c == 0x7f ? 0x2421 : 0x2400 + c; /* U+2400.. CONTROL PICTURES */
		strbuf_addch(&clean, (int)(0xe0 | pic >> 12));
		strbuf_addch(&clean, (int)(0x80 | ((pic >> 6) & 0x3f)));
		strbuf_addch(&clean, (int)(0x80 | (pic & 0x3f)));
	}
	out->len = from;
	out->buf[from] = '\0';
	strbuf_add(out, clean.buf, clean.len);
	strbuf_release(&clean);
}

/* A signed change, or nothing for the baseline itself. */
static void add_change(struct strbuf *out, const json_t *t, const json_t *base, const char *key,
		       const char *fmt)
{
	double v, b;

	if (t == base || !jknown(t, key, &v) || !jknown(base, key, &b))
		return;
	strbuf_addstr(out, " (");
	strbuf_addf(out, fmt, v - b);
	strbuf_addch(out, ')');
}

/* Lines of a that b has not (-), then lines of b that a has not (+): enough for prompts. */
static void add_line_diff(struct strbuf *out, const char *a, const char *b)
{
	const char *const side[2][2] = {{a, b}, {b, a}};
	int s;

	for (s = 0; s < 2; s++) {
		const char *p = side[s][0];
		while (*p) {
			const char *e = strchr(p, '\n');
			size_t n = e ? (size_t)(e - p) : strlen(p);
			const char *q = side[s][1];
			int found = 0;
			while (*q && !found) {
				const char *qe = strchr(q, '\n');
				size_t qn = qe ? (size_t)(qe - q) : strlen(q);
				found = qn == n && !strncmp(p, q, n);
				q += qn + (qe != NULL);
			}
			if (!found) {
				strbuf_addstr(out, s ? "+ " : "- ");
				strbuf_add(out, p, n);
				strbuf_addch(out, '\n');
			}
			p += n + (e != NULL);
		}
	}
}

static void render_best(const json_t *best, const json_t *base_cfg, struct strbuf *out)
{
	const json_t *cfg = json_object_get(best, "config"), *h = json_object_get(best, "holdout");
	const json_t *iv = json_object_get(best, "interval"), *d = json_object_get(best, "delta");
	const char *keys[] = {"system", "template"};
	struct strbuf diff;
	char *a, *b;
	int k, trial = (int)jnum(best, "trial");

	if (trial == 0) {
		strbuf_addstr(out,
			      "\n**Best:** nothing tested beat the baseline; keep it as it is.\n");
		return;
	}
	strbuf_addf(out, "\n**Best:** trial %d. Its change against the baseline:\n\n", trial);
	strbuf_init(&diff, 1024);
	for (k = 0; k < 2; k++)
		if (strcmp(jstr(cfg, keys[k]), jstr(base_cfg, keys[k]))) {
			strbuf_addf(&diff, "@@ %s\n", keys[k]);
			add_line_diff(&diff, jstr(base_cfg, keys[k]), jstr(cfg, keys[k]));
		}
	a = json_dumps(json_object_get(base_cfg, "options"), JSON_COMPACT | JSON_SORT_KEYS);
	b = json_dumps(json_object_get(cfg, "options"), JSON_COMPACT | JSON_SORT_KEYS);
	if (a && b && strcmp(a, b))
		strbuf_addf(&diff, "@@ options\n- %s\n+ %s\n", a, b);
	free(a);
	free(b);
	add_fenced(out, diff.buf, "diff");
	strbuf_release(&diff);
	if (!json_is_object(h)) {
		strbuf_addstr(out, "\nThe held-out tasks have not been run: the change is not "
				   "verified.\n");
		return;
	}
	strbuf_addf(out,
		    "\nOn %.0f held-out tasks it was not tuned on, it scored %.3f against the "
		    "baseline's %.3f (%+.3f), with a median of %.0f ms (%+.0f ms).",
		    jnum(h, "tasks"), jnum(h, "score"), jnum(h, "score") - jnum(d, "score"),
		    jnum(d, "score"), jnum(h, "median_ms"), jnum(d, "median_ms"));
	if (json_is_object(iv))
		strbuf_addf(
		    out,
		    " The 95 %% interval of the paired per-task difference in the objective "
		    "is %.3f to %.3f over %.0f pairs.",
		    jnum(iv, "lo"), jnum(iv, "hi"), jnum(iv, "n"));
	if (json_is_true(json_object_get(best, "verified")))
		strbuf_addstr(out, " **Verified:** the improvement is larger than its noise.\n");
	else
		strbuf_addstr(out, " **Not verified:** the improvement is within the noise, so "
				   "it may not hold up.\n");
}

/* "🧪 Trials": every trial against the baseline, the best change and its holdout check. */
static void render_trials(const json_t *t, struct strbuf *out)
{
	const json_t *trials = json_object_get(t, "trials"), *base, *tr; /* borrowed */
	size_t i;
	double v;

	if (!json_array_size(trials))
		return;
	base = json_array_get(trials, 0);
	strbuf_addstr(out, "\n## 🧪 Trials\n\n");
	strbuf_addstr(out, "| Trial | Kind | Turn | Status | Score | Passed | Median ms | p90 ms | "
			   "TTFT ms | Completion tokens | Calls | Note |\n");
	strbuf_addstr(out, "|---:|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---|\n");
	json_array_foreach(trials, i, tr)
	{
		strbuf_addf(out, "| %.0f | ", jnum(tr, "n"));
		markdown_table_cell(out, jstr(tr, "kind"));
		strbuf_addstr(out, " | ");
		if (jknown(tr, "turn", &v))
			strbuf_addf(out, "%.0f", v);
		else
			strbuf_addstr(out, "—");
		strbuf_addstr(out, " | ");
		markdown_table_cell(out, jstr(tr, "status"));
		strbuf_addstr(out, " | ");
		if (!jknown(tr, "score", &v)) {
			strbuf_addstr(out, "— | — | — | — | — | — | — | ");
		} else {
			strbuf_addf(out, "%.3f", v);
			add_change(out, tr, base, "score", "%+.3f");
			strbuf_addf(out, " | %.0f/%.0f | %.0f", jnum(tr, "passed"),
				    jnum(tr, "tasks"), jnum(tr, "median_ms"));
			add_change(out, tr, base, "median_ms", "%+.0f");
			strbuf_addf(out, " | %.0f", jnum(tr, "p90_ms"));
			add_change(out, tr, base, "p90_ms", "%+.0f");
			strbuf_addf(out, " | %.0f", jnum(tr, "ttft_ms"));
			add_change(out, tr, base, "ttft_ms", "%+.0f");
			strbuf_addf(out, " | %.1f", jnum(tr, "completion_tokens"));
			add_change(out, tr, base, "completion_tokens", "%+.1f");
			strbuf_addf(out, " | %.0f", jnum(tr, "calls"));
			if (jnum(tr, "failed_calls") > 0)
				strbuf_addf(out, " (%.0f failed)", jnum(tr, "failed_calls"));
			strbuf_addstr(out, " | ");
		}
		markdown_table_cell(out, jstr(tr, "reason"));
		strbuf_addstr(out, " |\n");
	}
	if (json_is_object(json_object_get(t, "best")))
		render_best(json_object_get(t, "best"), json_object_get(base, "config"), out);
}

void markdown_render_transcript(const json_t *transcript, struct strbuf *out)
{
	const json_t *conv = json_object_get(transcript, "conversation"); /* borrowed */
	size_t from = out->len;

	render_header(transcript, out);
	render_turns(conv, out);
	render_optimizations(json_object_get(transcript, "optimizations_discovered"), out);
	render_trials(transcript, out);
	render_timings(conv, out);
	render_scores(transcript, out);
	render_error(transcript, out);
	neutralise_controls(out, from);
}
