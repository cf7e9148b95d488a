/*
 * fuzz_tasks.c - a scenario's work (baseline, tasks, objective) as a client
 * may send it, and its checks run on an arbitrary reply.
 *
 * DESIGN: the input is a JSON scenario object, then a NUL byte, then a reply
 * (cut at its next NUL). A scenario either passes validation, and then its
 * written-out form passes again unchanged and every task's checks compile
 * and evaluate the reply to pass or fail (a judge check: "needs a judge"), or
 * it is refused with at least one error whose field and message are strings.
 */
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "server/checks.h"
#include "server/tasks.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *nul = memchr(data, 0, size);
	size_t jlen = nul ? (size_t)(nul - data) : size;
	char *reply = malloc(size - jlen + 1);
	json_t *sc = json_loadb((const char *)data, jlen, JSON_REJECT_DUPLICATES, NULL);
	json_t *errs = json_array(), *work = NULL, *again = NULL, *t, *e;
	size_t i;

	memcpy(reply, nul ? nul + 1 : data + size, nul ? size - jlen - 1 : 0);
	reply[nul ? size - jlen - 1 : 0] = '\0';
	if (!json_is_object(sc))
		goto out;
	if (tasks_validate(sc, "", &work, errs) < 0) {
		if (json_array_size(errs) == 0 || work)
			abort();
		json_array_foreach(errs, i, e)
		{
			if (!json_is_string(json_object_get(e, "field")) ||
			    !json_is_string(json_object_get(e, "message")))
				abort();
		}
		goto out;
	}
	/* what is stored validates again to itself */
	if (tasks_validate(work, "", &again, errs) < 0 || !json_equal(work, again))
		abort();
	json_array_foreach(json_object_get(work, "tasks"), i, t)
	{
		struct checks cs;
		size_t k;
		char why[300];
		if (checks_compile(json_object_get(t, "checks"), "", &cs, errs) < 0)
			abort();
		for (k = 0; k < cs.n; k++) {
			int rc = checks_eval(&cs.v[k], reply, why, sizeof(why));
			if (rc < -1 || rc > 1 || (rc == -1) != (cs.v[k].kind == CHECK_JUDGE))
				abort();
		}
		checks_release(&cs);
	}
out:
	json_decref(again);
	json_decref(work);
	json_decref(errs);
	json_decref(sc);
	free(reply);
	return 0;
}
