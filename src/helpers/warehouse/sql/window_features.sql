-- Time-window features of one series with SQL window functions (bound: series_id).
-- {table} and {measure} come from the allow-list; {window_preceding} and {season} are validated
-- integers (a window frame cannot be a bound parameter). Frames count rows, so a
-- missing bucket shifts them: load_series reports gaps before these are read.
SELECT
    series_id,
    ts,
    {measure} AS y,
    AVG({measure}) OVER (PARTITION BY series_id ORDER BY ts
                         ROWS BETWEEN {window_preceding} PRECEDING AND CURRENT ROW) AS y_rolling_mean,
    LAG({measure}, 1) OVER (PARTITION BY series_id ORDER BY ts) AS y_lag_1,
    LAG({measure}, {season}) OVER (PARTITION BY series_id ORDER BY ts) AS y_lag_season,
    {measure} / NULLIF(LAG({measure}, {season}) OVER (PARTITION BY series_id ORDER BY ts), 0) - 1
        AS y_change_vs_season
FROM {table}
WHERE series_id = ?
ORDER BY ts
