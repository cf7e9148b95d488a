/*
 * import.c - POST /v1/jobs/import and POST /v1/jobs/{id}/extract.
 *
 * DESIGN: an import takes finished conversations in the origin's JSON shape
 * (parley's own transcripts are a superset of it and come back in unchanged):
 * one object, or {"conversations": [...]} with up to IMPORT_MAX of them.
 * Everything is validated before anything is stored; each error names its
 * field ("conversations[2].conversation[4].speaker"). Each conversation is
 * then extracted and scored on this thread (server/outcome.h: no model call,
 * so the scorings and extractions that need one are refused) and all are
 * stored in one transaction as succeeded jobs (db/import.h). A re-extraction
 * reads a succeeded job's turns, runs the extraction it names and the job's
 * scoring again, and replaces optimizations and metrics in one transaction;
 * a judge's earlier grade is kept beside the new scores.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "api/api.h"
#include "api/validate.h"
#include "api/views.h"
#include "db/import.h"
#include "server/extract.h"
#include "server/outcome.h"
#include "server/score.h"

#define IMPORT_MAX 50 /* conversations in one request */
#define IMPORT_MIN_TURNS 3
#define IMPORT_MAX_TURNS 50
#define IMPORT_BACKEND "imported" /* the backend named by a turn that ran elsewhere */

/* ---------------------------------------------------------------- fields */

/*
 * An ISO 8601 time ("2025-07-17T12:03:48.382863", a trailing Z or +hh:mm
 * offset allowed; without one it is UTC) in microseconds; -1 when it is not one.
 */
static int64_t parse_time(const char *s)
{
	struct tm tm;
	int64_t us = 0, scale = 100000;
	const char *p;
	int off = 0, oh, om;

	memset(&tm, 0, sizeof(tm));
	p = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);
	if (!p)
		return -1;
	if (*p == '.') {
		for (p++; *p >= '0' && *p <= '9'; p++) {
			us += (*p - '0') * scale;
			scale /= 10;
		}
	}
	if (*p == 'Z') {
		p++;
	} else if ((*p == '+' || *p == '-') && sscanf(p + 1, "%2d:%2d", &oh, &om) == 2) {
		off = (*p == '-' ? -1 : 1) * (oh * 3600 + om * 60);
		p += 6;
	}
	if (*p)
		return -1;
	return ((int64_t)timegm(&tm) - off) * 1000000 + us;
}

/* A string field of 1 to max bytes, or NULL with an error (when required or of the wrong kind). */
static const char *str_field(json_t *o, const char *key, const char *field, size_t max,
			     int required, json_t *errs)
{
	json_t *v = json_object_get(o, key); /* borrowed */

	if (!v) {
		if (required)
			api_field_error(errs, field, "required: a string");
		return NULL;
	}
	if (!json_is_string(v) || json_string_length(v) == 0 || json_string_length(v) > max) {
		api_field_error(errs, field, "must be a string of 1 to %zu characters", max);
		return NULL;
	}
	return json_string_value(v);
}

/* A number field >= 0, or -1 when absent; -2 with an error when it is not one. */
static double num_field(json_t *o, const char *key, const char *prefix, json_t *errs)
{
	json_t *v = json_object_get(o, key); /* borrowed */
	char field[384];

	if (!v || json_is_null(v))
		return -1;
	if (!json_is_number(v) || json_number_value(v) < 0) {
		snprintf(field, sizeof(field), "%s%s", prefix, key);
		api_field_error(errs, field, "must be a number >= 0 or null");
		return -2;
	}
	return json_number_value(v);
}

/* parley's per-turn metrics (DESIGN §4), as its transcripts write them. */
static void turn_metrics(json_t *m, const char *prefix, struct db_turn *t, json_t *errs)
{
	/* wall_ms repeats the turn's duration, which is what is read */
	static const char *const keys[] = {"ttft_ms",		"prompt_tokens", "cached_tokens",
					   "completion_tokens", "prompt_ms",	 "gen_ms",
					   "tokens_per_s",	"load_ms",	 "finish_reason",
					   "attempts",		"wall_ms",	 NULL};
	char p[256];
	json_t *v; /* borrowed */

	if (!m || json_is_null(m))
		return;
	snprintf(p, sizeof(p), "%smetrics.", prefix);
	if (!json_is_object(m)) {
		p[strlen(p) - 1] = '\0';
		api_field_error(errs, p, "must be an object or null");
		return;
	}
	api_reject_unknown(m, keys, p, errs);
	t->ttft_ms = num_field(m, "ttft_ms", p, errs);
	t->prompt_tokens = (int64_t)num_field(m, "prompt_tokens", p, errs);
	t->cached_tokens = (int64_t)num_field(m, "cached_tokens", p, errs);
	t->completion_tokens = (int64_t)num_field(m, "completion_tokens", p, errs);
	t->prompt_ms = num_field(m, "prompt_ms", p, errs);
	t->gen_ms = num_field(m, "gen_ms", p, errs);
	t->tokens_per_s = num_field(m, "tokens_per_s", p, errs);
	t->load_ms = num_field(m, "load_ms", p, errs);
	if ((v = json_object_get(m, "finish_reason")) && json_is_string(v))
		t->finish_reason = xstrndup(json_string_value(v), 32);
	if ((v = json_object_get(m, "attempts")) && json_is_integer(v) &&
	    json_integer_value(v) > 0 && json_integer_value(v) < 1000)
		t->attempts = (int)json_integer_value(v);
}

/* ---------------------------------------------------------------- one conversation */

struct conv {
	struct db_import im;
	struct db_turn *turns;
	size_t nturns;
	struct optim_list ol;
	struct db_optim *optims;
};

static void conv_release(struct conv *c)
{
	db_turns_free(c->turns, c->nturns);
	optim_list_release(&c->ol);
	free(c->optims);
	free(c->im.job.metrics);
	c->im.job.metrics = NULL;
	db_job_release(&c->im.job);
}

/* "extraction" and "scoring": what this conversation says, else what the request says. */
static void check_methods(json_t *o, json_t *outer, const char *prefix, struct db_job *j,
			  json_t *errs)
{
	json_t *v; /* borrowed */
	enum extract_method em;
	enum score_method sm;
	char field[160];

	v = json_object_get(o, "extraction");
	if (!v && outer)
		v = json_object_get(outer, "extraction");
	snprintf(field, sizeof(field), "%sextraction",
		 v && v == json_object_get(o, "extraction") ? prefix : "");
	if (!v)
		j->extraction = xstrdup("rubric");
	else if (!json_is_string(v) || extract_method_parse(json_string_value(v), &em) < 0 ||
		 em == EXTRACT_MODEL)
		api_field_error(errs, field,
				"must be \"rubric\" or \"origin\" (a model extracts only in a "
				"conversation parley runs)");
	else
		j->extraction = xstrdup(json_string_value(v));
	v = json_object_get(o, "scoring");
	if (!v && outer)
		v = json_object_get(outer, "scoring");
	snprintf(field, sizeof(field), "%sscoring",
		 v && v == json_object_get(o, "scoring") ? prefix : "");
	if (!v)
		j->scoring = xstrdup("rubric");
	else if (!json_is_string(v) || score_method_parse(json_string_value(v), &sm) < 0 ||
		 sm == SCORE_JUDGE)
		api_field_error(errs, field,
				"must be \"rubric\" or \"origin\" (a judge grades only a "
				"conversation parley runs)");
	else
		j->scoring = xstrdup(json_string_value(v));
}

/* The origin names the goal "description"; a stored scenario may be named instead. */
static void check_scenario(struct api_req *q, json_t *o, const char *prefix, struct db_job *j,
			   json_t *errs)
{
	json_t *v = json_object_get(o, "scenario"), *copy; /* borrowed; owned */
	char field[160];

	snprintf(field, sizeof(field), "%sscenario", prefix);
	if (!json_is_object(v))
		return api_check_scenario(q, v, field, j, errs);
	copy = json_deep_copy(v);
	if (!json_object_get(copy, "goal") && json_object_get(copy, "description"))
		json_object_set(copy, "goal", json_object_get(copy, "description"));
	json_object_del(copy, "description");
	api_check_scenario(q, copy, field, j, errs);
	json_decref(copy);
}

static void check_turns(json_t *conv, const char *prefix, struct conv *c, json_t *errs)
{
	/* the origin's fields ("type" marks its analysis turn), and parley's */
	static const char *const keys[] = {
	    "turn",	  "speaker", "model", "backend", "message", "duration", "timestamp",
	    "started_at", "metrics", "note",  "html",	 "type",    NULL};
	char p[128], field[256];
	json_t *t; /* borrowed */
	size_t i, n = json_array_size(conv);
	int64_t clock = util_now_us();

	snprintf(field, sizeof(field), "%sconversation", prefix);
	if (!json_is_array(conv) || n < IMPORT_MIN_TURNS || n > IMPORT_MAX_TURNS) {
		api_field_error(errs, field, "required: an array of %d to %d turns",
				IMPORT_MIN_TURNS, IMPORT_MAX_TURNS);
		return;
	}
	c->turns = xcalloc(n, sizeof(*c->turns));
	c->nturns = n;
	json_array_foreach(conv, i, t)
	{
		struct db_turn *d = &c->turns[i];
		const char *speaker, *want = i % 2 == 0 ? "interviewer" : "candidate", *s;
		double dur;

		d->idx = (int)i + 1;
		d->ttft_ms = d->prompt_ms = d->gen_ms = d->tokens_per_s = d->load_ms = -1;
		d->prompt_tokens = d->cached_tokens = d->completion_tokens = -1;
		d->attempts = 1;
		snprintf(p, sizeof(p), "%sconversation[%zu].", prefix, i);
		if (!json_is_object(t)) {
			p[strlen(p) - 1] = '\0';
			api_field_error(errs, p, "must be an object {speaker, message, ...}");
			continue;
		}
		api_reject_unknown(t, keys, p, errs);
		snprintf(field, sizeof(field), "%sspeaker", p);
		speaker = str_field(t, "speaker", field, 16, 1, errs);
		if (speaker && strcmp(speaker, want) != 0)
			api_field_error(errs, field,
					"must be \"%s\": the interviewer speaks on odd turns, the "
					"candidate on even ones",
					want);
		snprintf(d->role, sizeof(d->role), "%s", want);
		snprintf(field, sizeof(field), "%smessage", p);
		if (!json_is_string(json_object_get(t, "message")))
			api_field_error(errs, field, "required: a string");
		else
			d->text = xstrdup(json_string_value(json_object_get(t, "message")));
		snprintf(field, sizeof(field), "%smodel", p);
		s = str_field(t, "model", field, 200, 0, errs);
		d->model = xstrdup(s		? s
				   : i % 2 == 0 ? c->im.job.interviewer_model
						: c->im.job.candidate_model);
		snprintf(field, sizeof(field), "%sbackend", p);
		s = str_field(t, "backend", field, 64, 0, errs);
		d->backend = xstrdup(s ? s : IMPORT_BACKEND);
		dur = num_field(t, "duration", p, errs);
		d->wall_ms = dur >= 0 ? dur * 1000.0 : 0;
		/* the origin's timestamp is when the turn ended */
		d->finished_at = -1;
		if (json_object_get(t, "timestamp")) {
			snprintf(field, sizeof(field), "%stimestamp", p);
			s = str_field(t, "timestamp", field, 64, 0, errs);
			if (s && (d->finished_at = parse_time(s)) < 0)
				api_field_error(errs, field,
						"must be an ISO 8601 time, e.g. "
						"\"2025-07-17T12:03:48.382863\"");
		}
		if (d->finished_at < 0)
			d->finished_at = clock + (int64_t)(d->wall_ms * 1000.0);
		d->started_at = d->finished_at - (int64_t)(d->wall_ms * 1000.0);
		if ((s = json_string_value(json_object_get(t, "started_at"))) && parse_time(s) >= 0)
			d->started_at = parse_time(s);
		clock = d->finished_at;
		if ((s = json_string_value(json_object_get(t, "note"))))
			d->note = xstrdup(s);
		turn_metrics(json_object_get(t, "metrics"), p, d, errs);
	}
}

/* Validates conversation o (prefix "conversations[i]." or "") into c; errors go to errs. */
static void check_conv(struct api_req *q, json_t *o, json_t *outer, const char *prefix,
		       struct conv *c, json_t *errs)
{
	/* the origin's fields, and what parley's transcripts add (read-only ones ignored) */
	static const char *const keys[] = {"scenario",
					   "interviewer_model",
					   "candidate_model",
					   "timestamp",
					   "conversation",
					   "optimizations_discovered",
					   "success_metrics",
					   "scores",
					   "id",
					   "status",
					   "scoring",
					   "extraction",
					   "max_turns",
					   "error",
					   "job",
					   "labels",
					   NULL};
	struct db_job *j = &c->im.job;
	char field[160];
	const char *s;
	json_t *v; /* borrowed */
	size_t before = json_array_size(errs);

	if (!json_is_object(o)) {
		snprintf(field, sizeof(field), "%.*s", prefix[0] ? (int)strlen(prefix) - 1 : 0,
			 prefix);
		api_field_error(errs, field[0] ? field : "body",
				"must be a conversation object {scenario, conversation, ...}");
		return;
	}
	api_reject_unknown(o, keys, prefix, errs);
	check_scenario(q, o, prefix, j, errs);
	snprintf(field, sizeof(field), "%sinterviewer_model", prefix);
	s = str_field(o, "interviewer_model", field, 200, 1, errs);
	j->interviewer_model = xstrdup(s ? s : "");
	snprintf(field, sizeof(field), "%scandidate_model", prefix);
	s = str_field(o, "candidate_model", field, 200, 1, errs);
	j->candidate_model = xstrdup(s ? s : "");
	j->interviewer_backend = xstrdup(IMPORT_BACKEND);
	j->candidate_backend = xstrdup(IMPORT_BACKEND);
	check_methods(o, outer, prefix, j, errs);
	v = json_object_get(o, "labels");
	if (!v && outer)
		v = json_object_get(outer, "labels");
	if (v) {
		const char *key;
		json_t *lv; /* borrowed */
		int ok = json_is_object(v) && json_object_size(v) <= 16;

		json_object_foreach(v, key, lv) ok = ok && json_is_string(lv) &&
						     json_string_length(lv) <= 256 &&
						     strlen(key) >= 1 && strlen(key) <= 64;
		if (!ok) {
			snprintf(field, sizeof(field), "%slabels", prefix);
			api_field_error(errs, field,
					"must be an object of up to 16 strings of up to 256 "
					"characters, as in POST /v1/jobs");
		} else {
			j->labels = json_dumps(v, JSON_COMPACT | JSON_SORT_KEYS);
		}
	}
	check_turns(json_object_get(o, "conversation"), prefix, c, errs);
	j->max_turns = (int)c->nturns;
	if ((v = json_object_get(o, "max_turns"))) {
		snprintf(field, sizeof(field), "%smax_turns", prefix);
		if (!json_is_integer(v) || json_integer_value(v) < (json_int_t)c->nturns ||
		    json_integer_value(v) > IMPORT_MAX_TURNS)
			api_field_error(errs, field,
					"must be an integer from the number of turns to %d",
					IMPORT_MAX_TURNS);
		else
			j->max_turns = (int)json_integer_value(v);
	}
	if (json_array_size(errs) > before || !c->nturns)
		return;
	j->started_at = c->turns[0].started_at;
	j->created_at = j->started_at;
	j->finished_at = c->turns[c->nturns - 1].finished_at;
}

/* Extraction and scoring of a validated conversation. */
static void conclude(struct conv *c, int64_t now)
{
	json_t *scenario = json_loads(c->im.job.scenario, 0, NULL), *m;

	optim_list_init(&c->ol);
	outcome_extract(c->im.job.extraction, c->im.job.max_turns, c->turns, c->nturns, &c->ol);
	m = outcome_metrics(c->im.job.scoring, scenario, c->turns, c->nturns, &c->ol);
	c->im.job.metrics = json_dumps(m, JSON_COMPACT);
	c->optims = outcome_db_optims(&c->ol, now);
	c->im.turns = c->turns;
	c->im.nturns = c->nturns;
	c->im.optims = c->optims;
	c->im.noptims = c->ol.n;
	json_decref(m);
	json_decref(scenario);
}

/* A 400 naming the first field in error; errs is stolen. */
static void bad_request(struct api_resp *r, json_t *errs)
{
	char detail[300];
	json_t *first = json_array_get(errs, 0); /* borrowed */

	snprintf(detail, sizeof(detail), "%s: %s",
		 json_string_value(json_object_get(first, "field")),
		 json_string_value(json_object_get(first, "message")));
	api_problem(r, 400, "Bad Request", detail, errs);
}

/* ---------------------------------------------------------------- extractor */

void api_check_extractor(struct api_req *q, json_t *body, struct db_job *j, json_t *errs)
{
	json_t *x = json_object_get(body, "extractor"); /* borrowed */
	int model_extraction = j->extraction && !strcmp(j->extraction, "model");

	if (!model_extraction) {
		if (x)
			api_field_error(errs, "extractor",
					"only used with \"extraction\": \"model\"");
		return;
	}
	if (!x) {
		if (!j->judge && !json_object_get(body, "judge"))
			api_field_error(
			    errs, "extractor",
			    "required with \"extraction\": \"model\" unless the job has a "
			    "judge: an object {\"model\": ..., \"backend\": ...}");
		return;
	}
	j->extractor = api_check_party_json(q, x, "extractor", errs);
}

/* ---------------------------------------------------------------- handlers */

void api_import_post(struct api_req *q, struct api_resp *r)
{
	static const char *const list_keys[] = {"conversations", "extraction", "scoring", "labels",
						NULL};
	json_t *body, *list, *errs, *out; /* owned, borrowed, owned, owned */
	struct conv *cv;
	struct perr e = {0};
	struct db_import *ims;
	size_t i, n;
	int64_t now = util_now_us();
	char prefix[48];

	if (!(body = api_parse_body(q, r)))
		return;
	errs = json_array();
	list = json_object_get(body, "conversations");
	if (list) {
		api_reject_unknown(body, list_keys, "", errs);
		n = json_array_size(list);
		if (!json_is_array(list) || n < 1 || n > IMPORT_MAX) {
			api_field_error(errs, "conversations",
					"must be an array of 1 to %d conversations", IMPORT_MAX);
			n = 0;
		}
	} else {
		n = 1;
	}
	cv = xcalloc(n ? n : 1, sizeof(*cv));
	for (i = 0; i < n; i++) {
		optim_list_init(&cv[i].ol);
		if (list) {
			snprintf(prefix, sizeof(prefix), "conversations[%zu].", i);
			check_conv(q, json_array_get(list, i), body, prefix, &cv[i], errs);
		} else {
			check_conv(q, body, NULL, "", &cv[i], errs);
		}
	}
	if (json_array_size(errs) > 0) {
		bad_request(r, errs); /* stole errs */
		errs = NULL;
		goto done;
	}
	json_decref(errs);
	errs = NULL;
	ims = xcalloc(n, sizeof(*ims));
	for (i = 0; i < n; i++) {
		conclude(&cv[i], now);
		ims[i] = cv[i].im;
	}
	if (db_import_jobs(q->db, ims, n, &e) < 0) {
		free(ims);
		api_perr(r, &e);
		goto done;
	}
	out = json_array();
	for (i = 0; i < n; i++) {
		struct db_job j;

		if (db_job_get(q->db, ims[i].job.id, &j, &e) < 0)
			continue;
		json_array_append_new(out, view_job(&j));
		db_job_release(&j);
	}
	if (!list) {
		struct strbuf loc;

		strbuf_init(&loc, 40);
		strbuf_addf(&loc, "/v1/jobs/%s", ims[0].job.id);
		r->location = strbuf_detach(&loc, NULL);
		api_json(r, 201, json_incref(json_array_get(out, 0)));
		json_decref(out);
	} else {
		api_json(r, 201, json_pack("{s:o, s:i}", "jobs", out, "count", (json_int_t)n));
	}
	free(ims);
done:
	for (i = 0; i < n; i++)
		conv_release(&cv[i]);
	free(cv);
	json_decref(errs);
	json_decref(body);
}

void api_import_extract(struct api_req *q, struct api_resp *r, const char *id)
{
	static const char *const keys[] = {"extraction", NULL};
	json_t *body, *errs, *v, *scenario = NULL, *old = NULL, *m = NULL; /* owned but v */
	json_t *view;
	struct db_job j;
	struct db_turn *turns = NULL;
	struct db_optim *optims = NULL;
	struct optim_list ol;
	struct perr e = {0};
	enum extract_method em;
	size_t nturns = 0;
	char *mtext = NULL;

	optim_list_init(&ol);
	if (!(body = api_parse_body(q, r)))
		return;
	errs = json_array();
	api_reject_unknown(body, keys, "", errs);
	v = json_object_get(body, "extraction");
	if (!json_is_string(v) || extract_method_parse(json_string_value(v), &em) < 0 ||
	    em == EXTRACT_MODEL)
		api_field_error(errs, "extraction", "required: \"rubric\" or \"origin\"");
	if (json_array_size(errs) > 0) {
		bad_request(r, errs);
		json_decref(body);
		return;
	}
	json_decref(errs);
	if (db_job_get(q->db, id, &j, &e) < 0) {
		json_decref(body);
		return api_perr(r, &e);
	}
	if (strcmp(j.status, "succeeded") != 0) {
		perr_set(&e, PERR_CONFLICT,
			 "job '%s' is %s; only a succeeded job can be extracted again", id,
			 j.status);
		api_perr(r, &e);
		goto done;
	}
	if (db_turn_list(q->db, id, &turns, &nturns, &e) < 0) {
		api_perr(r, &e);
		goto done;
	}
	scenario = json_loads(j.scenario, 0, NULL);
	outcome_extract(json_string_value(v), j.max_turns, turns, nturns, &ol);
	m = outcome_metrics(j.scoring, scenario, turns, nturns, &ol);
	/* the judge's grade came from a model call; it stays beside the new scores */
	if ((old = j.metrics ? json_loads(j.metrics, 0, NULL) : NULL) &&
	    json_object_get(old, "judge"))
		json_object_set(m, "judge", json_object_get(old, "judge"));
	mtext = json_dumps(m, JSON_COMPACT);
	optims = outcome_db_optims(&ol, util_now_us());
	if (db_import_reextract(q->db, id, json_string_value(v), mtext, optims, ol.n, &e) < 0) {
		api_perr(r, &e);
		goto done;
	}
	db_job_release(&j);
	if (db_job_get(q->db, id, &j, &e) < 0) {
		api_perr(r, &e);
		goto done;
	}
	if ((view = api_job_view(q, &j, &e)))
		api_json(r, 200, view);
	else
		api_perr(r, &e);
done:
	db_job_release(&j);
	db_turns_free(turns, nturns);
	optim_list_release(&ol);
	free(optims);
	free(mtext);
	json_decref(m);
	json_decref(old);
	json_decref(scenario);
	json_decref(body);
}
