-- An open alert whose condition still holds was seen again (bound: last_seen_at, alert_id).
UPDATE alerts SET last_seen_at = ? WHERE alert_id = ?
