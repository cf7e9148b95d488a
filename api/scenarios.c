/*
 * scenarios.c - the scenario library: GET/PUT/DELETE /v1/scenarios[/{name}].
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "api/validate.h"
#include "api/views.h"
#include "db/scenario.h"
#include "server/tasks.h"

json_t *api_scenario_json(const struct db_scenario *s)
{
	json_t *o = json_object();
	char ts[32];

	json_object_set_new(o, "name", json_string(s->name));
	json_object_set_new(o, "problem", json_string(s->problem));
	json_object_set_new(o, "context", json_string(s->context));
	json_object_set_new(o, "goal", json_string(s->goal));
	if (s->prompts) {
		json_t *p = json_loads(s->prompts, 0, NULL);
		json_object_set_new(o, "prompts", p ? p : json_null());
	} else {
		json_object_set_new(o, "prompts", json_null());
	}
	api_scenario_work_json(o, s);
	json_object_set_new(o, "builtin", json_boolean(s->builtin));
	util_iso8601(s->updated_at, ts);
	json_object_set_new(o, "updated_at", s->updated_at > 0 ? json_string(ts) : json_null());
	return o;
}

/* The closed loop's fields, stored as JSON texts (server/tasks.h); NULL when absent. */
void api_scenario_work_json(json_t *o, const struct db_scenario *s)
{
	const char *const text[] = {s->baseline, s->tasks, s->objective};
	const char *const name[] = {"baseline", "tasks", "objective"};
	int i;

	for (i = 0; i < 3; i++) {
		json_t *v = text[i] ? json_loads(text[i], 0, NULL) : NULL;
		json_object_set_new(o, name[i], v ? v : json_null());
	}
}

void api_scenarios_list(struct api_req *q, struct api_resp *r)
{
	struct db_scenario *v;
	struct perr e = {0};
	json_t *items;
	size_t n, i;

	if (db_scenario_list(q->db, &v, &n, &e) < 0)
		return api_perr(r, &e);
	items = json_array();
	for (i = 0; i < n; i++)
		json_array_append_new(items, api_scenario_json(&v[i]));
	db_scenarios_free(v, n);
	api_json(r, 200, json_pack("{s:o, s:n}", "items", items, "next_cursor"));
}

void api_scenarios_get(struct api_req *q, struct api_resp *r, const char *name)
{
	struct db_scenario s;
	struct perr e = {0};

	if (db_scenario_get(q->db, name, &s, &e) < 0)
		return api_perr(r, &e);
	api_json(r, 200, api_scenario_json(&s));
	db_scenario_release(&s);
}

void api_scenarios_put(struct api_req *q, struct api_resp *r, const char *name)
{
	struct db_scenario s;
	struct perr e = {0};
	json_t *body, *errs, *nm; /* owned, owned, borrowed */
	int created = 0;

	if (!api_slug_valid(name))
		return api_invalid(r, "name",
				   "a scenario name is 1 to 64 of a-z, 0-9, '_' and '-'");
	if (!(body = api_parse_body(q, r)))
		return;
	nm = json_object_get(body, "name");
	if (nm && (!json_is_string(nm) || strcmp(json_string_value(nm), name) != 0)) {
		json_decref(body);
		return api_invalid(r, "name", "must match the name in the path");
	}
	errs = json_array();
	if (api_scenario_validate(body, "", &s, errs) < 0) {
		json_decref(body);
		return api_fail(r, PERR_INVALID, errs, "the scenario is not valid");
	}
	json_decref(errs);
	json_decref(body);
	free(s.name);
	s.name = xstrdup(name);
	if (db_scenario_put(q->db, &s, &created, &e) < 0) {
		db_scenario_release(&s);
		return api_perr(r, &e);
	}
	db_scenario_release(&s);
	if (db_scenario_get(q->db, name, &s, &e) < 0)
		return api_perr(r, &e);
	api_json(r, created ? 201 : 200, api_scenario_json(&s));
	if (created) {
		struct strbuf loc;
		strbuf_init(&loc, 64);
		strbuf_addf(&loc, "/v1/scenarios/%s", name);
		r->location = strbuf_detach(&loc, NULL);
	}
	db_scenario_release(&s);
}

void api_scenarios_delete(struct api_req *q, struct api_resp *r, const char *name)
{
	struct perr e = {0};

	if (db_scenario_delete(q->db, name, &e) < 0)
		return api_perr(r, &e);
	r->status = 204;
	r->content_type = "application/json; charset=utf-8";
	strbuf_reset(&r->body);
}
