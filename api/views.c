/*
 * views.c - jobs and transcripts as JSON. See views.h.
 */
#include "api/views.h"

#include "api/html.h"
#include "server/record.h"

#include <stdio.h>
#include <string.h>

static json_t *loads_or(const char *text, json_t *fallback)
{
	json_t *j = text ? json_loads(text, 0, NULL) : NULL;

	if (!j)
		return fallback;
	json_decref(fallback);
	return j;
}

static json_t *or_null(json_t *v)
{
	return v ? v : json_null();
}

json_t *view_job(const struct db_job *j)
{
	return record_job(j);
}

json_t *view_transcript(const struct db_job *j, const struct db_turn *turns, size_t nturns,
			const struct db_optim *optims, size_t noptims)
{
	json_t *o = json_object(), *scen, *conv = json_array(), *opts = json_array();
	json_t *metrics = loads_or(j->metrics, json_object()), *sm = json_object();
	double total = 0;
	size_t i;

	scen = loads_or(j->scenario, json_object());
	/* the origin calls the goal "description" */
	if (json_object_get(scen, "goal"))
		json_object_set(scen, "description", json_object_get(scen, "goal"));
	json_object_set_new(o, "scenario", scen);
	json_object_set_new(o, "interviewer_model", json_string(j->interviewer_model));
	json_object_set_new(o, "candidate_model", json_string(j->candidate_model));
	json_object_set_new(o, "timestamp",
			    record_time(j->started_at > 0 ? j->started_at : j->created_at));
	for (i = 0; i < nturns; i++) {
		const struct db_turn *t = &turns[i];
		json_t *c = record_turn(t);
		json_object_set_new(c, "html", html_render_json(t->text)); /* dashboard */
		json_array_append_new(conv, c);
		total += t->wall_ms / 1000.0;
	}
	json_object_set_new(o, "conversation", conv);
	for (i = 0; i < noptims; i++) {
		const struct db_optim *p = &optims[i];
		json_t *x = json_object();
		json_object_set_new(x, "suggestion", json_string(p->suggestion ? p->suggestion : ""));
		json_object_set_new(x, "extracted_at", record_time(p->extracted_at));
		json_object_set_new(x, "title", json_string(p->title ? p->title : ""));
		json_object_set_new(x, "detail", p->detail ? json_string(p->detail) : json_null());
		json_object_set_new(x, "test", p->test ? json_string(p->test) : json_null());
		json_object_set_new(x, "turn", json_integer(p->turn));
		json_object_set_new(x, "method", p->method[0] ? json_string(p->method) : json_null());
		json_array_append_new(opts, x);
	}
	json_object_set_new(o, "optimizations_discovered", opts);
	json_object_set_new(sm, "total_duration", json_real(total));
	json_object_set_new(sm, "turns_completed", json_integer((json_int_t)nturns));
	json_object_set_new(sm, "optimizations_found", json_integer((json_int_t)noptims));
	json_object_set(sm, "interview_quality",
			or_null(json_object_get(metrics, "interview_quality")));
	json_object_set(sm, "candidate_engagement",
			or_null(json_object_get(metrics, "candidate_engagement")));
	json_object_set_new(o, "success_metrics", sm);
	if (json_object_get(metrics, "scores"))
		json_object_set(o, "scores", json_object_get(metrics, "scores"));
	json_object_set_new(o, "id", json_string(j->id));
	json_object_set_new(o, "status", json_string(j->status));
	json_object_set_new(o, "scoring", json_string(j->scoring));
	json_object_set_new(o, "extraction", json_string(j->extraction));
	json_object_set_new(o, "max_turns", json_integer(j->max_turns));
	if (j->error_code)
		json_object_set_new(o, "error",
				    json_pack("{s:s, s:s}", "code", j->error_code, "message",
					      j->error_message ? j->error_message : ""));
	else
		json_object_set_new(o, "error", json_null());
	json_object_set_new(o, "job", view_job(j));
	json_decref(metrics);
	return o;
}
