"""Monitoring: the monitoring page's statuses and charts, live from the warehouse (read-only), and the alerts."""

import streamlit as st

from helpers.dashboard import cached, views
from helpers.lifecycle import decisions
from helpers.operate import monitoring

st.title("Monitoring")
with cached.shown_errors():
    refresh = cached.settings().dashboard_refresh_seconds


@st.fragment(run_every=refresh)
def live() -> None:
    with cached.shown_errors():
        view = cached.read("monitoring")
    st.caption(f"Read from the warehouse (read-only); read again every {refresh:g} s (dashboard_refresh_seconds).")
    st.subheader("Status")
    st.markdown(monitoring.summary(view.signals))
    st.dataframe(views.status_table(view.signals), hide_index=True)
    st.subheader("Alerts of the last 30 days")
    if view.alerts_until is None:
        st.info("No alert has been raised.")
    else:
        st.caption(f"Open at any time in the 30 days to {view.alerts_until:%Y-%m-%d %H:%M} UTC, the latest alert "
                   "activity; newest first.")
        st.dataframe(views.alerts_table(view.alerts), hide_index=True)
    st.subheader("Retraining")
    st.markdown(decisions.summary(view.decisions, cached.settings().retrain_every_days))
    accuracy, drift, quality = st.tabs(["Accuracy", "Drift", "Data quality"])
    with accuracy:
        st.markdown(monitoring.describe_inputs(view.forecasts, view.files, view.drift, view.reference))
        st.plotly_chart(monitoring.plot_error_over_time(monitoring.error_over_time(view.forecasts)))
        st.plotly_chart(monitoring.plot_error_by_horizon(monitoring.error_by_horizon(view.forecasts)))
        st.plotly_chart(monitoring.plot_coverage_over_time(monitoring.coverage_over_time(view.forecasts),
                                                           view.thresholds))
        st.plotly_chart(monitoring.plot_forecast_vs_actual(view.forecasts, days=view.thresholds.window_days))
    with drift:
        st.dataframe(monitoring.drift_summary(view.drift), hide_index=True)
        st.plotly_chart(monitoring.plot_drift_psi(view.drift, view.thresholds))
        st.plotly_chart(monitoring.plot_drift_ecdf(view.drift))
        st.plotly_chart(monitoring.plot_deseasonalised(view.drift))
        st.plotly_chart(monitoring.plot_seasonal_profile(view.drift))
    with quality:
        st.plotly_chart(monitoring.plot_invalid_share(view.quality, view.thresholds))
        st.plotly_chart(monitoring.plot_rows(view.quality))
        st.plotly_chart(monitoring.plot_errors_by_kind(view.quality))
        st.plotly_chart(monitoring.plot_criticality(view.quality))
        st.plotly_chart(monitoring.plot_files(view.files, view.thresholds))

live()
