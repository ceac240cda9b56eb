-- How many staged rows will replace a stored row (the rest are new keys).
SELECT COUNT(*) AS n
FROM stage_raw s
JOIN raw_series r ON r.series_id = s.series_id AND r.ts = s.ts
