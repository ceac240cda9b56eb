-- What each channel did with an alert's latest notice: JSON {channel: "sent" or the error}
-- (bound: delivered, alert_id).
UPDATE alerts SET delivered = ? WHERE alert_id = ?
