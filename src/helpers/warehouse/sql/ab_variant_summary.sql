-- Per-variant summary statistics of one experiment (bound: experiment_id): everything the
-- conversion and revenue models need. Log-revenue moments are over paying users only.
SELECT
    variant,
    COUNT(*) AS users,
    SUM(converted) AS conversions,
    SUM(revenue) AS revenue,
    SUM(revenue * revenue) AS revenue_sq,
    SUM(CASE WHEN revenue > 0 THEN 1 ELSE 0 END) AS payers,
    SUM(CASE WHEN revenue > 0 THEN LN(revenue) ELSE 0 END) AS log_revenue,
    SUM(CASE WHEN revenue > 0 THEN LN(revenue) * LN(revenue) ELSE 0 END) AS log_revenue_sq,
    MIN(assigned_at) AS first_assigned,
    MAX(assigned_at) AS last_assigned
FROM ab_users
WHERE experiment_id = ?
GROUP BY variant
ORDER BY variant
