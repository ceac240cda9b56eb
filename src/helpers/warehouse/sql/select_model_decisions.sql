-- The retraining decisions of one series, oldest first (bound: series_id).
SELECT * FROM model_decisions WHERE series_id = ? ORDER BY decided_at, decision_id
