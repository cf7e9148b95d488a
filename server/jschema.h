/*
 * jschema.h - the subset of JSON Schema that structured output uses, for the
 * json_schema check of a task (DESIGN §7).
 *
 * DESIGN: two steps. jschema_check() runs when a scenario is submitted: it
 * accepts only the keywords of the subset (type, properties, required, items,
 * enum, minimum, maximum, minLength, maxLength, pattern, additionalProperties,
 * and the annotations title and description, which constrain nothing) and
 * compiles every pattern, so that a schema parley could not honour is a
 * refusal with the keyword's path, never a check that silently passes.
 * jschema_match() then tests replies against a checked schema.
 */
#ifndef PARLEY_JSCHEMA_H
#define PARLEY_JSCHEMA_H

#include <jansson.h>
#include <stddef.h>

/* Schemas nest at most this deep. */
#define JSCHEMA_MAX_DEPTH 32

/*
 * Checks that schema is a schema of the subset. Each fault is appended to
 * errs (ferr.h) with its path under prefix ("tasks[0].checks[1].json_schema"
 * gives "tasks[0].checks[1].json_schema.properties.name.type"). Returns 0 when
 * the schema is usable, -1 when it is not.
 */
int jschema_check(json_t *schema, const char *prefix, json_t *errs);

/*
 * Whether instance matches a schema that passed jschema_check(): 1 when it
 * does, 0 when it does not, with why (size bytes) naming the first mismatch
 * and where ("$.items[2].price: below the minimum 0").
 */
int jschema_match(json_t *schema, json_t *instance, char *why, size_t size);

#endif
