/*
 * extract_model.c - a model lists the suggestions. See extract_model.h.
 */
#include "server/extract_model.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/engine.h"
#include "server/log.h"
#include "server/structured.h"

#define TITLE_MAX 300
#define DETAIL_MAX 4000
#define EXTRACT_NUM_PREDICT 2048

const char extract_model_prompt[] =
    "You read the analysis an interviewer wrote at the end of an optimization interview and "
    "list every concrete suggestion it makes, in the order it makes them.\n"
    "\n"
    "Answer with a JSON array; one object per suggestion:\n"
    "- title: the suggestion's name, copied word for word from the analysis (its bold lead or "
    "its first words); never reworded;\n"
    "- detail: what to change, in one or two sentences;\n"
    "- test: how the analysis says to measure whether it worked, or null when it does not "
    "say.\n"
    "\n"
    "List only suggestions the analysis makes. Its analysis of the approach, its optimization "
    "opportunities and its reasoning are not suggestions. When it makes none, answer [].";

json_t *extract_model_schema(void)
{
	json_t *item = json_pack(
	    "{s:s, s:{s:{s:s, s:i, s:i}, s:{s:s, s:i}, s:{s:[s, s], s:i}}, s:[s, s, s], s:b}",
	    "type", "object", "properties", "title", "type", "string", "minLength", 1, "maxLength",
	    TITLE_MAX, "detail", "type", "string", "maxLength", DETAIL_MAX, "test", "type",
	    "string", "null", "maxLength", DETAIL_MAX, "required", "title", "detail", "test",
	    "additionalProperties", 0);

	return json_pack("{s:s, s:o}", "type", "array", "items", item);
}

/* Lower case, markup and punctuation dropped, one blank between words; other bytes kept. */
static char *normalise(const char *s)
{
	struct strbuf sb;
	int gap = 0;

	strbuf_init(&sb, strlen(s) + 1);
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;

		if (c >= 0x80 || isalnum(c)) {
			if (gap && sb.len)
				strbuf_addch(&sb, ' ');
			gap = 0;
			strbuf_addch(&sb, c >= 0x80 ? (char)c : (char)tolower(c));
		} else {
			gap = 1;
		}
	}
	return strbuf_detach(&sb, NULL);
}

static int string_or(const json_t *v, size_t max, int null_ok)
{
	return (json_is_string(v) && json_string_length(v) <= max) || (null_ok && json_is_null(v));
}

int extract_model_parse(const char *reply, const char *text, int turn, struct optim_list *out,
			json_t *dropped, struct perr *e)
{
	json_error_t jerr;
	json_t *arr = json_loads(reply ? reply : "", JSON_REJECT_DUPLICATES, &jerr), *it;
	char *hay;
	size_t i;

	if (!json_is_array(arr)) {
		json_decref(arr);
		return perr_set(e, PERR_BACKEND_PROTOCOL, "the reply is not a JSON array: %s",
				arr ? "another JSON value" : jerr.text);
	}
	json_array_foreach(arr, i, it)
	{
		const json_t *t = json_object_get(it, "title");

		if (!json_is_object(it) || !string_or(t, TITLE_MAX, 0) ||
		    json_string_length(t) == 0 ||
		    !string_or(json_object_get(it, "detail"), DETAIL_MAX, 1) ||
		    !string_or(json_object_get(it, "test"), DETAIL_MAX, 1)) {
			json_decref(arr);
			return perr_set(e, PERR_BACKEND_PROTOCOL,
					"item %zu of the reply is not {title, detail, test}",
					i + 1);
		}
	}
	hay = normalise(text ? text : "");
	json_array_foreach(arr, i, it)
	{
		const char *title = json_string_value(json_object_get(it, "title"));
		const char *detail = json_string_value(json_object_get(it, "detail"));
		const char *test = json_string_value(json_object_get(it, "test"));
		char *needle = normalise(title);
		struct optim *o;
		struct strbuf sugg;

		if (!*needle || !strstr(hay, needle)) {
			json_array_append_new(dropped, json_string(title));
			free(needle);
			continue;
		}
		free(needle);
		if (out->n == out->alloc) {
			out->alloc = out->alloc ? out->alloc * 2 : 8;
			out->v = xrealloc(out->v, out->alloc * sizeof(*out->v));
		}
		o = &out->v[out->n++];
		memset(o, 0, sizeof(*o));
		o->title = xstrdup(title);
		o->detail = xstrdup(detail ? detail : "");
		o->test = test && *test ? xstrdup(test) : NULL;
		strbuf_init(&sugg, 128);
		strbuf_addf(&sugg, "%s%s%s", title, *o->detail ? " \xe2\x80\x94 " : "", o->detail);
		o->suggestion = strbuf_detach(&sugg, NULL);
		o->turn = turn;
		o->method = "model";
	}
	free(hay);
	json_decref(arr);
	return 0;
}

json_t *extract_model_job(struct fleet *fleet, CURL *curl, const atomic_int *cancel,
			  const struct db_job *job, const struct db_turn *turns, size_t nturns,
			  struct optim_list *out)
{
	const char *spec_text = job->extractor ? job->extractor : job->judge;
	json_t *spec, *info, *schema = NULL, *opts = NULL, *dropped = json_array(), *v;
	const char *model, *bname, *text = NULL;
	const struct backend_cfg *be;
	int analysis = engine_analysis_turn(job->max_turns, turns, nturns);
	struct structured_req sq;
	struct chat_result res;
	struct perr e = {0};
	size_t i;

	if (!job->extraction || strcmp(job->extraction, "model") != 0) {
		json_decref(dropped);
		return NULL;
	}
	for (i = 0; i < nturns; i++)
		if (turns[i].idx == analysis)
			text = turns[i].text;
	spec = spec_text ? json_loads(spec_text, 0, NULL) : NULL;
	model = json_string_value(json_object_get(spec, "model"));
	bname = json_string_value(json_object_get(spec, "backend"));
	be = bname ? fleet_find(fleet, bname) : NULL;
	info = json_pack("{s:o, s:o}", "model", model ? json_string(model) : json_null(), "backend",
			 bname ? json_string(bname) : json_null());
	memset(&res, 0, sizeof(res));
	strbuf_init(&res.text, 0);
	if (!text) {
		perr_set(&e, PERR_INVALID, "the conversation has no analysis turn");
	} else if (!model || !be) {
		perr_set(&e, PERR_NOT_FOUND, "no model to extract with: %s",
			 !model ? "the job names none" : "its backend is no longer configured");
	} else {
		schema = extract_model_schema();
		/* listing what a text says is not creative writing */
		opts = json_pack("{s:i, s:i, s:i}", "temperature", 0, "seed", 42, "num_predict",
				 EXTRACT_NUM_PREDICT);
		if (job->options && (v = json_loads(job->options, 0, NULL))) {
			if (json_object_get(v, "num_ctx"))
				json_object_set(opts, "num_ctx", json_object_get(v, "num_ctx"));
			json_decref(v);
		}
		sq = (struct structured_req){.fleet = fleet,
					     .curl = curl,
					     .cancel = cancel,
					     .be = be,
					     .model = model,
					     .system = extract_model_prompt,
					     .user = text,
					     .schema = schema,
					     .options = opts};
		if (structured_call(&sq, &res, &e) == 0) {
			json_object_set_new(info, "wall_ms", json_real(res.m.wall_ms));
			extract_model_parse(res.text.buf, text, analysis, out, dropped, &e);
		}
	}
	if (e.code) {
		/* the model could not say: the tree extractor reads the analysis */
		log_warn("model extraction failed, the rubric reads the analysis",
			 "job=%s model=%s error=\"%s\"", job->id, model ? model : "-", e.msg);
		json_object_set_new(info, "error", json_string(e.msg));
		json_object_set_new(info, "method", json_string("rubric"));
		if (text)
			extract_optimizations(EXTRACT_RUBRIC, text, analysis, out);
	} else {
		json_object_set_new(info, "method", json_string("model"));
	}
	json_object_set_new(info, "kept", json_integer((json_int_t)out->n));
	json_object_set_new(info, "dropped", dropped);
	chat_result_release(&res);
	json_decref(schema);
	json_decref(opts);
	json_decref(spec);
	return info;
}
