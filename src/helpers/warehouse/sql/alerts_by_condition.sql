-- Every alert row of one condition, oldest first (bound: condition); the weekly summary
-- looks up its own record, condition 'summary:<ISO year-week>'.
SELECT * FROM alerts WHERE condition = ? ORDER BY opened_at, alert_id
