-- One operating cycle's record (bound: every column of cycles, in order).
INSERT INTO cycles (cycle_id, started_at, finished_at, status, files_new, rows_loaded, forecasts_logged, note)
VALUES (?, ?, ?, ?, ?, ?, ?, ?);
