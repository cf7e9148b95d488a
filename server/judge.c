/*
 * judge.c - a third model grades a finished conversation. See judge.h.
 */
#include "server/judge.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/log.h"

#define REASONING_MAX 400      /* characters of one line of reasoning */
#define REPLY_SHOWN 200	       /* characters of a bad reply kept in the error record */
#define JUDGE_NUM_PREDICT 1024 /* two lines of reasoning and two numbers, with room to spare */

/* Change JUDGE_RUBRIC_VERSION with every change to this text. */
const char judge_rubric[] =
    "You grade an AI-to-AI optimization interview. An interviewer model interviewed a "
    "candidate model about an optimization scenario and closed with an analysis that should "
    "contain concrete, testable suggestions.\n"
    "\n"
    "Grade two things, each as a whole number from 0 to 10.\n"
    "\n"
    "interview_quality: how well the interviewer did its job.\n"
    "- 9-10: the opening restates the challenge and asks about the candidate's current "
    "approach; the questions are focused; the analysis has all four sections (analysis of the "
    "approach, optimization opportunities, concrete suggestions, reasoning); every suggestion "
    "is specific to this scenario and comes with a test that says what to measure and what "
    "result would count as success.\n"
    "- 7-8: the analysis is complete and relevant, but some suggestions are generic or have "
    "no measurable test.\n"
    "- 4-6: the suggestions are vague or mostly generic advice, or sections are missing.\n"
    "- 0-3: no usable analysis, off-topic, or the interview broke down.\n"
    "\n"
    "candidate_engagement: how well the candidate took part.\n"
    "- 9-10: answers the question it was asked, describes its actual workflow step by step, "
    "gives numbers, names techniques, and is candid about what does not work and about its "
    "limits.\n"
    "- 7-8: relevant and concrete in places, but thin on numbers or limits.\n"
    "- 4-6: generic or evasive, or mostly restates the question.\n"
    "- 0-3: off-topic, refuses, or says nothing of substance.\n"
    "\n"
    "For each score write one line of reasoning that names what in the transcript earned it. "
    "Judge only what the transcript shows; do not reward length or polish. Answer with the "
    "JSON object asked for and nothing else.";

json_t *judge_schema(void)
{
	/* reasoning first: a model that writes its reason before its number grades better */
	json_t *props = json_object(), *schema;

	json_object_set_new(props, "interview_quality_reasoning",
			    json_pack("{s:s, s:i}", "type", "string", "maxLength", REASONING_MAX));
	json_object_set_new(
	    props, "interview_quality",
	    json_pack("{s:s, s:i, s:i}", "type", "integer", "minimum", 0, "maximum", 10));
	json_object_set_new(props, "candidate_engagement_reasoning",
			    json_pack("{s:s, s:i}", "type", "string", "maxLength", REASONING_MAX));
	json_object_set_new(
	    props, "candidate_engagement",
	    json_pack("{s:s, s:i, s:i}", "type", "integer", "minimum", 0, "maximum", 10));
	/* props stolen by "o" */
	schema = json_pack("{s:s, s:o, s:[s, s, s, s], s:b}", "type", "object", "properties", props,
			   "required", "interview_quality_reasoning", "interview_quality",
			   "candidate_engagement_reasoning", "candidate_engagement",
			   "additionalProperties", 0);
	return schema;
}

static const char *field(const json_t *o, const char *key)
{
	const char *s = json_string_value(json_object_get(o, key));

	return s ? s : "";
}

void judge_prompt(const json_t *scenario, const struct db_turn *turns, size_t nturns,
		  struct strbuf *out)
{
	size_t i;

	strbuf_addf(out,
		    "Scenario: %s\nProblem: %s\nContext: %s\nGoal: %s\n\n"
		    "The transcript, %zu turns:\n\n",
		    field(scenario, "name"), field(scenario, "problem"), field(scenario, "context"),
		    field(scenario, "goal"), nturns);
	for (i = 0; i < nturns; i++)
		strbuf_addf(out, "=== Turn %d: %s (%s) ===\n%s\n\n", turns[i].idx, turns[i].role,
			    turns[i].model ? turns[i].model : "",
			    turns[i].text ? turns[i].text : "");
	strbuf_addstr(out, "Grade this conversation against the rubric.");
}

/* s without line breaks and surrounding space: one line, as the rubric asks. New string. */
static char *one_line(const char *s)
{
	struct strbuf sb;
	int space = 0;

	strbuf_init(&sb, strlen(s) + 1);
	for (; *s; s++) {
		if (isspace((unsigned char)*s)) {
			space = sb.len > 0;
			continue;
		}
		if (space)
			strbuf_addch(&sb, ' ');
		space = 0;
		strbuf_addch(&sb, *s);
	}
	return strbuf_detach(&sb, NULL);
}

static int grade_field(const json_t *o, const char *key, json_t *out, struct perr *e)
{
	json_t *v = json_object_get(o, key); /* borrowed */
	double x;

	if (!v)
		return perr_set(e, PERR_BACKEND_PROTOCOL, "the judge's reply has no \"%s\"", key);
	if (!json_is_number(v))
		return perr_set(e, PERR_BACKEND_PROTOCOL,
				"the judge's \"%s\" is not a number from 0 to 10", key);
	x = json_number_value(v);
	if (x < 0 || x > 10 || x != (double)(long)x)
		return perr_set(e, PERR_BACKEND_PROTOCOL,
				"the judge's \"%s\" is %g, not a whole number from 0 to 10", key,
				x);
	json_object_set_new(out, key, json_integer((json_int_t)x));
	return 0;
}

static int reason_field(const json_t *o, const char *key, json_t *out, struct perr *e)
{
	json_t *v = json_object_get(o, key); /* borrowed */
	char *line;

	if (!json_is_string(v))
		return perr_set(e, PERR_BACKEND_PROTOCOL, "the judge's reply has no string \"%s\"",
				key);
	line = one_line(json_string_value(v));
	if (!*line) {
		free(line);
		return perr_set(e, PERR_BACKEND_PROTOCOL, "the judge's \"%s\" is empty", key);
	}
	json_object_set_new(out, key, json_string(line));
	free(line);
	return 0;
}

json_t *judge_parse(const char *reply, struct perr *e)
{
	static const char *const keys[] = {"interview_quality", "interview_quality_reasoning",
					   "candidate_engagement",
					   "candidate_engagement_reasoning"};
	json_error_t jerr;
	json_t *o = json_loads(reply ? reply : "", JSON_REJECT_DUPLICATES, &jerr), *out, *v;
	const char *key;
	size_t i;

	if (!o)
		return perr_set(e, PERR_BACKEND_PROTOCOL, "the judge's reply is not JSON: %s",
				jerr.text),
		       NULL;
	if (!json_is_object(o)) {
		json_decref(o);
		return perr_set(e, PERR_BACKEND_PROTOCOL, "the judge's reply is not a JSON object"),
		       NULL;
	}
	json_object_foreach(o, key, v)
	{
		for (i = 0; i < ARRAY_SIZE(keys); i++)
			if (!strcmp(key, keys[i]))
				break;
		if (i == ARRAY_SIZE(keys)) {
			perr_set(e, PERR_BACKEND_PROTOCOL,
				 "the judge's reply has \"%.60s\", which the schema does not allow",
				 key);
			json_decref(o);
			return NULL;
		}
	}
	out = json_object();
	if (grade_field(o, "interview_quality", out, e) < 0 ||
	    reason_field(o, "interview_quality_reasoning", out, e) < 0 ||
	    grade_field(o, "candidate_engagement", out, e) < 0 ||
	    reason_field(o, "candidate_engagement_reasoning", out, e) < 0) {
		json_decref(out);
		out = NULL;
	}
	json_decref(o);
	return out;
}

/* The start of a bad reply, on one line, for the error record. New reference. */
static json_t *reply_excerpt(const struct strbuf *text)
{
	char *line;
	json_t *j;
	size_t n;

	if (!text->len)
		return NULL;
	line = one_line(text->buf);
	n = strlen(line);
	if (n > REPLY_SHOWN) {
		n = REPLY_SHOWN;
		while (n > 0 && ((unsigned char)line[n] & 0xC0) == 0x80)
			n--; /* not inside a UTF-8 sequence */
		line[n] = '\0';
	}
	j = json_string(line); /* NULL when the reply is not UTF-8 */
	free(line);
	return j;
}

json_t *judge_run(const struct judge_call *c)
{
	const char *model = c->model, *bname = c->backend;
	const struct backend_cfg *be = bname ? fleet_find(c->fleet, bname) : NULL;
	json_t *out = json_object(), *schema = NULL, *opts = NULL, *grade, *v;
	struct chat_msg msgs[2];
	struct chat_result res;
	struct chat_req req;
	struct fleet_call fc;
	struct strbuf user;
	struct perr e = {0};
	int rc;

	memset(&res, 0, sizeof(res));
	strbuf_init(&res.text, 0);
	strbuf_init(&user, 8192);
	json_object_set_new(out, "model", model ? json_string(model) : json_null());
	json_object_set_new(out, "backend", bname ? json_string(bname) : json_null());
	json_object_set_new(out, "rubric_version", json_string(JUDGE_RUBRIC_VERSION));
	if (!model || !bname) {
		json_object_set_new(out, "error", json_string("the job names no judge model"));
		goto out;
	}
	if (!be) {
		char msg[200];
		snprintf(msg, sizeof(msg), "backend '%.80s' is no longer configured", bname);
		json_object_set_new(out, "error", json_string(msg));
		goto out;
	}
	schema = judge_schema();
	/* grading is not creative writing: the same transcript should get the same grade */
	opts = json_pack("{s:i, s:i, s:i}", "temperature", 0, "seed", 42, "num_predict",
			 JUDGE_NUM_PREDICT);
	if ((v = json_object_get(c->options, "num_ctx"))) /* borrowed, so set() increfs */
		json_object_set(opts, "num_ctx", v);
	judge_prompt(c->scenario, c->turns, c->nturns, &user);
	msgs[0] = (struct chat_msg){"system", judge_rubric};
	msgs[1] = (struct chat_msg){"user", user.buf};
	memset(&req, 0, sizeof(req));
	req.be = be;
	req.model = model;
	req.msgs = msgs;
	req.nmsgs = 2;
	req.options = opts;
	req.cancel = c->cancel;
	req.format = schema;

	/* a one-shot call: a free slot, never one a running conversation holds */
	if (fleet_oneshot_acquire(c->fleet, be->name, model, c->cancel, &fc, &e) < 0) {
		json_object_set_new(out, "error",
				    json_string("cancelled while waiting for the judge's backend"));
		goto out;
	}
	fleet_call_pin(&fc, &req);
	rc = backend_chat(c->curl, &req, &res, &e);
	fleet_oneshot_release(c->fleet, &fc);
	if (rc < 0) {
		json_object_set_new(out, "error", json_string(e.msg));
		goto out;
	}
	json_object_set_new(out, "wall_ms", json_real(res.m.wall_ms));
	if (!(grade = judge_parse(res.text.buf, &e))) {
		json_object_set_new(out, "error", json_string(e.msg));
		if ((v = reply_excerpt(&res.text)))
			json_object_set_new(out, "reply", v);
		goto out;
	}
	json_object_update(out, grade);
	json_decref(grade);
out:
	if (json_object_get(out, "error"))
		log_warn("judge could not grade", "model=%s backend=%s error=\"%s\"",
			 model ? model : "-", bname ? bname : "-",
			 json_string_value(json_object_get(out, "error")));
	chat_result_release(&res);
	strbuf_release(&user);
	json_decref(schema);
	json_decref(opts);
	return out;
}
