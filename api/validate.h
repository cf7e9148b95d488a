/*
 * validate.h - the checks of request bodies and parameters, shared by the
 * handlers (POST /v1/jobs, POST /v1/batches, PUT /v1/scenarios/{name}, the
 * list filters).
 *
 * DESIGN: a check never stops at the first problem: each appends
 * {field, message} items to errs (a JSON array) and fills what it checked
 * on success; nothing is filled for a field in error. The handler answers
 * with every error at once (api_invalid_fields()), so a client fixes its
 * request in one round, and a bad request changes nothing.
 */
#ifndef PARLEY_VALIDATE_H
#define PARLEY_VALIDATE_H

#include <jansson.h>

#include "api/api.h"
#include "db/job.h"
#include "db/scenario.h"

/* Appends {field, message}; both may be cut text (they are made valid UTF-8). */
void api_field_error(json_t *errs, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Every key of o not in keys (NULL-terminated) is an error "<prefix><key>: unknown field". */
void api_reject_unknown(json_t *o, const char *const *keys, const char *prefix, json_t *errs);
/* Whether key is one of keys (NULL-terminated). */
int api_validate_known(const char *key, const char *const *keys);
/* A label key: 1 to 64 of A-Z a-z 0-9 _ - . */
int api_validate_label_key(const char *k);
/* A scenario name: 1 to 64 of a-z 0-9 _ - */
int api_slug_valid(const char *s);

/* p (borrowed, may be NULL) as {model, backend?}; backend defaults to the first configured. */
void api_check_party(struct api_req *q, json_t *p, const char *field, char **model, char **backend,
		     json_t *errs);
/*
 * The same check, kept as the compact JSON {"model": ..., "backend": ...} a job stores for
 * its judge or extractor; NULL when p did not pass (errs says why). Free the result.
 */
char *api_check_party_json(struct api_req *q, json_t *p, const char *field, json_t *errs);
/* v: a stored scenario's name or an inline object; fills j->scenario_name and j->scenario. */
void api_check_scenario(struct api_req *q, json_t *v, const char *field, struct db_job *j,
			json_t *errs);
/* max_turns, options, scoring, judge, extraction, labels of body, defaults filled into j. */
void api_check_job_fields(struct api_req *q, json_t *body, struct db_job *j, json_t *errs);
/*
 * A scenario object; field errors are appended to errs with prefix
 * ("scenario." for an inline one). Fills out on success (name may be NULL).
 */
int api_scenario_validate(json_t *o, const char *prefix, struct db_scenario *out, json_t *errs);

/*
 * The paging parameters of a list: limit (1 to 500, default 50) and cursor
 * (what api_list_page() gave out; 0 when none). -1 with r filled (400) when
 * one is bad.
 */
int api_list_params(struct api_req *q, struct api_resp *r, int *limit, int64_t *before);

/* The 400 problem listing errs (stolen); its detail is the first error. */
void api_invalid_fields(struct api_resp *r, json_t *errs);

/* "extractor": the model of extraction "model" (else the judge's); fills j->extractor
 * (api/import.c). */
void api_check_extractor(struct api_req *q, json_t *body, struct db_job *j, json_t *errs);

#endif
