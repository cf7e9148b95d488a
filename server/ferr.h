/*
 * ferr.h - validation errors of the domain: a list of {field, message}
 * pairs, where field is the path of the bad value in the submitted document
 * ("tasks[3].checks[0].regex"). The domain fills the list; api/ hands it to
 * the client unchanged as the problem document's "errors".
 */
#ifndef PARLEY_FERR_H
#define PARLEY_FERR_H

#include <jansson.h>

/*
 * Appends {field: prefix + field, message} to the JSON array errs. The
 * message is cut to 300 bytes on a character boundary, so user text quoted
 * in it can never make it invalid UTF-8.
 */
void ferr_add(json_t *errs, const char *prefix, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

#endif
