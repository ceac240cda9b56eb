-- The alerts a reconcile works on (helpers.operate.alerts; bound: the earliest cleared_at still
-- retried): every open alert, and those cleared since then, whose cleared notice may still
-- await delivery. The weekly summary's records (severity 'info') are not alerts.
SELECT * FROM alerts
WHERE severity <> 'info' AND (cleared_at IS NULL OR cleared_at >= ?)
ORDER BY opened_at, alert_id
