/*
 * extract.c - the optimizations an interviewer suggested. See extract.h.
 *
 * DESIGN: the rubric method reads the analysis as a Markdown document tree
 * (libcmark). Quote marks are taken off and bullets Markdown does not know
 * ("•", "✅", "👉") become "-" first, line for line, so every node's source
 * lines are also lines of struct doc. The top-level blocks are classified
 * once (struct blk): headings, paragraphs, lists, table paragraphs (plain
 * CommonMark has no tables: a paragraph whose second line is a |---| row is
 * one), rules; an ordered list whose items name parts ("1. Analysis: ...",
 * "3. Concrete suggestions:") is taken item by item. A block that names a
 * part of the analysis (a heading, a bold line, a "Name:" label, an all-caps
 * line, a numbered item) says which part. The concrete-suggestions part is
 * the block naming it, else the numbered 3, else any suggestions part; it
 * runs to the next heading of its level or the next named part (for a
 * non-heading label, to any heading, named part or rule), or it is the label
 * item's own nested blocks; text after the label ("none yet", or one inline
 * suggestion) and lines of the label's own paragraph ("a) ...", "**Title**:
 * ...") count too. Its items: one per sub-heading (or bold sub-heading line)
 * when those head the suggestions rather than group bold-lead lists; else
 * each list's top-level items (the line scan below, lines inside code blocks
 * never items), each table row, each paragraph that opens in bold or with a
 * label or says how to test something (split at lines that open items, or at
 * "First, ... Second, ..."), until prose follows them. Without such a part,
 * labelled paragraphs and items marked test_this anywhere are the
 * suggestions. Each item's lines are then turned into title / detail / test
 * / suggestion by small string passes over a strbuf; table rows by their
 * columns. The origin method is the old line grep and shares nothing with
 * this.
 */
#include "server/extract.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <cmark.h>

#include "db/util.h"

/* Nested "concrete suggestions" headings inside the section are unwrapped at most this deep. */
#define PROMOTE_DEPTH 2

struct line {
	const char *s; /* start of the line in the text */
	size_t len;    /* without the newline and a trailing \r */
	int indent;    /* leading columns; a tab counts 4 */
	int blank;
	int list;   /* starts with a list marker: "* ", "- ", "+ ", "1. ", "1) " */
	size_t off; /* offset of the content: after the indent and the list marker */
	int code; /* inside a code block (set from the document tree): never an item or a marker */
};

struct doc {
	struct line *v;
	size_t n;
};

struct range {
	size_t first, last; /* line indexes, inclusive */
	char *title;	    /* given title (owned; the first line is then not read), or NULL */
	int row;	    /* a table row: title and test are the cells at tcol and xcol */
	char *text;	    /* an item cut out of a paragraph (owned): read instead of the lines */
	int tcol, xcol;
};

struct ranges {
	struct range *v;
	size_t n, alloc;
};

/* ---------------------------------------------------------------- lines */

static size_t list_marker_len(const char *p, size_t n)
{
	size_t i = 0;

	if (n >= 2 && (p[0] == '*' || p[0] == '-' || p[0] == '+') && (p[1] == ' ' || p[1] == '\t'))
		return 2;
	while (i < n && i < 3 && isdigit((unsigned char)p[i]))
		i++;
	if (i > 0 && i + 1 < n && (p[i] == '.' || p[i] == ')') &&
	    (p[i + 1] == ' ' || p[i + 1] == '\t'))
		return i + 2;
	return 0;
}

static int is_rule(const char *p, size_t n)
{
	size_t i, count = 0;
	char c = 0;

	for (i = 0; i < n; i++) {
		if (p[i] == ' ' || p[i] == '\t')
			continue;
		if (p[i] != '-' && p[i] != '*' && p[i] != '_')
			return 0;
		if (c && p[i] != c)
			return 0;
		c = p[i];
		count++;
	}
	return count >= 3;
}

static void doc_init(struct doc *d, const char *text)
{
	const char *p = text;
	size_t alloc = 16;

	d->n = 0;
	d->v = xmalloc(alloc * sizeof(*d->v));
	for (;;) {
		const char *nl = strchr(p, '\n');
		size_t len = nl ? (size_t)(nl - p) : strlen(p);
		struct line *l;
		size_t i = 0, m;

		if (!nl && len == 0 && d->n > 0)
			break;
		if (d->n == alloc) {
			alloc *= 2;
			d->v = xrealloc(d->v, alloc * sizeof(*d->v));
		}
		l = &d->v[d->n++];
		if (len > 0 && p[len - 1] == '\r')
			len--;
		l->s = p;
		l->len = len;
		l->indent = 0;
		while (i < len && (p[i] == ' ' || p[i] == '\t')) {
			l->indent += p[i] == '\t' ? 4 : 1;
			i++;
		}
		l->blank = i == len;
		m = l->blank || is_rule(p + i, len - i) ? 0 : list_marker_len(p + i, len - i);
		l->list = m > 0;
		i += m;
		while (i < len && (p[i] == ' ' || p[i] == '\t'))
			i++;
		l->off = i;
		l->code = 0;
		if (!nl)
			break;
		p = nl + 1;
	}
}

static void doc_release(struct doc *d)
{
	free(d->v);
	d->v = NULL;
	d->n = 0;
}

/* The line's content without indent, list marker and trailing blanks. */
static const char *line_content(const struct line *l, size_t *n)
{
	size_t end = l->len;

	while (end > l->off && isspace((unsigned char)l->s[end - 1]))
		end--;
	*n = end - l->off;
	return l->s + l->off;
}

/* The line without its indent (list marker kept). */
static const char *line_trimmed(const struct line *l, size_t *n)
{
	size_t b = 0, end = l->len;

	while (b < end && (l->s[b] == ' ' || l->s[b] == '\t'))
		b++;
	while (end > b && isspace((unsigned char)l->s[end - 1]))
		end--;
	*n = end - b;
	return l->s + b;
}

static void ranges_push(struct ranges *r, size_t first, size_t last)
{
	if (r->n == r->alloc) {
		r->alloc = r->alloc ? r->alloc * 2 : 8;
		r->v = xrealloc(r->v, r->alloc * sizeof(*r->v));
	}
	memset(&r->v[r->n], 0, sizeof(r->v[r->n]));
	r->v[r->n].first = first;
	r->v[r->n].last = last;
	r->n++;
}

/* ---------------------------------------------------------------- text */

static int starts_with_ci(const char *s, size_t n, const char *prefix)
{
	size_t k = strlen(prefix);

	return n >= k && strncasecmp(s, prefix, k) == 0;
}

static const char *memmem_ci(const char *s, size_t n, const char *needle)
{
	size_t k = strlen(needle), i;

	for (i = 0; i + k <= n; i++)
		if (strncasecmp(s + i, needle, k) == 0)
			return s + i;
	return NULL;
}

/*
 * Markdown to plain text, appended to out: emphasis and code marks dropped,
 * links reduced to their text, whitespace runs collapsed, ends trimmed. Single
 * underscores stay because identifiers (job_extraction, test_this) use them.
 */
static void md_clean(const char *p, size_t n, struct strbuf *out)
{
	size_t i, skip_from = (size_t)-1, skip_to = 0, start = out->len;
	int pending = 0;

	for (i = 0; i < n; i++) {
		char c = p[i];

		if (i == skip_from) {
			i = skip_to;
			continue;
		}
		if (c == '*' || c == '`')
			continue;
		if (c == '_' && i + 1 < n && p[i + 1] == '_') {
			i++;
			continue;
		}
		/* "_two_" is emphasis; "test_this" and "num_ctx" are names */
		if (c == '_' && (i > 0 && isalnum((unsigned char)p[i - 1])) !=
				    (i + 1 < n && isalnum((unsigned char)p[i + 1])))
			continue;
		if (c == '[') {
			const char *close = memchr(p + i, ']', n - i);

			if (close && (size_t)(close - p) + 1 < n && close[1] == '(') {
				const char *paren = memchr(close, ')', n - (size_t)(close - p));

				if (paren) {
					skip_from = (size_t)(close - p);
					skip_to = (size_t)(paren - p);
					continue;
				}
			}
		}
		if (isspace((unsigned char)c)) {
			pending = out->len > start;
			continue;
		}
		if (pending)
			strbuf_addch(out, ' ');
		pending = 0;
		strbuf_addch(out, c);
	}
}

static char *clean_dup(const char *p, size_t n)
{
	struct strbuf sb;
	char *s;

	strbuf_init(&sb, n + 1);
	md_clean(p, n, &sb);
	s = strbuf_detach(&sb, NULL);
	strbuf_release(&sb); /* detach leaves a fresh allocation behind */
	return s;
}

static void rstrip_set(char *s, const char *set)
{
	size_t n = strlen(s);

	while (n > 0 && strchr(set, s[n - 1]))
		s[--n] = '\0';
}

static void lstrip_n(char *s, size_t k)
{
	memmove(s, s + k, strlen(s + k) + 1);
}

static void trim(char *s)
{
	size_t b = 0;

	while (s[b] && isspace((unsigned char)s[b]))
		b++;
	if (b)
		lstrip_n(s, b);
	rstrip_set(s, " \t\r\n\v\f");
}

/* Length of the quote at s (0 if none); single is set for single quotes. */
static size_t open_quote(const char *s, int *single)
{
	*single = 0;
	if (s[0] == '"')
		return 1;
	if (!strncmp(s, "\xe2\x80\x9c", 3) || !strncmp(s, "\xc2\xab", 2))
		return s[0] == '\xc2' ? 2 : 3;
	*single = 1;
	if (s[0] == '\'')
		return 1;
	if (!strncmp(s, "\xe2\x80\x98", 3))
		return 3;
	return 0;
}

static size_t close_quote(const char *s, size_t n, int single)
{
	if (single) {
		if (n >= 1 && s[n - 1] == '\'')
			return 1;
		if (n >= 3 && !memcmp(s + n - 3, "\xe2\x80\x99", 3))
			return 3;
		return 0;
	}
	if (n >= 1 && s[n - 1] == '"')
		return 1;
	if (n >= 3 && !memcmp(s + n - 3, "\xe2\x80\x9d", 3))
		return 3;
	if (n >= 2 && !memcmp(s + n - 2, "\xc2\xbb", 2))
		return 2;
	return 0;
}

/*
 * Removes quotes around the whole text. Models quote whole suggestions
 * (**"Fine-tune ..."**) and do not always close with the same kind of double
 * quote, so any double closes any double; a single quote only goes when both
 * ends have one, so 'must' keeps its quotes.
 */
static void strip_quote_pair(char *s)
{
	int single;
	size_t o = open_quote(s, &single), n, c;

	if (!o)
		return;
	n = strlen(s);
	c = close_quote(s, n, single);
	if (single && (!c || n < o + c))
		return;
	if (c && n >= o + c)
		s[n - c] = '\0';
	lstrip_n(s, o);
	trim(s);
}

/* "A. ", "1. ", "2) " in front of a title are enumeration, not the title. */
static void strip_enumerator(char *s)
{
	size_t i = 0;

	if (isalpha((unsigned char)s[0]) && !isalpha((unsigned char)s[1]))
		i = 1;
	else
		while (i < 2 && isdigit((unsigned char)s[i]))
			i++;
	if (i > 0 && (s[i] == '.' || s[i] == ')') && s[i + 1] == ' ') {
		lstrip_n(s, i + 2);
		trim(s);
	}
}

/* "(Test: hit rate)" leaves "hit rate)": a closing bracket that was never opened goes. */
static void strip_unopened(char *s)
{
	size_t n = strlen(s);

	while (n > 0 && (s[n - 1] == ')' || s[n - 1] == ']')) {
		char open = s[n - 1] == ')' ? '(' : '[';
		int depth = 0;
		size_t i;

		for (i = 0; i + 1 < n; i++)
			depth += (s[i] == open) - (s[i] == s[n - 1]);
		if (depth > 0)
			return;
		s[--n] = '\0';
		rstrip_set(s, " .");
		n = strlen(s);
	}
}

static int is_abbreviation(const char *s, size_t dot)
{
	static const char *const abbr[] = {"e.g",  "i.e", "etc", "vs", "eg", "ie", "approx",
					   "incl", "cf",  "fig", "no", "dr", "mr", "st"};
	size_t b = dot, k;

	while (b > 0 && (isalpha((unsigned char)s[b - 1]) || s[b - 1] == '.'))
		b--;
	if (dot - b == 1)
		return 1; /* an initial or an enumerator: "A." */
	for (k = 0; k < ARRAY_SIZE(abbr); k++)
		if (strlen(abbr[k]) == dot - b && !strncasecmp(s + b, abbr[k], dot - b))
			return 1;
	return 0;
}

/* End of the first sentence of s (just past its full stop, ? or !). */
static size_t first_sentence_end(const char *s)
{
	size_t i;
	int depth = 0;

	for (i = 0; s[i]; i++) {
		char c = s[i];

		if (c == '(' || c == '[')
			depth++;
		else if ((c == ')' || c == ']') && depth > 0)
			depth--;
		else if ((c == '.' || c == '?' || c == '!') && depth == 0 &&
			 (s[i + 1] == '\0' || isspace((unsigned char)s[i + 1]))) {
			if (c == '.' && is_abbreviation(s, i))
				continue;
			return i + 1;
		}
	}
	return i;
}

/*
 * "Suggestion A: ", "Option 2 – ", "Suggestion #1 — ", "3.1 " in front of a
 * title label the item; they are not its name.
 */
static void strip_label(char *s)
{
	static const char *const labels[] = {"suggestion", "option",   "recommendation",
					     "idea",	   "proposal", "change",
					     "step",	   "fix",      "action"};
	size_t k, i = 0, n;

	for (k = 0; k < ARRAY_SIZE(labels); k++)
		if (!strncasecmp(s, labels[k], strlen(labels[k])))
			break;
	if (k < ARRAY_SIZE(labels)) {
		i = strlen(labels[k]);
		if (s[i] != ' ')
			return;
		i++;
		if (s[i] == '#')
			i++;
		n = i;
		while (isdigit((unsigned char)s[i]))
			i++;
		if (i == n && isupper((unsigned char)s[i]) && !isalnum((unsigned char)s[i + 1]))
			i++;
		if (i == n)
			return;
	} else {
		/* "3.1 Group alerts": a sub-section number */
		while (isdigit((unsigned char)s[i]) ||
		       (s[i] == '.' && i > 0 && isdigit((unsigned char)s[i + 1])))
			i++;
		if (i == 0 || !memchr(s, '.', i) || s[i] != ' ')
			return;
		lstrip_n(s, i);
		trim(s);
		return;
	}
	while (s[i] == ' ')
		i++;
	if (s[i] == ':' || s[i] == '.' || s[i] == ')' || s[i] == '-')
		i++;
	else if (!strncmp(s + i, "\xe2\x80\x93", 3) || !strncmp(s + i, "\xe2\x80\x94", 3))
		i += 3;
	else if (s[i] != '\0')
		return;
	lstrip_n(s, i);
	trim(s);
}

/* "First, split the transcript": the ordinal orders the suggestions; it is not the name. */
static void strip_ordinal(char *s)
{
	static const char *const words[] = {"first, ", "second, ", "third, ",	"fourth, ",
					    "fifth, ", "next, ",   "finally, ", "lastly, "};
	size_t k;

	for (k = 0; k < ARRAY_SIZE(words); k++)
		if (!strncasecmp(s, words[k], strlen(words[k]))) {
			lstrip_n(s, strlen(words[k]));
			return;
		}
}

/* Cuts s at its first ": " or spaced dash: "Limit the plan - longer plans fail" names the plan. */
static void cut_at_separator(char *s)
{
	static const char *const seps[] = {": ", " - ", " \xe2\x80\x93 ", " \xe2\x80\x94 "};
	size_t k, best = strlen(s);

	for (k = 0; k < ARRAY_SIZE(seps); k++) {
		const char *f = strstr(s, seps[k]);

		if (f && (size_t)(f - s) < best && f > s)
			best = (size_t)(f - s);
	}
	s[best] = '\0';
}

/* Drops trailing full stops, colons, blanks and dashes: "Downsample to 300 dpi —" */
static void rstrip_dashes(char *s)
{
	size_t n = strlen(s);

	for (;;) {
		rstrip_set(s, ".: -");
		n = strlen(s);
		if (n >= 3 && !memcmp(s + n - 3, "\xe2\x80", 2) &&
		    (s[n - 1] == '\x93' || s[n - 1] == '\x94'))
			s[n - 3] = '\0';
		else
			return;
	}
}

/* '"Cache the output" – detail' cut at the dash leaves a closing quote whose opening went. */
static void strip_unopened_quote(char *s)
{
	size_t n = strlen(s), i, quotes = 0;

	for (i = 0; i < n; i++)
		quotes += s[i] == '"';
	if (n >= 1 && s[n - 1] == '"' && quotes == 1)
		s[n - 1] = '\0';
	else if (n >= 3 && !memcmp(s + n - 3, "\xe2\x80\x9d", 3) && !strstr(s, "\xe2\x80\x9c"))
		s[n - 3] = '\0';
	rstrip_set(s, " ");
}

/*
 * Cleans src and cuts it into a title (its first sentence, enumerator,
 * label, surrounding quotes and final colon or full stop removed; with cut,
 * also what follows its first colon or spaced dash) and the rest, which is
 * appended to rest when rest is not NULL.
 */
static char *title_split(const char *src, size_t n, struct strbuf *rest, int cut)
{
	char *s = clean_dup(src, n), *title;
	size_t e;

	rstrip_set(s, ": ");
	strip_quote_pair(s);
	strip_enumerator(s);
	strip_label(s);
	strip_ordinal(s);
	e = first_sentence_end(s);
	if (cut) {
		char *t = xstrndup(s, e);

		cut_at_separator(t);
		if (*t)
			e = strlen(t);
		free(t);
	}
	title = xstrndup(s, e);
	rstrip_set(title, ".: ");
	strip_quote_pair(title);
	rstrip_dashes(title);
	strip_unopened_quote(title);
	if (rest) {
		char *r = s + e;

		trim(r);
		if (*r) {
			if (rest->len)
				strbuf_addch(rest, ' ');
			strbuf_addstr(rest, r);
		}
	}
	free(s);
	return title;
}

/* "**Title** — detail": the dash or colon joined title and detail; it is not detail. */
static void strip_separator(char *s)
{
	static const char *const seps[] = {"\xe2\x80\x94", "\xe2\x80\x93", "-", ":"};
	size_t k, len;

	for (k = 0; k < ARRAY_SIZE(seps); k++) {
		len = strlen(seps[k]);
		if (!strncmp(s, seps[k], len) && (s[len] == ' ' || s[len] == '\0')) {
			lstrip_n(s, len);
			trim(s);
			return;
		}
	}
}

/*
 * Appends a cleaned piece of text to buf. Pieces come from separate bullets;
 * "; " keeps them apart unless the last one already ended a sentence.
 */
static void add_piece(struct strbuf *buf, const char *p, size_t n)
{
	size_t had = buf->len, before;
	char last = had ? buf->buf[had - 1] : 0;

	if (had)
		strbuf_addstr(buf, strchr(".!?:;)", last) ? " " : "; ");
	before = buf->len;
	md_clean(p, n, buf);
	if (buf->len == before) {
		buf->len = had;
		buf->buf[had] = '\0';
	}
}

/* ---------------------------------------------------------------- markers */

static int word_end(const char *p, size_t n, size_t i)
{
	return i >= n || !isalnum((unsigned char)p[i]);
}

/* Matches "test this" / "test_this" / "test-this" at i; returns its length. */
static size_t match_test_this(const char *p, size_t n, size_t i)
{
	if (i + 9 > n || strncasecmp(p + i, "test", 4) != 0)
		return 0;
	if (p[i + 4] != ' ' && p[i + 4] != '_' && p[i + 4] != '-')
		return 0;
	if (strncasecmp(p + i + 5, "this", 4) != 0 || !word_end(p, n, i + 9))
		return 0;
	return 9;
}

static int is_emph(char c)
{
	return c == '*' || c == '_';
}

/*
 * True when the marker starting at i opens a sentence or a clause: only
 * emphasis, brackets and blanks lie between it and the start of the content
 * or a . ! ? ; : ) or a dash. "A/B Testing:" is a name, not a test.
 */
static int marker_boundary(const char *p, size_t i)
{
	unsigned char c;

	while (i > 0 && is_emph(p[i - 1]))
		i--;
	if (i > 0 && (p[i - 1] == '(' || p[i - 1] == '['))
		return 1; /* "(Test_This: ...)": a test in brackets */
	while (i > 0 && (is_emph(p[i - 1]) || p[i - 1] == '(' || p[i - 1] == '[' ||
			 isspace((unsigned char)p[i - 1])))
		i--;
	if (i == 0)
		return 1;
	c = (unsigned char)p[i - 1];
	if (strchr(".!?;:)-|", c))
		return 1;
	if (c >= 0x80) {
		/* "📏 Test:", "→ Test:": a picture or a symbol before it opens a clause too */
		size_t b = i - 1;

		while (b > 0 && ((unsigned char)p[b] & 0xC0) == 0x80)
			b--;
		if ((unsigned char)p[b] >= 0xF0 ||
		    ((unsigned char)p[b] == 0xE2 && i - b >= 2 && (unsigned char)p[b + 1] >= 0x86 &&
		     (unsigned char)p[b + 1] <= 0x9F))
			return 1;
	}
	/* U+2013 and U+2014 (en and em dash) end in 0x93 / 0x94 after E2 80 */
	return i >= 3 && (unsigned char)p[i - 3] == 0xe2 && (unsigned char)p[i - 2] == 0x80 &&
	       (c == 0x93 || c == 0x94);
}

/* Whether a spaced dash stands right before i: "... int8 weights — measure ...". */
static int after_dash(const char *p, size_t i)
{
	if (i < 2 || p[i - 1] != ' ')
		return 0;
	if (p[i - 2] == '-')
		return i < 3 || p[i - 3] == ' ';
	return i >= 4 && !memcmp(p + i - 4, "\xe2\x80", 2) &&
	       (p[i - 2] == '\x93' || p[i - 2] == '\x94');
}

/*
 * Finds the first test marker in p: "#test_this" (any case, _ - or space)
 * anywhere; "Test:", "Testing:", "Tests:", "Test this:" where a clause starts.
 * mstart is where the marker begins (its emphasis included); tstart where the
 * text after it begins.
 */
static int find_test_marker_at(const char *p, size_t n, size_t from, size_t *mstart, size_t *tstart,
			       int *is_hash)
{
	size_t i;

	for (i = from; i < n; i++) {
		size_t end = 0, k;
		int hash = 0;

		if (p[i] == '#' && (k = match_test_this(p, n, i + 1)) > 0) {
			end = i + 1 + k;
			hash = 1;
		} else if ((p[i] == 't' || p[i] == 'T') &&
			   (i == 0 || !isalnum((unsigned char)p[i - 1]))) {
			if ((k = match_test_this(p, n, i)) > 0)
				end = i + k;
			else if (starts_with_ci(p + i, n - i, "testing") && word_end(p, n, i + 7))
				end = i + 7;
			else if (starts_with_ci(p + i, n - i, "tests") && word_end(p, n, i + 5))
				end = i + 5;
			else if (starts_with_ci(p + i, n - i, "test") && word_end(p, n, i + 4))
				end = i + 4;
		} else if ((p[i] == 'm' || p[i] == 'M') &&
			   (i == 0 || !isalnum((unsigned char)p[i - 1])) &&
			   starts_with_ci(p + i, n - i, "measure") && word_end(p, n, i + 7)) {
			end = i + 7;
		} else if ((p[i] == 'v' || p[i] == 'V') &&
			   (i == 0 || !isalnum((unsigned char)p[i - 1])) &&
			   starts_with_ci(p + i, n - i, "validation") && word_end(p, n, i + 10)) {
			end = i + 10;
		} else if ((p[i] == 'h' || p[i] == 'H') &&
			   (i == 0 || !isalnum((unsigned char)p[i - 1]))) {
			static const char *const how[] = {"how to test", "how to measure",
							  "how to verify"};

			for (k = 0; k < ARRAY_SIZE(how) && !end; k++)
				if (starts_with_ci(p + i, n - i, how[k]) &&
				    word_end(p, n, i + strlen(how[k])))
					end = i + strlen(how[k]);
		}
		if (!end)
			continue;
		k = end;
		while (k < n && is_emph(p[k]))
			k++;
		/* "Test :" as French writes it, with a (no-break) space before the colon */
		if (k + 1 < n && p[k] == ' ' && p[k + 1] == ':')
			k++;
		else if (k + 2 < n && !memcmp(p + k, "\xc2\xa0", 2) && p[k + 2] == ':')
			k += 2;
		else if (k + 3 < n && !memcmp(p + k, "\xe2\x80\xaf", 3) && p[k + 3] == ':')
			k += 3;
		if (k < n && p[k] == ':')
			k++;
		else if (!hash && !(after_dash(p, i) && (p[i] == 'm' || p[i] == 'M')))
			continue; /* "Test" needs its colon; "— measure the p95" does not */
		if (!hash && !marker_boundary(p, i))
			continue;
		while (k < n && (is_emph(p[k]) || isspace((unsigned char)p[k]) || p[k] == ':' ||
				 (p[k] == '-' && k + 1 < n && p[k + 1] == ' ') ||
				 (k + 2 < n && !memcmp(p + k, "\xe2\x80", 2) &&
				  (p[k + 2] == '\x93' || p[k + 2] == '\x94'))))
			k += (unsigned char)p[k] == 0xe2 ? 3 : 1;
		while (i > 0 && (is_emph(p[i - 1]) || p[i - 1] == '(' || p[i - 1] == '['))
			i--;
		*mstart = i;
		*tstart = k;
		*is_hash = hash;
		return 1;
	}
	return 0;
}

static int find_test_marker(const char *p, size_t n, size_t *mstart, size_t *tstart)
{
	int hash;

	return find_test_marker_at(p, n, 0, mstart, tstart, &hash);
}

/*
 * Like find_test_marker(), but when plain is set a "#test_this" tag is only
 * a tag: it is skipped and the search goes on for a "Test:" marker.
 * tag_start and tag_end (when a tag was skipped) say where the tag stands.
 */
static int find_item_test(const char *p, size_t n, int plain, size_t *mstart, size_t *tstart,
			  size_t *tag_start, size_t *tag_end)
{
	size_t from = 0;
	int hash;

	*tag_start = *tag_end = 0;
	while (find_test_marker_at(p, n, from, mstart, tstart, &hash)) {
		if (!hash || !plain)
			return 1;
		if (*tag_end == 0) {
			*tag_start = *mstart;
			*tag_end = *tstart;
		}
		from = *tstart > from ? *tstart : from + 1;
	}
	return 0;
}

/* Whether any line of an item carries a "Test:" marker of its own (not the tag). */
static int item_has_plain_test(const char *p, size_t n)
{
	size_t from = 0, ms, ts;
	int hash;

	while (find_test_marker_at(p, n, from, &ms, &ts, &hash)) {
		if (!hash)
			return 1;
		from = ts > from ? ts : from + 1;
	}
	return 0;
}

/* Any spelling of test_this in p, as a word. */
static int has_test_this(const char *p, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if ((i == 0 || !isalnum((unsigned char)p[i - 1])) && match_test_this(p, n, i))
			return 1;
	return 0;
}

/*
 * True when p names the format ("using #test_this format", "a 'Test_This'
 * section") rather than marking a suggestion with it.
 */
static int mentions_format(const char *p, size_t n)
{
	static const char *const words[] = {"format", "section", "style", "template", "structure"};
	size_t i, k, j;

	for (i = 0; i < n; i++) {
		if (!(i == 0 || !isalnum((unsigned char)p[i - 1])) ||
		    !(k = match_test_this(p, n, i)))
			continue;
		j = i + k;
		while (j < n && !isalnum((unsigned char)p[j]))
			j++;
		for (k = 0; k < ARRAY_SIZE(words); k++)
			if (starts_with_ci(p + j, n - j, words[k]))
				return 1;
	}
	return 0;
}

/* ---------------------------------------------------------------- headings */

/* p starts with ** or __ and the bold run closes before only ":", "." and blanks. */
static int bold_only(const char *p, size_t n)
{
	const char *close;
	size_t i;

	if (n < 4 || !((p[0] == '*' && p[1] == '*') || (p[0] == '_' && p[1] == '_')))
		return 0;
	close = NULL;
	for (i = n; i >= 4; i--)
		if (p[i - 1] == p[0] && p[i - 2] == p[0]) {
			close = p + i - 2;
			break;
		}
	if (!close || close == p)
		return 0;
	for (i = (size_t)(close - p) + 2; i < n; i++)
		if (!strchr(": .\t", p[i]))
			return 0;
	return 1;
}

/* Words that open one of the four analysis sections or what follows them. */
static int names_section(const char *s, size_t n)
{
	static const char *const names[] = {"analysis",
					    "specific optimization",
					    "optimization opportunit",
					    "opportunit",
					    "concrete suggestion",
					    "suggestion",
					    "reasoning",
					    "why these",
					    "rationale",
					    "next step",
					    "actionable next",
					    "conclusion",
					    "summary",
					    "recommendation"};
	size_t k;

	for (k = 0; k < ARRAY_SIZE(names); k++)
		if (starts_with_ci(s, n, names[k]))
			return 1;
	return 0;
}

struct heading {
	int is;	    /* the line is a heading */
	int num;    /* its section number 1..9, or 0 */
	int md;	    /* its # level for Markdown headings, else 0 */
	char *text; /* cleaned, without # and the number */
};

/*
 * Classifies a line: "### 3. Title", "**3. Title**", "**Title:**" and
 * "3. **Concrete Suggestions**" are headings; "3. **Explore KeyBERT:** ..."
 * and every bullet line are not.
 */
static void heading_classify(const struct line *l, struct heading *h)
{
	size_t n, i = 0;
	const char *t = line_trimmed(l, &n);
	char *s;

	memset(h, 0, sizeof(*h));
	if (l->blank || l->code || l->indent > 3 || n == 0)
		return;
	if (t[0] == '#') {
		while (i < n && t[i] == '#')
			i++;
		if (i < n && t[i] != ' ')
			return;
		h->md = (int)i;
		h->is = 1;
	} else if (bold_only(t, n)) {
		h->is = 1;
	} else if (isdigit((unsigned char)t[0]) && l->list) {
		const char *c = l->s + l->off;
		size_t cn = l->len - l->off;
		char *plain;

		while (cn > 0 && isspace((unsigned char)c[cn - 1]))
			cn--;
		plain = clean_dup(c, cn);
		if (names_section(plain, strlen(plain)) &&
		    (bold_only(c, cn) || (strlen(plain) <= 80 && !strstr(plain, ". ")))) {
			h->is = 1;
			h->num = atoi(t);
			h->text = plain;
			rstrip_set(h->text, ": ");
			return;
		}
		free(plain);
		return;
	} else {
		return;
	}
	s = clean_dup(t + i, n - i);
	if (isdigit((unsigned char)s[0]) && s[0] != '0' && (s[1] == '.' || s[1] == ')') &&
	    (s[2] == ' ' || s[2] == '\0')) {
		h->num = s[0] - '0';
		lstrip_n(s, s[2] ? 3 : 2);
	}
	rstrip_set(s, ": ");
	h->text = s;
}

static int is_heading_line(const struct line *l)
{
	struct heading h;

	heading_classify(l, &h);
	free(h.text);
	return h.is;
}

/* ---------------------------------------------------------------- items */

/*
 * Appends the top-level list items among lines [from, to) to out. A list
 * line less than two columns deeper than the first item starts a new item;
 * deeper lines, indented paragraphs and lines run on without a blank belong
 * to the current one. A plain paragraph after the list ends the scan (the
 * model has moved on to closing remarks); sub-headings like "**Tier 2**" do
 * not.
 */
static void split_items(const struct doc *d, size_t from, size_t to, struct ranges *out)
{
	int base = -1, have = 0, blank_since = 0;
	size_t i, first = 0, last = 0, nitems = 0;

	for (i = from; i < to; i++) {
		const struct line *l = &d->v[i];
		int heading;

		if (l->blank) {
			blank_since = 1;
			continue;
		}
		if (l->code) {
			if (have)
				last = i;
			continue;
		}
		if (l->list) {
			if (base < 0 || l->indent < base + 2) {
				if (base < 0 || l->indent < base)
					base = l->indent;
				if (have)
					ranges_push(out, first, last);
				have = 1;
				first = last = i;
				nitems++;
			} else {
				last = i;
			}
			blank_since = 0;
			continue;
		}
		heading = is_heading_line(l);
		if (have && !heading && (l->indent >= base + 2 || !blank_since)) {
			last = i;
			blank_since = 0;
			continue;
		}
		if (have) {
			ranges_push(out, first, last);
			have = 0;
		}
		if (!heading && nitems > 0)
			return;
		blank_since = 0;
	}
	if (have)
		ranges_push(out, first, last);
}

/* The last line of the item that starts at line i (its deeper lines). */
static size_t item_extent(const struct doc *d, size_t i)
{
	size_t j, last = i;
	int ind = d->v[i].indent;

	for (j = i + 1; j < d->n; j++) {
		const struct line *l = &d->v[j];

		if (l->blank)
			continue;
		if (l->indent > ind && !(l->list && l->indent < ind + 2)) {
			last = j;
			continue;
		}
		if (!l->list && j == last + 1 && d->v[i].list && !is_heading_line(l)) {
			last = j;
			continue;
		}
		break;
	}
	return last;
}

/* The title the line would give as the first line of an item (for heading checks). */
static char *line_title(const struct line *l)
{
	size_t n;
	const char *c = line_content(l, &n);

	return title_split(c, n, NULL, 0);
}

/*
 * An item inside the section that restates an analysis section ("Analysis of
 * the Candidate's Approach:", "Concrete Suggestions Using #test_this
 * Format:") is a heading. Returns 0 for a real item, 1 for a heading to drop,
 * 2 for a heading whose nested items are the suggestions.
 */
static int item_heading_kind(const struct doc *d, const struct range *r)
{
	static const char *const restated[] = {
	    "analysis of the candidate", "analysis of your", "specific optimization opportunit",
	    "optimization opportunities identified", "reasoning for"};
	const struct line *l = &d->v[r->first];
	char *title = line_title(l);
	size_t n, k, tn = strlen(title);
	const char *c = line_content(l, &n);
	int kind = 0;

	if (starts_with_ci(title, tn, "concrete suggestion") ||
	    (mentions_format(c, n) && (bold_only(c, n) || (n > 0 && c[n - 1] == ':'))))
		kind = 2;
	for (k = 0; !kind && k < ARRAY_SIZE(restated); k++)
		if (starts_with_ci(title, tn, restated[k]))
			kind = 1;
	free(title);
	return kind;
}

static void collect_section(const struct doc *d, size_t from, size_t to, int depth,
			    struct ranges *out, char *used)
{
	struct ranges top = {0};
	size_t k, j;

	split_items(d, from, to, &top);
	for (k = 0; k < top.n; k++) {
		struct range *r = &top.v[k];
		int kind = item_heading_kind(d, r);

		for (j = r->first; j <= r->last; j++)
			used[j] = 1;
		if (kind == 0)
			ranges_push(out, r->first, r->last);
		else if (kind == 2 && depth < PROMOTE_DEPTH && r->last > r->first)
			collect_section(d, r->first + 1, r->last + 1, depth + 1, out, used);
	}
	free(top.v);
}

/* Marked items outside the section: list lines and lines opening with the marker. */
static void collect_marked(const struct doc *d, struct ranges *out, char *used)
{
	size_t i, j;

	for (i = 0; i < d->n; i++) {
		const struct line *l = &d->v[i];
		size_t n, ms, ts, last;
		const char *c;
		int take = 0;

		if (used[i] || l->blank || l->code || is_heading_line(l))
			continue;
		c = line_content(l, &n);
		if (!has_test_this(c, n) || mentions_format(c, n))
			continue;
		if (l->list) {
			take = 1;
		} else if (find_test_marker(c, n, &ms, &ts) && ms == 0 && ts < n) {
			/* a paragraph "#test_this: ..." or "Test this: ..." with content */
			size_t b = 0;

			while (b < n && is_emph(c[b]))
				b++;
			take = c[b] == '#' || match_test_this(c, n, b);
		}
		if (!take)
			continue;
		last = item_extent(d, i);
		for (j = i; j <= last; j++)
			used[j] = 1;
		ranges_push(out, i, last);
	}
}

static int range_cmp(const void *a, const void *b)
{
	const struct range *x = a, *y = b;

	return x->first < y->first ? -1 : x->first > y->first;
}

static struct optim *optim_list_add(struct optim_list *l)
{
	struct optim *o;

	if (l->n == l->alloc) {
		l->alloc = l->alloc ? l->alloc * 2 : 8;
		l->v = xrealloc(l->v, l->alloc * sizeof(*l->v));
	}
	o = &l->v[l->n++];
	memset(o, 0, sizeof(*o));
	return o;
}

/*
 * Turns lines [first, last] into one optimization. The first line gives the
 * title (its bold lead, else its first sentence); every test marker gives a
 * test (the text after it, or the deeper lines when nothing follows it on its
 * line); all else is detail. An item that is only a test ("* **Test:** ...")
 * takes its title from the test.
 */
/* A line that is one italic sentence ("*Compare FID on 100 prompts.*"), the way models write a
 * test. */
static int italic_line(const char *c, size_t n)
{
	return n > 2 && (c[0] == '*' || c[0] == '_') && c[1] != c[0] && c[n - 1] == c[0] &&
	       c[n - 2] != c[0] && !memchr(c + 1, c[0], n - 2);
}

static void build_item(const struct doc *d, size_t first, size_t last, const char *given, int turn,
		       struct optim_list *out)
{
	struct strbuf detail, test, sugg;
	char *title = given ? xstrdup(given) : NULL;
	char *as_test = xcalloc(last - first + 1, 1);
	size_t j;

	struct strbuf untagged;
	int plain = 0, marked = 0;

	strbuf_init(&detail, 128);
	strbuf_init(&test, 128);
	strbuf_init(&sugg, 256);
	strbuf_init(&untagged, 0);
	/* with a "Test:" line of its own, an item's "#test_this:" is only a tag */
	for (j = first; j <= last; j++) {
		size_t n, ms, ts;
		const char *c;

		if (d->v[j].blank || d->v[j].code)
			continue;
		c = line_content(&d->v[j], &n);
		plain = plain || item_has_plain_test(c, n);
		marked = marked || find_test_marker(c, n, &ms, &ts);
	}
	/* without any marker, an italic sentence after the first line is the test */
	for (j = first + 1; j <= last && !marked; j++) {
		size_t n;
		const char *c;

		if (d->v[j].blank || d->v[j].code)
			continue;
		c = line_content(&d->v[j], &n);
		if (italic_line(c, n)) {
			add_piece(&test, c, n);
			as_test[j - first] = 1;
		}
	}
	for (j = first; j <= last; j++) {
		const struct line *l = &d->v[j];
		size_t n, ms, ts, pre, tag_s, tag_e;
		const char *c;
		int found;

		if (l->blank || l->code || (given && j == first))
			continue;
		c = line_content(l, &n);
		if (j == first && n > 4 && c[0] == '[' && strchr(" xX", c[1]) && c[2] == ']' &&
		    c[3] == ' ') {
			/* a task-list box; a ticked and struck-out one is done, not suggested */
			if (c[1] != ' ' && n > 6 && c[4] == '~' && c[5] == '~')
				goto done;
			c += 4;
			n -= 4;
		}
		if (sugg.len)
			strbuf_addch(&sugg, ' ');
		strbuf_add(&sugg, c, n);
		if (as_test[j - first])
			continue;
		found = find_item_test(c, n, plain, &ms, &ts, &tag_s, &tag_e);
		if (tag_e > tag_s) {
			/* drop the tag from the text; what follows it is detail */
			strbuf_reset(&untagged);
			strbuf_add(&untagged, c, tag_s);
			strbuf_addch(&untagged, ' ');
			strbuf_add(&untagged, c + tag_e, n - tag_e);
			c = untagged.buf;
			n = untagged.len;
			found = find_item_test(c, n, plain, &ms, &ts, &tag_s, &tag_e);
		}
		pre = n;
		if (found) {
			pre = ms;
			if (ts < n) {
				add_piece(&test, c + ts, n - ts);
			} else {
				size_t k;

				for (k = j + 1; k <= last; k++) {
					const struct line *m = &d->v[k];
					size_t mn, mms, mts;
					const char *mc;

					if (m->blank || m->code)
						continue;
					if (m->indent <= l->indent)
						break;
					mc = line_content(m, &mn);
					if (find_test_marker(mc, mn, &mms, &mts) && mms == 0)
						add_piece(&test, mc + mts, mn - mts);
					else
						add_piece(&test, mc, mn);
					as_test[k - first] = 1;
				}
			}
		}
		if (j == first && !given) {
			size_t b = 0;

			/* a bold lead is the title; the rest of the line is detail */
			if (pre >= 4 &&
			    ((c[0] == '*' && c[1] == '*') || (c[0] == '_' && c[1] == '_'))) {
				for (b = 2; b + 1 < pre; b++)
					if (c[b] == c[0] && c[b + 1] == c[0])
						break;
				if (b + 1 >= pre)
					b = 0;
			}
			if (b > 2) {
				title = title_split(c + 2, b - 2, &detail, 0);
				b += 2;
				while (b < pre && (c[b] == ':' || isspace((unsigned char)c[b])))
					b++;
				add_piece(&detail, c + b, pre - b);
			} else {
				title = title_split(c, pre, &detail, 1);
			}
		} else {
			add_piece(&detail, c, pre);
		}
	}
	if (title && !*title && test.len) {
		free(title);
		title = title_split(test.buf, test.len, NULL, 0);
	}
	if (title && *title) {
		struct optim *o = optim_list_add(out);

		o->title = title;
		o->detail = strbuf_detach(&detail, NULL);
		strip_separator(o->detail);
		o->test = test.len ? strbuf_detach(&test, NULL) : NULL;
		if (o->test)
			strip_unopened(o->test);
		o->suggestion = strbuf_detach(&sugg, NULL);
		o->turn = turn;
		title = NULL;
	}
done:
	free(title);
	free(as_test);
	strbuf_release(&detail);
	strbuf_release(&test);
	strbuf_release(&sugg);
	strbuf_release(&untagged);
}

/* ---------------------------------------------------------------- tree */

/*
 * Quotes and "•" bullets are not structure a suggestion depends on: the text
 * is unquoted and "•" becomes "-" before parsing, line for line, so the
 * document tree and the lines stay aligned.
 */
/* Length of a bullet that Markdown does not know ("• ", "✅ ", "👉 ") at q, or 0. */
static size_t bullet_len(const char *q)
{
	static const char *const bullets[] = {
	    "\xe2\x80\xa2",		/* • */
	    "\xe2\x97\xa6",		/* ◦ */
	    "\xe2\x96\xaa",		/* ▪ */
	    "\xe2\x97\x8f",		/* ● */
	    "\xe2\x97\x86",		/* ◆ */
	    "\xe2\x96\xa0",		/* ■ */
	    "\xe2\x96\xb6",		/* ▶ */
	    "\xe2\x96\xba",		/* ► */
	    "\xe2\x9e\xa4",		/* ➤ */
	    "\xe2\x9e\x9c",		/* ➜ */
	    "\xe2\x9c\x85",		/* ✅ */
	    "\xe2\x9c\x94\xef\xb8\x8f", /* ✔️ */
	    "\xe2\x9c\x94",		/* ✔ */
	    "\xe2\x98\x91\xef\xb8\x8f", /* ☑️ */
	    "\xe2\x98\x91",		/* ☑ */
	    "\xf0\x9f\x91\x89",		/* 👉 */
	    "\xf0\x9f\x94\xb9",		/* 🔹 */
	    "\xf0\x9f\x94\xb8",		/* 🔸 */
	};
	size_t k, n;

	for (k = 0; k < ARRAY_SIZE(bullets); k++) {
		n = strlen(bullets[k]);
		if (!strncmp(q, bullets[k], n) && (q[n] == ' ' || q[n] == '\t'))
			return n;
	}
	return 0;
}

static char *normalise(const char *text)
{
	struct strbuf sb;
	const char *p = text;

	strbuf_init(&sb, strlen(text) + 1);
	while (*p) {
		const char *q = p;
		size_t sp = 0, k;

		for (;;) {
			while (q[sp] == ' ' && sp < 3)
				sp++;
			if (q[sp] != '>')
				break;
			q += sp + 1;
			if (*q == ' ')
				q++;
			sp = 0;
		}
		p = q;
		while (*q == ' ' || *q == '\t')
			q++;
		if ((k = bullet_len(q)) > 0) {
			strbuf_add(&sb, p, (size_t)(q - p));
			strbuf_addch(&sb, '-');
			p = q + k;
		}
		q = strchr(p, '\n');
		q = q ? q + 1 : p + strlen(p);
		strbuf_add(&sb, p, (size_t)(q - p));
		p = q;
	}
	return strbuf_detach(&sb, NULL);
}

enum blk_kind { BLK_OTHER, BLK_HEADING, BLK_PARA, BLK_LIST, BLK_ITEM, BLK_TABLE, BLK_RULE };

/* One block of the document (or of a list item): what it is and which part of the analysis it
 * opens. */
struct blk {
	cmark_node *node; /* borrowed from the parsed document */
	enum blk_kind kind;
	size_t first, last; /* its lines */
	int level;	    /* heading level, 0 for other blocks */
	int part;   /* 0 none, -1 another part, 1 names #test_this, 2 suggestions, 4 concrete
		       suggestions */
	int num;    /* the part's number, or 0 */
	int pseudo; /* a paragraph that is one bold line naming no part: a sub-heading */
	int lead;   /* a paragraph that opens in bold or with a "Suggestion A:" label */
	char *rest; /* text after a part's label on the same line ("none yet"), or NULL */
};

struct blks {
	struct blk *v;
	size_t n, alloc;
};

static void blks_release(struct blks *b)
{
	size_t i;

	for (i = 0; i < b->n; i++)
		free(b->v[i].rest);
	free(b->v);
}

static int is_word_at(const char *s, const char *w)
{
	size_t k = strlen(w);

	return !strncasecmp(s, w, k);
}

/*
 * Whether the line (Markdown, list marker already off) names a part of the
 * analysis: "### 3. Concrete Suggestions", "**Reasoning:**", "Analysis: the
 * candidate ...", "CONCRETE SUGGESTIONS". heading says the line is a heading
 * (its words alone decide). Returns the part (see struct blk), sets num and,
 * when text follows the label on the line, rest (cleaned, owned).
 */
static int part_name(const char *raw, size_t n, int heading, int *num, char **rest)
{
	static const struct {
		const char *w;
		int part;
	} names[] = {{"concrete suggestion", 4},
		     {"concrete recommendation", 4},
		     {"actionable suggestion", 2},
		     {"suggestion", 2},
		     {"recommendation", 2},
		     {"recommended change", 2},
		     {"analysis", -1},
		     {"assessment", -1},
		     {"specific optimization", -1},
		     {"optimization opportunit", -1},
		     {"opportunit", -1},
		     {"reasoning", -1},
		     {"why", -1},
		     {"rationale", -1},
		     /* "Next steps" hold suggestions when nothing else does */
		     {"actionable next step", 1},
		     {"next step", 1},
		     {"action item", 1},
		     {"conclusion", -1},
		     {"summary", -1},
		     {"closing", -1},
		     {"final thought", -1},
		     {"what you do", -1},
		     {"where the time goes", -1}};
	char *c, *s;
	size_t k, i, words = 1;
	int part = 0, bold = bold_only(raw, n);

	*num = 0;
	*rest = NULL;
	c = clean_dup(raw, n);
	s = c;
	/* "### ✅ Concrete Suggestions": marks and pictures before the name */
	while (*s && !isalnum((unsigned char)*s))
		s++;
	if (isdigit((unsigned char)s[0]) && (s[1] == '.' || s[1] == ')') && s[2] == ' ') {
		*num = s[0] - '0';
		s += 3;
	}
	for (k = 0; k < ARRAY_SIZE(names) && !part; k++)
		if (is_word_at(s, names[k].w))
			part = names[k].part;
	if (part == 2) {
		/* "Suggestion A:", "Suggestion #1" label an item; they do not open a part */
		char *t = xstrdup(s);

		strip_label(t);
		if (strcmp(t, s))
			part = 0;
		free(t);
	}
	/* the part's name runs to a colon, a full stop or a dash, or to the end of the line */
	for (i = 0; s[i]; i++) {
		if ((s[i] == ':' || s[i] == '.') && (s[i + 1] == ' ' || s[i + 1] == '\0'))
			break;
		if (!strncmp(s + i, " \xe2\x80\x94 ", 5) || !strncmp(s + i, " \xe2\x80\x93 ", 5) ||
		    !strncmp(s + i, " - ", 3))
			break;
		words += s[i] == ' ';
	}
	if (part == 0 && has_test_this(s, i) && (heading || bold) && i < 80)
		part = 1;
	if (part && !heading) {
		if (s[i] == '\0' && !bold && words > 6)
			part = 0; /* a sentence that happens to open with the word */
		else if (words > 8)
			part = 0;
	}
	if (part && !heading && !bold) {
		/* what follows the bold label, or the colon or full stop, is the part's own text */
		char *r = NULL;

		if (n > 4 && raw[0] == '*' && raw[1] == '*') {
			const char *close = NULL;
			size_t j;

			for (j = 2; j + 1 < n && !close; j++)
				if (raw[j] == '*' && raw[j + 1] == '*')
					close = raw + j + 2;
			if (close) {
				free(c);
				c = clean_dup(close, n - (size_t)(close - raw));
				r = c;
			}
		} else if (s[i] == ':' || s[i] == '.') {
			r = s + i + 1;
		}
		/* "**Concrete suggestions:** none yet", "... — use a cache": the label's marks go
		 */
		while (r && (*r == ' ' || *r == ':' || *r == '.' || *r == '-' ||
			     !strncmp(r, "\xe2\x80\x94", 3) || !strncmp(r, "\xe2\x80\x93", 3)))
			r += (unsigned char)*r == 0xe2 ? 3 : 1;
		if (r && *r)
			*rest = xstrdup(r);
	}
	free(c);
	return part;
}

/* A paragraph whose first two lines are a table's header and delimiter row. */
static int is_table(const struct doc *d, size_t first, size_t last)
{
	size_t n, i;
	const char *t;

	if (last <= first)
		return 0;
	t = line_trimmed(&d->v[first], &n);
	if (n == 0 || !memchr(t, '|', n))
		return 0;
	t = line_trimmed(&d->v[first + 1], &n);
	if (n == 0 || !memchr(t, '-', n))
		return 0;
	for (i = 0; i < n; i++)
		if (!strchr("|-: \t", t[i]))
			return 0;
	return 1;
}

static size_t node_line(const struct doc *d, cmark_node *node, int end)
{
	int l = end ? cmark_node_get_end_line(node) : cmark_node_get_start_line(node);
	size_t i = l > 0 ? (size_t)l - 1 : 0;

	return i < d->n ? i : d->n - 1;
}

static struct blk *blks_add(struct blks *b, const struct doc *d, cmark_node *node,
			    enum blk_kind kind)
{
	struct blk *k;

	if (b->n == b->alloc) {
		b->alloc = b->alloc ? b->alloc * 2 : 16;
		b->v = xrealloc(b->v, b->alloc * sizeof(*b->v));
	}
	k = &b->v[b->n++];
	memset(k, 0, sizeof(*k));
	k->node = node;
	k->kind = kind;
	k->first = node_line(d, node, 0);
	k->last = node_line(d, node, 1);
	if (k->last < k->first)
		k->last = k->first;
	return k;
}

/* The first line of a block as Markdown: its content, list marker off. */
static const char *blk_line(const struct doc *d, const struct blk *k, size_t *n)
{
	const struct line *l = &d->v[k->first];

	if (k->kind == BLK_HEADING) {
		const char *t = line_trimmed(l, n);
		size_t i = 0;

		while (i < *n && t[i] == '#')
			i++;
		*n -= i;
		return t + i;
	}
	return line_content(l, n);
}

/* The blocks among the children of parent, from child from on. */
static void blocks_of(const struct doc *d, cmark_node *from, struct blks *out)
{
	cmark_node *node, *item;

	for (node = from; node; node = cmark_node_next(node)) {
		cmark_node_type t = cmark_node_get_type(node);
		struct blk *k;
		size_t n;
		const char *c;

		if (t == CMARK_NODE_HEADING) {
			k = blks_add(out, d, node, BLK_HEADING);
			k->level = cmark_node_get_heading_level(node);
			c = blk_line(d, k, &n);
			k->part = part_name(c, n, 1, &k->num, &k->rest);
		} else if (t == CMARK_NODE_PARAGRAPH) {
			cmark_node *fc = cmark_node_first_child(node);
			char *title, *label;

			k = blks_add(out, d, node, BLK_PARA);
			if (is_table(d, k->first, k->last)) {
				k->kind = BLK_TABLE;
				continue;
			}
			c = blk_line(d, k, &n);
			k->part = part_name(c, n, 0, &k->num, &k->rest);
			title = clean_dup(c, n);
			label = xstrdup(title);
			strip_label(label);
			k->lead = (fc && cmark_node_get_type(fc) == CMARK_NODE_STRONG) ||
				  strcmp(title, label) != 0;
			free(title);
			free(label);
			k->pseudo = !k->part && bold_only(c, n) && k->first == k->last;
		} else if (t == CMARK_NODE_LIST) {
			int parts = 0;

			/* "1. Analysis: ... 3. Concrete suggestions: ..." is a list of parts */
			for (item = cmark_node_first_child(node);
			     item && cmark_node_get_list_type(node) == CMARK_ORDERED_LIST;
			     item = cmark_node_next(item)) {
				int num;
				char *rest;

				c = line_content(&d->v[node_line(d, item, 0)], &n);
				parts += part_name(c, n, 0, &num, &rest) != 0;
				free(rest);
			}
			if (!parts) {
				blks_add(out, d, node, BLK_LIST);
				continue;
			}
			for (item = cmark_node_first_child(node); item;
			     item = cmark_node_next(item)) {
				k = blks_add(out, d, item, BLK_ITEM);
				c = line_content(&d->v[k->first], &n);
				k->part = part_name(c, n, 0, &k->num, &k->rest);
				if (!k->num)
					k->num = cmark_node_get_list_start(node);
			}
		} else if (t == CMARK_NODE_THEMATIC_BREAK) {
			blks_add(out, d, node, BLK_RULE);
		} else if (t != CMARK_NODE_CODE_BLOCK && t != CMARK_NODE_HTML_BLOCK) {
			blks_add(out, d, node, BLK_OTHER);
		}
	}
}

static void mark_code(struct doc *d, cmark_node *root)
{
	cmark_iter *it = cmark_iter_new(root);
	cmark_event_type ev;

	while ((ev = cmark_iter_next(it)) != CMARK_EVENT_DONE) {
		cmark_node *node = cmark_iter_get_node(it);
		cmark_node_type t = cmark_node_get_type(node);
		size_t i;

		if (ev != CMARK_EVENT_ENTER ||
		    (t != CMARK_NODE_CODE_BLOCK && t != CMARK_NODE_HTML_BLOCK))
			continue;
		for (i = node_line(d, node, 0); i <= node_line(d, node, 1); i++)
			d->v[i].code = 1;
	}
	cmark_iter_free(it);
}

/* "none yet", "no suggestions": the part says there is nothing. */
static int says_none(const char *s)
{
	static const char *const none[] = {"none", "no ", "n/a", "nothing", "not yet"};
	size_t k;

	for (k = 0; k < ARRAY_SIZE(none); k++)
		if (is_word_at(s, none[k]))
			return 1;
	return 0;
}

/* An item that says there is none: "None yet", "N/A", "No suggestions for now". */
static int says_none_item(const char *raw, size_t n)
{
	static const char *const none[] = {"none",	    "n/a",	   "nothing",
					   "no suggestion", "no concrete", "not yet"};
	char *c = clean_dup(raw, n);
	size_t k, len;
	int r = 0;

	for (k = 0; k < ARRAY_SIZE(none) && !r; k++) {
		len = strlen(none[k]);
		r = is_word_at(c, none[k]) && !isalnum((unsigned char)c[len]);
	}
	free(c);
	return r;
}

/* ---------------------------------------------------------------- tables */

/* Splits a table line into at most max cells (border pipes dropped); returns the count. */
static size_t table_cells(const struct line *l, const char **cell, size_t *len, size_t max)
{
	size_t n, i, start, k = 0;
	const char *t = line_trimmed(l, &n);

	if (n && t[0] == '|') {
		t++;
		n--;
	}
	if (n && t[n - 1] == '|' && (n < 2 || t[n - 2] != '\\'))
		n--;
	for (i = start = 0; i <= n && k < max; i++) {
		if (i < n && !(t[i] == '|' && (i == 0 || t[i - 1] != '\\')))
			continue;
		cell[k] = t + start;
		len[k] = i - start;
		k++;
		start = i + 1;
	}
	return k;
}

#define TABLE_COLS 16

/* The title column (the one naming the suggestion, else the first that is not a number) and the
 * test column. */
static void table_columns(const struct doc *d, size_t first, int *tcol, int *xcol)
{
	static const char *const title_words[] = {"suggestion", "change",     "recommendation",
						  "optimi",	"idea",	      "action",
						  "title",	"improvement"};
	static const char *const test_words[] = {"test",  "measure", "validat",
						 "verif", "metric",  "evaluat"};
	const char *cell[TABLE_COLS];
	size_t len[TABLE_COLS], n = table_cells(&d->v[first], cell, len, TABLE_COLS), i, k;

	*tcol = *xcol = -1;
	for (i = 0; i < n; i++) {
		char *h = clean_dup(cell[i], len[i]);

		for (k = 0; k < ARRAY_SIZE(test_words) && *xcol < 0; k++)
			if (memmem_ci(h, strlen(h), test_words[k]))
				*xcol = (int)i;
		for (k = 0; k < ARRAY_SIZE(title_words) && *tcol < 0 && *xcol != (int)i; k++)
			if (memmem_ci(h, strlen(h), title_words[k]))
				*tcol = (int)i;
		free(h);
	}
	for (i = 0; i < n && *tcol < 0; i++) {
		char *h = clean_dup(cell[i], len[i]);

		if (h[0] && strcmp(h, "#") && strcasecmp(h, "no") && strcasecmp(h, "id") &&
		    (int)i != *xcol)
			*tcol = (int)i;
		free(h);
	}
}

static void build_row(const struct doc *d, const struct range *r, int turn, struct optim_list *out)
{
	const char *cell[TABLE_COLS];
	size_t len[TABLE_COLS], n = table_cells(&d->v[r->first], cell, len, TABLE_COLS), i;
	struct strbuf detail, sugg;
	char *title;
	struct optim *o;

	if (r->tcol < 0 || (size_t)r->tcol >= n)
		return;
	title = title_split(cell[r->tcol], len[r->tcol], NULL, 0);
	if (!*title) {
		free(title);
		return;
	}
	strbuf_init(&detail, 128);
	strbuf_init(&sugg, 128);
	for (i = 0; i < n; i++) {
		char *c = clean_dup(cell[i], len[i]);

		if ((int)i != r->tcol && (int)i != r->xcol && *c && !isdigit((unsigned char)c[0]))
			add_piece(&detail, cell[i], len[i]);
		free(c);
	}
	strbuf_add(&sugg, d->v[r->first].s, d->v[r->first].len);
	o = optim_list_add(out);
	o->title = title;
	o->detail = strbuf_detach(&detail, NULL);
	o->test = NULL;
	if (r->xcol >= 0 && (size_t)r->xcol < n) {
		o->test = clean_dup(cell[r->xcol], len[r->xcol]);
		if (!*o->test) {
			free(o->test);
			o->test = NULL;
		}
	}
	o->suggestion = strbuf_detach(&sugg, NULL);
	trim(o->suggestion);
	o->turn = turn;
	strbuf_release(&detail);
	strbuf_release(&sugg);
}

/* ---------------------------------------------------------------- parts */

static void push_titled(struct ranges *r, size_t first, size_t last, const char *raw, size_t n)
{
	ranges_push(r, first, last);
	r->v[r->n - 1].title = title_split(raw, n, NULL, 0);
}

/* A heading that labels its suggestion: "Suggestion 1: ...", "Option B – ...". */
static int heading_labelled(const struct doc *d, const struct blk *k)
{
	size_t n;
	const char *c = blk_line(d, k, &n);
	char *t = clean_dup(c, n), *u = xstrdup(t);
	int r;

	strip_label(u);
	r = strcmp(t, u) != 0;
	free(t);
	free(u);
	return r;
}

/* A paragraph that says how to test something ("... Test: recall on 20 meetings."). */
static int blk_has_test(const struct doc *d, const struct blk *k)
{
	size_t i, n, ms, ts;
	int hash;

	for (i = k->first; i <= k->last; i++) {
		const char *c = line_content(&d->v[i], &n);

		if (find_test_marker_at(c, n, 0, &ms, &ts, &hash) && ts < n)
			return 1;
	}
	return 0;
}

/* Whether a list holds an item that opens in bold: then its items are the suggestions. */
static int list_has_bold_items(const struct doc *d, const struct blk *k)
{
	size_t i, n;

	for (i = k->first; i <= k->last; i++) {
		const char *c = line_content(&d->v[i], &n);

		if (d->v[i].list && !d->v[i].code && n > 2 && c[0] == '*' && c[1] == '*')
			return 1;
	}
	return 0;
}

/*
 * "- Which GPU do you run?": a question to the candidate is not a suggestion;
 * "**Model size:** could we fine-tune a smaller one?" has a title and is one.
 */
static void drop_questions(const struct doc *d, struct ranges *out, size_t from)
{
	size_t i, j, keep = from;

	for (i = from; i < out->n; i++) {
		const struct range *r = &out->v[i];
		int question = 0, tested = 0, titled;
		size_t n0;
		const char *c0 = line_content(&d->v[r->first], &n0);

		for (j = r->first; j <= r->last; j++) {
			size_t n, ms, ts;
			const char *c;

			if (d->v[j].blank || d->v[j].code)
				continue;
			c = line_content(&d->v[j], &n);
			question = n > 0 && c[n - 1] == '?';
			tested = tested || find_test_marker(c, n, &ms, &ts);
		}
		titled = n0 > 2 && c0[0] == '*' && c0[1] == '*';
		if (question && !tested && !titled) {
			free(out->v[i].title);
			free(out->v[i].text);
			continue;
		}
		out->v[keep++] = *r;
	}
	out->n = keep;
}

/* A line that opens an item inside a paragraph: a bold lead, or an enumerator ("a) ", "2. "). */
static int line_opens_item(const struct line *l)
{
	size_t n;
	const char *c = line_content(l, &n);

	if (l->code || l->blank || n < 3)
		return 0;
	if (l->list || (c[0] == '*' && c[1] == '*'))
		return 1;
	return isalpha((unsigned char)c[0]) && (c[1] == '.' || c[1] == ')') && c[2] == ' ';
}

/*
 * The items among lines [first, last] of one paragraph, each from a line
 * that opens one to the next ("**Serve thumbnails**: ...\n**Lazy-load**:
 * ...", "a) ...\nb) ..."); lines before the first are not an item.
 */
static size_t collect_lines(const struct doc *d, size_t first, size_t last, struct ranges *out)
{
	size_t i, start = (size_t)-1, before = out->n;

	for (i = first; i <= last; i++) {
		if (!line_opens_item(&d->v[i]))
			continue;
		if (start != (size_t)-1)
			ranges_push(out, start, i - 1);
		start = i;
	}
	if (start != (size_t)-1)
		ranges_push(out, start, last);
	return out->n - before;
}

/*
 * "First, embed queries locally. Test: p50. Second, cache them. Test: hits."
 * in one paragraph: each ordinal sentence opens an item, up to the next.
 * Returns how many were pushed (none unless there are two or more).
 */
static size_t collect_ordinals(const struct doc *d, const struct blk *k, struct ranges *out)
{
	static const char *const words[] = {"First, ", "Second, ",  "Third, ", "Fourth, ",
					    "Fifth, ", "Finally, ", "Lastly, "};
	struct strbuf sb;
	size_t i, n, w, cut[16], ncut = 0;
	const char *c;

	strbuf_init(&sb, 256);
	for (i = k->first; i <= k->last; i++) {
		c = line_content(&d->v[i], &n);
		if (sb.len)
			strbuf_addch(&sb, ' ');
		strbuf_add(&sb, c, n);
	}
	for (i = 0; i < sb.len && ncut < ARRAY_SIZE(cut); i++) {
		if (i > 0 && !(i >= 2 && sb.buf[i - 1] == ' ' && strchr(".!?", sb.buf[i - 2])))
			continue;
		for (w = 0; w < ARRAY_SIZE(words); w++)
			if (!strncmp(sb.buf + i, words[w], strlen(words[w])))
				cut[ncut++] = i;
	}
	if (ncut >= 2)
		for (i = 0; i < ncut; i++) {
			size_t end = i + 1 < ncut ? cut[i + 1] : sb.len;

			ranges_push(out, k->first, k->last);
			out->v[out->n - 1].text = xstrndup(sb.buf + cut[i], end - cut[i]);
		}
	strbuf_release(&sb);
	return ncut >= 2 ? ncut : 0;
}

/*
 * "My suggestions: **cache the prompt** (test: TTFT) and **cut the context**
 * (test: accuracy)." in one paragraph: each bold run followed by its own test
 * is an item. Returns how many were pushed (none unless every one of two or
 * more bold runs has a test).
 */
static size_t collect_bold_runs(const struct doc *d, const struct blk *k, struct ranges *out)
{
	struct strbuf sb;
	size_t i, n, cut[16], ncut = 0, ms, ts;
	const char *c;
	int ok = 1;

	strbuf_init(&sb, 256);
	for (i = k->first; i <= k->last; i++) {
		c = line_content(&d->v[i], &n);
		if (sb.len)
			strbuf_addch(&sb, ' ');
		strbuf_add(&sb, c, n);
	}
	/* where each bold run opens: "**" not followed by a blank, every other pair closes one */
	for (i = 0; i + 2 < sb.len && ncut < ARRAY_SIZE(cut); i++) {
		const char *close;

		if (sb.buf[i] != '*' || sb.buf[i + 1] != '*' || sb.buf[i + 2] == ' ')
			continue;
		close = strstr(sb.buf + i + 2, "**");
		if (!close)
			break;
		cut[ncut++] = i;
		i = (size_t)(close - sb.buf) + 1;
	}
	for (i = 0; i < ncut && ok; i++) {
		size_t end = i + 1 < ncut ? cut[i + 1] : sb.len;

		ok = find_test_marker(sb.buf + cut[i], end - cut[i], &ms, &ts) && ts < end - cut[i];
	}
	if (ncut < 2 || !ok) {
		strbuf_release(&sb);
		return 0;
	}
	for (i = 0; i < ncut; i++) {
		size_t end = i + 1 < ncut ? cut[i + 1] : sb.len;
		const char *seg = sb.buf + cut[i], *close;

		/* "(test: TTFT) and ...": the item ends with the bracket around its test */
		find_test_marker(seg, end - cut[i], &ms, &ts);
		if (seg[ms] == '(' && (close = memchr(seg + ts, ')', end - cut[i] - ts)))
			end = (size_t)(close - sb.buf) + 1;
		ranges_push(out, k->first, k->last);
		out->v[out->n - 1].text = xstrndup(seg, end - cut[i]);
	}
	strbuf_release(&sb);
	return ncut;
}

/* How many lines of paragraph k open an item. */
static size_t item_lines(const struct doc *d, const struct blk *k)
{
	size_t i, n = 0;

	for (i = k->first; i <= k->last; i++)
		n += line_opens_item(&d->v[i]);
	return n;
}

/*
 * The items among blocks v[from, to) of a part: one per sub-heading (or
 * bold sub-heading line) when it has them, with everything up to the next
 * one; else every list's items, every table's rows, and every paragraph that
 * opens in bold, with a label or carries #test_this, until prose follows them.
 */
static void collect_blocks(const struct doc *d, const struct blks *b, size_t from, size_t to,
			   struct ranges *out, char *used)
{
	size_t i, heads = 0, labelled = 0, pseudo = 0, items = 0;
	int bold_lists = 0;

	for (i = from; i < to; i++) {
		heads += b->v[i].kind == BLK_HEADING;
		labelled += b->v[i].kind == BLK_HEADING && heading_labelled(d, &b->v[i]);
		pseudo += b->v[i].kind == BLK_PARA && b->v[i].pseudo;
		labelled += b->v[i].kind == BLK_PARA && b->v[i].pseudo && b->v[i].lead &&
			    heading_labelled(d, &b->v[i]);
		bold_lists |= b->v[i].kind == BLK_LIST && list_has_bold_items(d, &b->v[i]);
	}
	/* sub-headings over lists of bold items group them ("Quick wins"); else each heads one */
	if ((heads && (!bold_lists || labelled)) ||
	    (!heads && pseudo >= 2 && (!bold_lists || labelled))) {
		for (i = from; i < to; i++) {
			const struct blk *k = &b->v[i];
			size_t j = i + 1, n;
			const char *c;

			if (heads ? k->kind != BLK_HEADING : !(k->kind == BLK_PARA && k->pseudo))
				continue;
			while (j < to && (heads ? b->v[j].kind != BLK_HEADING
						: !(b->v[j].kind == BLK_PARA && b->v[j].pseudo)))
				j++;
			c = blk_line(d, k, &n);
			push_titled(out, k->first, j > i + 1 ? b->v[j - 1].last : k->last, c, n);
		}
		return;
	}
	for (i = from; i < to; i++) {
		const struct blk *k = &b->v[i];
		size_t before = out->n, j;
		const char *c;
		size_t n;

		if (k->kind == BLK_TABLE) {
			int tcol, xcol;

			table_columns(d, k->first, &tcol, &xcol);
			for (j = k->first + 2; j <= k->last; j++) {
				ranges_push(out, j, j);
				out->v[out->n - 1].row = 1;
				out->v[out->n - 1].tcol = tcol;
				out->v[out->n - 1].xcol = xcol;
			}
		} else if (k->kind == BLK_LIST || k->kind == BLK_ITEM) {
			/* an item of a list of parts: "3. Concrete suggestions" then "1. ..." */
			collect_section(d, k->first, k->last + 1, 0, out, used);
			drop_questions(d, out, before);
			/* "* None yet – ..." says there is nothing */
			while (out->n > before) {
				c = line_content(&d->v[out->v[out->n - 1].first], &n);
				if (!says_none_item(c, n))
					break;
				out->n--;
				free(out->v[out->n].title);
			}
		} else if (k->kind == BLK_PARA) {
			const char *e;
			size_t en;

			c = blk_line(d, k, &n);
			e = line_content(&d->v[k->last], &en);
			if ((en > 0 && e[en - 1] == ':') || k->pseudo)
				continue; /* it introduces what follows, or is a sub-heading */
			if (item_lines(d, k) >= 2) {
				collect_lines(d, k->first, k->last, out);
			} else if (collect_ordinals(d, k, out) || collect_bold_runs(d, k, out)) {
				;
			} else if (k->lead || (has_test_this(c, n) && !mentions_format(c, n)) ||
				   blk_has_test(d, k)) {
				ranges_push(out, k->first, k->last);
			} else if (items) {
				return; /* closing remarks */
			}
		}
		items += out->n - before;
	}
}

/* No concrete-suggestions part: labelled paragraphs and #test_this items, wherever they are. */
static void collect_loose(const struct doc *d, const struct blks *b, int marked_only,
			  struct ranges *out, char *used)
{
	size_t i, j, n;
	const char *c;

	for (i = 0; i < b->n; i++) {
		const struct blk *k = &b->v[i];
		char *t;
		int label;

		if (k->kind != BLK_PARA)
			continue;
		if (!marked_only && collect_bold_runs(d, k, out)) {
			for (j = k->first; j <= k->last; j++)
				used[j] = 1;
			continue;
		}
		c = blk_line(d, k, &n);
		t = clean_dup(c, n);
		strip_label(t);
		label = !marked_only && strlen(t) < n && strncmp(t, c, strlen(t)) && !k->part &&
			(is_word_at(c, "suggestion") || is_word_at(c, "option") ||
			 is_word_at(c, "**suggestion") || is_word_at(c, "**option") ||
			 is_word_at(c, "recommendation") || is_word_at(c, "**recommendation"));
		free(t);
		if (label && k->pseudo) {
			/* "**Suggestion 1 — Title**" heads the paragraphs that follow it */
			for (j = i + 1; j < b->n && b->v[j].kind == BLK_PARA && !b->v[j].pseudo &&
					!b->v[j].part;
			     j++)
				;
			push_titled(out, k->first, b->v[j - 1].last, c, n);
		} else if (label || (has_test_this(c, n) && !mentions_format(c, n))) {
			ranges_push(out, k->first, k->last);
		} else {
			size_t l;

			for (l = k->first; l <= k->last && !label; l++) {
				c = line_content(&d->v[l], &n);
				label = has_test_this(c, n) && !mentions_format(c, n);
			}
			if (label)
				ranges_push(out, k->first, k->last);
			else
				continue;
		}
		for (j = out->v[out->n - 1].first; j <= out->v[out->n - 1].last; j++)
			used[j] = 1;
	}
	collect_marked(d, out, used);
}

/* One item from a piece of text (a label line's rest, a sentence run of a paragraph). */
static void build_text(const char *text, int turn, struct optim_list *out)
{
	struct doc t;

	doc_init(&t, text);
	build_item(&t, 0, t.n - 1, NULL, turn, out);
	doc_release(&t);
}

/* The part's own items on its label line: "3. Concrete suggestions: use X. Test: Y". */
static void build_rest(const char *rest, int turn, struct optim_list *out)
{
	if (!says_none(rest))
		build_text(rest, turn, out);
}

/* The rubric method; marked_only takes only items marked test_this. Returns 1 when it found a
 * concrete-suggestions part. */
static int extract_tree(const char *text, int turn, int marked_only, struct optim_list *out)
{
	char *norm = normalise(text);
	struct doc d;
	struct ranges found = {0};
	struct blks b = {0}, inner = {0};
	cmark_node *root;
	size_t i, k, best = (size_t)-1, end;
	int best_key = 0;
	char *used;

	doc_init(&d, norm);
	root = cmark_parse_document(norm, strlen(norm), CMARK_OPT_DEFAULT);
	used = xcalloc(d.n, 1);
	if (root) {
		mark_code(&d, root);
		blocks_of(&d, cmark_node_first_child(root), &b);
	}
	/* the concrete-suggestions part: by name, else numbered 3, else any suggestions part */
	for (i = 0; i < b.n && !marked_only; i++) {
		int key = b.v[i].part == 4  ? 10
			  : b.v[i].part > 0 ? b.v[i].part + (b.v[i].num == 3) * 5
					    : 0;

		if (key > best_key) {
			best_key = key;
			best = i;
		}
	}
	if (best != (size_t)-1) {
		struct blk *h = &b.v[best];
		cmark_node *second = h->kind == BLK_ITEM ? cmark_node_first_child(h->node) : NULL;

		second = second ? cmark_node_next(second) : NULL;
		if (h->rest)
			build_rest(h->rest, turn, out);
		/* the label's own paragraph may go on with the items: "Concrete suggestions:\na)
		 * ..." */
		{
			cmark_node *para =
			    h->kind == BLK_ITEM ? cmark_node_first_child(h->node) : h->node;
			size_t plast = para ? node_line(&d, para, 1) : h->first;

			if (h->kind != BLK_HEADING && plast > h->first)
				collect_lines(&d, h->first + 1, plast, &found);
		}
		if (second) {
			/* "3. Concrete suggestions:" with the items nested under it */
			blocks_of(&d, second, &inner);
			collect_blocks(&d, &inner, 0, inner.n, &found, used);
		} else {
			for (end = best + 1; end < b.n; end++) {
				const struct blk *k2 = &b.v[end];

				if (h->kind == BLK_HEADING
					? k2->part < 0 ||
					      (k2->kind == BLK_HEADING && k2->level <= h->level)
					: k2->kind == BLK_HEADING || k2->part != 0 ||
					      k2->kind == BLK_RULE)
					break;
			}
			collect_blocks(&d, &b, best + 1, end, &found, used);
		}
	} else {
		collect_loose(&d, &b, marked_only, &found, used);
		if (found.n > 1) /* found.v is NULL when nothing was found: qsort must not see it */
			qsort(found.v, found.n, sizeof(*found.v), range_cmp);
	}
	for (k = 0; k < found.n; k++) {
		if (found.v[k].text)
			build_text(found.v[k].text, turn, out);
		else if (found.v[k].row)
			build_row(&d, &found.v[k], turn, out);
		else
			build_item(&d, found.v[k].first, found.v[k].last, found.v[k].title, turn,
				   out);
		free(found.v[k].title);
		free(found.v[k].text);
	}
	free(found.v);
	free(used);
	blks_release(&b);
	blks_release(&inner);
	if (root)
		cmark_node_free(root);
	doc_release(&d);
	free(norm);
	return best != (size_t)-1;
}

/* The origin's grep: every line containing "#test_this", as it was, trimmed. */
static void extract_origin(const char *text, int turn, struct optim_list *out)
{
	const char *p = text;

	while (*p) {
		const char *nl = strchr(p, '\n');
		size_t len = nl ? (size_t)(nl - p) : strlen(p);
		char *line = xstrndup(p, len);

		if (strstr(line, "#test_this")) {
			struct optim *o = optim_list_add(out);

			trim(line);
			o->title = xstrdup(line);
			o->detail = xstrdup("");
			o->test = NULL;
			o->suggestion = line;
			o->turn = turn;
		} else {
			free(line);
		}
		if (!nl)
			break;
		p = nl + 1;
	}
}

/* ---------------------------------------------------------------- API */

int extract_method_parse(const char *s, enum extract_method *out)
{
	if (!s)
		return -1;
	if (!strcmp(s, "rubric"))
		*out = EXTRACT_RUBRIC;
	else if (!strcmp(s, "origin"))
		*out = EXTRACT_ORIGIN;
	else if (!strcmp(s, "model"))
		*out = EXTRACT_MODEL;
	else
		return -1;
	return 0;
}

const char *extract_method_name(enum extract_method m)
{
	return m == EXTRACT_ORIGIN ? "origin" : m == EXTRACT_MODEL ? "model" : "rubric";
}

void optim_list_init(struct optim_list *l)
{
	l->v = NULL;
	l->n = 0;
	l->alloc = 0;
}

void optim_list_release(struct optim_list *l)
{
	size_t i;

	for (i = 0; i < l->n; i++) {
		free(l->v[i].title);
		free(l->v[i].detail);
		free(l->v[i].test);
		free(l->v[i].suggestion);
	}
	free(l->v);
	optim_list_init(l);
}

int extract_optimizations(enum extract_method m, const char *text, int turn, struct optim_list *out)
{
	size_t i = out->n;
	int part = 0;

	if (!text)
		return 0;
	if (m == EXTRACT_ORIGIN)
		extract_origin(text, turn, out);
	else
		part = extract_tree(text, turn, 0, out);
	for (; i < out->n; i++)
		out->v[i].method = m == EXTRACT_ORIGIN ? "origin" : "rubric";
	return part;
}

void extract_marked(const char *text, int turn, struct optim_list *out)
{
	size_t i = out->n;

	if (!text)
		return;
	extract_tree(text, turn, 1, out);
	for (; i < out->n; i++)
		out->v[i].method = "rubric";
}
