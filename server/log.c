/*
 * log.c - structured log lines. See log.h.
 */
#include "server/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "db/util.h"

static enum log_level min_level = LOG_INFO;
static const char *const level_names[] = {"debug", "info", "warn", "error"};
/* The request this thread is serving, appended to each of its lines; "" when none. */
static __thread char request_id[80];

void log_set_request_id(const char *id)
{
	snprintf(request_id, sizeof(request_id), "%s", id ? id : "");
}

void log_set_level(enum log_level lvl)
{
	min_level = lvl;
}

int log_level_parse(const char *s, enum log_level *out)
{
	size_t i;

	for (i = 0; i < ARRAY_SIZE(level_names); i++) {
		if (strcmp(s, level_names[i]) == 0) {
			*out = (enum log_level)i;
			return 0;
		}
	}
	return -1;
}

void log_msg(enum log_level lvl, const char *msg, const char *kvfmt, ...)
{
	char ts[32], line[2048];
	size_t n;
	va_list ap;
	int k;

	if (lvl < min_level)
		return;
	util_iso8601(util_now_us(), ts);
	k = snprintf(line, sizeof(line), "ts=%s level=%s msg=\"%s\"", ts, level_names[lvl], msg);
	n = k < 0 ? 0 : (size_t)k;
	if (n < sizeof(line) - 2 && kvfmt && *kvfmt) {
		line[n++] = ' ';
		va_start(ap, kvfmt);
		k = vsnprintf(line + n, sizeof(line) - n, kvfmt, ap);
		va_end(ap);
		n += k < 0 ? 0 : (size_t)k;
	}
	if (request_id[0] && n < sizeof(line) - 2) {
		k = snprintf(line + n, sizeof(line) - n, " request_id=%s", request_id);
		n += k < 0 ? 0 : (size_t)k;
	}
	if (n > sizeof(line) - 2)
		n = sizeof(line) - 2;
	line[n++] = '\n';
	if (write(STDERR_FILENO, line, n) < 0) {
		/* nowhere left to report it */
	}
}
