/*
 * log.h - structured log lines on stderr.
 *
 * Each line is `ts=<iso8601> level=<level> msg="<text>" key=value ...`, one
 * write(2) per line so lines from different threads never interleave.
 * Callers pass the key=value part as a printf format (`key=%s key2="%s"`);
 * every %s value is escaped on the way (quotes, backslashes, newlines and other
 * control characters), and a bare one that needs it is quoted, so a value can
 * neither end its line nor forge another key.
 */
#ifndef PARLEY_LOG_H
#define PARLEY_LOG_H

enum log_level { LOG_DEBUG, LOG_INFO, LOG_WARN, LOG_ERROR };

void log_set_level(enum log_level lvl);
/*
 * Tags every later line of the calling thread with request_id=<id> until it
 * is called again with NULL: the HTTP layer sets it while it serves a request,
 * so each line about a request can be found by its id. id must be of safe
 * characters (no spaces, quotes or newlines).
 */
void log_set_request_id(const char *id);
int log_level_parse(const char *s, enum log_level *out);
void log_msg(enum log_level lvl, const char *msg, const char *kvfmt, ...)
    __attribute__((format(printf, 3, 4)));

#define log_debug(msg, ...) log_msg(LOG_DEBUG, msg, __VA_ARGS__)
#define log_info(msg, ...) log_msg(LOG_INFO, msg, __VA_ARGS__)
#define log_warn(msg, ...) log_msg(LOG_WARN, msg, __VA_ARGS__)
#define log_error(msg, ...) log_msg(LOG_ERROR, msg, __VA_ARGS__)

#endif
