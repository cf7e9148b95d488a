/*
 * fake_ollama.c - the fake's Ollama: POST /api/chat (its request checks, model loading with
 * the cold --load-ms, the NDJSON chunk and final object with its metrics and the keys an
 * omit_fields fault leaves out) and GET /api/tags, /api/ps, POST /api/show. The streaming
 * itself, shared with llama-server, is in fake_chat.c.
 */
#include <stdio.h>
#include <string.h>

#include "db/util.h"
#include "tests/fake/fake.h"
#include "tests/fake/fake_server.h"

/* ---- errors and the pieces of a reply ---- */

enum MHD_Result fake_ollama_error(struct fake_req *r, int status, const char *msg, long retry_after)
{
	return fake_send_json(r, status, json_pack("{s:s}", "error", msg), retry_after);
}

/* Ollama's metrics (int64 nanoseconds) onto a final object j. */
static void ollama_metrics(struct fake_req *r, json_t *j)
{
	json_int_t prompt_ns = (json_int_t)r->prompt_tokens * FAKE_PROMPT_US_PER_TOKEN * 1000;
	json_int_t eval_ns = fake_chat_gen_us(r) * 1000,
		   total_ns = (util_mono_us() - r->t0_us) * 1000;

	/* the nominal floors must not make the parts add up to more than the whole */
	if (total_ns < r->load_ns + prompt_ns + eval_ns)
		total_ns = r->load_ns + prompt_ns + eval_ns;
	json_object_set_new(j, "total_duration", json_integer(total_ns)); /* stolen */
	json_object_set_new(j, "load_duration", json_integer(r->load_ns));
	json_object_set_new(j, "prompt_eval_count", json_integer(r->prompt_tokens));
	json_object_set_new(j, "prompt_eval_duration", json_integer(prompt_ns));
	json_object_set_new(j, "eval_count", json_integer((json_int_t)r->next));
	json_object_set_new(j, "eval_duration", json_integer(eval_ns));
}

/* The keys an omit_fields fault may leave out of Ollama's final object; "metrics" names the
 * six metrics at once. */
static const char *const omittable[] = {
    "total_duration", "load_duration", "prompt_eval_count", "prompt_eval_duration",
    "eval_count",     "eval_duration", "done_reason",	    "message",
};

int fake_ollama_omitted(const struct fake_req *r, const char *key)
{
	const char *p = r->fault.mode == FM_OMIT_FIELDS ? r->fault.fields : NULL;
	size_t klen = strlen(key);
	int metric = strcmp(key, "done_reason") && strcmp(key, "message");

	while (p && *p) {
		size_t n = strcspn(p, ",");

		if ((n == klen && !strncmp(p, key, n)) ||
		    (metric && n == 7 && !strncmp(p, "metrics", 7)))
			return 1;
		p += n + (p[n] == ',');
	}
	return 0;
}

/* An omit_fields fault's list: names from omittable[] or "metrics", comma-separated. */
void fake_ollama_check_fields(const char *fields, char *err, size_t errlen)
{
	const char *p = fields;

	if (!p || !*p) {
		snprintf(err, errlen, "omit_fields needs 'fields'");
		return;
	}
	while (*p) {
		size_t n = strcspn(p, ","), i;
		int known = n == 7 && !strncmp(p, "metrics", 7);

		for (i = 0; i < ARRAY_SIZE(omittable); i++)
			known |= n == strlen(omittable[i]) && !strncmp(p, omittable[i], n);
		if (!known) {
			snprintf(err, errlen, "unknown field '%.*s' in 'fields'", (int)n, p);
			return;
		}
		p += n + (p[n] == ',');
	}
}

json_t *fake_ollama_object(struct fake_req *r, const char *content, size_t len, int done)
{
	char ts[32];
	json_t *j;

	util_iso8601(util_now_us(), ts);
	j = json_pack("{s:s,s:s,s:{s:s,s:s%}}", "model", r->model, "created_at", ts, "message",
		      "role", "assistant", "content", content, len);
	if (done)
		json_object_set_new(j, "done_reason", json_string(r->finish_reason)); /* stolen */
	json_object_set_new(j, "done", json_boolean(done));
	if (done) {
		size_t i;

		ollama_metrics(r, j);
		for (i = 0; i < ARRAY_SIZE(omittable); i++)
			if (fake_ollama_omitted(r, omittable[i]))
				json_object_del(j, omittable[i]);
	}
	return j;
}

/* ---- Ollama /api/chat ---- */

static const char *const ollama_int_options[] = {
    "num_ctx",	     "num_predict", "num_keep", "seed",	      "top_k",
    "repeat_last_n", "num_batch",   "num_gpu",	"num_thread", "mirostat",
};
static const char *const ollama_float_options[] = {
    "temperature",	 "top_p",	   "min_p",
    "typical_p",	 "repeat_penalty", "presence_penalty",
    "frequency_penalty", "mirostat_tau",   "mirostat_eta",
};

/* Ollama's check of option types. Returns 0, or -1 with the message in msg. */
static int ollama_check_options(const json_t *opts, char *msg, size_t msglen)
{
	size_t i;

	for (i = 0; i < ARRAY_SIZE(ollama_int_options); i++) {
		json_t *v = json_object_get(opts, ollama_int_options[i]);

		if (v && !json_is_number(v)) {
			snprintf(msg, msglen, "option \"%s\" must be of type integer",
				 ollama_int_options[i]);
			return -1;
		}
	}
	for (i = 0; i < ARRAY_SIZE(ollama_float_options); i++) {
		json_t *v = json_object_get(opts, ollama_float_options[i]);

		if (v && !json_is_number(v)) {
			snprintf(msg, msglen, "option \"%s\" must be of type float32",
				 ollama_float_options[i]);
			return -1;
		}
	}
	return 0;
}

static int keep_alive_zero(const json_t *ka)
{
	const char *s = json_string_value(ka);

	if (json_is_number(ka))
		return json_number_value(ka) == 0;
	return s && (!strcmp(s, "0") || !strcmp(s, "0s") || !strcmp(s, "0m"));
}

/* Marks model loaded; returns 1 when it was not (a cold start). Name normalized to a tag. */
static int ollama_load(const char *model, long num_ctx)
{
	char name[512];
	int cold;

	snprintf(name, sizeof(name), "%s%s", model, strchr(model, ':') ? "" : ":latest");
	pthread_mutex_lock(&fake_st.lock);
	cold = json_object_get(fake_st.loaded, name) == NULL;
	json_object_set_new(fake_st.loaded, name,
			    json_pack("{s:I}", "num_ctx", (json_int_t)num_ctx));
	pthread_mutex_unlock(&fake_st.lock);
	return cold;
}

static void ollama_unload(const char *model)
{
	char name[512];

	snprintf(name, sizeof(name), "%s%s", model, strchr(model, ':') ? "" : ":latest");
	pthread_mutex_lock(&fake_st.lock);
	json_object_del(fake_st.loaded, name);
	pthread_mutex_unlock(&fake_st.lock);
}

enum MHD_Result fake_ollama_chat(struct fake_req *r, const json_t *body, const json_t *script)
{
	json_t *msgs = json_object_get(body, "messages"), *opts = json_object_get(body, "options");
	json_t *think = json_object_get(body, "think"), *trunc = json_object_get(body, "truncate");
	char msg[600];
	long num_ctx, num_predict;

	if (!*r->model)
		return fake_ollama_error(r, 400, "model is required", -1);
	if (fake_model_missing(script, r->model)) {
		snprintf(msg, sizeof(msg), "model '%s' not found", r->model);
		return fake_ollama_error(r, 404, msg, -1);
	}
	if (msgs && !json_is_array(msgs) && !json_is_null(msgs))
		return fake_ollama_error(r, 400,
					 "json: cannot unmarshal object into Go struct field "
					 "ChatRequest.messages of type []api.Message",
					 -1);
	if (opts && !json_is_object(opts) && !json_is_null(opts))
		return fake_ollama_error(r, 400,
					 "json: cannot unmarshal value into Go struct field "
					 "ChatRequest.options of type map[string]interface {}",
					 -1);
	if (json_is_true(think) || json_is_string(think)) {
		snprintf(msg, sizeof(msg), "\"%s\" does not support thinking", r->model);
		return fake_ollama_error(r, 400, msg, -1);
	}
	if (ollama_check_options(opts, msg, sizeof(msg)))
		return fake_ollama_error(r, 400, msg, -1);
	num_ctx = fake_chat_int(opts, "num_ctx", fake_cfg.n_ctx);
	num_predict = fake_chat_int(opts, "num_predict", -1);

	if (json_array_size(msgs) == 0) {
		/* an empty conversation loads (or with keep_alive 0 unloads) the model */
		const char *why = "load";

		if (keep_alive_zero(json_object_get(body, "keep_alive"))) {
			ollama_unload(r->model);
			why = "unload";
		} else if (ollama_load(r->model, num_ctx) && fake_nap(r, fake_cfg.load_ms)) {
			return MHD_NO;
		}
		r->finish_reason = why;
		{
			char ts[32];

			util_iso8601(util_now_us(), ts);
			return fake_send_json(r, 200,
					      json_pack("{s:s,s:s,s:{s:s,s:s},s:s,s:b}", "model",
							r->model, "created_at", ts, "message",
							"role", "assistant", "content", "",
							"done_reason", why, "done", 1),
					      -1);
		}
	}
	if (r->prompt_tokens > num_ctx) {
		if (json_is_false(trunc)) {
			snprintf(msg, sizeof(msg),
				 "prompt too long; exceeded max context length by %ld tokens",
				 r->prompt_tokens - num_ctx);
			return fake_ollama_error(r, 400, msg, -1);
		}
		/* Ollama drops the oldest messages without a word */
		r->prompt_tokens = num_ctx;
	}
	if (ollama_load(r->model, num_ctx) && fake_nap(r, fake_cfg.load_ms))
		return MHD_NO;
	r->load_ns = (util_mono_us() - r->t0_us) * 1000;
	fake_chat_set_reply(r, script, body, msgs, num_predict);
	return fake_chat_reply(r);
}

/* ---- GET /api/tags, /api/ps; POST /api/show ---- */

/* A digest that looks like Ollama's and is the same for the same name. */
static void ollama_digest(const char *name, char out[65])
{
	uint64_t h = 1469598103934665603ULL;
	int i;

	for (i = 0; i < 4; i++) {
		const char *p;

		for (p = name; *p; p++)
			h = (h ^ (unsigned char)*p) * 1099511628211ULL;
		h = (h ^ (uint64_t)i) * 1099511628211ULL;
		snprintf(out + 16 * i, 17, "%016llx", (unsigned long long)h);
	}
}

static json_t *ollama_details(void)
{
	return json_pack("{s:s,s:s,s:s,s:[s],s:s,s:s}", "parent_model", "", "format", "gguf",
			 "family", "llama", "families", "llama", "parameter_size", "999.89M",
			 "quantization_level", "Q4_K_M");
}

enum MHD_Result fake_ollama_tags(struct fake_req *r)
{
	json_t *script = fake_script_get(), *names = fake_model_names(script, 1),
	       *list = json_array(), *v;
	size_t i;

	json_array_foreach(names, i, v)
	{
		char digest[65];

		ollama_digest(json_string_value(v), digest);
		json_array_append_new(list,
				      json_pack("{s:O,s:O,s:s,s:I,s:s,s:o}", "name", v, "model", v,
						"modified_at", "2025-10-01T12:00:00.000000Z",
						"size", (json_int_t)815319791, "digest", digest,
						"details", ollama_details()));
	}
	json_decref(names);
	json_decref(script);
	return fake_send_json(r, 200, json_pack("{s:o}", "models", list), -1);
}

enum MHD_Result fake_ollama_ps(struct fake_req *r)
{
	json_t *list = json_array(), *v;
	const char *name;
	char expires[32];

	util_iso8601(util_now_us() + 30LL * 60 * 1000000, expires);
	pthread_mutex_lock(&fake_st.lock);
	json_object_foreach(fake_st.loaded, name, v)
	{
		char digest[65];

		ollama_digest(name, digest);
		json_array_append_new(
		    list, json_pack("{s:s,s:s,s:I,s:s,s:o,s:s,s:I,s:I}", "name", name, "model",
				    name, "size", (json_int_t)1260000000, "digest", digest,
				    "details", ollama_details(), "expires_at", expires, "size_vram",
				    (json_int_t)1260000000, "context_length",
				    json_integer_value(json_object_get(v, "num_ctx"))));
	}
	pthread_mutex_unlock(&fake_st.lock);
	return fake_send_json(r, 200, json_pack("{s:o}", "models", list), -1);
}

enum MHD_Result fake_ollama_show(struct fake_req *r)
{
	json_t *body = json_loadb(r->body.buf, r->body.len, 0, NULL), *script;
	const char *model = json_string_value(json_object_get(body, "model"));
	enum MHD_Result ret;
	char msg[600];

	if (!model)
		model = json_string_value(json_object_get(body, "name"));
	script = fake_script_get();
	if (!model || !*model) {
		ret = fake_ollama_error(r, 400, "model is required", -1);
	} else if (fake_model_missing(script, model)) {
		snprintf(msg, sizeof(msg), "model '%s' not found", model);
		ret = fake_ollama_error(r, 404, msg, -1);
	} else {
		ret = fake_send_json(
		    r, 200,
		    json_pack("{s:s,s:s,s:s,s:s,s:o,s:{s:s,s:I,s:I},s:[s],s:s}", "license", "",
			      "modelfile", "# fake-backend\n", "parameters", "stop \"<|im_end|>\"",
			      "template", "{{ .Prompt }}", "details", ollama_details(),
			      "model_info", "general.architecture", "llama",
			      "general.parameter_count", (json_int_t)999890000,
			      "llama.context_length", (json_int_t)FAKE_N_CTX_TRAIN, "capabilities",
			      "completion", "modified_at", "2025-10-01T12:00:00.000000Z"),
		    -1);
	}
	json_decref(script);
	json_decref(body);
	return ret;
}
