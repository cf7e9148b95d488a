/*
 * stats.h - the figures of the closed loop (DESIGN §7), as pure functions:
 * a trial's score and latency from its task calls, the paired 95 % interval
 * that decides `verified`, the early-stop rule and the choice of the best.
 *
 * Definitions (the loop, the report and the tests share them):
 *   - a call's score is the share of its task's checks that passed; a call
 *     whose backend failed scores 0;
 *   - a trial's score is the mean call score; `passed` counts the tasks that
 *     passed on every repeat; `tasks` counts the tasks;
 *   - median: the middle value, or the mean of the two middle ones; p90: the
 *     nearest rank, the ceil(0.9 n)-th smallest;
 *   - ttft_ms is the median time to first token; completion_tokens the mean.
 */
#ifndef PARLEY_STATS_H
#define PARLEY_STATS_H

#include <stddef.h>

enum objective_kind { OBJECTIVE_QUALITY, OBJECTIVE_LATENCY, OBJECTIVE_BALANCED };

struct objective {
	enum objective_kind kind;
	double max_quality_drop; /* latency: how far the mean score may fall below the baseline's */
};

/* "quality", "latency", "balanced" -> kind; -1 when unknown. */
int stats_objective_kind(const char *name);

/* One task call's outcome. */
struct task_outcome {
	size_t task;  /* index of the task in the trial's task list */
	int repeat;   /* 0 .. repeat-1 */
	double score; /* share of the checks that passed, 0..1 */
	int passed;   /* every check passed */
	int failed;   /* the backend call failed (score 0, passed 0) */
	double wall_ms, ttft_ms, completion_tokens;
};

struct figures {
	double score;
	int passed, tasks;
	double median_ms, p90_ms, ttft_ms, completion_tokens;
	int calls, failed_calls;
};

double stats_median(const double *v, size_t n);
double stats_p90(const double *v, size_t n);

/* The figures of a trial from its calls (any order). */
void stats_figures(const struct task_outcome *c, size_t n, struct figures *out);

/* The two-sided 95 % critical value of Student's t for df degrees of freedom (df >= 1);
 * for a df between tabulated ones, the value of the next smaller one (wider, so safe). */
double stats_t95(size_t df);

struct interval {
	double mean, lo, hi;
	size_t n;
};

/*
 * The 95 % interval of the mean of a[i] - b[i] (paired), by the t distribution.
 * Returns -1 when n < 2 (no spread to measure), else 0.
 */
int stats_paired_interval(const double *a, const double *b, size_t n, struct interval *out);

/*
 * Whether a trial's holdout improvement over the baseline is larger than its noise:
 * score_t/score_0 and ms_t/ms_0 are the paired per-(task, repeat) scores and wall
 * times of the trial and the baseline. quality: the interval of the score
 * difference lies above 0; latency: the interval of the time difference lies below
 * 0 and the mean score fell by no more than max_quality_drop; balanced: the
 * interval of the difference in score per second lies above 0. out (may be NULL)
 * receives the interval of the objective's difference.
 */
int stats_verified(const struct objective *o, const double *score_t, const double *score_0,
		   const double *ms_t, const double *ms_0, size_t n, struct interval *out);

/*
 * Whether a trial may become the best: cand beats best under the objective (a tie
 * does not); base is the baseline, which the latency objective's quality floor is
 * measured from.
 */
int stats_better(const struct objective *o, const struct figures *cand, const struct figures *best,
		 const struct figures *base);

/*
 * The early-stop rule: after done of total calls, whose scores sum to sum, can the
 * trial still reach the score it needs (the best's for quality, the baseline's
 * less max_quality_drop for latency) if every remaining call scores 1? Stops only
 * once at least half the calls are done. balanced never stops early (latency is
 * not known until the end). Returns 1 to stop.
 */
int stats_early_stop(const struct objective *o, double sum, size_t done, size_t total,
		     const struct figures *best, const struct figures *base);

#endif
