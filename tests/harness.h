/*
 * harness.h - what the integration and live tests share: child processes
 * (the real parleyd, the fake backend), free ports, HTTP calls, waiting for
 * a job to end.
 */
#ifndef PARLEY_HARNESS_H
#define PARLEY_HARNESS_H

#include <jansson.h>
#include <sys/types.h>

#include "db/util.h"

struct proc {
	pid_t pid;
	int port;
	char log[512]; /* stdout+stderr of the child */
};

/* A fresh temporary directory for this test run (removed by harness_cleanup). */
const char *harness_tmpdir(void);
void harness_cleanup(void);
/* The shared fixtures folder: $PARLEY_SHARED or ../shared. */
const char *harness_shared(void);
/* The 15 origin phase-2 conversations: fixtures/origin-phase2/<name>.json and .md. */
#define HARNESS_NORIGIN 15
extern const char *const harness_origin[HARNESS_NORIGIN];
/*
 * The hand-read rubric extraction of each origin conversation's analysis (in
 * the order of harness_origin): its suggestions' titles in order, and how
 * many of them say how to test them.
 */
struct harness_labelled {
	const char *name;
	size_t ntested;
	const char *titles[12];
};
extern const struct harness_labelled harness_labelled[HARNESS_NORIGIN];
/* The number of titles of l. */
size_t harness_labelled_count(const struct harness_labelled *l);

/*
 * Tests that read the shared fixtures and a clone that has none: a suite's
 * main() calls harness_shared_note() once, which says in one line what is
 * missing (returns 0 then); each read of a fixture goes through
 * harness_need_shared(), which ends the test there, as a pass, when the
 * fixtures are missing outside CI. With CI=true nothing is skipped: the
 * tests fail, after that one line.
 */
int harness_shared_note(const char *suite);
void harness_need_shared(void);
/* <shared>/fixtures/<rel> into path (after harness_need_shared()). */
void harness_fixture_path(const char *rel, char *path, size_t size);
/* Reads <shared>/fixtures/<rel> whole (NUL-terminated); NULL when it cannot. */
char *harness_fixture(const char *rel, size_t *len);
/* Reads a whole file; NULL when it cannot. */
char *harness_slurp(const char *path, size_t *len);
int harness_free_port(void);

struct db;
/* Opens a new, migrated store named after prefix in the temporary directory;
 * its path is written to path (size bytes). NULL with e set on failure. */
struct db *harness_db(const char *prefix, char *path, size_t size, struct perr *e);

/* Starts the fake backend (FAKE_BACKEND or build/fake-backend) with extra args. */
int harness_fake_start(struct proc *p, const char *const *args);
/*
 * Starts parleyd (PARLEYD or build/parleyd) on a free port with the database
 * db and the given extra args, and waits until /healthz answers.
 */
int harness_parleyd_start(struct proc *p, const char *db, const char *const *args);
/*
 * Starts the fake backend with fake_args, then parleyd on the database db with one backend,
 * "ollama" of kind ollama on that fake, taking at most max_concurrency calls at a time.
 * 0, or -1 when either did not start (the fake is stopped again then).
 */
int harness_start_with_ollama(struct proc *fake, const char *const *fake_args, struct proc *parleyd,
			      const char *db, int max_concurrency);
/* Sends sig and waits for the process; returns its exit status (or -1). */
int harness_stop(struct proc *p, int sig);

/*
 * One HTTP request to 127.0.0.1:port. body may be NULL. headers is a
 * NULL-terminated list of "Name: value" or NULL. Returns the status (0 when
 * no answer); *out receives the body (caller frees) when out is not NULL.
 */
int harness_http(int port, const char *method, const char *path, const char *body,
		 const char *const *headers, char **out);
/* The response headers of the last harness_http() call of this process. */
const char *harness_last_headers(void);
/* Same, parsing a JSON answer (NULL when it is not JSON). */
int harness_http_json(int port, const char *method, const char *path, const char *body,
		      json_t **out);
/*
 * A JSON request whose answer must have status want (the test fails with the
 * body otherwise); returns the parsed body (caller releases).
 */
json_t *harness_call(int port, const char *method, const char *path, const char *body, int want);
/* POSTs body to /v1/jobs, which must answer 202; returns the job's id (caller frees). */
char *harness_submit(int port, const char *body);
/* Polls GET /v1/jobs/id until the job ends or timeout_ms passes; returns the job. */
json_t *harness_wait_job(int port, const char *id, long timeout_ms);
/* Polls until pred(job) holds; returns the job or NULL at timeout. */
json_t *harness_wait_until(int port, const char *id, long timeout_ms,
			   int (*pred)(json_t *job, void *ud), void *ud);
/*
 * Polls GET /v1/backends until parleyd's first backend has n members up with slots slots
 * each (what it learns from its first probes); 0, or -1 when timeout_ms passes.
 */
int harness_wait_members(int port, int n, int slots, long timeout_ms);

#endif
