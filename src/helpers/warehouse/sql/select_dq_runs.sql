-- Data-quality history of one series, newest run first (bound: series_id).
SELECT * FROM dq_runs WHERE series_id = ? ORDER BY started_at DESC
