/*
 * turn.h - the stored turns of a job and the optimizations found in them.
 */
#ifndef PARLEY_DB_TURN_H
#define PARLEY_DB_TURN_H

#include <stddef.h>
#include <stdint.h>

#include "db/db.h"

/* Integers -1 and doubles < 0 mean "the backend did not say" (NULL in SQL). */
struct db_turn {
	int idx; /* 1-based */
	char role[16];
	char *model, *backend, *text;
	int64_t started_at, finished_at;
	double wall_ms, ttft_ms;
	int64_t prompt_tokens, cached_tokens, completion_tokens;
	double prompt_ms, gen_ms, tokens_per_s, load_ms;
	char *finish_reason;
	int attempts;
	char *note;
};

void db_turn_release(struct db_turn *t);
void db_turns_free(struct db_turn *v, size_t n);

/*
 * Stores a finished turn of a running job held at attempt, and sets the
 * job's turns_completed, in one transaction. PERR_CONFLICT when the turn is
 * already stored or the attempt is stale.
 */
int db_turn_insert(struct db *db, const char *job_id, int attempt, const struct db_turn *t,
		   struct perr *e);

/*
 * Stores turn t of job_id inside the caller's transaction (db/import.c),
 * without the checks of db_turn_insert(). PERR_CONFLICT when already stored.
 */
int db_turn_put(struct db *db, const char *job_id, const struct db_turn *t, struct perr *e);
/* The bytes of text a job's turns hold together (0 for none), without reading them. */
int db_turn_text_bytes(struct db *db, const char *job_id, int64_t *bytes, struct perr *e);
/* In index order. *out is a new array (db_turns_free()). */
int db_turn_list(struct db *db, const char *job_id, struct db_turn **out, size_t *n,
		 struct perr *e);

struct db_optim {
	int ord, turn;
	char *title, *detail, *test, *suggestion;
	int64_t extracted_at;
	char method[8]; /* how it was found: "rubric", "origin", "model"; "" when not recorded */
};

void db_optims_free(struct db_optim *v, size_t n);
int db_optim_list(struct db *db, const char *job_id, struct db_optim **out, size_t *n,
		  struct perr *e);

#endif
