-- How many staged forecast-log rows are new (their prediction_id is not logged yet).
SELECT COUNT(*) AS n
FROM stage_forecast_log s
WHERE NOT EXISTS (SELECT 1 FROM forecast_log f WHERE f.prediction_id = s.prediction_id)
