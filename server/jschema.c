/*
 * jschema.c - the JSON Schema subset of structured output. See jschema.h.
 */
#include "server/jschema.h"

#include <math.h>
#include <regex.h>
#include <stdio.h>
#include <string.h>

#include "server/checks.h"
#include "server/ferr.h"

static const char *const type_names[] = {"object",  "array",   "string", "number",
					 "integer", "boolean", "null",	 NULL};

static int known_type(const char *s)
{
	int i;

	for (i = 0; type_names[i]; i++)
		if (strcmp(s, type_names[i]) == 0)
			return 1;
	return 0;
}

static int is_count(json_t *v)
{
	return json_is_integer(v) && json_integer_value(v) >= 0;
}

static int check_at(json_t *schema, const char *path, int depth, json_t *errs);

static int check_type(json_t *v, const char *path, json_t *errs)
{
	json_t *t; /* borrowed */
	size_t i, k;

	if (json_is_string(v)) {
		if (known_type(json_string_value(v)))
			return 0;
	} else if (json_is_array(v) && json_array_size(v) > 0) {
		json_array_foreach(v, i, t)
		{
			if (!json_is_string(t) || !known_type(json_string_value(t)))
				break;
			for (k = 0; k < i; k++)
				if (json_equal(t, json_array_get(v, k)))
					break;
			if (k < i)
				break;
		}
		if (i == json_array_size(v))
			return 0;
	}
	ferr_add(errs, path, ".type",
		 "must be one of object, array, string, number, integer, boolean, null, or an "
		 "array of them without repeats");
	return -1;
}

static int check_pattern(json_t *v, const char *path, json_t *errs)
{
	regex_t re;
	char why[160];

	if (!json_is_string(v) || strlen(json_string_value(v)) != json_string_length(v)) {
		ferr_add(errs, path, ".pattern", "must be a string");
		return -1;
	}
	if (checks_regcomp(&re, json_string_value(v), why, sizeof(why)) < 0) {
		ferr_add(errs, path, ".pattern",
			 "not a usable POSIX extended regular expression: %s", why);
		return -1;
	}
	regfree(&re);
	return 0;
}

static int check_keyword(const char *key, json_t *v, const char *path, int depth, json_t *errs)
{
	char sub[256];
	const char *pk;
	json_t *pv; /* borrowed */
	size_t i;
	int bad = 0;

	if (strcmp(key, "type") == 0)
		return check_type(v, path, errs);
	if (strcmp(key, "properties") == 0) {
		if (!json_is_object(v)) {
			ferr_add(errs, path, ".properties", "must be an object of schemas");
			return -1;
		}
		json_object_foreach(v, pk, pv)
		{
			snprintf(sub, sizeof(sub), "%s.properties.%s", path, pk);
			bad |= check_at(pv, sub, depth + 1, errs);
		}
		return bad ? -1 : 0;
	}
	if (strcmp(key, "required") == 0) {
		int ok = json_is_array(v);
		if (ok)
			json_array_foreach(v, i, pv) if (!json_is_string(pv)) ok = 0;
		if (!ok)
			ferr_add(errs, path, ".required", "must be an array of property names");
		return ok ? 0 : -1;
	}
	if (strcmp(key, "items") == 0) {
		snprintf(sub, sizeof(sub), "%s.items", path);
		return check_at(v, sub, depth + 1, errs);
	}
	if (strcmp(key, "enum") == 0) {
		if (!json_is_array(v) || json_array_size(v) == 0) {
			ferr_add(errs, path, ".enum", "must be a non-empty array of values");
			return -1;
		}
		return 0;
	}
	if (strcmp(key, "minimum") == 0 || strcmp(key, "maximum") == 0) {
		if (!json_is_number(v)) {
			ferr_add(errs, path, key[1] == 'i' ? ".minimum" : ".maximum",
				 "must be a number");
			return -1;
		}
		return 0;
	}
	if (strcmp(key, "minLength") == 0 || strcmp(key, "maxLength") == 0) {
		if (!is_count(v)) {
			ferr_add(errs, path, key[1] == 'i' ? ".minLength" : ".maxLength",
				 "must be an integer of 0 or more");
			return -1;
		}
		return 0;
	}
	if (strcmp(key, "pattern") == 0)
		return check_pattern(v, path, errs);
	if (strcmp(key, "additionalProperties") == 0) {
		if (json_is_boolean(v))
			return 0;
		snprintf(sub, sizeof(sub), "%s.additionalProperties", path);
		return check_at(v, sub, depth + 1, errs);
	}
	if (strcmp(key, "title") == 0 || strcmp(key, "description") == 0) {
		if (!json_is_string(v)) {
			ferr_add(errs, path, key[0] == 't' ? ".title" : ".description",
				 "must be a string");
			return -1;
		}
		return 0;
	}
	ferr_add(errs, path, "",
		 "keyword '%.64s' is not supported; a schema may use type, properties, required, "
		 "items, enum, minimum, maximum, minLength, maxLength, pattern, "
		 "additionalProperties, title, description",
		 key);
	return -1;
}

static int check_at(json_t *schema, const char *path, int depth, json_t *errs)
{
	const char *key;
	json_t *v; /* borrowed */
	int bad = 0;

	if (depth > JSCHEMA_MAX_DEPTH) {
		ferr_add(errs, path, "", "schemas nest deeper than %d levels", JSCHEMA_MAX_DEPTH);
		return -1;
	}
	if (!json_is_object(schema)) {
		ferr_add(errs, path, "", "must be a schema (a JSON object)");
		return -1;
	}
	json_object_foreach(schema, key, v) bad |= check_keyword(key, v, path, depth, errs);
	return bad ? -1 : 0;
}

int jschema_check(json_t *schema, const char *prefix, json_t *errs)
{
	return check_at(schema, prefix, 0, errs);
}

/* Matching. */

static int is_type(json_t *v, const char *t)
{
	switch (t[0]) {
	case 'o':
		return json_is_object(v);
	case 'a':
		return json_is_array(v);
	case 's':
		return json_is_string(v);
	case 'n':
		return t[2] == 'm' ? json_is_number(v) : json_is_null(v);
	case 'i':
		return json_is_integer(v) ||
		       (json_is_real(v) && json_real_value(v) == floor(json_real_value(v)));
	case 'b':
		return json_is_boolean(v);
	}
	return 0;
}

static int type_ok(json_t *t, json_t *v)
{
	json_t *e; /* borrowed */
	size_t i;

	if (json_is_string(t))
		return is_type(v, json_string_value(t));
	json_array_foreach(t, i, e) if (is_type(v, json_string_value(e))) return 1;
	return 0;
}

/* Characters (code points) of a UTF-8 string, as minLength/maxLength count them. */
static size_t chars(json_t *s)
{
	const unsigned char *p = (const unsigned char *)json_string_value(s);
	size_t i, n = 0, len = json_string_length(s);

	for (i = 0; i < len; i++)
		n += (p[i] & 0xC0) != 0x80;
	return n;
}

static int mismatch(char *why, size_t size, const char *at, const char *fmt, const char *detail)
{
	char msg[200];

	snprintf(msg, sizeof(msg), fmt, detail);
	snprintf(why, size, "%s: %s", at, msg);
	return 0;
}

static int match_at(json_t *s, json_t *v, const char *at, char *why, size_t size)
{
	json_t *k, *props, *addl, *sub; /* borrowed */
	const char *key;
	char path[256], num[64];
	size_t i;

	if ((k = json_object_get(s, "type")) && !type_ok(k, v))
		return mismatch(why, size, at, "is not of type %s",
				json_is_string(k) ? json_string_value(k) : "listed");
	if ((k = json_object_get(s, "enum"))) {
		json_array_foreach(k, i, sub) if (json_equal(sub, v)) break;
		if (i == json_array_size(k))
			return mismatch(why, size, at, "is not one of the enum values%s", "");
	}
	if (json_is_number(v)) {
		double x = json_number_value(v);
		if ((k = json_object_get(s, "minimum")) && x < json_number_value(k)) {
			snprintf(num, sizeof(num), "%g", json_number_value(k));
			return mismatch(why, size, at, "below the minimum %s", num);
		}
		if ((k = json_object_get(s, "maximum")) && x > json_number_value(k)) {
			snprintf(num, sizeof(num), "%g", json_number_value(k));
			return mismatch(why, size, at, "above the maximum %s", num);
		}
	}
	if (json_is_string(v)) {
		if ((k = json_object_get(s, "minLength")) &&
		    chars(v) < (size_t)json_integer_value(k)) {
			snprintf(num, sizeof(num), "%lld", (long long)json_integer_value(k));
			return mismatch(why, size, at, "shorter than %s characters", num);
		}
		if ((k = json_object_get(s, "maxLength")) &&
		    chars(v) > (size_t)json_integer_value(k)) {
			snprintf(num, sizeof(num), "%lld", (long long)json_integer_value(k));
			return mismatch(why, size, at, "longer than %s characters", num);
		}
		if ((k = json_object_get(s, "pattern"))) {
			regex_t re;
			int hit;
			char err[160];
			if (checks_regcomp(&re, json_string_value(k), err, sizeof(err)) < 0)
				return mismatch(why, size, at, "pattern does not compile%s", "");
			hit = regexec(&re, json_string_value(v), 0, NULL, 0) == 0;
			regfree(&re);
			if (!hit)
				return mismatch(why, size, at, "does not match the pattern %s",
						json_string_value(k));
		}
	}
	if (json_is_object(v)) {
		props = json_object_get(s, "properties");
		if ((k = json_object_get(s, "required")))
			json_array_foreach(k, i, sub)
			{
				if (!json_object_get(v, json_string_value(sub)))
					return mismatch(why, size, at,
							"lacks the required property '%s'",
							json_string_value(sub));
			}
		addl = json_object_get(s, "additionalProperties");
		json_object_foreach(v, key, sub)
		{
			json_t *ps = props ? json_object_get(props, key) : NULL; /* borrowed */
			snprintf(path, sizeof(path), "%s.%s", at, key);
			if (ps) {
				if (!match_at(ps, sub, path, why, size))
					return 0;
			} else if (json_is_false(addl)) {
				return mismatch(why, size, at,
						"has the property '%s' that the "
						"schema does not allow",
						key);
			} else if (json_is_object(addl) && !match_at(addl, sub, path, why, size)) {
				return 0;
			}
		}
	}
	if (json_is_array(v) && (k = json_object_get(s, "items")))
		json_array_foreach(v, i, sub)
		{
			snprintf(path, sizeof(path), "%s[%zu]", at, i);
			if (!match_at(k, sub, path, why, size))
				return 0;
		}
	return 1;
}

int jschema_match(json_t *schema, json_t *instance, char *why, size_t size)
{
	if (size)
		why[0] = '\0';
	return match_at(schema, instance, "$", why, size);
}
