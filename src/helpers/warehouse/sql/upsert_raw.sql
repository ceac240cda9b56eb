-- Upsert staged rows on the (series_id, ts) key: replace stored rows, insert new ones.
-- Run inside one transaction (ingest does), so readers never see the key deleted.
-- Delete-then-insert instead of MERGE: the same statements run on Snowflake, DuckDB
-- and the fakesnow emulator, which cannot run MERGE inside a transaction.
DELETE FROM raw_series
USING stage_raw
WHERE raw_series.series_id = stage_raw.series_id AND raw_series.ts = stage_raw.ts;

INSERT INTO raw_series (series_id, ts, y, temperature, workday, run_id)
SELECT series_id, ts, y, temperature, workday, run_id FROM stage_raw;
