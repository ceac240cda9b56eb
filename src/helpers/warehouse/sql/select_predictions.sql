-- Every logged forecast with the mean of its day where the warehouse has it (daily_series.y_mean
-- of the same series on target_date; NULL while unknown). The caller scales it to the forecasts'
-- daily total (helpers.data.series.daily_total_scale).
SELECT f.prediction_id, f.source, f.series_id, f.issued_at, f.model, f.model_version, f.fitted_until,
       f.target_date, f.horizon_step, f.forecast, f.lower_80, f.upper_80, f.lower_95, f.upper_95,
       d.y_mean AS actual_mean
FROM forecast_log f
LEFT JOIN daily_series d ON d.series_id = f.series_id AND d.ts = f.target_date
ORDER BY f.target_date, f.issued_at, f.prediction_id
