-- Warehouse schema, Snowflake dialect (transpiled by sqlglot for DuckDB).
-- Every table is keyed by series, so several series live side by side.

CREATE TABLE IF NOT EXISTS raw_series (
    series_id     VARCHAR       NOT NULL,
    ts            TIMESTAMP_NTZ NOT NULL,   -- start of the observation period, local time as given
    y             DOUBLE        NOT NULL,   -- the target (e.g. demand, GW)
    temperature   DOUBLE,                   -- optional covariate (deg C)
    workday       SMALLINT,                 -- optional 0/1 flag
    run_id        VARCHAR       NOT NULL,   -- ingest run that last wrote the row
    PRIMARY KEY (series_id, ts)
);

CREATE TABLE IF NOT EXISTS hourly_series (
    series_id         VARCHAR       NOT NULL,
    ts                TIMESTAMP_NTZ NOT NULL,   -- start of the hour
    y_mean            DOUBLE,
    y_sum             DOUBLE,
    y_min             DOUBLE,
    y_max             DOUBLE,
    temperature_mean  DOUBLE,
    temperature_min   DOUBLE,
    temperature_max   DOUBLE,
    workday           SMALLINT,
    n_obs             INTEGER,                  -- raw rows in the hour (compare with the expected count)
    PRIMARY KEY (series_id, ts)
);

CREATE TABLE IF NOT EXISTS daily_series (
    series_id         VARCHAR       NOT NULL,
    ts                TIMESTAMP_NTZ NOT NULL,   -- midnight starting the day
    y_mean            DOUBLE,
    y_sum             DOUBLE,
    y_min             DOUBLE,
    y_max             DOUBLE,
    temperature_mean  DOUBLE,
    temperature_min   DOUBLE,
    temperature_max   DOUBLE,
    workday           SMALLINT,
    n_obs             INTEGER,
    PRIMARY KEY (series_id, ts)
);

CREATE TABLE IF NOT EXISTS quarantine (
    run_id          VARCHAR       NOT NULL,
    series_id       VARCHAR       NOT NULL,
    source_file     VARCHAR       NOT NULL,
    row_number      INTEGER       NOT NULL,  -- 1-based data row in the file (header not counted)
    reasons         VARCHAR       NOT NULL,  -- 'kind:column' items joined by '; '
    record          VARCHAR       NOT NULL,  -- the row as read, JSON text
    quarantined_at  TIMESTAMP_NTZ NOT NULL
);

CREATE TABLE IF NOT EXISTS dq_runs (
    run_id               VARCHAR       NOT NULL,
    series_id            VARCHAR       NOT NULL,
    source_file          VARCHAR       NOT NULL,
    file_sha256          VARCHAR       NOT NULL,
    started_at           TIMESTAMP_NTZ NOT NULL,
    finished_at          TIMESTAMP_NTZ NOT NULL,
    rows_read            INTEGER       NOT NULL,
    rows_loaded          INTEGER       NOT NULL,
    rows_quarantined     INTEGER       NOT NULL,
    rows_inserted        INTEGER       NOT NULL,  -- loaded rows with a new key
    rows_updated         INTEGER       NOT NULL,  -- loaded rows that replaced a stored key
    missing_value        INTEGER       NOT NULL,
    unparseable          INTEGER       NOT NULL,
    out_of_range         INTEGER       NOT NULL,
    duplicate_timestamp  INTEGER       NOT NULL,
    unknown_category     INTEGER       NOT NULL,
    off_frequency        INTEGER       NOT NULL,
    out_of_order         INTEGER       NOT NULL,  -- reported, rows are sorted and loaded
    missing_timestamps   INTEGER       NOT NULL,  -- expected timestamps absent after cleaning
    gap_count            INTEGER       NOT NULL,  -- runs of consecutive missing timestamps
    PRIMARY KEY (run_id)
);

CREATE TABLE IF NOT EXISTS series_catalog (
    series_id        VARCHAR       NOT NULL,
    freq             VARCHAR       NOT NULL,   -- pandas offset alias
    source_file      VARCHAR       NOT NULL,
    target_col       VARCHAR       NOT NULL,   -- column names in the source file
    temperature_col  VARCHAR,
    workday_col      VARCHAR,
    updated_at       TIMESTAMP_NTZ NOT NULL,
    PRIMARY KEY (series_id)
);

-- A/B experiments: one row per user (helpers.ab.store).
CREATE TABLE IF NOT EXISTS ab_users (
    experiment_id  VARCHAR       NOT NULL,
    user_id        VARCHAR       NOT NULL,
    variant        VARCHAR       NOT NULL,
    assigned_at    TIMESTAMP_NTZ NOT NULL,   -- when the user was assigned to the variant
    converted      SMALLINT      NOT NULL,   -- 0/1
    revenue        DOUBLE        NOT NULL,   -- revenue from the user (0 when not converted)
    run_id         VARCHAR       NOT NULL,   -- load that wrote the row
    PRIMARY KEY (experiment_id, user_id)
);

CREATE TABLE IF NOT EXISTS ab_experiments (
    experiment_id  VARCHAR       NOT NULL,
    control        VARCHAR       NOT NULL,   -- the variant the others are compared with
    description    VARCHAR,
    source         VARCHAR       NOT NULL,   -- 'generated' or the file it came from
    updated_at     TIMESTAMP_NTZ NOT NULL,
    allocation     VARCHAR,                  -- planned share per variant, JSON {"variant": share}; NULL = equal
    baseline_rate  DOUBLE,                   -- expected control conversion rate, fixed before the test; NULL = none
    PRIMARY KEY (experiment_id)
);

-- Warehouses made before the plan columns existed get them in place (same column order).
ALTER TABLE ab_experiments ADD COLUMN IF NOT EXISTS allocation VARCHAR;
ALTER TABLE ab_experiments ADD COLUMN IF NOT EXISTS baseline_rate DOUBLE;
