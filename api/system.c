/*
 * system.c - liveness, readiness and the configured backends.
 */
#include <string.h>

#include "api/api.h"
#include "db/job.h"
#include "server/metrics.h"

void api_system_healthz(struct api_req *q, struct api_resp *r)
{
	(void)q;
	api_json(r, 200, json_pack("{s:s, s:s}", "status", "ok", "version", PARLEY_VERSION));
}

void api_system_readyz(struct api_req *q, struct api_resp *r)
{
	int have = db_schema_version(q->db), want = db_schema_latest();
	struct perr e = {0};
	json_t *o;

	if (db_store_ready(q->db, &e) < 0)
		return api_perr(r, &e);
	if (have != want) {
		api_fail(r, PERR_UNAVAILABLE, NULL, "database schema is at %d of %d", have, want);
		return;
	}
	o = json_pack("{s:s, s:i, s:o}", "status", "ready", "schema_version", have, "backends",
		      fleet_status_json(q->deps->fleet));
	api_json(r, 200, o);
}

void api_system_backends(struct api_req *q, struct api_resp *r)
{
	api_json(r, 200, json_pack("{s:o}", "items", fleet_status_json(q->deps->fleet)));
}

void api_system_metrics(struct api_req *q, struct api_resp *r)
{
	int64_t counts[5];
	struct perr e = {0};
	struct strbuf out;

	if (db_job_counts(q->db, counts, &e) < 0)
		return api_perr(r, &e);
	strbuf_init(&out, 4096);
	metrics_render(&out, counts, pool_busy(q->deps->pool));
	r->status = 200;
	r->content_type = "text/plain; version=0.0.4; charset=utf-8";
	strbuf_release(&r->body);
	r->body = out;
}
