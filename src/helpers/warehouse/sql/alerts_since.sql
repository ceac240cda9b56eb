-- The alerts open at any time since a moment (bound: that moment, three times), newest first:
-- opened, seen or cleared since then. The weekly summary's records (severity 'info') are not alerts.
SELECT alert_id, condition, severity, opened_at, last_seen_at, cleared_at, message
FROM alerts
WHERE severity <> 'info' AND (opened_at >= ? OR last_seen_at >= ? OR cleared_at >= ?)
ORDER BY opened_at DESC, alert_id
