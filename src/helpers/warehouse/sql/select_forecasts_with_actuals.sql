-- The forecast log of one series, each forecast beside the daily actual of the day it forecast
-- (bound: series_id). y_mean is NULL while that day has not been taken in.
-- A forecast logged more than once (a cycle's issue and every POST /predict that served the same
-- path) counts once: the first issue of a model version's forecast of a day from one fit.
SELECT
    f.prediction_id, f.source, f.series_id, f.issued_at, f.model, f.model_version, f.fitted_until,
    f.target_date, f.horizon_step, f.forecast, f.lower_80, f.upper_80, f.lower_95, f.upper_95,
    d.y_mean
FROM forecast_log AS f
LEFT JOIN daily_series AS d ON d.series_id = f.series_id AND d.ts = f.target_date
WHERE f.series_id = ?
QUALIFY ROW_NUMBER() OVER (PARTITION BY f.model, f.model_version, f.fitted_until, f.target_date
                           ORDER BY f.issued_at, f.prediction_id) = 1
ORDER BY f.target_date, f.model, f.model_version, f.horizon_step
