/*
 * check_sched.c - scheduling by slots (DESIGN §8), against the real parleyd and
 * fake llama-servers with slots and prompt caches: no more conversations run
 * than the slots hold, each conversation-role's calls name one slot and find
 * their prefix cached there; a pool keeps a conversation on its member, moves
 * it when that member dies and uses the member again once it is back; a batch
 * and a single job submitted after it take turns; a one-shot call (the judge)
 * never takes a slot a running conversation holds. With SCHED_FIGURES=1 it
 * also prints the cache share per job at 1, 2, 4 and 8 conversations at once
 * (run it against any parleyd with PARLEYD=...).
 */
#include <check.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tests/harness.h"

#define MAXF 3

static struct proc fakes[MAXF], parleyd;
static int nfakes;
static const char *be_kind = "llama-server"; /* the kind start_parleyd gives the backend */

static void start_fakes(int n, const char *slots, const char *reply_ms)
{
	const char *args[] = {"--slots", slots, "--reply-ms", reply_ms, NULL};
	int i;

	nfakes = n;
	for (i = 0; i < n; i++)
		ck_assert_int_eq(harness_fake_start(&fakes[i], args), 0);
}

/* parleyd with one backend "llama" of kind be_kind whose members are the fakes. */
static void start_parleyd(const char *workers, const char *extra)
{
	char spec[512], dbpath[512];
	const char *args[] = {"--backend", spec, "--workers", workers, NULL};
	size_t len;
	int i;
	static int seq;

	len = (size_t)snprintf(spec, sizeof(spec), "name=llama,kind=%s", be_kind);
	for (i = 0; i < nfakes; i++)
		len += (size_t)snprintf(spec + len, sizeof(spec) - len, ",url=http://127.0.0.1:%d",
					fakes[i].port);
	snprintf(spec + len, sizeof(spec) - len, "%s", extra);
	snprintf(dbpath, sizeof(dbpath), "%s/sched-%d-%d.db", harness_tmpdir(), (int)getpid(),
		 seq++);
	ck_assert_int_eq(harness_parleyd_start(&parleyd, dbpath, args), 0);
}

static void stop_all(void)
{
	int i;

	harness_stop(&parleyd, SIGTERM);
	for (i = 0; i < nfakes; i++)
		if (fakes[i].pid)
			harness_stop(&fakes[i], SIGTERM);
}

static const char *str(const json_t *o, const char *key)
{
	const char *s = json_string_value(json_object_get(o, key));

	return s ? s : "";
}

static long num(const json_t *o, const char *key)
{
	return (long)json_integer_value(json_object_get(o, key));
}

static char *submit(const char *iv, const char *cd, int max_turns, const char *extra)
{
	char body[768];
	json_t *j = NULL;
	char *id;
	int st;

	snprintf(body, sizeof(body),
		 "{\"scenario\":\"response_speed_optimization\","
		 "\"interviewer\":{\"model\":\"%s\",\"backend\":\"llama\"},"
		 "\"candidate\":{\"model\":\"%s\",\"backend\":\"llama\"},\"max_turns\":%d%s}",
		 iv, cd, max_turns, extra);
	st = harness_http_json(parleyd.port, "POST", "/v1/jobs", body, &j);
	ck_assert_msg(st == 202, "submit: %d", st);
	id = xstrdup(str(j, "id"));
	json_decref(j);
	return id;
}

/* Waits for the job to end and checks that it succeeded; returns it. */
static json_t *done(const char *id)
{
	json_t *j = harness_wait_job(parleyd.port, id, 120000);

	ck_assert_ptr_nonnull(j);
	ck_assert_msg(!strcmp(str(j, "status"), "succeeded"), "job %s ended %s: %s", id,
		      str(j, "status"), json_dumps(json_object_get(j, "error"), 0));
	return j;
}

static json_t *transcript(const char *id)
{
	char path[96];
	json_t *t = NULL;

	snprintf(path, sizeof(path), "/v1/jobs/%s/transcript", id);
	ck_assert_int_eq(harness_http_json(parleyd.port, "GET", path, NULL, &t), 200);
	return t;
}

/* The share of prompt tokens the server took from its cache, turns 3 on. */
static double cache_share(const char *id)
{
	json_t *t = transcript(id), *conv = json_object_get(t, "conversation"), *turn;
	long prompt = 0, cached = 0;
	size_t i;

	json_array_foreach(conv, i, turn)
	{
		json_t *m = json_object_get(turn, "metrics");

		if (num(turn, "turn") < 3)
			continue;
		prompt += num(m, "prompt_tokens");
		cached += num(m, "cached_tokens");
	}
	json_decref(t);
	return prompt ? (double)cached / (double)prompt : 0.0;
}

static json_t *fake_log(int i)
{
	json_t *log = NULL;

	ck_assert_int_eq(harness_http_json(fakes[i].port, "GET", "/_fake/requests", NULL, &log),
			 200);
	return log;
}

/* The member of fake i as /v1/backends shows it. */
static json_t *member(json_t *backends, int i)
{
	json_t *b = json_array_get(json_object_get(backends, "items"), 0), *m;
	char url[64];
	size_t k;

	snprintf(url, sizeof(url), "http://127.0.0.1:%d", fakes[i].port);
	json_array_foreach(json_object_get(b, "members"), k, m)
	{
		if (!strcmp(str(m, "url"), url))
			return m;
	}
	return NULL;
}

/* Waits until /v1/backends shows fake i's member with status st. */
static int wait_member(int i, const char *st, long timeout_ms)
{
	int64_t deadline = util_mono_us() + timeout_ms * 1000;

	while (util_mono_us() < deadline) {
		json_t *b = NULL;
		int ok;

		ck_assert_int_eq(harness_http_json(parleyd.port, "GET", "/v1/backends", NULL, &b),
				 200);
		ok = member(b, i) && !strcmp(str(member(b, i), "status"), st);
		json_decref(b);
		if (ok)
			return 1;
		usleep(100000);
	}
	return 0;
}

/* Waits until /v1/backends shows the backend up (any parleyd, with or without members). */
static int wait_backend_up(long timeout_ms)
{
	int64_t deadline = util_mono_us() + timeout_ms * 1000;

	while (util_mono_us() < deadline) {
		json_t *b = NULL;
		int ok;

		harness_http_json(parleyd.port, "GET", "/v1/backends", NULL, &b);
		ok = !strcmp(str(json_array_get(json_object_get(b, "items"), 0), "status"), "up");
		json_decref(b);
		if (ok)
			return 1;
		usleep(100000);
	}
	return 0;
}

/*
 * Four conversations on one 4-slot server: at most two run at once (two slots each), never
 * more slots held than it has, every call names the slot its role holds (one slot per model
 * here), and turns 3 on find most of their prompt cached.
 */
START_TEST(slots_hold_conversations)
{
	char *ids[4], iv[16], cd[16];
	json_t *log, *e, *b = NULL;
	int slot_of[8], i, max_held = 0, polls = 0;
	long last_prompt[8];
	size_t k;

	start_fakes(1, "4", "60");
	start_parleyd("4", "");
	ck_assert(wait_member(0, "up", 10000));
	for (i = 0; i < 4; i++) {
		snprintf(iv, sizeof(iv), "iv-%d", i);
		snprintf(cd, sizeof(cd), "cd-%d", i);
		ids[i] = submit(iv, cd, 6, "");
	}
	/* while they run, the slots held never pass the slots */
	for (;;) {
		json_t *m;
		int running = 0;

		ck_assert_int_eq(harness_http_json(parleyd.port, "GET", "/v1/backends", NULL, &b),
				 200);
		m = member(b, 0);
		ck_assert_ptr_nonnull(m);
		ck_assert_int_eq(num(m, "slots"), 4);
		ck_assert_int_le(num(m, "slots_held"), 4);
		ck_assert_int_le(num(m, "conversations"), 2);
		if (num(m, "slots_held") > max_held)
			max_held = (int)num(m, "slots_held");
		json_decref(b);
		for (i = 0; i < 4; i++) {
			json_t *j = NULL;
			char path[64];

			snprintf(path, sizeof(path), "/v1/jobs/%s", ids[i]);
			harness_http_json(parleyd.port, "GET", path, NULL, &j);
			running += !strcmp(str(j, "status"), "queued") ||
				   !strcmp(str(j, "status"), "running");
			json_decref(j);
		}
		if (!running || ++polls > 1200)
			break;
		usleep(50000);
	}
	ck_assert_msg(max_held == 4, "two conversations never ran at once (max held %d)", max_held);
	for (i = 0; i < 4; i++) {
		json_decref(done(ids[i]));
		ck_assert_msg(cache_share(ids[i]) >= 0.6, "job %d cached %.2f of its prompts", i,
			      cache_share(ids[i]));
	}
	/* pinned: each model's calls carry one id_slot, the server used it, and found there the
	 * whole prompt of the role's previous call */
	for (i = 0; i < 8; i++)
		slot_of[i] = -1, last_prompt[i] = 0;
	log = fake_log(0);
	json_array_foreach(log, k, e)
	{
		const char *model = str(e, "model");
		int idx = (model[0] == 'c') * 4 + atoi(model + 3);

		ck_assert_msg(json_is_integer(json_object_get(e, "id_slot")),
			      "a call without id_slot");
		ck_assert_int_eq(num(e, "id_slot"), num(e, "slot"));
		ck_assert_int_eq(
		    json_is_true(json_object_get(json_object_get(e, "body"), "cache_prompt")), 1);
		ck_assert_msg(num(e, "cached_tokens") >= last_prompt[idx],
			      "%s: %ld tokens cached, but its previous prompt had %ld", model,
			      num(e, "cached_tokens"), last_prompt[idx]);
		last_prompt[idx] = num(e, "prompt_tokens");
		if (slot_of[idx] < 0)
			slot_of[idx] = (int)num(e, "slot");
		ck_assert_msg(slot_of[idx] == num(e, "slot"), "%s moved from slot %d to %ld", model,
			      slot_of[idx], num(e, "slot"));
	}
	json_decref(log);
	/* the backend's cache figure in /metrics */
	{
		char *text = NULL;
		const char *p;

		ck_assert_int_eq(harness_http(parleyd.port, "GET", "/metrics", NULL, NULL, &text),
				 200);
		p = strstr(text, "parley_backend_cache_hit_ratio{backend=\"llama\"} ");
		ck_assert_ptr_nonnull(p);
		ck_assert_msg(
		    atof(p + strlen("parley_backend_cache_hit_ratio{backend=\"llama\"} ")) > 0.5,
		    "%.80s", p);
		ck_assert_ptr_nonnull(
		    strstr(text, "parley_backend_prefix_lost_total{backend=\"llama\"} 0"));
		free(text);
	}
	for (i = 0; i < 4; i++)
		free(ids[i]);
	stop_all();
}
END_TEST

/* Waits until both fakes have had a call; whether they did. */
static int wait_spread(void)
{
	int i, on[2] = {0, 0};

	for (i = 0; i < 200 && !(on[0] && on[1]); i++) {
		int f;

		for (f = 0; f < 2; f++) {
			json_t *log = fake_log(f);

			on[f] = (int)json_array_size(log);
			json_decref(log);
		}
		usleep(50000);
	}
	return on[0] && on[1];
}

/*
 * A pool of two 2-slot members: two conversations go one to each member and stay there; the
 * second member dies mid-conversation and its conversation goes on on the first, with a note;
 * once the member is back it takes conversations again.
 */
START_TEST(pool_affinity_and_failover)
{
	const char *again[] = {"--slots", "2", "--reply-ms", "150", "--port", NULL, NULL};
	char *a, *b2, *c, *d, port[16], *dumped;
	json_t *log, *e, *t, *turn;
	int i, noted = 0;
	size_t k;

	start_fakes(2, "2", "150");
	start_parleyd("4", "");
	ck_assert(wait_member(0, "up", 10000) && wait_member(1, "up", 10000));
	a = submit("iv-a", "cd-a", 8, "");
	b2 = submit("iv-b", "cd-b", 8, "");
	/* both run, one on each member */
	ck_assert_msg(wait_spread(), "the conversations did not spread over the pool");
	/* kill the member of conversation b */
	log = fake_log(1);
	ck_assert(!strcmp(str(json_array_get(log, 0), "model"), "iv-b") ||
		  !strcmp(str(json_array_get(log, 0), "model"), "cd-b"));
	json_decref(log);
	usleep(400000);
	harness_stop(&fakes[1], SIGKILL);
	json_decref(done(a));
	json_decref(done(b2));
	/* a stayed on member 0 from start to end: all its eight turns were served there */
	log = fake_log(0);
	i = 0;
	json_array_foreach(log, k, e)
	{
		i += strstr(str(e, "model"), "-a") && !strcmp(str(e, "outcome"), "completed");
	}
	ck_assert_int_eq(i, 8);
	json_decref(log);
	t = transcript(b2);
	json_array_foreach(json_object_get(t, "conversation"), k, turn)
	{
		const char *note = str(turn, "note");

		if (strstr(note, "continued on member"))
			noted++;
	}
	dumped = json_dumps(t, 0);
	ck_assert_msg(noted >= 1, "no turn says the conversation moved: %.2000s", dumped);
	free(dumped);
	json_decref(t);
	/* the member comes back on its port and takes conversations again */
	snprintf(port, sizeof(port), "%d", fakes[1].port);
	again[5] = port;
	ck_assert_int_eq(harness_fake_start(&fakes[1], again), 0);
	ck_assert_int_eq(fakes[1].port, atoi(port));
	ck_assert_msg(wait_member(1, "up", 15000), "the member did not come back up");
	c = submit("iv-c", "cd-c", 4, "");
	d = submit("iv-d", "cd-d", 4, "");
	json_decref(done(c));
	json_decref(done(d));
	log = fake_log(1);
	ck_assert_msg(json_array_size(log) > 0, "the member that came back got no call");
	json_decref(log);
	free(a);
	free(b2);
	free(c);
	free(d);
	stop_all();
}
END_TEST

/*
 * The same pool with Ollama members: each member's capacity is its max_concurrency (2 here,
 * as OLLAMA_NUM_PARALLEL=2 would give), so one conversation runs on each; /v1/backends shows
 * both members with their slots and models; when one dies its conversation goes on on the
 * other from its next turn, with a note, and both succeed.
 */
START_TEST(ollama_pool_spreads_and_fails_over)
{
	char *a, *b2, *dumped;
	json_t *log, *bk = NULL, *t, *turn, *m;
	int i, noted = 0;
	size_t k;

	be_kind = "ollama";
	start_fakes(2, "2", "150");
	start_parleyd("4", ",max_concurrency=2");
	ck_assert(wait_member(0, "up", 10000) && wait_member(1, "up", 10000));
	ck_assert_int_eq(harness_http_json(parleyd.port, "GET", "/v1/backends", NULL, &bk), 200);
	for (i = 0; i < 2; i++) {
		m = member(bk, i);
		ck_assert_ptr_nonnull(m);
		ck_assert_int_eq(num(m, "slots"), 2);
		ck_assert_int_eq(num(m, "slots_held"), 0);
		ck_assert(json_array_size(json_object_get(m, "models")) > 0);
	}
	ck_assert_str_eq(str(json_array_get(json_object_get(bk, "items"), 0), "kind"), "ollama");
	json_decref(bk);
	a = submit("iv-a", "cd-a", 8, "");
	b2 = submit("iv-b", "cd-b", 8, "");
	ck_assert_msg(wait_spread(), "the conversations did not spread over the Ollama pool");
	/* while both run, each member shows its two slots held */
	ck_assert_int_eq(harness_http_json(parleyd.port, "GET", "/v1/backends", NULL, &bk), 200);
	for (i = 0; i < 2; i++)
		ck_assert_int_eq(num(member(bk, i), "slots_held"), 2);
	json_decref(bk);
	log = fake_log(1);
	ck_assert_str_eq(str(json_array_get(log, 0), "path"), "/api/chat");
	json_decref(log);
	usleep(400000);
	harness_stop(&fakes[1], SIGKILL);
	fakes[1].pid = 0;
	json_decref(done(a));
	json_decref(done(b2));
	t = transcript(b2);
	json_array_foreach(json_object_get(t, "conversation"), k, turn)
	{
		noted += strstr(str(turn, "note"), "continued on member") != NULL;
	}
	dumped = json_dumps(t, 0);
	ck_assert_msg(noted >= 1, "no turn says the conversation moved: %.2000s", dumped);
	free(dumped);
	json_decref(t);
	ck_assert(wait_member(1, "down", 10000));
	free(a);
	free(b2);
	stop_all();
	be_kind = "llama-server";
}
END_TEST

static int cmp_time(const json_t *a, const json_t *b)
{
	return strcmp(str(a, "started_at"), str(b, "started_at"));
}

/* A batch of eight on a server that runs one conversation at a time, then a single job: the
 * single job starts after at most two of the batch, not after all of it. */
START_TEST(batch_and_single_take_turns)
{
	char body[1024], path[96], *single;
	json_t *j = NULL, *batch, *s, *list = NULL, *x;
	int before = 0, i;
	size_t k;

	start_fakes(1, "2", "40");
	start_parleyd("2", "");
	ck_assert(wait_member(0, "up", 10000));
	snprintf(body, sizeof(body),
		 "{\"interviewer\":{\"model\":\"iv-batch\",\"backend\":\"llama\"},"
		 "\"candidates\":[");
	for (i = 0; i < 8; i++)
		snprintf(body + strlen(body), sizeof(body) - strlen(body),
			 "%s{\"model\":\"cd-%d\",\"backend\":\"llama\"}", i ? "," : "", i);
	snprintf(body + strlen(body), sizeof(body) - strlen(body),
		 "],\"scenarios\":[\"response_speed_optimization\"],\"max_turns\":3}");
	ck_assert_int_eq(harness_http_json(parleyd.port, "POST", "/v1/batches", body, &j), 202);
	batch = json_incref(json_object_get(j, "id"));
	json_decref(j);
	single = submit("iv-single", "cd-single", 3, "");
	s = done(single);
	snprintf(path, sizeof(path), "/v1/jobs?batch=%s&limit=50", json_string_value(batch));
	for (i = 0; i < 600; i++) {
		int finished = 0;

		json_decref(list);
		list = NULL;
		ck_assert_int_eq(harness_http_json(parleyd.port, "GET", path, NULL, &list), 200);
		json_array_foreach(json_object_get(list, "items"), k, x)
		{
			finished += !strcmp(str(x, "status"), "succeeded");
		}
		if (finished == 8)
			break;
		usleep(100000);
	}
	ck_assert_int_eq(json_array_size(json_object_get(list, "items")), 8);
	json_array_foreach(json_object_get(list, "items"), k, x)
	{
		ck_assert_str_eq(str(x, "status"), "succeeded");
		before += cmp_time(x, s) < 0;
	}
	ck_assert_msg(before <= 2, "the single job started after %d of the batch's 8 jobs", before);
	json_decref(list);
	json_decref(s);
	json_decref(batch);
	free(single);
	stop_all();
}
END_TEST

/*
 * A long conversation holds two of four slots while a short one ends and its judge grades
 * it: the judge's call takes a slot the long conversation does not hold, and the long one
 * keeps its prefix cached.
 */
START_TEST(oneshot_never_evicts)
{
	char *longj, *shortj;
	json_t *log, *e, *judge = NULL;
	int held[4] = {0, 0, 0, 0};
	int64_t first = -1, last = -1;
	size_t k;

	start_fakes(1, "4", "50");
	start_parleyd("3", "");
	ck_assert(wait_member(0, "up", 10000));
	longj = submit("iv-long", "cd-long", 14, "");
	usleep(200000);
	shortj = submit("iv-short", "cd-short", 3,
			",\"scoring\":\"judge\",\"judge\":{\"model\":\"judge-x\",\"backend\":"
			"\"llama\"}");
	json_decref(done(shortj));
	json_decref(done(longj));
	log = fake_log(0);
	json_array_foreach(log, k, e)
	{
		const char *model = str(e, "model");

		if (!strcmp(model, "judge-x")) {
			judge = json_incref(e);
		} else if (strstr(model, "-long")) {
			held[num(e, "slot")] = 1;
			if (first < 0)
				first = num(e, "received_at_ms");
			last = num(e, "finished_at_ms");
		}
	}
	ck_assert_ptr_nonnull(judge);
	ck_assert_msg(num(judge, "received_at_ms") > first && num(judge, "received_at_ms") < last,
		      "the judge did not run while the long conversation did");
	ck_assert_msg(json_is_integer(json_object_get(judge, "id_slot")), "the judge's call is not "
									  "pinned");
	ck_assert_msg(!held[num(judge, "slot")], "the judge took slot %ld of the conversation",
		      num(judge, "slot"));
	ck_assert_msg(cache_share(longj) >= 0.75, "the long conversation cached %.2f",
		      cache_share(longj));
	json_decref(judge);
	json_decref(log);
	free(longj);
	free(shortj);
	stop_all();
}
END_TEST

/* SCHED_FIGURES=1: the cache share per job at 1, 2, 4 and 8 conversations submitted at once
 * on a 2-slot server, printed for the README. */
START_TEST(figures)
{
	static const int conc[] = {1, 2, 4, 8};
	size_t c;
	int i;

	if (!getenv("SCHED_FIGURES"))
		return;
	for (c = 0; c < ARRAY_SIZE(conc); c++) {
		char *ids[8], iv[16], cd[16], workers[8];
		double sum = 0, lo = 1;
		int64_t t0 = util_mono_us();
		const char *fargs[] = {"--slots", "2", "--reply-ms", "30", "--prompt-ms-per-token",
				       "1",	  NULL};

		nfakes = 1;
		ck_assert_int_eq(harness_fake_start(&fakes[0], fargs), 0);
		snprintf(workers, sizeof(workers), "%d", conc[c]);
		start_parleyd(workers, "");
		ck_assert(wait_backend_up(10000));
		for (i = 0; i < conc[c]; i++) {
			snprintf(iv, sizeof(iv), "iv-%d", i);
			snprintf(cd, sizeof(cd), "cd-%d", i);
			ids[i] = submit(iv, cd, 7, "");
		}
		for (i = 0; i < conc[c]; i++) {
			double share;

			json_decref(done(ids[i]));
			share = cache_share(ids[i]);
			sum += share;
			lo = share < lo ? share : lo;
			free(ids[i]);
		}
		printf(
		    "figures: %d at once: cache share turns 3+ mean %.2f min %.2f, wall %.2f s\n",
		    conc[c], sum / conc[c], lo, (double)(util_mono_us() - t0) / 1e6);
		fflush(stdout);
		stop_all();
	}
}
END_TEST

int main(void)
{
	Suite *s = suite_create("sched");
	TCase *tc = tcase_create("sched");
	SRunner *sr;
	int failed;

	tcase_set_timeout(tc, 300);
	tcase_add_test(tc, slots_hold_conversations);
	tcase_add_test(tc, pool_affinity_and_failover);
	tcase_add_test(tc, ollama_pool_spreads_and_fails_over);
	tcase_add_test(tc, batch_and_single_take_turns);
	tcase_add_test(tc, oneshot_never_evicts);
	tcase_add_test(tc, figures);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	harness_cleanup();
	return failed ? 1 : 0;
}
