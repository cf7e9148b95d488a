/*
 * views.c - jobs, transcripts and batches as the API serves them. See views.h.
 */
#include "api/views.h"

#include "api/html.h"
#include "server/engine.h"
#include "server/record.h"
#include "server/summary.h"

#include <stdio.h>
#include <string.h>

static json_t *or_null(json_t *v)
{
	return v ? v : json_null();
}

/* A link of a resource: its name and the path, "%s" standing for the id. */
struct link {
	const char *name, *fmt;
};

static const struct link job_links[] = {
    {"self", "/v1/jobs/%s"},
    {"transcript", "/v1/jobs/%s/transcript"},
    {"markdown", "/v1/jobs/%s/transcript.md"},
    {"events", "/v1/jobs/%s/events"},
    {"cancel", "/v1/jobs/%s/cancel"},
};

static const struct link batch_links[] = {
    {"self", "/v1/batches/%s"},		 {"report", "/v1/batches/%s/report.md"},
    {"jobs", "/v1/jobs?batch=%s"},	 {"optimizations", "/v1/optimizations?batch=%s"},
    {"cancel", "/v1/batches/%s/cancel"},
};

static const struct link found_links[] = {
    {"job", "/v1/jobs/%s"},
    {"transcript", "/v1/jobs/%s/transcript"},
    {"markdown", "/v1/jobs/%s/transcript.md"},
};

static json_t *links_of(const struct link *tab, size_t n, const char *id)
{
	json_t *o = json_object();
	char buf[160];
	size_t i;

	for (i = 0; i < n; i++) {
		snprintf(buf, sizeof(buf), tab[i].fmt, id);
		json_object_set_new(o, tab[i].name, json_string(buf));
	}
	return o;
}

json_t *view_job_links(const char *job_id)
{
	return links_of(job_links, ARRAY_SIZE(job_links), job_id);
}

json_t *view_found_links(const char *job_id)
{
	return links_of(found_links, ARRAY_SIZE(found_links), job_id);
}

json_t *view_job(const struct db_job *j)
{
	json_t *o = record_job(j);

	json_object_set_new(o, "links", view_job_links(j->id));
	return o;
}

json_t *view_batch_brief(const struct db_batch *b)
{
	json_t *o = summary_batch_brief(b);

	json_object_set_new(o, "links", links_of(batch_links, ARRAY_SIZE(batch_links), b->id));
	return o;
}

json_t *view_batch(const struct db_batch_full *f)
{
	json_t *o = summary_batch(&f->batch, f->jobs, f->njobs, f->turns, f->nturns);

	view_batch_links(o);
	return o;
}

void view_batch_links(json_t *batch)
{
	const char *id = json_string_value(json_object_get(batch, "id"));
	json_t *c; /* borrowed */
	char path[96];
	size_t i;

	json_object_set_new(batch, "links", links_of(batch_links, ARRAY_SIZE(batch_links), id));
	/* the origin's conversation_file: where the conversation's report is */
	json_array_foreach(json_object_get(batch, "conversations"), i, c)
	{
		snprintf(path, sizeof(path), "/v1/jobs/%s/transcript.md",
			 json_string_value(json_object_get(c, "job_id")));
		json_object_set_new(c, "conversation_file", json_string(path));
	}
}

json_t *view_transcript(const struct db_job_full *tr)
{
	const struct db_job *j = &tr->job;
	const struct db_turn *turns = tr->turns;
	const struct db_optim *optims = tr->optims;
	size_t nturns = tr->nturns, noptims = tr->noptims;
	json_t *o = json_object(), *scen, *conv = json_array(), *opts = json_array();
	json_t *metrics = record_json(j->metrics, json_object()), *sm = json_object();
	double total = 0;
	int analysis = engine_analysis_turn(j->max_turns, turns, nturns);
	size_t i;

	scen = record_json(j->scenario, json_object());
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
		/* the origin marks the interviewer's analysis so */
		if (t->idx == analysis && strcmp(t->role, "interviewer") == 0)
			json_object_set_new(c, "type", json_string("optimization_suggestions"));
		json_array_append_new(conv, c);
		total += t->wall_ms / 1000.0;
	}
	json_object_set_new(o, "conversation", conv);
	for (i = 0; i < noptims; i++) {
		const struct db_optim *p = &optims[i];
		json_t *x = json_object();
		json_object_set_new(x, "suggestion",
				    json_string(p->suggestion ? p->suggestion : ""));
		json_object_set_new(x, "extracted_at", record_time(p->extracted_at));
		json_object_set_new(x, "title", json_string(p->title ? p->title : ""));
		json_object_set_new(x, "detail", p->detail ? json_string(p->detail) : json_null());
		json_object_set_new(x, "test", p->test ? json_string(p->test) : json_null());
		json_object_set_new(x, "turn", json_integer(p->turn));
		json_object_set_new(x, "method",
				    p->method[0] ? json_string(p->method) : json_null());
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
	json_object_set_new(o, "error", record_error(j));
	json_object_set_new(o, "job", view_job(j));
	json_decref(metrics);
	return o;
}
