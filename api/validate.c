/*
 * validate.c - the checks of request bodies and parameters. See validate.h.
 */
#include "api/validate.h"
#include "api/views.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db/scenario.h"
#include "server/extract.h"
#include "server/fleet.h"
#include "server/prompt.h"
#include "server/score.h"
#include "server/tasks.h"

#define MAX_MODEL_LEN 200
#define MAX_LABELS 16

void api_field_error(json_t *errs, const char *field, const char *fmt, ...)
{
	char msg[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	/* both may end inside a UTF-8 character ("%.64s" of a key): never lose the error */
	json_array_append_new(errs, json_pack("{s:o, s:o}", "field", api_json_text(field),
					      "message", api_json_text(msg)));
}

int api_validate_known(const char *key, const char *const *keys)
{
	for (; *keys; keys++)
		if (strcmp(key, *keys) == 0)
			return 1;
	return 0;
}

void api_reject_unknown(json_t *o, const char *const *keys, const char *prefix, json_t *errs)
{
	const char *key;
	json_t *v; /* borrowed */
	char field[128];

	json_object_foreach(o, key, v)
	{
		if (api_validate_known(key, keys))
			continue;
		snprintf(field, sizeof(field), "%s%s", prefix, key);
		api_field_error(errs, field, "unknown field");
	}
}

/* Whether s holds a control character: a name with one could forge a log line or
 * drive a terminal, and no model or backend is named so. */
static int has_control(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			return 1;
	return 0;
}

char *api_check_party_json(struct api_req *q, json_t *p, const char *field, json_t *errs)
{
	char *model = NULL, *backend = NULL, *s = NULL;

	api_check_party(q, p, field, &model, &backend, errs);
	if (model && backend) {
		json_t *o = json_pack("{s:s, s:s}", "model", model, "backend", backend);

		s = json_dumps(o, JSON_COMPACT);
		json_decref(o);
	}
	free(model);
	free(backend);
	return s;
}

void api_check_party(struct api_req *q, json_t *p, const char *name, char **model, char **backend,
		     json_t *errs)
{
	static const char *const keys[] = {"model", "backend", NULL};
	json_t *m, *b; /* borrowed */
	char field[64], prefix[64];
	const char *bname;

	if (!p) {
		api_field_error(errs, name,
				"required: an object {\"model\": ..., \"backend\": ...}");
		return;
	}
	if (!json_is_object(p)) {
		api_field_error(errs, name, "must be an object {\"model\": ..., \"backend\": ...}");
		return;
	}
	snprintf(prefix, sizeof(prefix), "%s.", name);
	api_reject_unknown(p, keys, prefix, errs);
	snprintf(field, sizeof(field), "%s.model", name);
	m = json_object_get(p, "model");
	if (!json_is_string(m) || !*json_string_value(m))
		api_field_error(errs, field, "required: a model name such as \"gemma3:1b\"");
	else if (strlen(json_string_value(m)) > MAX_MODEL_LEN)
		api_field_error(errs, field, "longer than %d characters", MAX_MODEL_LEN);
	else if (has_control(json_string_value(m)))
		api_field_error(errs, field,
				"holds a control character (a newline, a tab, ESC, ...); model "
				"names have none");
	else
		*model = xstrdup(json_string_value(m));
	snprintf(field, sizeof(field), "%s.backend", name);
	b = json_object_get(p, "backend");
	if (b && !json_is_string(b)) {
		api_field_error(errs, field, "must be the name of a configured backend");
		return;
	}
	bname = b ? json_string_value(b) : fleet_default_name(q->deps->fleet);
	if (has_control(bname)) {
		api_field_error(errs, field, "holds a control character; backend names have none");
		return;
	}
	if (!fleet_find(q->deps->fleet, bname)) {
		api_field_error(errs, field, "no backend named '%s'; GET /v1/backends lists them",
				bname);
		return;
	}
	*backend = xstrdup(bname);
}

static void check_options(json_t *o, json_t *errs)
{
	const char *key;
	json_t *v; /* borrowed */
	char field[96];
	size_t i;

	if (!json_is_object(o)) {
		api_field_error(errs, "options", "must be an object");
		return;
	}
	json_object_foreach(o, key, v)
	{
		snprintf(field, sizeof(field), "options.%s", key);
		if (strcmp(key, "temperature") == 0) {
			if (!json_is_number(v) || json_number_value(v) < 0 ||
			    json_number_value(v) > 2)
				api_field_error(errs, field, "must be a number from 0 to 2");
		} else if (strcmp(key, "top_p") == 0) {
			if (!json_is_number(v) || json_number_value(v) < 0 ||
			    json_number_value(v) > 1)
				api_field_error(errs, field, "must be a number from 0 to 1");
		} else if (strcmp(key, "top_k") == 0) {
			if (!json_is_integer(v) || json_integer_value(v) < 0 ||
			    json_integer_value(v) > 1000)
				api_field_error(errs, field, "must be an integer from 0 to 1000");
		} else if (strcmp(key, "seed") == 0) {
			if (!json_is_integer(v))
				api_field_error(errs, field, "must be an integer");
		} else if (strcmp(key, "num_predict") == 0) {
			if (!json_is_integer(v) || json_integer_value(v) < -1 ||
			    json_integer_value(v) == 0 || json_integer_value(v) > 1 << 20)
				api_field_error(errs, field,
						"must be -1 (no limit) or a positive integer");
		} else if (strcmp(key, "num_ctx") == 0) {
			if (!json_is_integer(v) || json_integer_value(v) < 256 ||
			    json_integer_value(v) > 1 << 21)
				api_field_error(errs, field,
						"must be an integer from 256 to 2097152");
		} else if (strcmp(key, "stop") == 0) {
			json_t *s; /* borrowed */
			int ok = json_is_array(v) && json_array_size(v) <= 8;
			if (ok)
				json_array_foreach(v, i, s) if (!json_is_string(s) ||
								!*json_string_value(s)) ok = 0;
			if (!ok)
				api_field_error(errs, field, "must be up to 8 non-empty strings");
		} else {
			api_field_error(errs, field,
					"unknown option; known: temperature, top_p, top_k, seed, "
					"num_predict, num_ctx, stop");
		}
	}
}

int api_validate_label_key(const char *k)
{
	size_t n = strlen(k), i;

	if (n == 0 || n > 64)
		return 0;
	for (i = 0; i < n; i++)
		if (!isalnum((unsigned char)k[i]) && k[i] != '_' && k[i] != '-' && k[i] != '.')
			return 0;
	return 1;
}

static void check_labels(json_t *o, json_t *errs)
{
	const char *key;
	json_t *v; /* borrowed */
	char field[96];

	if (!json_is_object(o)) {
		api_field_error(errs, "labels", "must be an object of strings");
		return;
	}
	if (json_object_size(o) > MAX_LABELS)
		api_field_error(errs, "labels", "at most %d labels", MAX_LABELS);
	json_object_foreach(o, key, v)
	{
		snprintf(field, sizeof(field), "labels.%.64s", key);
		if (!api_validate_label_key(key))
			api_field_error(errs, "labels",
					"key '%.64s' must be 1 to 64 of A-Z a-z 0-9 _ - .", key);
		else if (!json_is_string(v) || strlen(json_string_value(v)) > 256)
			api_field_error(errs, field, "must be a string of up to 256 characters");
	}
}

void api_check_scenario(struct api_req *q, json_t *v, const char *field, struct db_job *j,
			json_t *errs)
{
	struct db_scenario s;
	struct perr e = {0};
	json_t *snap;
	char prefix[64], name_field[80];

	snprintf(prefix, sizeof(prefix), "%s.", field);
	snprintf(name_field, sizeof(name_field), "%s.name", field);
	if (!v) {
		api_field_error(errs, field,
				"required: a scenario name (GET /v1/scenarios) or an object "
				"{name, problem, context, goal}");
		return;
	}
	if (json_is_string(v)) {
		if (db_scenario_get(q->db, json_string_value(v), &s, &e) < 0) {
			if (e.code == PERR_NOT_FOUND)
				api_field_error(
				    errs, field,
				    "no scenario named '%.64s'; GET /v1/scenarios lists them",
				    json_string_value(v));
			else
				api_field_error(errs, field, "%s", e.msg);
			return;
		}
	} else if (json_is_object(v)) {
		size_t before = json_array_size(errs);
		if (api_scenario_validate(v, prefix, &s, errs) < 0)
			return;
		if (!s.name || !api_slug_valid(s.name)) {
			if (json_array_size(errs) == before)
				api_field_error(errs, name_field,
						"required: 1 to 64 of a-z, 0-9, '_' and '-'");
			db_scenario_release(&s);
			return;
		}
	} else {
		api_field_error(errs, field, "must be a scenario name or an object");
		return;
	}
	snap = json_pack("{s:s, s:s, s:s, s:s}", "name", s.name, "problem", s.problem, "context",
			 s.context, "goal", s.goal);
	if (s.prompts)
		json_object_set_new(snap, "prompts", json_loads(s.prompts, 0, NULL));
	if (s.tasks)
		api_scenario_work_json(snap, &s);
	j->scenario_name = xstrdup(s.name);
	j->scenario = json_dumps(snap, JSON_COMPACT);
	json_decref(snap);
	db_scenario_release(&s);
}

void api_check_job_fields(struct api_req *q, json_t *body, struct db_job *j, json_t *errs)
{
	json_t *v, *judge; /* borrowed */
	enum score_method sm;
	enum extract_method em;

	j->max_turns = 3;
	if ((v = json_object_get(body, "max_turns"))) {
		if (!json_is_integer(v) || json_integer_value(v) < 3 || json_integer_value(v) > 50)
			api_field_error(errs, "max_turns", "must be an integer from 3 to 50");
		else
			j->max_turns = (int)json_integer_value(v);
	}
	if ((v = json_object_get(body, "options"))) {
		check_options(v, errs);
		j->options = json_dumps(v, JSON_COMPACT);
	}
	j->scoring = xstrdup("rubric");
	if ((v = json_object_get(body, "scoring"))) {
		if (!json_is_string(v) || score_method_parse(json_string_value(v), &sm) < 0) {
			api_field_error(errs, "scoring",
					"must be \"rubric\", \"origin\" or \"judge\"");
		} else {
			free(j->scoring);
			j->scoring = xstrdup(json_string_value(v));
		}
	}
	/* "judge": the third model that grades the transcript, only with "scoring": "judge" */
	judge = json_object_get(body, "judge");
	/* ... or the judge of the tasks' judge checks, with "optimize" */
	if (!strcmp(j->scoring, "judge") || (judge && json_object_get(body, "optimize"))) {
		if (!judge)
			api_field_error(errs, "judge",
					"required with \"scoring\": \"judge\": an object "
					"{\"model\": ..., \"backend\": ...}");
		else
			j->judge = api_check_party_json(q, judge, "judge", errs);
	} else if (judge) {
		api_field_error(errs, "judge",
				"only used with \"scoring\": \"judge\" or with \"optimize\"");
	}
	j->extraction = xstrdup("rubric");
	if ((v = json_object_get(body, "extraction"))) {
		if (!json_is_string(v) || extract_method_parse(json_string_value(v), &em) < 0)
			api_field_error(errs, "extraction",
					"must be \"rubric\", \"origin\" or \"model\"");
		else {
			free(j->extraction);
			j->extraction = xstrdup(json_string_value(v));
		}
	}
	api_check_extractor(q, body, j, errs); /* api/import.c */
	if ((v = json_object_get(body, "labels"))) {
		check_labels(v, errs);
		j->labels = json_dumps(v, JSON_COMPACT | JSON_SORT_KEYS);
	}
}

int api_slug_valid(const char *s)
{
	size_t i, n = strlen(s);

	if (n == 0 || n > 64)
		return 0;
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (!(islower(c) || isdigit(c) || c == '_' || c == '-'))
			return 0;
	}
	return 1;
}

int api_scenario_validate(json_t *o, const char *prefix, struct db_scenario *out, json_t *errs)
{
	static const char *const fields[] = {"name",	 "problem", "context",	 "goal", "prompts",
					     "baseline", "tasks",   "objective", NULL};
	json_t *work; /* owned */
	const char *key;
	json_t *v; /* borrowed */
	char field[96], msg[160];
	int i, bad = 0;

	memset(out, 0, sizeof(*out));
#define ERR(f, m)                                                                                  \
	do {                                                                                       \
		snprintf(field, sizeof(field), "%s%s", prefix, f);                                 \
		api_field_error(errs, field, "%s", m);                                             \
		bad = 1;                                                                           \
	} while (0)
	json_object_foreach(o, key, v)
	{
		for (i = 0; fields[i]; i++)
			if (strcmp(key, fields[i]) == 0)
				break;
		if (!fields[i]) {
			snprintf(msg, sizeof(msg), "unknown field '%s'", key);
			ERR(key, msg);
		}
	}
	for (i = 1; i <= 3; i++) {
		v = json_object_get(o, fields[i]);
		if (!json_is_string(v) || !*json_string_value(v))
			ERR(fields[i], "required: a non-empty string");
		else if (strlen(json_string_value(v)) > 8192)
			ERR(fields[i], "longer than 8192 characters");
	}
	v = json_object_get(o, "prompts");
	if (v && !json_is_null(v)) {
		if (!json_is_object(v)) {
			ERR("prompts", "must be an object");
		} else {
			json_t *pv; /* borrowed */
			json_object_foreach(v, key, pv)
			{
				for (i = 0; prompt_keys[i]; i++)
					if (strcmp(key, prompt_keys[i]) == 0)
						break;
				if (!prompt_keys[i] || !json_is_string(pv)) {
					snprintf(msg, sizeof(msg),
						 "'%s' is not one of interviewer_system, "
						 "candidate_system, opening, analysis (strings)",
						 key);
					ERR("prompts", msg);
				}
			}
		}
	}
#undef ERR
	/* the closed loop's fields (DESIGN §7): their checks are the domain's (server/tasks.h) */
	if (tasks_validate(o, prefix, &work, errs) < 0 || bad) {
		json_decref(work);
		return -1;
	}
	v = json_object_get(work, "baseline");
	out->baseline = v ? json_dumps(v, JSON_COMPACT) : NULL;
	v = json_object_get(work, "tasks");
	out->tasks = v ? json_dumps(v, JSON_COMPACT) : NULL;
	v = json_object_get(work, "objective");
	out->objective = v ? json_dumps(v, JSON_COMPACT) : NULL;
	json_decref(work);
	out->name = xstrdup_or_null(json_string_value(json_object_get(o, "name")));
	out->problem = xstrdup(json_string_value(json_object_get(o, "problem")));
	out->context = xstrdup(json_string_value(json_object_get(o, "context")));
	out->goal = xstrdup(json_string_value(json_object_get(o, "goal")));
	v = json_object_get(o, "prompts");
	out->prompts = v && json_is_object(v) ? json_dumps(v, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
	return 0;
}

void api_invalid_fields(struct api_resp *r, json_t *errs)
{
	json_t *first = json_array_get(errs, 0); /* borrowed */

	api_fail(r, PERR_INVALID, errs, "%s: %s",
		 json_string_value(json_object_get(first, "field")),
		 json_string_value(json_object_get(first, "message")));
}

int api_list_params(struct api_req *q, struct api_resp *r, int *limit, int64_t *before)
{
	const char *s;
	char *end;
	long long v;

	*limit = 50;
	*before = 0;
	if ((s = api_query(q, "limit"))) {
		v = strtoll(s, &end, 10);
		if (*end || v < 1 || v > 500) {
			api_invalid(r, "limit", "must be an integer from 1 to 500");
			return -1;
		}
		*limit = (int)v;
	}
	if ((s = api_query(q, "cursor"))) {
		if (api_cursor_parse(s, before) < 0) {
			api_invalid(r, "cursor", "not a cursor this server gave out");
			return -1;
		}
	}
	return 0;
}
