/*
 * check_tasks.c - a scenario's baseline, tasks and objective: what is
 * accepted is stored with its defaults written out; every bad field is
 * reported with its path, all of them at once.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db/db.h"
#include "db/scenario.h"
#include "server/checks.h"
#include "server/tasks.h"
#include "tests/harness.h"

#define TASK(id) "{\"id\":\"" id "\",\"input\":\"in " id "\",\"checks\":[{\"contains\":\"x\"}]}"
#define FOUR TASK("a") "," TASK("b") "," TASK("c") "," TASK("d")

static json_t *valid(const char *text)
{
	json_t *sc = json_loads(text, 0, NULL), *errs = json_array(), *work = NULL;

	ck_assert_msg(sc != NULL, "bad test JSON %s", text);
	ck_assert_msg(tasks_validate(sc, "", &work, errs) == 0, "refused %s: %s", text,
		      json_dumps(errs, 0));
	json_decref(sc);
	json_decref(errs);
	return work;
}

/* Refused, with an error at field saying what (among all the errors). */
static void refused(const char *text, const char *field, const char *what)
{
	json_t *sc = json_loads(text, 0, NULL), *errs = json_array(), *work = NULL, *e;
	size_t i;
	int found = 0;

	ck_assert_msg(sc != NULL, "bad test JSON %s", text);
	ck_assert_msg(tasks_validate(sc, "scenario.", &work, errs) < 0, "accepted %s", text);
	ck_assert_ptr_null(work);
	json_array_foreach(errs, i, e)
	{
		if (strcmp(json_string_value(json_object_get(e, "field")), field) == 0 &&
		    strstr(json_string_value(json_object_get(e, "message")), what))
			found = 1;
	}
	ck_assert_msg(found, "no error at %s saying '%s': %s", field, what, json_dumps(errs, 0));
	json_decref(sc);
	json_decref(errs);
}

START_TEST(test_defaults_written_out)
{
	json_t *w = valid("{\"tasks\":[" FOUR "]}"), *b, *o;

	b = json_object_get(w, "baseline");
	ck_assert_str_eq(json_string_value(json_object_get(b, "system")), "");
	ck_assert_str_eq(json_string_value(json_object_get(b, "template")), "{input}");
	ck_assert(json_is_object(json_object_get(b, "options")));
	o = json_object_get(w, "objective");
	ck_assert_str_eq(json_string_value(json_object_get(o, "kind")), "quality");
	ck_assert(json_real_value(json_object_get(o, "max_quality_drop")) == 0.02);
	ck_assert_int_eq(json_array_size(json_object_get(w, "tasks")), 4);
	json_decref(w);
	/* a scenario without work stays without it */
	w = valid("{\"name\":\"x\"}");
	ck_assert_int_eq(json_object_size(w), 0);
	json_decref(w);
}
END_TEST

START_TEST(test_given_fields_kept)
{
	json_t *w =
	    valid("{\"baseline\":{\"system\":\"Be brief.\",\"template\":\"Q: {input}\","
		  "\"options\":{\"num_predict\":64}},\"objective\":{\"kind\":\"latency\","
		  "\"max_quality_drop\":0.1},\"tasks\":[{\"id\":7,\"input\":\"i\","
		  "\"checks\":[{\"max_words\":3}]}," TASK("b") "," TASK("c") "," TASK("d") "]}");
	json_t *b = json_object_get(w, "baseline"), *o = json_object_get(w, "objective");

	ck_assert_str_eq(json_string_value(json_object_get(b, "system")), "Be brief.");
	ck_assert_str_eq(json_string_value(json_object_get(b, "template")), "Q: {input}");
	ck_assert_int_eq(
	    json_integer_value(json_object_get(json_object_get(b, "options"), "num_predict")), 64);
	ck_assert_str_eq(json_string_value(json_object_get(o, "kind")), "latency");
	ck_assert(json_real_value(json_object_get(o, "max_quality_drop")) == 0.1);
	/* an integer id becomes a string */
	ck_assert_str_eq(json_string_value(
			     json_object_get(json_array_get(json_object_get(w, "tasks"), 0), "id")),
			 "7");
	json_decref(w);
	w = valid("{\"objective\":\"balanced\",\"tasks\":[" FOUR "]}");
	ck_assert_str_eq(
	    json_string_value(json_object_get(json_object_get(w, "objective"), "kind")),
	    "balanced");
	json_decref(w);
}
END_TEST

START_TEST(test_bad_fields_have_paths)
{
	refused("{\"tasks\":[" TASK("a") "," TASK("b") "," TASK("c") "]}", "scenario.tasks",
		"4 to 500");
	refused("{\"tasks\":[" TASK("a") "," TASK("b") "," TASK("c") "," TASK("a") "]}",
		"scenario.tasks[3].id", "already tasks[0]");
	refused("{\"tasks\":[" TASK("a") "," TASK("b") "," TASK(
		    "c") ",{\"id\":\"d\",\"input\":\"x\",\"checks\":[{\"regex\":\"[\"}]}]}",
		"scenario.tasks[3].checks[0].regex", "POSIX");
	refused("{\"tasks\":[" TASK("a") "," TASK("b") "," TASK(
		    "c") ",{\"id\":\"d\",\"input\":\"\",\"checks\":[{\"regex\":\"x\"}]}]}",
		"scenario.tasks[3].input", "non-empty string");
	refused("{\"tasks\":[" TASK("a") "," TASK("b") "," TASK(
		    "c") ",{\"id\":\"d\",\"input\":\"x\",\"checks\":[],\"weight\":2}]}",
		"scenario.tasks[3]", "unknown field 'weight'");
	refused("{\"tasks\":[" TASK("a") "," TASK("b") "," TASK(
		    "c") ",{\"id\":\"d\",\"input\":\"x\",\"checks\":[]}]}",
		"scenario.tasks[3].checks", "1 to 20 checks");
	refused("{\"tasks\":[" FOUR "],\"baseline\":{\"template\":\"no slot\"}}",
		"scenario.baseline.template", "must contain {input}");
	refused("{\"tasks\":[" FOUR "],\"baseline\":{\"options\":{\"num_beams\":2}}}",
		"scenario.baseline.options.num_beams", "unknown option");
	refused("{\"tasks\":[" FOUR "],\"baseline\":{\"options\":{\"temperature\":3}}}",
		"scenario.baseline.options.temperature", "from 0 to 2");
	refused("{\"tasks\":[" FOUR "],\"baseline\":{\"prompt\":\"x\"}}", "scenario.baseline",
		"unknown field 'prompt'");
	refused("{\"tasks\":[" FOUR "],\"objective\":\"fast\"}", "scenario.objective",
		"quality, latency, balanced");
	refused("{\"tasks\":[" FOUR "],\"objective\":{\"kind\":\"latency\","
		"\"max_quality_drop\":2}}",
		"scenario.objective.max_quality_drop", "from 0 to 1");
	refused("{\"tasks\":[" FOUR "],\"objective\":{\"kind\":\"speed\"}}",
		"scenario.objective.kind", "quality, latency, balanced");
}
END_TEST

START_TEST(test_all_faults_at_once)
{
	json_t *sc = json_loads(
		   "{\"tasks\":[" TASK("a") "," TASK(
		       "b") ","
			    "{\"id\":\"c\",\"input\":\"x\",\"checks\":[{\"regex\":\"(\"}]},"
			    "{\"id\":\"d\",\"input\":\"x\",\"checks\":[{\"max_words\":0}]}],"
			    "\"objective\":\"fast\"}",
		   0, NULL),
	       *errs = json_array(), *work;

	ck_assert_int_lt(tasks_validate(sc, "", &work, errs), 0);
	ck_assert_int_eq(json_array_size(errs), 3);
	json_decref(sc);
	json_decref(errs);
}
END_TEST

START_TEST(test_size_limits)
{
	struct strbuf sb;
	json_t *sc, *errs = json_array();
	int i;

	strbuf_init(&sb, 1 << 16);
	strbuf_addstr(&sb, "{\"tasks\":[");
	for (i = 0; i < TASKS_MAX + 1; i++)
		strbuf_addf(&sb, "%s{\"id\":%d,\"input\":\"x\",\"checks\":[{\"contains\":\"y\"}]}",
			    i ? "," : "", i);
	strbuf_addstr(&sb, "]}");
	sc = json_loads(sb.buf, 0, NULL);
	ck_assert_int_lt(tasks_validate(sc, "", NULL, errs), 0);
	ck_assert_str_eq(json_string_value(json_object_get(json_array_get(errs, 0), "field")),
			 "tasks");
	/* 500 is allowed */
	json_array_remove(json_object_get(sc, "tasks"), TASKS_MAX);
	json_array_clear(errs);
	ck_assert_int_eq(tasks_validate(sc, "", NULL, errs), 0);
	json_decref(sc);
	json_decref(errs);
	strbuf_release(&sb);
}
END_TEST

/* A reply that meets every task of the built-in scenarios, written by hand: it
 * proves each task can be passed (and that its checks say what the task asks). */
static const struct {
	const char *id, *reply;
} reference[] = {
    {"backend-go", "{\"requirements\": [\"Go\", \"PostgreSQL\", \"Kafka\", \"Kubernetes\"]}"},
    {"frontend-react",
     "{\"requirements\": [\"React\", \"TypeScript\", \"CSS modules\", \"Jest\", \"REST APIs\"]}"},
    {"data-engineer",
     "{\"requirements\": [\"Python (3+ years)\", \"Airflow\", \"Snowflake\", \"dbt\", \"SQL\"]}"},
    {"devops-aws", "{\"requirements\": [\"AWS\", \"Terraform\", \"GitHub Actions\", "
		   "\"Prometheus\", \"Grafana\"]}"},
    {"embedded-c",
     "{\"requirements\": [\"C\", \"ARM Cortex-M\", \"FreeRTOS\", \"JTAG\", \"I2C\", \"SPI\"]}"},
    {"ml-engineer", "{\"requirements\": [\"PyTorch\", \"MLflow\", \"Docker\", \"CUDA (plus)\"]}"},
    {"mobile-ios",
     "{\"requirements\": [\"Swift\", \"SwiftUI\", \"Core Data\", \"Xcode Cloud\", \"Combine\"]}"},
    {"java-spring",
     "{\"requirements\": [\"Java 17\", \"Spring Boot\", \"Hibernate\", \"Oracle\", \"JUnit\"]}"},
    {"security", "{\"requirements\": [\"penetration testing\", \"OWASP Top 10\", \"Burp Suite\", "
		 "\"Linux administration\"]}"},
    {"rust-systems",
     "{\"requirements\": [\"Rust\", \"async I/O with Tokio\", \"perf\", \"gRPC\"]}"},
    {"dotnet", "{\"requirements\": [\"C#\", \"ASP.NET Core\", \"Entity Framework\", \"SQL "
	       "Server\", \"Angular\"]}"},
    {"sre-observability", "{\"requirements\": [\"Linux\", \"Ansible\", \"OpenTelemetry\", "
			  "\"Elasticsearch\", \"Bash\", \"Python\"]}"},
    {"sql-bottleneck", "The database query: 2.05 s of the 2.4 s."},
    {"linear-scaling", "10 minutes: three times the workers, a third of the time."},
    {"cache-hit-ratio", "90 % (450 of 500)."},
    {"parallel-calls", "500 ms, the slower of the two."},
    {"memory-leak", "24 hours: (2000 - 800) / 50."},
    {"tokens-per-second", "60 seconds."},
    {"disk-read", "60 seconds."},
    {"membership", "A set: hashing gives constant-time lookups, a list is scanned."},
    {"index", "A composite index on orders (customer_id, created_at)."},
    {"complexity", "O(n*m)."},
    {"p95", "420 ms."},
    {"amdahl", "5x: the serial 20 % bounds it."},
    {"yes-no", "yes"},
    {"digit-only", "8"},
    {"json-capital", "{\"city\": \"Tokyo\", \"country\": \"Japan\"}"},
    {"csv-line", "red,green,blue"},
    {"three-bullets",
     "- They catch regressions early\n- They document behaviour\n- They make refactoring safe"},
    {"short-summary",
     "Release slipped two weeks: the database migration failed and was rewritten."},
    {"json-squares", "[1, 4, 9, 16, 25]"},
    {"uppercase", "PARLEY"},
    {"translation-only", "Bonjour"},
    {"iso-date", "2026-12-25"},
    {"json-sentiment", "{\"sentiment\": \"negative\"}"},
    {"answer-line", "ANSWER: 144"},
    {"unit-conversion", "3000 m"},
};

static const char *reference_reply(const char *id)
{
	size_t i;

	for (i = 0; i < sizeof(reference) / sizeof(reference[0]); i++)
		if (strcmp(reference[i].id, id) == 0)
			return reference[i].reply;
	return NULL;
}

START_TEST(test_builtin_work)
{
	static const char *const names[] = {"job_extraction_improvement",
					    "response_speed_optimization",
					    "prompt_engineering_breakthrough"};
	char path[512];
	struct perr e = {0};
	struct db *db = harness_db("tasks", path, sizeof(path), &e);
	size_t k, i, c, seen = 0;

	ck_assert_msg(db != NULL, "%s", e.msg);
	for (k = 0; k < 3; k++) {
		struct db_scenario s;
		json_t *sc, *errs = json_array(), *work = NULL, *t; /* owned x3, borrowed */

		ck_assert_int_eq(db_scenario_get(db, names[k], &s, &e), 0);
		ck_assert_msg(s.baseline && s.tasks && s.objective, "%s has no work", names[k]);
		sc = json_pack("{s:o, s:o, s:o}", "baseline", json_loads(s.baseline, 0, NULL),
			       "tasks", json_loads(s.tasks, 0, NULL), "objective",
			       json_loads(s.objective, 0, NULL));
		ck_assert_msg(tasks_validate(sc, "", &work, errs) == 0, "%s: %s", names[k],
			      json_dumps(errs, 0));
		/* stored as the validation writes it out, so a snapshot is the same either way */
		ck_assert_msg(json_equal(work, sc), "%s is not in its written-out form", names[k]);
		ck_assert_int_ge(json_array_size(json_object_get(sc, "tasks")), 12);
		json_array_foreach(json_object_get(sc, "tasks"), i, t)
		{
			const char *id = json_string_value(json_object_get(t, "id"));
			const char *good = reference_reply(id);
			struct checks cs;
			char why[256];
			int failed_bad = 0;

			ck_assert_msg(good != NULL, "no reference reply for %s", id);
			ck_assert_int_eq(
			    checks_compile(json_object_get(t, "checks"), "", &cs, errs), 0);
			for (c = 0; c < cs.n; c++) {
				ck_assert_msg(checks_eval(&cs.v[c], good, why, sizeof(why)) == 1,
					      "%s: the reference reply fails check %zu: %s", id, c,
					      why);
				if (checks_eval(&cs.v[c], "I am sorry, I cannot help with that.",
						why, sizeof(why)) == 0)
					failed_bad = 1;
			}
			ck_assert_msg(failed_bad, "%s passes a refusal", id);
			checks_release(&cs);
			seen++;
		}
		json_decref(work);
		json_decref(errs);
		json_decref(sc);
		db_scenario_release(&s);
	}
	ck_assert_int_eq(seen, sizeof(reference) / sizeof(reference[0]));
	db_close(db);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("tasks");
	TCase *tc = tcase_create("validate");
	SRunner *sr;
	int failed;

	tcase_add_test(tc, test_defaults_written_out);
	tcase_add_test(tc, test_given_fields_kept);
	tcase_add_test(tc, test_bad_fields_have_paths);
	tcase_add_test(tc, test_all_faults_at_once);
	tcase_add_test(tc, test_size_limits);
	tcase_add_test(tc, test_builtin_work);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	harness_cleanup();
	return failed ? 1 : 0;
}
