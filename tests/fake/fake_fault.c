/*
 * fake_fault.c - fault injection: the modes, the queue of faults that tests post to
 * /_fake/fault (each taken by the next matching chat requests, "loading" by every route while
 * it lasts), and the faults that answer before any model work (error statuses, refusal,
 * redirect, a stall before the first byte). The faults that strike mid-stream are acted on
 * where the stream is produced, in fake_chat.c.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db/util.h"
#include "tests/fake/fake.h"
#include "tests/fake/fake_server.h"

/* ---- the modes and the queue ---- */

static const char *const fault_names[FM__COUNT] = {
    [FM_REFUSE] = "refuse",
    [FM_RESET] = "reset",
    [FM_STALL_FIRST_BYTE] = "stall_first_byte",
    [FM_STALL_MID_STREAM] = "stall_mid_stream",
    [FM_TRICKLE] = "trickle",
    [FM_HTTP_500] = "http_500",
    [FM_HTTP_503] = "http_503",
    [FM_HTTP_429] = "http_429",
    [FM_ERROR_IN_STREAM] = "error_in_stream",
    [FM_MALFORMED] = "malformed",
    [FM_CUT] = "cut",
    [FM_CONTEXT_OVERFLOW] = "context_overflow",
    [FM_LOADING] = "loading",
    [FM_BAD_OPTION] = "bad_option",
    [FM_OMIT_FIELDS] = "omit_fields",
    [FM_ENDLESS] = "endless",
    [FM_INVALID_UTF8] = "invalid_utf8",
    [FM_LONE_SURROGATE] = "lone_surrogate",
    [FM_REDIRECT] = "redirect",
};

const char *fake_fault_name(int mode)
{
	return fault_names[mode];
}

void fake_fault_release(struct fake_fault *f)
{
	free(f->model);
	free(f->path);
	free(f->message);
	free(f->option);
	free(f->fields);
	memset(f, 0, sizeof(*f));
	f->mode = FM_NONE;
}

static void fault_copy(struct fake_fault *dst, const struct fake_fault *src)
{
	*dst = *src;
	dst->model = xstrdup_or_null(src->model);
	dst->path = xstrdup_or_null(src->path);
	dst->message = xstrdup_or_null(src->message);
	dst->option = xstrdup_or_null(src->option);
	dst->fields = xstrdup_or_null(src->fields);
}

int fake_fault_midstream(int mode)
{
	return mode == FM_RESET || mode == FM_STALL_MID_STREAM || mode == FM_ERROR_IN_STREAM ||
	       mode == FM_MALFORMED || mode == FM_CUT || mode == FM_ENDLESS ||
	       mode == FM_INVALID_UTF8 || mode == FM_LONE_SURROGATE;
}

/* Must hold fake_st.lock. */
static void fault_remove_locked(size_t i)
{
	fake_fault_release(&fake_st.faults[i]);
	memmove(&fake_st.faults[i], &fake_st.faults[i + 1],
		(fake_st.nfaults - i - 1) * sizeof(fake_st.faults[0]));
	fake_st.nfaults--;
}

void fake_fault_prune_locked(void)
{
	size_t i = 0;
	int64_t now = util_mono_us();

	while (i < fake_st.nfaults) {
		struct fake_fault *f = &fake_st.faults[i];

		if (f->mode == FM_LOADING && f->ms > 0 &&
		    now - f->since_us >= (int64_t)f->ms * 1000)
			fault_remove_locked(i);
		else
			i++;
	}
}

int fake_fault_loading(const char *model, int chat)
{
	size_t i;
	int active = 0;

	pthread_mutex_lock(&fake_st.lock);
	fake_fault_prune_locked();
	for (i = 0; i < fake_st.nfaults; i++) {
		struct fake_fault *f = &fake_st.faults[i];

		if (f->mode != FM_LOADING)
			continue;
		if (chat && f->model && (!model || !fake_model_eq(f->model, model)))
			continue;
		active = 1;
		if (chat && f->count > 0 && --f->count == 0)
			fault_remove_locked(i);
		break;
	}
	pthread_mutex_unlock(&fake_st.lock);
	return active;
}

int fake_fault_take(const char *model, const char *path, struct fake_fault *out)
{
	size_t i;
	int found = 0;

	pthread_mutex_lock(&fake_st.lock);
	for (i = 0; i < fake_st.nfaults; i++) {
		struct fake_fault *f = &fake_st.faults[i];

		if (f->mode == FM_LOADING)
			continue;
		if (f->model && (!model || !fake_model_eq(f->model, model)))
			continue;
		if (f->path && strcmp(f->path, path))
			continue;
		fault_copy(out, f);
		found = 1;
		if (f->count > 0 && --f->count == 0)
			fault_remove_locked(i);
		break;
	}
	pthread_mutex_unlock(&fake_st.lock);
	return found;
}

/* Faults that answer before any model work: an error status, a refusal, a stall. */
enum MHD_Result fake_fault_early(struct fake_req *r, int *handled)
{
	const struct fake_fault *f = &r->fault;
	int ollama = r->proto == PROTO_OLLAMA;
	char msg[600];

	*handled = 1;
	switch (f->mode) {
	case FM_REFUSE:
		return MHD_NO;
	case FM_HTTP_500:
		if (ollama)
			return fake_ollama_error(
			    r, 500,
			    f->message ? f->message : "model runner has unexpectedly stopped",
			    f->retry_after);
		return fake_llama_error(r, 500, "server_error",
					f->message ? f->message : "Internal Server Error",
					f->retry_after);
	case FM_HTTP_503:
		if (ollama)
			return fake_ollama_error(r, 503,
						 f->message
						     ? f->message
						     : "server busy, please try again.  maximum "
						       "pending requests exceeded",
						 f->retry_after);
		return fake_llama_error(r, 503, "unavailable_error",
					f->message ? f->message : "Loading model", f->retry_after);
	case FM_REDIRECT:
		/* a proxy or a wrong url: the answer is the same on every try */
		return fake_send_text(r, 302, "text/html", "<a href=\"/elsewhere\">Found</a>");
	case FM_HTTP_429:
		if (ollama)
			return fake_ollama_error(
			    r, 429, f->message ? f->message : "too many requests", f->retry_after);
		return fake_llama_error(r, 429, "rate_limit_error",
					f->message ? f->message : "too many requests",
					f->retry_after);
	case FM_CONTEXT_OVERFLOW: {
		long n = r->prompt_tokens > fake_cfg.n_ctx ? r->prompt_tokens : fake_cfg.n_ctx + 1;

		if (ollama) {
			snprintf(msg, sizeof(msg),
				 "prompt too long; exceeded max context length by %ld tokens",
				 n - fake_cfg.n_ctx);
			return fake_ollama_error(r, 400, f->message ? f->message : msg, -1);
		}
		snprintf(msg, sizeof(msg),
			 "request (%ld tokens) exceeds the available context size (%ld tokens), "
			 "try increasing it",
			 n, fake_cfg.n_ctx);
		return fake_send_json(r, 400,
				      json_pack("{s:{s:i,s:s,s:s,s:I,s:I}}", "error", "code", 400,
						"message", f->message ? f->message : msg, "type",
						"exceed_context_size_error", "n_prompt_tokens",
						(json_int_t)n, "n_ctx", (json_int_t)fake_cfg.n_ctx),
				      -1);
	}
	case FM_BAD_OPTION:
		snprintf(msg, sizeof(msg), "option \"%s\" must be of type integer",
			 f->option ? f->option : "num_ctx");
		if (ollama)
			return fake_ollama_error(r, 400, f->message ? f->message : msg, -1);
		return fake_llama_error(r, 400, "invalid_request_error",
					f->message ? f->message : msg, -1);
	case FM_STALL_FIRST_BYTE:
		if (fake_nap(r, f->ms))
			return MHD_NO;
		break;
	default:
		break;
	}
	*handled = 0;
	return MHD_YES;
}

/* ---- POST /_fake/fault, GET /_fake/faults ---- */

static int fault_parse_mode(const char *s)
{
	int i;

	for (i = 0; i < FM__COUNT; i++)
		if (!strcmp(s, fault_names[i]))
			return i;
	return FM_NONE;
}

static json_t *fault_json(const struct fake_fault *f)
{
	json_t *j = json_pack("{s:I,s:s,s:I,s:I,s:I,s:I}", "id", (json_int_t)f->id, "mode",
			      fault_names[f->mode], "count", (json_int_t)f->count, "after_tokens",
			      (json_int_t)f->after_tokens, "ms", (json_int_t)f->ms, "retry_after",
			      (json_int_t)f->retry_after);

	json_object_set_new(j, "model",
			    f->model ? json_string(f->model) : json_null()); /* stolen */
	json_object_set_new(j, "path", f->path ? json_string(f->path) : json_null());
	json_object_set_new(j, "message", f->message ? json_string(f->message) : json_null());
	json_object_set_new(j, "option", f->option ? json_string(f->option) : json_null());
	json_object_set_new(j, "fields", f->fields ? json_string(f->fields) : json_null());
	return j;
}

/* Must hold fake_st.lock. */
json_t *fake_fault_list_locked(void)
{
	json_t *a = json_array();
	size_t i;

	fake_fault_prune_locked();
	for (i = 0; i < fake_st.nfaults; i++)
		json_array_append_new(a, fault_json(&fake_st.faults[i])); /* stolen */
	return a;
}

/* Must hold fake_st.lock. */
void fake_fault_clear_locked(void)
{
	size_t i;

	for (i = 0; i < fake_st.nfaults; i++)
		fake_fault_release(&fake_st.faults[i]);
	fake_st.nfaults = 0;
}

static void get_int(json_t *o, const char *key, long *out, char *err, size_t errlen)
{
	json_t *v = json_object_get(o, key); /* borrowed */

	if (!v || *err)
		return;
	if (!json_is_integer(v)) {
		snprintf(err, errlen, "'%s' must be an integer", key);
		return;
	}
	*out = (long)json_integer_value(v);
}

static void get_str(json_t *o, const char *key, char **out, char *err, size_t errlen)
{
	json_t *v = json_object_get(o, key); /* borrowed */

	if (!v || json_is_null(v) || *err)
		return;
	if (!json_is_string(v)) {
		snprintf(err, errlen, "'%s' must be a string", key);
		return;
	}
	*out = xstrdup(json_string_value(v));
}

enum MHD_Result fake_fault_post(struct fake_req *r)
{
	static const char *const keys[] = {"mode",	   "count", "model",	   "path",
					   "after_tokens", "ms",    "retry_after", "message",
					   "option",	   "fields"};
	json_t *body = json_loadb(r->body.buf, r->body.len, JSON_REJECT_DUPLICATES, NULL), *v;
	struct fake_fault f = {.mode = FM_NONE, .count = 1, .after_tokens = 3, .retry_after = -1};
	const char *mode = json_string_value(json_object_get(body, "mode")), *key;
	char err[256] = "";
	size_t i;

	if (!json_is_object(body) || !mode) {
		json_decref(body);
		return fake_ctl_error(r, 400, "body must be a JSON object with a string 'mode'");
	}
	json_object_foreach(body, key, v)
	{
		int known = 0;

		for (i = 0; i < ARRAY_SIZE(keys); i++)
			known |= !strcmp(key, keys[i]);
		if (!known) {
			snprintf(err, sizeof(err), "unknown key '%s'", key);
			break;
		}
	}
	if (!*err && !strcmp(mode, "clear")) {
		json_decref(body);
		pthread_mutex_lock(&fake_st.lock);
		i = fake_st.nfaults;
		fake_fault_clear_locked();
		pthread_mutex_unlock(&fake_st.lock);
		return fake_send_json(r, 200, json_pack("{s:I}", "cleared", (json_int_t)i), -1);
	}
	f.mode = fault_parse_mode(mode);
	if (!*err && f.mode == FM_NONE)
		snprintf(err, sizeof(err), "unknown mode '%s'", mode);
	if (!*err) {
		switch (f.mode) {
		case FM_STALL_FIRST_BYTE:
		case FM_STALL_MID_STREAM:
			f.ms = 5000;
			break;
		case FM_TRICKLE:
			f.ms = 200;
			break;
		default:
			break;
		}
		/* a loading fault with a duration lasts that long unless a count is given */
		if (f.mode == FM_LOADING && json_object_get(body, "ms") &&
		    !json_object_get(body, "count"))
			f.count = -1;
	}
	/* each getter leaves err alone unless it fails, and does nothing once err is set */
	get_int(body, "count", &f.count, err, sizeof(err));
	get_int(body, "after_tokens", &f.after_tokens, err, sizeof(err));
	get_int(body, "ms", &f.ms, err, sizeof(err));
	get_int(body, "retry_after", &f.retry_after, err, sizeof(err));
	get_str(body, "model", &f.model, err, sizeof(err));
	get_str(body, "path", &f.path, err, sizeof(err));
	get_str(body, "message", &f.message, err, sizeof(err));
	get_str(body, "option", &f.option, err, sizeof(err));
	get_str(body, "fields", &f.fields, err, sizeof(err));
	if (!*err && f.mode == FM_OMIT_FIELDS)
		fake_ollama_check_fields(f.fields, err, sizeof(err));
	if (!*err && (f.count == 0 || f.count < -1))
		snprintf(err, sizeof(err), "'count' must be positive or -1");
	if (!*err && (f.after_tokens < 0 || f.ms < 0))
		snprintf(err, sizeof(err), "'after_tokens' and 'ms' must not be negative");
	json_decref(body);
	if (*err) {
		fake_fault_release(&f);
		return fake_ctl_error(r, 400, err);
	}
	f.since_us = util_mono_us();
	pthread_mutex_lock(&fake_st.lock);
	f.id = ++fake_st.next_fault_id;
	if (fake_st.nfaults == fake_st.afaults) {
		fake_st.afaults = fake_st.afaults ? 2 * fake_st.afaults : 8;
		fake_st.faults =
		    xrealloc(fake_st.faults, fake_st.afaults * sizeof(*fake_st.faults));
	}
	fake_st.faults[fake_st.nfaults++] = f;
	v = json_pack("{s:o,s:o}", "queued", fault_json(&f), "faults", fake_fault_list_locked());
	pthread_mutex_unlock(&fake_st.lock);
	return fake_send_json(r, 200, v, -1);
}
