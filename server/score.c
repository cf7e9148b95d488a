/*
 * score.c - how good a finished conversation was. See score.h.
 *
 * DESIGN: the rubric is a fixed list of components per score, each a pure
 * function of the text (no model, no clock), so the same conversation always
 * gets the same numbers. Each component's points are rounded to one decimal
 * before they are added, so the reported components add up to the reported
 * total exactly; the maxima of each score add up to 10. Word comparisons use
 * "keys": lowercase words of four letters or more, minus stop words, cut to
 * six letters so that "optimize" meets "optimization" and "analysis" meets
 * "analyses". Texts here are a few thousand words at most, so the key sets
 * are plain arrays searched linearly.
 */
#include "server/score.h"

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "db/util.h"

#define KEY_LEN 6

struct keyset {
	char (*v)[KEY_LEN + 1];
	size_t n, alloc;
};

struct component {
	const char *name;
	double points;
	double max;
	char why[192];
};

struct part {
	struct component v[8];
	size_t n;
};

static double round1(double x)
{
	return floor(x * 10.0 + 0.5) / 10.0;
}

static double clamp01(double x)
{
	return x < 0 ? 0 : x > 1 ? 1 : x;
}

static void part_add(struct part *p, const char *name, double points, double max, const char *fmt,
		     ...) __attribute__((format(printf, 5, 6)));

static void part_add(struct part *p, const char *name, double points, double max, const char *fmt,
		     ...)
{
	struct component *c = &p->v[p->n++];
	va_list ap;

	c->name = name;
	c->points = round1(points > max ? max : points < 0 ? 0 : points);
	c->max = max;
	va_start(ap, fmt);
	vsnprintf(c->why, sizeof(c->why), fmt, ap);
	va_end(ap);
}

static double part_total(const struct part *p)
{
	double t = 0;
	size_t i;

	for (i = 0; i < p->n; i++)
		t += p->v[i].points;
	return round1(t);
}

/* {"total": x, "components": [{"name","points","max","why"}]}, a new reference. */
static json_t *part_json(const struct part *p)
{
	json_t *arr = json_array(), *o;
	size_t i;

	for (i = 0; i < p->n; i++) {
		o = json_pack("{s:s, s:f, s:f, s:s}", "name", p->v[i].name, "points",
			      p->v[i].points, "max", p->v[i].max, "why", p->v[i].why);
		json_array_append_new(arr, o); /* o stolen */
	}
	/* arr stolen by "o" */
	return json_pack("{s:f, s:o}", "total", part_total(p), "components", arr);
}

/* ---------------------------------------------------------------- words */

static int is_stop(const char *w, size_t n)
{
	static const char *const stop[] = {
	    "that",   "this",	   "with",   "from",   "have",	    "will",    "your",
	    "what",   "when",	   "which",  "they",   "them",	    "their",   "there",
	    "these",  "those",	   "would",  "could",  "should",    "about",   "into",
	    "than",   "then",	   "more",   "most",   "some",	    "such",    "also",
	    "just",   "like",	   "been",   "were",   "does",	    "each",    "very",
	    "while",  "only",	   "over",   "make",   "need",	    "needs",   "want",
	    "here",   "where",	   "being",  "other",  "because",   "through", "well",
	    "really", "think",	   "know",   "okay",   "thanks",    "sure",    "let's",
	    "it's",   "i'm",	   "don't",  "within", "without",   "using",   "used",
	    "much",   "many",	   "even",   "still",  "might",	    "can't",   "doesn't",
	    "what's", "we're",	   "you're", "i've",   "let’s",	    "it’s",    "i’m",
	    "don’t",  "what’s",	   "things", "thing",  "something", "general", "overview",
	    "words",  "happening", "tell",   "feel"};
	size_t k;

	for (k = 0; k < ARRAY_SIZE(stop); k++)
		if (strlen(stop[k]) == n && !strncasecmp(stop[k], w, n))
			return 1;
	return 0;
}

static int keyset_has(const struct keyset *s, const char *key)
{
	size_t i;

	for (i = 0; i < s->n; i++)
		if (!strcmp(s->v[i], key))
			return 1;
	return 0;
}

static void keyset_add(struct keyset *s, const char *key)
{
	if (keyset_has(s, key))
		return;
	if (s->n == s->alloc) {
		s->alloc = s->alloc ? s->alloc * 2 : 64;
		s->v = xrealloc(s->v, s->alloc * sizeof(*s->v));
	}
	snprintf(s->v[s->n++], KEY_LEN + 1, "%s", key);
}

static void keyset_release(struct keyset *s)
{
	free(s->v);
	s->v = NULL;
	s->n = s->alloc = 0;
}

/* Adds the content-word keys of text[0..n) to s. */
static void keys_of(const char *text, size_t n, struct keyset *s)
{
	size_t i = 0;

	while (i < n) {
		size_t b, k;
		char key[KEY_LEN + 1];

		while (i < n && !isalpha((unsigned char)text[i]))
			i++;
		b = i;
		while (i < n && (isalnum((unsigned char)text[i]) || text[i] == '\''))
			i++;
		if (i - b < 4 || is_stop(text + b, i - b))
			continue;
		for (k = 0; k < KEY_LEN && k < i - b; k++)
			key[k] = (char)tolower((unsigned char)text[b + k]);
		key[k] = '\0';
		keyset_add(s, key);
	}
}

/* Share of want's keys that also occur in have. */
static double coverage(const struct keyset *want, const struct keyset *have, size_t *hits)
{
	size_t i, h = 0;

	for (i = 0; i < want->n; i++)
		h += keyset_has(have, want->v[i]);
	if (hits)
		*hits = h;
	return want->n ? (double)h / (double)want->n : 0;
}

static size_t count_words(const char *s)
{
	size_t n = 0;
	int in = 0;

	for (; *s; s++) {
		if (isspace((unsigned char)*s)) {
			in = 0;
		} else if (!in) {
			in = 1;
			n++;
		}
	}
	return n;
}

/* Appends to out the sentences of text that end with a question mark. */
static void questions_of(const char *text, struct strbuf *out)
{
	const char *b = text, *p;

	for (p = text; *p; p++) {
		if (*p == '\n' || ((*p == '.' || *p == '!') && (p[1] == ' ' || p[1] == '\0'))) {
			b = p + 1;
		} else if (*p == '?') {
			strbuf_add(out, b, (size_t)(p - b + 1));
			strbuf_addch(out, ' ');
			b = p + 1;
		}
	}
}

static int contains_ci(const char *s, const char *needle)
{
	size_t k = strlen(needle);

	for (; *s; s++)
		if (!strncasecmp(s, needle, k))
			return 1;
	return 0;
}

/* ---------------------------------------------------------------- signals */

/* Distinct tokens that carry a digit: "45-60", "4.2/10", "30%", "GPT-3.5" count once each. */
static size_t count_numbers(const char *text)
{
	struct keyset seen = {0};
	const char *p = text;
	size_t n;

	while (*p) {
		const char *b;
		int digit = 0;
		char tok[KEY_LEN + 1];
		size_t len;

		while (*p && isspace((unsigned char)*p))
			p++;
		b = p;
		while (*p && !isspace((unsigned char)*p)) {
			digit |= isdigit((unsigned char)*p) != 0;
			p++;
		}
		if (!digit)
			continue;
		while (b < p && !isalnum((unsigned char)*b))
			b++;
		len = (size_t)(p - b);
		while (len > 0 && !isalnum((unsigned char)b[len - 1]) && b[len - 1] != '%')
			len--;
		/* keys are short; distinct numbers rarely share six characters */
		snprintf(tok, sizeof(tok), "%.*s", (int)(len < KEY_LEN ? len : KEY_LEN), b);
		keyset_add(&seen, tok);
	}
	n = seen.n;
	keyset_release(&seen);
	return n;
}

/*
 * Named techniques: acronyms (NER, TF-IDF, GPU), CamelCase names (PyTorch,
 * KeyBERT) and a lexicon of method words. Returns the distinct count and
 * writes the first few names into names.
 */
static size_t count_techniques(const char *text, char *names, size_t namesz)
{
	static const char *const lexicon[] = {"cach",	     "quantiz",
					      "batch",	     "prun",
					      "distill",     "embedding",
					      "tokeniz",     "fine-tun",
					      "finetun",     "retriev",
					      "index",	     "parallel",
					      "stream",	     "templat",
					      "regex",	     "regular expression",
					      "few-shot",    "chain-of-thought",
					      "attention",   "transformer",
					      "pipeline",    "profil",
					      "benchmark",   "vector",
					      "classif",     "pars",
					      "lemmatiz",    "stemming",
					      "speculative", "context window",
					      "beam search", "sampling",
					      "temperature", "heuristic",
					      "cluster",     "schema",
					      "validat",     "monitor",
					      "asynchron",   "precompute",
					      "pre-compute", "pattern match",
					      "semantic",    "knowledge graph"};
	struct keyset seen = {0};
	size_t n = 0, k, used = 0;
	const char *p = text;

	names[0] = '\0';
	for (k = 0; k < ARRAY_SIZE(lexicon); k++) {
		const char *q;
		size_t len = strlen(lexicon[k]);

		for (q = text; *q; q++) {
			if ((q == text || !isalpha((unsigned char)q[-1])) &&
			    !strncasecmp(q, lexicon[k], len)) {
				size_t w = 0;

				/* name the word as written, not the lexicon's stem */
				while (q[w] && (isalnum((unsigned char)q[w]) || q[w] == '-'))
					w++;
				n++;
				if (used + w + 3 < namesz && n <= 4)
					used +=
					    (size_t)snprintf(names + used, namesz - used, "%s%.*s",
							     used ? ", " : "", (int)w, q);
				break;
			}
		}
	}
	while (*p) {
		const char *b;
		size_t upper = 0, lower = 0, len, i;
		int camel = 0;
		char tok[KEY_LEN + 1];

		while (*p && !isalnum((unsigned char)*p))
			p++;
		b = p;
		while (*p && (isalnum((unsigned char)*p) || *p == '-'))
			p++;
		len = (size_t)(p - b);
		while (len > 0 && b[len - 1] == '-')
			len--;
		for (i = 0; i < len; i++) {
			upper += isupper((unsigned char)b[i]) != 0;
			lower += islower((unsigned char)b[i]) != 0;
			if (i > 0 && isupper((unsigned char)b[i]) &&
			    islower((unsigned char)b[i - 1]))
				camel = 1;
		}
		if (!((upper >= 2 && lower == 0 && len <= 10) || camel))
			continue;
		snprintf(tok, sizeof(tok), "%.*s", (int)(len < KEY_LEN ? len : KEY_LEN), b);
		if (keyset_has(&seen, tok))
			continue;
		keyset_add(&seen, tok);
		n++;
		if (used + len + 3 < namesz && n <= 4)
			used += (size_t)snprintf(names + used, namesz - used, "%s%.*s",
						 used ? ", " : "", (int)len, b);
	}
	keyset_release(&seen);
	return n;
}

/* List items plus sequencing words ("first", "then", "finally"). */
static size_t count_steps(const char *text)
{
	static const char *const seq[] = {"first", "second",  "third", "then",
					  "next",  "finally", "step"};
	const char *p = text;
	size_t n = 0, k;
	int bol = 1;

	for (; *p; p++) {
		if (*p == '\n') {
			bol = 1;
			continue;
		}
		if (bol) {
			const char *q = p;

			while (*q == ' ' || *q == '\t')
				q++;
			if ((*q == '*' || *q == '-' || *q == '+') && q[1] == ' ')
				n++;
			else if (isdigit((unsigned char)*q)) {
				while (isdigit((unsigned char)*q))
					q++;
				if ((*q == '.' || *q == ')') && q[1] == ' ')
					n++;
			}
			bol = 0;
		}
		if (p == text || !isalpha((unsigned char)p[-1]))
			for (k = 0; k < ARRAY_SIZE(seq); k++) {
				size_t len = strlen(seq[k]);

				if (!strncasecmp(p, seq[k], len) && !isalpha((unsigned char)p[len]))
					n++;
			}
	}
	return n;
}

/*
 * The numbered analysis sections present in text: a short line opening
 * (after #, * and _) with "k." or "k)" and naming what section k is about.
 * Returns a bit mask, bit k-1 for section k.
 */
static unsigned sections_present(const char *text)
{
	static const char *const words[4][3] = {{"analys", NULL, NULL},
						{"opportunit", "optimiz", NULL},
						{"suggestion", NULL, NULL},
						{"reason", "why", "rationale"}};
	unsigned mask = 0;
	const char *p = text;

	while (*p) {
		const char *nl = strchr(p, '\n');
		size_t len = nl ? (size_t)(nl - p) : strlen(p);
		const char *q = p;

		while (q < p + len &&
		       (*q == ' ' || *q == '\t' || *q == '#' || *q == '*' || *q == '_'))
			q++;
		if (len <= 100 && q + 1 < p + len && *q >= '1' && *q <= '4' &&
		    (q[1] == '.' || q[1] == ')')) {
			int k = *q - '1', w;
			char *line = xstrndup(p, len);

			for (w = 0; w < 3 && words[k][w]; w++)
				if (contains_ci(line, words[k][w]))
					mask |= 1u << k;
			free(line);
		}
		if (!nl)
			break;
		p = nl + 1;
	}
	return mask;
}

/* ---------------------------------------------------------------- rubric */

static void scenario_keys(const struct score_input *in, struct keyset *s)
{
	if (in->problem)
		keys_of(in->problem, strlen(in->problem), s);
	if (in->goal)
		keys_of(in->goal, strlen(in->goal), s);
}

static int is_role(const struct score_turn *t, const char *role)
{
	return t->role && !strcmp(t->role, role) && t->text;
}

static void rubric_interview(const struct score_input *in, struct part *p)
{
	static const char *const names[4] = {"analysis", "opportunities", "suggestions",
					     "reasoning"};
	const struct score_turn *first = NULL, *last = NULL;
	size_t i, n = in->optims ? in->optims->n : 0, tested = 0, found = 0;
	unsigned mask;
	char missing[64] = "";

	for (i = 0; i < in->nturns; i++)
		if (is_role(&in->turns[i], "interviewer")) {
			if (!first)
				first = &in->turns[i];
			last = &in->turns[i];
		}
	for (i = 0; i < n; i++)
		if (in->optims->v[i].test && in->optims->v[i].test[0])
			tested++;

	part_add(p, "suggestions", 0.75 * (double)n, 3.0,
		 "%zu concrete suggestion%s extracted (0.75 each, full at 4)", n,
		 n == 1 ? "" : "s");
	part_add(p, "tested_suggestions", 0.5 * (double)tested, 2.0,
		 "%zu of %zu suggestions say how to test them (0.5 each, full at 4)", tested, n);

	mask = last && last != first ? sections_present(last->text) : 0;
	for (i = 0; i < 4; i++) {
		if (mask & (1u << i)) {
			found++;
		} else {
			size_t len = strlen(missing);

			snprintf(missing + len, sizeof(missing) - len, "%s%s", len ? ", " : "",
				 names[i]);
		}
	}
	part_add(p, "analysis_sections", 0.5 * (double)found, 2.0,
		 "%zu of 4 numbered analysis sections in the closing turn%s%s%s", found,
		 found < 4 ? " (missing: " : "", found < 4 ? missing : "", found < 4 ? ")" : "");

	if (first) {
		struct strbuf q;
		int asks, about;
		const char *src;

		strbuf_init(&q, 256);
		questions_of(first->text, &q);
		asks = q.len > 0 || contains_ci(first->text, "tell me") ||
		       contains_ci(first->text, "describe") ||
		       contains_ci(first->text, "walk me through");
		src = q.len ? q.buf : first->text;
		about = contains_ci(src, "current") || contains_ci(src, "approach") ||
			contains_ci(src, "workflow") || contains_ci(src, "process") ||
			contains_ci(src, "how do you") || contains_ci(src, "how does") ||
			contains_ci(src, "walk me through");
		part_add(p, "opening_question", 0.75 * asks + 0.75 * about, 1.5, "the opening %s%s",
			 asks ? "asks the candidate a question" : "asks nothing",
			 asks ? (about ? " about its current approach" : ", not about its approach")
			      : "");
		strbuf_release(&q);
	} else {
		part_add(p, "opening_question", 0, 1.5, "no interviewer turn");
	}

	{
		struct keyset want = {0}, have = {0};
		size_t hits;
		double cov;

		scenario_keys(in, &want);
		if (!want.n) {
			part_add(p, "grounded_in_scenario", 0.75, 1.5,
				 "no scenario problem or goal to compare with (half marks)");
		} else if (!last || last == first) {
			part_add(p, "grounded_in_scenario", 0, 1.5, "no closing analysis");
		} else {
			keys_of(last->text, strlen(last->text), &have);
			cov = coverage(&want, &have, &hits);
			part_add(p, "grounded_in_scenario", 1.5 * clamp01(cov / 0.6), 1.5,
				 "the analysis uses %zu of %zu problem/goal words (full at 60%%)",
				 hits, want.n);
		}
		keyset_release(&want);
		keyset_release(&have);
	}
}

static void rubric_engagement(const struct score_input *in, struct part *p)
{
	struct strbuf all;
	struct keyset want = {0}, have = {0};
	size_t i, turns = 0, words = 0, nums, techs, steps, hits = 0;
	double answer_cov = 0, raw_cov = 0, cov;
	char names[96];

	strbuf_init(&all, 4096);
	for (i = 0; i < in->nturns; i++) {
		const struct score_turn *t = &in->turns[i];
		struct keyset qk = {0}, ak = {0};
		struct strbuf q;
		size_t j;

		if (!is_role(t, "candidate"))
			continue;
		turns++;
		words += count_words(t->text);
		strbuf_addstr(&all, t->text);
		strbuf_addch(&all, '\n');
		/* relevance to what the interviewer just asked */
		for (j = i; j-- > 0;)
			if (is_role(&in->turns[j], "interviewer"))
				break;
		if (j == (size_t)-1)
			continue;
		strbuf_init(&q, 256);
		questions_of(in->turns[j].text, &q);
		if (q.len)
			keys_of(q.buf, q.len, &qk);
		else
			keys_of(in->turns[j].text, strlen(in->turns[j].text), &qk);
		keys_of(t->text, strlen(t->text), &ak);
		cov = coverage(&qk, &ak, NULL);
		raw_cov += cov;
		answer_cov += clamp01(cov / 0.4);
		strbuf_release(&q);
		keyset_release(&qk);
		keyset_release(&ak);
	}
	if (!turns) {
		part_add(p, "substance", 0, 2.5, "no candidate answer");
		part_add(p, "numbers", 0, 1.5, "no candidate answer");
		part_add(p, "named_techniques", 0, 2.0, "no candidate answer");
		part_add(p, "concrete_steps", 0, 1.5, "no candidate answer");
		part_add(p, "scenario_relevance", 0, 1.5, "no candidate answer");
		part_add(p, "answers_the_question", 0, 1.0, "no candidate answer");
		strbuf_release(&all);
		return;
	}
	words /= turns;
	part_add(p, "substance", 2.5 * clamp01(((double)words - 20.0) / 230.0), 2.5,
		 "%zu words per answer on average (full at 250)", words);
	nums = count_numbers(all.buf);
	part_add(p, "numbers", 0.3 * (double)nums, 1.5,
		 "%zu distinct figures (0.3 each, full at 5)", nums);
	techs = count_techniques(all.buf, names, sizeof(names));
	part_add(p, "named_techniques", 0.25 * (double)techs, 2.0,
		 "%zu named techniques or tools%s%s%s (0.25 each, full at 8)", techs,
		 techs ? ": " : "", names, techs > 4 ? ", ..." : "");
	steps = count_steps(all.buf);
	part_add(p, "concrete_steps", 0.25 * (double)steps, 1.5,
		 "%zu listed or sequenced steps (0.25 each, full at 6)", steps);
	scenario_keys(in, &want);
	keys_of(all.buf, all.len, &have);
	if (want.n) {
		cov = coverage(&want, &have, &hits);
		part_add(p, "scenario_relevance", 1.5 * clamp01(cov / 0.6), 1.5,
			 "uses %zu of %zu problem/goal words (full at 60%%)", hits, want.n);
	} else {
		part_add(p, "scenario_relevance", 0.75, 1.5,
			 "no scenario problem or goal to compare with (half marks)");
	}
	part_add(
	    p, "answers_the_question", 1.0 * answer_cov / (double)turns, 1.0,
	    "answers reuse %.0f%% of the key words of the interviewer's questions (full at 40%%)",
	    100.0 * raw_cov / (double)turns);
	keyset_release(&want);
	keyset_release(&have);
	strbuf_release(&all);
}

/* The origin's rule, per candidate turn, averaged. */
static double origin_engagement(const struct score_input *in)
{
	double sum = 0;
	size_t i, n = 0;

	for (i = 0; i < in->nturns; i++) {
		if (!in->turns[i].role || strcmp(in->turns[i].role, "candidate"))
			continue;
		sum += in->turns[i].duration_s < 30.0 ? 8.0 : 7.0;
		n++;
	}
	return n ? round1(sum / (double)n) : 7.0;
}

/* ---------------------------------------------------------------- API */

int score_method_parse(const char *s, enum score_method *out)
{
	if (!s)
		return -1;
	if (!strcmp(s, "rubric"))
		*out = SCORE_RUBRIC;
	else if (!strcmp(s, "origin"))
		*out = SCORE_ORIGIN;
	else if (!strcmp(s, "judge"))
		*out = SCORE_JUDGE;
	else
		return -1;
	return 0;
}

const char *score_method_name(enum score_method m)
{
	switch (m) {
	case SCORE_ORIGIN:
		return "origin";
	case SCORE_JUDGE:
		return "judge";
	case SCORE_RUBRIC:
		break;
	}
	return "rubric";
}

void score_conversation(enum score_method m, const struct score_input *in, struct score_result *out)
{
	struct part iq = {0}, ce = {0};

	memset(out, 0, sizeof(*out));
	if (m == SCORE_ORIGIN) {
		size_t n = in->optims ? in->optims->n : 0;

		out->interview_quality = n >= 3 ? 10.0 : 7.0 + (double)n;
		out->candidate_engagement = origin_engagement(in);
		out->components = NULL;
		return;
	}
	rubric_interview(in, &iq);
	rubric_engagement(in, &ce);
	out->interview_quality = part_total(&iq);
	out->candidate_engagement = part_total(&ce);
	/* both parts stolen */
	out->components = json_pack("{s:o, s:o}", "interview_quality", part_json(&iq),
				    "candidate_engagement", part_json(&ce));
}

void score_result_release(struct score_result *r)
{
	json_decref(r->components);
	r->components = NULL;
}
