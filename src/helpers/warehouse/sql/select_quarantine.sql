-- Quarantined rows of one ingest run (bound: run_id).
SELECT * FROM quarantine WHERE run_id = ? ORDER BY row_number
