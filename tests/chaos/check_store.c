/*
 * check_store.c - the store under stress, against the real parleyd and the
 * fake backend: another process holding the database's write lock, a full
 * disk (a small tmpfs), a turn write that keeps failing, a second parleyd on
 * the same database, the database file deleted while parleyd runs, a
 * filesystem that turns read-only, and a corrupt file at start-up. Each test asserts what a client
 * and an operator see: answers they can act on (202, or 503 with Retry-After), reads that never
 * wait for writers, no acknowledged job lost, no job looping, nothing touched that belongs to
 * another process. Each prints its figures.
 *
 * CHAOS_LOCK_S sets how long the external lock is held (8 s in the short
 * form, 40 s in the full one). The full-disk test needs root to mount a
 * tmpfs, the read-only test an ext4 image on a loop device: without root
 * they fail under CI=true and are skipped elsewhere; without loop devices
 * the read-only test is skipped with one line.
 */
#include <check.h>
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include "db/db.h"
#include "tests/harness.h"

static struct proc fake, parleyd;
static char dbpath[512];

static const char job_body[] =
    "{\"scenario\":\"response_speed_optimization\","
    "\"interviewer\":{\"model\":\"gemma3:1b\",\"backend\":\"ollama\"},"
    "\"candidate\":{\"model\":\"gemma3n:latest\",\"backend\":\"ollama\"},\"max_turns\":%d}";

/* Starts the fake (with fake_args) and parleyd on a store in dir (NULL: the test folder). */
static void start_in(const char *dir, const char *const *fake_args, const char *extra_cfg)
{
	char cfg[512], backend[256];
	const char *args[] = {"--config", cfg, "--backend", backend, NULL};
	static int seq;
	FILE *f;

	snprintf(cfg, sizeof(cfg), "%s/store-%d-%d.json", harness_tmpdir(), (int)getpid(), seq);
	snprintf(dbpath, sizeof(dbpath), "%s/store-%d-%d.db", dir ? dir : harness_tmpdir(),
		 (int)getpid(), seq++);
	f = fopen(cfg, "w");
	ck_assert_ptr_nonnull(f);
	fprintf(f,
		"{\"retry_base_delay_ms\": 50, \"retry_max_delay_ms\": 400, "
		"\"drain_timeout_s\": 2%s%s}\n",
		extra_cfg ? ", " : "", extra_cfg ? extra_cfg : "");
	ck_assert_int_eq(fclose(f), 0);
	ck_assert_int_eq(harness_fake_start(&fake, fake_args), 0);
	snprintf(backend, sizeof(backend),
		 "name=ollama,kind=ollama,url=http://127.0.0.1:%d,max_concurrency=8", fake.port);
	ck_assert_int_eq(harness_parleyd_start(&parleyd, dbpath, args), 0);
}

static void stop(void)
{
	harness_stop(&parleyd, SIGTERM);
	harness_stop(&fake, SIGTERM);
}

/* Submits a job; returns its id (caller frees) on 202, NULL otherwise with *status set. */
static char *submit(int max_turns, int *status)
{
	char body[512];
	json_t *j = NULL;
	char *id = NULL;
	int st;

	snprintf(body, sizeof(body), job_body, max_turns);
	st = harness_http_json(parleyd.port, "POST", "/v1/jobs", body, &j);
	if (status)
		*status = st;
	if (st == 202)
		id = xstrdup(json_string_value(json_object_get(j, "id")));
	json_decref(j);
	return id;
}

static const char *job_status(json_t *job)
{
	return json_string_value(json_object_get(job, "status"));
}

static int job_is(json_t *job, void *want)
{
	return strcmp(job_status(job), want) == 0;
}

/* ---- a request from any thread, with its answer time and Retry-After ---- */

struct answer {
	int status;
	int retry_after; /* the header was there */
	double ms;
	struct strbuf body;
};

static size_t on_header(char *p, size_t size, size_t n, void *ud)
{
	struct answer *a = ud;

	if (size * n >= 12 && strncasecmp(p, "Retry-After:", 12) == 0)
		a->retry_after = 1;
	return size * n;
}

static size_t on_body(char *p, size_t size, size_t n, void *ud)
{
	strbuf_add(ud, p, size * n);
	return size * n;
}

static struct answer request(const char *method, const char *path, const char *body)
{
	struct answer a = {0, 0, 0, {NULL, 0, 0}};
	CURL *c = curl_easy_init();
	struct curl_slist *hl = curl_slist_append(NULL, "Content-Type: application/json");
	char url[256];
	int64_t t0 = util_mono_us();
	long st = 0;

	snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", parleyd.port, path);
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 60000L);
	curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(c, CURLOPT_HEADERDATA, &a);
	strbuf_init(&a.body, 0);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &a.body);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, hl);
	if (body)
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
	if (curl_easy_perform(c) == CURLE_OK)
		curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &st);
	a.status = (int)st;
	a.ms = (double)(util_mono_us() - t0) / 1000.0;
	curl_slist_free_all(hl);
	curl_easy_cleanup(c);
	return a;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static double percentile(double *v, size_t n, double p)
{
	size_t k;

	if (!n)
		return 0;
	qsort(v, n, sizeof(*v), cmp_double);
	k = (size_t)(p * (double)(n - 1) + 0.5);
	return v[k < n ? k : n - 1];
}

/* ---- another process holds the write lock ---- */

#define NSUBMITTERS 6
#define MAX_SAMPLES 20000

static struct {
	atomic_int done;
	char job_path[128];
	pthread_mutex_t lock; /* guards everything below */
	double read_ms[MAX_SAMPLES];
	size_t nread;
	int read_bad; /* reads that did not answer 200 (a 503 readyz is fine) */
	int nsub, n202, n503, n503_no_retry_after, nother;
	double submit_max_ms;
	char *ids[MAX_SAMPLES];
	size_t nids;
} L = {.lock = PTHREAD_MUTEX_INITIALIZER};

static void *reader(void *arg)
{
	static const char *const paths[] = {"/healthz", "/readyz", NULL};
	int k = 0;

	(void)arg;
	while (!atomic_load(&L.done)) {
		const char *path = k % 3 == 2 ? L.job_path : paths[k % 3];
		struct answer a = request("GET", path, NULL);
		strbuf_release(&a.body);
		pthread_mutex_lock(&L.lock);
		if (L.nread < MAX_SAMPLES)
			L.read_ms[L.nread++] = a.ms;
		if (a.status != 200 && !(k % 3 == 1 && a.status == 503))
			L.read_bad++;
		pthread_mutex_unlock(&L.lock);
		k++;
		usleep(20000);
	}
	return NULL;
}

static void *submitter(void *arg)
{
	char body[512];

	(void)arg;
	snprintf(body, sizeof(body), job_body, 3);
	while (!atomic_load(&L.done)) {
		struct answer a = request("POST", "/v1/jobs", body);
		strbuf_release(&a.body);
		pthread_mutex_lock(&L.lock);
		L.nsub++;
		if (a.ms > L.submit_max_ms)
			L.submit_max_ms = a.ms;
		if (a.status == 202)
			L.n202++;
		else if (a.status == 503 && a.retry_after)
			L.n503++;
		else if (a.status == 503)
			L.n503_no_retry_after++;
		else
			L.nother++;
		pthread_mutex_unlock(&L.lock);
		usleep(100000);
	}
	return NULL;
}

START_TEST(external_lock_blocks_no_reader)
{
	const char *env = getenv("CHAOS_LOCK_S");
	int hold_s = env && atoi(env) > 0 ? atoi(env) : 8;
	pthread_t rd[2], sub[NSUBMITTERS];
	double base[60], p99_base, p99, p50, worst;
	sqlite3 *h;
	char *id;
	json_t *job;
	int i, st;
	int64_t t0, t_end;

	start_in(NULL, NULL, NULL);
	id = submit(3, &st);
	ck_assert_msg(id, "submit: %d", st);
	job = harness_wait_job(parleyd.port, id, 20000);
	ck_assert_str_eq(job_status(job), "succeeded");
	json_decref(job);
	snprintf(L.job_path, sizeof(L.job_path), "/v1/jobs/%s", id);
	free(id);
	for (i = 0; i < 60; i++) {
		struct answer a = request("GET",
					  i % 3 == 2 ? L.job_path
					  : i % 3    ? "/readyz"
						     : "/healthz",
					  NULL);
		base[i] = a.ms;
		strbuf_release(&a.body);
	}
	p99_base = percentile(base, 60, 0.99);

	/* another process (this one) takes the write lock, as a sqlite3 shell would */
	ck_assert_int_eq(sqlite3_open(dbpath, &h), SQLITE_OK);
	ck_assert_int_eq(sqlite3_exec(h, "BEGIN IMMEDIATE", NULL, NULL, NULL), SQLITE_OK);
	ck_assert_int_eq(sqlite3_exec(h, "UPDATE jobs SET labels = labels", NULL, NULL, NULL),
			 SQLITE_OK);
	t0 = util_mono_us();
	for (i = 0; i < 2; i++)
		pthread_create(&rd[i], NULL, reader, NULL);
	for (i = 0; i < NSUBMITTERS; i++)
		pthread_create(&sub[i], NULL, submitter, NULL);
	while (util_mono_us() - t0 < (int64_t)hold_s * 1000000)
		usleep(100000);
	atomic_store(&L.done, 1);
	ck_assert_int_eq(sqlite3_exec(h, "ROLLBACK", NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(h);
	t_end = util_mono_us();
	for (i = 0; i < 2; i++)
		pthread_join(rd[i], NULL);
	for (i = 0; i < NSUBMITTERS; i++)
		pthread_join(sub[i], NULL);

	worst = percentile(L.read_ms, L.nread, 1.0);
	p99 = percentile(L.read_ms, L.nread, 0.99);
	p50 = percentile(L.read_ms, L.nread, 0.50);
	printf("external lock %d s: reads+health n=%zu p50 %.1f ms p99 %.1f ms max %.1f ms "
	       "(unlocked p99 %.1f ms); submits n=%d: 202 %d, 503+Retry-After %d, 503 without "
	       "%d, other %d, slowest answer %.0f ms\n",
	       hold_s, L.nread, p50, p99, worst, p99_base, L.nsub, L.n202, L.n503,
	       L.n503_no_retry_after, L.nother, L.submit_max_ms);
	ck_assert_msg(L.nread >= 10, "only %zu reads answered during the lock", L.nread);
	ck_assert_int_eq(L.read_bad, 0);
	/* reads never wait for a writer: under 100 ms, with room for a loaded machine */
	ck_assert_msg(p99 <= 100.0 + 10.0 * p99_base, "read p99 %.1f ms during the lock", p99);
	/* every submit gets an answer a client can act on, within a few seconds */
	ck_assert_int_eq(L.nother, 0);
	ck_assert_int_eq(L.n503_no_retry_after, 0);
	ck_assert_msg(L.submit_max_ms < 5000.0, "a submit waited %.0f ms", L.submit_max_ms);
	ck_assert_int_gt(L.nsub, NSUBMITTERS);
	/* and once the lock is gone, submits are taken again (a client honours Retry-After) */
	for (i = 0; i < 40 && !(id = submit(3, &st)) && st == 503; i++)
		usleep(100000);
	ck_assert_msg(id, "submit after the lock: %d", st);
	printf("external lock: the first submit after it was taken %.0f ms after its end\n",
	       (double)(util_mono_us() - t_end) / 1000.0);
	job = harness_wait_job(parleyd.port, id, 20000);
	ck_assert_str_eq(job_status(job), "succeeded");
	json_decref(job);
	free(id);
	stop();
}
END_TEST

/* ---- a full disk ---- */

static int have_root(const char *what)
{
	const char *ci = getenv("CI");

	if (geteuid() == 0)
		return 1;
	if (ci && strcmp(ci, "true") == 0)
		ck_abort_msg("%s needs root to mount a tmpfs (CI=true)", what);
	printf("skipped: %s needs root to mount a tmpfs\n", what);
	return 0;
}

/* Fills the filesystem of dir; returns the filler's path (static). */
static const char *fill_disk(const char *dir)
{
	static char path[600];
	static char chunk[65536];
	int fd, n;

	snprintf(path, sizeof(path), "%s/filler", dir);
	fd = open(path, O_WRONLY | O_CREAT | O_APPEND, 0600);
	ck_assert_int_ge(fd, 0);
	memset(chunk, 'x', sizeof(chunk));
	for (n = (int)sizeof(chunk); n >= 1; n /= 2)
		while (write(fd, chunk, (size_t)n) == n)
			;
	close(fd);
	return path;
}

#define MAX_ACKED 512

/* Clients submitting all along, while the disk fills and frees: every 202 is kept. */
static struct {
	atomic_int done;
	pthread_mutex_t lock; /* guards everything below */
	char *acked[MAX_ACKED];
	int nacked, n503, n503_no_retry_after, nother;
} D = {.lock = PTHREAD_MUTEX_INITIALIZER};

static void *disk_submitter(void *arg)
{
	char body[512];

	(void)arg;
	snprintf(body, sizeof(body), job_body, 3);
	while (!atomic_load(&D.done)) {
		struct answer a = request("POST", "/v1/jobs", body);
		json_t *j = a.status == 202 ? json_loads(a.body.buf, 0, NULL) : NULL;
		pthread_mutex_lock(&D.lock);
		if (j && D.nacked < MAX_ACKED)
			D.acked[D.nacked++] = xstrdup(json_string_value(json_object_get(j, "id")));
		else if (a.status == 503 && a.retry_after)
			D.n503++;
		else if (a.status == 503)
			D.n503_no_retry_after++;
		else if (a.status != 202)
			D.nother++;
		pthread_mutex_unlock(&D.lock);
		json_decref(j);
		strbuf_release(&a.body);
		usleep(100000);
	}
	return NULL;
}

START_TEST(full_disk_loses_nothing)
{
	const char *fake_args[] = {"--token-delay-ms", "3", NULL};
	char disk[512], path[128], *text = NULL;
	const char *filler, *victim = NULL;
	pthread_t sub[2];
	int i, tries, st, ready_during, lost = 0, succeeded = 0, cancelled = 0, acked_full;
	json_t *job;

	if (!have_root("the full-disk test"))
		return;
	snprintf(disk, sizeof(disk), "%s/disk", harness_tmpdir());
	ck_assert_int_eq(mkdir(disk, 0700), 0);
	/* room for SQLite's WAL (it is checkpointed at about 4 MB) until the filler takes it */
	ck_assert_msg(mount("tmpfs", disk, "tmpfs", 0, "size=32m") == 0, "mount: %s",
		      strerror(errno));
	start_in(disk, fake_args, NULL);
	for (i = 0; i < 2; i++)
		pthread_create(&sub[i], NULL, disk_submitter, NULL);
	usleep(500000);
	filler = fill_disk(disk);
	usleep(1000000);
	pthread_mutex_lock(&D.lock);
	acked_full = D.nacked;
	pthread_mutex_unlock(&D.lock);
	ready_during = harness_http(parleyd.port, "GET", "/readyz", NULL, NULL, NULL);
	/* the jobs in flight cannot store their turns now; one of them is cancelled */
	pthread_mutex_lock(&D.lock);
	for (i = 0; i < D.nacked && !victim; i++) {
		snprintf(path, sizeof(path), "/v1/jobs/%s", D.acked[i]);
		if (harness_http_json(parleyd.port, "GET", path, NULL, &job) == 200 &&
		    job_is(job, "running"))
			victim = D.acked[i];
		json_decref(job);
	}
	pthread_mutex_unlock(&D.lock);
	ck_assert_ptr_nonnull(victim);
	snprintf(path, sizeof(path), "/v1/jobs/%s/cancel", victim);
	st = harness_http(parleyd.port, "POST", path, "", NULL, &text);
	ck_assert_msg(st == 202, "cancel on a full disk: %d %s", st, text);
	free(text);
	usleep(500000);
	/* space comes back: everything carries on by itself */
	ck_assert_int_eq(unlink(filler), 0);
	usleep(1000000);
	atomic_store(&D.done, 1);
	for (i = 0; i < 2; i++)
		pthread_join(sub[i], NULL);
	for (i = 0; i < D.nacked; i++) {
		const char *s;
		job = harness_wait_job(parleyd.port, D.acked[i], 60000);
		s = job ? job_status(job) : NULL;
		if (!s)
			lost++;
		else if (strcmp(s, "succeeded") == 0)
			succeeded++;
		else if (strcmp(s, "cancelled") == 0 && D.acked[i] == victim)
			cancelled++;
		else
			ck_abort_msg("job %s ended %s: %s", D.acked[i], s,
				     json_dumps(json_object_get(job, "error"), 0));
		json_decref(job);
	}
	for (tries = 0; tries < 100; tries++) {
		if (harness_http(parleyd.port, "GET", "/readyz", NULL, NULL, NULL) == 200)
			break;
		usleep(50000);
	}
	printf("full disk: %d jobs acknowledged (%d before the disk filled or while it was full), "
	       "%d lost, %d succeeded, %d cancelled while the disk was full; %d submits answered "
	       "503 with Retry-After, %d without, %d otherwise; /readyz %d while full, %s after\n",
	       D.nacked, acked_full, lost, succeeded, cancelled, D.n503, D.n503_no_retry_after,
	       D.nother, ready_during, tries < 100 ? "200" : "not ready");
	ck_assert_int_eq(lost, 0);
	ck_assert_int_eq(cancelled, 1);
	ck_assert_int_gt(D.n503, 0);
	ck_assert_int_eq(D.n503_no_retry_after, 0);
	ck_assert_int_eq(D.nother, 0);
	ck_assert_int_eq(ready_during, 503);
	ck_assert_int_lt(tries, 100);
	stop();
	for (i = 0; i < D.nacked; i++)
		free(D.acked[i]);
	umount2(disk, MNT_DETACH);
}
END_TEST

/* ---- a filesystem that turns read-only under parleyd ---- */

START_TEST(read_only_filesystem_refuses_writes_keeps_reads)
{
	char disk[512], img[600], cmd[2600], line[1024], path[128], sysfs[300], *id, *text = NULL;
	char dev[64] = "";
	json_t *job;
	FILE *f;
	int st, ready, read_one, read_list;

	if (!have_root("the read-only test"))
		return;
	snprintf(disk, sizeof(disk), "%s/ro", harness_tmpdir());
	snprintf(img, sizeof(img), "%s/ro.img", harness_tmpdir());
	ck_assert_int_eq(mkdir(disk, 0700), 0);
	/* ext4 on a loop device: errors=remount-ro turns it read-only with files open for
	 * writing, as a disk error would; a tmpfs cannot be remounted so */
	snprintf(cmd, sizeof(cmd),
		 "truncate -s 16M '%s' && mkfs.ext4 -q -F '%s' && mount -o loop,errors=remount-ro "
		 "'%s' '%s'",
		 img, img, img, disk);
	if (system(cmd) != 0) {
		printf("skipped: the read-only test cannot mount an ext4 image on a loop device\n");
		return;
	}
	f = fopen("/proc/mounts", "r");
	ck_assert_ptr_nonnull(f);
	while (fgets(line, sizeof(line), f)) {
		char src[256], dst[600];
		if (sscanf(line, "%255s %599s", src, dst) == 2 && strcmp(dst, disk) == 0 &&
		    strrchr(src, '/'))
			snprintf(dev, sizeof(dev), "%s", strrchr(src, '/') + 1);
	}
	fclose(f);
	ck_assert_msg(dev[0], "no device for %s in /proc/mounts", disk);
	start_in(disk, NULL, NULL);
	id = submit(3, &st);
	ck_assert_msg(id, "submit: %d", st);
	job = harness_wait_job(parleyd.port, id, 20000);
	ck_assert_str_eq(job_status(job), "succeeded");
	json_decref(job);

	snprintf(sysfs, sizeof(sysfs), "/sys/fs/ext4/%s/trigger_fs_error", dev);
	f = fopen(sysfs, "w");
	ck_assert_msg(f, "%s: %s", sysfs, strerror(errno));
	fputs("chaos: read-only from here on\n", f);
	fclose(f);

	free(submit(3, &st));
	ck_assert_msg(harness_last_headers() && strcasestr(harness_last_headers(), "Retry-After:"),
		      "a submit on a read-only filesystem: %d without Retry-After", st);
	ready = harness_http(parleyd.port, "GET", "/readyz", NULL, NULL, &text);
	snprintf(path, sizeof(path), "/v1/jobs/%s", id);
	read_one = harness_http(parleyd.port, "GET", path, NULL, NULL, NULL);
	read_list = harness_http(parleyd.port, "GET", "/v1/jobs", NULL, NULL, NULL);
	printf("read-only filesystem: submit %d, /readyz %d, GET the job %d, the list %d; %s", st,
	       ready, read_one, read_list, text ? text : "\n");
	ck_assert_int_eq(st, 503);
	ck_assert_int_eq(ready, 503);
	ck_assert_int_eq(read_one, 200);
	ck_assert_int_eq(read_list, 200);
	free(text);
	free(id);
	stop();
	umount2(disk, MNT_DETACH);
}
END_TEST

/* ---- a turn write that keeps failing ---- */

START_TEST(failing_turn_write_backs_off_and_fails)
{
	const char *msg;
	char *id;
	json_t *job, *stats = NULL;
	sqlite3 *h;
	int st, calls;
	int64_t t0;

	start_in(NULL, NULL, NULL);
	/* a store that refuses every turn, as a corrupt page of the turns table would */
	ck_assert_int_eq(sqlite3_open(dbpath, &h), SQLITE_OK);
	sqlite3_busy_timeout(h, 5000);
	ck_assert_int_eq(
	    sqlite3_exec(h,
			 "CREATE TRIGGER chaos_refuse BEFORE INSERT ON turns BEGIN "
			 "SELECT RAISE(FAIL, 'chaos: this turn cannot be stored'); END",
			 NULL, NULL, NULL),
	    SQLITE_OK);
	sqlite3_close(h);
	t0 = util_mono_us();
	id = submit(3, &st);
	ck_assert_msg(id, "submit: %d", st);
	job = harness_wait_job(parleyd.port, id, 15000);
	ck_assert_int_eq(harness_http_json(fake.port, "GET", "/_fake/stats", NULL, &stats), 200);
	calls = (int)json_integer_value(json_object_get(stats, "chat_requests"));
	msg = json_string_value(json_object_get(json_object_get(job, "error"), "message"));
	printf("failing turn write: job %s after %.1f s, %d model calls; error: %s\n",
	       job_status(job), (double)(util_mono_us() - t0) / 1e6, calls, msg ? msg : "-");
	ck_assert_str_eq(job_status(job), "failed");
	ck_assert_ptr_nonnull(msg);
	ck_assert_msg(strstr(msg, "store"), "the error does not name the store: %s", msg);
	/* the model's reply is kept and its write retried: the model is not called again */
	ck_assert_int_le(calls, 2);
	json_decref(stats);
	json_decref(job);
	free(id);
	stop();
}
END_TEST

/* The end of a job cannot be stored as it is (its optimizations are refused): it fails clearly. */
START_TEST(failing_end_write_fails_the_job_clearly)
{
	const char *msg, *code;
	char *id;
	json_t *job;
	sqlite3 *h;
	int st;

	start_in(NULL, NULL, NULL);
	ck_assert_int_eq(sqlite3_open(dbpath, &h), SQLITE_OK);
	sqlite3_busy_timeout(h, 5000);
	ck_assert_int_eq(
	    sqlite3_exec(h,
			 "CREATE TRIGGER chaos_refuse BEFORE INSERT ON optimizations "
			 "BEGIN SELECT RAISE(FAIL, 'chaos: this page is damaged'); END",
			 NULL, NULL, NULL),
	    SQLITE_OK);
	sqlite3_close(h);
	id = submit(3, &st);
	ck_assert_msg(id, "submit: %d", st);
	job = harness_wait_job(parleyd.port, id, 20000);
	ck_assert_ptr_nonnull(job);
	code = json_string_value(json_object_get(json_object_get(job, "error"), "code"));
	msg = json_string_value(json_object_get(json_object_get(job, "error"), "message"));
	printf("failing end write: job %s (%s): %s\n", job_status(job), code ? code : "-",
	       msg ? msg : "-");
	ck_assert_str_eq(job_status(job), "failed");
	ck_assert_str_eq(code, "store_failed");
	ck_assert_msg(strstr(msg, "store"), "%s", msg);
	json_decref(job);
	free(id);
	stop();
}
END_TEST

/* ---- one database, one parleyd ---- */

START_TEST(second_parleyd_refuses_and_touches_nothing)
{
	const char *fake_args[] = {"--token-delay-ms", "5", NULL};
	struct proc second;
	char *id, *log, path[128], want[64], pid[32];
	json_t *job;
	int st, rc;

	start_in(NULL, fake_args, NULL);
	id = submit(4, &st);
	ck_assert_msg(id, "submit: %d", st);
	job = harness_wait_until(parleyd.port, id, 20000, job_is, "running");
	ck_assert_ptr_nonnull(job);
	json_decref(job);
	rc = harness_parleyd_start(&second, dbpath, NULL);
	if (rc == 0)
		harness_stop(&second, SIGKILL);
	log = harness_slurp(second.log, NULL);
	printf("second parleyd: %s", log ? log : "(no output)\n");
	ck_assert_msg(rc < 0, "a second parleyd started on the same database");
	snprintf(want, sizeof(want), "127.0.0.1:%d", parleyd.port);
	snprintf(pid, sizeof(pid), "%d", (int)parleyd.pid);
	ck_assert_msg(log && strstr(log, want) && strstr(log, pid),
		      "the refusal does not name pid %s and %s: %s", pid, want, log);
	free(log);
	/* the first one's job was not requeued: it runs on under its first claim */
	snprintf(path, sizeof(path), "/v1/jobs/%s", id);
	job = harness_wait_job(parleyd.port, id, 60000);
	ck_assert_ptr_nonnull(job);
	ck_assert_str_eq(job_status(job), "succeeded");
	ck_assert_int_eq(json_integer_value(json_object_get(job, "attempts")), 1);
	json_decref(job);
	free(id);
	stop();
}
END_TEST

/* ---- the database file deleted while parleyd runs ---- */

START_TEST(deleted_database_stops_writes)
{
	char *id, *text = NULL, *log, side[600], path[128];
	json_t *job;
	int st, ready;
	struct stat sb;

	start_in(NULL, NULL, NULL);
	id = submit(3, &st);
	ck_assert_msg(id, "submit: %d", st);
	job = harness_wait_job(parleyd.port, id, 20000);
	ck_assert_str_eq(job_status(job), "succeeded");
	json_decref(job);
	/* rm parley.db* */
	ck_assert_int_eq(unlink(dbpath), 0);
	snprintf(side, sizeof(side), "%s-wal", dbpath);
	unlink(side);
	snprintf(side, sizeof(side), "%s-shm", dbpath);
	unlink(side);

	free(submit(3, &st));
	ck_assert_msg(st == 503, "a submit after the file was deleted: %d", st);
	ck_assert_msg(harness_last_headers() && strcasestr(harness_last_headers(), "Retry-After:"),
		      "the 503 has no Retry-After");
	ready = harness_http(parleyd.port, "GET", "/readyz", NULL, NULL, &text);
	printf("deleted database: submit %d, /readyz %d %s", st, ready, text ? text : "\n");
	ck_assert_int_eq(ready, 503);
	ck_assert_msg(text && strstr(text, "deleted"), "/readyz does not say why: %s", text);
	free(text);
	/* no second, empty store behind the first */
	snprintf(path, sizeof(path), "/v1/jobs/%s", id);
	st = harness_http(parleyd.port, "GET", path, NULL, NULL, NULL);
	ck_assert_msg(st == 200 || st == 503, "reading a job: %d", st);
	ck_assert_int_ne(stat(dbpath, &sb), 0);
	log = harness_slurp(parleyd.log, NULL);
	ck_assert_msg(log && strstr(log, "deleted"), "the log does not say so");
	free(log);
	stop();
	ck_assert_int_ne(stat(dbpath, &sb), 0);
	free(id);
}
END_TEST

/* ---- a corrupt file at start-up ---- */

START_TEST(corrupt_database_refused_at_start)
{
	struct perr e = {0};
	struct db *db = harness_db("corrupt", dbpath, sizeof(dbpath), &e);
	char junk[4096], *log;
	sqlite3 *h;
	sqlite3_stmt *st;
	int root = 0, fd, rc;
	struct proc p;

	ck_assert_msg(db, "%s", e.msg);
	db_close(db);
	ck_assert_int_eq(sqlite3_open(dbpath, &h), SQLITE_OK);
	ck_assert_int_eq(sqlite3_exec(h, "PRAGMA wal_checkpoint(TRUNCATE)", NULL, NULL, NULL),
			 SQLITE_OK);
	ck_assert_int_eq(sqlite3_prepare_v2(h,
					    "SELECT rootpage FROM sqlite_master WHERE name = "
					    "'turns'",
					    -1, &st, NULL),
			 SQLITE_OK);
	if (sqlite3_step(st) == SQLITE_ROW)
		root = sqlite3_column_int(st, 0);
	sqlite3_finalize(st);
	sqlite3_close(h);
	ck_assert_int_gt(root, 1);
	/* the turns table's root page becomes noise */
	memset(junk, 0x5a, sizeof(junk));
	fd = open(dbpath, O_WRONLY);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(pwrite(fd, junk, sizeof(junk), (off_t)(root - 1) * 4096),
			 (ssize_t)sizeof(junk));
	close(fd);
	rc = harness_parleyd_start(&p, dbpath, NULL);
	if (rc == 0)
		harness_stop(&p, SIGKILL);
	log = harness_slurp(p.log, NULL);
	printf("corrupt database at start-up: %s", log ? log : "(no output)\n");
	ck_assert_msg(rc < 0, "parleyd started on a corrupt database");
	ck_assert_msg(log && strstr(log, "corrupt") && strstr(log, "backup"),
		      "the refusal does not say what is wrong and what to do: %s", log);
	free(log);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("chaos-store");
	TCase *tc = tcase_create("store");
	SRunner *sr;
	int failed;

	setvbuf(stdout, NULL, _IOLBF, 0); /* the figures survive a failed check */
	curl_global_init(CURL_GLOBAL_DEFAULT);
	harness_tmpdir();
	tcase_set_timeout(tc, 180);
	tcase_add_test(tc, external_lock_blocks_no_reader);
	tcase_add_test(tc, full_disk_loses_nothing);
	tcase_add_test(tc, read_only_filesystem_refuses_writes_keeps_reads);
	tcase_add_test(tc, failing_turn_write_backs_off_and_fails);
	tcase_add_test(tc, failing_end_write_fails_the_job_clearly);
	tcase_add_test(tc, second_parleyd_refuses_and_touches_nothing);
	tcase_add_test(tc, deleted_database_stops_writes);
	tcase_add_test(tc, corrupt_database_refused_at_start);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	{
		/* a failed full-disk test may leave its tmpfs mounted */
		char disk[512];
		snprintf(disk, sizeof(disk), "%s/disk", harness_tmpdir());
		umount2(disk, MNT_DETACH);
		snprintf(disk, sizeof(disk), "%s/ro", harness_tmpdir());
		umount2(disk, MNT_DETACH);
	}
	harness_cleanup();
	return failed ? 1 : 0;
}
