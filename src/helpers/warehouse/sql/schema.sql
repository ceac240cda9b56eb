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

-- The operating loop (helpers.operate): files taken in, forecasts issued, alerts raised, cycles run.
CREATE TABLE IF NOT EXISTS intake_files (
    file_sha256       VARCHAR       NOT NULL,   -- content hash: a file is taken in once, whatever its name
    file_name         VARCHAR       NOT NULL,   -- name in the inbox when it was taken in
    series_id         VARCHAR       NOT NULL,
    cycle_id          VARCHAR       NOT NULL,   -- the cycle that took it in
    run_id            VARCHAR,                  -- the ingest run (dq_runs, quarantine); NULL when refused whole
    processed_at      TIMESTAMP_NTZ NOT NULL,
    outcome           VARCHAR       NOT NULL,   -- good (every row loaded), mixed, bad (no row loaded)
    rows_read         INTEGER       NOT NULL,
    rows_loaded       INTEGER       NOT NULL,
    rows_quarantined  INTEGER       NOT NULL,
    invalid_share     DOUBLE        NOT NULL,   -- rows_quarantined / rows_read (1 for a file refused whole)
    criticality       VARCHAR       NOT NULL,   -- low, medium, high (env.yaml intake_* thresholds)
    errors            VARCHAR       NOT NULL,   -- JSON {error kind: rows}
    reason            VARCHAR,                  -- why a file was refused whole
    archived_as       VARCHAR       NOT NULL,   -- where the original went
    bad_rows_file     VARCHAR,                  -- the bad rows with their reasons (mixed files)
    first_ts          TIMESTAMP_NTZ,            -- the loaded rows' time span
    last_ts           TIMESTAMP_NTZ,
    PRIMARY KEY (file_sha256)
);

CREATE TABLE IF NOT EXISTS forecast_log (
    prediction_id  VARCHAR       NOT NULL,   -- unique per logged row: folding a log twice adds nothing
    source         VARCHAR       NOT NULL,   -- scheduled (a cycle), api (served by POST /predict) or webapp (to the dashboard)
    series_id      VARCHAR       NOT NULL,
    issued_at      TIMESTAMP_NTZ NOT NULL,   -- UTC
    model          VARCHAR       NOT NULL,
    model_version  VARCHAR       NOT NULL,   -- the artifact's created_utc (or the cycle's fit)
    fitted_until   TIMESTAMP_NTZ NOT NULL,   -- the last day of data the model was fitted on
    target_date    TIMESTAMP_NTZ NOT NULL,   -- the day forecast
    horizon_step   INTEGER       NOT NULL,   -- days after fitted_until (1 = the next day)
    forecast       DOUBLE        NOT NULL,
    lower_80       DOUBLE,
    upper_80       DOUBLE,
    lower_95       DOUBLE,
    upper_95       DOUBLE,
    PRIMARY KEY (prediction_id)
);

CREATE TABLE IF NOT EXISTS alerts (
    alert_id      VARCHAR       NOT NULL,
    condition     VARCHAR       NOT NULL,   -- what is wrong, e.g. 'accuracy:ets_calendar' or 'file:<sha256>'
    severity      VARCHAR       NOT NULL,   -- orange, red (signals) or high (a file's criticality)
    opened_at     TIMESTAMP_NTZ NOT NULL,
    last_seen_at  TIMESTAMP_NTZ NOT NULL,
    cleared_at    TIMESTAMP_NTZ,            -- NULL while the condition holds: one alert until it clears
    message       VARCHAR       NOT NULL,
    delivered     VARCHAR,                  -- JSON: per channel, sent or the error
    PRIMARY KEY (alert_id)
);

CREATE TABLE IF NOT EXISTS cycles (
    cycle_id          VARCHAR       NOT NULL,
    started_at        TIMESTAMP_NTZ NOT NULL,
    finished_at       TIMESTAMP_NTZ,
    status            VARCHAR       NOT NULL,   -- running, ok, skipped (no new data), failed
    files_new         INTEGER,
    rows_loaded       INTEGER,
    forecasts_logged  INTEGER,
    note              VARCHAR,
    PRIMARY KEY (cycle_id)
);

-- Retraining decisions (helpers.lifecycle.retrain): one row per challenger trained and scored
-- against the champion (or whose training failed). The rule is due again retrain_every_days after
-- the last row, or when an accuracy or drift signal not in that row's red_signals turns red.
CREATE TABLE IF NOT EXISTS model_decisions (
    decision_id             VARCHAR       NOT NULL,
    series_id               VARCHAR       NOT NULL,
    registered_model        VARCHAR       NOT NULL,   -- the MLflow registered model (registry_model)
    decided_at              TIMESTAMP_NTZ NOT NULL,   -- the cycle's time (UTC)
    outcome                 VARCHAR       NOT NULL,   -- promoted, kept, failed
    triggered_by            VARCHAR       NOT NULL,   -- schedule, red, or both
    red_signals             VARCHAR,                  -- accuracy and drift signals red at the decision, comma-separated
    champion_version        INTEGER,                  -- the champion when the decision was made
    challenger_version      INTEGER,                  -- NULL when the challenger was never registered
    champion_model          VARCHAR,                  -- each version's selected model
    challenger_model        VARCHAR,
    champion_mae            DOUBLE,                   -- pooled over the folds below (NULL: not scored)
    challenger_mae          DOUBLE,
    champion_rmse           DOUBLE,
    challenger_rmse         DOUBLE,
    champion_coverage_80    DOUBLE,                   -- share of actual values inside the served intervals
    challenger_coverage_80  DOUBLE,
    champion_coverage_95    DOUBLE,
    challenger_coverage_95  DOUBLE,
    margin                  DOUBLE        NOT NULL,   -- retrain_margin: the relative MAE improvement needed
    folds                   INTEGER       NOT NULL,   -- folds both were scored on (0: not scored)
    horizon_days            INTEGER       NOT NULL,
    cutoffs                 VARCHAR,                  -- JSON list of the folds' cutoffs
    message                 VARCHAR       NOT NULL,   -- the decision in one sentence, with its numbers
    delivered               VARCHAR,                  -- JSON: per alert channel, sent or the error
    PRIMARY KEY (decision_id)
);
