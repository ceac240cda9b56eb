-- Publish staged experiments, inside one transaction: an experiment in the stage replaces
-- every stored row of that experiment (a file is a complete export of it); other
-- experiments are untouched. Quarantined rows are appended.
DELETE FROM ab_users USING stage_ab_experiments
WHERE ab_users.experiment_id = stage_ab_experiments.experiment_id;

INSERT INTO ab_users (experiment_id, user_id, variant, assigned_at, converted, revenue, run_id)
SELECT experiment_id, user_id, variant, assigned_at, converted, revenue, run_id FROM stage_ab_users;

DELETE FROM ab_experiments USING stage_ab_experiments
WHERE ab_experiments.experiment_id = stage_ab_experiments.experiment_id;

INSERT INTO ab_experiments (experiment_id, control, description, source, updated_at, allocation, baseline_rate)
SELECT experiment_id, control, description, source, updated_at, allocation, baseline_rate FROM stage_ab_experiments;

INSERT INTO quarantine SELECT * FROM stage_quarantine;
