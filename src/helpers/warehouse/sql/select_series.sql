-- One series from an allow-listed table ({table}), oldest first (bound: series_id).
SELECT * FROM {table} WHERE series_id = ? ORDER BY ts
