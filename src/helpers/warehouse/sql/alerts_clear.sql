-- The condition of an open alert no longer holds (bound: cleared_at, delivered of the
-- cleared notice, alert_id).
UPDATE alerts SET cleared_at = ?, delivered = ? WHERE alert_id = ?
