"""Data quality: rows per file, errors by kind over time, the quarantine."""

import streamlit as st

from helpers.dashboard import cached, views
from helpers.operate import monitoring

#: Column headers for people.
FILE_HEADERS = {"processed_at": "taken in (UTC)", "file_name": "file", "outcome": "outcome",
                "criticality": "criticality", "rows_read": "rows read", "rows_loaded": "rows loaded",
                "rows_quarantined": "rows quarantined", "invalid_share": "invalid (%)"}
RUN_HEADERS = {"started_at": "started (UTC)", "source_file": "source file", "rows_read": "rows read",
               "rows_loaded": "rows loaded", "rows_quarantined": "rows quarantined", "rows_inserted": "rows inserted",
               "rows_updated": "rows updated"}

st.title("Data quality")
with cached.shown_errors():
    view = cached.read("data_quality")
st.subheader("Files taken in by the operating cycles")
if view.files.empty:
    st.info("No inbox file has been taken in yet: drop files in the inbox and run a cycle (`make operate`).")
else:
    files = view.files[["processed_at", "file_name", "outcome", "criticality", "rows_read", "rows_loaded",
                        "rows_quarantined", "invalid_share"]].assign(invalid_share=lambda f: 100 * f["invalid_share"])
    table = views.people_table(files, digits=2).sort_values("processed_at", ascending=False)
    st.dataframe(views.with_dashes(table.rename(columns=FILE_HEADERS), 2), hide_index=True)
    st.plotly_chart(monitoring.plot_errors_by_kind(view.quality))
    st.plotly_chart(monitoring.plot_rows(view.quality))
    st.plotly_chart(monitoring.plot_invalid_share(view.quality, view.thresholds))
st.subheader("Ingest runs")
if view.runs.empty:
    st.info("No ingest has run for this series yet (`make run` loads the source file).")
else:
    runs = views.people_table(view.runs[["started_at", "source_file", "rows_read", "rows_loaded", "rows_quarantined",
                                         "rows_inserted", "rows_updated"]])
    st.dataframe(runs.rename(columns=RUN_HEADERS), hide_index=True)
st.subheader("Quarantine")
if view.quarantine.empty:
    st.success("No quarantined row.")
else:
    st.caption(f"The latest {len(view.quarantine):,} quarantined rows (at most 1,000), newest first; the reasons "
               "are kind:column.")
    st.dataframe(views.with_dashes(view.quarantine), hide_index=True)
