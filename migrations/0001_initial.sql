-- 0001_initial: scenarios, jobs, turns, optimizations, idempotency keys.
-- Times are integer microseconds since the epoch (UTC); NULL when not yet known.

CREATE TABLE scenarios (
	name        TEXT PRIMARY KEY,
	problem     TEXT NOT NULL,
	context     TEXT NOT NULL,
	goal        TEXT NOT NULL,
	prompts     TEXT,               -- JSON object of prompt overrides, or NULL
	builtin     INTEGER NOT NULL DEFAULT 0,
	created_at  INTEGER NOT NULL,
	updated_at  INTEGER NOT NULL
);

CREATE TABLE jobs (
	seq                 INTEGER PRIMARY KEY,   -- insertion order; cursors page on it
	id                  TEXT NOT NULL UNIQUE,
	status              TEXT NOT NULL CHECK (status IN
	                        ('queued', 'running', 'succeeded', 'failed', 'cancelled')),
	scenario_name       TEXT NOT NULL,
	scenario            TEXT NOT NULL,         -- JSON snapshot taken at submit time
	interviewer_model   TEXT NOT NULL,
	interviewer_backend TEXT NOT NULL,
	candidate_model     TEXT NOT NULL,
	candidate_backend   TEXT NOT NULL,
	max_turns           INTEGER NOT NULL,
	options             TEXT NOT NULL DEFAULT '{}',
	scoring             TEXT NOT NULL,
	extraction          TEXT NOT NULL,
	labels              TEXT NOT NULL DEFAULT '{}',
	batch_id            TEXT,
	created_at          INTEGER NOT NULL,
	started_at          INTEGER,
	finished_at         INTEGER,
	attempts            INTEGER NOT NULL DEFAULT 0,
	turns_completed     INTEGER NOT NULL DEFAULT 0,
	error_code          TEXT,
	error_message       TEXT,
	metrics             TEXT,                  -- JSON: scores, totals; NULL until finished
	cancel_requested    INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX jobs_status ON jobs (status, seq);
CREATE INDEX jobs_scenario ON jobs (scenario_name, seq);
CREATE INDEX jobs_batch ON jobs (batch_id, seq) WHERE batch_id IS NOT NULL;

CREATE TABLE turns (
	job_id            TEXT NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
	idx               INTEGER NOT NULL,        -- 1-based
	role              TEXT NOT NULL CHECK (role IN ('interviewer', 'candidate')),
	model             TEXT NOT NULL,
	backend           TEXT NOT NULL,
	text              TEXT NOT NULL,
	started_at        INTEGER NOT NULL,
	finished_at       INTEGER NOT NULL,
	wall_ms           REAL NOT NULL,
	ttft_ms           REAL,
	prompt_tokens     INTEGER,
	cached_tokens     INTEGER,
	completion_tokens INTEGER,
	prompt_ms         REAL,
	gen_ms            REAL,
	tokens_per_s      REAL,
	load_ms           REAL,
	finish_reason     TEXT,
	attempts          INTEGER NOT NULL DEFAULT 1,
	note              TEXT,                    -- e.g. why the turn was restarted
	UNIQUE (job_id, idx)
);

CREATE TABLE optimizations (
	id           INTEGER PRIMARY KEY,
	job_id       TEXT NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
	ord          INTEGER NOT NULL,
	turn         INTEGER NOT NULL,
	title        TEXT NOT NULL,
	detail       TEXT,
	test         TEXT,
	suggestion   TEXT NOT NULL,
	extracted_at INTEGER NOT NULL,
	UNIQUE (job_id, ord)
);

CREATE TABLE idempotency_keys (
	key        TEXT PRIMARY KEY,
	body_hash  TEXT NOT NULL,
	job_id     TEXT NOT NULL,
	created_at INTEGER NOT NULL
);
