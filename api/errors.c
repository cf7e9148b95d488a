/*
 * errors.c - the one table from error codes to HTTP statuses, problem
 * documents (RFC 9457), and the other response bodies the handlers set
 * (JSON, text, Markdown, a page of a list).
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "server/record.h"

/* retry_after: seconds a 503 asks the client to wait (0: none given) */
static const struct {
	int code;
	int status;
	int retry_after;
	const char *title;
} table[] = {
    {PERR_INVALID, 400, 0, "Bad Request"},
    {PERR_NOT_FOUND, 404, 0, "Not Found"},
    {PERR_CONFLICT, 409, 0, "Conflict"},
    {PERR_TOO_LARGE, 413, 0, "Content Too Large"},
    {PERR_UNAVAILABLE, 503, 5, "Service Unavailable"},
    {PERR_DB, 500, 0, "Internal Server Error"},
    {PERR_INTERNAL, 500, 0, "Internal Server Error"},
    {PERR_BACKEND_DOWN, 502, 0, "Bad Gateway"},
    {PERR_BACKEND_BUSY, 503, 5, "Service Unavailable"},
    {PERR_MODEL_MISSING, 502, 0, "Bad Gateway"},
    {PERR_BACKEND_REJECTED, 502, 0, "Bad Gateway"},
    {PERR_BACKEND_ERROR, 502, 0, "Bad Gateway"},
    {PERR_BACKEND_TIMEOUT, 504, 0, "Gateway Timeout"},
    {PERR_BACKEND_PROTOCOL, 502, 0, "Bad Gateway"},
    {PERR_CONTEXT_OVERFLOW, 502, 0, "Bad Gateway"},
    {PERR_CANCELLED, 409, 0, "Conflict"},
    {PERR_UNAUTHORIZED, 401, 0, "Unauthorized"},
    {PERR_FORBIDDEN, 403, 0, "Forbidden"},
    {PERR_NOT_ALLOWED, 405, 0, "Method Not Allowed"},
    /* the store: nothing the client did; the same request may work later */
    {PERR_STORE_BUSY, 503, 2, "Service Unavailable"},
    {PERR_STORE_UNAVAILABLE, 503, 30, "Service Unavailable"},
    {PERR_STORE_CORRUPT, 503, 60, "Service Unavailable"},
};

static const char *title_for(int status)
{
	size_t i;

	for (i = 0; i < ARRAY_SIZE(table); i++)
		if (table[i].status == status)
			return table[i].title;
	return "Error";
}

int api_status_for(int code)
{
	size_t i;

	for (i = 0; i < ARRAY_SIZE(table); i++)
		if (table[i].code == code)
			return table[i].status;
	return 500;
}

json_t *api_json_text(const char *s)
{
	json_t *j = s ? json_string(s) : json_string("");
	struct strbuf sb;

	if (j)
		return j;
	strbuf_init(&sb, strlen(s) + 16);
	util_utf8_repair(s, strlen(s), &sb);
	j = json_stringn(sb.buf, sb.len);
	strbuf_release(&sb);
	return j;
}

void api_json(struct api_resp *r, int status, json_t *j)
{
	char small[16384], *s;
	size_t n = json_dumpb(j, small, sizeof(small), RECORD_DUMP_FLAGS);

	/*
	 * Printed straight into a buffer of the exact size: a transcript with large
	 * turns, printed by json_dumps() into a buffer that doubles as it grows and
	 * then copied, was held three or four times over.
	 */
	r->status = status;
	r->content_type = "application/json; charset=utf-8";
	strbuf_reset(&r->body);
	if (n == 0) {
		json_decref(j);
		return;
	}
	s = xmalloc(n + 2);
	if (n <= sizeof(small))
		memcpy(s, small, n);
	else
		json_dumpb(j, s, n, RECORD_DUMP_FLAGS);
	json_decref(j);
	s[n] = '\n';
	s[n + 1] = '\0';
	strbuf_attach(&r->body, s, n + 1, n + 2);
}

void api_text(struct api_resp *r, int status, const char *content_type, const char *text)
{
	r->status = status;
	r->content_type = content_type;
	strbuf_reset(&r->body);
	strbuf_addstr(&r->body, text);
}

void api_list_page(struct api_req *q, struct api_resp *r, json_t *items, int more, int64_t last)
{
	char cur[24];
	int k = 0, a, b;

	if (!more) {
		api_json(r, 200, json_pack("{s:o, s:n}", "items", items, "next_cursor"));
		return;
	}
	/* base 36 of the last item's sequence number: opaque enough, stable, short */
	do {
		int d = (int)(last % 36);
		cur[k++] = (char)(d < 10 ? '0' + d : 'a' + d - 10);
		last /= 36;
	} while (last && k < 22);
	cur[k] = '\0';
	for (a = 0, b = k - 1; a < b; a++, b--) {
		char t = cur[a];
		cur[a] = cur[b];
		cur[b] = t;
	}
	api_json(r, 200, json_pack("{s:o, s:s}", "items", items, "next_cursor", cur));
	api_link_next(q, r, cur);
}

void api_markdown(struct api_resp *r, struct strbuf *md)
{
	r->status = 200;
	r->content_type = "text/markdown; charset=utf-8";
	strbuf_release(&r->body);
	r->body = *md;
	strbuf_init(md, 0);
}

int api_wants_markdown(struct api_req *q)
{
	const char *accept = api_header(q, "Accept");

	return accept && strstr(accept, "text/markdown") != NULL;
}

void api_problem(struct api_resp *r, int status, const char *title, const char *detail,
		 json_t *errors)
{
	json_t *p = json_object();

	json_object_set_new(p, "type", json_string("about:blank"));
	json_object_set_new(p, "title", json_string(title ? title : title_for(status)));
	json_object_set_new(p, "status", json_integer(status));
	json_object_set_new(p, "detail", api_json_text(detail));
	if (r->instance)
		json_object_set_new(p, "instance", api_json_text(r->instance));
	if (errors)
		json_object_set_new(p, "errors", errors);
	api_json(r, status, p);
	r->content_type = "application/problem+json";
}

void api_fail(struct api_resp *r, int code, json_t *errors, const char *fmt, ...)
{
	int status = api_status_for(code);
	char detail[512];
	va_list ap;
	size_t i;

	va_start(ap, fmt);
	vsnprintf(detail, sizeof(detail), fmt, ap);
	va_end(ap);
	api_problem(r, status, title_for(status), detail, errors);
	/* how long a client waits before it tries again: the table says, per cause */
	for (i = 0; i < ARRAY_SIZE(table); i++)
		if (table[i].code == code && table[i].retry_after)
			r->retry_after = table[i].retry_after;
	if (status == 503 && !r->retry_after)
		r->retry_after = 5;
}

void api_perr(struct api_resp *r, const struct perr *e)
{
	api_fail(r, e->code, NULL, "%s", e->msg);
}

void api_invalid(struct api_resp *r, const char *field, const char *message)
{
	json_t *errs = json_array();
	json_t *one = json_object();

	json_object_set_new(one, "field", api_json_text(field));
	json_object_set_new(one, "message", api_json_text(message));
	json_array_append_new(errs, one);
	api_fail(r, PERR_INVALID, errs, "%s: %s", field, message);
}
