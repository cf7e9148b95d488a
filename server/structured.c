/*
 * structured.c - a one-shot call under structured output. See structured.h.
 */
#include "server/structured.h"

#include <string.h>

int structured_call(const struct structured_req *q, struct chat_result *res, struct perr *e)
{
	struct chat_msg msgs[2];
	struct chat_req req;
	int rc;

	memset(res, 0, sizeof(*res));
	strbuf_init(&res->text, 0);
	msgs[0] = (struct chat_msg){"system", q->system};
	msgs[1] = (struct chat_msg){"user", q->user};
	memset(&req, 0, sizeof(req));
	req.be = q->be;
	req.model = q->model;
	req.msgs = msgs;
	req.nmsgs = 2;
	req.options = q->options;
	req.cancel = q->cancel;
	req.format = q->schema;
	if (fleet_acquire(q->fleet, q->be->name, q->cancel) < 0)
		return perr_set(e, PERR_CANCELLED,
				"cancelled while waiting for a call slot on backend '%s'",
				q->be->name);
	rc = backend_chat(q->curl, &req, res, e);
	fleet_release(q->fleet, q->be->name);
	return rc;
}
