/*
 * jobs.c - submit, list, read and cancel conversation jobs.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "api/guard.h"
#include "api/markdown.h"
#include "api/validate.h"
#include "api/views.h"
#include "db/job.h"
#include "db/scenario.h"
#include "server/trials.h"
#include "db/turn.h"
#include "server/ending.h"

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
					   "judge",    "extractor",   "optimize",   NULL};
	struct db_job j;
	struct perr e = {0};
	json_t *body, *errs, *v; /* owned */
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
		json_decref(body);
		db_job_release(&j);
		return api_invalid_fields(r, errs);
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
	if (!(v = api_job_view(q, &j, &e))) {
		db_job_release(&j);
		return api_perr(r, &e);
	}
	api_json(r, rc == 1 ? 200 : 202, v);
	db_job_release(&j);
}

static int valid_status(const char *s)
{
	static const char *const st[] = {"queued", "running",	"succeeded",
					 "failed", "cancelled", NULL};
	return api_validate_known(s, st);
}

void api_jobs_list(struct api_req *q, struct api_resp *r)
{
	struct db_job_filter f;
	struct db_job *v;
	struct perr e = {0};
	const char *s, *label;
	char keybuf[80];
	json_t *items;
	size_t n, i;
	int limit;

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
		if (!api_validate_label_key(keybuf))
			return api_invalid(r, "label", "the key must be of A-Z a-z 0-9 _ - .");
		f.label_key = keybuf;
		f.label_value = colon + 1;
	}
	if (api_list_params(q, r, &limit, &f.before_seq) < 0)
		return;
	f.limit = limit + 1; /* one more tells whether there is a next page */
	if (db_job_list(q->db, &f, &v, &n, &e) < 0)
		return api_perr(r, &e);
	items = json_array();
	for (i = 0; i < n && i < (size_t)limit; i++)
		json_array_append_new(items, view_job(&v[i]));
	api_list_page(q, r, items, n > (size_t)limit, n > (size_t)limit ? v[limit - 1].seq : 0);
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

json_t *api_job_view(struct api_req *q, const struct db_job *j, struct perr *e)
{
	json_t *v = view_job(j);

	if (j->optimize && job_trials(q, j, v, 0, e) < 0) {
		json_decref(v);
		return NULL;
	}
	return v;
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
		return api_fail(r, PERR_NOT_FOUND, NULL,
				"this job has no trials: it was not submitted with \"optimize\"");
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
		r->immutable = 1;
		pthread_mutex_unlock(&finished.lock);
		return;
	}
	pthread_mutex_unlock(&finished.lock);
	if (db_job_get(q->db, id, &j, &e) < 0)
		return api_perr(r, &e);
	if (!(v = api_job_view(q, &j, &e))) {
		db_job_release(&j);
		return api_perr(r, &e);
	}
	api_json(r, 200, v);
	if (job_ended(j.status)) {
		r->immutable = 1;
		pthread_mutex_lock(&finished.lock);
		free(finished.slot[k].json);
		snprintf(finished.slot[k].id, sizeof(finished.slot[k].id), "%s", j.id);
		finished.slot[k].json = xstrdup(r->body.buf);
		pthread_mutex_unlock(&finished.lock);
	}
	db_job_release(&j);
}

static void transcript_build(struct api_req *q, struct api_resp *r, const char *id, int markdown);

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

/* A transcript, built within the budget for large answers (api/guard.h). */
void api_jobs_transcript(struct api_req *q, struct api_resp *r, const char *id, int markdown)
{
	struct perr e = {0};
	int64_t bytes;

	if (db_turn_text_bytes(q->db, id, &bytes, &e) < 0)
		return api_perr(r, &e);
	if (api_guard_render_begin((size_t)bytes) < 0) {
		api_fail(r, PERR_UNAVAILABLE, NULL,
			 "other large transcripts are being served; retry in a second");
		r->retry_after = 1;
		return;
	}
	/* given back once the answer has been sent: a slow reader holds it all that time */
	r->render_bytes = (size_t)bytes;
	transcript_build(q, r, id, markdown);
}

static void transcript_build(struct api_req *q, struct api_resp *r, const char *id, int markdown)
{
	struct db_job_full tr;
	struct perr e = {0};
	json_t *t;

	if (db_job_load(q->db, id, &tr, &e) < 0)
		return api_perr(r, &e);
	t = view_transcript(&tr);
	r->immutable = job_ended(tr.job.status);
	if (tr.job.optimize && transcript_trials(q, &tr.job, t, &e) < 0) {
		json_decref(t);
		db_job_full_release(&tr);
		return api_perr(r, &e);
	}
	db_job_full_release(&tr);
	if (markdown) {
		struct strbuf md;
		strbuf_init(&md, 16384);
		markdown_render_transcript(t, &md);
		json_decref(t);
		api_markdown(r, &md);
	} else {
		api_json(r, 200, t);
	}
}

void api_jobs_cancel(struct api_req *q, struct api_resp *r, const char *id)
{
	struct db_job j;
	struct perr e = {0};
	char was[16] = "";
	json_t *v;

	if (ending_cancel_job(q->db, q->deps->pool, id, was, &e) < 0)
		return api_perr(r, &e);
	if (db_job_get(q->db, id, &j, &e) < 0)
		return api_perr(r, &e);
	if (strcmp(was, "queued") != 0 && strcmp(was, "running") != 0) {
		db_job_release(&j);
		return api_fail(r, PERR_CONFLICT, NULL, "job '%s' has already %s", id, was);
	}
	if (!(v = api_job_view(q, &j, &e))) {
		db_job_release(&j);
		return api_perr(r, &e);
	}
	api_json(r, 202, v);
	db_job_release(&j);
}
