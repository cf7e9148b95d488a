/*
 * fleet.h - the configured backends at run time: their members, slots, health,
 * and who holds which slot.
 *
 * DESIGN (DESIGN §8): a backend is a pool of one or more members (model
 * servers of the same kind). A member's capacity is counted in slots, the
 * places its prompt cache keeps a prompt: llama-server's /props total_slots
 * (one group of slots shared by whatever model it serves; max_concurrency when
 * /props gives none), or for Ollama max_concurrency slots per model (its
 * OLLAMA_NUM_PARALLEL is per loaded model). A running conversation holds a
 * lease (struct fleet_lease): one slot for each of its roles, on one member
 * per role, for as long as it runs, so its prompts stay cached between turns
 * (affinity); on llama-server each of its calls names that slot (id_slot).
 * A conversation starts only when its roles find free slots (fleet_conv_try,
 * never waiting; the worker pool then picks another job or sleeps);
 * max_conversations lets a member take more conversations than it has slots,
 * which then share the least held ones. One-shot calls (the judge, trial
 * tasks, extraction) take a slot that no conversation holds and no call uses
 * (fleet_oneshot_acquire) and give it back after the call; while one waits,
 * no new conversation takes a free slot of that group. A call goes to a
 * member that is up, serves the model and has room; when no member of a
 * backend is up, any member is used, so that the call fails with what to
 * start. When a member fails mid-job, fleet_conv_move() moves the role to
 * another member that is up and has a free slot. A monitor thread probes
 * every member every few seconds (and reads total_slots again); request
 * handlers only read what it saw. Everything is guarded by one mutex; waits
 * sleep on one condition variable, woken on every release, probe change and
 * fleet_poke().
 */
#ifndef PARLEY_FLEET_H
#define PARLEY_FLEET_H

#include <jansson.h>
#include <stdatomic.h>

#include "server/backend.h"

struct fleet;
struct member;

/* Starts the monitor thread. cfgs must outlive the fleet. */
struct fleet *fleet_start(const struct backend_cfg *cfgs, size_t n);
void fleet_stop(struct fleet *f);

/* The backend configured under name, or NULL. */
const struct backend_cfg *fleet_find(struct fleet *f, const char *name);
/* The first configured backend's name (the default). */
const char *fleet_default_name(struct fleet *f);

/*
 * How many one-shot calls of backend can run at once: the slots of its
 * members (a member's slots per model for Ollama); 0 for an unknown name.
 * Trial tasks size their parallelism by it; each call still takes its slot
 * with fleet_oneshot_acquire().
 */
int fleet_limit(struct fleet *f, const char *name);
/* Wakes every waiter so they re-check their cancel flags. */
void fleet_poke(struct fleet *f);
/* fn(ud) runs (outside the fleet's lock) whenever slots may have become free or a member came
 * up: the worker pool wakes its idle workers with it. Set once, before any job runs. */
void fleet_on_room(struct fleet *f, void (*fn)(void *ud), void *ud);

struct fleet_lease;

/* ---- one-shot calls: the judge, trial tasks, model extraction ---- */

/* Which member and slot a call goes to. Filled by fleet_oneshot_acquire(). */
struct fleet_call {
	const struct backend_cfg *be; /* the member's settings: the backend's, with its url */
	int pinned, id_slot;	      /* copy into struct chat_req (fleet_call_pin does) */
	struct member *m;	      /* internal */
	int group, slot;	      /* internal */
};

/*
 * Waits for a free slot of backend for model (one no running conversation
 * holds and no call uses, on a member that is up and serves the model, or any
 * member when none is up) and takes it for one call. Returns 0 with call
 * filled; -1 with e set when backend is not configured (PERR_NOT_FOUND) or
 * *cancel became non-zero (PERR_CANCELLED). Give it back with
 * fleet_oneshot_release() after the call, whatever its outcome. Typical use:
 *
 *	struct fleet_call fc;
 *	if (fleet_oneshot_acquire(fleet, backend, model, cancel, &fc, &e) < 0)
 *		return -1;
 *	req.model = model;
 *	fleet_call_pin(&fc, &req);	(sets req.be, req.pinned, req.id_slot)
 *	rc = backend_chat(curl, &req, &res, &e);
 *	fleet_oneshot_release(fleet, &fc);
 */
int fleet_oneshot_acquire(struct fleet *f, const char *backend, const char *model,
			  const atomic_int *cancel, struct fleet_call *call, struct perr *e);
/*
 * The same for a call a running job makes for itself (its trial tasks between
 * turns): when no slot is free it may also use a slot its own lease holds and
 * no call uses, so a job whose conversation fills its backend still runs its
 * trials. That evicts only the job's own prompt, never another's.
 */
int fleet_oneshot_acquire_own(struct fleet *f, const struct fleet_lease *own, const char *backend,
			      const char *model, const atomic_int *cancel, struct fleet_call *call,
			      struct perr *e);
void fleet_oneshot_release(struct fleet *f, struct fleet_call *call);
/* Points req at the call's member and slot (req->be, req->pinned, req->id_slot). */
void fleet_call_pin(const struct fleet_call *call, struct chat_req *req);

/* ---- conversations ---- */

enum { FLEET_INTERVIEWER, FLEET_CANDIDATE, FLEET_NROLES };

struct fleet_role {
	struct member *m; /* NULL: the role's backend is not configured */
	int group, slot;
	long expect_cached; /* tokens the slot should hold at the next call (prompt + reply) */
};

/* The slots a running conversation holds. */
struct fleet_lease {
	struct fleet *f;
	int held; /* 1 from fleet_conv_try() until fleet_conv_release() */
	struct fleet_role role[FLEET_NROLES];
};

/*
 * Takes the slots a conversation needs without waiting: 1 when they are held
 * (lease filled), 0 when its backends have no room now. A backend that is not
 * configured takes nothing (its role's m is NULL): the engine fails the job.
 */
int fleet_conv_try(struct fleet *f, const char *const backend[FLEET_NROLES],
		   const char *const model[FLEET_NROLES], struct fleet_lease *lease);
/* Gives every slot back; does nothing when the lease holds none. */
void fleet_conv_release(struct fleet_lease *lease);

/*
 * Around each model call of a role: begin waits while another call uses the
 * role's slot (overcommitted members only), points req at the member and
 * slot, and returns 0; -1 when *cancel became non-zero. end is given the
 * call's metrics when it succeeded (NULL otherwise): it counts the backend's
 * cache hits and notes when the server did not keep the prefix.
 */
int fleet_call_begin(struct fleet_lease *l, int role, const atomic_int *cancel,
		     struct chat_req *req);
void fleet_call_end(struct fleet_lease *l, int role, const struct chat_metrics *m);

/*
 * The role's member failed: moves the role to another member of the pool
 * that is up and has a free slot. Returns 1 and writes what happened to note
 * ("member URL failed; continued on member URL2 with a cold prompt"), or 0
 * when no member can take it.
 */
int fleet_conv_move(struct fleet_lease *l, int role, char *note, size_t size);

/*
 * New JSON array describing every backend: name, kind, url, max_concurrency,
 * max_conversations, slots, slots_held, conversations, in_flight, waiting,
 * status (up/down/loading/unknown: up when a member is), models[] (of every
 * member), error, checked_at, and members[]: url, status, slots, slots_held,
 * conversations, in_flight, models[], error, checked_at.
 */
json_t *fleet_status_json(struct fleet *f);

#endif
