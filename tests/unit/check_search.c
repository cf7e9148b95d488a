/*
 * check_search.c - optimizations across jobs: newest first, the filters,
 * and full-text search (FTS5) kept in step with the optimizations table when
 * a job is finished, finished again, or gone; a user's query is never a
 * syntax error.
 */
#include <check.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "db/db.h"
#include "db/internal.h" /* the test edits rows behind the module's back */
#include "db/job.h"
#include "db/search.h"
#include "db/turn.h"
#include "tests/harness.h"

static struct db *db;
static char path[512];

static void setup(void)
{
	struct perr e = {0};

	db = harness_db("search", path, sizeof(path), &e);
	ck_assert_msg(db != NULL, "%s", e.msg);
}

static void teardown(void)
{
	db_close(db);
	unlink(path);
}

/* A job of candidate on scenario, run and finished with the given optimizations. */
static void finished_job(const char *cand, const char *scen, struct db_optim *o, size_t n,
			 char id[DB_JOB_ID_LEN])
{
	struct db_job j, c;
	struct perr e = {0};

	memset(&j, 0, sizeof(j));
	j.scenario_name = xstrdup(scen);
	j.scenario = xstrdup("{}");
	j.interviewer_model = xstrdup("gemma3:1b");
	j.interviewer_backend = xstrdup("ollama");
	j.candidate_model = xstrdup(cand);
	j.candidate_backend = xstrdup("ollama");
	j.max_turns = 3;
	j.scoring = xstrdup("rubric");
	j.extraction = xstrdup("rubric");
	ck_assert_int_eq(db_job_insert(db, &j, NULL, NULL, 0, &e), 0);
	ck_assert_int_eq(db_job_claim(db, &c, &e), 1);
	ck_assert_int_eq(db_job_finish(db, c.id, 1, "succeeded", NULL, NULL, "{}", o, n, &e), 0);
	snprintf(id, DB_JOB_ID_LEN, "%s", c.id);
	db_job_release(&c);
	db_job_release(&j);
}

static size_t search(const char *q, const char *model, const char *scen, struct db_found **v)
{
	struct db_search_filter f;
	struct perr e = {0};
	char *match = q ? db_search_query(q) : NULL;
	size_t n;

	memset(&f, 0, sizeof(f));
	f.match = match;
	f.model = model;
	f.scenario = scen;
	f.limit = 50;
	ck_assert_msg(db_search_optimizations(db, &f, v, &n, &e) == 0, "%s", e.msg);
	free(match);
	return n;
}

START_TEST(query_words_are_quoted)
{
	char *q = db_search_query("  cach* \"AND\" (NEAR) OR   x-ray; ");

	ck_assert_str_eq(q, "\"cach\"* \"AND\" \"NEAR\" \"OR\" \"x\" \"ray\"");
	free(q);
	ck_assert_ptr_null(db_search_query("  \" * ( ) "));
	ck_assert_ptr_null(db_search_query(""));
}
END_TEST

START_TEST(search_words_newest_first)
{
	struct db_optim a[2] = {{0, 3, "Cache repeated results", "keep an LRU of 1,000 entries",
				 "p95 latency", "a", 1, "rubric"},
				{0, 3, "Batch concurrent requests", "group requests within 20 ms",
				 "throughput", "b", 1, "rubric"}};
	struct db_optim b[1] = {{0, 3, "Trim the context",
				 "send only the last four exchanges and a cached summary",
				 "time to first token", "c", 2, "model"}};
	struct db_found *v;
	char ja[DB_JOB_ID_LEN], jb[DB_JOB_ID_LEN];
	size_t n;

	finished_job("gemma3n:latest", "response_speed_optimization", a, 2, ja);
	finished_job("gemma2:latest", "job_extraction_improvement", b, 1, jb);

	/* everything, newest first */
	n = search(NULL, NULL, NULL, &v);
	ck_assert_uint_eq(n, 3);
	ck_assert_str_eq(v[0].title, "Trim the context");
	ck_assert_str_eq(v[0].job_id, jb);
	ck_assert_str_eq(v[0].candidate_model, "gemma2:latest");
	ck_assert_int_eq(v[0].turn, 3);
	ck_assert_str_eq(v[0].test, "time to first token");
	/* how each was found */
	ck_assert_str_eq(v[0].method, "model");
	ck_assert_str_eq(v[1].method, "rubric");
	ck_assert(v[0].id > v[1].id && v[1].id > v[2].id);
	db_found_free(v, n);

	/* words of the title and of the detail; porter stemming: "caching" finds "cache(d)" */
	n = search("caching", NULL, NULL, &v);
	ck_assert_uint_eq(n, 2);
	ck_assert_str_eq(v[0].title, "Trim the context"); /* "a cached summary" in its detail */
	ck_assert_str_eq(v[1].title, "Cache repeated results");
	db_found_free(v, n);
	/* every word must match */
	n = search("cache LRU", NULL, NULL, &v);
	ck_assert_uint_eq(n, 1);
	ck_assert_str_eq(v[0].job_id, ja);
	db_found_free(v, n);
	/* a prefix */
	n = search("concurr*", NULL, NULL, &v);
	ck_assert_uint_eq(n, 1);
	ck_assert_str_eq(v[0].title, "Batch concurrent requests");
	db_found_free(v, n);
	/* the test is not searched */
	n = search("throughput", NULL, NULL, &v);
	ck_assert_uint_eq(n, 0);
	db_found_free(v, n);
	/* filters: model (either side), scenario */
	n = search(NULL, "gemma3n:latest", NULL, &v);
	ck_assert_uint_eq(n, 2);
	db_found_free(v, n);
	n = search(NULL, "gemma3:1b", NULL, &v);
	ck_assert_uint_eq(n, 3);
	db_found_free(v, n);
	n = search("requests", NULL, "job_extraction_improvement", &v);
	ck_assert_uint_eq(n, 0);
	db_found_free(v, n);
	/* FTS5 operators typed by a user are plain words */
	n = search("NEAR(cache", NULL, NULL, &v);
	ck_assert_uint_eq(n, 0);
	db_found_free(v, n);
}
END_TEST

START_TEST(index_follows_the_table)
{
	struct db_optim a[1] = {
	    {0, 3, "Quantize the model", "4-bit weights", NULL, "a", 1, "rubric"}};
	struct db_found *v;
	char id[DB_JOB_ID_LEN];
	struct perr e = {0};
	size_t n;
	char *err = NULL;

	finished_job("gemma2:latest", "s", a, 1, id);
	n = search("quantize", NULL, NULL, &v);
	ck_assert_uint_eq(n, 1);
	db_found_free(v, n);
	/* a job's optimizations are replaced when it is finished again; the index follows */
	ck_assert_int_eq(sqlite3_exec(db_handle(db),
				      "UPDATE optimizations SET title = 'Distill the model'", NULL,
				      NULL, &err),
			 SQLITE_OK);
	n = search("quantize", NULL, NULL, &v);
	ck_assert_uint_eq(n, 0);
	db_found_free(v, n);
	n = search("distill", NULL, NULL, &v);
	ck_assert_uint_eq(n, 1);
	db_found_free(v, n);
	ck_assert_int_eq(sqlite3_exec(db_handle(db), "DELETE FROM jobs", NULL, NULL, &err),
			 SQLITE_OK);
	n = search("distill", NULL, NULL, &v);
	ck_assert_uint_eq(n, 0);
	db_found_free(v, n);
	/* and the index is sound */
	ck_assert_int_eq(sqlite3_exec(db_handle(db),
				      "INSERT INTO optimizations_fts (optimizations_fts) "
				      "VALUES ('integrity-check')",
				      NULL, NULL, &err),
			 SQLITE_OK);
	(void)e;
}
END_TEST

int main(void)
{
	Suite *s = suite_create("search");
	TCase *tc = tcase_create("fts");
	SRunner *sr;
	int failed;

	harness_tmpdir(); /* made once here, not in each forked test */
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, query_words_are_quoted);
	tcase_add_test(tc, search_words_newest_first);
	tcase_add_test(tc, index_follows_the_table);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	harness_cleanup();
	return failed ? 1 : 0;
}
