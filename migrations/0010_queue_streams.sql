-- 0010: the queue by stream. A worker looks at the oldest queued job of each stream (the jobs
-- of one batch, or the single jobs, for one pair of backends: server/pool.c) by skipping from
-- stream to stream in this index, a few seeks per stream however long the queue is.
CREATE INDEX jobs_queued_streams ON jobs (batch_id, interviewer_backend, candidate_backend, seq)
	WHERE status = 'queued';
