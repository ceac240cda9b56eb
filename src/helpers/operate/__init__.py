"""The operating loop: new data taken in, forecasts issued and logged, monitored against the
actual values, alerts sent (``make operate`` runs one cycle, ``make replay`` many)."""
