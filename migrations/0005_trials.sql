-- 0005_trials: the closed loop's work on a scenario (DESIGN §7), as JSON texts or NULL:
-- baseline {system, template, options}, tasks [{id, input, checks}], objective
-- {kind, max_quality_drop}. The API validates them (server/tasks.c) before they get here.
ALTER TABLE scenarios ADD COLUMN baseline TEXT;
ALTER TABLE scenarios ADD COLUMN tasks TEXT;
ALTER TABLE scenarios ADD COLUMN objective TEXT;
