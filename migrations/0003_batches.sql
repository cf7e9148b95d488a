-- 0003_batches: batches of jobs, the judge a job names, full-text search over optimizations.

-- One interviewer x N candidates x M scenarios (x repeat), run as jobs that name the batch
-- (jobs.batch_id). The batch keeps what was asked for; its state is derived from its jobs.
CREATE TABLE batches (
	seq                 INTEGER PRIMARY KEY,   -- insertion order; cursors page on it
	id                  TEXT NOT NULL UNIQUE,
	interviewer_model   TEXT NOT NULL,
	interviewer_backend TEXT NOT NULL,
	candidates          TEXT NOT NULL,         -- JSON array of {model, backend}, in the order given
	scenarios           TEXT NOT NULL,         -- JSON array of scenario snapshots, in the order given
	repeat              INTEGER NOT NULL DEFAULT 1,
	max_turns           INTEGER NOT NULL,
	options             TEXT NOT NULL DEFAULT '{}',
	scoring             TEXT NOT NULL,
	extraction          TEXT NOT NULL,
	judge               TEXT,                  -- JSON {model, backend} when scoring is "judge"
	labels              TEXT NOT NULL DEFAULT '{}',
	created_at          INTEGER NOT NULL,
	cancelled_at        INTEGER                -- when POST .../cancel was accepted
);

-- The judge of a job scored "judge": JSON {model, backend}; NULL otherwise.
ALTER TABLE jobs ADD COLUMN judge TEXT;

CREATE INDEX optimizations_job ON optimizations (job_id, ord);

-- Words of every optimization's title and detail (porter: "caching" finds "cache"). An
-- external-content table: the text lives in optimizations, the triggers keep the index in step.
CREATE VIRTUAL TABLE optimizations_fts USING fts5 (
	title, detail, content = 'optimizations', content_rowid = 'id',
	tokenize = 'porter unicode61'
);

CREATE TRIGGER optimizations_fts_insert AFTER INSERT ON optimizations BEGIN
	INSERT INTO optimizations_fts (rowid, title, detail) VALUES (new.id, new.title, new.detail);
END;

CREATE TRIGGER optimizations_fts_delete AFTER DELETE ON optimizations BEGIN
	INSERT INTO optimizations_fts (optimizations_fts, rowid, title, detail)
	VALUES ('delete', old.id, old.title, old.detail);
END;

CREATE TRIGGER optimizations_fts_update AFTER UPDATE ON optimizations BEGIN
	INSERT INTO optimizations_fts (optimizations_fts, rowid, title, detail)
	VALUES ('delete', old.id, old.title, old.detail);
	INSERT INTO optimizations_fts (rowid, title, detail) VALUES (new.id, new.title, new.detail);
END;

-- Optimizations stored before this migration.
INSERT INTO optimizations_fts (optimizations_fts) VALUES ('rebuild');
