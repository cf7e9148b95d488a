/*
 * proposal.c - proposals in an interviewer's turn. See proposal.h.
 */
#include "server/proposal.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "db/util.h"
#include "server/tasks.h"

static const char *const markers[][2] = {
    {"prompt", "defined"}, {"test", "setting"}, {"stop", "progress"}};
static const char *const marker_names[] = {"#prompt_defined", "#test_setting", "#stop_progress"};

const char *proposal_marker(enum proposal_kind k)
{
	return marker_names[k];
}

/* A fenced code block of the message: [open, end) is the whole block, [body, body_end)
 * its content; closed is 0 when the message ends inside it. */
struct fence {
	size_t open, body, body_end, end;
	int closed;
};

struct scan {
	const char *s; /* the message with CRLF and lone CR made LF */
	size_t len;
	struct fence *f;
	size_t nf;
};

static size_t line_end(const struct scan *sc, size_t i)
{
	const char *nl = memchr(sc->s + i, '\n', sc->len - i);

	return nl ? (size_t)(nl - sc->s) : sc->len;
}

/* A fence line at i: returns its marker length (3+) and char, or 0. */
static size_t fence_at(const struct scan *sc, size_t i, size_t e, char *ch)
{
	size_t n = 0;

	while (i < e && (sc->s[i] == ' ' || sc->s[i] == '\t'))
		i++;
	if (i >= e || (sc->s[i] != '`' && sc->s[i] != '~'))
		return 0;
	*ch = sc->s[i];
	while (i + n < e && sc->s[i + n] == *ch)
		n++;
	if (n < 3)
		return 0;
	/* an info string of a backtick fence may not hold a backtick (CommonMark) */
	if (*ch == '`' && memchr(sc->s + i + n, '`', e - i - n))
		return 0;
	return n;
}

static int only_space(const char *s, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (!isspace((unsigned char)s[i]))
			return 0;
	return 1;
}

static void find_fences(struct scan *sc)
{
	size_t i = 0, alloc = 0;

	while (i < sc->len) {
		size_t e = line_end(sc, i), n, k;
		char ch;
		struct fence f;

		if (!(n = fence_at(sc, i, e, &ch))) {
			i = e + 1;
			continue;
		}
		f.open = i;
		f.body = e < sc->len ? e + 1 : e;
		f.closed = 0;
		for (k = f.body; k < sc->len;) {
			size_t ke = line_end(sc, k), j = k, m = 0;
			while (j < ke && (sc->s[j] == ' ' || sc->s[j] == '\t'))
				j++;
			while (j + m < ke && sc->s[j + m] == ch)
				m++;
			if (m >= n && only_space(sc->s + j + m, ke - j - m)) {
				f.body_end = k;
				f.end = ke;
				f.closed = 1;
				break;
			}
			k = ke + 1;
		}
		if (!f.closed)
			f.body_end = f.end = sc->len;
		if (sc->nf == alloc) {
			alloc = alloc ? alloc * 2 : 4;
			sc->f = xrealloc(sc->f, alloc * sizeof(*sc->f));
		}
		sc->f[sc->nf++] = f;
		i = f.end + 1;
	}
}

static int in_fence(const struct scan *sc, size_t i)
{
	size_t k;

	for (k = 0; k < sc->nf; k++)
		if (i >= sc->f[k].open && i < sc->f[k].end)
			return 1;
	return 0;
}

/* Inside `inline code` on its line: an odd number of backticks before i. */
static int in_inline_code(const struct scan *sc, size_t i)
{
	size_t k = i, ticks = 0;

	while (k > 0 && sc->s[k - 1] != '\n')
		k--;
	for (; k < i; k++)
		ticks += sc->s[k] == '`';
	return ticks % 2;
}

static int is_word(char c)
{
	return isalnum((unsigned char)c) || c == '_';
}

/* The marker at s[i] ('#'): its kind and length, or -1. */
static int marker_at(const struct scan *sc, size_t i, size_t *len)
{
	size_t k;

	if (sc->s[i] != '#' || (i > 0 && is_word(sc->s[i - 1])))
		return -1;
	for (k = 0; k < 3; k++) {
		size_t a = strlen(markers[k][0]), b = strlen(markers[k][1]), p = i + 1;
		if (p + a > sc->len || strncasecmp(sc->s + p, markers[k][0], a) != 0)
			continue;
		p += a;
		if (p < sc->len && (sc->s[p] == '_' || sc->s[p] == '-' || sc->s[p] == ' '))
			p++;
		if (p + b > sc->len || strncasecmp(sc->s + p, markers[k][1], b) != 0)
			continue;
		p += b;
		if (p < sc->len && is_word(sc->s[p]))
			continue;
		*len = p - i;
		return (int)k;
	}
	return -1;
}

/* The first fence that opens in [from, to), or NULL. */
static const struct fence *fence_after(const struct scan *sc, size_t from, size_t to)
{
	size_t k;

	for (k = 0; k < sc->nf; k++)
		if (sc->f[k].open >= from && sc->f[k].open < to)
			return &sc->f[k];
	return NULL;
}

/* A copy of s[a, b) without the white space around it. */
static char *trimmed_copy(const char *s, size_t a, size_t b)
{
	char *out;

	while (a < b && isspace((unsigned char)s[a]))
		a++;
	while (b > a && isspace((unsigned char)s[b - 1]))
		b--;
	out = xmalloc(b - a + 1);
	memcpy(out, s + a, b - a);
	out[b - a] = '\0';
	return out;
}

static void reject(struct proposal *p, const char *fmt, const char *detail)
{
	p->usable = 0;
	snprintf(p->reason, sizeof(p->reason), fmt, detail);
}

/* #prompt_defined: the first fenced block before the next marker. */
static void read_prompt(const struct scan *sc, size_t from, size_t to, struct proposal *p)
{
	const struct fence *f = fence_after(sc, from, to);
	size_t k, t = 0, tl = 0;
	int has_t = 0;

	if (!f)
		return reject(p,
			      "#prompt_defined is not followed by a fenced code block (``` or "
			      "~~~) holding the new system prompt%s",
			      "");
	if (!f->closed)
		return reject(p, "the fenced block after #prompt_defined is not closed%s", "");
	if (f->body_end - f->body > PROPOSAL_MAX_BYTES)
		return reject(p, "the proposed prompt is longer than 16 KiB%s", "");
	/* a line "template:" starts the template; everything after it belongs to it */
	for (k = f->body; k < f->body_end; k = line_end(sc, k) + 1) {
		size_t j = k;
		while (j < f->body_end && (sc->s[j] == ' ' || sc->s[j] == '\t'))
			j++;
		if (j + 9 <= f->body_end && strncasecmp(sc->s + j, "template:", 9) == 0) {
			has_t = 1;
			t = k;
			tl = j + 9;
			break;
		}
	}
	p->system = trimmed_copy(sc->s, f->body, has_t ? t : f->body_end);
	if (has_t)
		p->template = trimmed_copy(sc->s, tl, f->body_end);
	if (!*p->system) {
		free(p->system);
		p->system = NULL;
	}
	if (has_t && !strstr(p->template, "{input}"))
		return reject(
		    p, "the proposed template has no {input}, where a task's input goes%s", "");
	if (!p->system && !p->template)
		return reject(p, "the block after #prompt_defined is empty%s", "");
	p->usable = 1;
}

/* #test_setting: a JSON object right after the marker, or in the first fenced block. */
static void read_setting(const struct scan *sc, size_t from, size_t to, struct proposal *p)
{
	const struct fence *f;
	json_error_t err;
	json_t *errs, *o;
	size_t i = from;

	while (i < to && (isspace((unsigned char)sc->s[i]) || sc->s[i] == ':' || sc->s[i] == '*' ||
			  sc->s[i] == '`'))
		i++;
	if (i < to && sc->s[i] == '{') {
		o = json_loadb(sc->s + i, to - i, JSON_DISABLE_EOF_CHECK | JSON_REJECT_DUPLICATES,
			       &err);
	} else if ((f = fence_after(sc, from, to)) && f->closed) {
		o = json_loadb(sc->s + f->body, f->body_end - f->body, JSON_REJECT_DUPLICATES,
			       &err);
	} else {
		return reject(p, "#test_setting is not followed by a JSON object of options%s", "");
	}
	if (!o)
		return reject(p, "the options after #test_setting are not valid JSON: %s",
			      err.text);
	if (!json_is_object(o) || json_object_size(o) == 0) {
		json_decref(o);
		return reject(p, "#test_setting needs a non-empty JSON object of options%s", "");
	}
	errs = json_array();
	if (tasks_options_check(o, "options", errs) < 0) {
		json_t *e = json_array_get(errs, 0); /* borrowed */
		char why[300];
		snprintf(why, sizeof(why), "%s: %s", json_string_value(json_object_get(e, "field")),
			 json_string_value(json_object_get(e, "message")));
		json_decref(errs);
		json_decref(o);
		return reject(p, "%s", why);
	}
	json_decref(errs);
	p->options = o;
	p->usable = 1;
}

/* #stop_progress: the rest of its line is the reason. */
static void read_stop(const struct scan *sc, size_t from, struct proposal *p)
{
	size_t e = line_end(sc, from), a = from;

	while (a < e && (isspace((unsigned char)sc->s[a]) || sc->s[a] == ':' || sc->s[a] == '*' ||
			 sc->s[a] == '-' || sc->s[a] == '.'))
		a++;
	p->note = trimmed_copy(sc->s, a, e);
	p->usable = 1;
}

void proposal_parse(const char *msg, struct proposals *out)
{
	struct scan sc = {0};
	char *norm = xmalloc(strlen(msg) + 1);
	size_t i, j = 0, alloc = 0, *at = NULL, *after = NULL, n = 0, len;
	int *kinds = NULL, k;

	memset(out, 0, sizeof(*out));
	for (i = 0; msg[i]; i++) {
		if (msg[i] == '\r') {
			norm[j++] = '\n';
			if (msg[i + 1] == '\n')
				i++;
		} else {
			norm[j++] = msg[i];
		}
	}
	norm[j] = '\0';
	sc.s = norm;
	sc.len = j;
	find_fences(&sc);
	for (i = 0; i < sc.len; i++) {
		if (sc.s[i] != '#' || (k = marker_at(&sc, i, &len)) < 0)
			continue;
		if (in_fence(&sc, i) || in_inline_code(&sc, i))
			continue;
		if (n == alloc) {
			alloc = alloc ? alloc * 2 : 4;
			at = xrealloc(at, alloc * sizeof(*at));
			after = xrealloc(after, alloc * sizeof(*after));
			kinds = xrealloc(kinds, alloc * sizeof(*kinds));
		}
		at[n] = i;
		after[n] = i + len;
		kinds[n++] = k;
		i += len - 1;
	}
	out->v = n ? xcalloc(n, sizeof(*out->v)) : NULL;
	for (i = 0; i < n; i++) {
		struct proposal *p = &out->v[i];
		size_t to = i + 1 < n ? at[i + 1] : sc.len;
		p->kind = (enum proposal_kind)kinds[i];
		if (p->kind == PROPOSAL_PROMPT)
			read_prompt(&sc, after[i], to, p);
		else if (p->kind == PROPOSAL_SETTING)
			read_setting(&sc, after[i], to, p);
		else
			read_stop(&sc, after[i], p);
	}
	out->n = n;
	free(at);
	free(after);
	free(kinds);
	free(sc.f);
	free(norm);
}

void proposals_release(struct proposals *p)
{
	size_t i;

	for (i = 0; i < p->n; i++) {
		free(p->v[i].system);
		free(p->v[i].template);
		free(p->v[i].note);
		json_decref(p->v[i].options);
	}
	free(p->v);
	memset(p, 0, sizeof(*p));
}

json_t *proposal_json(const struct proposal *p)
{
	json_t *o = json_object();

	if (p->system)
		json_object_set_new(o, "system", json_string(p->system));
	if (p->template)
		json_object_set_new(o, "template", json_string(p->template));
	if (p->options)
		json_object_set(o, "options", p->options); /* a new reference of ours */
	return o;
}
