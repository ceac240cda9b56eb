-- An open alert got worse (orange -> red): its new severity and message, seen now, and its
-- deliveries reset for the new notice (bound: severity, message, last_seen_at, delivered, alert_id).
UPDATE alerts SET severity = ?, message = ?, last_seen_at = ?, delivered = ? WHERE alert_id = ?
