/*
 * stats.c - the figures of the closed loop. See stats.h.
 */
#include "server/stats.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "db/util.h"

/* Scores are means of small fractions: closer than this they are equal. */
#define EPS 1e-9

int stats_objective_kind(const char *name)
{
	if (strcmp(name, "quality") == 0)
		return OBJECTIVE_QUALITY;
	if (strcmp(name, "latency") == 0)
		return OBJECTIVE_LATENCY;
	if (strcmp(name, "balanced") == 0)
		return OBJECTIVE_BALANCED;
	return -1;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static double *sorted(const double *v, size_t n)
{
	double *s = xmalloc((n ? n : 1) * sizeof(*s));

	memcpy(s, v, n * sizeof(*s));
	qsort(s, n, sizeof(*s), cmp_double);
	return s;
}

double stats_median(const double *v, size_t n)
{
	double *s, m;

	if (n == 0)
		return 0;
	s = sorted(v, n);
	m = n % 2 ? s[n / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
	free(s);
	return m;
}

double stats_p90(const double *v, size_t n)
{
	double *s, p;
	size_t rank;

	if (n == 0)
		return 0;
	s = sorted(v, n);
	rank = (size_t)ceil(0.9 * (double)n); /* 1-based */
	p = s[(rank ? rank : 1) - 1];
	free(s);
	return p;
}

void stats_figures(const struct task_outcome *c, size_t n, struct figures *out)
{
	double *wall = xmalloc((n ? n : 1) * sizeof(*wall)),
	       *ttft = xmalloc((n ? n : 1) * sizeof(*ttft));
	size_t i, ntasks = 0, k;
	int *all_passed;
	double sum = 0, tokens = 0;

	memset(out, 0, sizeof(*out));
	for (i = 0; i < n; i++)
		if (c[i].task + 1 > ntasks)
			ntasks = c[i].task + 1;
	all_passed = xcalloc(ntasks ? ntasks : 1, sizeof(*all_passed));
	for (i = 0; i < ntasks; i++)
		all_passed[i] = -1; /* no call seen */
	for (i = 0; i < n; i++) {
		int ok = c[i].passed && !c[i].failed;
		sum += c[i].failed ? 0 : c[i].score;
		wall[i] = c[i].wall_ms;
		ttft[i] = c[i].ttft_ms;
		tokens += c[i].completion_tokens;
		all_passed[c[i].task] =
		    all_passed[c[i].task] < 0 ? ok : all_passed[c[i].task] && ok;
		out->failed_calls += c[i].failed != 0;
	}
	for (k = 0; k < ntasks; k++) {
		out->tasks += all_passed[k] >= 0;
		out->passed += all_passed[k] == 1;
	}
	out->calls = (int)n;
	if (n) {
		out->score = sum / (double)n;
		out->median_ms = stats_median(wall, n);
		out->p90_ms = stats_p90(wall, n);
		out->ttft_ms = stats_median(ttft, n);
		out->completion_tokens = tokens / (double)n;
	}
	free(all_passed);
	free(wall);
	free(ttft);
}

double stats_t95(size_t df)
{
	/* two-sided 95 %, df 1..30 */
	static const double t[] = {12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306,
				   2.262,  2.228, 2.201, 2.179, 2.160, 2.145, 2.131, 2.120,
				   2.110,  2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064,
				   2.060,  2.056, 2.052, 2.048, 2.045, 2.042};
	static const struct {
		size_t df;
		double t;
	} more[] = {{40, 2.021}, {60, 2.000}, {120, 1.980}};
	double v = 2.042;
	size_t i;

	if (df == 0)
		return INFINITY;
	if (df <= 30)
		return t[df - 1];
	for (i = 0; i < sizeof(more) / sizeof(more[0]) && more[i].df <= df; i++)
		v = more[i].t;
	return df > 1000 ? 1.960 : v;
}

int stats_paired_interval(const double *a, const double *b, size_t n, struct interval *out)
{
	double mean = 0, ss = 0, se;
	size_t i;

	memset(out, 0, sizeof(*out));
	out->n = n;
	if (n < 2)
		return -1;
	for (i = 0; i < n; i++)
		mean += a[i] - b[i];
	mean /= (double)n;
	for (i = 0; i < n; i++) {
		double d = a[i] - b[i] - mean;
		ss += d * d;
	}
	se = sqrt(ss / (double)(n - 1)) / sqrt((double)n);
	out->mean = mean;
	out->lo = mean - stats_t95(n - 1) * se;
	out->hi = mean + stats_t95(n - 1) * se;
	return 0;
}

static double mean_of(const double *v, size_t n)
{
	double s = 0;
	size_t i;

	for (i = 0; i < n; i++)
		s += v[i];
	return n ? s / (double)n : 0;
}

int stats_verified(const struct objective *o, const double *score_t, const double *score_0,
		   const double *ms_t, const double *ms_0, size_t n, struct interval *out)
{
	struct interval iv;
	double *a, *b;
	size_t i;
	int ok = 0;

	switch (o->kind) {
	case OBJECTIVE_QUALITY:
		ok = stats_paired_interval(score_t, score_0, n, &iv) == 0 && iv.lo > EPS;
		break;
	case OBJECTIVE_LATENCY:
		ok = stats_paired_interval(ms_t, ms_0, n, &iv) == 0 && iv.hi < 0 &&
		     mean_of(score_t, n) >= mean_of(score_0, n) - o->max_quality_drop - EPS;
		break;
	case OBJECTIVE_BALANCED:
		/* score per second of each call; a call cannot take less than a millisecond */
		a = xmalloc((n ? n : 1) * sizeof(*a));
		b = xmalloc((n ? n : 1) * sizeof(*b));
		for (i = 0; i < n; i++) {
			a[i] = score_t[i] / (fmax(ms_t[i], 1) / 1000);
			b[i] = score_0[i] / (fmax(ms_0[i], 1) / 1000);
		}
		ok = stats_paired_interval(a, b, n, &iv) == 0 && iv.lo > EPS;
		free(a);
		free(b);
		break;
	}
	if (out)
		*out = iv;
	return ok;
}

static double per_second(const struct figures *f)
{
	return f->score / (fmax(f->median_ms, 1) / 1000);
}

int stats_better(const struct objective *o, const struct figures *cand, const struct figures *best,
		 const struct figures *base)
{
	switch (o->kind) {
	case OBJECTIVE_QUALITY:
		if (cand->score > best->score + EPS)
			return 1;
		return fabs(cand->score - best->score) <= EPS && cand->median_ms < best->median_ms;
	case OBJECTIVE_LATENCY:
		return cand->score >= base->score - o->max_quality_drop - EPS &&
		       cand->median_ms < best->median_ms;
	case OBJECTIVE_BALANCED:
		return per_second(cand) > per_second(best) * (1 + EPS);
	}
	return 0;
}

int stats_early_stop(const struct objective *o, double sum, size_t done, size_t total,
		     const struct figures *best, const struct figures *base)
{
	double reachable;

	if (total == 0 || done * 2 < total || done >= total)
		return 0;
	reachable = (sum + (double)(total - done)) / (double)total;
	switch (o->kind) {
	case OBJECTIVE_QUALITY:
		return reachable < best->score - EPS;
	case OBJECTIVE_LATENCY:
		return reachable < base->score - o->max_quality_drop - EPS;
	case OBJECTIVE_BALANCED:
		return 0;
	}
	return 0;
}
