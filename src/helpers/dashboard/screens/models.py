"""Models: champion, challenger, the registered versions and the last retraining decisions."""

import streamlit as st

from helpers.dashboard import cached, views
from helpers.dashboard.client import DashboardError
from helpers.lifecycle import decisions

st.title("Models")
st.subheader("Served now")
try:
    served = cached.read("service_models")
except DashboardError as exc:
    st.error(str(exc))
else:
    st.markdown(views.describe_served(served))
    st.dataframe(views.with_dashes(views.served_models_table(served), 3), hide_index=True)
st.subheader("Registered versions")
with cached.shown_errors():
    settings = cached.settings()
    versions = cached.read("versions")
if versions:
    st.dataframe(views.with_dashes(views.versions_table(versions), 3), hide_index=True)
else:
    st.info(f"No version of {settings.registry_model} is registered yet: `make run` registers the first.")
st.subheader("Retraining decisions")
with cached.shown_errors():
    made = cached.read("retraining")
st.markdown(decisions.summary(made, settings.retrain_every_days))
if not made.empty:
    st.dataframe(decisions.decision_table(made).head(10), hide_index=True)
