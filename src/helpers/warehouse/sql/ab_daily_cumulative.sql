-- Cumulative users, conversions and revenue per variant at the end of each day of one
-- experiment (bound: experiment_id), for sequential monitoring.
SELECT
    variant,
    day,
    SUM(users) OVER (PARTITION BY variant ORDER BY day ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS users,
    SUM(conversions) OVER (PARTITION BY variant ORDER BY day ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)
        AS conversions,
    SUM(revenue) OVER (PARTITION BY variant ORDER BY day ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS revenue
FROM (
    SELECT variant, DATE_TRUNC('DAY', assigned_at) AS day, COUNT(*) AS users, SUM(converted) AS conversions,
           SUM(revenue) AS revenue
    FROM ab_users
    WHERE experiment_id = ?
    GROUP BY variant, DATE_TRUNC('DAY', assigned_at)
) AS daily
ORDER BY day, variant
