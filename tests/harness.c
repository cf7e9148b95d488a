/*
 * harness.c - processes, ports and HTTP for the tests. See harness.h.
 */
#include "tests/harness.h"

#include "db/db.h"

#include <check.h>
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static char tmpdir[256];

const char *harness_tmpdir(void)
{
	if (!tmpdir[0]) {
		const char *base = getenv("TMPDIR");
		snprintf(tmpdir, sizeof(tmpdir), "%s/parley-test-XXXXXX", base ? base : "/tmp");
		if (!mkdtemp(tmpdir)) {
			perror("mkdtemp");
			abort();
		}
	}
	return tmpdir;
}

void harness_cleanup(void)
{
	char cmd[300];

	if (!tmpdir[0] || getenv("PARLEY_KEEP_TMP"))
		return;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	if (system(cmd) != 0)
		fprintf(stderr, "harness: could not remove %s\n", tmpdir);
	tmpdir[0] = '\0';
}

const char *harness_shared(void)
{
	const char *s = getenv("PARLEY_SHARED");

	return s && *s ? s : "../shared";
}

const char *const harness_origin[HARNESS_NORIGIN] = {
    "job_extraction_improvement_dolphin3_8b",
    "job_extraction_improvement_gemma2_latest",
    "job_extraction_improvement_gemma3n_e2b",
    "job_extraction_improvement_gemma3n_latest",
    "job_extraction_improvement_qwen2.5vl_latest",
    "prompt_engineering_breakthrough_dolphin3_8b",
    "prompt_engineering_breakthrough_gemma2_latest",
    "prompt_engineering_breakthrough_gemma3n_e2b",
    "prompt_engineering_breakthrough_gemma3n_latest",
    "prompt_engineering_breakthrough_qwen2.5vl_latest",
    "response_speed_optimization_dolphin3_8b",
    "response_speed_optimization_gemma2_latest",
    "response_speed_optimization_gemma3n_e2b",
    "response_speed_optimization_gemma3n_latest",
    "response_speed_optimization_qwen2.5vl_latest",
};

/*
 * The suggestions of each origin conversation's closing analysis, read by
 * hand: the top-level items of its concrete-suggestions section, titled by
 * their bold lead (enumerators such as "A." and "1." and surrounding quotes
 * dropped) or, where the whole item is bold or is only a "Test:", by its
 * first sentence. In the order of harness_origin[].
 */
const struct harness_labelled harness_labelled[HARNESS_NORIGIN] = {
    {"job_extraction_improvement_dolphin3_8b",
     4,
     {"Contextual Understanding (Dependency Parsing)", "Handling Ambiguity (Prioritize Context)",
      "Multi-Document Cohesion (Structured Representation)", "Error Handling & Validation"}},
    {"job_extraction_improvement_gemma2_latest",
     0,
     {"Data Augmentation", "NLP Enhancement", "Contextual Understanding",
      "Rule Refinement (with NLP Support)", "Feature Engineering for Semantic Meaning",
      "Output Formatting", "Evaluation & Iteration"}},
    {"job_extraction_improvement_gemma3n_e2b",
     0,
     {"Fine-tune NER model on Sandy Pipeline documents",
      "Implement rule-based pattern matching for 'requires' or 'must'",
      "Explore KeyBERT for keyword extraction",
      "Investigate dependency parsing to understand sentence structure",
      "Consider incorporating contextual embedding models (BERT-based) into the sentiment "
      "analysis aspect of the process",
      "Create a test set with variations of wording for your rule-based pattern matching"}},
    {"job_extraction_improvement_gemma3n_latest",
     2,
     {"Contextual Analysis", "NER Enhancement", "Requirement Scoring", "Challenge & Refinement",
      /* the two "* **Test:**" items are named by their first test */
      "Create a set of simple job descriptions (e.g., 5-10) with varying phrasing",
      "Implement a basic \"requirement type\" classification (e.g., 'functional', "
      "'non-functional', 'data-related') - using a simple classification model"}},
    {"job_extraction_improvement_qwen2.5vl_latest",
     0,
     {"Expand the feature set to include Experience Levels, Industry Keywords, and a sentiment "
      "score for key phrases",
      "Implement a simplified sentiment analysis component to identify positive/negative "
      "sentiment",
      "Train a small, labeled dataset of job descriptions and their corresponding extracted "
      "requirements",
      "Utilize a Transformer model (e.g., BERT or similar) for dependency parsing",
      "Create a rule-based system that prioritizes information related to 'must have' or 'must "
      "be' keywords, and flags any instances of ‘should’ or ‘could’ as potential areas for "
      "clarification"}},
    {"prompt_engineering_breakthrough_dolphin3_8b",
     2,
     {"Prompt Template - Contextualized & Adaptive", "Differential Testing - Model Variation",
      "Explainability – Prompt Justification"}},
    {"prompt_engineering_breakthrough_gemma2_latest",
     0,
     {"Prompt Structure – The \"Blueprint\" Approach", "Few-Shot Learning Deep Dive",
      "Prompt Weighting – Strategy & Validation", "Prompt Chain Design (Conceptual)",
      "Testing & Iteration – Beyond the Simple \"Success/Failure\""}},
    /*
     * The model restated all four sections as bullets inside section 3; the
     * suggestions are the Test: items under "* **Concrete Suggestions Using
     * #test_this Format:**", which is a heading, as are the other three.
     */
    {"prompt_engineering_breakthrough_gemma3n_e2b",
     4,
     {"Try injecting a brief snippet of the input text into the prompt to guide the model’s "
      "reasoning (e.g., ‘Explain this in simpler terms’)",
      "Implement a rule-based evaluation of the generated output (e.g., ‘Is this response "
      "well-formatted?’)",
      "Create a template for a specific task (e.g., generating different creative variations "
      "of a headline) and apply a CoT prompting technique to each variation",
      "Modify the prompt to explicitly state the desired output format (e.g., ‘Output in a "
      "bulleted list.’"}},
    {"prompt_engineering_breakthrough_gemma3n_latest",
     0,
     {"Output Type Focus – Prioritize", "Style & Tone Guidance",
      "Prompt Template – Structured Approach", "Example Prompting"}},
    {"prompt_engineering_breakthrough_qwen2.5vl_latest",
     0,
     {"Template Enhancement (Prompt Template 1)", "Context Injection (Prompt Template 2)",
      "Few-Shot Learning (Prompt Template 3)", "Output Format Enforcement (Prompt Template 4)",
      "Chain of Prompting (Prompt Template 5)"}},
    {"response_speed_optimization_dolphin3_8b",
     0,
     {"Knowledge Retrieval – Optimize", "Inference Generation – Optimize",
      "Response Formulation – Optimize", "Response Validation & Feedback – Optimize",
      "Monitoring & Iteration"}},
    /* section 2 is the one titled "Test This Format"; section 3 holds the suggestions */
    {"response_speed_optimization_gemma2_latest",
     0,
     {"Caching Tokenization/Stemming", "Data Pipeline Optimization", "Container Optimization",
      "Model Size Considerations", "Data Filtering", "Parallel Processing (if feasible)",
      "Asynchronous Processing", "Profiling & Bottleneck Analysis"}},
    {"response_speed_optimization_gemma3n_e2b",
     5,
     {"Prompt Engineering", "Model Optimization", "Parallelization & Chunking", "Caching",
      "Monitoring"}},
    {"response_speed_optimization_gemma3n_latest",
     6,
     {"Implement a Knowledge Graph Interface", "Gradient Accumulation",
      "Hardware Acceleration (GPU/TPU)", "Summarization / Compression Techniques",
      "Simplify the Output Formatting", "Optimize the Transformer's Layer Count"}},
    {"response_speed_optimization_qwen2.5vl_latest",
     0,
     {"To Automate Data Preprocessing (5/5)", "To Accelerate Model Selection (4/5)",
      "To Streamline Model Evaluation (3/5)", "To Integrate Workflow (3/5)"}},
};

size_t harness_labelled_count(const struct harness_labelled *l)
{
	size_t n = 0;

	while (n < ARRAY_SIZE(l->titles) && l->titles[n])
		n++;
	return n;
}

static int shared_present(void)
{
	char path[1024];
	struct stat st;

	snprintf(path, sizeof(path), "%s/fixtures", harness_shared());
	return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

static int in_ci(void)
{
	const char *ci = getenv("CI");

	return ci && strcmp(ci, "true") == 0;
}

int harness_shared_note(const char *suite)
{
	if (shared_present())
		return 1;
	fprintf(stderr,
		"%s: %s the tests that read the shared fixtures: no folder '%s/fixtures' (set "
		"PARLEY_SHARED to the folder that holds fixtures/)\n",
		suite, in_ci() ? "CI=true, so failing" : "skipping", harness_shared());
	return 0;
}

void harness_need_shared(void)
{
	const char *fork = getenv("CK_FORK");

	/* each test runs in its own child: ending it with 0 is Check's pass, here a skip */
	if (!shared_present() && !in_ci() && !(fork && strcmp(fork, "no") == 0))
		exit(0);
}

void harness_fixture_path(const char *rel, char *path, size_t size)
{
	harness_need_shared();
	snprintf(path, size, "%s/fixtures/%s", harness_shared(), rel);
}

char *harness_fixture(const char *rel, size_t *len)
{
	char path[1024];

	harness_fixture_path(rel, path, sizeof(path));
	return harness_slurp(path, len);
}

char *harness_slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	struct strbuf sb;
	char buf[65536];
	size_t n;

	if (!f)
		return NULL;
	strbuf_init(&sb, 0);
	while ((n = fread(buf, 1, sizeof(buf), f)) > 0)
		strbuf_add(&sb, buf, n);
	fclose(f);
	return strbuf_detach(&sb, len);
}

struct db *harness_db(const char *prefix, char *path, size_t size, struct perr *e)
{
	static int seq;
	struct db *db;

	/* the pid: Check runs each test in a child of its own */
	snprintf(path, size, "%s/%s-%d-%d.db", harness_tmpdir(), prefix, (int)getpid(), seq++);
	if (!(db = db_open(path, e)))
		return NULL;
	if (db_migrate(db, e) < 0) {
		db_close(db);
		return NULL;
	}
	return db;
}

int harness_free_port(void)
{
	struct sockaddr_in sin;
	socklen_t len = sizeof(sin);
	int fd = socket(AF_INET, SOCK_STREAM, 0), port = -1;

	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (bind(fd, (struct sockaddr *)&sin, sizeof(sin)) == 0 &&
	    getsockname(fd, (struct sockaddr *)&sin, &len) == 0)
		port = ntohs(sin.sin_port);
	close(fd);
	return port;
}

static pid_t spawn(const char *const *argv, const char *log, int stdout_pipe[2])
{
	pid_t parent = getpid();
	pid_t pid = fork();

	if (pid == 0) {
		char *v[64];
		int i;
		int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0644);

		/*
		 * Check leaves a failed test with _exit(), skipping its teardown:
		 * the daemons it started must not outlive it.
		 */
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent)
			_exit(127);
		if (fd >= 0) {
			dup2(fd, STDERR_FILENO);
			if (!stdout_pipe)
				dup2(fd, STDOUT_FILENO);
		}
		if (stdout_pipe) {
			dup2(stdout_pipe[1], STDOUT_FILENO);
			close(stdout_pipe[0]);
		}
		setpgid(0, 0);
		for (i = 0; argv[i] && i < 63; i++)
			v[i] = xstrdup(argv[i]);
		v[i] = NULL;
		execv(v[0], v);
		fprintf(stderr, "cannot run %s: %s\n", argv[0], strerror(errno));
		_exit(127);
	}
	return pid;
}

int harness_fake_start(struct proc *p, const char *const *args)
{
	const char *bin = getenv("FAKE_BACKEND");
	const char *argv[32];
	int fds[2], n = 0, i;
	char line[128];
	size_t len = 0;
	static int seq;

	memset(p, 0, sizeof(*p));
	argv[n++] = bin && *bin ? bin : "build/fake-backend";
	argv[n++] = "--port";
	argv[n++] = "0";
	for (i = 0; args && args[i] && n < 30; i++)
		argv[n++] = args[i];
	argv[n] = NULL;
	snprintf(p->log, sizeof(p->log), "%s/fake-%d.log", harness_tmpdir(), seq++);
	if (pipe(fds) < 0)
		return -1;
	p->pid = spawn(argv, p->log, fds);
	close(fds[1]);
	/* read "port=N\n" */
	while (len < sizeof(line) - 1) {
		ssize_t r = read(fds[0], line + len, 1);
		if (r <= 0)
			break;
		if (line[len] == '\n') {
			line[len] = '\0';
			if (strncmp(line, "port=", 5) == 0) {
				p->port = atoi(line + 5);
				break;
			}
			len = 0;
			continue;
		}
		len++;
	}
	close(fds[0]);
	if (p->port <= 0) {
		fprintf(stderr, "harness: the fake backend did not report its port (log %s)\n",
			p->log);
		harness_stop(p, SIGKILL);
		return -1;
	}
	return 0;
}

int harness_parleyd_start(struct proc *p, const char *db, const char *const *args)
{
	const char *bin = getenv("PARLEYD");
	const char *argv[48];
	char listen[64];
	int n = 0, i, tries;
	static int seq;

	memset(p, 0, sizeof(*p));
	p->port = harness_free_port();
	snprintf(listen, sizeof(listen), "127.0.0.1:%d", p->port);
	argv[n++] = bin && *bin ? bin : "build/parleyd";
	argv[n++] = "--listen";
	argv[n++] = listen;
	argv[n++] = "--db";
	argv[n++] = db;
	for (i = 0; args && args[i] && n < 46; i++)
		argv[n++] = args[i];
	argv[n] = NULL;
	snprintf(p->log, sizeof(p->log), "%s/parleyd-%d.log", harness_tmpdir(), seq++);
	p->pid = spawn(argv, p->log, NULL);
	for (tries = 0; tries < 200; tries++) {
		int st;
		if (harness_http(p->port, "GET", "/healthz", NULL, NULL, NULL) == 200)
			return 0;
		if (waitpid(p->pid, &st, WNOHANG) == p->pid) {
			fprintf(stderr, "harness: parleyd exited at start (log %s)\n", p->log);
			p->pid = 0;
			return -1;
		}
		usleep(25000);
	}
	fprintf(stderr, "harness: parleyd did not answer /healthz (log %s)\n", p->log);
	harness_stop(p, SIGKILL);
	return -1;
}

int harness_start_with_ollama(struct proc *fake, const char *const *fake_args, struct proc *parleyd,
			      const char *db, int max_concurrency)
{
	char backend[200];
	const char *args[] = {"--backend", backend, NULL};

	if (harness_fake_start(fake, fake_args) < 0)
		return -1;
	snprintf(backend, sizeof(backend),
		 "name=ollama,kind=ollama,url=http://127.0.0.1:%d,max_concurrency=%d", fake->port,
		 max_concurrency);
	if (harness_parleyd_start(parleyd, db, args) < 0) {
		harness_stop(fake, SIGTERM);
		return -1;
	}
	return 0;
}

int harness_stop(struct proc *p, int sig)
{
	int st = 0, i;

	if (p->pid <= 0)
		return -1;
	kill(p->pid, sig);
	for (i = 0; i < 600; i++) {
		if (waitpid(p->pid, &st, WNOHANG) == p->pid) {
			p->pid = 0;
			return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
		}
		usleep(50000);
	}
	kill(p->pid, SIGKILL);
	waitpid(p->pid, &st, 0);
	p->pid = 0;
	return -1;
}

static struct strbuf last_headers;

const char *harness_last_headers(void)
{
	return last_headers.buf ? last_headers.buf : "";
}

static size_t on_header(char *data, size_t size, size_t nmemb, void *ud)
{
	strbuf_add(ud, data, size * nmemb);
	return size * nmemb;
}

static size_t on_body(char *data, size_t size, size_t nmemb, void *ud)
{
	strbuf_add(ud, data, size * nmemb);
	return size * nmemb;
}

int harness_http(int port, const char *method, const char *path, const char *body,
		 const char *const *headers, char **out)
{
	CURL *c = curl_easy_init();
	struct curl_slist *hl = NULL;
	struct strbuf sb;
	char url[1024];
	long status = 0;
	int i;

	strbuf_init(&sb, 0);
	if (!last_headers.buf)
		strbuf_init(&last_headers, 0);
	strbuf_reset(&last_headers);
	curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(c, CURLOPT_HEADERDATA, &last_headers);
	snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", port, path);
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 30000L);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &sb);
	if (strcmp(method, "HEAD") == 0)
		curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
	if (body) {
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
		curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
		hl = curl_slist_append(hl, "Content-Type: application/json");
	}
	hl = curl_slist_append(hl, "Expect:");
	for (i = 0; headers && headers[i]; i++)
		hl = curl_slist_append(hl, headers[i]);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, hl);
	if (curl_easy_perform(c) == CURLE_OK)
		curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
	curl_slist_free_all(hl);
	curl_easy_cleanup(c);
	if (out)
		*out = strbuf_detach(&sb, NULL);
	strbuf_release(&sb);
	return (int)status;
}

int harness_http_json(int port, const char *method, const char *path, const char *body,
		      json_t **out)
{
	char *text = NULL;
	int status = harness_http(port, method, path, body, NULL, &text);

	*out = text ? json_loads(text, 0, NULL) : NULL;
	free(text);
	return status;
}

static int ended(json_t *job, void *ud)
{
	const char *s = json_string_value(json_object_get(job, "status"));

	(void)ud;
	return s && (strcmp(s, "succeeded") == 0 || strcmp(s, "failed") == 0 ||
		     strcmp(s, "cancelled") == 0);
}

json_t *harness_wait_until(int port, const char *id, long timeout_ms,
			   int (*pred)(json_t *job, void *ud), void *ud)
{
	int64_t deadline = util_mono_us() + timeout_ms * 1000;
	char path[128];

	snprintf(path, sizeof(path), "/v1/jobs/%s", id);
	while (util_mono_us() < deadline) {
		json_t *job = NULL;
		if (harness_http_json(port, "GET", path, NULL, &job) == 200 && pred(job, ud))
			return job;
		json_decref(job);
		usleep(20000);
	}
	return NULL;
}

int harness_wait_members(int port, int n, int slots, long timeout_ms)
{
	int64_t deadline = util_mono_us() + timeout_ms * 1000;

	while (util_mono_us() < deadline) {
		json_t *b = NULL, *m, *members;
		size_t k;
		int up = 0;

		harness_http_json(port, "GET", "/v1/backends", NULL, &b);
		members =
		    json_object_get(json_array_get(json_object_get(b, "items"), 0), "members");
		json_array_foreach(members, k, m)
		{
			const char *st = json_string_value(json_object_get(m, "status"));

			up += st && !strcmp(st, "up") &&
			      json_integer_value(json_object_get(m, "slots")) == slots;
		}
		json_decref(b);
		if (up == n)
			return 0;
		usleep(50000);
	}
	return -1;
}

json_t *harness_call(int port, const char *method, const char *path, const char *body, int want)
{
	json_t *j = NULL;
	int st = harness_http_json(port, method, path, body, &j);

	ck_assert_msg(st == want, "%s %s gave %d, want %d: %s", method, path, st, want,
		      j ? json_dumps(j, 0) : "(not JSON)");
	ck_assert_ptr_nonnull(j);
	return j;
}

char *harness_submit(int port, const char *body)
{
	json_t *j = harness_call(port, "POST", "/v1/jobs", body, 202);
	char *id = xstrdup(json_string_value(json_object_get(j, "id")));

	json_decref(j);
	return id;
}

json_t *harness_wait_job(int port, const char *id, long timeout_ms)
{
	return harness_wait_until(port, id, timeout_ms, ended, NULL);
}
