/*
 * job_spec.c - a claimed job's settings, parsed once. See job_spec.h.
 */
#include "server/job_spec.h"

#include <string.h>

static json_t *object_or_fail(const char *text, const char *what, struct perr *e)
{
	json_error_t jerr;
	json_t *v = json_loads(text, 0, &jerr);

	if (!json_is_object(v)) {
		json_decref(v);
		perr_set(e, PERR_INTERNAL, "the stored job's %s cannot be read", what);
		return NULL;
	}
	return v;
}

int job_spec_parse(const struct db_job *j, struct job_spec *spec, struct perr *e)
{
	memset(spec, 0, sizeof(*spec));
	spec->extraction = EXTRACT_RUBRIC;
	spec->scoring = SCORE_RUBRIC;
	if (!(spec->scenario = object_or_fail(j->scenario ? j->scenario : "", "scenario", e)) ||
	    !(spec->options = object_or_fail(j->options ? j->options : "{}", "options", e))) {
		job_spec_release(spec);
		return -1;
	}
	if (j->judge && (spec->judge = object_or_fail(j->judge, "judge", e)) == NULL) {
		job_spec_release(spec);
		return -1;
	}
	spec->judge_model = json_string_value(json_object_get(spec->judge, "model"));
	spec->judge_backend = json_string_value(json_object_get(spec->judge, "backend"));
	/* unknown names keep the defaults, as the API let only known ones in */
	extract_method_parse(j->extraction, &spec->extraction);
	score_method_parse(j->scoring, &spec->scoring);
	return 0;
}

void job_spec_release(struct job_spec *spec)
{
	json_decref(spec->scenario);
	json_decref(spec->options);
	json_decref(spec->judge);
	memset(spec, 0, sizeof(*spec));
}
