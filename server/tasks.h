/*
 * tasks.h - the work a scenario carries for the closed loop (DESIGN §7):
 * baseline, tasks and objective, as they are submitted and stored.
 *
 * DESIGN: one validation for the library (PUT /v1/scenarios/{name}) and for
 * inline scenarios of a job, so both refuse the same things with the same
 * field paths. Validation compiles every check (checks.h) and throws the
 * result away; what is stored is the submitted data made explicit (the
 * defaults written out), so a job's snapshot says exactly what it ran.
 */
#ifndef PARLEY_TASKS_H
#define PARLEY_TASKS_H

#include <jansson.h>

#define TASKS_MIN 4
#define TASKS_MAX 500
#define TASKS_MAX_ID 64
#define TASKS_MAX_INPUT 16384  /* bytes of a task's input */
#define TASKS_MAX_PROMPT 16384 /* bytes of a system prompt or a template */
#define TASKS_DEFAULT_QUALITY_DROP 0.02

/*
 * Checks candidate model options (temperature, top_p, top_k, seed,
 * num_predict, num_ctx, stop), as a job's options are checked. Faults go to
 * errs (ferr.h) as "<prefix>.<key>". Returns 0 or -1.
 */
int tasks_options_check(json_t *o, const char *prefix, json_t *errs);

/*
 * Checks the baseline, tasks and objective fields of the scenario object sc
 * (any of them may be absent; the other fields of sc are not looked at).
 * Faults go to errs with paths under prefix ("" for the library, "scenario."
 * for an inline scenario). On success returns 0 and sets *work (when not
 * NULL) to a new object holding the present fields with their defaults
 * written out: baseline {system, template, options}, tasks [{id, input,
 * checks}] with every id a string, objective {kind, max_quality_drop}. When
 * tasks are present so are baseline and objective. Returns -1 on a fault.
 */
int tasks_validate(json_t *sc, const char *prefix, json_t **work, json_t *errs);

#endif
