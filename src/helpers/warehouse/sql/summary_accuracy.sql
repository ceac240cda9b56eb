-- Accuracy of the logged forecasts of one series whose target day falls in a period and has
-- its actual value, by model, for the weekly summary. The actual value is on the forecasts' scale,
-- the daily total: the day's mean (daily_series.y_mean) times the series' steps in a day
-- (bound: that scale twice, then series_id, start, end; target_date in [start, end)). Every logged forecast
-- counts, whatever its horizon or source. The 95% coverage counts only rows with an interval.
SELECT
    f.model,
    COUNT(*) AS n,
    AVG(ABS(f.forecast - d.y_mean * ?)) AS mae,
    COUNT(f.lower_95) AS n_interval,
    COALESCE(SUM(CASE WHEN f.lower_95 IS NOT NULL AND d.y_mean * ? BETWEEN f.lower_95 AND f.upper_95
                      THEN 1 ELSE 0 END), 0) AS n_covered
FROM forecast_log f
JOIN daily_series d ON d.series_id = f.series_id AND d.ts = f.target_date
WHERE f.series_id = ? AND f.target_date >= ? AND f.target_date < ? AND d.y_mean IS NOT NULL
GROUP BY f.model
ORDER BY f.model
