/*
 * jobs.c - submit, list, read and cancel conversation jobs.
 */
#include <ctype.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "api/markdown.h"
#include "api/views.h"
#include "db/job.h"
#include "db/scenario.h"
#include "server/trials.h"
#include "db/turn.h"
#include "server/extract.h"
#include "server/score.h"

#define MAX_MODEL_LEN 200
#define MAX_LABELS 16

struct job_input {
	struct db_job job;
	json_t *errs; /* array of {field, message} */
};

/*
 * Request validation. The api_* functions here are shared with POST
 * /v1/batches (api/batches.c) and declared in api/views.h.
 */

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

static int known_key(const char *key, const char *const *keys)
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
		if (known_key(key, keys))
			continue;
		snprintf(field, sizeof(field), "%s%s", prefix, key);
		api_field_error(errs, field, "unknown field");
	}
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
	else
		*model = xstrdup(json_string_value(m));
	snprintf(field, sizeof(field), "%s.backend", name);
	b = json_object_get(p, "backend");
	if (b && !json_is_string(b)) {
		api_field_error(errs, field, "must be the name of a configured backend");
		return;
	}
	bname = b ? json_string_value(b) : fleet_default_name(q->deps->fleet);
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

static int label_key_valid(const char *k)
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
		if (!label_key_valid(key))
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
		char *model = NULL, *backend = NULL;
		if (!judge)
			api_field_error(errs, "judge",
					"required with \"scoring\": \"judge\": an object "
					"{\"model\": ..., \"backend\": ...}");
		else
			api_check_party(q, judge, "judge", &model, &backend, errs);
		if (model && backend) {
			json_t *o = json_pack("{s:s, s:s}", "model", model, "backend", backend);
			j->judge = json_dumps(o, JSON_COMPACT);
			json_decref(o);
		}
		free(model);
		free(backend);
	} else if (judge) {
		api_field_error(errs, "judge",
				"only used with \"scoring\": \"judge\" or with \"optimize\"");
	}
	j->extraction = xstrdup("rubric");
	if ((v = json_object_get(body, "extraction"))) {
		if (!json_is_string(v) || extract_method_parse(json_string_value(v), &em) < 0)
			api_field_error(errs, "extraction", "must be \"rubric\" or \"origin\"");
		else {
			free(j->extraction);
			j->extraction = xstrdup(json_string_value(v));
		}
	}
	if ((v = json_object_get(body, "labels"))) {
		check_labels(v, errs);
		j->labels = json_dumps(v, JSON_COMPACT | JSON_SORT_KEYS);
	}
}

/* "optimize": the closed loop (server/trials.h); it needs the scenario's tasks. */
static void check_optimize(json_t *body, struct db_job *j, json_t *errs)
{
	json_t *v = json_object_get(body, "optimize"), *sc, *norm; /* borrowed, owned x2 */
	int bad;

	if (!v || json_is_null(v))
		return;
	sc = j->scenario ? json_loads(j->scenario, 0, NULL) : NULL;
	if (!sc && json_array_size(errs) > 0) /* the scenario itself is wrong: said already */
		return;
	bad = trials_optimize_check(v, &norm, errs) < 0;
	bad |= trials_scenario_check(sc, "optimize", j->judge != NULL, errs) < 0;
	if (!bad) {
		j->optimize = json_dumps(norm, JSON_COMPACT);
		if (!json_object_get(body, "max_turns"))
			j->max_turns = TRIALS_DEFAULT_MAX_TURNS;
	}
	json_decref(norm);
	json_decref(sc);
}

/* A short stable digest of the request, for Idempotency-Key (FNV-1a, 64 bits). */
static void body_digest(json_t *body, char out[17])
{
	char *s = json_dumps(body, JSON_COMPACT | JSON_SORT_KEYS);
	uint64_t h = 1469598103934665603ULL;
	const unsigned char *p;

	for (p = (const unsigned char *)s; p && *p; p++) {
		h ^= *p;
		h *= 1099511628211ULL;
	}
	snprintf(out, 17, "%016llx", (unsigned long long)h);
	free(s);
}

void api_jobs_post(struct api_req *q, struct api_resp *r)
{
	static const char *const keys[] = {"scenario", "interviewer", "candidate",  "max_turns",
					   "options",  "scoring",     "extraction", "labels",
					   "judge",    "optimize",    NULL};
	struct db_job j;
	struct perr e = {0};
	json_t *body, *errs; /* owned */
	const char *idem = api_header(q, "Idempotency-Key");
	char digest[17];
	int rc;

	if (!(body = api_parse_body(q, r)))
		return;
	memset(&j, 0, sizeof(j));
	errs = json_array();
	api_reject_unknown(body, keys, "", errs);
	api_check_scenario(q, json_object_get(body, "scenario"), "scenario", &j, errs);
	api_check_party(q, json_object_get(body, "interviewer"), "interviewer",
			&j.interviewer_model, &j.interviewer_backend, errs);
	api_check_party(q, json_object_get(body, "candidate"), "candidate", &j.candidate_model,
			&j.candidate_backend, errs);
	api_check_job_fields(q, body, &j, errs);
	check_optimize(body, &j, errs);
	if (idem && (strlen(idem) == 0 || strlen(idem) > 200))
		api_field_error(errs, "Idempotency-Key", "must be 1 to 200 characters");

	if (json_array_size(errs) > 0) {
		char detail[300];
		json_t *first = json_array_get(errs, 0); /* borrowed */
		snprintf(detail, sizeof(detail), "%s: %s",
			 json_string_value(json_object_get(first, "field")),
			 json_string_value(json_object_get(first, "message")));
		json_decref(body);
		db_job_release(&j);
		return api_problem(r, 400, "Bad Request", detail, errs);
	}
	json_decref(errs);
	body_digest(body, digest);
	json_decref(body);

	rc = db_job_insert(q->db, &j, idem, digest, q->deps->cfg->max_queued_jobs, &e);
	if (rc < 0) {
		db_job_release(&j);
		return api_perr(r, &e);
	}
	if (rc == 0)
		pool_wake(q->deps->pool);
	{
		char id[DB_JOB_ID_LEN];
		struct strbuf loc;
		snprintf(id, sizeof(id), "%s", j.id);
		db_job_release(&j);
		if (db_job_get(q->db, id, &j, &e) < 0)
			return api_perr(r, &e);
		strbuf_init(&loc, 40);
		strbuf_addf(&loc, "/v1/jobs/%s", id);
		r->location = strbuf_detach(&loc, NULL);
	}
	api_json(r, rc == 1 ? 200 : 202, view_job(&j));
	db_job_release(&j);
}

static int valid_status(const char *s)
{
	static const char *const st[] = {"queued", "running",	"succeeded",
					 "failed", "cancelled", NULL};
	return known_key(s, st);
}

void api_jobs_list(struct api_req *q, struct api_resp *r)
{
	struct db_job_filter f;
	struct db_job *v;
	struct perr e = {0};
	const char *s, *label;
	char keybuf[80], *end;
	json_t *items;
	size_t n, i;
	long long limit = 50;

	memset(&f, 0, sizeof(f));
	if ((s = api_query(q, "status")) && !valid_status(s))
		return api_invalid(r, "status",
				   "must be queued, running, succeeded, failed or cancelled");
	f.status = s;
	f.scenario = api_query(q, "scenario");
	f.model = api_query(q, "model");
	f.batch = api_query(q, "batch");
	if ((label = api_query(q, "label"))) {
		const char *colon = strchr(label, ':');
		if (!colon || colon == label || (size_t)(colon - label) >= sizeof(keybuf))
			return api_invalid(r, "label", "must be key:value");
		snprintf(keybuf, sizeof(keybuf), "%.*s", (int)(colon - label), label);
		if (!label_key_valid(keybuf))
			return api_invalid(r, "label", "the key must be of A-Z a-z 0-9 _ - .");
		f.label_key = keybuf;
		f.label_value = colon + 1;
	}
	if ((s = api_query(q, "limit"))) {
		limit = strtoll(s, &end, 10);
		if (*end || limit < 1 || limit > 500)
			return api_invalid(r, "limit", "must be an integer from 1 to 500");
	}
	f.limit = (int)limit + 1; /* one more tells whether there is a next page */
	if ((s = api_query(q, "cursor"))) {
		f.before_seq = strtoll(s, &end, 36);
		if (*end || f.before_seq <= 0)
			return api_invalid(r, "cursor", "not a cursor this server gave out");
	}
	if (db_job_list(q->db, &f, &v, &n, &e) < 0)
		return api_perr(r, &e);
	items = json_array();
	for (i = 0; i < n && i < (size_t)limit; i++)
		json_array_append_new(items, view_job(&v[i]));
	if (n > (size_t)limit) {
		/* base 36 of the last seq shown: opaque enough, stable, short */
		char cur[24];
		int64_t x = v[limit - 1].seq;
		int k = 0, a, b;
		do {
			int d = (int)(x % 36);
			cur[k++] = (char)(d < 10 ? '0' + d : 'a' + d - 10);
			x /= 36;
		} while (x && k < 22);
		cur[k] = '\0';
		for (a = 0, b = k - 1; a < b; a++, b--) {
			char t = cur[a];
			cur[a] = cur[b];
			cur[b] = t;
		}
		api_json(r, 200, json_pack("{s:o, s:s}", "items", items, "next_cursor", cur));
	} else {
		api_json(r, 200, json_pack("{s:o, s:n}", "items", items, "next_cursor"));
	}
	db_jobs_free(v, n);
}

/*
 * A job that has ended never changes again, so its JSON is kept once made:
 * a direct-mapped cache of FINISHED_SLOTS answers, keyed by job id, so that
 * polling a finished job costs a hash and a copy instead of a read of the
 * store and a JSON round trip. Bounded: a slot holds one answer (~1-2 KB).
 */
#define FINISHED_SLOTS 1024

static struct {
	pthread_mutex_t lock; /* guards slot */
	struct {
		char id[DB_JOB_ID_LEN];
		char *json;
	} slot[FINISHED_SLOTS];
} finished = {PTHREAD_MUTEX_INITIALIZER, {{"", NULL}}};

static size_t finished_slot(const char *id)
{
	uint64_t h = 1469598103934665603ULL;

	for (; *id; id++)
		h = (h ^ (unsigned char)*id) * 1099511628211ULL;
	return (size_t)(h % FINISHED_SLOTS);
}

static int job_ended(const char *status)
{
	return strcmp(status, "succeeded") == 0 || strcmp(status, "failed") == 0 ||
	       strcmp(status, "cancelled") == 0;
}

/* Sets optimize, trials and best of a job with the closed loop on v. */
static int job_trials(struct api_req *q, const struct db_job *j, json_t *v, int with_calls,
		      struct perr *e)
{
	json_t *sc = json_loads(j->scenario, 0, NULL), *trials, *best; /* owned */
	int rc = trials_view(q->db, j->id, j->optimize, sc, with_calls, &trials, &best, e);

	json_decref(sc);
	if (rc < 0)
		return -1;
	json_object_set_new(v, "optimize", json_loads(j->optimize, 0, NULL));
	json_object_set_new(v, "trials", trials);
	json_object_set_new(v, "best", best);
	return 0;
}

void api_jobs_trials(struct api_req *q, struct api_resp *r, const char *id)
{
	struct db_job j;
	struct perr e = {0};
	json_t *v;

	if (db_job_get(q->db, id, &j, &e) < 0)
		return api_perr(r, &e);
	if (!j.optimize) {
		db_job_release(&j);
		return api_problem(r, 404, "Not Found",
				   "this job has no trials: it was not submitted with \"optimize\"",
				   NULL);
	}
	v = json_pack("{s:s, s:s}", "job_id", j.id, "status", j.status);
	if (job_trials(q, &j, v, 1, &e) < 0) {
		json_decref(v);
		db_job_release(&j);
		return api_perr(r, &e);
	}
	api_json(r, 200, v);
	db_job_release(&j);
}

void api_jobs_get(struct api_req *q, struct api_resp *r, const char *id)
{
	size_t k = finished_slot(id);
	struct db_job j;
	struct perr e = {0};
	json_t *v;

	pthread_mutex_lock(&finished.lock);
	if (finished.slot[k].json && strcmp(finished.slot[k].id, id) == 0) {
		api_text(r, 200, "application/json; charset=utf-8", finished.slot[k].json);
		pthread_mutex_unlock(&finished.lock);
		return;
	}
	pthread_mutex_unlock(&finished.lock);
	if (db_job_get(q->db, id, &j, &e) < 0)
		return api_perr(r, &e);
	v = view_job(&j);
	if (j.optimize && job_trials(q, &j, v, 0, &e) < 0) {
		json_decref(v);
		db_job_release(&j);
		return api_perr(r, &e);
	}
	api_json(r, 200, v);
	if (job_ended(j.status)) {
		pthread_mutex_lock(&finished.lock);
		free(finished.slot[k].json);
		snprintf(finished.slot[k].id, sizeof(finished.slot[k].id), "%s", j.id);
		finished.slot[k].json = xstrdup(r->body.buf);
		pthread_mutex_unlock(&finished.lock);
	}
	db_job_release(&j);
}

/*
 * The closed loop in a transcript: each trial's "parley" item right after the interviewer
 * turn that proposed it (where both models saw it), and the trials and best themselves.
 */
static int transcript_trials(struct api_req *q, const struct db_job *j, json_t *t, struct perr *e)
{
	json_t *conv = json_object_get(t, "conversation"), *out, *item, *tr; /* borrowed, owned */
	json_t *interviewer = json_string("interviewer");		     /* owned */
	size_t i, k;

	if (job_trials(q, j, t, 0, e) < 0) {
		json_decref(interviewer);
		return -1;
	}
	out = json_array();
	json_array_foreach(conv, i, item)
	{
		json_array_append(out, item);
		if (!json_equal(json_object_get(item, "speaker"), interviewer))
			continue;
		json_array_foreach(json_object_get(t, "trials"), k, tr)
		{
			json_t *msg = json_object_get(tr, "message"); /* borrowed */
			if (!json_is_string(msg) ||
			    !json_equal(json_object_get(tr, "turn"), json_object_get(item, "turn")))
				continue;
			json_array_append_new(out, json_pack("{s:s, s:s, s:O, s:O, s:O}", "speaker",
							     "parley", "model", "parley", "message",
							     msg, "trial", json_object_get(tr, "n"),
							     "after_turn",
							     json_object_get(item, "turn")));
		}
	}
	json_object_set_new(t, "conversation", out);
	json_decref(interviewer);
	return 0;
}

void api_jobs_transcript(struct api_req *q, struct api_resp *r, const char *id, int markdown)
{
	struct db_job j;
	struct db_turn *turns = NULL;
	struct db_optim *optims = NULL;
	size_t nturns = 0, noptims = 0;
	struct perr e = {0};
	json_t *t;

	if (db_job_get(q->db, id, &j, &e) < 0)
		return api_perr(r, &e);
	/* one read transaction so turns and optimizations agree with each other */
	sqlite3_exec(db_handle(q->db), "BEGIN", NULL, NULL, NULL);
	if (db_turn_list(q->db, id, &turns, &nturns, &e) < 0 ||
	    db_optim_list(q->db, id, &optims, &noptims, &e) < 0) {
		sqlite3_exec(db_handle(q->db), "COMMIT", NULL, NULL, NULL);
		db_turns_free(turns, nturns);
		db_job_release(&j);
		return api_perr(r, &e);
	}
	sqlite3_exec(db_handle(q->db), "COMMIT", NULL, NULL, NULL);
	t = view_transcript(&j, turns, nturns, optims, noptims);
	if (j.optimize && transcript_trials(q, &j, t, &e) < 0) {
		json_decref(t);
		db_turns_free(turns, nturns);
		db_optims_free(optims, noptims);
		db_job_release(&j);
		return api_perr(r, &e);
	}
	if (markdown) {
		struct strbuf md;
		strbuf_init(&md, 16384);
		markdown_render_transcript(t, &md);
		r->status = 200;
		r->content_type = "text/markdown; charset=utf-8";
		strbuf_release(&r->body);
		r->body = md;
		json_decref(t);
	} else {
		api_json(r, 200, t);
	}
	db_turns_free(turns, nturns);
	db_optims_free(optims, noptims);
	db_job_release(&j);
}

void api_jobs_cancel(struct api_req *q, struct api_resp *r, const char *id)
{
	struct db_job j;
	struct perr e = {0};
	char was[16] = "";

	if (db_job_cancel(q->db, id, was, &e) < 0)
		return api_perr(r, &e);
	if (strcmp(was, "running") == 0)
		pool_cancel(q->deps->pool, id);
	if (db_job_get(q->db, id, &j, &e) < 0)
		return api_perr(r, &e);
	if (strcmp(was, "queued") != 0 && strcmp(was, "running") != 0) {
		char detail[160];
		snprintf(detail, sizeof(detail), "job '%s' has already %s", id, was);
		db_job_release(&j);
		return api_problem(r, 409, "Conflict", detail, NULL);
	}
	api_json(r, 202, view_job(&j));
	db_job_release(&j);
}
