/*
 * record.c - jobs and turns as JSON. See record.h.
 */
#include "server/record.h"

#include <stdio.h>
#include <string.h>

json_t *record_time(int64_t us)
{
	char ts[32];

	if (us <= 0)
		return json_null();
	util_iso8601(us, ts);
	return json_string(ts);
}

char *record_dumps(const json_t *j)
{
	/* 17 digits round-trip every double but print 0.7 as 0.69999999999999996;
	 * 16 are the shortest that keep what the origin printed */
	return json_dumps(j, RECORD_DUMP_FLAGS);
}

json_t *record_json(const char *text, json_t *fallback)
{
	json_t *j = text ? json_loads(text, 0, NULL) : NULL;

	if (!j)
		return fallback;
	json_decref(fallback);
	return j;
}

static json_t *real_or_null(double v)
{
	return v < 0 ? json_null() : json_real(v);
}

static json_t *int_or_null(int64_t v)
{
	return v < 0 ? json_null() : json_integer(v);
}

json_t *record_error(const struct db_job *j)
{
	if (!j->error_code)
		return json_null();
	return json_pack("{s:s, s:s}", "code", j->error_code, "message",
			 j->error_message ? j->error_message : "");
}

json_t *record_job(const struct db_job *j)
{
	json_t *o = json_object();
	char buf[160];

	json_object_set_new(o, "id", json_string(j->id));
	json_object_set_new(o, "status", json_string(j->status));
	json_object_set_new(o, "scenario", json_string(j->scenario_name));
	json_object_set_new(o, "interviewer",
			    json_pack("{s:s, s:s}", "model", j->interviewer_model, "backend",
				      j->interviewer_backend));
	json_object_set_new(
	    o, "candidate",
	    json_pack("{s:s, s:s}", "model", j->candidate_model, "backend", j->candidate_backend));
	json_object_set_new(o, "max_turns", json_integer(j->max_turns));
	json_object_set_new(o, "turns_completed", json_integer(j->turns_completed));
	if (strcmp(j->status, "running") == 0 && j->turns_completed < j->max_turns)
		snprintf(buf, sizeof(buf), "turn %d of %d", j->turns_completed + 1, j->max_turns);
	else if (strcmp(j->status, "running") == 0)
		snprintf(buf, sizeof(buf), "scoring");
	else
		snprintf(buf, sizeof(buf), "%d of %d turns", j->turns_completed, j->max_turns);
	json_object_set_new(o, "progress", json_string(buf));
	json_object_set_new(o, "options", record_json(j->options, json_object()));
	json_object_set_new(o, "scoring", json_string(j->scoring));
	json_object_set_new(o, "extraction", json_string(j->extraction));
	json_object_set_new(o, "labels", record_json(j->labels, json_object()));
	json_object_set_new(o, "batch", j->batch_id ? json_string(j->batch_id) : json_null());
	json_object_set_new(o, "judge", record_json(j->judge, json_null())); /* scoring "judge" */
	/* extraction "model": the model named for it (else the judge's) */
	json_object_set_new(o, "extractor", record_json(j->extractor, json_null()));
	json_object_set_new(o, "created_at", record_time(j->created_at));
	json_object_set_new(o, "started_at", record_time(j->started_at));
	json_object_set_new(o, "finished_at", record_time(j->finished_at));
	json_object_set_new(o, "attempts", json_integer(j->attempts));
	json_object_set_new(o, "cancel_requested", json_boolean(j->cancel_requested));
	json_object_set_new(o, "error", record_error(j));
	json_object_set_new(o, "metrics", record_json(j->metrics, json_null()));
	return o;
}

static json_t *turn_metrics(const struct db_turn *t)
{
	json_t *m = json_object();

	json_object_set_new(m, "ttft_ms", real_or_null(t->ttft_ms));
	json_object_set_new(m, "prompt_tokens", int_or_null(t->prompt_tokens));
	json_object_set_new(m, "cached_tokens", int_or_null(t->cached_tokens));
	json_object_set_new(m, "completion_tokens", int_or_null(t->completion_tokens));
	json_object_set_new(m, "prompt_ms", real_or_null(t->prompt_ms));
	json_object_set_new(m, "gen_ms", real_or_null(t->gen_ms));
	json_object_set_new(m, "tokens_per_s", real_or_null(t->tokens_per_s));
	json_object_set_new(m, "load_ms", real_or_null(t->load_ms));
	json_object_set_new(m, "wall_ms", json_real(t->wall_ms));
	json_object_set_new(m, "finish_reason",
			    t->finish_reason ? json_string(t->finish_reason) : json_null());
	json_object_set_new(m, "attempts", json_integer(t->attempts));
	return m;
}

/*
 * A model's text as JSON. The engine stores text repaired already; a turn
 * stored before that, or written by another tool, may still hold bytes that
 * are not UTF-8, which json_string() refuses: the message would vanish from
 * the transcript. Such bytes become U+FFFD and *repaired says how many.
 */
static json_t *model_text(const char *text, size_t *repaired)
{
	json_t *j = json_string(text ? text : "");
	struct strbuf sb;

	*repaired = 0;
	if (j)
		return j;
	strbuf_init(&sb, strlen(text) + 16);
	*repaired = util_utf8_repair(text, strlen(text), &sb);
	j = json_stringn(sb.buf, sb.len);
	strbuf_release(&sb);
	return j;
}

json_t *record_turn(const struct db_turn *t)
{
	json_t *c = json_object();
	size_t repaired;

	json_object_set_new(c, "turn", json_integer(t->idx));
	json_object_set_new(c, "speaker", json_string(t->role));
	json_object_set_new(c, "model", json_string(t->model));
	json_object_set_new(c, "backend", json_string(t->backend));
	json_object_set_new(c, "message", model_text(t->text, &repaired));
	json_object_set_new(c, "duration", json_real(t->wall_ms / 1000.0));
	json_object_set_new(c, "timestamp", record_time(t->finished_at));
	json_object_set_new(c, "started_at", record_time(t->started_at));
	json_object_set_new(c, "metrics", turn_metrics(t));
	if (repaired) {
		struct strbuf note;
		strbuf_init(&note, 128);
		if (t->note)
			strbuf_addf(&note, "%s | ", t->note);
		strbuf_addf(&note, "%zu bytes of the stored text were not UTF-8: shown as U+FFFD",
			    repaired);
		json_object_set_new(c, "note", model_text(note.buf, &repaired));
		strbuf_release(&note);
	} else if (t->note) {
		json_object_set_new(c, "note", model_text(t->note, &repaired));
	}
	return c;
}
