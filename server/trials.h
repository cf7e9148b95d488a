/*
 * trials.h - the closed loop (DESIGN §7): running one trial, a configuration
 * {system, template, options} on a list of a scenario's tasks.
 *
 * DESIGN: the calling worker (which owns the job's claim and its database
 * connection) is the coordinator. Task calls are one-shot and independent, so
 * up to the backend's call slots of them run at once on short-lived threads,
 * each with its own curl handle; every call takes a fleet slot like a turn,
 * so other jobs on the same backend keep their share. All calls of a trial
 * send the same system prompt first, so the backend's prompt cache serves it
 * after the first call. The threads only talk to the model and check the
 * reply; results come back to the coordinator through a mutex-guarded array
 * and a condition variable, and the coordinator stores each call
 * (db/trial.h) as it arrives. So a trial interrupted by a restart resumes at
 * its first task without a stored call, and none is stored twice. After every
 * stored call the coordinator applies the early-stop rule (stats.h); on early
 * stop or cancel it raises the trial's stop flag, which aborts the calls in
 * flight within a fraction of a second and wakes the threads waiting for a
 * slot.
 */
#ifndef PARLEY_TRIALS_H
#define PARLEY_TRIALS_H

#include <jansson.h>
#include <stdatomic.h>

#include "db/db.h"
#include "db/job.h"
#include "db/turn.h"
#include "server/checks.h"
#include "server/config.h"
#include "server/fleet.h"
#include "server/stats.h"

/* Threads of one trial at most, whatever the backend's slots. */
#define TRIALS_MAX_PARALLEL 16

struct trial_task {
	const char *id, *input;
	struct checks checks; /* compiled (checks.h) */
};

struct trial_spec {
	const char *job_id;
	int attempt;	   /* the job's claim: every write is fenced by it */
	int n;		   /* the trial's number; the trial row must exist (db_trial_begin) */
	const char *split; /* "train" or "holdout" */
	/* the configuration tested */
	const char *system, *template; /* template holds "{input}" */
	json_t *options;	       /* borrowed; may be NULL */
	/* the tasks: tasks[i] is the scenario's task idx[i] */
	const struct trial_task *tasks;
	const size_t *idx;
	size_t ntasks;
	int repeat; /* 1..5 */
	const char *backend, *model;
	/* the judge of judge checks (structured output yes/no); NULL when the tasks have none */
	const char *judge_backend, *judge_model;
	/* early stop: when best is not NULL, a trial that cannot reach it stops (stats.h) */
	struct objective objective;
	const struct figures *best, *base;
};

struct trial_ctx {
	const struct config *cfg;
	struct fleet *fleet;
	struct db *db;
	const atomic_int *cancel; /* the job's cancel flag (also raised at shutdown) */
	/* the slots the job's conversation holds, which its own task calls may use; or NULL */
	const struct fleet_lease *lease;
};

enum trial_end {
	TRIAL_DONE,	 /* every call made and stored */
	TRIAL_STOPPED,	 /* stopped early: it could not reach the best */
	TRIAL_CANCELLED, /* the job's cancel flag was raised; the stored calls stay */
	TRIAL_ERROR,	 /* the store failed (e says why): nothing more can be written */
};

/* One failing call, for the result the interviewer sees. */
struct trial_failure {
	char *task_id, *input, *reply, *why;
	double score;
	size_t k; /* index into the spec's tasks, then the repeat: the order among equal scores */
	int rep;
};

#define TRIAL_MAX_FAILURES 3

struct trial_outcome {
	enum trial_end end;
	struct figures fig; /* of the calls stored, resumed ones included */
	int resumed;	    /* calls found already stored */
	int made;	    /* calls made now */
	int skipped;	    /* calls not made because the trial stopped early */
	struct trial_failure fail[TRIAL_MAX_FAILURES]; /* the worst, lowest score first */
	int nfail;
};

void trial_outcome_release(struct trial_outcome *o);

/* "{input}" in template replaced by input: a new string. */
char *trials_render(const char *template, const char *input);

/*
 * Runs (or resumes) one trial: repeat x ntasks calls of model on backend,
 * stores each, and fills out. Returns 0, or -1 when it could not even start
 * (e says why: no such backend, the store failed).
 */
int trials_run(const struct trial_ctx *ctx, const struct trial_spec *spec,
	       struct trial_outcome *out, struct perr *e);

/* The loop of a job with "optimize". */

#define TRIALS_DEFAULT_MAX_TRIALS 5
#define TRIALS_DEFAULT_REPEAT 1
#define TRIALS_DEFAULT_HOLDOUT 0.3
#define TRIALS_DEFAULT_MAX_TURNS 11
/* Trials in a row that do not beat the best before the loop ends. */
#define TRIALS_MAX_STALE 3

/*
 * Checks a job's "optimize" object. Faults go to errs (ferr.h) under "optimize".
 * On success *norm is a new object {max_trials, repeat, holdout, seed} with the
 * defaults written out.
 */
int trials_optimize_check(json_t *v, json_t **norm, json_t *errs);

/* Whether a scenario snapshot can be optimized on: it has tasks, and when one has a judge
 * check, have_judge says the job names a judge model. A fault goes to errs under field. */
int trials_scenario_check(const json_t *scenario, const char *field, int have_judge, json_t *errs);

/*
 * The candidates of a batch ranked by what held up: for each candidate (model on
 * backend) of the jobs with optimize, how many of its jobs found a verified
 * improvement and the mean holdout change of their best trials; more verified
 * first, then the larger mean score change, then the larger drop in median time.
 * A new array [{rank, model, backend, jobs, verified, holdout_checked,
 * mean_holdout_delta_score, mean_holdout_delta_median_ms}], or NULL with e set.
 */
json_t *trials_rank(struct db *db, const struct db_job *jobs, size_t n, struct perr *e);

struct trials_loop;

/*
 * Opens the loop of a claimed job whose optimize is set (NULL, without error,
 * when it is not): the tasks and their train/holdout split, and what the
 * store already holds of its trials (a resumed job goes on where it was).
 * judge is the job's judge, JSON text {model, backend}, for judge checks (may be
 * NULL when no task has one). stopping is the worker pool's shutdown flag. NULL with e set when the
 * job's stored scenario cannot be used.
 */
struct trials_loop *trials_loop_open(const struct trial_ctx *ctx, const char *job_id, int attempt,
				     const char *optimize, const json_t *scenario,
				     const char *backend, const char *model, const char *judge,
				     const atomic_int *stopping, struct perr *e);
void trials_loop_close(struct trials_loop *l);

/*
 * Runs (or resumes) the baseline, trial 0, and appends what the interviewer
 * must know to *interviewer_system (replaced by a new string): the
 * baseline's figures and worst failures, and how to propose.
 */
enum trial_end trials_loop_baseline(struct trials_loop *l, char **interviewer_system,
				    struct perr *e);

/*
 * Tests the first proposal of the interviewer's turn idx (its text), unless
 * the loop has ended; idempotent, so a resumed job calls it again for its last
 * interviewer turn. Returns TRIAL_DONE when there was nothing (more) to do.
 */
enum trial_end trials_loop_turn(struct trials_loop *l, int idx, const char *text, struct perr *e);

/* The interviewer's analysis turn: analysis, or earlier when the loop ended after a trial. */
int trials_loop_analysis(const struct trials_loop *l, int analysis);

/*
 * The messages of a turn with the loop's "parley" items placed after the
 * interviewer turns they answer, as user messages. msgs/n are what
 * prompt_messages() gave for turns; the result is owned by l and valid until
 * the next call.
 */
const struct chat_msg *trials_loop_messages(struct trials_loop *l, const struct db_turn *turns,
					    size_t nturns, int interviewer,
					    const struct chat_msg *msgs, size_t *n);

/* The verification: the best trial and the baseline on the held-out tasks. */
enum trial_end trials_loop_verify(struct trials_loop *l, struct perr *e);

/*
 * The loop's view for the API: trials [{n, kind, turn, proposal, config, status,
 * reason?, split, score, passed, tasks, median_ms, p90_ms, ttft_ms,
 * completion_tokens, vs_baseline, calls, message}] into *trials (with_calls: and
 * task_calls, every call with input, reply, checks and timings) and the best so
 * far {trial, proposal, config, train, holdout, delta, verified, interval} into
 * *best (holdout, delta and interval null until the verification ran). optimize
 * is the job's optimize text and scenario its snapshot. Returns -1 with e set
 * when the store fails.
 */
int trials_view(struct db *db, const char *job_id, const char *optimize, const json_t *scenario,
		int with_calls, json_t **trials, json_t **best, struct perr *e);

#endif
