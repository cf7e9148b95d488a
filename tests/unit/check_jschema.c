/*
 * check_jschema.c - the JSON Schema subset of the json_schema check: every
 * keyword of the subset accepts and refuses what it should, and a schema
 * that uses anything else is refused with the keyword's path, never
 * accepted to pass silently.
 */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "server/jschema.h"

static json_t *load(const char *text)
{
	json_error_t err;
	json_t *j = json_loads(text, JSON_DECODE_ANY, &err);

	ck_assert_msg(j != NULL, "bad test JSON %s: %s", text, err.text);
	return j;
}

/* The schema is usable; returns it. */
static json_t *schema_ok(const char *text)
{
	json_t *s = load(text), *errs = json_array();

	ck_assert_msg(jschema_check(s, "s", errs) == 0, "refused %s: %s", text,
		      json_dumps(errs, 0));
	ck_assert_int_eq(json_array_size(errs), 0);
	json_decref(errs);
	return s;
}

/* The schema is refused, with an error at field whose message holds what. */
static void schema_refused(const char *text, const char *field, const char *what)
{
	json_t *s = load(text), *errs = json_array(), *e;
	size_t i;
	int found = 0;

	ck_assert_msg(jschema_check(s, "s", errs) < 0, "accepted %s", text);
	json_array_foreach(errs, i, e)
	{
		if (strcmp(json_string_value(json_object_get(e, "field")), field) == 0 &&
		    strstr(json_string_value(json_object_get(e, "message")), what))
			found = 1;
	}
	ck_assert_msg(found, "no error at %s saying '%s' for %s: %s", field, what, text,
		      json_dumps(errs, 0));
	json_decref(errs);
	json_decref(s);
}

static void matches(const char *schema, const char *doc)
{
	json_t *s = schema_ok(schema), *d = load(doc);
	char why[200];

	ck_assert_msg(jschema_match(s, d, why, sizeof(why)) == 1, "%s does not match %s: %s", doc,
		      schema, why);
	json_decref(s);
	json_decref(d);
}

static void mismatches(const char *schema, const char *doc, const char *why_has)
{
	json_t *s = schema_ok(schema), *d = load(doc);
	char why[200];

	ck_assert_msg(jschema_match(s, d, why, sizeof(why)) == 0, "%s matches %s", doc, schema);
	ck_assert_msg(strstr(why, why_has), "'%s' does not say '%s'", why, why_has);
	json_decref(s);
	json_decref(d);
}

START_TEST(test_type)
{
	matches("{\"type\":\"object\"}", "{}");
	matches("{\"type\":\"array\"}", "[1]");
	matches("{\"type\":\"string\"}", "\"a\"");
	matches("{\"type\":\"number\"}", "1.5");
	matches("{\"type\":\"number\"}", "2");
	matches("{\"type\":\"integer\"}", "2");
	matches("{\"type\":\"integer\"}", "2.0");
	matches("{\"type\":\"boolean\"}", "false");
	matches("{\"type\":\"null\"}", "null");
	matches("{\"type\":[\"string\",\"null\"]}", "null");
	mismatches("{\"type\":\"integer\"}", "2.5", "$: is not of type integer");
	mismatches("{\"type\":\"object\"}", "[]", "not of type object");
	mismatches("{\"type\":\"string\"}", "1", "not of type string");
	mismatches("{\"type\":\"boolean\"}", "0", "not of type boolean");
	mismatches("{\"type\":[\"string\",\"null\"]}", "1", "not of type");
	schema_refused("{\"type\":\"text\"}", "s.type", "must be one of");
	schema_refused("{\"type\":[]}", "s.type", "must be one of");
	schema_refused("{\"type\":[\"string\",\"string\"]}", "s.type", "without repeats");
	schema_refused("{\"type\":3}", "s.type", "must be one of");
}
END_TEST

START_TEST(test_properties_required_additional)
{
	const char *s = "{\"type\":\"object\",\"properties\":{\"name\":{\"type\":\"string\"},"
			"\"age\":{\"type\":\"integer\",\"minimum\":0}},\"required\":[\"name\"],"
			"\"additionalProperties\":false}";

	matches(s, "{\"name\":\"x\"}");
	matches(s, "{\"name\":\"x\",\"age\":3}");
	mismatches(s, "{\"age\":3}", "lacks the required property 'name'");
	mismatches(s, "{\"name\":\"x\",\"age\":-1}", "$.age: below the minimum 0");
	mismatches(s, "{\"name\":1}", "$.name: is not of type string");
	mismatches(s, "{\"name\":\"x\",\"extra\":1}", "'extra' that the schema does not allow");
	/* additionalProperties as a schema applies to the keys not in properties */
	matches("{\"properties\":{\"a\":{}},\"additionalProperties\":{\"type\":\"number\"}}",
		"{\"a\":\"s\",\"b\":1}");
	mismatches("{\"properties\":{\"a\":{}},\"additionalProperties\":{\"type\":\"number\"}}",
		   "{\"a\":\"s\",\"b\":\"t\"}", "$.b: is not of type number");
	/* without additionalProperties, other keys are allowed */
	matches("{\"properties\":{\"a\":{}}}", "{\"z\":1}");
	/* keywords of one type do not apply to another */
	matches("{\"required\":[\"a\"],\"minLength\":3}", "5");
	schema_refused("{\"properties\":[]}", "s.properties", "object of schemas");
	schema_refused("{\"properties\":{\"a\":{\"type\":\"x\"}}}", "s.properties.a.type",
		       "must be one of");
	schema_refused("{\"required\":\"a\"}", "s.required", "array of property names");
	schema_refused("{\"required\":[1]}", "s.required", "array of property names");
	schema_refused("{\"additionalProperties\":1}", "s.additionalProperties", "schema");
	schema_refused("{\"additionalProperties\":{\"format\":\"email\"}}",
		       "s.additionalProperties", "'format' is not supported");
}
END_TEST

START_TEST(test_items_enum)
{
	const char *s =
	    "{\"type\":\"array\",\"items\":{\"type\":\"string\",\"enum\":[\"a\",\"b\"]}}";

	matches(s, "[]");
	matches(s, "[\"a\",\"b\",\"a\"]");
	mismatches(s, "[\"a\",\"c\"]", "$[1]: is not one of the enum values");
	mismatches(s, "[\"a\",1]", "$[1]: is not of type string");
	matches("{\"enum\":[1,null,{\"k\":[2]}]}", "{\"k\":[2]}");
	mismatches("{\"enum\":[1,null]}", "2", "enum");
	schema_refused("{\"items\":[{\"type\":\"string\"}]}", "s.items", "schema (a JSON object)");
	schema_refused("{\"enum\":[]}", "s.enum", "non-empty array");
	schema_refused("{\"enum\":\"a\"}", "s.enum", "non-empty array");
}
END_TEST

START_TEST(test_numbers_and_strings)
{
	matches("{\"minimum\":1.5,\"maximum\":3}", "1.5");
	matches("{\"minimum\":1.5,\"maximum\":3}", "3");
	mismatches("{\"minimum\":1.5}", "1.4", "below the minimum 1.5");
	mismatches("{\"maximum\":3}", "3.01", "above the maximum 3");
	matches("{\"minLength\":2,\"maxLength\":3}", "\"ab\"");
	/* lengths count characters, not bytes: three two-byte letters */
	matches("{\"maxLength\":3}", "\"\xc3\xa9\xc3\xa9\xc3\xa9\"");
	mismatches("{\"minLength\":2}", "\"a\"", "shorter than 2 characters");
	mismatches("{\"maxLength\":3}", "\"abcd\"", "longer than 3 characters");
	matches("{\"pattern\":\"^[A-Z]{2}-[0-9]+$\"}", "\"AB-12\"");
	/* a pattern matches anywhere unless anchored, as in JSON Schema */
	matches("{\"pattern\":\"[0-9]\"}", "\"abc1\"");
	mismatches("{\"pattern\":\"^[A-Z]{2}-[0-9]+$\"}", "\"ab-12\"",
		   "does not match the pattern");
	schema_refused("{\"minimum\":\"1\"}", "s.minimum", "must be a number");
	schema_refused("{\"maximum\":null}", "s.maximum", "must be a number");
	schema_refused("{\"minLength\":-1}", "s.minLength", "0 or more");
	schema_refused("{\"maxLength\":1.5}", "s.maxLength", "0 or more");
	schema_refused("{\"pattern\":\"a(b\"}", "s.pattern", "POSIX extended");
	schema_refused("{\"pattern\":\"(x+)*+\"}", "s.pattern", "may not follow another");
	schema_refused("{\"pattern\":5}", "s.pattern", "must be a string");
}
END_TEST

START_TEST(test_refuses_what_it_does_not_honour)
{
	static const char *const others[] = {
	    "{\"format\":\"email\"}",
	    "{\"oneOf\":[{}]}",
	    "{\"anyOf\":[{}]}",
	    "{\"allOf\":[{}]}",
	    "{\"$ref\":\"#/x\"}",
	    "{\"const\":1}",
	    "{\"exclusiveMinimum\":0}",
	    "{\"multipleOf\":2}",
	    "{\"minItems\":1}",
	    "{\"uniqueItems\":true}",
	    "{\"not\":{}}",
	    "{\"patternProperties\":{}}",
	    "{\"if\":{}}",
	    "{\"$defs\":{}}",
	    "{\"prefixItems\":[]}",
	};
	size_t i;

	for (i = 0; i < sizeof(others) / sizeof(others[0]); i++)
		schema_refused(others[i], "s", "is not supported");
	/* deep inside, the path says where */
	schema_refused("{\"properties\":{\"a\":{\"items\":{\"minItems\":1}}}}",
		       "s.properties.a.items", "'minItems' is not supported");
	schema_refused("[]", "s", "must be a schema");
	/* annotations constrain nothing and are allowed */
	json_decref(schema_ok("{\"title\":\"t\",\"description\":\"d\",\"type\":\"string\"}"));
	schema_refused("{\"title\":1}", "s.title", "must be a string");
}
END_TEST

START_TEST(test_depth_is_bounded)
{
	char buf[4096], path[512] = "s";
	size_t n = 0;
	int i;

	for (i = 0; i <= JSCHEMA_MAX_DEPTH; i++)
		strcat(path, ".items");

	for (i = 0; i < 40; i++)
		n += (size_t)snprintf(buf + n, sizeof(buf) - n, "{\"items\":");
	n += (size_t)snprintf(buf + n, sizeof(buf) - n, "{}");
	for (i = 0; i < 40; i++)
		buf[n++] = '}';
	buf[n] = '\0';
	schema_refused(buf, path, "deeper than");
}
END_TEST

int main(void)
{
	Suite *s = suite_create("jschema");
	TCase *tc = tcase_create("subset");
	SRunner *sr;
	int failed;

	tcase_add_test(tc, test_type);
	tcase_add_test(tc, test_properties_required_additional);
	tcase_add_test(tc, test_items_enum);
	tcase_add_test(tc, test_numbers_and_strings);
	tcase_add_test(tc, test_refuses_what_it_does_not_honour);
	tcase_add_test(tc, test_depth_is_bounded);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
