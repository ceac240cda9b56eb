-- Staging tables for an experiment load (see create_stages.sql for why they come first).
CREATE OR REPLACE TEMPORARY TABLE stage_ab_users AS SELECT * FROM ab_users WHERE 1 = 0;
CREATE OR REPLACE TEMPORARY TABLE stage_ab_experiments AS SELECT * FROM ab_experiments WHERE 1 = 0;
CREATE OR REPLACE TEMPORARY TABLE stage_quarantine AS SELECT * FROM quarantine WHERE 1 = 0;
