DROP TABLE IF EXISTS stage_forecast_log;
DROP TABLE IF EXISTS stage_alerts;
