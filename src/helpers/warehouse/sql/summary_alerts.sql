-- Alerts for the weekly summary (bound: start, end, start, end): opened or cleared in
-- [start, end), and every alert still open. The summary's own records (severity 'info') are left out.
SELECT * FROM alerts
WHERE severity <> 'info'
  AND ((opened_at >= ? AND opened_at < ?) OR (cleared_at >= ? AND cleared_at < ?) OR cleared_at IS NULL)
ORDER BY opened_at, alert_id
