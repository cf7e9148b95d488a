/*
 * fake_ctl.c - the control API tests steer the fake with, under /_fake/: the request log,
 * counters, the slots with their counters, reset, and the script. Faults are posted here too
 * and handled in fake_fault.c.
 */
#include <string.h>

#include "db/util.h"
#include "tests/fake/fake.h"
#include "tests/fake/fake_server.h"

enum MHD_Result fake_ctl_error(struct fake_req *r, int status, const char *msg)
{
	return fake_send_json(r, status, json_pack("{s:s}", "error", msg), -1);
}

static enum MHD_Result ctl_requests(struct fake_req *r)
{
	const char *path = MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, "path");
	json_t *a = json_array();
	size_t i;

	pthread_mutex_lock(&fake_st.lock);
	for (i = 0; i < fake_st.nlog; i++) {
		struct fake_logent *e = &fake_st.log[i];
		json_t *j;

		if (path && strcmp(path, e->path))
			continue;
		/* a copy: the request's thread may still be reading the original */
		j = json_pack("{s:I,s:s,s:o,s:I,s:b}", "id", (json_int_t)e->id, "path", e->path,
			      "body", e->body ? json_deep_copy(e->body) : json_null(),
			      "received_at_ms", (json_int_t)e->received_ms, "finished",
			      e->outcome != NULL);
		json_object_set_new(j, "finished_at_ms", /* stolen */
				    e->outcome ? json_integer(e->finished_ms) : json_null());
		json_object_set_new(j, "outcome",
				    e->outcome ? json_string(e->outcome) : json_null());
		json_object_set_new(j, "status", json_integer(e->status));
		json_object_set_new(j, "model", e->model ? json_string(e->model) : json_null());
		json_object_set_new(j, "stream", json_boolean(e->stream));
		json_object_set_new(j, "fault", e->fault ? json_string(e->fault) : json_null());
		json_object_set_new(j, "slot", e->slot >= 0 ? json_integer(e->slot) : json_null());
		json_object_set_new(j, "id_slot",
				    e->id_slot >= 0 ? json_integer(e->id_slot) : json_null());
		json_object_set_new(j, "prompt_tokens",
				    e->prompt_tokens >= 0 ? json_integer(e->prompt_tokens)
							  : json_null());
		json_object_set_new(j, "cached_tokens",
				    e->cached_tokens >= 0 ? json_integer(e->cached_tokens)
							  : json_null());
		json_array_append_new(a, j);
	}
	pthread_mutex_unlock(&fake_st.lock);
	return fake_send_json(r, 200, a, -1);
}

static enum MHD_Result ctl_stats(struct fake_req *r)
{
	json_t *j;
	int busy = fake_slots_busy();
	long deferred = fake_slots_deferred();

	pthread_mutex_lock(&fake_st.lock);
	fake_fault_prune_locked();
	j = json_pack("{s:I,s:I,s:I,s:I,s:I,s:i,s:o,s:I}", "chat_requests",
		      (json_int_t)fake_st.chat_requests, "in_flight", (json_int_t)fake_st.in_flight,
		      "max_in_flight", (json_int_t)fake_st.max_in_flight, "disconnects",
		      (json_int_t)fake_st.disconnects, "deferred", (json_int_t)deferred,
		      "slots_busy", busy, "by_model", json_deep_copy(fake_st.by_model),
		      "faults_queued", (json_int_t)fake_st.nfaults);
	pthread_mutex_unlock(&fake_st.lock);
	return fake_send_json(r, 200, j, -1);
}

static enum MHD_Result ctl_reset(struct fake_req *r)
{
	size_t i;

	pthread_mutex_lock(&fake_st.lock);
	fake_fault_clear_locked();
	for (i = 0; i < fake_st.nlog; i++)
		fake_logent_release(&fake_st.log[i]);
	fake_st.nlog = 0;
	fake_st.chat_requests = fake_st.disconnects = 0;
	fake_st.max_in_flight = fake_st.in_flight;
	json_object_clear(fake_st.by_model);
	json_object_clear(fake_st.loaded);
	fake_st.m_prompt_tokens = fake_st.m_cached_tokens = fake_st.m_predicted =
	    fake_st.m_tokens_max = 0;
	fake_st.m_prompt_s = fake_st.m_predicted_s = 0;
	pthread_mutex_unlock(&fake_st.lock);
	fake_slots_reset();
	return fake_send_json(r, 200, json_pack("{s:b}", "reset", 1), -1);
}

static enum MHD_Result ctl_script(struct fake_req *r)
{
	json_error_t je;
	json_t *s = json_loadb(r->body.buf, r->body.len, JSON_REJECT_DUPLICATES, &je), *old;
	char err[300];

	if (!s) {
		snprintf(err, sizeof(err), "script is not JSON: %s", je.text);
		return fake_ctl_error(r, 400, err);
	}
	if (fake_script_check(s, err, sizeof(err))) {
		json_decref(s);
		return fake_ctl_error(r, 400, err);
	}
	pthread_mutex_lock(&fake_st.lock);
	old = fake_st.script;
	fake_st.script = s;
	pthread_mutex_unlock(&fake_st.lock);
	json_decref(old);
	return fake_send_json(r, 200, json_pack("{s:b}", "loaded", 1), -1);
}

enum MHD_Result fake_ctl(struct fake_req *r, const char *what, int get, int post)
{
	if (post && !strcmp(what, "fault"))
		return fake_fault_post(r);
	if (get && !strcmp(what, "faults")) {
		json_t *a;

		pthread_mutex_lock(&fake_st.lock);
		a = fake_fault_list_locked();
		pthread_mutex_unlock(&fake_st.lock);
		return fake_send_json(r, 200, a, -1);
	}
	if (post && !strcmp(what, "reset"))
		return ctl_reset(r);
	if (get && !strcmp(what, "requests"))
		return ctl_requests(r);
	if (get && !strcmp(what, "stats"))
		return ctl_stats(r);
	if (get && !strcmp(what, "slots"))
		return fake_send_json(r, 200, fake_slots_json(1, fake_cfg.n_ctx, NULL), -1);
	if (post && !strcmp(what, "script"))
		return ctl_script(r);
	if (get && !strcmp(what, "script")) {
		json_t *s = fake_script_get();

		return fake_send_json(r, 200, s, -1);
	}
	return fake_ctl_error(r, 404, "no such control route");
}
