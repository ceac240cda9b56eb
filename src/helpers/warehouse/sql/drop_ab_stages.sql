DROP TABLE IF EXISTS stage_ab_users;
DROP TABLE IF EXISTS stage_ab_experiments;
DROP TABLE IF EXISTS stage_quarantine;
