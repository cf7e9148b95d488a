/*
 * fleet.c - members, slots, leases and health of the configured backends. See fleet.h.
 */
#include "server/fleet.h"

#include <limits.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "server/log.h"
#include "server/metrics.h"

#define PROBE_INTERVAL_MS 5000

struct slot {
	int holders; /* conversations holding it (more than one only when overcommitted) */
	int busy;    /* a call uses it now */
};

/* The slots of one prompt cache: llama-server's (every model), or one Ollama model's. */
struct group {
	char *model; /* NULL for llama-server's single group */
	struct slot *s;
	int n; /* allocated; only the first capacity are used */
};

struct bend;

struct member {
	struct backend_cfg cfg; /* the backend's settings with this member's url (shallow copy) */
	struct bend *b;
	int capacity; /* slots per group */
	int slots;    /* llama-server total_slots as last seen; 0 = unknown */
	int conversations, in_flight;
	struct group *g;
	int ng;
	/* health, written by the monitor */
	char status[16];
	char error[sizeof(((struct perr *)0)->msg)];
	json_t *models; /* owned; array of strings or NULL */
	int64_t checked_at;
};

/* One configured backend: its pool. */
struct bend {
	const struct backend_cfg *cfg;
	struct member *m;
	size_t nm;
	int waiting;	     /* callers waiting for a slot */
	int oneshot_waiting; /* one-shot calls among them: no conversation starts meanwhile */
};

struct fleet {
	pthread_mutex_t lock; /* guards every field of every bend, member, group and slot */
	pthread_cond_t freed; /* a slot was released, capacity changed, or a poke */
	pthread_cond_t tick;  /* wakes the monitor early to stop */
	struct bend *b;
	size_t n;
	int stopping;
	pthread_t monitor;
	/* guards on_room and is held while it runs, so that clearing it waits for a call in
	 * progress (the pool frees its state right after) */
	pthread_mutex_t room_lock;
	void (*on_room)(void *ud);
	void *on_room_ud;
};

static struct bend *find(struct fleet *f, const char *name)
{
	size_t i;

	for (i = 0; name && i < f->n; i++)
		if (strcmp(f->b[i].cfg->name, name) == 0)
			return &f->b[i];
	return NULL;
}

const struct backend_cfg *fleet_find(struct fleet *f, const char *name)
{
	struct bend *b = find(f, name);

	return b ? b->cfg : NULL;
}

const char *fleet_default_name(struct fleet *f)
{
	return f->n ? f->b[0].cfg->name : NULL;
}

void fleet_on_room(struct fleet *f, void (*fn)(void *ud), void *ud)
{
	pthread_mutex_lock(&f->room_lock);
	f->on_room = fn;
	f->on_room_ud = ud;
	pthread_mutex_unlock(&f->room_lock);
}

/* Call without f->lock held. */
static void room(struct fleet *f)
{
	pthread_mutex_lock(&f->room_lock);
	if (f->on_room)
		f->on_room(f->on_room_ud);
	pthread_mutex_unlock(&f->room_lock);
}

void fleet_poke(struct fleet *f)
{
	pthread_mutex_lock(&f->lock);
	pthread_cond_broadcast(&f->freed);
	pthread_mutex_unlock(&f->lock);
}

/* Slots per group: llama-server's total_slots (capped by max_concurrency when both are
 * known), else max_concurrency, else 1. */
static int member_capacity(const struct member *m)
{
	int mc = m->cfg.max_concurrency;

	if (m->cfg.kind == BACKEND_LLAMA && m->slots > 0)
		return mc > 0 && mc < m->slots ? mc : m->slots;
	return mc > 0 ? mc : 1;
}

/* The group of model's prompts on m (created on first use); its index. Lock held. */
static int group_of(struct member *m, const char *model)
{
	const char *key = m->cfg.kind == BACKEND_LLAMA ? NULL : model;
	struct group *g;
	int i;

	for (i = 0; i < m->ng; i++)
		if ((!key && !m->g[i].model) ||
		    (key && m->g[i].model && !strcmp(m->g[i].model, key)))
			break;
	if (i == m->ng) {
		m->g = xrealloc(m->g, (size_t)(m->ng + 1) * sizeof(*m->g));
		memset(&m->g[i], 0, sizeof(m->g[i]));
		m->g[i].model = key ? xstrdup(key) : NULL;
		m->ng++;
	}
	g = &m->g[i];
	if (g->n < m->capacity) {
		g->s = xrealloc(g->s, (size_t)m->capacity * sizeof(*g->s));
		memset(g->s + g->n, 0, (size_t)(m->capacity - g->n) * sizeof(*g->s));
		g->n = m->capacity;
	}
	return i;
}

/* A slot of g no conversation holds and no call uses, or -1. */
static int free_slot(const struct member *m, const struct group *g)
{
	int i;

	for (i = 0; i < m->capacity && i < g->n; i++)
		if (!g->s[i].holders && !g->s[i].busy)
			return i;
	return -1;
}

static int name_eq(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);

	if (!strcmp(a, b))
		return 1;
	/* Ollama resolves "x" as "x:latest" */
	if (la + 7 == lb && !strncmp(a, b, la) && !strcmp(b + la, ":latest"))
		return 1;
	return lb + 7 == la && !strncmp(a, b, lb) && !strcmp(a + lb, ":latest");
}

static int serves(const struct member *m, const char *model)
{
	const json_t *v; /* borrowed */
	size_t i;

	json_array_foreach(m->models, i, v)
	{
		if (json_is_string(v) && name_eq(json_string_value(v), model))
			return 1;
	}
	return 0;
}

/*
 * Which members of b a call for model may go to: those that are up and serve it; else those
 * that are up; else, when none is up, every member (the call then fails and says what to
 * start); none while a member has not been probed yet. Writes 1 into ok[i] for each; lock
 * held.
 */
static void eligible(const struct bend *b, const char *model, int *ok)
{
	int any_up = 0, any_serving = 0;
	size_t i;

	/* until the first probe has answered, a member's slots are not known: a conversation
	 * placed now could pin both its roles to one slot for good (the probe wakes waiters) */
	for (i = 0; i < b->nm; i++)
		if (!strcmp(b->m[i].status, "unknown")) {
			memset(ok, 0, b->nm * sizeof(*ok));
			return;
		}
	for (i = 0; i < b->nm; i++) {
		int up = !strcmp(b->m[i].status, "up");
		any_up |= up;
		any_serving |= up && serves(&b->m[i], model);
	}
	for (i = 0; i < b->nm; i++) {
		int up = !strcmp(b->m[i].status, "up");
		ok[i] = !any_up || (up && (!any_serving || serves(&b->m[i], model)));
	}
}

/* Slots held by conversations on m (in every group). Lock held. */
static int held(const struct member *m)
{
	int g, s, n = 0;

	for (g = 0; g < m->ng; g++)
		for (s = 0; s < m->g[g].n; s++)
			n += m->g[g].s[s].holders > 0;
	return n;
}

/* Whether the lease has a role other than skip on m. */
static int lease_on(const struct fleet_lease *l, int skip, const struct member *m)
{
	int r;

	for (r = 0; r < FLEET_NROLES; r++)
		if (r != skip && l->role[r].m == m)
			return 1;
	return 0;
}

/*
 * A slot on one of b's members for role r of lease l, taken (holders + 1), or 0 when none
 * has room. A free slot first, on the member of the conversation's other role, else on the
 * member with the most of them, and of those the one whose slots are least held in all its
 * groups (an Ollama member keeps a group per model: two conversations of other models
 * spread over the pool rather than share one member's GPU); else, in a group too
 * small for both roles, the slot the conversation's other role holds; else, on a member whose
 * max_conversations allows one more, its least held slot (overcommitted on purpose). Lock
 * held.
 */
static int take_for_role(struct bend *b, const char *model, struct fleet_lease *l, int r)
{
	int ok[b->nm ? b->nm : 1];
	struct member *best = NULL;
	int best_g = -1, best_s = -1, best_n = 0, best_held = 0, k, s;
	size_t i;

	eligible(b, model, ok);
	/* a waiting one-shot call gets the next free slot, so no conversation takes it */
	for (i = 0; i < b->nm && !b->oneshot_waiting; i++) {
		struct member *m = &b->m[i];
		int gi, h, nfree = 0;

		if (!ok[i])
			continue;
		gi = group_of(m, model);
		for (k = 0; k < m->capacity; k++)
			nfree += !m->g[gi].s[k].holders && !m->g[gi].s[k].busy;
		/* the conversation's other role is there: keep the conversation together */
		if (nfree && lease_on(l, r, m))
			nfree = INT_MAX;
		if (!nfree || nfree < best_n)
			continue;
		h = held(m);
		if (nfree > best_n || h < best_held) {
			best = m, best_g = gi, best_s = free_slot(m, &m->g[gi]), best_n = nfree;
			best_held = h;
		}
	}
	for (k = 0; !best && k < FLEET_NROLES; k++) {
		struct member *m = l->role[k].m;

		if (k != r && m && m->b == b && m->capacity < FLEET_NROLES &&
		    l->role[k].group == group_of(m, model))
			best = m, best_g = l->role[k].group, best_s = l->role[k].slot;
	}
	for (i = 0; !best_n && i < b->nm && !b->oneshot_waiting; i++) {
		struct member *m = &b->m[i];
		int gi;

		if (best || !ok[i] || !m->cfg.max_conversations ||
		    m->conversations + !lease_on(l, r, m) > m->cfg.max_conversations)
			continue;
		gi = group_of(m, model);
		/* the least held slot, searched from a place that differs by role and by
		 * conversation, so that conversations in step do not call the same slot */
		for (s = (r + m->conversations) % m->capacity, k = 0; k < m->capacity; k++) {
			int c = (r + m->conversations + k) % m->capacity;

			if (m->g[gi].s[c].holders < m->g[gi].s[s].holders)
				s = c;
		}
		best = m, best_g = gi, best_s = s;
	}
	if (!best || best_s < 0)
		return 0;
	best->g[best_g].s[best_s].holders++;
	l->role[r].m = best;
	l->role[r].group = best_g;
	l->role[r].slot = best_s;
	l->role[r].expect_cached = 0;
	return 1;
}

/* Lock held. */
static void drop_role(struct fleet_lease *l, int r)
{
	struct fleet_role *x = &l->role[r];

	if (!x->m)
		return;
	x->m->g[x->group].s[x->slot].holders--;
	if (!lease_on(l, r, x->m))
		x->m->conversations--;
	x->m = NULL;
}

int fleet_conv_try(struct fleet *f, const char *const backend[FLEET_NROLES],
		   const char *const model[FLEET_NROLES], struct fleet_lease *lease)
{
	int r, k;

	memset(lease, 0, sizeof(*lease));
	lease->f = f;
	pthread_mutex_lock(&f->lock);
	for (r = 0; r < FLEET_NROLES; r++) {
		struct bend *b = find(f, backend[r]);

		if (!b)
			continue;
		if (!take_for_role(b, model[r], lease, r)) {
			for (k = 0; k < r; k++)
				if (lease->role[k].m) {
					lease->role[k]
					    .m->g[lease->role[k].group]
					    .s[lease->role[k].slot]
					    .holders--;
					lease->role[k].m = NULL;
				}
			pthread_mutex_unlock(&f->lock);
			return 0;
		}
	}
	/* the conversation counts once on each member it is on */
	for (r = 0; r < FLEET_NROLES; r++) {
		for (k = 0; k < r && lease->role[k].m != lease->role[r].m; k++)
			;
		if (lease->role[r].m && k == r)
			lease->role[r].m->conversations++;
	}
	lease->held = 1;
	pthread_mutex_unlock(&f->lock);
	return 1;
}

void fleet_conv_release(struct fleet_lease *l)
{
	struct fleet *f = l->f;
	int r;

	if (!f || !l->held)
		return;
	pthread_mutex_lock(&f->lock);
	for (r = 0; r < FLEET_NROLES; r++)
		drop_role(l, r);
	l->held = 0;
	pthread_cond_broadcast(&f->freed);
	pthread_mutex_unlock(&f->lock);
	room(f);
}

static void pin(struct member *m, int slot, struct chat_req *req)
{
	req->be = &m->cfg;
	req->pinned = m->cfg.kind == BACKEND_LLAMA;
	req->id_slot = req->pinned ? slot : 0;
}

int fleet_call_begin(struct fleet_lease *l, int role, const atomic_int *cancel,
		     struct chat_req *req)
{
	struct fleet_role *x = l ? &l->role[role] : NULL;
	struct fleet *f = l ? l->f : NULL;
	int rc = 0;

	if (!f || !x->m)
		return 0; /* the backend is not configured: the engine has failed the job */
	pthread_mutex_lock(&f->lock);
	x->m->b->waiting++;
	/* only an overcommitted slot can be in use by another conversation's call */
	while (x->m->g[x->group].s[x->slot].busy) {
		if ((cancel && atomic_load(cancel)) || f->stopping) {
			rc = -1;
			break;
		}
		pthread_cond_wait(&f->freed, &f->lock);
	}
	x->m->b->waiting--;
	if (rc == 0) {
		x->m->g[x->group].s[x->slot].busy = 1;
		x->m->in_flight++;
		pin(x->m, x->slot, req);
	}
	pthread_mutex_unlock(&f->lock);
	return rc;
}

void fleet_call_end(struct fleet_lease *l, int role, const struct chat_metrics *cm)
{
	struct fleet_role *x = l ? &l->role[role] : NULL;
	struct fleet *f = l ? l->f : NULL;
	const char *name;

	if (!f || !x->m)
		return;
	pthread_mutex_lock(&f->lock);
	x->m->g[x->group].s[x->slot].busy = 0;
	x->m->in_flight--;
	name = x->m->b->cfg->name;
	pthread_cond_broadcast(&f->freed);
	if (cm && cm->prompt_tokens > 0 && cm->cached_tokens >= 0) {
		/* the slot held this role's last prompt and reply: most of it should be cached */
		int lost = x->expect_cached > 0 && cm->cached_tokens * 2 < x->expect_cached;

		metrics_backend_cache(name, cm->prompt_tokens, cm->cached_tokens, lost);
		if (lost)
			log_info("prompt cache lost",
				 "backend=%s url=%s slot=%d expected=%ld cached=%ld", name,
				 x->m->cfg.url, x->slot, x->expect_cached, cm->cached_tokens);
		x->expect_cached =
		    cm->prompt_tokens + (cm->completion_tokens > 0 ? cm->completion_tokens : 0);
	}
	pthread_mutex_unlock(&f->lock);
}

int fleet_conv_move(struct fleet_lease *l, int role, char *note, size_t size)
{
	struct fleet_role *x = l ? &l->role[role] : NULL;
	struct fleet *f = l ? l->f : NULL;
	struct member *old = x ? x->m : NULL, *to = NULL;
	const char *model;
	int gi = -1, s = -1;
	size_t i;

	if (!f || !old || old->b->nm < 2)
		return 0;
	pthread_mutex_lock(&f->lock);
	model = old->g[x->group].model;
	for (i = 0; i < old->b->nm && !to; i++) {
		struct member *m = &old->b->m[i];

		if (m == old || strcmp(m->status, "up") != 0)
			continue;
		gi = group_of(m, model ? model : "");
		if ((s = free_slot(m, &m->g[gi])) >= 0)
			to = m;
	}
	if (!to) {
		pthread_mutex_unlock(&f->lock);
		return 0;
	}
	drop_role(l, role);
	if (!lease_on(l, role, to))
		to->conversations++;
	to->g[gi].s[s].holders++;
	x->m = to;
	x->group = gi;
	x->slot = s;
	x->expect_cached = 0;
	snprintf(note, size, "member %s failed; continued on member %s with a cold prompt",
		 old->cfg.url, to->cfg.url);
	log_warn("conversation moved", "backend=%s from=%s to=%s", old->b->cfg->name, old->cfg.url,
		 to->cfg.url);
	pthread_cond_broadcast(&f->freed);
	pthread_mutex_unlock(&f->lock);
	room(f);
	return 1;
}

/* A slot of group gi of m that own (a lease) holds and no call uses, or -1. Lock held. */
static int own_slot(const struct fleet_lease *own, const struct member *m, int gi)
{
	int r;

	for (r = 0; own && own->held && r < FLEET_NROLES; r++)
		if (own->role[r].m == m && own->role[r].group == gi &&
		    !m->g[gi].s[own->role[r].slot].busy)
			return own->role[r].slot;
	return -1;
}

int fleet_oneshot_acquire(struct fleet *f, const char *backend, const char *model,
			  const atomic_int *cancel, struct fleet_call *call, struct perr *e)
{
	return fleet_oneshot_acquire_own(f, NULL, backend, model, cancel, call, e);
}

int fleet_oneshot_acquire_own(struct fleet *f, const struct fleet_lease *own, const char *backend,
			      const char *model, const atomic_int *cancel, struct fleet_call *call,
			      struct perr *e)
{
	struct bend *b = find(f, backend);
	int counted = 0, rc = -1;

	memset(call, 0, sizeof(*call));
	if (!b)
		return perr_set(e, PERR_NOT_FOUND, "backend '%s' is not configured",
				backend ? backend : "");
	pthread_mutex_lock(&f->lock);
	for (;;) {
		int ok[b->nm];
		size_t i;

		eligible(b, model, ok);
		for (i = 0; i < b->nm && !call->m; i++) {
			struct member *m = &b->m[i];
			int gi, s;

			if (!ok[i])
				continue;
			gi = group_of(m, model);
			if ((s = free_slot(m, &m->g[gi])) < 0 && (s = own_slot(own, m, gi)) < 0)
				continue;
			m->g[gi].s[s].busy = 1;
			m->in_flight++;
			call->m = m;
			call->group = gi;
			call->slot = s;
			call->be = &m->cfg;
			call->pinned = m->cfg.kind == BACKEND_LLAMA;
			call->id_slot = call->pinned ? s : 0;
		}
		if (call->m) {
			rc = 0;
			break;
		}
		if ((cancel && atomic_load(cancel)) || f->stopping) {
			perr_set(e, PERR_CANCELLED,
				 "cancelled while waiting for a free slot on '%s'", backend);
			break;
		}
		if (!counted) {
			counted = 1;
			b->waiting++;
			b->oneshot_waiting++;
		}
		pthread_cond_wait(&f->freed, &f->lock);
	}
	if (counted) {
		b->waiting--;
		b->oneshot_waiting--;
	}
	pthread_mutex_unlock(&f->lock);
	/* conversations held back for this call may start again */
	if (counted)
		room(f);
	return rc;
}

void fleet_oneshot_release(struct fleet *f, struct fleet_call *call)
{
	if (!call->m)
		return;
	pthread_mutex_lock(&f->lock);
	call->m->g[call->group].s[call->slot].busy = 0;
	call->m->in_flight--;
	call->m = NULL;
	pthread_cond_broadcast(&f->freed);
	pthread_mutex_unlock(&f->lock);
	room(f);
}

void fleet_call_pin(const struct fleet_call *call, struct chat_req *req)
{
	req->be = call->be;
	req->pinned = call->pinned;
	req->id_slot = call->id_slot;
}

static void probe_one(struct fleet *f, struct member *m, CURL *curl)
{
	struct perr e = {0};
	json_t *models = NULL;
	int slots = 0, rc, more = 0;

	rc = backend_probe(curl, &m->cfg, &models, &slots, &e);
	pthread_mutex_lock(&f->lock);
	json_decref(m->models);
	m->models = models; /* stolen */
	m->checked_at = util_now_us();
	if (rc == 0) {
		int cap;

		if (strcmp(m->status, "up") != 0) {
			log_info("backend up", "backend=%s url=%s", m->cfg.name, m->cfg.url);
			more = 1;
		}
		snprintf(m->status, sizeof(m->status), "up");
		m->error[0] = '\0';
		m->slots = slots;
		/* llama-server: follow its slot count (a restart may change -np) */
		if ((cap = member_capacity(m)) != m->capacity) {
			more |= cap > m->capacity;
			m->capacity = cap;
		}
	} else {
		const char *st = e.code == PERR_BACKEND_BUSY ? "loading" : "down";
		if (strcmp(m->status, st) != 0)
			log_warn("backend not ready", "backend=%s url=%s status=%s error=\"%s\"",
				 m->cfg.name, m->cfg.url, st, e.msg);
		/* a member that went down frees the others for the jobs that waited on it */
		more |= !strcmp(m->status, "up") || !strcmp(m->status, "unknown");
		snprintf(m->status, sizeof(m->status), "%s", st);
		snprintf(m->error, sizeof(m->error), "%s", e.msg);
	}
	if (more)
		pthread_cond_broadcast(&f->freed);
	pthread_mutex_unlock(&f->lock);
	if (more)
		room(f);
}

static void *monitor_main(void *arg)
{
	struct fleet *f = arg;
	CURL *curl = curl_easy_init();
	struct timespec ts;
	size_t i, k;

	pthread_mutex_lock(&f->lock);
	while (!f->stopping) {
		pthread_mutex_unlock(&f->lock);
		for (i = 0; i < f->n; i++)
			for (k = 0; k < f->b[i].nm; k++)
				probe_one(f, &f->b[i].m[k], curl);
		pthread_mutex_lock(&f->lock);
		if (f->stopping)
			break;
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += PROBE_INTERVAL_MS / 1000;
		pthread_cond_timedwait(&f->tick, &f->lock, &ts);
	}
	pthread_mutex_unlock(&f->lock);
	curl_easy_cleanup(curl);
	return NULL;
}

struct fleet *fleet_start(const struct backend_cfg *cfgs, size_t n)
{
	struct fleet *f = xcalloc(1, sizeof(*f));
	size_t i, k;

	pthread_mutex_init(&f->lock, NULL);
	pthread_mutex_init(&f->room_lock, NULL);
	pthread_cond_init(&f->freed, NULL);
	pthread_cond_init(&f->tick, NULL);
	f->n = n;
	f->b = xcalloc(n ? n : 1, sizeof(*f->b));
	for (i = 0; i < n; i++) {
		struct bend *b = &f->b[i];

		b->cfg = &cfgs[i];
		b->nm = cfgs[i].nurls ? cfgs[i].nurls : 1;
		b->m = xcalloc(b->nm, sizeof(*b->m));
		for (k = 0; k < b->nm; k++) {
			struct member *m = &b->m[k];

			m->cfg = cfgs[i]; /* shallow: the strings stay the config's */
			if (cfgs[i].nurls)
				m->cfg.url = cfgs[i].urls[k];
			m->b = b;
			m->capacity = member_capacity(m);
			snprintf(m->status, sizeof(m->status), "unknown");
		}
		metrics_backend_series(cfgs[i].name);
	}
	if (pthread_create(&f->monitor, NULL, monitor_main, f) != 0) {
		log_error("cannot start the backend monitor", "%s", "");
		abort();
	}
	return f;
}

void fleet_stop(struct fleet *f)
{
	size_t i, k;
	int g;

	if (!f)
		return;
	pthread_mutex_lock(&f->lock);
	f->stopping = 1;
	pthread_cond_broadcast(&f->tick);
	pthread_cond_broadcast(&f->freed);
	pthread_mutex_unlock(&f->lock);
	pthread_join(f->monitor, NULL);
	for (i = 0; i < f->n; i++) {
		for (k = 0; k < f->b[i].nm; k++) {
			struct member *m = &f->b[i].m[k];

			json_decref(m->models);
			for (g = 0; g < m->ng; g++) {
				free(m->g[g].model);
				free(m->g[g].s);
			}
			free(m->g);
		}
		free(f->b[i].m);
	}
	free(f->b);
	pthread_mutex_destroy(&f->lock);
	pthread_mutex_destroy(&f->room_lock);
	pthread_cond_destroy(&f->freed);
	pthread_cond_destroy(&f->tick);
	free(f);
}

int fleet_limit(struct fleet *f, const char *name)
{
	struct bend *b;
	size_t i;
	int limit = 0;

	pthread_mutex_lock(&f->lock);
	if ((b = find(f, name)))
		for (i = 0; i < b->nm; i++)
			limit += b->m[i].capacity;
	pthread_mutex_unlock(&f->lock);
	return limit;
}

static json_t *checked_json(int64_t at)
{
	char ts[32];

	if (at <= 0)
		return json_null();
	util_iso8601(at, ts);
	return json_string(ts);
}

/* A backend's status is its best member's: up, then loading, down, unknown. */
static size_t status_rank(const char *st)
{
	static const char *const rank[] = {"up", "loading", "down", "unknown"};
	size_t r;

	for (r = 0; r < ARRAY_SIZE(rank) && strcmp(st, rank[r]); r++)
		;
	return r;
}

/* Every json_object_set_new() below steals the new value. */
json_t *fleet_status_json(struct fleet *f)
{
	json_t *arr = json_array();
	size_t i, k;

	pthread_mutex_lock(&f->lock);
	for (i = 0; i < f->n; i++) {
		struct bend *b = &f->b[i];
		json_t *o = json_object(), *members = json_array(), *models = json_array(), *v;
		int slots = 0, nheld = 0, convs = 0, flight = 0;
		const struct member *best = &b->m[0];
		int64_t checked = 0;
		size_t j;

		for (k = 0; k < b->nm; k++) {
			struct member *m = &b->m[k];
			json_t *mo = json_object();
			int h = held(m);

			/* what can be used now: a member that is down offers nothing */
			slots += !strcmp(m->status, "up") ? m->capacity : 0;
			nheld += h;
			convs += m->conversations;
			flight += m->in_flight;
			if (m->checked_at > checked)
				checked = m->checked_at;
			if (status_rank(m->status) < status_rank(best->status))
				best = m;
			json_array_foreach(m->models, j, v)
			{
				size_t q;
				int dup = 0;
				json_t *w;
				json_array_foreach(models, q, w)
				{
					dup |= json_equal(v, w);
				}
				if (!dup)
					json_array_append(models,
							  v); /* borrowed: append, not _new */
			}
			json_object_set_new(mo, "url", json_string(m->cfg.url));
			json_object_set_new(mo, "status", json_string(m->status));
			json_object_set_new(mo, "slots", json_integer(m->capacity));
			json_object_set_new(mo, "slots_held", json_integer(h));
			json_object_set_new(mo, "conversations", json_integer(m->conversations));
			json_object_set_new(mo, "in_flight", json_integer(m->in_flight));
			json_object_set_new(mo, "models",
					    m->models ? json_deep_copy(m->models) : json_array());
			json_object_set_new(mo, "error",
					    m->error[0] ? json_string(m->error) : json_null());
			json_object_set_new(mo, "checked_at", checked_json(m->checked_at));
			json_array_append_new(members, mo);
		}
		json_object_set_new(o, "name", json_string(b->cfg->name));
		json_object_set_new(o, "kind", json_string(backend_kind_name(b->cfg->kind)));
		json_object_set_new(o, "url", json_string(b->m[0].cfg.url));
		json_object_set_new(o, "max_concurrency", json_integer(b->m[0].capacity));
		json_object_set_new(o, "max_conversations",
				    b->cfg->max_conversations
					? json_integer(b->cfg->max_conversations)
					: json_null());
		json_object_set_new(o, "slots", json_integer(slots));
		json_object_set_new(o, "slots_held", json_integer(nheld));
		json_object_set_new(o, "conversations", json_integer(convs));
		json_object_set_new(o, "in_flight", json_integer(flight));
		json_object_set_new(o, "waiting", json_integer(b->waiting));
		json_object_set_new(o, "status", json_string(best->status));
		json_object_set_new(o, "models", models);
		json_object_set_new(o, "error",
				    best->error[0] ? json_string(best->error) : json_null());
		json_object_set_new(o, "checked_at", checked_json(checked));
		json_object_set_new(o, "members", members);
		json_array_append_new(arr, o);
	}
	pthread_mutex_unlock(&f->lock);
	return arr;
}
