-- The files of one series taken in over a period, for the weekly summary
-- (bound: series_id, start, end; processed_at in [start, end)). invalid_rows weights each
-- file's invalid share by its rows read, so a file refused whole counts all its rows.
SELECT
    COUNT(*) AS files,
    COALESCE(SUM(CASE WHEN outcome = 'good' THEN 1 ELSE 0 END), 0) AS good,
    COALESCE(SUM(CASE WHEN outcome = 'mixed' THEN 1 ELSE 0 END), 0) AS mixed,
    COALESCE(SUM(CASE WHEN outcome = 'bad' THEN 1 ELSE 0 END), 0) AS bad,
    COALESCE(SUM(CASE WHEN criticality = 'high' THEN 1 ELSE 0 END), 0) AS high,
    COALESCE(SUM(CASE WHEN criticality = 'medium' THEN 1 ELSE 0 END), 0) AS medium,
    COALESCE(SUM(CASE WHEN criticality = 'low' THEN 1 ELSE 0 END), 0) AS low,
    COALESCE(SUM(rows_read), 0) AS rows_read,
    COALESCE(SUM(rows_loaded), 0) AS rows_loaded,
    COALESCE(SUM(rows_quarantined), 0) AS rows_quarantined,
    COALESCE(SUM(invalid_share * rows_read), 0) AS invalid_rows,
    COALESCE(MAX(invalid_share), 0) AS worst_invalid_share
FROM intake_files
WHERE series_id = ? AND processed_at >= ? AND processed_at < ?
