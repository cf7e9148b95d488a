/*
 * checks.c - the checks of a task. See checks.h.
 */
#include "server/checks.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "db/util.h"
#include "server/ferr.h"
#include "server/jschema.h"

static const char *const kind_names[] = {"contains",  "not_contains", "regex", "equals",
					 "max_words", "json_schema",  "judge"};

const char *checks_kind_name(enum check_kind k)
{
	return kind_names[k];
}

static int kind_of(const char *key)
{
	size_t i;

	for (i = 0; i < sizeof(kind_names) / sizeof(kind_names[0]); i++)
		if (strcmp(key, kind_names[i]) == 0)
			return (int)i;
	return -1;
}

/* The count checks_regcomp() refuses by: the nodes repetition would make. */
static int regex_cost(const char *p, char *why, size_t size)
{
	double sum[65], last[65];
	int d = 0, prev_rep = 0;
	size_t i = 0;

	sum[0] = last[0] = 0;
	while (p[i]) {
		char c = p[i];
		double factor;
		if (c == '*' || c == '+' || c == '?' || c == '{') {
			long m = 0, n = -1;
			size_t j = i + 1;
			if (prev_rep) {
				snprintf(why, size,
					 "a repetition may not follow another (at byte %zu)", i);
				return -1;
			}
			if (c == '{') {
				while (isdigit((unsigned char)p[j]) && m <= 100000)
					m = m * 10 + (p[j++] - '0');
				if (p[j] == ',') {
					j++;
					if (isdigit((unsigned char)p[j]))
						for (n = 0;
						     isdigit((unsigned char)p[j]) && n <= 100000;)
							n = n * 10 + (p[j++] - '0');
					else
						n = m + 1;
				}
				if (p[j] != '}' ||
				    j == i + 1) { /* not a bound: regcomp judges it */
					sum[d]++;
					last[d] = 1;
					prev_rep = 0;
					i++;
					continue;
				}
				if (m > 255 || n > 255) {
					snprintf(why, size,
						 "a repetition bound over 255 (at byte %zu)", i);
					return -1;
				}
				factor = (double)(n > m ? n : m) + 1;
				i = j + 1;
			} else {
				factor = c == '+' ? 2 : 1;
				i++;
			}
			sum[d] += last[d] * (factor - 1);
			last[d] *= factor;
			prev_rep = 1;
		} else {
			double atom = 1;
			prev_rep = 0;
			if (c == '\\') {
				if (p[i + 1] >= '1' && p[i + 1] <= '9') {
					snprintf(why, size, "back-references are not supported");
					return -1;
				}
				i += p[i + 1] ? 2 : 1;
			} else if (c == '[') {
				size_t j = i + 1;
				if (p[j] == '^')
					j++;
				if (p[j] == ']')
					j++;
				while (p[j] && p[j] != ']') {
					if (p[j] == '[' && (p[j + 1] == ':' || p[j + 1] == '.' ||
							    p[j + 1] == '=')) {
						const char *end = strchr(p + j + 2, p[j + 1]);
						j = end && end[1] == ']' ? (size_t)(end - p) + 2
									 : j + 1;
					} else {
						j++;
					}
				}
				i = p[j] ? j + 1 : j;
			} else if (c == '(') {
				if (d == 64) {
					snprintf(why, size, "groups nest deeper than 64");
					return -1;
				}
				d++;
				sum[d] = last[d] = 0;
				i++;
				continue;
			} else if (c == ')' && d > 0) {
				atom = sum[d] + 1;
				d--;
				i++;
			} else if (c == '|') {
				last[d] = 0;
				i++;
				continue;
			} else {
				i++;
			}
			sum[d] += atom;
			last[d] = atom;
		}
		if (sum[d] > CHECKS_MAX_REGEX_COST || last[d] > CHECKS_MAX_REGEX_COST) {
			snprintf(why, size,
				 "too costly to compile: its repetitions multiply to more "
				 "than %d parts",
				 CHECKS_MAX_REGEX_COST);
			return -1;
		}
	}
	while (d > 0) { /* an unclosed group: regcomp refuses it; count it anyway */
		double g = sum[d] + 1;
		d--;
		sum[d] += g;
	}
	if (sum[0] > CHECKS_MAX_REGEX_COST) {
		snprintf(why, size,
			 "too costly to compile: its repetitions multiply to more than "
			 "%d parts",
			 CHECKS_MAX_REGEX_COST);
		return -1;
	}
	return 0;
}

int checks_regcomp(regex_t *re, const char *pattern, char *why, size_t size)
{
	int rc;

	if (strlen(pattern) > CHECKS_MAX_REGEX) {
		snprintf(why, size, "longer than %d bytes", CHECKS_MAX_REGEX);
		return -1;
	}
	if (regex_cost(pattern, why, size) < 0)
		return -1;
	if ((rc = regcomp(re, pattern, REG_EXTENDED | REG_NOSUB)) != 0) {
		regerror(rc, re, why, size);
		return -1;
	}
	return 0;
}

static void check_release(struct check *c)
{
	if (c->kind == CHECK_REGEX)
		regfree(&c->re);
	free(c->text);
	json_decref(c->schema);
}

/* One check object; fills c on success. path is "tasks[3].checks[0]". */
static int compile_one(json_t *o, const char *path, struct check *c, json_t *errs)
{
	const char *key;
	char sub[256], why[160];
	json_t *v; /* borrowed */
	int kind;

	memset(c, 0, sizeof(*c));
	if (!json_is_object(o) || json_object_size(o) != 1) {
		ferr_add(errs, path, "",
			 "a check is an object of one key: contains, not_contains, regex, equals, "
			 "max_words, json_schema or judge");
		return -1;
	}
	key = json_object_iter_key(json_object_iter(o));
	v = json_object_get(o, key);
	if ((kind = kind_of(key)) < 0) {
		ferr_add(errs, path, "",
			 "unknown check '%.64s'; known: contains, not_contains, regex, equals, "
			 "max_words, json_schema, judge",
			 key);
		return -1;
	}
	snprintf(sub, sizeof(sub), "%.200s.%.40s", path, key);
	c->kind = (enum check_kind)kind;
	switch (c->kind) {
	case CHECK_MAX_WORDS:
		if (!json_is_integer(v) || json_integer_value(v) < 1 ||
		    json_integer_value(v) > CHECKS_MAX_WORDS) {
			ferr_add(errs, sub, "", "must be an integer from 1 to %d",
				 CHECKS_MAX_WORDS);
			return -1;
		}
		c->n = (long)json_integer_value(v);
		return 0;
	case CHECK_JSON_SCHEMA:
		if (jschema_check(v, sub, errs) < 0)
			return -1;
		c->schema = json_incref(v);
		return 0;
	default:
		break;
	}
	if (!json_is_string(v) || json_string_length(v) == 0 ||
	    json_string_length(v) > CHECKS_MAX_TEXT ||
	    strlen(json_string_value(v)) != json_string_length(v)) {
		ferr_add(errs, sub, "", "must be a non-empty string of up to %d bytes",
			 CHECKS_MAX_TEXT);
		return -1;
	}
	if (c->kind == CHECK_EQUALS) {
		/* equals compares trimmed text: an operand that only differs in white space
		 * around it would never match, so it is refused */
		const char *s = json_string_value(v);
		size_t n = strlen(s);
		if (isspace((unsigned char)s[0]) || isspace((unsigned char)s[n - 1])) {
			ferr_add(errs, sub, "",
				 "compares with the trimmed reply: no white space around it");
			return -1;
		}
	}
	if (c->kind == CHECK_REGEX &&
	    checks_regcomp(&c->re, json_string_value(v), why, sizeof(why)) < 0) {
		ferr_add(errs, sub, "", "not a usable POSIX extended regular expression: %s", why);
		c->kind = CHECK_CONTAINS; /* nothing compiled to free */
		return -1;
	}
	c->text = xstrdup(json_string_value(v));
	return 0;
}

int checks_compile(json_t *list, const char *prefix, struct checks *out, json_t *errs)
{
	struct checks tmp = {0};
	char path[256];
	json_t *o; /* borrowed */
	size_t i;
	int bad = 0;

	if (out)
		memset(out, 0, sizeof(*out));
	if (!json_is_array(list) || json_array_size(list) < 1 ||
	    json_array_size(list) > CHECKS_MAX) {
		ferr_add(errs, prefix, "", "required: an array of 1 to %d checks", CHECKS_MAX);
		return -1;
	}
	tmp.v = xcalloc(json_array_size(list), sizeof(*tmp.v));
	json_array_foreach(list, i, o)
	{
		snprintf(path, sizeof(path), "%s[%zu]", prefix, i);
		if (compile_one(o, path, &tmp.v[tmp.n], errs) < 0)
			bad = 1;
		else
			tmp.n++;
	}
	if (bad || !out) {
		checks_release(&tmp);
		return bad ? -1 : 0;
	}
	*out = tmp;
	return 0;
}

void checks_release(struct checks *c)
{
	size_t i;

	for (i = 0; i < c->n; i++)
		check_release(&c->v[i]);
	free(c->v);
	memset(c, 0, sizeof(*c));
}

static int contains_nocase(const char *hay, const char *needle)
{
	size_t n = strlen(needle);

	for (; *hay; hay++)
		if (strncasecmp(hay, needle, n) == 0)
			return 1;
	return 0;
}

static long count_words(const char *s)
{
	long n = 0;
	int in = 0;

	for (; *s; s++) {
		if (isspace((unsigned char)*s))
			in = 0;
		else if (!in)
			in = 1, n++;
	}
	return n;
}

/* The reply without the white space around it: start and length. */
static const char *trimmed(const char *s, size_t *len)
{
	size_t n;

	while (isspace((unsigned char)*s))
		s++;
	n = strlen(s);
	while (n > 0 && isspace((unsigned char)s[n - 1]))
		n--;
	*len = n;
	return s;
}

static int fail(char *why, size_t size, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static int fail(char *why, size_t size, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, size, fmt, ap);
	va_end(ap);
	return 0;
}

int checks_eval(const struct check *c, const char *reply, char *why, size_t size)
{
	const char *t;
	size_t len;
	long words;

	if (size)
		why[0] = '\0';
	switch (c->kind) {
	case CHECK_CONTAINS:
		return contains_nocase(reply, c->text)
			   ? 1
			   : fail(why, size, "the reply does not contain \"%.80s\"", c->text);
	case CHECK_NOT_CONTAINS:
		return !contains_nocase(reply, c->text)
			   ? 1
			   : fail(why, size, "the reply contains \"%.80s\"", c->text);
	case CHECK_REGEX:
		return regexec(&c->re, reply, 0, NULL, 0) == 0
			   ? 1
			   : fail(why, size, "the reply does not match /%.80s/", c->text);
	case CHECK_EQUALS:
		t = trimmed(reply, &len);
		return len == strlen(c->text) && memcmp(t, c->text, len) == 0
			   ? 1
			   : fail(why, size, "the reply is not \"%.80s\"", c->text);
	case CHECK_MAX_WORDS:
		words = count_words(reply);
		return words <= c->n
			   ? 1
			   : fail(why, size, "the reply has %ld words, more than %ld", words, c->n);
	case CHECK_JSON_SCHEMA: {
		json_error_t err;
		json_t *doc;
		char sub[200];
		int ok;
		t = trimmed(reply, &len);
		if (!(doc = json_loadb(t, len, JSON_DECODE_ANY, &err)))
			return fail(why, size, "the reply is not JSON: %s", err.text);
		ok = jschema_match(c->schema, doc, sub, sizeof(sub));
		json_decref(doc);
		return ok ? 1 : fail(why, size, "the reply does not match the schema: %s", sub);
	}
	case CHECK_JUDGE:
		return -1;
	}
	return 0;
}

json_t *checks_json(const struct check *c)
{
	json_t *o = json_object();

	if (c->kind == CHECK_MAX_WORDS)
		json_object_set_new(o, "max_words", json_integer(c->n));
	else if (c->kind == CHECK_JSON_SCHEMA)
		json_object_set(o, "json_schema", c->schema); /* a new reference of ours */
	else
		json_object_set_new(o, checks_kind_name(c->kind), json_string(c->text));
	return o;
}
