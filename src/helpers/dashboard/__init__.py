"""The dashboard (``make dashboard``, Streamlit on http://127.0.0.1:8501): forecasts, batch
forecasts, past predictions, monitoring, data quality and models for the people on call.

The top layer: it asks the forecast service over HTTP (:mod:`helpers.dashboard.client`, never
importing it), reads the warehouse read-only and the model registry (:mod:`helpers.dashboard.data`)
and shapes what it gets for the pages (:mod:`helpers.dashboard.views`). The pages
(``screens/*.py``, run by ``app.py``) only lay out.
"""
