/*
 * scenario.h - the scenario library.
 */
#ifndef PARLEY_DB_SCENARIO_H
#define PARLEY_DB_SCENARIO_H

#include <stddef.h>
#include <stdint.h>

#include "db/db.h"

struct db_scenario {
	char *name, *problem, *context, *goal;
	char *prompts; /* JSON object text or NULL */
	/* The closed loop's work (server/tasks.h), JSON texts or NULL: */
	char *baseline;	 /* {system, template, options} */
	char *tasks;	 /* [{id, input, checks}] */
	char *objective; /* {kind, max_quality_drop} */
	int builtin;
	int64_t created_at, updated_at;
};

void db_scenario_release(struct db_scenario *s);
void db_scenarios_free(struct db_scenario *v, size_t n);

int db_scenario_get(struct db *db, const char *name, struct db_scenario *out, struct perr *e);
/* Creates or replaces; *created tells which. */
int db_scenario_put(struct db *db, const struct db_scenario *s, int *created, struct perr *e);
int db_scenario_delete(struct db *db, const char *name, struct perr *e);
int db_scenario_list(struct db *db, struct db_scenario **out, size_t *n, struct perr *e);

#endif
