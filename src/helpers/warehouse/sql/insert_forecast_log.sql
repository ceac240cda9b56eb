-- Append the staged forecast-log rows whose prediction_id is not logged yet, so folding the
-- same log file (or logging the same cycle) twice adds nothing. The stage holds each
-- prediction_id once (helpers.operate.forecast_log drops repeats before loading).
INSERT INTO forecast_log (prediction_id, source, series_id, issued_at, model, model_version, fitted_until,
                          target_date, horizon_step, forecast, lower_80, upper_80, lower_95, upper_95)
SELECT prediction_id, source, series_id, issued_at, model, model_version, fitted_until,
       target_date, horizon_step, forecast, lower_80, upper_80, lower_95, upper_95
FROM stage_forecast_log s
WHERE NOT EXISTS (SELECT 1 FROM forecast_log f WHERE f.prediction_id = s.prediction_id)
