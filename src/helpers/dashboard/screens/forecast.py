"""Forecast: a date range and a model -> the service's forecast with its 80/95% intervals and the recent actuals."""

from datetime import date, timedelta

import streamlit as st

from helpers.dashboard import cached, views
from helpers.dashboard.client import DashboardError

st.title("Forecast")
st.caption("Asks the forecast service (POST /predict, logged as source webapp) and draws the answer with the "
           "recent actual values from the warehouse.")
with cached.shown_errors():
    models = cached.read("service_models")
first, last = (date.fromisoformat(d) for d in (models["forecastable"]["start_date"], models["forecastable"]["end_date"]))
names = [m["name"] for m in models["models"]]

with st.form("request"):
    left, middle, right = st.columns(3)
    start = left.date_input("First day", value=first, min_value=first, max_value=last)
    end = middle.date_input("Last day", value=min(last, first + timedelta(days=13)), min_value=first, max_value=last)
    model = right.selectbox("Model", names, index=names.index(models["selected_model"]))
    asked = st.form_submit_button("Forecast", type="primary")
if asked and start > end:
    st.error(f"The first day ({start}) is after the last day ({end}): choose a first day on or before the last.")
    st.stop()
if asked or "forecast" not in st.session_state:  # the first visit shows the form's first days
    with cached.shown_errors():
        st.session_state["forecast"] = cached.client().predict(start, end, model)
st.caption(f"The service forecasts {first} to {last}; choose days and a model, then press Forecast.")

answer = st.session_state["forecast"]
forecast = views.forecast_frame(answer)
try:
    shown_from = forecast["date"].min().date() - timedelta(days=56)
    actuals = cached.read("actuals", shown_from, forecast["date"].max().date())
except DashboardError as exc:
    actuals = None
    st.warning(f"The actual values are not shown: {exc}")
st.plotly_chart(views.plot_forecast(forecast, actuals, answer["model_used"]))
st.markdown(f"**{answer['model_used']}**: cross-validated MAE {answer['mae']:.2f}, RMSE {answer['rmse']:.2f}; "
            f"artifact made {answer['last_updated'][:16].replace('T', ' ')} UTC.")
st.dataframe(views.people_table(forecast), hide_index=True)
with st.expander("The service's answer (JSON)"):
    st.json(answer)
