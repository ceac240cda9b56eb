"""Tables for people: a DataFrame formatted for a report page (pandas' Styler).

:func:`table` is what a notebook shows instead of a raw frame: no index column unless it
names something (a default 0, 1, 2, ... index is dropped, a named one becomes the first
column), headers in words (``p_value`` -> ``p value``) with their unit (``fit time (s)``),
numbers to a few significant digits without an exponent, shares and probabilities as
percentages, p-values as ``< 0.001`` below 0.001, missing cells as a dash, dates as dates,
booleans as yes / no. The values come from :mod:`helpers.core.formatting`, which the
analysis modules use for their sentences too, so a table and the sentence under it agree.

Columns are recognised by name (``P(best)``, ``coverage_80``, ``rate``, ``share`` are
percentages; ``p_value``, ``p_adjusted``, ``lb_pvalue`` p-values); ``percent=``,
``p_values=`` and ``plain=`` say otherwise for one table. pandas' Styler, not great_tables:
it is already in the lock (pandas + jinja2), renders in JupyterLab, nbconvert and Quarto
alike, and keeps the data underneath.
"""

from __future__ import annotations

import re
from html import escape
from collections.abc import Callable, Iterable, Mapping
from functools import partial
from typing import Any

import pandas as pd
from pandas.io.formats.style import Styler

from helpers.core import formatting

#: Column names read as shares / probabilities (shown as percentages) when numeric.
PERCENT_NAME = re.compile(r"^p\(|coverage|(^|[ _])(rate|share|probability|accuracy|power)([ _]|$)|^served( now)?$"
                          r"|^raw$|^calibrated$|^nominal$", re.IGNORECASE)
#: Column names read as p-values.
P_NAME = re.compile(r"(^|[ _(])p[ _-]?(value|adjusted|adj)|pvalue|^p$|^final mspr?t p$", re.IGNORECASE)
#: Headers in words for the names the helpers use.
WORDS = {"rmse": "RMSE", "mae": "MAE", "mape": "MAPE (%)", "mase": "MASE", "lb_stat": "Ljung-Box statistic",
         "lb_pvalue": "p value", "ci_low": "95% CI low", "ci_high": "95% CI high", "dof": "degrees of freedom",
         "chi2": "chi-square", "p_adjusted": "p adjusted (Holm)", "mw_p_value": "Mann-Whitney p",
         "mw_p_adjusted": "Mann-Whitney p adjusted", "median fit+predict s": "median fit + forecast (s)",
         "served coverage_80": "served 80% coverage", "served coverage_95": "served 95% coverage",
         "coverage_80": "80% coverage", "coverage_95": "95% coverage"}
STYLES = [
    {"selector": "", "props": "border-collapse:collapse;font-variant-numeric:tabular-nums;margin:.5em 0"},
    {"selector": "th", "props": "text-align:left;border-bottom:1px solid #999;padding:.25em .6em;"
                                "font-weight:600;vertical-align:bottom"},
    {"selector": "td", "props": "padding:.2em .6em;border-bottom:1px solid #eee;text-align:left;vertical-align:top"},
    {"selector": "td.number", "props": "text-align:right;white-space:nowrap"},
    {"selector": "caption", "props": "caption-side:top;text-align:left;color:#444;padding:.3em 0"},
]


def _words(name: Any, words: bool = True) -> str:
    label = str(name)
    return WORDS.get(label, label.replace("_", " ") if words else label)


def _flat_columns(frame: pd.DataFrame) -> pd.DataFrame:
    if isinstance(frame.columns, pd.MultiIndex):
        frame = frame.copy()
        frame.columns = [" ".join(str(part) for part in parts if str(part) not in ("", "nan")).strip()
                         for parts in frame.columns]
    frame.columns.name = None
    return frame


def meaningful_index(frame: pd.DataFrame) -> bool:
    """An index that says something: named, or not the default 0, 1, 2, ..."""
    index = frame.index
    if any(name is not None for name in index.names):
        return True
    if isinstance(index, pd.RangeIndex):
        return not (index.start == 0 and index.step == 1)
    return not (pd.api.types.is_integer_dtype(index) and list(index) == list(range(len(index))))


def as_frame(data: pd.DataFrame | pd.Series | Mapping[str, Any], index: bool | None = None) -> pd.DataFrame:
    """The frame to show: a Series or mapping becomes ``item | value`` rows; a meaningful index
    (or ``index=True``) becomes the first columns; column levels are joined."""
    if isinstance(data, Mapping):
        data = pd.Series(dict(data), dtype=object)
    if isinstance(data, pd.Series):
        frame = data.rename("value").to_frame()
        frame.index.name = frame.index.name or "item"
        index = True if index is None else index
    else:
        frame = data
    keep = meaningful_index(frame) if index is None else index
    if keep and all(name is None for name in frame.index.names):
        frame = frame.rename_axis([""] * frame.index.nlevels)  # an unnamed index: no "index" header
    frame = frame.reset_index() if keep else frame.reset_index(drop=True)
    return _flat_columns(frame)


def _kind(name: str, series: pd.Series, percent: set[str], p_values: set[str], plain: set[str],
          points: set[str]) -> str:
    if name in plain:
        return "plain"
    if name in points:
        return "points"
    if name in percent:
        return "percent"
    if name in p_values:
        return "p"
    if pd.api.types.is_datetime64_any_dtype(series):
        return "date"
    numeric = pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series)
    if numeric and P_NAME.search(name):
        return "p"
    if numeric and PERCENT_NAME.search(name) and series.dropna().between(0, 1).all():
        return "percent"
    return "number" if numeric else "plain"


def formatters(frame: pd.DataFrame, percent: Iterable[str] = (), p_values: Iterable[str] = (),
               plain: Iterable[str] = (), digits: int = 3,
               points: Iterable[str] = ()) -> dict[str, Callable[[Any], str]]:
    """How each column's cells are written (see the module docstring)."""
    percent, p_values, plain, points = set(percent), set(p_values), set(plain), set(points)
    made = {"percent": partial(formatting.percent, digits=digits), "p": formatting.p_value,
            "points": partial(formatting.points, digits=digits),
            "date": formatting.when, "number": partial(formatting.text, digits=digits),
            "plain": partial(formatting.text, digits=digits)}
    kinds = {name: _kind(str(name), frame[name], percent, p_values, plain, points) for name in frame.columns}
    return {name: partial(formatting.when, precision=formatting.precision(frame[name])) if kind == "date"
            else made[kind] for name, kind in kinds.items()}


def table(data: pd.DataFrame | pd.Series | Mapping[str, Any], *, percent: Iterable[str] = (),
          points: Iterable[str] = (), p_values: Iterable[str] = (), plain: Iterable[str] = (),
          units: Mapping[str, str] | None = None,
          labels: Mapping[str, str] | None = None, index: bool | None = None, digits: int = 3,
          caption: str | None = None, empty: str | None = None, words: bool = True) -> Styler | Sentence:
    """``data`` formatted for a report page (module docstring); the options name columns as
    they are in ``data`` (after a meaningful index became columns).

    ``percent`` / ``points`` / ``p_values`` / ``plain``: columns shown as percentages /
    differences of shares in percentage points (+1.2 pp) / p-values / as they are, whatever
    their names suggest; ``units``: column -> unit, added to the header in
    brackets; ``labels``: column -> header; ``index``: keep (True) or drop (False) the index,
    by default kept only when meaningful; ``digits``: significant digits; ``empty``: the
    sentence shown instead of a table without rows; ``words=False`` keeps the underscores of
    headers that are names (models, variables).
    """
    frame = as_frame(data, index)
    if empty is not None and frame.empty:
        return Sentence(empty)
    for option, names in (("percent", percent), ("points", points), ("p_values", p_values), ("plain", plain),
                          ("units", units or {}), ("labels", labels or {})):
        unknown = sorted(set(names) - set(map(str, frame.columns)))
        if unknown:
            raise KeyError(f"table({option}=...) names columns the table does not have: {', '.join(unknown)} "
                           f"(columns: {', '.join(map(str, frame.columns))})")
    formats = formatters(frame, percent, p_values, plain, digits, points)
    headers = {}
    for name in frame.columns:
        header = (labels or {}).get(name) or _words(name, words)
        unit = (units or {}).get(name)
        headers[name] = f"{header} ({unit})" if unit and f"({unit})" not in header else header
    numbers = [name for name in frame.columns if (
        pd.api.types.is_numeric_dtype(frame[name]) and not pd.api.types.is_bool_dtype(frame[name]))]
    cells = {name: (lambda value, write=formats[name]: escape(write(value), quote=False)) for name in frame.columns}
    styler = frame.style.format(cells).format_index(lambda name: escape(headers[name], quote=False), axis="columns")
    styler = styler.hide(axis="index")
    styler = styler.set_table_styles(STYLES).set_td_classes(
        pd.DataFrame([["number" if name in numbers else "" for name in frame.columns]] * len(frame),
                     index=frame.index, columns=frame.columns))
    if caption:
        styler = styler.set_caption(caption)
    return styler


class Sentence:
    """A sentence in place of a table (a table without rows, a part not computed)."""

    def __init__(self, text: str):
        self.text = text

    def _repr_html_(self) -> str:
        return f"<p>{escape(self.text)}</p>"

    def __repr__(self) -> str:
        return self.text


def show(part: Any, **options: Any) -> Any:
    """:func:`table` of ``part`` when it is a frame or a series; anything else (the Markdown
    sentence saying why a part is missing) as it is."""
    if isinstance(part, (pd.DataFrame, pd.Series)):
        return table(part, **options)
    return part


def html(data: pd.DataFrame | pd.Series | Mapping[str, Any], **options: Any) -> str:
    """:func:`table` as an HTML fragment (for pages built outside a notebook)."""
    shown = table(data, **options)
    return shown._repr_html_() if isinstance(shown, Sentence) else shown.to_html()
