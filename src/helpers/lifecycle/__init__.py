"""The model lifecycle: MLflow tracking of each model comparison and the model registry
(versions of the forecast artifact with lineage, the ``champion`` and ``challenger`` aliases)."""
