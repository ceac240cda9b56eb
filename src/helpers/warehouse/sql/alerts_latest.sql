-- The latest moment an alert was opened, seen or cleared (NULL without alerts): the end of the
-- dashboard's alert window, so a replayed year is judged as of its own time.
SELECT MAX(GREATEST(opened_at, last_seen_at, COALESCE(cleared_at, last_seen_at))) AS latest
FROM alerts
WHERE severity <> 'info'
