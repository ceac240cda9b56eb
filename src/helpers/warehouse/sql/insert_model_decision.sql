-- One retraining decision (helpers.lifecycle.decisions; bound: every column of model_decisions, in order).
INSERT INTO model_decisions (decision_id, series_id, registered_model, decided_at, outcome, triggered_by, red_signals,
                             champion_version, challenger_version, champion_model, challenger_model, champion_mae,
                             challenger_mae, champion_rmse, challenger_rmse, champion_coverage_80,
                             challenger_coverage_80, champion_coverage_95, challenger_coverage_95, margin, folds,
                             horizon_days, cutoffs, message, delivered)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?);
