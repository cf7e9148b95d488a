/*
 * check_extract.c - what counts as a suggestion in an interviewer's analysis.
 *
 * The expected titles were written by reading each origin conversation's
 * closing turn by hand (harness_labelled, tests/harness.c; check_origin
 * holds the daemon to the same). Fixtures: $PARLEY_SHARED/fixtures/
 * origin-phase2, else ../shared/fixtures/origin-phase2 from the repo root.
 */
#include <check.h>
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db/util.h"
#include "server/extract.h"
#include "server/extract_model.h"
#include "server/outcome.h"
#include "tests/harness.h"

static json_t *load_fixture(const char *name)
{
	char rel[256], path[1024];
	json_error_t err;
	json_t *j;

	snprintf(rel, sizeof(rel), "origin-phase2/%s.json", name);
	harness_fixture_path(rel, path, sizeof(path));
	j = json_load_file(path, 0, &err);
	ck_assert_msg(j != NULL, "cannot load '%s': %s", path, err.text);
	return j;
}

/* The interviewer's last turn of a fixture; borrowed from j. */
static const char *last_interviewer_text(const json_t *j, int *turn)
{
	const json_t *conv = json_object_get(j, "conversation");
	size_t i = json_array_size(conv);

	while (i-- > 0) {
		const json_t *t = json_array_get(conv, i);

		if (!strcmp(json_string_value(json_object_get(t, "speaker")), "interviewer")) {
			*turn = (int)i + 1;
			return json_string_value(json_object_get(t, "message"));
		}
	}
	ck_abort_msg("no interviewer turn");
	return NULL;
}

static void extract_text(enum extract_method m, const char *text, struct optim_list *l)
{
	optim_list_init(l);
	extract_optimizations(m, text, 3, l);
}

START_TEST(test_rubric_fixture)
{
	const struct harness_labelled *e = &harness_labelled[_i];
	json_t *j = load_fixture(e->name);
	struct optim_list l;
	size_t i, n = harness_labelled_count(e), tested = 0;
	int turn = 0;
	const char *text = last_interviewer_text(j, &turn);

	optim_list_init(&l);
	extract_optimizations(EXTRACT_RUBRIC, text, turn, &l);
	for (i = 0; i < l.n && i < n; i++)
		ck_assert_msg(!strcmp(l.v[i].title, e->titles[i]),
			      "%s item %zu: want '%s' got '%s'", e->name, i + 1, e->titles[i],
			      l.v[i].title);
	ck_assert_msg(l.n == n, "%s: want %zu suggestions, got %zu", e->name, n, l.n);
	for (i = 0; i < l.n; i++) {
		const struct optim *o = &l.v[i];

		ck_assert_int_eq(o->turn, turn);
		ck_assert_ptr_nonnull(o->detail);
		ck_assert_ptr_nonnull(o->suggestion);
		/* the whole item, nested lines included, on one line */
		ck_assert_ptr_null(strchr(o->suggestion, '\n'));
		ck_assert_ptr_null(strstr(o->title, "**"));
		if (o->test) {
			ck_assert_msg(o->test[0] != '\0', "%s: empty test", e->name);
			tested++;
		}
		/* no heading that names the format is ever a suggestion */
		ck_assert_msg(!strstr(o->suggestion, "#test_this") &&
				  !strstr(o->suggestion, "Test_This") &&
				  !strstr(o->suggestion, "Test This"),
			      "%s: heading extracted: %s", e->name, o->suggestion);
		ck_assert_msg(strncmp(o->title, "Concrete Suggestions", 20) != 0, "%s: heading %s",
			      e->name, o->title);
	}
	ck_assert_msg(tested == e->ntested, "%s: want %zu items with a test, got %zu", e->name,
		      e->ntested, tested);
	optim_list_release(&l);
	json_decref(j);
}
END_TEST

START_TEST(test_rubric_fixture_details)
{
	json_t *j = load_fixture("response_speed_optimization_gemma3n_latest");
	int turn;
	struct optim_list l;

	extract_text(EXTRACT_RUBRIC, last_interviewer_text(j, &turn), &l);
	ck_assert_uint_eq(l.n, 6);
	/* "*Test: ...*" at the end of the item's line */
	ck_assert_str_eq(l.v[0].test,
			 "Replace the retrieval process with a simplified knowledge graph lookup, "
			 "measuring the time reduction.");
	ck_assert_str_eq(l.v[4].detail, "While basic, streamline the formatting process. Consider "
					"just generating a plain text response instead of complex "
					"formatting.");
	ck_assert_ptr_nonnull(
	    strstr(l.v[0].suggestion, "**Implement a Knowledge Graph Interface:**"));
	optim_list_release(&l);
	json_decref(j);

	/* "**Test:**" on nested lines: both tests, in order, and the nested text in suggestion */
	j = load_fixture("job_extraction_improvement_dolphin3_8b");
	extract_text(EXTRACT_RUBRIC, last_interviewer_text(j, &turn), &l);
	ck_assert_uint_eq(l.n, 4);
	ck_assert_ptr_nonnull(strstr(l.v[0].test, "Implement a rule-based approach"));
	ck_assert_ptr_nonnull(strstr(l.v[0].test, "Contextual Relevance Score"));
	ck_assert(strstr(l.v[0].test, "Implement a rule-based") <
		  strstr(l.v[0].test, "Contextual Relevance"));
	ck_assert_ptr_nonnull(strstr(l.v[3].suggestion, "Add a \"flag\" or \"uncertainty\" field"));
	optim_list_release(&l);
	json_decref(j);

	/* "**Testing:**" counts as a test; "Action:" and "Rationale:" are detail */
	j = load_fixture("prompt_engineering_breakthrough_dolphin3_8b");
	extract_text(EXTRACT_RUBRIC, last_interviewer_text(j, &turn), &l);
	ck_assert_uint_eq(l.n, 3);
	ck_assert_str_eq(
	    l.v[1].test,
	    "Evaluate the prompts for consistency across models, noting discrepancies.");
	ck_assert_ptr_nonnull(
	    strstr(l.v[1].detail, "Rationale: Identifies model-specific nuances."));
	ck_assert_ptr_null(l.v[2].test);
	optim_list_release(&l);
	json_decref(j);

	/* "A/B Testing:" names a technique; it is not a test marker */
	j = load_fixture("response_speed_optimization_dolphin3_8b");
	extract_text(EXTRACT_RUBRIC, last_interviewer_text(j, &turn), &l);
	ck_assert_ptr_null(l.v[4].test);
	ck_assert_ptr_nonnull(strstr(l.v[4].detail, "A/B Testing: Run multiple versions"));
	optim_list_release(&l);
	json_decref(j);
}
END_TEST

START_TEST(test_origin_fixture)
{
	json_t *j = load_fixture(harness_labelled[_i].name);
	const json_t *conv = json_object_get(j, "conversation");
	const json_t *want = json_object_get(j, "optimizations_discovered");
	const json_t *t;
	struct optim_list l;
	size_t i;

	optim_list_init(&l);
	json_array_foreach(conv, i, t)
	{
		if (!strcmp(json_string_value(json_object_get(t, "speaker")), "interviewer"))
			extract_optimizations(EXTRACT_ORIGIN,
					      json_string_value(json_object_get(t, "message")),
					      (int)i + 1, &l);
	}
	ck_assert_uint_eq(l.n, json_array_size(want));
	ck_assert_int_eq((json_int_t)l.n,
			 json_integer_value(json_object_get(json_object_get(j, "success_metrics"),
							    "optimizations_found")));
	for (i = 0; i < l.n; i++) {
		const char *s =
		    json_string_value(json_object_get(json_array_get(want, i), "suggestion"));

		ck_assert_str_eq(l.v[i].suggestion, s);
		ck_assert_str_eq(l.v[i].title, s);
		ck_assert_ptr_null(l.v[i].test);
	}
	optim_list_release(&l);
	json_decref(j);
}
END_TEST

START_TEST(test_origin_is_case_sensitive)
{
	struct optim_list l;

	extract_text(EXTRACT_ORIGIN,
		     "  **3. Concrete Suggestions #test_this**  \r\n* Use a cache #TEST_THIS\n"
		     "* Test_This: batch\n- use #test_this: measure\n",
		     &l);
	ck_assert_uint_eq(l.n, 2);
	ck_assert_str_eq(l.v[0].suggestion, "**3. Concrete Suggestions #test_this**");
	ck_assert_str_eq(l.v[1].suggestion, "- use #test_this: measure");
	optim_list_release(&l);
}
END_TEST

START_TEST(test_heading_forms)
{
	static const char *const texts[] = {
	    "## 1. Analysis\nok\n\n### 3. Concrete Suggestions\n\n- **Cache prompts:** reuse the "
	    "prefix.\n- **Batch requests:** group them.\n\n### 4. Reasoning\n- **Why:** faster\n",
	    "1. **Analysis**\n\nok\n\n3. **Concrete Suggestions (#test_this)**\n\n"
	    "* Cache prompts. Reuse the prefix.\n* Batch requests. Group them.\n\n"
	    "4. **Reasoning**\n\n* Faster.\n",
	    "**Concrete Suggestions:**\n\n1. **Cache prompts** - reuse the prefix\n"
	    "2. **Batch requests** - group them\n\n**Reasoning:**\n\n1. **Faster** - less work\n",
	};
	size_t k;

	for (k = 0; k < ARRAY_SIZE(texts); k++) {
		struct optim_list l;

		extract_text(EXTRACT_RUBRIC, texts[k], &l);
		ck_assert_msg(l.n == 2, "text %zu: %zu items", k, l.n);
		ck_assert_str_eq(l.v[0].title, "Cache prompts");
		ck_assert_str_eq(l.v[1].title, "Batch requests");
		optim_list_release(&l);
	}
}
END_TEST

START_TEST(test_format_headings_never_extracted)
{
	static const char *const text =
	    "Here is my analysis using the #test_this format:\n\n"
	    "**1. Analysis**\n\n* **Using #test_this format:**\n* We use the Test_This section "
	    "below.\n\n"
	    "**2. Opportunities**\n\n**Test This:**\n\n* **Caching:** a question, not marked.\n\n"
	    "**3. Concrete Suggestions Using #test_this Format:**\n\n"
	    "* **Concrete Suggestions Using #test_this Format:**\n"
	    "    * **Test:** Enable the KV cache and compare TTFT.\n"
	    "* **Reasoning for Why These Optimizations Will Help:** they are cheap.\n\n"
	    "**4. Reasoning**\n\n* Cheap.\n";
	struct optim_list l;

	extract_text(EXTRACT_RUBRIC, text, &l);
	ck_assert_uint_eq(l.n, 1);
	ck_assert_str_eq(l.v[0].title, "Enable the KV cache and compare TTFT");
	ck_assert_str_eq(l.v[0].test, "Enable the KV cache and compare TTFT.");
	optim_list_release(&l);
}
END_TEST

START_TEST(test_test_this_variants)
{
	static const char *const marked =
	    "- **Enable batching** #TEST_THIS: measure throughput at 4 parallel requests\n"
	    "- A plain opportunity without a marker.\n"
	    "- Test this: drop the context to 2k tokens and compare latency\n"
	    "* **Stream tokens.** test-this: time to first token under 1 s\n\n"
	    "#test_this: pin the model in memory; compare load_ms\n\n";
	struct strbuf text;
	struct optim_list l;

	/* without a concrete-suggestions part, the marked items are the suggestions */
	strbuf_init(&text, 0);
	strbuf_addf(&text, "**1. Analysis**\n\nFine.\n\n%s**4. Reasoning**\n\n- Faster.\n", marked);
	extract_text(EXTRACT_RUBRIC, text.buf, &l);
	ck_assert_uint_eq(l.n, 4);
	ck_assert_str_eq(l.v[0].title, "Enable batching");
	ck_assert_str_eq(l.v[0].test, "measure throughput at 4 parallel requests");
	ck_assert_str_eq(l.v[1].title, "drop the context to 2k tokens and compare latency");
	ck_assert_str_eq(l.v[2].title, "Stream tokens");
	ck_assert_str_eq(l.v[2].test, "time to first token under 1 s");
	ck_assert_str_eq(l.v[3].title, "pin the model in memory; compare load_ms");
	optim_list_release(&l);

	/* with one, marked items of the opportunities part are not suggestions */
	strbuf_reset(&text);
	strbuf_addf(
	    &text,
	    "**1. Analysis**\n\nFine.\n\n**2. Opportunities**\n\n%s"
	    "**3. Concrete Suggestions – Test_This Format**\n\n"
	    "* **Cache the system prompt:** reuse the KV cache. Test_This: TTFT on turn 3.\n"
	    "* **Shorter context** — Test This: compare 2k vs 8k context.\n\n"
	    "**4. Reasoning**\n\n- Faster.\n",
	    marked);
	extract_text(EXTRACT_RUBRIC, text.buf, &l);
	ck_assert_uint_eq(l.n, 2);
	ck_assert_str_eq(l.v[0].title, "Cache the system prompt");
	ck_assert_str_eq(l.v[0].detail, "reuse the KV cache.");
	ck_assert_str_eq(l.v[0].test, "TTFT on turn 3.");
	ck_assert_str_eq(l.v[1].title, "Shorter context");
	ck_assert_str_eq(l.v[1].test, "compare 2k vs 8k context.");
	optim_list_release(&l);
	strbuf_release(&text);
}
END_TEST

START_TEST(test_nested_bullets_belong_to_parent)
{
	static const char *const text = "**3. Concrete Suggestions**\n\n"
					"1. **Speculative decoding:**\n"
					"   - Use a 0.5B draft model.\n"
					"     * Keep the same tokenizer.\n"
					"   - *Test:* tokens/s before and after.\n"
					"\n"
					"   Continued paragraph of the first item.\n"
					"2. **Prompt cache**\n"
					"\t- Test: TTFT of turn 3 vs turn 1\n"
					"\n**4. Reasoning**\n";
	struct optim_list l;

	extract_text(EXTRACT_RUBRIC, text, &l);
	ck_assert_uint_eq(l.n, 2);
	ck_assert_str_eq(l.v[0].title, "Speculative decoding");
	ck_assert_str_eq(l.v[0].detail,
			 "Use a 0.5B draft model. Keep the same tokenizer. Continued "
			 "paragraph of the first item.");
	ck_assert_str_eq(l.v[0].test, "tokens/s before and after.");
	ck_assert_str_eq(l.v[0].suggestion,
			 "**Speculative decoding:** Use a 0.5B draft model. Keep the same "
			 "tokenizer. *Test:* tokens/s before and after. Continued paragraph of the "
			 "first item.");
	ck_assert_str_eq(l.v[1].title, "Prompt cache");
	ck_assert_str_eq(l.v[1].test, "TTFT of turn 3 vs turn 1");
	ck_assert_str_eq(l.v[1].detail, "");
	optim_list_release(&l);
}
END_TEST

START_TEST(test_section_without_reasoning_ends_at_prose)
{
	static const char *const text = "### 3. Concrete Suggestions\n\n"
					"- **Quantize to Q4_K_M** — halves memory.\n"
					"- **Limit output to 300 tokens**\n\n"
					"Could you tell me more about your setup?\n\n"
					"- What GPU do you run?\n- What is the context size?\n";
	struct optim_list l;

	extract_text(EXTRACT_RUBRIC, text, &l);
	ck_assert_uint_eq(l.n, 2);
	ck_assert_str_eq(l.v[0].title, "Quantize to Q4_K_M");
	ck_assert_str_eq(l.v[0].detail, "halves memory.");
	ck_assert_str_eq(l.v[1].title, "Limit output to 300 tokens");
	optim_list_release(&l);
}
END_TEST

START_TEST(test_nothing_to_find)
{
	struct optim_list l;

	extract_text(EXTRACT_RUBRIC, "", &l);
	ck_assert_uint_eq(l.n, 0);
	extract_optimizations(EXTRACT_RUBRIC, NULL, 1, &l);
	extract_optimizations(EXTRACT_ORIGIN, NULL, 1, &l);
	extract_optimizations(EXTRACT_RUBRIC, "Just prose. No lists here.\n- one\n- two\n", 1, &l);
	ck_assert_uint_eq(l.n, 0);
	optim_list_release(&l);
}
END_TEST

START_TEST(test_tag_and_test_line)
{
	/* "#test_this:" tags the item; its own "Test:" line is the test */
	const char *t = "**3. Concrete Suggestions**\n\n"
			"- **Cache prompts** #test_this: keep the KV cache warm between turns.\n"
			"  Test: measure ttft before and after.\n"
			"- **Batch** #test_this: group requests.\n"
			"  Test: compare throughput.\n\n"
			"**4. Reasoning**\n\nbecause.\n";
	struct optim_list l;

	optim_list_init(&l);
	extract_optimizations(EXTRACT_RUBRIC, t, 3, &l);
	ck_assert_uint_eq(l.n, 2);
	ck_assert_str_eq(l.v[0].title, "Cache prompts");
	ck_assert_str_eq(l.v[0].detail, "keep the KV cache warm between turns.");
	ck_assert_str_eq(l.v[0].test, "measure ttft before and after.");
	ck_assert_str_eq(l.v[1].detail, "group requests.");
	ck_assert_str_eq(l.v[1].test, "compare throughput.");
	optim_list_release(&l);
}
END_TEST

/* The shape the interviewer is asked for (server/prompt.c) reads back cleanly. */
START_TEST(test_asked_shape)
{
	const char *t =
	    "1. Analysis of the candidate's approach\n\nIt is slow.\n\n"
	    "2. Specific optimization opportunities identified\n\nCaching.\n\n"
	    "3. Concrete suggestions (#test_this):\n\n"
	    "1. **Cache the prompt prefix** \u2014 keep the system prompt first. Test: "
	    "cached tokens per request.\n"
	    "2. **Use four slots** \u2014 serve requests in parallel. Test: requests per "
	    "second at 8 clients.\n\n"
	    "4. Reasoning for why these optimizations will help\n\nLess work.\n";
	struct optim_list l;

	extract_text(EXTRACT_RUBRIC, t, &l);
	ck_assert_uint_eq(l.n, 2);
	ck_assert_str_eq(l.v[0].title, "Cache the prompt prefix");
	ck_assert_str_eq(l.v[0].detail, "keep the system prompt first.");
	ck_assert_str_eq(l.v[0].test, "cached tokens per request.");
	ck_assert_str_eq(l.v[1].title, "Use four slots");
	ck_assert_str_eq(l.v[1].test, "requests per second at 8 clients.");
	optim_list_release(&l);
}
END_TEST

/* extraction "model": what a model says is kept only where the analysis says it too */
START_TEST(test_model_reply)
{
	const char *text = "### 3. Concrete suggestions\n\n1. **Cache the *system* prompt** "
			   "\xe2\x80\x94 reuse it. Test: cached tokens.\n";
	json_t *dropped = json_array(), *schema = extract_model_schema();
	struct optim_list l;
	struct perr e = {0};

	optim_list_init(&l);
	ck_assert_str_eq(json_string_value(json_object_get(schema, "type")), "array");
	ck_assert_int_eq(extract_model_parse("[{\"title\": \"cache the system PROMPT\", "
					     "\"detail\": \"reuse it\", \"test\": \"cached "
					     "tokens\"}, {\"title\": \"Buy a bigger GPU\", "
					     "\"detail\": \"\", \"test\": null}]",
					     text, 3, &l, dropped, &e),
			 0);
	ck_assert_uint_eq(l.n, 1);
	ck_assert_str_eq(l.v[0].title, "cache the system PROMPT");
	ck_assert_str_eq(l.v[0].test, "cached tokens");
	ck_assert_str_eq(l.v[0].method, "model");
	ck_assert_int_eq(l.v[0].turn, 3);
	ck_assert_str_eq(json_string_value(json_array_get(dropped, 0)), "Buy a bigger GPU");
	/* not the schema: refused whole, nothing kept */
	ck_assert_int_eq(
	    extract_model_parse("Sure! Cache the system prompt.", text, 3, &l, dropped, &e), -1);
	ck_assert_int_eq(extract_model_parse("{\"title\": \"Cache\"}", text, 3, &l, dropped, &e),
			 -1);
	ck_assert_int_eq(extract_model_parse("[{\"title\": \"Cache the system prompt\"}, "
					     "{\"detail\": \"x\", \"test\": null}]",
					     text, 3, &l, dropped, &e),
			 -1);
	ck_assert_ptr_nonnull(strstr(e.msg, "item 1"));
	ck_assert_uint_eq(l.n, 1);
	/* the tree extractor says how it found them */
	extract_optimizations(EXTRACT_RUBRIC, text, 3, &l);
	ck_assert_str_eq(l.v[1].method, "rubric");
	optim_list_release(&l);
	json_decref(dropped);
	json_decref(schema);
}
END_TEST

/* Without a concrete-suggestions part, the interviewer's earlier marked items count; never the
 * candidate's, and not when the part exists and says "none yet". */
START_TEST(test_earlier_interviewer_turns)
{
	struct db_turn t[3];
	struct optim_list l;

	memset(t, 0, sizeof(t));
	t[0].idx = 1;
	snprintf(t[0].role, sizeof(t[0].role), "interviewer");
	t[0].text =
	    (char *)(uintptr_t) "Hello. One idea already:\n\n"
				"- Pin the model in memory #test_this: load_ms after idle\n";
	t[1].idx = 2;
	snprintf(t[1].role, sizeof(t[1].role), "candidate");
	t[1].text = (char *)(uintptr_t) "- I cache everything #test_this: my own idea\n";
	t[2].idx = 3;
	snprintf(t[2].role, sizeof(t[2].role), "interviewer");
	t[2].text = (char *)(uintptr_t) "Thanks, that was useful. Let us talk again next week.\n";
	optim_list_init(&l);
	outcome_extract("rubric", 3, t, 3, &l);
	ck_assert_uint_eq(l.n, 1);
	ck_assert_str_eq(l.v[0].title, "Pin the model in memory");
	ck_assert_int_eq(l.v[0].turn, 1);
	optim_list_release(&l);
	t[2].text = (char *)(uintptr_t) "**3. Concrete suggestions:** none yet.\n";
	outcome_extract("rubric", 3, t, 3, &l);
	ck_assert_uint_eq(l.n, 0);
	optim_list_release(&l);
}
END_TEST

START_TEST(test_method_names)
{
	enum extract_method m;

	ck_assert_int_eq(extract_method_parse("origin", &m), 0);
	ck_assert_int_eq(m, EXTRACT_ORIGIN);
	ck_assert_int_eq(extract_method_parse("rubric", &m), 0);
	ck_assert_int_eq(m, EXTRACT_RUBRIC);
	ck_assert_int_eq(extract_method_parse("model", &m), 0);
	ck_assert_int_eq(m, EXTRACT_MODEL);
	ck_assert_str_eq(extract_method_name(EXTRACT_MODEL), "model");
	ck_assert_int_eq(extract_method_parse("grep", &m), -1);
	ck_assert_int_eq(extract_method_parse(NULL, &m), -1);
	ck_assert_str_eq(extract_method_name(EXTRACT_ORIGIN), "origin");
	ck_assert_str_eq(extract_method_name(EXTRACT_RUBRIC), "rubric");
}
END_TEST

/* ---------------------------------------------------------------- corpus */

/*
 * The corpus (tests/corpus/extract): analyses in the shapes models write,
 * each with the titles and tests a reader finds in it (labels.json).
 * Titles and tests are compared after collapsing blanks and dropping
 * trailing punctuation, which says nothing about what the item is.
 */
#define CORPUS_DIR "tests/corpus/extract"

static json_t *corpus_labels(void)
{
	json_error_t err;
	json_t *j = json_load_file(CORPUS_DIR "/labels.json", JSON_REJECT_DUPLICATES, &err);

	ck_assert_msg(j != NULL, "cannot load '%s': %s", CORPUS_DIR "/labels.json", err.text);
	return j;
}

static char *corpus_text(const char *name)
{
	char path[512];
	FILE *f;
	struct strbuf sb;
	char chunk[4096];
	size_t n;

	snprintf(path, sizeof(path), "%s/%s.md", CORPUS_DIR, name);
	f = fopen(path, "rb");
	ck_assert_msg(f != NULL, "cannot open '%s'", path);
	strbuf_init(&sb, 4096);
	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
		strbuf_add(&sb, chunk, n);
	fclose(f);
	return strbuf_detach(&sb, NULL);
}

static char *norm(const char *s)
{
	struct strbuf sb;
	int space = 0;
	size_t n;

	strbuf_init(&sb, strlen(s) + 1);
	for (; *s; s++) {
		if (*s == ' ' || *s == '\t' || *s == '\r' || *s == '\n') {
			space = sb.len > 0;
			continue;
		}
		if (space)
			strbuf_addch(&sb, ' ');
		space = 0;
		strbuf_addch(&sb, *s);
	}
	n = sb.len;
	while (n > 0 && strchr(".;:, ", sb.buf[n - 1]))
		n--;
	sb.buf[n] = '\0';
	sb.len = n;
	return strbuf_detach(&sb, NULL);
}

static int same(const char *a, const char *b)
{
	char *x, *y;
	int r;

	if (!a || !b)
		return a == b;
	x = norm(a);
	y = norm(b);
	r = !strcmp(x, y);
	free(x);
	free(y);
	return r;
}

struct figures {
	size_t cases, exact, titles, found, tests, tests_ok, empty_cases, false_items;
};

/* Extracts one case and adds its figures; returns 1 when count, titles and tests all match. */
static int corpus_case(const char *name, const json_t *want, struct figures *f, int verbose)
{
	char *text = corpus_text(name);
	struct optim_list l;
	size_t i, k, n = json_array_size(want);
	int ok = 1;

	optim_list_init(&l);
	extract_optimizations(EXTRACT_RUBRIC, text, 3, &l);
	f->cases++;
	f->exact += l.n == n;
	f->titles += n;
	if (n == 0) {
		f->empty_cases++;
		f->false_items += l.n;
	}
	ok = l.n == n;
	for (i = 0; i < n; i++) {
		const json_t *w = json_array_get(want, i);
		const char *title = json_string_value(json_object_get(w, "title"));
		const char *test = json_string_value(json_object_get(w, "test"));
		int hit = 0;

		for (k = 0; k < l.n && !hit; k++)
			hit = same(l.v[k].title, title);
		f->found += hit;
		f->tests += test != NULL;
		if (i < l.n && same(l.v[i].title, title) && same(l.v[i].test, test)) {
			f->tests_ok += test != NULL;
			continue;
		}
		ok = 0;
		if (verbose)
			fprintf(stderr, "%s item %zu: want '%s' / '%s', got '%s' / '%s'\n", name,
				i + 1, title, test ? test : "(none)", i < l.n ? l.v[i].title : "-",
				i < l.n && l.v[i].test ? l.v[i].test : "(none)");
	}
	if (verbose && l.n != n) {
		fprintf(stderr, "%s: want %zu items, got %zu:\n", name, n, l.n);
		for (k = 0; k < l.n; k++)
			fprintf(stderr, "    '%s' / '%s'\n", l.v[k].title,
				l.v[k].test ? l.v[k].test : "(none)");
	}
	optim_list_release(&l);
	free(text);
	return ok;
}

START_TEST(test_corpus_case)
{
	json_t *labels = corpus_labels();
	const char *name = NULL;
	const json_t *want;
	struct figures f = {0};
	int i = 0;

	json_object_foreach(labels, name, want)
	{
		if (i++ != _i)
			continue;
		ck_assert_msg(corpus_case(name, want, &f, 1), "%s: extraction differs from labels",
			      name);
	}
	json_decref(labels);
}
END_TEST

/* The figures over the whole corpus, printed for the record. */
START_TEST(test_corpus_figures)
{
	json_t *labels = corpus_labels();
	const char *name;
	const json_t *want;
	struct figures f = {0};

	json_object_foreach(labels, name, want) corpus_case(name, want, &f, 0);
	fprintf(stderr,
		"corpus: %zu analyses, exact count %zu (%.1f %%), title recall %zu/%zu (%.3f), "
		"tests right %zu/%zu, items found in %zu analyses with none: %zu\n",
		f.cases, f.exact, 100.0 * (double)f.exact / (double)f.cases, f.found, f.titles,
		(double)f.found / (double)f.titles, f.tests_ok, f.tests, f.empty_cases,
		f.false_items);
	ck_assert_uint_ge(f.cases, 40);
	ck_assert_uint_eq(f.exact, f.cases);
	ck_assert_uint_eq(f.found, f.titles);
	ck_assert_uint_eq(f.false_items, 0);
	json_decref(labels);
}
END_TEST

static int corpus_size(void)
{
	json_t *labels = json_load_file(CORPUS_DIR "/labels.json", 0, NULL);
	int n = labels ? (int)json_object_size(labels) : 1;

	json_decref(labels);
	return n;
}

static Suite *extract_suite(void)
{
	Suite *s = suite_create("extract");
	TCase *tc = tcase_create("fixtures");

	tcase_add_loop_test(tc, test_rubric_fixture, 0, HARNESS_NORIGIN);
	tcase_add_loop_test(tc, test_origin_fixture, 0, HARNESS_NORIGIN);
	tcase_add_test(tc, test_rubric_fixture_details);
	suite_add_tcase(s, tc);
	tc = tcase_create("rules");
	tcase_add_test(tc, test_origin_is_case_sensitive);
	tcase_add_test(tc, test_heading_forms);
	tcase_add_test(tc, test_format_headings_never_extracted);
	tcase_add_test(tc, test_test_this_variants);
	tcase_add_test(tc, test_nested_bullets_belong_to_parent);
	tcase_add_test(tc, test_section_without_reasoning_ends_at_prose);
	tcase_add_test(tc, test_nothing_to_find);
	tcase_add_test(tc, test_method_names);
	tcase_add_test(tc, test_tag_and_test_line);
	tcase_add_test(tc, test_asked_shape);
	tcase_add_test(tc, test_model_reply);
	tcase_add_test(tc, test_earlier_interviewer_turns);
	suite_add_tcase(s, tc);
	tc = tcase_create("corpus");
	tcase_add_loop_test(tc, test_corpus_case, 0, corpus_size());
	tcase_add_test(tc, test_corpus_figures);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(extract_suite());
	int failed;

	harness_shared_note("check_extract");
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
