-- Row count of one allow-listed table ({table}).
SELECT COUNT(*) AS n FROM {table}
