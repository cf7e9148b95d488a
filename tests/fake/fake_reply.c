/*
 * fake_reply.c - what the fake backend says, and how it counts tokens. See fake.h.
 */
#include "tests/fake/fake.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static int check_strings(const json_t *a, const char *what, const char *name, char *err,
			 size_t errlen)
{
	json_t *v;
	size_t i;

	if (!json_is_array(a)) {
		snprintf(err, errlen, "%s of model '%s' is not an array", what, name);
		return -1;
	}
	json_array_foreach(a, i, v)
	{
		if (!json_is_string(v)) {
			snprintf(err, errlen, "%s %zu of model '%s' is not a string", what, i,
				 name);
			return -1;
		}
	}
	return 0;
}

/* "cases": [{"contains": string or [strings], "replies": [strings]}] */
static int check_cases(const json_t *cases, const char *name, char *err, size_t errlen)
{
	json_t *c, *v;
	size_t i;

	if (!cases)
		return 0;
	if (!json_is_array(cases)) {
		snprintf(err, errlen, "'cases' of model '%s' is not an array", name);
		return -1;
	}
	json_array_foreach(cases, i, c)
	{
		if (!json_is_object(c) || !json_object_get(c, "replies")) {
			snprintf(err, errlen,
				 "case %zu of model '%s' is not an object with 'replies'", i, name);
			return -1;
		}
		if (check_strings(json_object_get(c, "replies"), "a case's 'replies'", name, err,
				  errlen))
			return -1;
		v = json_object_get(c, "contains");
		if (v && !json_is_string(v) &&
		    check_strings(v, "a case's 'contains'", name, err, errlen))
			return -1;
	}
	return 0;
}

int fake_script_check(const json_t *script, char *err, size_t errlen)
{
	const char *name;
	json_t *m, *models, *missing, *v;
	size_t i;

	if (!json_is_object(script)) {
		snprintf(err, errlen, "script is not a JSON object");
		return -1;
	}
	models = json_object_get(script, "models"); /* borrowed */
	if (models && !json_is_object(models)) {
		snprintf(err, errlen, "'models' is not an object");
		return -1;
	}
	json_object_foreach(models, name, m)
	{
		json_t *replies = json_object_get(m, "replies"), *d;

		if (!json_is_object(m)) {
			snprintf(err, errlen, "model '%s' is not an object", name);
			return -1;
		}
		if (replies && !json_is_array(replies)) {
			snprintf(err, errlen, "'replies' of model '%s' is not an array", name);
			return -1;
		}
		json_array_foreach(replies, i, v)
		{
			if (!json_is_string(v)) {
				snprintf(err, errlen, "reply %zu of model '%s' is not a string", i,
					 name);
				return -1;
			}
		}
		if (check_cases(json_object_get(m, "cases"), name, err, errlen))
			return -1;
		d = json_object_get(m, "token_delay_ms");
		if (d && (!json_is_integer(d) || json_integer_value(d) < 0)) {
			snprintf(err, errlen, "'token_delay_ms' of model '%s' is not a count",
				 name);
			return -1;
		}
	}
	missing = json_object_get(script, "missing");
	if (missing && !json_is_array(missing)) {
		snprintf(err, errlen, "'missing' is not an array");
		return -1;
	}
	json_array_foreach(missing, i, v)
	{
		if (!json_is_string(v)) {
			snprintf(err, errlen, "'missing' entry %zu is not a string", i);
			return -1;
		}
	}
	return 0;
}

static const char *const default_models[] = {
    "gemma3:1b",     "gemma3n:latest",	 "gemma3n:e2b",
    "gemma2:latest", "qwen2.5vl:latest", "llama3.2:latest",
};

json_t *fake_model_names(const json_t *script, int ollama_tags)
{
	json_t *names = json_array(), *m, *v;
	const char *name;
	size_t i, j;

	for (i = 0; i < ARRAY_SIZE(default_models); i++)
		json_array_append_new(names, json_string(default_models[i])); /* stolen */
	json_object_foreach(json_object_get(script, "models"), name, m)
	{
		int dup = 0;

		(void)m;
		json_array_foreach(names, j, v)
		{
			dup |= fake_model_eq(json_string_value(v), name);
		}
		if (!dup && !fake_model_missing(script, name))
			json_array_append_new(names, json_string(name));
	}
	if (ollama_tags) {
		json_array_foreach(names, i, v)
		{
			const char *s = json_string_value(v);

			if (!strchr(s, ':')) {
				char buf[512];

				snprintf(buf, sizeof(buf), "%s:latest", s);
				json_array_set_new(names, i, json_string(buf));
			}
		}
	}
	return names;
}

/* Length of a model name without its ":latest" tag, the tag Ollama assumes. */
static size_t base_len(const char *s)
{
	size_t n = strlen(s);

	if (n >= 7 && !strcmp(s + n - 7, ":latest"))
		return n - 7;
	return n;
}

int fake_model_eq(const char *a, const char *b)
{
	size_t na = base_len(a), nb = base_len(b);

	return na == nb && !memcmp(a, b, na);
}

int fake_model_missing(const json_t *script, const char *model)
{
	json_t *v;
	size_t i;

	if (!strncmp(model, "missing", 7))
		return 1;
	json_array_foreach(json_object_get(script, "missing"), i, v)
	{
		if (json_is_string(v) && fake_model_eq(json_string_value(v), model))
			return 1;
	}
	return 0;
}

json_t *fake_script_model(const json_t *script, const char *model)
{
	json_t *models = json_object_get(script, "models"), *m; /* borrowed */
	const char *name;

	m = json_object_get(models, model);
	if (m)
		return m;
	json_object_foreach(models, name, m)
	{
		if (fake_model_eq(name, model))
			return m;
	}
	return NULL;
}

long fake_count_role(const json_t *messages, const char *role)
{
	json_t *msg;
	size_t i;
	long n = 0;

	json_array_foreach(messages, i, msg)
	{
		const char *r = json_string_value(json_object_get(msg, "role"));

		if (r && !strcmp(r, role))
			n++;
	}
	return n;
}

/* The content of the last user message, or "". */
static const char *last_user(const json_t *messages)
{
	size_t i = json_array_size(messages);

	while (i-- > 0) {
		json_t *msg = json_array_get(messages, i);
		const char *r = json_string_value(json_object_get(msg, "role"));
		const char *c = json_string_value(json_object_get(msg, "content"));

		if (r && !strcmp(r, "user"))
			return c ? c : "";
	}
	return "";
}

/* The buffer of sb, which is released (strbuf_detach leaves a fresh one behind). */
static char *take(struct strbuf *sb)
{
	char *s = strbuf_detach(sb, NULL);

	strbuf_release(sb);
	return s;
}

/* The generated analysis: four numbered sections, three #test_this items in section 3. */
static char *analysis(const char *model, long turn)
{
	struct strbuf sb;

	strbuf_init(&sb, 2048);
	strbuf_addf(&sb,
		    "### 1. Analysis of the candidate's approach\n"
		    "The candidate measures before it changes anything, which is sound, but it "
		    "gave no baseline numbers and treats every request the same way. (%s, turn "
		    "%ld)\n\n",
		    model, turn);
	strbuf_addstr(&sb, "### 2. Specific optimization opportunities\n"
			   "- Repeated work: identical requests are computed again from scratch.\n"
			   "- Idle capacity: requests are processed one at a time.\n"
			   "- Oversized inputs: every request carries the full history.\n\n");
	strbuf_addstr(&sb,
		      "### 3. Concrete suggestions\n"
		      "- **Cache repeated results** #test_this: keep the last 1,000 results in an "
		      "in-memory LRU keyed by a hash of the normalized input.\n"
		      "  Test: replay 10,000 logged requests and compare p95 latency and the hit "
		      "rate with and without the cache.\n"
		      "- **Batch concurrent requests** #test_this: group up to 16 requests that "
		      "arrive within 20 ms into one backend call.\n"
		      "  Test: run a load test at 50 requests per second and compare throughput "
		      "and p99 latency at batch sizes 1, 4 and 16.\n"
		      "- **Trim the context** #test_this: send only the last 4 exchanges plus a "
		      "200-word summary of the earlier ones.\n"
		      "  Test: measure prompt tokens, time to first token and accuracy on a "
		      "200-question evaluation set before and after.\n\n");
	strbuf_addstr(&sb,
		      "### 4. Reasoning\n"
		      "Caching removes repeated work, batching uses idle capacity and trimming "
		      "shortens every request; the three are independent, so each can be "
		      "measured on its own.\n");
	return take(&sb);
}

static char *chatter(const char *model, long turn)
{
	struct strbuf sb;

	strbuf_init(&sb, 512);
	strbuf_addf(&sb,
		    "This is %s speaking on turn %ld. I would start by measuring the current "
		    "latency at the 50th and 95th percentile over 1,000 requests. Then I would "
		    "change one thing at a time, for example caching repeated results, and "
		    "compare each change against that baseline. What limits do you see in your "
		    "current setup?",
		    model, turn);
	return take(&sb);
}

/* Whether needle appears in the content of some message. */
static int in_messages(const json_t *messages, const char *needle)
{
	json_t *msg;
	size_t i;

	json_array_foreach(messages, i, msg)
	{
		const char *c = json_string_value(json_object_get(msg, "content"));

		if (c && strstr(c, needle))
			return 1;
	}
	return 0;
}

/* The replies of the model's first case that matches the conversation, else its replies. */
static const json_t *scripted_replies(const json_t *m, const json_t *messages)
{
	json_t *c, *want, *w;
	size_t i, k;

	json_array_foreach(json_object_get(m, "cases"), i, c)
	{
		int all = 1;

		want = json_object_get(c, "contains");
		if (json_is_string(want))
			all = in_messages(messages, json_string_value(want));
		json_array_foreach(want, k, w)
		{
			if (!in_messages(messages, json_string_value(w)))
				all = 0;
		}
		if (all)
			return json_object_get(c, "replies");
	}
	return json_object_get(m, "replies");
}

const json_t *fake_request_schema(const json_t *body)
{
	const json_t *f = json_object_get(body, "format"), *rf;
	const char *type;

	/* "json" asks for any JSON: the string stands for an empty schema (an object) */
	if (json_is_object(f) || (json_is_string(f) && !strcmp(json_string_value(f), "json")))
		return f;
	if (json_is_object(f = json_object_get(body, "json_schema")))
		return f;
	rf = json_object_get(body, "response_format");
	type = json_string_value(json_object_get(rf, "type"));
	if (type && !strcmp(type, "json_schema"))
		return json_object_get(json_object_get(rf, "json_schema"), "schema");
	if (type && !strcmp(type, "json_object"))
		return json_object_get(rf, "schema");
	return NULL;
}

/* The first type a schema allows ("type" may be a list), or what its keys imply. */
static const char *schema_type(const json_t *schema)
{
	const json_t *t = json_object_get(schema, "type"), *x;
	size_t i;

	if (json_is_string(t))
		return json_string_value(t);
	json_array_foreach(t, i, x)
	{
		if (json_is_string(x) && strcmp(json_string_value(x), "null"))
			return json_string_value(x);
	}
	if (json_object_get(schema, "properties"))
		return "object";
	if (json_object_get(schema, "items"))
		return "array";
	return "object";
}

/* minimum + (length of the name mod the size of the range): deterministic, and different
 * for differently named fields, so a test can tell them apart. */
static double number_for(const json_t *schema, const char *name, int integer)
{
	const json_t *lo = json_object_get(schema, "minimum");
	const json_t *hi = json_object_get(schema, "maximum");
	double a = json_is_number(lo) ? json_number_value(lo) : 0;
	double b = json_is_number(hi) ? json_number_value(hi) : a + 10;
	long span = (long)(b - a) + (integer ? 1 : 0);

	if (span <= 0)
		return a;
	return a + (double)((long)strlen(name) % span);
}

json_t *fake_from_schema(const json_t *schema, const char *name)
{
	const char *type = schema_type(schema);
	const json_t *v = json_object_get(schema, "enum");
	json_t *props, *p; /* borrowed */
	const char *key;

	if (json_object_get(schema, "const"))
		return json_deep_copy(json_object_get(schema, "const"));
	if (json_array_size(v))
		return json_deep_copy(json_array_get(v, 0));
	if (!strcmp(type, "object")) {
		json_t *o = json_object();

		props = json_object_get(schema, "properties");
		json_object_foreach(props, key, p)
		{
			json_object_set_new(o, key, fake_from_schema(p, key)); /* stolen */
		}
		return o;
	}
	if (!strcmp(type, "array"))
		return json_pack("[o]", fake_from_schema(json_object_get(schema, "items"), name));
	if (!strcmp(type, "integer"))
		return json_integer((json_int_t)number_for(schema, name, 1));
	if (!strcmp(type, "number"))
		return json_real(number_for(schema, name, 0));
	if (!strcmp(type, "boolean"))
		return json_true();
	if (!strcmp(type, "null"))
		return json_null();
	{
		const json_t *max = json_object_get(schema, "maxLength");
		char text[300];
		size_t n;

		n = (size_t)snprintf(
		    text, sizeof(text),
		    "The fake judge read the transcript and wrote this line for %s.", name);
		if (json_is_integer(max) && (size_t)json_integer_value(max) < n)
			text[json_integer_value(max)] = '\0';
		return json_string(text);
	}
}

char *fake_reply_text(const json_t *script, const char *model, const json_t *messages,
		      const json_t *schema)
{
	json_t *m = fake_script_model(script, model); /* borrowed */
	const json_t *replies = scripted_replies(m, messages);
	long k = fake_count_role(messages, "assistant");
	size_t n = json_array_size(replies);

	if (n > 0) {
		size_t idx = (size_t)k < n ? (size_t)k : n - 1;

		return xstrdup(json_string_value(json_array_get(replies, idx)));
	}
	if (schema && !strncmp(model, "judge-garbage", 13))
		return xstrdup(
		    "I think the interview went well, maybe an 8 out of 10? {grade: good");
	if (schema && !strncmp(model, "judge", 5)) {
		json_t *v = fake_from_schema(schema, "reply");
		char *s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);

		json_decref(v);
		return s;
	}
	if (strcasestr(last_user(messages), "concrete suggestions"))
		return analysis(model, k + 1);
	return chatter(model, k + 1);
}

void fake_render_prompt(const json_t *messages, struct strbuf *out)
{
	json_t *msg;
	size_t i;

	json_array_foreach(messages, i, msg)
	{
		const char *role = json_string_value(json_object_get(msg, "role"));
		json_t *content = json_object_get(msg, "content"); /* borrowed */

		strbuf_addf(out, "<|im_start|>%s\n", role ? role : "user");
		if (json_is_string(content)) {
			strbuf_add(out, json_string_value(content), json_string_length(content));
		} else if (content && !json_is_null(content)) {
			char *s = json_dumps(content, JSON_COMPACT);

			if (s)
				strbuf_addstr(out, s);
			free(s);
		}
		strbuf_addstr(out, "<|im_end|>\n");
	}
	strbuf_addstr(out, "<|im_start|>assistant\n");
}

long fake_count_tokens(size_t len)
{
	return (long)((len + FAKE_TOKEN_BYTES - 1) / FAKE_TOKEN_BYTES);
}

size_t fake_split_pieces(const char *s, size_t len, size_t **ends)
{
	size_t n = 0, pos = 0;

	*ends = xmalloc(sizeof(**ends) * (len / FAKE_TOKEN_BYTES + 1));
	while (pos < len) {
		size_t end = pos + FAKE_TOKEN_BYTES;

		if (end > len)
			end = len;
		while (end < len && ((unsigned char)s[end] & 0xC0) == 0x80)
			end++;
		(*ends)[n++] = end;
		pos = end;
	}
	return n;
}
