-- Every operating cycle, oldest first.
SELECT * FROM cycles ORDER BY started_at, cycle_id
