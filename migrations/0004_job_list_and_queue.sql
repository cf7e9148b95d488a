-- 0004_job_list_and_queue: GET /v1/jobs?model= walks these indexes instead of the table.
CREATE INDEX jobs_interviewer_model ON jobs (interviewer_model, seq);
CREATE INDEX jobs_candidate_model ON jobs (candidate_model, seq);

-- The number of queued jobs, kept by triggers: every submit checks it against
-- max_queued_jobs, and counting the queue each time costs as much as the queue is long.
CREATE TABLE counters (
	name  TEXT PRIMARY KEY,
	value INTEGER NOT NULL
);
INSERT INTO counters (name, value) VALUES ('queued', (SELECT count(*) FROM jobs WHERE status = 'queued'));
CREATE TRIGGER jobs_queued_insert AFTER INSERT ON jobs WHEN NEW.status = 'queued'
BEGIN
	UPDATE counters SET value = value + 1 WHERE name = 'queued';
END;
CREATE TRIGGER jobs_queued_update AFTER UPDATE OF status ON jobs
WHEN (OLD.status = 'queued') <> (NEW.status = 'queued')
BEGIN
	UPDATE counters SET value = value + (CASE WHEN NEW.status = 'queued' THEN 1 ELSE -1 END)
	WHERE name = 'queued';
END;
CREATE TRIGGER jobs_queued_delete AFTER DELETE ON jobs WHEN OLD.status = 'queued'
BEGIN
	UPDATE counters SET value = value - 1 WHERE name = 'queued';
END;
