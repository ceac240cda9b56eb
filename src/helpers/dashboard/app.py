"""The dashboard's entry point (``make dashboard``: ``streamlit run src/helpers/dashboard/app.py``).

Streamlit's ``st.navigation`` runs this script on every rerun and then the page chosen; the
pages are the scripts in ``screens/`` (each also runs alone, as the tests' ``AppTest`` runs
them). Not ``pages/``: Streamlit lists a ``pages/`` folder beside the entry point by itself
until ``st.navigation`` has run once, so the first visitor would see a second, unordered menu.
"""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from helpers.dashboard import cached

PAGES = Path(__file__).parent / "screens"
#: (script, title, icon): the pages in the order of the menu; the first is the home page.
MENU = (("forecast.py", "Forecast", ":material/show_chart:"), ("batch.py", "Batch", ":material/upload_file:"),
        ("past_predictions.py", "Past predictions", ":material/history:"),
        ("monitoring.py", "Monitoring", ":material/monitor_heart:"),
        ("data_quality.py", "Data quality", ":material/fact_check:"), ("models.py", "Models", ":material/model_training:"))

st.set_page_config(page_title="Demand forecasts", page_icon=":material/bolt:", layout="wide",
                   initial_sidebar_state="expanded")
page = st.navigation([st.Page(PAGES / script, title=title, icon=icon, default=k == 0)
                      for k, (script, title, icon) in enumerate(MENU)])
with cached.shown_errors():
    settings = cached.settings()
    st.sidebar.caption(f"Service: {settings.dashboard_service_url}  \nWarehouse: {settings.warehouse_path} "
                       f"(read-only)  \nSeries: {settings.series_id}")
page.run()
