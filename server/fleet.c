/*
 * fleet.c - call slots and health of the configured backends. See fleet.h.
 */
#include "server/fleet.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "server/log.h"

#define PROBE_INTERVAL_MS 5000

struct member {
	const struct backend_cfg *cfg;
	int limit;     /* effective max_concurrency */
	int in_flight; /* calls holding a slot */
	int waiting;   /* callers waiting for a slot */
	/* health, written by the monitor */
	char status[16];
	char error[sizeof(((struct perr *)0)->msg)];
	json_t *models; /* owned; array of strings or NULL */
	int64_t checked_at;
	int slots; /* llama-server total_slots as last seen */
};

struct fleet {
	pthread_mutex_t lock; /* guards every member field and stopping */
	pthread_cond_t freed; /* a slot was released, or a poke */
	pthread_cond_t tick;  /* wakes the monitor early to stop */
	struct member *m;
	size_t n;
	int stopping;
	pthread_t monitor;
};

static struct member *find(struct fleet *f, const char *name)
{
	size_t i;

	for (i = 0; i < f->n; i++)
		if (strcmp(f->m[i].cfg->name, name) == 0)
			return &f->m[i];
	return NULL;
}

const struct backend_cfg *fleet_find(struct fleet *f, const char *name)
{
	struct member *m = find(f, name);

	return m ? m->cfg : NULL;
}

const char *fleet_default_name(struct fleet *f)
{
	return f->n ? f->m[0].cfg->name : NULL;
}

int fleet_acquire(struct fleet *f, const char *name, const atomic_int *cancel)
{
	struct member *m = find(f, name);
	int rc = 0;

	if (!m)
		return -1;
	pthread_mutex_lock(&f->lock);
	m->waiting++;
	while (m->in_flight >= m->limit) {
		if (cancel && atomic_load(cancel)) {
			rc = -1;
			break;
		}
		pthread_cond_wait(&f->freed, &f->lock);
	}
	m->waiting--;
	if (rc == 0)
		m->in_flight++;
	pthread_mutex_unlock(&f->lock);
	return rc;
}

void fleet_release(struct fleet *f, const char *name)
{
	struct member *m = find(f, name);

	if (!m)
		return;
	pthread_mutex_lock(&f->lock);
	m->in_flight--;
	pthread_cond_broadcast(&f->freed);
	pthread_mutex_unlock(&f->lock);
}

void fleet_poke(struct fleet *f)
{
	pthread_mutex_lock(&f->lock);
	pthread_cond_broadcast(&f->freed);
	pthread_mutex_unlock(&f->lock);
}

static void probe_one(struct fleet *f, struct member *m, CURL *curl)
{
	struct perr e = {0};
	json_t *models = NULL;
	int slots = 0, rc;

	rc = backend_probe(curl, m->cfg, &models, &slots, &e);
	pthread_mutex_lock(&f->lock);
	json_decref(m->models);
	m->models = models; /* stolen */
	m->checked_at = util_now_us();
	if (rc == 0) {
		if (strcmp(m->status, "up") != 0)
			log_info("backend up", "backend=%s url=%s", m->cfg->name, m->cfg->url);
		snprintf(m->status, sizeof(m->status), "up");
		m->error[0] = '\0';
		m->slots = slots;
		/* llama-server: follow its slot count unless the config pinned a limit */
		if (!m->cfg->max_concurrency && slots > 0 && m->limit != slots) {
			m->limit = slots;
			pthread_cond_broadcast(&f->freed);
		}
	} else {
		const char *st = e.code == PERR_BACKEND_BUSY ? "loading" : "down";
		if (strcmp(m->status, st) != 0)
			log_warn("backend not ready", "backend=%s url=%s status=%s error=\"%s\"",
				 m->cfg->name, m->cfg->url, st, e.msg);
		snprintf(m->status, sizeof(m->status), "%s", st);
		snprintf(m->error, sizeof(m->error), "%s", e.msg);
	}
	pthread_mutex_unlock(&f->lock);
}

static void *monitor_main(void *arg)
{
	struct fleet *f = arg;
	CURL *curl = curl_easy_init();
	struct timespec ts;
	size_t i;

	pthread_mutex_lock(&f->lock);
	while (!f->stopping) {
		pthread_mutex_unlock(&f->lock);
		for (i = 0; i < f->n; i++)
			probe_one(f, &f->m[i], curl);
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
	size_t i;

	pthread_mutex_init(&f->lock, NULL);
	pthread_cond_init(&f->freed, NULL);
	pthread_cond_init(&f->tick, NULL);
	f->n = n;
	f->m = xcalloc(n, sizeof(*f->m));
	for (i = 0; i < n; i++) {
		f->m[i].cfg = &cfgs[i];
		f->m[i].limit = cfgs[i].max_concurrency > 0 ? cfgs[i].max_concurrency : 1;
		snprintf(f->m[i].status, sizeof(f->m[i].status), "unknown");
	}
	if (pthread_create(&f->monitor, NULL, monitor_main, f) != 0) {
		log_error("cannot start the backend monitor", "%s", "");
		abort();
	}
	return f;
}

void fleet_stop(struct fleet *f)
{
	size_t i;

	if (!f)
		return;
	pthread_mutex_lock(&f->lock);
	f->stopping = 1;
	pthread_cond_broadcast(&f->tick);
	pthread_cond_broadcast(&f->freed);
	pthread_mutex_unlock(&f->lock);
	pthread_join(f->monitor, NULL);
	for (i = 0; i < f->n; i++)
		json_decref(f->m[i].models);
	free(f->m);
	pthread_mutex_destroy(&f->lock);
	pthread_cond_destroy(&f->freed);
	pthread_cond_destroy(&f->tick);
	free(f);
}

int fleet_limit(struct fleet *f, const char *name)
{
	struct member *m;
	int limit = 0;

	pthread_mutex_lock(&f->lock);
	if ((m = find(f, name)))
		limit = m->limit;
	pthread_mutex_unlock(&f->lock);
	return limit;
}

json_t *fleet_status_json(struct fleet *f)
{
	json_t *arr = json_array();
	char ts[32];
	size_t i;

	pthread_mutex_lock(&f->lock);
	for (i = 0; i < f->n; i++) {
		struct member *m = &f->m[i];
		json_t *o = json_object();
		json_object_set_new(o, "name", json_string(m->cfg->name));
		json_object_set_new(o, "kind", json_string(backend_kind_name(m->cfg->kind)));
		json_object_set_new(o, "url", json_string(m->cfg->url));
		json_object_set_new(o, "max_concurrency", json_integer(m->limit));
		json_object_set_new(o, "in_flight", json_integer(m->in_flight));
		json_object_set_new(o, "waiting", json_integer(m->waiting));
		json_object_set_new(o, "status", json_string(m->status));
		json_object_set_new(o, "models", m->models ? json_deep_copy(m->models) : json_array());
		json_object_set_new(o, "error", m->error[0] ? json_string(m->error) : json_null());
		if (m->checked_at > 0) {
			util_iso8601(m->checked_at, ts);
			json_object_set_new(o, "checked_at", json_string(ts));
		} else {
			json_object_set_new(o, "checked_at", json_null());
		}
		json_array_append_new(arr, o);
	}
	pthread_mutex_unlock(&f->lock);
	return arr;
}
