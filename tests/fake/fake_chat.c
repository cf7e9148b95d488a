/*
 * fake_chat.c - one chat request, either protocol: it is parsed, counted and logged, takes
 * its fault, is checked by fake_ollama.c or fake_llama.c, and is then answered whole or as a
 * stream. A stream is a content-reader callback that produces the next piece on the
 * connection's own thread, paced by the token delay, --reply-ms or a trickle fault, and acts
 * on the mid-stream faults (reset, cut, stall, error, malformed, endless, bad UTF-8) where they
 * strike; the protocols only shape the chunks.
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "db/util.h"
#include "tests/fake/fake.h"
#include "tests/fake/fake_server.h"

/* ---- the books: arrival, end, pacing ---- */

/* A chat request has arrived: count it and log it. body is borrowed (may be NULL). */
static void chat_begin(struct fake_req *r, json_t *body, const char *model)
{
	struct fake_logent *e;
	json_t *n;

	pthread_mutex_lock(&fake_st.lock);
	fake_st.chat_requests++;
	if (++fake_st.in_flight > fake_st.max_in_flight)
		fake_st.max_in_flight = fake_st.in_flight;
	r->counted = 1;
	if (model) {
		n = json_object_get(fake_st.by_model, model);
		json_object_set_new(fake_st.by_model, model,
				    json_integer(json_integer_value(n) + 1)); /* stolen */
	}
	if (fake_st.nlog == fake_st.alog) {
		fake_st.alog = fake_st.alog ? 2 * fake_st.alog : 64;
		fake_st.log = xrealloc(fake_st.log, fake_st.alog * sizeof(*fake_st.log));
	}
	e = &fake_st.log[fake_st.nlog++];
	memset(e, 0, sizeof(*e));
	e->id = r->log_id = ++fake_st.next_log_id;
	e->path = xstrdup(r->path);
	if (body)
		e->body = json_incref(body);
	else if (r->body.len)
		e->body = json_stringn(r->body.buf, r->body.len); /* NULL when not UTF-8 */
	e->model = xstrdup_or_null(model);
	e->received_ms = util_now_us() / 1000;
	e->slot = -1;
	e->id_slot = -1;
	e->prompt_tokens = -1;
	e->cached_tokens = -1;
	pthread_mutex_unlock(&fake_st.lock);
}

/* --reply-ms: whether it paces r (a trickle fault paces it instead). */
static int reply_paced(const struct fake_req *r)
{
	return fake_cfg.reply_ms > 0 && r->fault.mode != FM_TRICKLE;
}

/* --reply-ms: when piece k (0-based) is due; the last piece is due reply_ms after the reply
 * started, the others are spread evenly before it. */
static int64_t reply_due_us(const struct fake_req *r, size_t k)
{
	size_t n = r->npieces ? r->npieces : 1;

	if (k >= n)
		k = n - 1;
	return r->gen_t0_us + fake_cfg.reply_ms * 1000 * (int64_t)(k + 1) / (int64_t)n;
}

void fake_chat_end(struct fake_req *r, enum MHD_RequestTerminationCode toe)
{
	struct fake_logent *e;

	pthread_mutex_lock(&fake_st.lock);
	if (r->counted)
		fake_st.in_flight--;
	r->counted = 0;
	if (r->slot >= 0)
		fake_llama_release_locked(r);
	e = fake_log_find(r->log_id);
	if (e) {
		e->finished_ms = util_now_us() / 1000;
		if (toe == MHD_REQUEST_TERMINATED_COMPLETED_OK && !r->disconnected)
			e->outcome = "completed";
		else if (r->disconnected || toe == MHD_REQUEST_TERMINATED_CLIENT_ABORT ||
			 toe == MHD_REQUEST_TERMINATED_READ_ERROR)
			e->outcome = "client_disconnected";
		else if (toe == MHD_REQUEST_TERMINATED_DAEMON_SHUTDOWN)
			e->outcome = "shutdown";
		else if (toe == MHD_REQUEST_TERMINATED_TIMEOUT_REACHED)
			e->outcome = "timeout";
		else
			e->outcome = "aborted";
	}
	pthread_mutex_unlock(&fake_st.lock);
}

/* ---- streamed and whole replies ---- */

static void piece(const struct fake_req *r, size_t i, const char **p, size_t *len)
{
	size_t start = i ? r->ends[i - 1] : 0;

	*p = r->reply + start;
	*len = r->ends[i] - start;
}

void fake_chat_emit(struct fake_req *r, json_t *j)
{
	char *s = json_dumps(j, FAKE_JSON_FLAGS);

	json_decref(j);
	if (r->proto == PROTO_LLAMA)
		strbuf_addstr(&r->out, "data: ");
	strbuf_addstr(&r->out, s ? s : "{}");
	strbuf_addstr(&r->out, r->proto == PROTO_LLAMA ? "\n\n" : "\n");
	free(s);
}

int64_t fake_chat_gen_us(struct fake_req *r)
{
	int64_t t1 = r->gen_t1_us ? r->gen_t1_us : util_mono_us();
	int64_t floor_us = (int64_t)r->next * FAKE_PREDICT_US_PER_TOKEN;
	int64_t us = t1 - r->gen_t0_us;

	return us > floor_us ? us : floor_us;
}

static const char *stream_error_msg(struct fake_req *r)
{
	if (r->fault.message)
		return r->fault.message;
	if (r->proto == PROTO_OLLAMA)
		return "model runner has unexpectedly stopped, this may be due to resource "
		       "limitations or an internal error, check ollama server logs for details";
	return "failed to decode the batch, n_batch = 512, ret = -1";
}

/* The size of each chunk an endless stream sends. */
#define ENDLESS_PIECE (16 * 1024)

/*
 * One content chunk whose text is not clean: the marker placed through jansson
 * (which only writes valid JSON) is swapped for raw bytes afterwards.
 */
static void emit_unclean(struct fake_req *r, const char *raw)
{
	static const char mark[] = "@@unclean@@";
	size_t at = r->out.len;
	char *p, *tail;

	if (r->proto == PROTO_OLLAMA)
		fake_chat_emit(r, fake_ollama_object(r, mark, sizeof(mark) - 1, 0));
	else
		fake_chat_emit(
		    r, fake_llama_chunk(r, json_pack("[{s:n,s:i,s:{s:s}}]", "finish_reason",
						     "index", 0, "delta", "content", mark)));
	p = strstr(r->out.buf + at, mark);
	tail = xstrdup(p + sizeof(mark) - 1);
	r->out.len = (size_t)(p - r->out.buf);
	strbuf_addstr(&r->out, raw);
	strbuf_addstr(&r->out, tail);
	free(tail);
}

/* One chunk of an endless stream: ENDLESS_PIECE bytes of text, never an end marker. */
static void emit_flood(struct fake_req *r)
{
	static char text[ENDLESS_PIECE + 1];

	if (!text[0]) {
		memset(text, 'x', ENDLESS_PIECE);
		for (size_t i = 63; i < ENDLESS_PIECE; i += 64)
			text[i] = ' ';
	}
	if (r->proto == PROTO_OLLAMA)
		fake_chat_emit(r, fake_ollama_object(r, text, ENDLESS_PIECE, 0));
	else
		fake_chat_emit(
		    r, fake_llama_chunk(r, json_pack("[{s:n,s:i,s:{s:s}}]", "finish_reason",
						     "index", 0, "delta", "content", text)));
}

/* Produces the next bytes of a stream into r->out; may sleep first. */
static enum fake_step stream_step(struct fake_req *r)
{
	const char *p = "";
	size_t len = 0;
	long gap;

	if (r->phase == PH_END)
		return STEP_END;
	if (r->fault_fired && r->fault.mode == FM_ENDLESS) {
		emit_flood(r);
		return STEP_MORE;
	}
	if (r->phase == PH_FINISH) {
		fake_llama_finish(r);
		r->phase = PH_END;
		return STEP_MORE;
	}
	if (!r->fault_fired && fake_fault_midstream(r->fault.mode) && r->next == r->fault_at) {
		r->fault_fired = 1;
		switch (r->fault.mode) {
		case FM_RESET:
			return STEP_ABORT;
		case FM_CUT:
			return STEP_END;
		case FM_STALL_MID_STREAM:
			if (fake_nap(r, r->fault.ms))
				return STEP_ABORT;
			break;
		case FM_ERROR_IN_STREAM:
			if (r->proto == PROTO_OLLAMA)
				fake_chat_emit(r, json_pack("{s:s}", "error", stream_error_msg(r)));
			else
				fake_chat_emit(r, fake_llama_error_json(500, "server_error",
									stream_error_msg(r)));
			r->phase = PH_END;
			return STEP_MORE;
		case FM_ENDLESS:
			emit_flood(r);
			return STEP_MORE;
		case FM_INVALID_UTF8:
			/* a lone continuation byte and a cut-off two-byte sequence */
			emit_unclean(r, "bad \x80 and \xc3 bytes");
			return STEP_MORE;
		case FM_LONE_SURROGATE:
			emit_unclean(r, "a lone \\ud800 surrogate");
			return STEP_MORE;
		case FM_MALFORMED:
			strbuf_addstr(&r->out, r->proto == PROTO_LLAMA
						   ? "data: this is not json {\n\n"
						   : "this is not json {\n");
			return STEP_MORE;
		}
	}
	if (reply_paced(r) && fake_nap_until(r, reply_due_us(r, r->next)))
		return STEP_ABORT;
	if (r->proto == PROTO_LLAMA && r->next == r->npieces) {
		if (!r->role_sent) {
			r->role_sent = 1;
			fake_chat_emit(
			    r, fake_llama_chunk(r, json_pack("[{s:n,s:i,s:{s:s,s:n}}]",
							     "finish_reason", "index", 0, "delta",
							     "role", "assistant", "content")));
		}
		r->phase = PH_FINISH;
		return STEP_MORE;
	}
	gap = r->fault.mode == FM_TRICKLE ? r->fault.ms : r->delay_ms;
	if (!reply_paced(r) && gap > 0 && fake_nap(r, gap))
		return STEP_ABORT;
	if (r->npieces)
		piece(r, r->next, &p, &len);
	if (r->proto == PROTO_OLLAMA) {
		/* the done:true object carries the last piece */
		int last = r->npieces == 0 || r->next == r->npieces - 1;

		r->next = r->npieces ? r->next + 1 : 0;
		if (last)
			r->gen_t1_us = util_mono_us();
		/* a final object without "message" (docs/api.md): the last piece goes first */
		if (last && fake_ollama_omitted(r, "message"))
			fake_chat_emit(r, fake_ollama_object(r, p, len, 0));
		fake_chat_emit(r, fake_ollama_object(r, p, len, last));
		if (last)
			r->phase = PH_END;
		return STEP_MORE;
	}
	if (!r->role_sent) {
		/* llama-server sends the role with the first token */
		r->role_sent = 1;
		fake_chat_emit(r,
			       fake_llama_chunk(r, json_pack("[{s:n,s:i,s:{s:s,s:n}}]",
							     "finish_reason", "index", 0, "delta",
							     "role", "assistant", "content")));
	}
	r->next++;
	fake_chat_emit(r, fake_llama_chunk(r, json_pack("[{s:n,s:i,s:{s:s%}}]", "finish_reason",
							"index", 0, "delta", "content", p, len)));
	return STEP_MORE;
}

static ssize_t stream_read(void *cls, uint64_t pos, char *buf, size_t max)
{
	struct fake_req *r = cls;
	size_t n;

	(void)pos;
	while (r->out_off == r->out.len) {
		enum fake_step st;

		strbuf_reset(&r->out);
		r->out_off = 0;
		st = stream_step(r);
		if (st == STEP_END)
			return MHD_CONTENT_READER_END_OF_STREAM;
		if (st == STEP_ABORT)
			return MHD_CONTENT_READER_END_WITH_ERROR;
	}
	n = r->out.len - r->out_off;
	if (n > max)
		n = max;
	memcpy(buf, r->out.buf + r->out_off, n);
	r->out_off += n;
	return (ssize_t)n;
}

static void stream_free(void *cls)
{
	fake_req_unref(cls);
}

/* The whole reply of a stream:false request, as the backend would send it. */
static json_t *whole_reply(struct fake_req *r)
{
	r->gen_t1_us = util_mono_us();
	if (r->proto == PROTO_OLLAMA)
		return fake_ollama_object(r, r->reply, fake_req_emitted(r), 1);
	return fake_llama_whole(r);
}

static enum MHD_Result reply_whole(struct fake_req *r)
{
	long gap = r->fault.mode == FM_TRICKLE ? r->fault.ms : r->delay_ms;
	long stall = r->fault.mode == FM_STALL_MID_STREAM ? r->fault.ms : 0;
	json_t *j;
	char *s;
	size_t len;

	/* no byte goes out before the whole answer is ready, as with the real servers */
	if (r->fault.mode == FM_RESET) {
		fake_nap(r, gap * (long)r->fault_at);
		return MHD_NO;
	}
	if (reply_paced(r) ? fake_nap_until(r, reply_due_us(r, r->npieces) + stall * 1000)
			   : fake_nap(r, gap * (long)r->npieces + stall))
		return MHD_NO;
	r->next = r->npieces;
	if (r->fault.mode == FM_ERROR_IN_STREAM) {
		if (r->proto == PROTO_OLLAMA)
			return fake_ollama_error(r, 500, stream_error_msg(r), -1);
		return fake_llama_error(r, 500, "server_error", stream_error_msg(r), -1);
	}
	if (r->fault.mode == FM_MALFORMED)
		return fake_send_text(r, 200, "application/json; charset=utf-8",
				      "this is not json {");
	j = whole_reply(r);
	s = json_dumps(j, FAKE_JSON_FLAGS);
	json_decref(j);
	if (!s)
		return MHD_NO;
	len = strlen(s);
	if (r->fault.mode == FM_CUT)
		len /= 2;
	return fake_send_body(r, 200, "application/json; charset=utf-8", s, len, -1);
}

enum MHD_Result fake_chat_reply(struct fake_req *r)
{
	struct MHD_Response *resp;
	enum MHD_Result ret;
	size_t limit = r->proto == PROTO_OLLAMA && r->npieces ? r->npieces - 1 : r->npieces;

	r->fault_at = (size_t)r->fault.after_tokens < limit ? (size_t)r->fault.after_tokens : limit;
	r->gen_t0_us = util_mono_us();
	if (!r->stream)
		return reply_whole(r);
	atomic_fetch_add(&r->refs, 1);
	resp = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 16 * 1024, stream_read, r,
						 stream_free);
	if (!resp) {
		fake_req_unref(r);
		return MHD_NO;
	}
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE,
				r->proto == PROTO_OLLAMA ? "application/x-ndjson"
							 : "text/event-stream");
	ret = MHD_queue_response(r->conn, MHD_HTTP_OK, resp);
	MHD_destroy_response(resp);
	fake_req_set_status(r, 200);
	return ret;
}

void fake_chat_set_reply(struct fake_req *r, const json_t *script, const json_t *body,
			 const json_t *msgs, long max_tokens)
{
	json_t *m = fake_script_model(script, r->model); /* borrowed */
	json_t *d = json_object_get(m, "token_delay_ms");

	r->reply = fake_reply_text(script, r->model, msgs, fake_request_schema(body));
	r->npieces = fake_split_pieces(r->reply, strlen(r->reply), &r->ends);
	r->delay_ms = d ? (long)json_integer_value(d) : fake_cfg.token_delay_ms;
	if (max_tokens >= 0 && (size_t)max_tokens < r->npieces) {
		r->npieces = (size_t)max_tokens;
		r->finish_reason = "length";
	}
}

long fake_chat_int(const json_t *o, const char *key, long def)
{
	json_t *v = json_object_get(o, key); /* borrowed */

	if (json_is_integer(v))
		return (long)json_integer_value(v);
	if (json_is_real(v))
		return (long)json_real_value(v);
	return def;
}

/* ---- the request: parse, log, faults, then the protocol ---- */

/* The Go decoder's complaint about a body that is not JSON (approximately). */
static void go_json_error(const struct fake_req *r, const json_error_t *je, char *msg, size_t len)
{
	size_t pos = (size_t)je->position;

	/* jansson reports where the bad token ended; Go names its first character */
	if (pos > r->body.len)
		pos = r->body.len;
	while (pos > 0 && isalnum((unsigned char)r->body.buf[pos - 1]))
		pos--;
	if (pos >= r->body.len)
		snprintf(msg, len, "unexpected EOF");
	else
		snprintf(msg, len, "invalid character '%c' looking for beginning of value",
			 r->body.buf[pos]);
}

static enum MHD_Result chat_handle(struct fake_req *r, json_t *body, const json_error_t *je,
				   const json_t *script)
{
	int ollama = r->proto == PROTO_OLLAMA, handled;
	const char *model = json_string_value(json_object_get(body, "model"));
	json_t *msgs = json_object_get(body, "messages"), *st = json_object_get(body, "stream");
	struct fake_logent *e;
	enum MHD_Result ret;
	char msg[600];

	if (fake_fault_loading(model, 1))
		return fake_llama_error(r, 503, "unavailable_error", "Loading model", -1);
	if (!body) {
		if (ollama && !r->body.len)
			return fake_ollama_error(r, 400, "missing request body", -1);
		if (ollama) {
			go_json_error(r, je, msg, sizeof(msg));
			return fake_ollama_error(r, 400, msg, -1);
		}
		snprintf(msg, sizeof(msg),
			 "[json.exception.parse_error.101] parse error at line %d, column %d: "
			 "syntax error while parsing value - %s",
			 je->line, je->column, je->text);
		return fake_llama_error(r, 500, "server_error", msg, -1);
	}
	if (!json_is_object(body)) {
		if (ollama)
			return fake_ollama_error(
			    r, 400,
			    "json: cannot unmarshal array into Go value of type api.ChatRequest",
			    -1);
		return fake_llama_error(r, 400, "invalid_request_error", "'messages' is required",
					-1);
	}
	if (model)
		r->model = xstrdup(model);
	else /* Ollama insists on a model; llama-server serves its own */
		r->model = xstrdup(ollama ? "" : FAKE_LLAMA_MODEL);
	r->stream = st ? json_is_true(st) : ollama; /* Ollama streams by default, llama not */
	fake_render_prompt(json_is_array(msgs) ? msgs : NULL, &r->prompt);
	r->prompt_tokens = fake_count_tokens(r->prompt.len);
	fake_fault_take(model, r->path, &r->fault);
	pthread_mutex_lock(&fake_st.lock);
	e = fake_log_find(r->log_id);
	if (e) {
		e->stream = r->stream;
		e->fault = r->fault.mode == FM_NONE ? NULL : fake_fault_name(r->fault.mode);
	}
	pthread_mutex_unlock(&fake_st.lock);
	ret = fake_fault_early(r, &handled);
	if (handled)
		return ret;
	if (ollama)
		return fake_ollama_chat(r, body, script);
	return fake_llama_chat(r, body, script);
}

enum MHD_Result fake_chat(struct fake_req *r, enum fake_proto proto)
{
	json_error_t je;
	json_t *body = NULL, *script;
	enum MHD_Result ret;

	r->proto = proto;
	r->t0_us = util_mono_us();
	/* no JSON_REJECT_DUPLICATES: the real servers keep the last value */
	if (r->body.len)
		body = json_loadb(r->body.buf, r->body.len, 0, &je);
	else
		memset(&je, 0, sizeof(je));
	chat_begin(r, body, json_string_value(json_object_get(body, "model")));
	script = fake_script_get();
	ret = chat_handle(r, body, &je, script);
	json_decref(script);
	json_decref(body);
	return ret;
}
