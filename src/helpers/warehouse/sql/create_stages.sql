-- Session-scoped staging tables: ingest fills them first, so the transaction that
-- publishes a load holds only DML (Snowflake commits implicitly on DDL).
CREATE OR REPLACE TEMPORARY TABLE stage_raw AS SELECT * FROM raw_series WHERE 1 = 0;
CREATE OR REPLACE TEMPORARY TABLE stage_quarantine AS SELECT * FROM quarantine WHERE 1 = 0;
CREATE OR REPLACE TEMPORARY TABLE stage_dq_runs AS SELECT * FROM dq_runs WHERE 1 = 0;
CREATE OR REPLACE TEMPORARY TABLE stage_catalog AS SELECT * FROM series_catalog WHERE 1 = 0;
CREATE OR REPLACE TEMPORARY TABLE stage_intake_files AS SELECT * FROM intake_files WHERE 1 = 0;
