"""Tables and figures that summarise data quality for the data-quality notebook."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import plotly.graph_objects as go

from helpers.data.quality import ROW_KINDS
from helpers.data.series import completeness, steps_per_period
from helpers.warehouse import Warehouse

#: What happens to rows of each kind (the ingest policy in words).
HANDLING = {
    "missing_value": "quarantined",
    "unparseable": "quarantined",
    "out_of_range": "quarantined",
    "duplicate_timestamp": "exact copies: first kept; conflicts: all quarantined",
    "unknown_category": "quarantined",
    "off_frequency": "quarantined",
    "out_of_order": "sorted, loaded",
    "missing_timestamps": "reported; short gaps interpolated for analysis",
}


def load_run(warehouse: Warehouse, series_id: str, report: str | Path | None = None) -> pd.Series:
    """The ingest run (a row of ``dq_runs``) described by an ingest ``report`` JSON file,
    or the most recent run of ``series_id`` when no report is given."""
    runs = warehouse.query("select_dq_runs", [series_id])
    if runs.empty:
        raise LookupError(f"no ingest run recorded for series {series_id!r}; run the ingest first (make run)")
    if report is None:
        return runs.iloc[0]
    run_id = json.loads(Path(report).read_text())["run_id"]
    match = runs[runs["run_id"] == run_id]
    if match.empty:
        raise LookupError(f"ingest run {run_id!r} from {report} is not in the warehouse's dq_runs")
    return match.iloc[0]


def accounting_table(run: pd.Series) -> pd.DataFrame:
    """Rows read, loaded and quarantined, and whether they add up."""
    balanced = int(run["rows_read"]) == int(run["rows_loaded"]) + int(run["rows_quarantined"])
    return pd.DataFrame({
        "quantity": ["rows read", "rows loaded", "rows quarantined", "new keys", "replaced keys",
                     "read = loaded + quarantined"],
        "value": [int(run["rows_read"]), int(run["rows_loaded"]), int(run["rows_quarantined"]),
                  int(run["rows_inserted"]), int(run["rows_updated"]), "yes" if balanced else "NO"],
    })


def problems_table(run: pd.Series) -> pd.DataFrame:
    """Count per kind of problem in the run, with how each kind is handled."""
    kinds = list(ROW_KINDS) + ["out_of_order", "missing_timestamps"]
    return pd.DataFrame({
        "problem": kinds,
        "rows": [int(run[k]) for k in kinds],
        "handling": [HANDLING[k] for k in kinds],
    })


def quarantine_reasons(quarantine: pd.DataFrame) -> pd.DataFrame:
    """Quarantined rows per reason (a row with two problems counts under both)."""
    reasons = quarantine["reasons"].str.split("; ").explode()
    counts = reasons.value_counts().rename_axis("reason").reset_index(name="rows")
    return counts


def gap_table(view: pd.DataFrame) -> pd.DataFrame:
    """One row: steps on the grid of a :func:`helpers.data.series.load_series` view, observed,
    interpolated (short gaps) and still missing (long gaps)."""
    return pd.DataFrame([completeness(view)])


def plot_coverage(daily: pd.DataFrame, freq: str) -> go.Figure:
    """Rows loaded per day (``daily_series.n_obs``) against the count a series of spacing ``freq``
    has in a day: dips are missing or quarantined rows."""
    expected_per_day = steps_per_period(freq)
    fig = go.Figure()
    fig.add_bar(x=daily["ts"], y=daily["n_obs"], name="rows loaded")
    fig.add_hline(y=expected_per_day, line_dash="dash", annotation_text=f"expected {expected_per_day:g}")
    fig.update_layout(title="Rows loaded per day", xaxis_title="day", yaxis_title="rows", showlegend=False,
                      height=350, margin=dict(t=50, b=40, l=50, r=20))
    return fig
