-- Per-user revenue of one experiment (bound: experiment_id), for rank tests.
SELECT variant, revenue FROM ab_users WHERE experiment_id = ? ORDER BY variant, user_id
