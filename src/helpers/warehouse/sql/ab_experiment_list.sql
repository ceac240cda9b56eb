-- Every stored experiment with its size.
SELECT e.experiment_id, e.control, e.description, e.source, e.updated_at, e.allocation, e.baseline_rate,
       COUNT(u.user_id) AS users, COUNT(DISTINCT u.variant) AS variants
FROM ab_experiments AS e
LEFT JOIN ab_users AS u ON u.experiment_id = e.experiment_id
GROUP BY e.experiment_id, e.control, e.description, e.source, e.updated_at, e.allocation, e.baseline_rate
ORDER BY e.experiment_id
