"""Past predictions: a date range and a source -> what was forecast for those days, with the actuals known."""

from datetime import date

import streamlit as st

from helpers.dashboard import cached, views
from helpers.dashboard.client import PREDICTION_SOURCES, DashboardError

st.title("Past predictions")
st.caption("Forecasts issued for target days in the range (GET /predictions): by the dashboard (webapp), the "
           "operating cycles (scheduled) or other clients (api), with the actual value once it is in the warehouse.")
left, middle, right = st.columns(3)
days = left.date_input("Target days (leave empty for all)", value=(), min_value=date(1900, 1, 1),
                       max_value=date(2100, 12, 31), format="YYYY-MM-DD")
source = middle.radio("Source", PREDICTION_SOURCES, index=PREDICTION_SOURCES.index("all"), horizontal=True)
start = days[0] if len(days) >= 1 else None
end = days[1] if len(days) == 2 else start
with cached.shown_errors():
    payload = cached.client().predictions(start, end, source)
right.metric("Forecasts", f"{payload['count']:,}")
if payload["count"] == 0:
    st.info(f"No forecast from source {source} for these days yet. Forecasts from this dashboard appear at once; "
            "scheduled ones after an operating cycle (`make operate`).")
    st.stop()
try:
    actuals = cached.read("actuals")
except DashboardError as exc:
    actuals = None
    st.warning(f"The actual values are not shown: {exc}")
frame = views.predictions_frame(payload, actuals)
st.caption("Actual values: the daily totals in the warehouse (read-only), on the forecasts' scale.")
st.plotly_chart(views.plot_predictions(frame))
table = views.predictions_table(frame)
st.dataframe(views.with_dashes(table), hide_index=True)
st.download_button("Download (CSV)", table.to_csv(index=False).encode(), file_name=f"predictions-{source}.csv",
                   mime="text/csv")
