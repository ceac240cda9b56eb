-- Every inbox file taken in for a series, oldest first (bound: series_id).
SELECT * FROM intake_files WHERE series_id = ? ORDER BY processed_at, file_name
