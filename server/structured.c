/*
 * structured.c - a one-shot call under structured output. See structured.h.
 */
#include "server/structured.h"

#include <string.h>

int structured_call(const struct structured_req *q, struct chat_result *res, struct perr *e)
{
	struct chat_msg msgs[2];
	struct chat_req req;
	struct fleet_call fc;
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
	/* a one-shot call: a free slot, never one a running conversation holds */
	if (fleet_oneshot_acquire(q->fleet, q->be->name, q->model, q->cancel, &fc, e) < 0) {
		if (e->code == PERR_CANCELLED)
			perr_set(e, PERR_CANCELLED,
				 "cancelled while waiting for a call slot on backend '%s'",
				 q->be->name);
		return -1;
	}
	fleet_call_pin(&fc, &req);
	rc = backend_chat(q->curl, &req, res, e);
	fleet_oneshot_release(q->fleet, &fc);
	return rc;
}
