-- A processed raw file's size and modification time as the batch saw them, so a file changed
-- after it was counted is noticed by the next run; rows recorded before this carry no time
-- (NULL) and are compared by size alone.
ALTER TABLE processed_file ADD COLUMN mtime_ns bigint;
COMMENT ON COLUMN processed_file.mtime_ns IS
    'Modification time (ns since the epoch) of the file when the run read it.';

-- What a run found wrong without failing: raw files changed or gone after they were counted,
-- .ndjson files outside the raw zone's layout.
ALTER TABLE batch_run ADD COLUMN warnings text[] NOT NULL DEFAULT '{}';
