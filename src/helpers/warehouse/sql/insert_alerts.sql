-- Publish the staged alerts (stage_alerts, create_log_stages.sql); an alert_id already
-- stored is skipped, so publishing twice adds nothing.
INSERT INTO alerts (alert_id, condition, severity, opened_at, last_seen_at, cleared_at, message, delivered)
SELECT s.alert_id, s.condition, s.severity, s.opened_at, s.last_seen_at, s.cleared_at, s.message, s.delivered
FROM stage_alerts s
WHERE NOT EXISTS (SELECT 1 FROM alerts a WHERE a.alert_id = s.alert_id)
