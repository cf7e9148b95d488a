/*
 * check_stats.c - the closed loop's figures against values computed by hand:
 * a trial's score, passed tasks and latency percentiles, the paired 95 %
 * interval, `verified` under each objective, the choice of the best (a tie
 * does not win) and the early-stop rule.
 */
#include <check.h>
#include <math.h>

#include "server/stats.h"

#define NEAR(a, b)                                                                                 \
	ck_assert_msg(fabs((a) - (b)) < 1e-4, "%.6f is not %.6f", (double)(a), (double)(b))

START_TEST(test_percentiles)
{
	double odd[] = {5, 1, 3}, even[] = {40, 10, 30, 20}, ten[10], twenty[20];
	int i;

	for (i = 0; i < 10; i++)
		ten[i] = 10 - i;
	for (i = 0; i < 20; i++)
		twenty[i] = i + 1;
	NEAR(stats_median(odd, 3), 3);
	NEAR(stats_median(even, 4), 25);
	NEAR(stats_median(odd, 0), 0);
	NEAR(stats_p90(ten, 10), 9);	 /* ceil(9.0) = 9th of 1..10 */
	NEAR(stats_p90(twenty, 20), 18); /* ceil(18.0) = 18th */
	NEAR(stats_p90(odd, 3), 5);	 /* ceil(2.7) = 3rd */
	NEAR(stats_p90(odd, 1), 5);
}
END_TEST

START_TEST(test_figures)
{
	/* three tasks, two repeats; task 2's first call failed at the backend */
	struct task_outcome c[] = {
	    {0, 0, 1.0, 1, 0, 100, 10, 20}, {0, 1, 0.5, 0, 0, 300, 30, 40},
	    {1, 0, 1.0, 1, 0, 200, 20, 30}, {1, 1, 1.0, 1, 0, 400, 40, 50},
	    {2, 0, 0.7, 1, 1, 50, 5, 0},    {2, 1, 0.0, 0, 0, 250, 25, 60},
	};
	struct figures f;

	stats_figures(c, 6, &f);
	NEAR(f.score, 3.5 / 6); /* the failed call counts 0 whatever it says */
	ck_assert_int_eq(f.tasks, 3);
	ck_assert_int_eq(f.passed, 1); /* only task 1 passed on every repeat */
	NEAR(f.median_ms, 225);	       /* 50 100 200 | 250 300 400 */
	NEAR(f.p90_ms, 400);
	NEAR(f.ttft_ms, 22.5);
	NEAR(f.completion_tokens, 200.0 / 6);
	ck_assert_int_eq(f.calls, 6);
	ck_assert_int_eq(f.failed_calls, 1);
}
END_TEST

START_TEST(test_t_values)
{
	NEAR(stats_t95(1), 12.706);
	NEAR(stats_t95(4), 2.776);
	NEAR(stats_t95(30), 2.042);
	NEAR(stats_t95(45), 2.021); /* between 40 and 60: the wider one */
	NEAR(stats_t95(200), 1.980);
	NEAR(stats_t95(5000), 1.960);
}
END_TEST

START_TEST(test_paired_interval)
{
	double a[] = {11, 12, 13, 14, 15}, b[] = {10, 10, 10, 10, 10};
	double c[] = {1, 0, 1, 1}, d[] = {0.5, 0.5, 0.5, 0.5};
	struct interval iv;

	/* d = 1..5: mean 3, s = sqrt(2.5), se = 0.707107, t(4) = 2.776 */
	ck_assert_int_eq(stats_paired_interval(a, b, 5, &iv), 0);
	NEAR(iv.mean, 3);
	NEAR(iv.lo, 3 - 2.776 * 0.7071068);
	NEAR(iv.hi, 3 + 2.776 * 0.7071068);
	/* d = .5 -.5 .5 .5: mean .25, s = .5, se = .25, t(3) = 3.182 */
	ck_assert_int_eq(stats_paired_interval(c, d, 4, &iv), 0);
	NEAR(iv.lo, 0.25 - 3.182 * 0.25);
	NEAR(iv.hi, 0.25 + 3.182 * 0.25);
	ck_assert_int_eq(stats_paired_interval(a, b, 1, &iv), -1);
}
END_TEST

START_TEST(test_verified)
{
	struct objective q = {OBJECTIVE_QUALITY, 0.02}, l = {OBJECTIVE_LATENCY, 0.02};
	struct objective bal = {OBJECTIVE_BALANCED, 0.02};
	double st[] = {1, 1, 1, 1, 0.5}, s0[] = {0, 0, 0, 0.5, 0.5};
	double ms[] = {100, 100, 100, 100, 100};
	double c[] = {1, 0, 1, 1}, d[] = {0.5, 0.5, 0.5, 0.5}, ms4[] = {100, 100, 100, 100};
	double lt[] = {100, 110, 90, 105}, l0[] = {200, 190, 210, 205};
	double s9[] = {0.9, 0.9, 0.9, 0.9}, s10[] = {1, 1, 1, 1};
	struct interval iv;

	/* d = 1 1 1 .5 0: mean .7, s = sqrt(.2), se = .2, t(4) = 2.776: [.1448, 1.2552] */
	ck_assert(stats_verified(&q, st, s0, ms, ms, 5, &iv));
	NEAR(iv.lo, 0.7 - 2.776 * 0.2);
	/* the interval of .25 +- .7955 holds 0 */
	ck_assert(!stats_verified(&q, c, d, ms4, ms4, 4, &iv));
	/* the same scores the other way round are worse, not better */
	ck_assert(!stats_verified(&q, s0, st, ms, ms, 5, NULL));
	/* latency: d = -100 -80 -120 -100, mean -100, se 8.165, t(3) 3.182: [-126, -74] */
	ck_assert(stats_verified(&l, s10, s10, lt, l0, 4, &iv));
	NEAR(iv.hi, -100 + 3.182 * 8.164966);
	/* faster, but the mean score fell .1 where .02 is allowed */
	ck_assert(!stats_verified(&l, s9, s10, lt, l0, 4, NULL));
	l.max_quality_drop = 0.1;
	ck_assert(stats_verified(&l, s9, s10, lt, l0, 4, NULL));
	/* slower is never verified under latency */
	ck_assert(!stats_verified(&l, s10, s10, l0, lt, 4, NULL));
	/* balanced: the same score in about half the time */
	ck_assert(stats_verified(&bal, s10, s10, lt, l0, 4, &iv));
	ck_assert(iv.lo > 0);
	ck_assert(!stats_verified(&bal, s10, s10, l0, lt, 4, NULL));
	/* one pair measures no noise: never verified */
	ck_assert(!stats_verified(&q, st, s0, ms, ms, 1, NULL));
}
END_TEST

static struct figures fig(double score, double median_ms)
{
	struct figures f = {0};

	f.score = score;
	f.median_ms = median_ms;
	return f;
}

START_TEST(test_better)
{
	struct objective q = {OBJECTIVE_QUALITY, 0.02}, l = {OBJECTIVE_LATENCY, 0.02};
	struct objective bal = {OBJECTIVE_BALANCED, 0.02};
	struct figures base = fig(0.9, 200), best = fig(0.7, 150);

	ck_assert(
	    stats_better(&q, &(struct figures){.score = 0.8, .median_ms = 900}, &best, &base));
	ck_assert(
	    stats_better(&q, &(struct figures){.score = 0.7, .median_ms = 149}, &best, &base));
	ck_assert(
	    !stats_better(&q, &(struct figures){.score = 0.7, .median_ms = 150}, &best, &base));
	ck_assert(
	    !stats_better(&q, &(struct figures){.score = 0.69, .median_ms = 1}, &best, &base));
	/* latency: faster wins while the score stays within .02 of the baseline's .9 */
	ck_assert(
	    stats_better(&l, &(struct figures){.score = 0.89, .median_ms = 100}, &best, &base));
	ck_assert(
	    stats_better(&l, &(struct figures){.score = 0.88, .median_ms = 100}, &best, &base));
	ck_assert(
	    !stats_better(&l, &(struct figures){.score = 0.85, .median_ms = 10}, &best, &base));
	ck_assert(
	    !stats_better(&l, &(struct figures){.score = 1.0, .median_ms = 150}, &best, &base));
	/* balanced: .8 in 2 s (.4/s) beats .9 in 3 s (.3/s); the same rate is a tie */
	best = fig(0.9, 3000);
	ck_assert(
	    stats_better(&bal, &(struct figures){.score = 0.8, .median_ms = 2000}, &best, &base));
	ck_assert(
	    !stats_better(&bal, &(struct figures){.score = 0.6, .median_ms = 2000}, &best, &base));
}
END_TEST

START_TEST(test_early_stop)
{
	struct objective q = {OBJECTIVE_QUALITY, 0.02}, l = {OBJECTIVE_LATENCY, 0.1};
	struct objective bal = {OBJECTIVE_BALANCED, 0.02};
	struct figures best = fig(0.8, 100), base = fig(0.9, 200);

	ck_assert(!stats_early_stop(&q, 0, 4, 10, &best, &base));   /* not half yet */
	ck_assert(stats_early_stop(&q, 0, 5, 10, &best, &base));    /* at most .5 < .8 */
	ck_assert(!stats_early_stop(&q, 3.5, 5, 10, &best, &base)); /* can reach .85 */
	ck_assert(!stats_early_stop(&q, 3, 5, 10, &best, &base)); /* can tie .8: latency decides */
	ck_assert(stats_early_stop(&q, 2.9, 5, 10, &best, &base));
	ck_assert(!stats_early_stop(&q, 0, 10, 10, &best, &base)); /* finished: nothing to save */
	/* latency: needs .8 (the baseline's .9 less .1); 1.5 + 4 of 10 is .55 */
	ck_assert(stats_early_stop(&l, 1.5, 6, 10, &best, &base));
	ck_assert(!stats_early_stop(&l, 4, 6, 10, &best, &base));
	ck_assert(!stats_early_stop(&bal, 0, 9, 10, &best, &base));
}
END_TEST

int main(void)
{
	Suite *s = suite_create("stats");
	TCase *tc = tcase_create("figures");
	SRunner *sr;
	int failed;

	tcase_add_test(tc, test_percentiles);
	tcase_add_test(tc, test_figures);
	tcase_add_test(tc, test_t_values);
	tcase_add_test(tc, test_paired_interval);
	tcase_add_test(tc, test_verified);
	tcase_add_test(tc, test_better);
	tcase_add_test(tc, test_early_stop);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
