"""What the dashboard's pages show, shaped from the service's answers and the warehouse's rows:
tables for people and plotly figures (each returns a frame or a figure; the page lays it out).

Also the batch upload: :func:`read_batch` checks a CSV of dates (with any covariates) and
:func:`forecast_batch` asks the service for them, one ``POST /predict`` per run of consecutive
days, sending the days (not the file) and keeping the file's rows and columns in the answer.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING, Any

import pandas as pd

from helpers.dashboard.client import DashboardError, ServiceClient
from helpers.lifecycle.registry import ModelVersion
from helpers.operate import monitoring

if TYPE_CHECKING:
    import plotly.graph_objects as go

#: Columns of a forecast table (:func:`forecast_frame`).
FORECAST_COLUMNS = ("date", "forecast", "lower_80", "upper_80", "lower_95", "upper_95")
#: Names a batch file's date column may have (case does not matter).
DATE_COLUMNS = ("date", "ds", "target_date", "day")
#: Most rows in one batch file.
MAX_BATCH_ROWS = 10_000
BAND = {80: "rgba(31, 119, 180, 0.35)", 95: "rgba(31, 119, 180, 0.15)"}
ACTUAL_COLOUR, FORECAST_COLOUR = "#222222", "#1f77b4"


class BatchError(DashboardError):
    """An uploaded batch file that cannot be forecast; the message says what to change."""


def forecast_frame(answer: dict[str, Any]) -> pd.DataFrame:
    """A ``POST /predict`` answer as a table: ``date`` and the forecast with its 80% and 95% bounds."""
    n = len(answer["dates"])

    def column(key: str) -> list[float | None]:
        values = answer.get(key)
        return list(values) if values is not None else [None] * n

    return pd.DataFrame({"date": pd.to_datetime(answer["dates"]), "forecast": answer["forecast"],
                         "lower_80": column("confidence_lower_80"), "upper_80": column("confidence_upper_80"),
                         "lower_95": column("confidence_lower"), "upper_95": column("confidence_upper")},
                        columns=list(FORECAST_COLUMNS)).astype({c: float for c in FORECAST_COLUMNS[1:]})


def _band(x: pd.Series, lower: pd.Series, upper: pd.Series, level: int) -> list[dict[str, Any]]:
    """A filled interval as two traces (the upper edge, then the lower filled up to it)."""
    return [{"type": "scatter", "x": x, "y": upper, "mode": "lines", "line": {"width": 0}, "showlegend": False,
             "hoverinfo": "skip", "legendgroup": f"{level}"},
            {"type": "scatter", "x": x, "y": lower, "mode": "lines", "line": {"width": 0}, "fill": "tonexty",
             "fillcolor": BAND[level], "name": f"{level}% interval", "legendgroup": f"{level}",
             "hovertemplate": f"{level}%%: %{{y:.1f}}<extra></extra>".replace("%%", "%")}]


def plot_forecast(forecast: pd.DataFrame, actuals: pd.DataFrame | None, model: str, unit: str = "") -> go.Figure:
    """The forecast (``forecast_frame``) with its 95% and 80% bands and the daily actual values
    (``ds``, ``actual``; None or empty: none known)."""
    import plotly.graph_objects as go

    traces: list[dict[str, Any]] = []
    for level in (95, 80):
        if forecast[f"lower_{level}"].notna().any():
            traces += _band(forecast["date"], forecast[f"lower_{level}"], forecast[f"upper_{level}"], level)
    traces.append({"type": "scatter", "x": forecast["date"], "y": forecast["forecast"], "mode": "lines+markers",
                   "name": f"forecast ({model})", "line": {"color": FORECAST_COLOUR}})
    if actuals is not None and len(actuals):
        traces.append({"type": "scatter", "x": actuals["ds"], "y": actuals["actual"], "mode": "lines",
                       "name": "actual", "line": {"color": ACTUAL_COLOUR}})
    title = f"Daily forecast of {model} with its 80% and 95% intervals"
    return go.Figure(data=traces, layout={
        "title": {"text": title}, "xaxis": {"title": {"text": "day"}},
        "yaxis": {"title": {"text": f"demand{f' ({unit})' if unit else ''}, daily total"}},
        "legend": {"orientation": "h", "y": -0.2}, "margin": {"t": 60}, "hovermode": "x unified"})


def people_table(frame: pd.DataFrame, digits: int = 1) -> pd.DataFrame:
    """``frame`` for reading: days as YYYY-MM-DD (times as YYYY-MM-DD HH:MM where a column has
    any), numbers rounded to ``digits`` decimals."""
    out = frame.copy()
    for name in out.columns:
        if pd.api.types.is_datetime64_any_dtype(out[name]):
            timed = (out[name].dropna() != out[name].dropna().dt.normalize()).any()
            out[name] = out[name].dt.strftime("%Y-%m-%d %H:%M" if timed else "%Y-%m-%d")
        elif pd.api.types.is_float_dtype(out[name]):
            out[name] = out[name].round(digits)
    return out


def with_dashes(frame: pd.DataFrame, digits: int = 1) -> Any:
    """``frame`` styled for ``st.dataframe``: a missing cell as a dash (Streamlit would write
    ``None``), floats to at most ``digits`` decimals without trailing zeros (100, 6.102); the values
    stay numbers, so columns sort as numbers."""
    def number(value: Any) -> str:
        if isinstance(value, float):
            text = f"{value:,.{digits}f}"
            return text.rstrip("0").rstrip(".") if "." in text else text
        return str(value)

    return frame.style.format(number, na_rep="–")


#: The status cell's background, by status (the monitoring page's colours, lightened).
STATUS_BACKGROUNDS = {"green": "#c8e6c9", "orange": "#ffe0b2", "red": "#ffcdd2", "grey": "#eeeeee"}


def status_table(signals: list[monitoring.Signal]) -> Any:
    """The monitoring page's status table for people: the alerting signals first, the value to
    3 significant digits (a dash when not judged), the status cell in its colour (a Styler)."""
    table = monitoring.status_table(signals)
    table["value"] = ["-" if v is None or pd.isna(v) else f"{v:.3g}" for v in table["value"]]
    return table.style.map(lambda s: f"background-color: {STATUS_BACKGROUNDS.get(s, '')}; font-weight: bold",
                           subset=["status"])


def alerts_table(alerts: pd.DataFrame) -> pd.DataFrame:
    """Alerts for people, newest first: condition, severity, opened, last seen, cleared (a dash
    while open), the message."""
    out = alerts[["condition", "severity", "opened_at", "last_seen_at", "cleared_at", "message"]].copy()
    for name in ("opened_at", "last_seen_at", "cleared_at"):
        out[name] = pd.to_datetime(out[name]).dt.strftime("%Y-%m-%d %H:%M").fillna("-")
    return out.rename(columns={"opened_at": "opened (UTC)", "last_seen_at": "last seen", "cleared_at": "cleared"})


# -- batch ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Batch:
    """A checked batch file: its rows (``date`` first, as midnight timestamps, then the file's other columns)."""

    rows: pd.DataFrame
    date_column: str  # the name the file gave it

    @property
    def days(self) -> list[date]:
        return sorted(set(self.rows["date"].dt.date))

    @property
    def covariates(self) -> list[str]:
        return [c for c in self.rows.columns if c != "date"]


def _rows(numbers: list[int], limit: int = 5) -> str:
    shown = ", ".join(str(n) for n in numbers[:limit])
    return shown + (f" and {len(numbers) - limit} more" if len(numbers) > limit else "")


def read_batch(data: bytes, window: tuple[str, str] | None = None) -> Batch:
    """Check an uploaded CSV: a date column (``date``, ``ds``, ``target_date`` or ``day``) of
    ISO days (YYYY-MM-DD), at most :data:`MAX_BATCH_ROWS` rows, every day inside ``window``
    (the service's forecastable days, inclusive). Other columns are covariates, kept as they are.

    Raises :class:`BatchError` naming what to change (rows are numbered as in a spreadsheet:
    the header is row 1).
    """
    if not data.strip():
        raise BatchError("The file is empty: upload a CSV with a header row and a column named date (YYYY-MM-DD).")
    try:
        frame = pd.read_csv(io.BytesIO(data), dtype=str, keep_default_na=False, encoding="utf-8-sig")
    except UnicodeDecodeError:
        raise BatchError("The file is not UTF-8 text: save it as a CSV (UTF-8) and upload it again.") from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise BatchError(f"The file is not a readable CSV ({str(exc).strip().splitlines()[0]}): save it as a CSV "
                         "with a header row and upload it again.") from None
    names = {str(c).strip().lower(): c for c in frame.columns}
    found = next((names[n] for n in DATE_COLUMNS if n in names), None)
    if found is None:
        raise BatchError(f"The file has no date column: name one {', '.join(DATE_COLUMNS[:-1])} or {DATE_COLUMNS[-1]} "
                         "(values YYYY-MM-DD); its "
                         f"columns are {', '.join(map(str, frame.columns)) or 'none'}.")
    if frame.empty:
        raise BatchError("The file has a header but no rows: add one row per day to forecast.")
    if len(frame) > MAX_BATCH_ROWS:
        raise BatchError(f"The file has {len(frame):,} rows; at most {MAX_BATCH_ROWS:,} are forecast at once: "
                         "split it.")
    text = frame[found].str.strip()
    days = pd.to_datetime(text, format="%Y-%m-%d", errors="coerce")
    bad = [int(i) + 2 for i in frame.index[days.isna()]]
    if bad:
        example = text[days.isna()].iloc[0]
        raise BatchError(f"Row{'s' * (len(bad) > 1)} {_rows(bad)} of column {found!r} {'is' if len(bad) == 1 else 'are'} "
                         f"not a day as YYYY-MM-DD (e.g. {example!r}): correct {'it' if len(bad) == 1 else 'them'} "
                         "and upload the file again.")
    if window is not None:
        first, last = (pd.Timestamp(w) for w in window)
        outside = [int(i) + 2 for i in frame.index[(days < first) | (days > last)]]
        if outside:
            raise BatchError(f"Row{'s' * (len(outside) > 1)} {_rows(outside)} ask for days outside what the service "
                             f"can forecast, {first:%Y-%m-%d} to {last:%Y-%m-%d}: keep to those days.")
    rows = frame.drop(columns=[found])
    rows.insert(0, "date", days)
    return Batch(rows, str(found))


def day_runs(days: list[date]) -> list[tuple[date, date]]:
    """Sorted distinct ``days`` as runs of consecutive days, ``(first, last)`` each."""
    runs: list[tuple[date, date]] = []
    for day in sorted(set(days)):
        if runs and (day - runs[-1][1]).days == 1:
            runs[-1] = (runs[-1][0], day)
        else:
            runs.append((day, day))
    return runs


def forecast_batch(client: ServiceClient, batch: Batch, model: str | None = None) -> pd.DataFrame:
    """The file's rows with the forecast of each day and its 80% and 95% bounds, and the model
    used: one ``POST /predict`` per run of consecutive days."""
    parts, used = [], None
    for first, last in day_runs(batch.days):
        answer = client.predict(first, last, model)
        used = answer["model_used"]
        parts.append(forecast_frame(answer))
    answers = pd.concat(parts, ignore_index=True).rename(columns={"date": "ds"})
    out = batch.rows.merge(answers, left_on="date", right_on="ds", how="left").drop(columns=["ds"])
    out["model"] = used
    return out


# -- past predictions ---------------------------------------------------------------------------------------------
PREDICTION_TABLE = ("target_date", "source", "model", "issued_at", "horizon_step", "forecast", "lower_95", "upper_95",
                    "actual", "model_version")


def predictions_frame(payload: dict[str, Any], actuals: pd.DataFrame | None = None) -> pd.DataFrame:
    """``GET /predictions``' rows as a table (dates and times parsed), by target day then issue time,
    with ``actual`` from ``actuals`` (:func:`helpers.dashboard.data.actuals`: on the forecasts'
    scale, the daily total, read from the warehouse now, so also for the rows the service has not
    folded into its snapshot yet) or missing without them."""
    frame = pd.DataFrame(payload["predictions"], columns=["prediction_id", "source", "series_id", "issued_at", "model",
                                                          "model_version", "fitted_until", "target_date",
                                                          "horizon_step", "forecast", "lower_80", "upper_80",
                                                          "lower_95", "upper_95", "actual"])
    frame["target_date"] = pd.to_datetime(frame["target_date"])
    frame["issued_at"] = pd.to_datetime(frame["issued_at"], utc=True, format="ISO8601").dt.tz_localize(None)
    for name in ("forecast", "lower_80", "upper_80", "lower_95", "upper_95"):
        frame[name] = frame[name].astype(float)
    known = actuals.set_index("ds")["actual"] if actuals is not None else pd.Series(dtype=float)
    frame["actual"] = frame["target_date"].map(known).astype(float)
    return frame


def predictions_table(frame: pd.DataFrame) -> pd.DataFrame:
    """:func:`predictions_frame` for reading: the columns a person asks about, newest target day first."""
    out = frame.sort_values(["target_date", "issued_at"], ascending=[False, False])[list(PREDICTION_TABLE)]
    out = people_table(out)
    out["issued_at"] = frame.loc[out.index, "issued_at"].dt.strftime("%Y-%m-%d %H:%M")
    return out.reset_index(drop=True)


def plot_predictions(frame: pd.DataFrame) -> go.Figure:
    """Each source's forecasts (the latest issue per model and day) against the actual values: a
    colour per source, a marker shape per model."""
    import plotly.graph_objects as go

    palette = {"webapp": "#9467bd", "scheduled": FORECAST_COLOUR, "api": "#ff7f0e"}
    latest = frame.sort_values("issued_at").groupby(["source", "model", "target_date"], as_index=False).last()
    symbols = ("circle", "square", "diamond", "triangle-up", "x", "cross", "star", "triangle-down")
    shapes = {model: symbols[k % len(symbols)] for k, model in enumerate(sorted(latest["model"].unique()))}
    traces: list[dict[str, Any]] = []
    for (source, model), part in latest.groupby(["source", "model"], sort=True):
        traces.append({"type": "scatter", "x": part["target_date"], "y": part["forecast"], "mode": "markers",
                       "name": f"{source}: {model}",
                       "marker": {"color": palette.get(str(source)), "size": 6, "symbol": shapes[model]}})
    known = frame.dropna(subset=["actual"]).drop_duplicates("target_date").sort_values("target_date")
    if len(known):
        traces.append({"type": "scatter", "x": known["target_date"], "y": known["actual"], "mode": "lines",
                       "name": "actual", "line": {"color": ACTUAL_COLOUR}})
    return go.Figure(data=traces, layout={
        "title": {"text": "Past forecasts (the latest issue of each day) and the actual values"},
        "xaxis": {"title": {"text": "target day"}}, "yaxis": {"title": {"text": "demand, daily total"}},
        "legend": {"orientation": "h", "y": -0.2}, "margin": {"t": 60}})


# -- models -------------------------------------------------------------------------------------------------------
def versions_table(versions: list[ModelVersion]) -> pd.DataFrame:
    """The registered versions, newest first: version, aliases, created, training range, selected
    model, cross-validated MAE, data hash and commit (shortened)."""
    def mae(text: str | None) -> float | None:
        try:
            return round(float(text), 3) if text is not None else None
        except ValueError:
            return None

    return pd.DataFrame([{
        "version": v.version, "aliases": ", ".join(v.aliases) or "-",
        "created (UTC)": v.lineage.get("created_utc", "-").replace("T", " ")[:16],
        "training": f"{v.lineage.get('training_start', '-')[:10]} to {v.lineage.get('training_end', '-')[:10]}",
        "selected model": v.lineage.get("selected_model", "-"), "CV MAE": mae(v.lineage.get("cv_mae")),
        "decision": v.lineage.get("decision", "-"), "data": v.lineage.get("data_sha256", "-")[:12],
        "commit": v.lineage.get("git_commit", "-")[:12]} for v in versions],
        columns=["version", "aliases", "created (UTC)", "training", "selected model", "CV MAE", "decision", "data",
                 "commit"])


def served_models_table(models: dict[str, Any]) -> pd.DataFrame:
    """``GET /models``' models: name, selected, CV MAE and RMSE, and the achieved coverage of the
    served 80% and 95% intervals (in %)."""
    rows = []
    for m in models["models"]:
        intervals = m.get("intervals", {})
        rows.append({"model": m["name"], "selected": "yes" if m.get("selected") else "",
                     "CV MAE": round(float(m["mae"]), 3), "CV RMSE": round(float(m["rmse"]), 3),
                     "80% coverage (%)": round(100 * float(intervals["80"]["achieved"]), 1) if "80" in intervals else None,
                     "95% coverage (%)": round(100 * float(intervals["95"]["achieved"]), 1) if "95" in intervals else None,
                     "members": ", ".join(m.get("members") or []) or "-"})
    return pd.DataFrame(rows, columns=["model", "selected", "CV MAE", "CV RMSE", "80% coverage (%)",
                                       "95% coverage (%)", "members"])


def describe_served(models: dict[str, Any]) -> str:
    """One Markdown paragraph: which version the service serves, the challenger, the forecastable days."""
    served, challenger = models["served"], models.get("challenger")
    what = f"version {served['version']}" if served.get("version") is not None else f"the file {served['artifact']}"
    text = (f"The service serves **{what}** (the champion), selected model **{models['selected_model']}**, trained "
            f"up to {str(models['training_end'])[:10]}; it forecasts {models['forecastable']['start_date']} to "
            f"{models['forecastable']['end_date']}.")
    if challenger:
        text += f" The challenger is **version {challenger.get('version')}**."
    else:
        text += " There is no challenger."
    return text
