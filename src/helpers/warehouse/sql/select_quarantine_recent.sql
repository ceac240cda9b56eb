-- The latest quarantined rows of one series, newest first, at most 1,000 (bound: series_id).
SELECT quarantined_at, source_file, row_number, reasons, record, run_id
FROM quarantine
WHERE series_id = ?
ORDER BY quarantined_at DESC, source_file, row_number
LIMIT 1000
