INSERT INTO dq_runs SELECT * FROM stage_dq_runs
