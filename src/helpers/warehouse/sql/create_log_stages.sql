-- Staging for the operating loop's appends (forecast log, alerts): filled first, then
-- published by one INSERT ... WHERE NOT EXISTS, so a fold or a send repeated adds nothing.
CREATE OR REPLACE TEMPORARY TABLE stage_forecast_log AS SELECT * FROM forecast_log WHERE 1 = 0;
CREATE OR REPLACE TEMPORARY TABLE stage_alerts AS SELECT * FROM alerts WHERE 1 = 0;
