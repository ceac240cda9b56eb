-- The inbox files taken in for one series, oldest first (bound: series_id).
SELECT * FROM intake_files WHERE series_id = ? ORDER BY processed_at, file_name
