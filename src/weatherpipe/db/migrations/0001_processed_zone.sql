-- The processed zone: daily aggregates kept as counts and sums (so merging new data is exact),
-- the raw files already merged, the batch runs and the records they rejected.

CREATE TABLE batch_run (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    started_at     timestamptz NOT NULL DEFAULT now(),
    finished_at    timestamptz,
    engine         text        NOT NULL,
    mode           text        NOT NULL CHECK (mode IN ('incremental', 'full')),
    files          integer     NOT NULL DEFAULT 0,
    lines          bigint      NOT NULL DEFAULT 0,
    duplicates     bigint      NOT NULL DEFAULT 0,
    rejected       bigint      NOT NULL DEFAULT 0,
    rows_inserted  bigint      NOT NULL DEFAULT 0,
    rows_updated   bigint      NOT NULL DEFAULT 0,
    rows_unchanged bigint      NOT NULL DEFAULT 0,
    rows_deleted   bigint      NOT NULL DEFAULT 0,
    status         text        NOT NULL DEFAULT 'running'
                               CHECK (status IN ('running', 'succeeded', 'failed')),
    error          text
);
COMMENT ON COLUMN batch_run.duplicates IS
    'Records skipped because their (topic, partition, offset) was already counted.';
COMMENT ON COLUMN batch_run.rows_unchanged IS
    'Rows of daily_aggregate this run left as they were.';

-- Sums are numeric: addition is exact and associative, so merging partial sums run by run
-- gives bit for bit what one full recomputation gives.
CREATE TABLE daily_aggregate (
    location          text             NOT NULL,
    day               date             NOT NULL,
    observations      bigint           NOT NULL CHECK (observations > 0),
    temperature_sum   numeric          NOT NULL,
    humidity_sum      numeric          NOT NULL,
    wind_speed_sum    numeric          NOT NULL,
    precipitation_sum numeric          NOT NULL,
    temperature_min   double precision NOT NULL,
    temperature_max   double precision NOT NULL,
    run_id            bigint           NOT NULL REFERENCES batch_run (id),
    PRIMARY KEY (location, day)
);
CREATE INDEX daily_aggregate_day ON daily_aggregate (day);

CREATE VIEW daily_weather AS
SELECT location,
       day,
       observations,
       (temperature_sum / observations)::double precision   AS avg_temperature_c,
       (humidity_sum / observations)::double precision      AS avg_humidity_pct,
       (wind_speed_sum / observations)::double precision    AS avg_wind_speed_kmh,
       precipitation_sum::double precision                  AS total_precipitation_mm,
       (precipitation_sum / observations)::double precision AS avg_precipitation_mm,
       temperature_min                                      AS min_temperature_c,
       temperature_max                                      AS max_temperature_c
FROM daily_aggregate;

-- A finished raw file is immutable and owns the offset range in its name; a record whose
-- offset lies in the range of a processed file of its partition is never counted again.
CREATE TABLE processed_file (
    path         text        PRIMARY KEY,
    topic        text        NOT NULL,
    partition    integer     NOT NULL,
    first_offset bigint      NOT NULL,
    last_offset  bigint      NOT NULL CHECK (last_offset >= first_offset),
    size_bytes   bigint      NOT NULL,
    lines        bigint      NOT NULL,
    run_id       bigint      NOT NULL REFERENCES batch_run (id),
    processed_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX processed_file_offsets ON processed_file (topic, partition, first_offset);

CREATE TABLE quarantine (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    run_id      bigint  NOT NULL REFERENCES batch_run (id),
    file        text    NOT NULL,
    line        bigint  NOT NULL,
    topic       text,
    partition   integer,
    "offset"    bigint,
    reason      text    NOT NULL,
    field       text,
    raw         text    NOT NULL
);
CREATE INDEX quarantine_run ON quarantine (run_id);
CREATE INDEX quarantine_reason ON quarantine (reason);
