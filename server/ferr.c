/*
 * ferr.c - validation errors of the domain. See ferr.h.
 */
#include "server/ferr.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* A string cut by snprintf may end inside a UTF-8 sequence: drop that tail. */
static json_t *text(char *s)
{
	size_t n = strlen(s);
	json_t *j;

	while (!(j = json_stringn(s, n)) && n > 0)
		n--;
	return j ? j : json_string("");
}

void ferr_add(json_t *errs, const char *prefix, const char *field, const char *fmt, ...)
{
	char path[256], msg[301];
	va_list ap;

	snprintf(path, sizeof(path), "%s%s", prefix ? prefix : "", field);
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	json_array_append_new(errs,
			      json_pack("{s:o, s:o}", "field", text(path), "message", text(msg)));
}
