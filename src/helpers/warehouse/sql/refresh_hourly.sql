-- Rebuild the hourly aggregates of one series from raw_series.
-- Both statements bind the same parameter: series_id.
DELETE FROM hourly_series WHERE series_id = ?;

INSERT INTO hourly_series (series_id, ts, y_mean, y_sum, y_min, y_max, temperature_mean,
                           temperature_min, temperature_max, workday, n_obs)
SELECT
    series_id,
    DATE_TRUNC('hour', ts) AS ts,
    AVG(y),
    SUM(y),
    MIN(y),
    MAX(y),
    AVG(temperature),
    MIN(temperature),
    MAX(temperature),
    MAX(workday),
    COUNT(*)
FROM raw_series
WHERE series_id = ?
GROUP BY series_id, DATE_TRUNC('hour', ts);
