/*
 * extract.c - the optimizations an interviewer suggested. See extract.h.
 *
 * DESIGN: the text is split into lines once (struct doc); every later step
 * works on line indexes. The rubric method finds the concrete-suggestions
 * section (a numbered heading naming concrete suggestions, else numbered
 * section 3, else an unnumbered heading naming them) and ends it at the next
 * section heading, a rule, or a plain paragraph after its list. Its top-level
 * list items are the suggestions; deeper lines belong to their parent. Items
 * that merely restate an analysis section ("* **Concrete Suggestions Using
 * #test_this Format:**") are headings: their own nested items are promoted,
 * the heading itself is never a suggestion. Then every line not yet used that
 * is a list item marked test_this in any spelling (or a paragraph opening with
 * the marker) becomes a suggestion too, unless it only names the format.
 * Results come out in text order. Each item is turned into title / detail /
 * test / suggestion by small string passes over a strbuf. The origin method
 * is the old line grep and shares nothing with this.
 */
#include "server/extract.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

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
};

struct doc {
	struct line *v;
	size_t n;
};

struct range {
	size_t first, last; /* line indexes, inclusive */
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
 * Cleans src and cuts it into a title (its first sentence, enumerator,
 * surrounding quotes and final colon or full stop removed) and the rest,
 * which is appended to rest when rest is not NULL.
 */
static char *title_split(const char *src, size_t n, struct strbuf *rest)
{
	char *s = clean_dup(src, n), *title;
	size_t e;

	rstrip_set(s, ": ");
	strip_quote_pair(s);
	strip_enumerator(s);
	e = first_sentence_end(s);
	title = xstrndup(s, e);
	rstrip_set(title, ".: ");
	strip_quote_pair(title);
	rstrip_set(title, ".: ");
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

	while (i > 0 && (is_emph(p[i - 1]) || p[i - 1] == '(' || p[i - 1] == '[' ||
			 isspace((unsigned char)p[i - 1])))
		i--;
	if (i == 0)
		return 1;
	c = (unsigned char)p[i - 1];
	if (strchr(".!?;:)-|", c))
		return 1;
	/* U+2013 and U+2014 (en and em dash) end in 0x93 / 0x94 after E2 80 */
	return i >= 3 && (unsigned char)p[i - 3] == 0xe2 && (unsigned char)p[i - 2] == 0x80 &&
	       (c == 0x93 || c == 0x94);
}

/*
 * Finds the first test marker in p: "#test_this" (any case, _ - or space)
 * anywhere; "Test:", "Testing:", "Tests:", "Test this:" where a clause starts.
 * mstart is where the marker begins (its emphasis included); tstart where the
 * text after it begins.
 */
static int find_test_marker_at(const char *p, size_t n, size_t from, size_t *mstart,
			       size_t *tstart, int *is_hash)
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
		}
		if (!end)
			continue;
		k = end;
		while (k < n && is_emph(p[k]))
			k++;
		if (k < n && p[k] == ':')
			k++;
		else if (!hash)
			continue;
		if (!hash && !marker_boundary(p, i))
			continue;
		while (k < n && (is_emph(p[k]) || isspace((unsigned char)p[k]) || p[k] == ':'))
			k++;
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

/* Words that end the concrete-suggestions section when a heading opens with them. */
static int names_later_section(const char *s, size_t n)
{
	static const char *const names[] = {"reasoning",
					    "why these",
					    "why this",
					    "rationale",
					    "next step",
					    "actionable next",
					    "conclusion",
					    "summary",
					    "specific optimization",
					    "optimization opportunit",
					    "analysis of"};
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
	if (l->blank || l->indent > 3 || n == 0)
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

/* Finds the concrete-suggestions section: lines (from, to) exclusive of its heading. */
static int find_section(const struct doc *d, size_t *from, size_t *to)
{
	size_t i, start = (size_t)-1, by_num = (size_t)-1, by_word = (size_t)-1;
	size_t unnumbered = (size_t)-1;
	struct heading h, sh;

	for (i = 0; i < d->n; i++) {
		size_t tn;

		heading_classify(&d->v[i], &h);
		if (!h.is) {
			continue;
		}
		tn = strlen(h.text);
		if (h.num && memmem_ci(h.text, tn, "concrete suggestion") && start == (size_t)-1)
			start = i;
		if (h.num == 3 && by_num == (size_t)-1)
			by_num = i;
		if (h.num && (memmem_ci(h.text, tn, "suggestion") || has_test_this(h.text, tn)) &&
		    by_word == (size_t)-1)
			by_word = i;
		if (!h.num && memmem_ci(h.text, tn, "concrete suggestion") &&
		    unnumbered == (size_t)-1)
			unnumbered = i;
		free(h.text);
	}
	if (start == (size_t)-1)
		start = by_num;
	if (start == (size_t)-1)
		start = by_word;
	if (start == (size_t)-1)
		start = unnumbered;
	if (start == (size_t)-1)
		return 0;
	heading_classify(&d->v[start], &sh);
	*from = start + 1;
	*to = d->n;
	for (i = start + 1; i < d->n; i++) {
		size_t n;
		const char *t = line_trimmed(&d->v[i], &n);
		int end = 0;

		if (d->v[i].indent <= 3 && is_rule(t, n) && n > 0) {
			*to = i;
			break;
		}
		heading_classify(&d->v[i], &h);
		if (!h.is)
			continue;
		if (h.md && (!sh.md || h.md <= sh.md))
			end = 1;
		else if (h.num && h.num != sh.num &&
			 (h.md || names_section(h.text, strlen(h.text))))
			end = 1;
		else if (names_later_section(h.text, strlen(h.text)))
			end = 1;
		free(h.text);
		if (end) {
			*to = i;
			break;
		}
	}
	free(sh.text);
	return 1;
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

	return title_split(c, n, NULL);
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

		if (used[i] || l->blank || is_heading_line(l))
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
static void build_item(const struct doc *d, size_t first, size_t last, int turn,
		       struct optim_list *out)
{
	struct strbuf detail, test, sugg;
	char *title = NULL;
	char *as_test = xcalloc(last - first + 1, 1);
	size_t j;

	struct strbuf untagged;
	int plain = 0;

	strbuf_init(&detail, 128);
	strbuf_init(&test, 128);
	strbuf_init(&sugg, 256);
	strbuf_init(&untagged, 0);
	/* with a "Test:" line of its own, an item's "#test_this:" is only a tag */
	for (j = first; j <= last && !plain; j++) {
		size_t n;
		const char *c;

		if (d->v[j].blank)
			continue;
		c = line_content(&d->v[j], &n);
		plain = item_has_plain_test(c, n);
	}
	for (j = first; j <= last; j++) {
		const struct line *l = &d->v[j];
		size_t n, ms, ts, pre, tag_s, tag_e;
		const char *c;
		int found;

		if (l->blank)
			continue;
		c = line_content(l, &n);
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

					if (m->blank)
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
		if (j == first) {
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
				title = title_split(c + 2, b - 2, &detail);
				b += 2;
				while (b < pre && (c[b] == ':' || isspace((unsigned char)c[b])))
					b++;
				add_piece(&detail, c + b, pre - b);
			} else {
				title = title_split(c, pre, &detail);
			}
		} else {
			add_piece(&detail, c, pre);
		}
	}
	if (title && !*title && test.len) {
		free(title);
		title = title_split(test.buf, test.len, NULL);
	}
	if (title && *title) {
		struct optim *o = optim_list_add(out);

		o->title = title;
		o->detail = strbuf_detach(&detail, NULL);
		strip_separator(o->detail);
		o->test = test.len ? strbuf_detach(&test, NULL) : NULL;
		o->suggestion = strbuf_detach(&sugg, NULL);
		o->turn = turn;
		title = NULL;
	}
	free(title);
	free(as_test);
	strbuf_release(&detail);
	strbuf_release(&test);
	strbuf_release(&sugg);
	strbuf_release(&untagged);
}

static void extract_rubric(const char *text, int turn, struct optim_list *out)
{
	struct doc d;
	struct ranges found = {0};
	size_t from, to, k;
	char *used;

	doc_init(&d, text);
	used = xcalloc(d.n, 1);
	if (find_section(&d, &from, &to))
		collect_section(&d, from, to, 0, &found, used);
	collect_marked(&d, &found, used);
	if (found.n > 1) /* found.v is NULL when nothing was found: qsort must not see it */
		qsort(found.v, found.n, sizeof(*found.v), range_cmp);
	for (k = 0; k < found.n; k++)
		build_item(&d, found.v[k].first, found.v[k].last, turn, out);
	free(found.v);
	free(used);
	doc_release(&d);
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
	else
		return -1;
	return 0;
}

const char *extract_method_name(enum extract_method m)
{
	return m == EXTRACT_ORIGIN ? "origin" : "rubric";
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

void extract_optimizations(enum extract_method m, const char *text, int turn,
			   struct optim_list *out)
{
	if (!text)
		return;
	if (m == EXTRACT_ORIGIN)
		extract_origin(text, turn, out);
	else
		extract_rubric(text, turn, out);
}
