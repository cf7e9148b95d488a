/*
 * fake_llama.c - the fake's llama.cpp llama-server: POST /v1/chat/completions (SSE streams,
 * or the whole chat.completion), its errors, usage and timings, the slot a request runs in
 * (fake_slots.c keeps the slots and their prompt caches; this file takes and releases them and
 * keeps /metrics' counters), and GET /v1/models, /props, /slots and /metrics.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "db/util.h"
#include "tests/fake/fake.h"
#include "tests/fake/fake_server.h"

#define LLAMA_FINGERPRINT "b1-80fb11a"

/* What a prompt token costs: --prompt-ms-per-token, else a nominal 50 us. */
static long prompt_us_per_token(void)
{
	return fake_cfg.prompt_ms_per_token > 0 ? fake_cfg.prompt_ms_per_token * 1000
						: FAKE_PROMPT_US_PER_TOKEN;
}

/* ---- slots (fake_slots.c) ---- */

static int req_gone(void *ud)
{
	return fake_client_gone(ud, 0);
}

/*
 * Takes a slot for r (want: the request's id_slot, -1 = any) and logs it; then the
 * uncached part of the prompt costs --prompt-ms-per-token a token. Returns 0, or -1 when the
 * client hung up or the fake is stopping.
 */
static int slot_acquire(struct fake_req *r, long want)
{
	struct fake_logent *e;

	if (fake_slots_acquire(r->prompt.buf, r->prompt.len, r->prompt_tokens, want, req_gone, r,
			       &r->slot, &r->cached_tokens)) {
		if (!atomic_load(&fake_stopping))
			fake_mark_disconnected(r);
		return -1;
	}
	pthread_mutex_lock(&fake_st.lock);
	if ((e = fake_log_find(r->log_id))) {
		e->slot = r->slot;
		e->id_slot = want;
		e->prompt_tokens = r->prompt_tokens;
		e->cached_tokens = r->cached_tokens;
	}
	pthread_mutex_unlock(&fake_st.lock);
	if (fake_cfg.prompt_ms_per_token > 0 &&
	    fake_nap(r, fake_cfg.prompt_ms_per_token * (r->prompt_tokens - r->cached_tokens)))
		return -1;
	return 0;
}

/* Must hold fake_st.lock. The slot now caches the prompt and what was generated of the reply. */
void fake_llama_release_locked(struct fake_req *r)
{
	long predicted = (long)r->next;
	int64_t t1 = r->gen_t1_us ? r->gen_t1_us : util_mono_us();

	fake_slots_release(r->slot, r->prompt.buf, r->prompt.len, r->reply,
			   r->reply ? fake_req_emitted(r) : 0);
	fake_st.m_prompt_tokens += r->prompt_tokens - r->cached_tokens;
	fake_st.m_cached_tokens += r->cached_tokens;
	fake_st.m_prompt_s +=
	    (double)(r->prompt_tokens - r->cached_tokens) * prompt_us_per_token() / 1e6;
	fake_st.m_predicted += predicted;
	if (r->gen_t0_us)
		fake_st.m_predicted_s += (double)(t1 - r->gen_t0_us) / 1e6;
	if (r->prompt_tokens + predicted > fake_st.m_tokens_max)
		fake_st.m_tokens_max = r->prompt_tokens + predicted;
	r->slot = -1;
}

/* ---- errors and the pieces of a reply ---- */

json_t *fake_llama_error_json(int status, const char *type, const char *msg)
{
	return json_pack("{s:{s:i,s:s,s:s}}", "error", "code", status, "message", msg, "type",
			 type);
}

enum MHD_Result fake_llama_error(struct fake_req *r, int status, const char *type, const char *msg,
				 long retry_after)
{
	return fake_send_json(r, status, fake_llama_error_json(status, type, msg), retry_after);
}

static json_t *llama_timings(struct fake_req *r)
{
	long prompt_n = r->prompt_tokens - r->cached_tokens, pred_n = (long)r->next;
	double prompt_ms = (double)prompt_n * (double)prompt_us_per_token() / 1000.0;
	double pred_ms = (double)fake_chat_gen_us(r) / 1000.0;

	return json_pack(
	    "{s:I,s:I,s:f,s:f,s:f,s:I,s:f,s:f,s:f}", "cache_n", (json_int_t)r->cached_tokens,
	    "prompt_n", (json_int_t)prompt_n, "prompt_ms", prompt_ms, "prompt_per_token_ms",
	    prompt_n ? prompt_ms / prompt_n : 0.0, "prompt_per_second",
	    prompt_ms > 0 ? 1e3 * prompt_n / prompt_ms : 0.0, "predicted_n", (json_int_t)pred_n,
	    "predicted_ms", pred_ms, "predicted_per_token_ms", pred_n ? pred_ms / pred_n : 0.0,
	    "predicted_per_second", pred_ms > 0 ? 1e3 * pred_n / pred_ms : 0.0);
}

static json_t *llama_usage(struct fake_req *r)
{
	return json_pack("{s:I,s:I,s:I,s:{s:I}}", "completion_tokens", (json_int_t)r->next,
			 "prompt_tokens", (json_int_t)r->prompt_tokens, "total_tokens",
			 (json_int_t)(r->prompt_tokens + (long)r->next), "prompt_tokens_details",
			 "cached_tokens", (json_int_t)r->cached_tokens);
}

json_t *fake_llama_chunk(struct fake_req *r, json_t *choices)
{
	return json_pack("{s:o,s:I,s:s,s:s,s:s,s:s}", "choices", choices, "created",
			 (json_int_t)r->created, "id", r->id, "model", r->model,
			 "system_fingerprint", LLAMA_FINGERPRINT, "object",
			 "chat.completion.chunk");
}

void fake_llama_finish(struct fake_req *r)
{
	json_t *j;

	r->gen_t1_us = util_mono_us();
	j = fake_llama_chunk(r, json_pack("[{s:s,s:i,s:{}}]", "finish_reason", r->finish_reason,
					  "index", 0, "delta"));
	if (!r->include_usage)
		json_object_set_new(j, "timings", llama_timings(r)); /* stolen */
	fake_chat_emit(r, j);
	if (r->include_usage) {
		j = fake_llama_chunk(r, json_array());
		json_object_set_new(j, "usage", llama_usage(r));
		json_object_set_new(j, "timings", llama_timings(r));
		fake_chat_emit(r, j);
	}
	strbuf_addstr(&r->out, "data: [DONE]\n\n");
}

/* The chat.completion of a stream:false request, as llama-server would send it. */
json_t *fake_llama_whole(struct fake_req *r)
{
	json_t *j;

	j = json_pack("{s:[{s:s,s:i,s:{s:s,s:s%}}],s:I,s:s,s:s,s:s}", "choices", "finish_reason",
		      r->finish_reason, "index", 0, "message", "role", "assistant", "content",
		      r->reply, fake_req_emitted(r), "created", (json_int_t)r->created, "model",
		      r->model, "system_fingerprint", LLAMA_FINGERPRINT, "object",
		      "chat.completion");
	json_object_set_new(j, "usage", llama_usage(r)); /* stolen */
	json_object_set_new(j, "id", json_string(r->id));
	json_object_set_new(j, "timings", llama_timings(r));
	return j;
}

/* ---- llama-server /v1/chat/completions ---- */

enum MHD_Result fake_llama_chat(struct fake_req *r, const json_t *body, const json_t *script)
{
	json_t *msgs = json_object_get(body, "messages");
	json_t *so = json_object_get(body, "stream_options");
	long max_tokens = fake_chat_int(body, "max_tokens", -1), id_slot;
	char msg[600];

	if (!json_is_array(msgs))
		return fake_llama_error(r, 400, "invalid_request_error", "'messages' is required",
					-1);
	if (fake_model_missing(script, r->model)) {
		snprintf(msg, sizeof(msg), "model '%s' not found", r->model);
		return fake_llama_error(r, 404, "not_found_error", msg, -1);
	}
	if (r->prompt_tokens >= fake_cfg.n_ctx) {
		snprintf(msg, sizeof(msg),
			 "request (%ld tokens) exceeds the available context size (%ld tokens), "
			 "try increasing it",
			 r->prompt_tokens, fake_cfg.n_ctx);
		return fake_send_json(r, 400,
				      json_pack("{s:{s:i,s:s,s:s,s:I,s:I}}", "error", "code", 400,
						"message", msg, "type", "exceed_context_size_error",
						"n_prompt_tokens", (json_int_t)r->prompt_tokens,
						"n_ctx", (json_int_t)fake_cfg.n_ctx),
				      -1);
	}
	r->include_usage = json_is_true(json_object_get(so, "include_usage"));
	max_tokens = fake_chat_int(body, "max_completion_tokens", max_tokens);
	max_tokens = fake_chat_int(body, "n_predict", max_tokens);
	fake_chat_set_reply(r, script, body, msgs, max_tokens);
	if ((long)r->npieces > fake_cfg.n_ctx - r->prompt_tokens) {
		/* generation that fills the slot's context stops there */
		r->npieces = (size_t)(fake_cfg.n_ctx - r->prompt_tokens);
		r->finish_reason = "length";
	}
	util_random_hex(r->id + 9, 16);
	memcpy(r->id, "chatcmpl-", 9);
	r->created = (int64_t)time(NULL);
	id_slot = fake_chat_int(body, "id_slot", -1);
	if (slot_acquire(r, id_slot < 0 ? -1 : id_slot))
		return MHD_NO;
	return fake_chat_reply(r);
}

/* ---- GET /v1/models, /props, /slots, /metrics ---- */

enum MHD_Result fake_llama_models(struct fake_req *r)
{
	json_t *script = fake_script_get(), *names = fake_model_names(script, 0),
	       *models = json_array();
	json_t *data = json_array(), *v;
	size_t i;

	json_array_insert_new(names, 0, json_string(FAKE_LLAMA_MODEL)); /* stolen */
	json_array_foreach(names, i, v)
	{
		json_array_append_new(
		    models,
		    json_pack("{s:O,s:O,s:s,s:s,s:s,s:s,s:s,s:[s],s:[s],s:s,s:{s:s,s:s,s:s,s:[s],"
			      "s:s,s:s}}",
			      "name", v, "model", v, "modified_at", "", "size", "", "digest", "",
			      "type", "model", "description", "", "tags", "", "capabilities",
			      "completion", "parameters", "", "details", "parent_model", "",
			      "format", "gguf", "family", "", "families", "", "parameter_size", "",
			      "quantization_level", ""));
		json_array_append_new(
		    data,
		    json_pack("{s:O,s:[O],s:[],s:s,s:I,s:s,s:{s:b,s:i,s:I,s:I,s:i,s:I,s:I,s:s}}",
			      "id", v, "aliases", v, "tags", "object", "model", "created",
			      (json_int_t)time(NULL), "owned_by", "llamacpp", "meta", "vocab_type",
			      1, "n_vocab", 512, "n_ctx", (json_int_t)fake_cfg.n_ctx, "n_ctx_train",
			      (json_int_t)FAKE_N_CTX_TRAIN, "n_embd", 64, "n_params",
			      (json_int_t)292800, "size", (json_int_t)1171200, "ftype",
			      "(guessed) all F32"));
	}
	json_decref(names);
	json_decref(script);
	return fake_send_json(
	    r, 200, json_pack("{s:o,s:s,s:o}", "models", models, "object", "list", "data", data),
	    -1);
}

/* The sampling parameters llama-server reports (fixtures/llama-server/props.json). */
static const char llama_params[] =
    "{\"seed\":4294967295,\"temperature\":0.800000011920929,\"dynatemp_range\":0.0,"
    "\"dynatemp_exponent\":1.0,\"top_k\":40,\"top_p\":0.949999988079071,"
    "\"min_p\":0.05000000074505806,\"top_n_sigma\":-1.0,\"xtc_probability\":0.0,"
    "\"xtc_threshold\":0.10000000149011612,\"typical_p\":1.0,\"repeat_last_n\":64,"
    "\"repeat_penalty\":1.0,\"presence_penalty\":0.0,\"frequency_penalty\":0.0,"
    "\"dry_multiplier\":0.0,\"dry_base\":1.75,\"dry_allowed_length\":2,"
    "\"dry_penalty_last_n\":64,\"mirostat\":0,\"mirostat_tau\":5.0,"
    "\"mirostat_eta\":0.10000000149011612,\"max_tokens\":-1,\"n_predict\":-1,\"n_keep\":0,"
    "\"n_discard\":0,\"ignore_eos\":false,\"stream\":false,\"n_probs\":0,\"min_keep\":0,"
    "\"chat_format\":\"Content-only\",\"reasoning_format\":\"none\","
    "\"reasoning_in_content\":false,\"generation_prompt\":\"\",\"samplers\":[\"penalties\","
    "\"dry\",\"top_n_sigma\",\"top_k\",\"typ_p\",\"top_p\",\"min_p\",\"xtc\",\"temperature\"],"
    "\"speculative.types\":\"none\",\"timings_per_token\":false,\"post_sampling_probs\":false,"
    "\"backend_sampling\":false,\"lora\":[]}";

static const char chatml_template[] =
    "{%- for message in messages -%}\n  {{- '<|im_start|>' + message.role + '\n' + "
    "message.content + '<|im_end|>\n' -}}\n{%- endfor -%}\n{%- if add_generation_prompt -%}\n "
    " {{- '<|im_start|>assistant\n' -}}\n{%- endif -%}";

enum MHD_Result fake_llama_props(struct fake_req *r)
{
	json_t *params = json_loads(llama_params, 0, NULL);

	return fake_send_json(
	    r, 200,
	    json_pack("{s:{s:o,s:I},s:i,s:s,s:s,s:s,s:{s:b,s:b,s:b},s:b,s:b,s:b,s:s,s:s,s:s,s:s,"
		      "s:b}",
		      "default_generation_settings", "params", params, "n_ctx",
		      (json_int_t)fake_cfg.n_ctx, "total_slots", fake_cfg.slots, "model_alias",
		      FAKE_LLAMA_MODEL, "model_ftype", "(guessed) all F32", "model_path",
		      FAKE_LLAMA_MODEL, "modalities", "vision", 0, "video", 0, "audio", 0,
		      "endpoint_slots", 1, "endpoint_props", 0, "endpoint_metrics", 1,
		      "chat_template", chatml_template, "bos_token", "<s>", "eos_token", "</s>",
		      "build_info", LLAMA_FINGERPRINT, "is_sleeping", 0),
	    -1);
}

enum MHD_Result fake_llama_slots(struct fake_req *r)
{
	const char *fail =
	    MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, "fail_on_no_slot");
	json_t *list = fake_slots_json(0, fake_cfg.n_ctx, llama_params);
	int idle = fake_cfg.slots - fake_slots_busy();

	if (fail && strcmp(fail, "0") && !idle) {
		json_decref(list);
		return fake_llama_error(r, 503, "unavailable_error", "no slot available", -1);
	}
	return fake_send_json(r, 200, list, -1);
}

enum MHD_Result fake_llama_metrics(struct fake_req *r)
{
	struct strbuf sb;
	char *text;
	size_t len;
	int busy = fake_slots_busy();
	long deferred = fake_slots_deferred();

	strbuf_init(&sb, 2048);
	pthread_mutex_lock(&fake_st.lock);
#define COUNTER(name, help, fmt, v)                                                                \
	strbuf_addf(&sb,                                                                           \
		    "# HELP llamacpp:" name " " help "\n# TYPE llamacpp:" name                     \
		    " counter\nllamacpp:" name " " fmt "\n",                                       \
		    v)
#define GAUGE(name, help, fmt, v)                                                                  \
	strbuf_addf(&sb,                                                                           \
		    "# HELP llamacpp:" name " " help "\n# TYPE llamacpp:" name                     \
		    " gauge\nllamacpp:" name " " fmt "\n",                                         \
		    v)
	COUNTER("prompt_tokens_total", "Number of prompt tokens processed, excluding cached tokens",
		"%ld", fake_st.m_prompt_tokens);
	COUNTER("prompt_tokens_cached_total", "Number of prompt tokens reused from the cache",
		"%ld", fake_st.m_cached_tokens);
	COUNTER("prompt_seconds_total", "Total time spent processing prompts", "%g",
		fake_st.m_prompt_s);
	COUNTER("tokens_predicted_total", "Number of generation tokens processed", "%ld",
		fake_st.m_predicted);
	COUNTER("tokens_predicted_seconds_total", "Total time spent generating tokens", "%g",
		fake_st.m_predicted_s);
	COUNTER("n_decode_total", "Total number of llama_decode() calls", "%ld",
		fake_st.m_predicted);
	COUNTER("n_tokens_max", "Largest observed sequence length (prompt + generation)", "%ld",
		fake_st.m_tokens_max);
	GAUGE("prompt_tokens_seconds", "Average prompt throughput in tokens/s", "%g",
	      fake_st.m_prompt_s > 0 ? fake_st.m_prompt_tokens / fake_st.m_prompt_s : 0.0);
	GAUGE("predicted_tokens_seconds", "Average generation throughput in tokens/s", "%g",
	      fake_st.m_predicted_s > 0 ? fake_st.m_predicted / fake_st.m_predicted_s : 0.0);
	GAUGE("requests_processing", "Number of requests processing", "%d", busy);
	GAUGE("requests_deferred", "Number of requests deferred", "%ld", deferred);
#undef COUNTER
#undef GAUGE
	pthread_mutex_unlock(&fake_st.lock);
	len = sb.len;
	text = strbuf_detach(&sb, NULL);
	strbuf_release(&sb); /* detach left a fresh buffer behind */
	return fake_send_body(r, 200, "text/plain; version=0.0.4", text, len, -1);
}
