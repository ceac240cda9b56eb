"""Small conveniences shared by the notebooks' first cells."""

from __future__ import annotations

import html
import json
import warnings
from pathlib import Path
from typing import Any

import pandas as pd
import plotly.io as pio

from helpers.core.settings import Settings, load_settings
from helpers.core.provenance import stamp


def setup(**parameters: Any) -> Settings:
    """Settings for a notebook run: injected parameters win, ``None`` falls back to the project.

    Also makes plotly figures interactive both in JupyterLab (mime bundle) and in the
    HTML reports (the ``notebook`` renderer embeds plotly.js once per page).
    """
    pio.renderers.default = "plotly_mimetype+notebook"
    # statsforecast/prophet import tqdm.auto, which warns in a kernel without ipywidgets;
    # progress bars are never shown in the reports, so this one warning is noise.
    warnings.filterwarnings("ignore", message="IProgress not found")
    pd.set_option("display.max_columns", 30)
    pd.set_option("display.max_colwidth", 120)  # room for a full SHA-256
    return load_settings(**{k: v for k, v in parameters.items() if k not in ("upstream", "product")})


def provenance_table(settings: Settings, data_file: str | None = None,
                     ingest_report: str | Path | None = None, data: dict[str, str] | None = None) -> pd.DataFrame:
    """The run's parameters, data hash, git commit and package versions as one two-column table.

    ``ingest_report`` (the pipeline's upstream ingest product) adds the ingest run the
    analysis read. ``data`` replaces the source-file rows when the analysis reads other data
    (e.g. an experiment: its id and the hash of its rows).
    """
    info = stamp(settings.as_env(), data_file or settings.source_file)
    rows = [("run time (UTC)", info["run_time_utc"]), ("git commit", info["git_commit"])]
    rows += list(data.items()) if data else [("data file", info["data_file"]), ("data SHA-256", info["data_sha256"])]
    if ingest_report:
        report = json.loads(Path(ingest_report).read_text())
        rows.append(("ingest run", f"{report['run_id']} ({report['rows_loaded']} rows loaded, "
                                   f"{report['rows_quarantined']} quarantined)"))
    rows += [(f"param: {k}", v) for k, v in info["parameters"].items()]
    rows += [(f"package: {k}", v) for k, v in info["packages"].items()]
    return pd.DataFrame(rows, columns=["item", "value"])


class Folded:
    """A table shown folded under a one-line summary (HTML ``<details>``); plain text shows both."""

    def __init__(self, summary: str, table: pd.DataFrame):
        self.summary, self.table = summary, table

    def _repr_html_(self) -> str:
        return (f"<details><summary>{html.escape(self.summary)}</summary>"
                f"{self.table.to_html(index=False)}</details>")

    def __repr__(self) -> str:
        return f"{self.summary}\n{self.table.to_string(index=False)}"


def provenance(settings: Settings, data_file: str | None = None, ingest_report: str | Path | None = None,
               data: dict[str, str] | None = None) -> Folded:
    """:func:`provenance_table`, folded under its first lines: run time, commit and data hash."""
    table = provenance_table(settings, data_file, ingest_report, data)
    head = dict(zip(table["item"], table["value"]))
    data_hash = next((str(v) for k, v in head.items() if "SHA-256" in k or "hash" in k), "n/a")
    summary = (f"Run {head['run time (UTC)']} UTC, commit {str(head['git commit'])[:12]}, data {data_hash[:12]}: "
               "parameters and package versions")
    return Folded(summary, table)
