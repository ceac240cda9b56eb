DROP TABLE IF EXISTS stage_raw;
DROP TABLE IF EXISTS stage_quarantine;
DROP TABLE IF EXISTS stage_dq_runs;
DROP TABLE IF EXISTS stage_catalog;
DROP TABLE IF EXISTS stage_intake_files;
