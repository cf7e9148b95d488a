/*
 * tasks.c - a scenario's baseline, tasks and objective. See tasks.h.
 */
#include "server/tasks.h"

#include <stdio.h>
#include <string.h>

#include "server/checks.h"
#include "server/ferr.h"

int tasks_options_check(json_t *o, const char *prefix, json_t *errs)
{
	const char *key;
	json_t *v, *s; /* borrowed */
	char field[128];
	size_t before = json_array_size(errs), i;

	if (!json_is_object(o)) {
		ferr_add(errs, prefix, "", "must be an object");
		return -1;
	}
	json_object_foreach(o, key, v)
	{
		snprintf(field, sizeof(field), ".%.64s", key);
		if (strcmp(key, "temperature") == 0) {
			if (!json_is_number(v) || json_number_value(v) < 0 ||
			    json_number_value(v) > 2)
				ferr_add(errs, prefix, field, "must be a number from 0 to 2");
		} else if (strcmp(key, "top_p") == 0) {
			if (!json_is_number(v) || json_number_value(v) < 0 ||
			    json_number_value(v) > 1)
				ferr_add(errs, prefix, field, "must be a number from 0 to 1");
		} else if (strcmp(key, "top_k") == 0) {
			if (!json_is_integer(v) || json_integer_value(v) < 0 ||
			    json_integer_value(v) > 1000)
				ferr_add(errs, prefix, field, "must be an integer from 0 to 1000");
		} else if (strcmp(key, "seed") == 0) {
			if (!json_is_integer(v))
				ferr_add(errs, prefix, field, "must be an integer");
		} else if (strcmp(key, "num_predict") == 0) {
			if (!json_is_integer(v) || json_integer_value(v) < -1 ||
			    json_integer_value(v) == 0 || json_integer_value(v) > 1 << 20)
				ferr_add(errs, prefix, field,
					 "must be -1 (no limit) or a positive integer");
		} else if (strcmp(key, "num_ctx") == 0) {
			if (!json_is_integer(v) || json_integer_value(v) < 256 ||
			    json_integer_value(v) > 1 << 21)
				ferr_add(errs, prefix, field,
					 "must be an integer from 256 to 2097152");
		} else if (strcmp(key, "stop") == 0) {
			int ok = json_is_array(v) && json_array_size(v) <= 8;
			if (ok)
				json_array_foreach(v, i, s) if (!json_is_string(s) ||
								!*json_string_value(s)) ok = 0;
			if (!ok)
				ferr_add(errs, prefix, field, "must be up to 8 non-empty strings");
		} else {
			ferr_add(errs, prefix, field,
				 "unknown option; known: temperature, top_p, top_k, seed, "
				 "num_predict, num_ctx, stop");
		}
	}
	return json_array_size(errs) == before ? 0 : -1;
}

static int prompt_text(json_t *v, const char *prefix, const char *field, json_t *errs)
{
	if (!json_is_string(v) || json_string_length(v) > TASKS_MAX_PROMPT ||
	    strlen(json_string_value(v)) != json_string_length(v)) {
		ferr_add(errs, prefix, field, "must be a string of up to %d bytes",
			 TASKS_MAX_PROMPT);
		return -1;
	}
	return 0;
}

/* baseline: {system, template, options}; returns the object with defaults written out. */
static json_t *check_baseline(json_t *b, const char *prefix, json_t *errs)
{
	const char *key;
	json_t *v; /* borrowed */
	char path[160];
	size_t before = json_array_size(errs);

	if (!b)
		return json_pack("{s:s, s:s, s:{}}", "system", "", "template", "{input}",
				 "options");
	if (!json_is_object(b)) {
		ferr_add(errs, prefix, "baseline", "must be an object {system, template, options}");
		return NULL;
	}
	json_object_foreach(b, key, v)
	{
		if (strcmp(key, "system") && strcmp(key, "template") && strcmp(key, "options"))
			ferr_add(errs, prefix, "baseline",
				 "unknown field '%.64s'; a baseline has system, template, options",
				 key);
	}
	if ((v = json_object_get(b, "system")))
		prompt_text(v, prefix, "baseline.system", errs);
	if ((v = json_object_get(b, "template")) &&
	    prompt_text(v, prefix, "baseline.template", errs) == 0 &&
	    !strstr(json_string_value(v), "{input}"))
		ferr_add(errs, prefix, "baseline.template",
			 "must contain {input}, where a task's input goes");
	snprintf(path, sizeof(path), "%sbaseline.options", prefix);
	if ((v = json_object_get(b, "options")))
		tasks_options_check(v, path, errs);
	if (json_array_size(errs) != before)
		return NULL;
	v = json_object_get(b, "system");
	b = json_pack("{s:O?, s:O?, s:O?}", "system", v, "template", json_object_get(b, "template"),
		      "options", json_object_get(b, "options"));
	if (json_is_null(json_object_get(b, "system")))
		json_object_set_new(b, "system", json_string(""));
	if (json_is_null(json_object_get(b, "template")))
		json_object_set_new(b, "template", json_string("{input}"));
	if (json_is_null(json_object_get(b, "options")))
		json_object_set_new(b, "options", json_object());
	return b;
}

/* One task; returns {id, input, checks} with the id as a string, or NULL. */
static json_t *check_task(json_t *t, size_t i, const char *prefix, json_t *ids, json_t *errs)
{
	const char *key;
	json_t *v, *id = NULL; /* borrowed, owned */
	char path[160], field[64];
	size_t before = json_array_size(errs);

	snprintf(field, sizeof(field), "tasks[%zu]", i);
	if (!json_is_object(t)) {
		ferr_add(errs, prefix, field, "a task is an object {id, input, checks}");
		return NULL;
	}
	json_object_foreach(t, key, v)
	{
		if (strcmp(key, "id") && strcmp(key, "input") && strcmp(key, "checks"))
			ferr_add(errs, prefix, field,
				 "unknown field '%.64s'; a task has id, input, checks", key);
	}
	snprintf(field, sizeof(field), "tasks[%zu].id", i);
	v = json_object_get(t, "id");
	if (json_is_integer(v) && json_integer_value(v) >= 0) {
		char num[32];
		snprintf(num, sizeof(num), "%lld", (long long)json_integer_value(v));
		id = json_string(num);
	} else if (json_is_string(v) && json_string_length(v) > 0 &&
		   json_string_length(v) <= TASKS_MAX_ID &&
		   strlen(json_string_value(v)) == json_string_length(v)) {
		id = json_incref(v);
	} else {
		ferr_add(errs, prefix, field,
			 "required: a string of 1 to %d bytes or an integer of 0 or more",
			 TASKS_MAX_ID);
	}
	if (id && json_object_get(ids, json_string_value(id))) {
		ferr_add(
		    errs, prefix, field, "the id '%s' is already tasks[%lld]",
		    json_string_value(id),
		    (long long)json_integer_value(json_object_get(ids, json_string_value(id))));
	} else if (id) {
		json_object_set_new(ids, json_string_value(id), json_integer((json_int_t)i));
	}
	snprintf(field, sizeof(field), "tasks[%zu].input", i);
	v = json_object_get(t, "input");
	if (!json_is_string(v) || json_string_length(v) == 0 ||
	    json_string_length(v) > TASKS_MAX_INPUT ||
	    strlen(json_string_value(v)) != json_string_length(v))
		ferr_add(errs, prefix, field, "required: a non-empty string of up to %d bytes",
			 TASKS_MAX_INPUT);
	snprintf(path, sizeof(path), "%stasks[%zu].checks", prefix, i);
	checks_compile(json_object_get(t, "checks"), path, NULL, errs);
	if (json_array_size(errs) != before) {
		json_decref(id);
		return NULL;
	}
	return json_pack("{s:o, s:O, s:O}", "id", id, "input", json_object_get(t, "input"),
			 "checks", json_object_get(t, "checks"));
}

static json_t *check_tasks(json_t *v, const char *prefix, json_t *errs)
{
	json_t *out, *ids, *t, *one; /* owned, owned, borrowed, owned */
	size_t i;

	if (!json_is_array(v) || json_array_size(v) < TASKS_MIN || json_array_size(v) > TASKS_MAX) {
		ferr_add(errs, prefix, "tasks",
			 "must be an array of %d to %d tasks {id, input, checks}", TASKS_MIN,
			 TASKS_MAX);
		return NULL;
	}
	out = json_array();
	ids = json_object();
	json_array_foreach(v, i, t)
	{
		if ((one = check_task(t, i, prefix, ids, errs)))
			json_array_append_new(out, one);
	}
	json_decref(ids);
	if (json_array_size(out) != json_array_size(v)) {
		json_decref(out);
		return NULL;
	}
	return out;
}

static json_t *check_objective(json_t *v, const char *prefix, json_t *errs)
{
	static const char *const kinds[] = {"quality", "latency", "balanced", NULL};
	const char *key, *kind = NULL;
	json_t *d = NULL, *k; /* borrowed */
	size_t before = json_array_size(errs);
	int i;

	if (!v)
		return json_pack("{s:s, s:f}", "kind", "quality", "max_quality_drop",
				 TASKS_DEFAULT_QUALITY_DROP);
	if (json_is_string(v)) {
		kind = json_string_value(v);
	} else if (json_is_object(v)) {
		json_object_foreach(v, key, k)
		{
			if (strcmp(key, "kind") && strcmp(key, "max_quality_drop"))
				ferr_add(errs, prefix, "objective",
					 "unknown field '%.64s'; an objective has kind, "
					 "max_quality_drop",
					 key);
		}
		k = json_object_get(v, "kind");
		kind = json_is_string(k) ? json_string_value(k) : NULL;
		d = json_object_get(v, "max_quality_drop");
		if (d &&
		    (!json_is_number(d) || json_number_value(d) < 0 || json_number_value(d) > 1))
			ferr_add(errs, prefix, "objective.max_quality_drop",
				 "must be a number from 0 to 1 (a share of the mean task score)");
	} else {
		ferr_add(errs, prefix, "objective",
			 "must be \"quality\", \"latency\", \"balanced\" or an object {kind, "
			 "max_quality_drop}");
		return NULL;
	}
	for (i = 0; kind && kinds[i]; i++)
		if (strcmp(kind, kinds[i]) == 0)
			break;
	if (!kind || !kinds[i])
		ferr_add(errs, prefix, json_is_object(v) ? "objective.kind" : "objective",
			 "must be one of quality, latency, balanced");
	if (json_array_size(errs) != before)
		return NULL;
	return json_pack("{s:s, s:f}", "kind", kind, "max_quality_drop",
			 d ? json_number_value(d) : TASKS_DEFAULT_QUALITY_DROP);
}

int tasks_validate(json_t *sc, const char *prefix, json_t **work, json_t *errs)
{
	json_t *b = json_object_get(sc, "baseline"), *t = json_object_get(sc, "tasks");
	json_t *o = json_object_get(sc, "objective"); /* borrowed */
	json_t *out = json_object(), *x;	      /* owned */
	size_t before = json_array_size(errs);

	if (work)
		*work = NULL;
	if (t && (x = check_tasks(t, prefix, errs)))
		json_object_set_new(out, "tasks", x);
	if ((b || t) && (x = check_baseline(b, prefix, errs)))
		json_object_set_new(out, "baseline", x);
	if ((o || t) && (x = check_objective(o, prefix, errs)))
		json_object_set_new(out, "objective", x);
	if (json_array_size(errs) != before) {
		json_decref(out);
		return -1;
	}
	if (work)
		*work = out;
	else
		json_decref(out);
	return 0;
}
