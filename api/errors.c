/*
 * errors.c - the one table from error codes to HTTP statuses, and problem
 * documents (RFC 9457).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api.h"

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
	size_t i, n, len;

	if (j)
		return j;
	len = strlen(s);
	strbuf_init(&sb, len + 16);
	for (i = 0; i < len; i += n) {
		json_t *c = NULL;
		for (n = 1; n <= 4 && i + n <= len; n++)
			if ((c = json_stringn(s + i, n)))
				break;
		if (c) {
			strbuf_add(&sb, s + i, n);
			json_decref(c);
		} else {
			strbuf_addstr(&sb, "\xEF\xBF\xBD"); /* U+FFFD */
			n = 1;
		}
	}
	j = json_stringn(sb.buf, sb.len);
	strbuf_release(&sb);
	return j;
}

void api_json(struct api_resp *r, int status, json_t *j)
{
	char *s = json_dumps(j, JSON_COMPACT);

	r->status = status;
	r->content_type = "application/json; charset=utf-8";
	strbuf_reset(&r->body);
	if (s) {
		strbuf_addstr(&r->body, s);
		strbuf_addch(&r->body, '\n');
	}
	free(s);
	json_decref(j);
}

void api_text(struct api_resp *r, int status, const char *content_type, const char *text)
{
	r->status = status;
	r->content_type = content_type;
	strbuf_reset(&r->body);
	strbuf_addstr(&r->body, text);
}

void api_problem(struct api_resp *r, int status, const char *title, const char *detail,
		 json_t *errors)
{
	json_t *p = json_object();

	json_object_set_new(p, "type", json_string("about:blank"));
	json_object_set_new(p, "title", json_string(title ? title : title_for(status)));
	json_object_set_new(p, "status", json_integer(status));
	json_object_set_new(p, "detail", api_json_text(detail));
	if (errors)
		json_object_set_new(p, "errors", errors);
	api_json(r, status, p);
	r->content_type = "application/problem+json";
}

void api_perr(struct api_resp *r, const struct perr *e)
{
	int status = api_status_for(e->code);
	size_t i;

	api_problem(r, status, title_for(status), e->msg, NULL);
	for (i = 0; i < ARRAY_SIZE(table); i++)
		if (table[i].code == e->code && table[i].retry_after)
			r->retry_after = table[i].retry_after;
	if (status == 503 && !r->retry_after)
		r->retry_after = 5;
}

void api_invalid(struct api_resp *r, const char *field, const char *message)
{
	json_t *errs = json_array();
	json_t *one = json_object();
	char detail[400];

	json_object_set_new(one, "field", api_json_text(field));
	json_object_set_new(one, "message", api_json_text(message));
	json_array_append_new(errs, one);
	snprintf(detail, sizeof(detail), "%s: %s", field, message);
	api_problem(r, 400, "Bad Request", detail, errs);
}
