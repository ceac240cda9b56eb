"""Numbers, shares, p-values and dates as a person reads them, for tables and sentences.

One rule everywhere a report shows a value: a missing value is a dash, never ``NaN`` or
``None``; a number has a few significant digits and never an exponent (``9.2e-09`` is
"< 0.0001"); a share is a percentage; a p-value below 0.001 is "< 0.001"; a date without a
time of day is just the date. :mod:`helpers.publish.tables` applies these to whole tables;
the analysis modules, below ``publish``, use them in their sentences.
"""

from __future__ import annotations

import math
from datetime import date, datetime
from typing import Any

import numpy as np
import pandas as pd

#: What a missing value looks like (an en dash).
DASH = "\u2013"
#: Below this magnitude a number is shown as "< 0.0001" rather than with an exponent.
SMALLEST = 1e-4


def is_missing(value: Any) -> bool:
    """``None``, NaN, ``NaT`` and ``pd.NA``; not an empty string, not a container."""
    if value is None or value is pd.NaT or value is pd.NA:
        return True
    if isinstance(value, (float, np.floating)):
        return bool(np.isnan(value))
    return False


def _decimals(magnitude: float, digits: int) -> int:
    return max(0, digits - 1 - math.floor(math.log10(magnitude)))


def number(value: Any, digits: int = 3) -> str:
    """``digits`` significant digits, thousands separated, no exponent: 1,234,567 / 13.9 /
    0.0457 / "< 0.0001"; whole numbers stay whole; missing is a dash; a bool is yes / no."""
    if is_missing(value):
        return DASH
    if isinstance(value, (bool, np.bool_)):
        return "yes" if value else "no"
    if isinstance(value, (int, np.integer)):
        return f"{int(value):,}"
    value = float(value)
    if math.isinf(value):
        return "\u221e" if value > 0 else "-\u221e"
    if value == 0:
        return "0"
    if abs(value) < SMALLEST:
        return f"< {SMALLEST:g}" if value > 0 else f"> -{SMALLEST:g}"
    if value.is_integer() and abs(value) < 1e15:
        return f"{int(value):,}"
    places = _decimals(abs(value), digits)
    text = f"{value:,.{places}f}"
    if places and "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def percent(share: Any, digits: int = 3) -> str:
    """A share (0.4286) as a percentage with ``digits`` significant digits and at most two
    decimals: 42.9%, 100%, 0.25%, "< 0.01%"; missing is a dash."""
    if is_missing(share):
        return DASH
    value = float(share) * 100
    if value == 0:
        return "0%"
    if abs(value) < 0.01:
        return "< 0.01%" if value > 0 else "> -0.01%"
    places = min(2, _decimals(abs(value), digits))
    text = f"{value:,.{places}f}"
    if places:
        text = text.rstrip("0").rstrip(".")
    return f"{text}%"


def points(difference: Any, digits: int = 3) -> str:
    """A difference of two shares in percentage points, signed: +1.2 pp, -0.35 pp."""
    if is_missing(difference):
        return DASH
    text = percent(abs(float(difference)), digits).rstrip("%")
    sign = "" if float(difference) == 0 or text.startswith("<") else ("+" if float(difference) > 0 else "-")
    return f"{sign}{text} pp"


def p_value(value: Any) -> str:
    """A p-value: "< 0.001" below 0.001, otherwise three significant digits (0.0457, 0.255)."""
    if is_missing(value):
        return DASH
    value = float(value)
    if value < 0.001:
        return "< 0.001"
    return number(value, 3)


def p_clause(value: Any) -> str:
    """``p = 0.0457`` or ``p < 0.001``, for a sentence."""
    text = p_value(value)
    return f"p {text}" if text.startswith("<") else f"p = {text}"


#: strftime patterns by precision.
PRECISIONS = {"day": "%Y-%m-%d", "minute": "%Y-%m-%d %H:%M", "second": "%Y-%m-%d %H:%M:%S"}


def precision(values: Any) -> str:
    """The precision that shows every one of ``values`` (timestamps) whole: day, minute or second."""
    stamps = pd.to_datetime(pd.Series(values)).dropna()
    if stamps.empty or (stamps == stamps.dt.normalize()).all():
        return "day"
    return "minute" if (stamps.dt.second == 0).all() else "second"


def when(value: Any, precision: str | None = None) -> str:
    """A date as ``2014-01-01``, a time of day as ``2014-01-01 13:30`` (``precision``: day,
    minute or second; by default the value's own); missing is a dash."""
    if is_missing(value):
        return DASH
    if isinstance(value, str):
        return value
    stamp = pd.Timestamp(value)
    if precision is None:
        plain_date = isinstance(value, date) and not isinstance(value, datetime)
        precision = globals()["precision"]([stamp]) if not plain_date else "day"
    return stamp.strftime(PRECISIONS[precision])


def text(value: Any, digits: int = 3) -> str:
    """Any cell: numbers by :func:`number`, dates by :func:`when`, a mapping as ``key: value``
    pairs, a list joined by commas, missing as a dash."""
    if is_missing(value):
        return DASH
    if isinstance(value, (bool, np.bool_, int, float, np.integer, np.floating)):
        return number(value, digits)
    if isinstance(value, (pd.Timestamp, datetime, date, np.datetime64)):
        return when(value)
    if isinstance(value, dict):
        return "; ".join(f"{key}: {text(item, digits)}" for key, item in value.items())
    if isinstance(value, (list, tuple, set, np.ndarray)):
        return ", ".join(text(item, digits) for item in value)
    return str(value)
