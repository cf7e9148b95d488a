-- 0006_extraction_method: the model a job's "model" extraction asks, and how each
-- optimization was found.

-- JSON {model, backend} named for extraction "model"; NULL when the judge's model is used or
-- the extraction needs no model.
ALTER TABLE jobs ADD COLUMN extractor TEXT;
-- The same for the jobs of a batch.
ALTER TABLE batches ADD COLUMN extractor TEXT;
-- "rubric", "origin" or "model"; NULL for optimizations stored before this migration.
ALTER TABLE optimizations ADD COLUMN method TEXT;
