"""Pre-registered hypothesis tests: a registry file in, one tidy row per hypothesis out.

The registry (``hypotheses.yaml``) fixes each hypothesis before results are seen: the claim,
the test, the variables and transformation, alpha and the expected direction. Its SHA-256
is shown at the top of the report. :func:`run_registry` runs every test with statsmodels /
scipy, adjusts the p-values across the family (Holm by default, Benjamini-Hochberg as an
option, via ``statsmodels.stats.multitest``), and writes an interpretation built from the
numbers. A hypothesis whose data the series lacks (e.g. no temperature) is reported as
``not tested`` with the reason and left out of the family.
"""

from __future__ import annotations

import hashlib
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
import yaml
from scipy import stats
from statsmodels.stats.diagnostic import breaks_cusumolsresid
from statsmodels.tools.sm_exceptions import InterpolationWarning
from statsmodels.tsa.api import VAR
from statsmodels.tsa.stattools import adfuller, coint, kpss
from statsmodels.tsa.vector_ar.vecm import coint_johansen

from helpers.data.series import degree_days
from helpers.core.formatting import number, p_clause
from helpers.core.stats import CORRECTIONS, Correction, adjust_p_values

RESULT_COLUMNS = ["id", "claim", "test", "status", "statistic", "p_value", "p_adjusted", "alpha", "decision",
                  "effect_size", "effect_measure", "interpretation", "implication", "detail"]


class RegistryError(ValueError):
    """The registry file is malformed; the message says which entry and what is allowed."""


@dataclass(frozen=True)
class Hypothesis:
    id: str
    claim: str
    test: str
    variables: tuple[str, ...]
    transform: str
    alpha: float
    expected: str
    params: dict[str, Any] = field(default_factory=dict)


@dataclass
class HypothesisOutcome:
    """What one test found, before the family adjustment."""

    statistic: float
    p_value: float
    effect_size: float | None = None
    effect_measure: str | None = None
    detail: dict[str, Any] = field(default_factory=dict)


class NotTestable(Exception):
    """The data cannot support this test (e.g. a covariate is absent); the message says why."""


# -- data preparation -----------------------------------------------------------------------
def daily_frame(view: pd.DataFrame) -> pd.DataFrame:
    """Daily analysis frame indexed by day: ``y``, ``temperature``, ``workday``, degree-days.

    ``view`` is :func:`helpers.data.series.load_series` output at daily grain. Days still missing
    after the short-gap fill are dropped (the tests below need observed values).
    """
    frame = view.set_index("ds")[["y", "temperature", "workday"]].copy()
    frame["degree_days"] = degree_days(frame["temperature"])
    return frame.dropna(subset=["y"])


def require_columns(frame: pd.DataFrame, columns: tuple[str, ...], hypothesis_id: str) -> pd.DataFrame:
    """The complete rows of ``columns``; :class:`NotTestable` when one is absent, fewer than 30
    rows remain, or a column takes one value on every day (no test can say anything of a constant)."""
    for column in columns:
        if column not in frame.columns or frame[column].notna().sum() == 0:
            raise NotTestable(f"the series has no {column!r} data, which {hypothesis_id} needs")
    data = frame[list(columns)].dropna()
    if len(data) < 30:
        raise NotTestable(f"only {len(data)} complete days; {hypothesis_id} needs at least 30")
    for column in columns:
        if data[column].nunique() == 1:
            raise NotTestable(f"{column!r} is {data[column].iloc[0]:g} on all {len(data)} days; {hypothesis_id} "
                              "needs it to vary")
    return data


# -- the quantities the tests judge (the report plots them) ----------------------------------
def weekly_deviations(y: pd.Series, period: int = 7) -> pd.Series:
    """``y`` minus its centred ``period``-step rolling mean; the ends without a full window are dropped."""
    return (y - y.rolling(period, center=True).mean()).dropna()


def _weekday_residuals(y: pd.Series) -> tuple[np.ndarray, int]:
    """OLS residuals of ``y`` on an intercept and weekday dummies, and the number of coefficients."""
    dummies = pd.get_dummies(y.index.dayofweek, drop_first=True, dtype=float).to_numpy()
    design = np.column_stack([np.ones(len(y)), dummies])
    coef, *_ = np.linalg.lstsq(design, y.to_numpy(), rcond=None)
    return y.to_numpy() - design @ coef, design.shape[1]


def cusum_path(y: pd.Series) -> pd.Series:
    """The scaled CUSUM path of :func:`structural_break_test`, one value per day of ``y``.

    ``cumsum(e) / sqrt(n * s2)`` of the OLS residuals ``e`` of ``y`` on weekday dummies, with
    ``s2 = sum(e^2) / (n - k)`` for ``k`` coefficients, as in statsmodels'
    ``breaks_cusumolsresid(e, ddof=k)``; the test statistic is the largest absolute value of this
    path. Under a stable mean it behaves like a Brownian bridge (Ploberger & Kraemer, 1992).
    """
    y = y.dropna()
    residuals, k = _weekday_residuals(y)
    n = len(residuals)
    sigma2 = (residuals ** 2).sum() / (n - k)
    return pd.Series(np.cumsum(residuals) / np.sqrt(n * sigma2), index=y.index, name="cusum")


def granger_pair(frame: pd.DataFrame, h: Hypothesis) -> tuple[pd.DataFrame, str]:
    """The (effect, cause) columns exactly as :func:`granger_test` feeds them to the VAR, and how
    they were transformed: ``levels``, ``differenced 1x`` or ``differenced 2x``.

    Both series are differenced together until ADF (5%) rejects a unit root for each, at most
    twice. Raises :class:`NotTestable` when the frame lacks either column.
    """
    cause, effect = h.variables
    transformed, label = require_columns(frame, (effect, cause), h.id), "levels"
    for order in (1, 2):
        if all(adfuller(transformed[c], autolag="AIC")[1] < 0.05 for c in transformed.columns):
            break
        transformed, label = transformed.diff().dropna(), f"differenced {order}x"
    return transformed, label


# -- the tests ------------------------------------------------------------------------------
def weekly_seasonality_test(frame: pd.DataFrame, h: Hypothesis) -> HypothesisOutcome:
    """Kruskal-Wallis across weekdays of the series minus its centred 7-day mean.

    Removing the centred weekly mean takes out trend and annual cycle, leaving what varies
    within a week. Effect size: epsilon-squared, H / (n - 1) (Tomczak & Tomczak, 2014).
    """
    data = require_columns(frame, ("y",), h.id)
    detrended = weekly_deviations(data["y"], int(h.params.get("period", 7)))
    groups = [g.to_numpy() for _, g in detrended.groupby(detrended.index.dayofweek)]
    statistic, p_value = stats.kruskal(*groups)
    means = detrended.groupby(detrended.index.day_name()).mean().round(2).to_dict()
    return HypothesisOutcome(float(statistic), float(p_value), float(statistic / (len(detrended) - 1)), "epsilon-squared",
                       {"mean deviation by weekday": means})


def _adf_kpss(series: pd.Series) -> tuple[float, float, float, float]:
    adf_stat, adf_p, *_ = adfuller(series, autolag="AIC")
    with warnings.catch_warnings():
        # KPSS p-values are interpolated in [0.01, 0.10]; outside that range it warns and clips.
        warnings.simplefilter("ignore", InterpolationWarning)
        kpss_stat, kpss_p, *_ = kpss(series, regression="c", nlags="auto")
    return float(adf_stat), float(adf_p), float(kpss_stat), float(kpss_p)


def stationarity_test(frame: pd.DataFrame, h: Hypothesis) -> HypothesisOutcome:
    """ADF (H0: unit root) read together with KPSS (H0: level-stationary)."""
    data = require_columns(frame, ("y",), h.id)
    adf_stat, adf_p, kpss_stat, kpss_p = _adf_kpss(data["y"])
    return HypothesisOutcome(adf_stat, adf_p, detail={"kpss_statistic": round(kpss_stat, 4),
                                                  "kpss_p_value (clipped to [0.01, 0.10])": kpss_p})


def granger_test(frame: pd.DataFrame, h: Hypothesis) -> HypothesisOutcome:
    """Does x help predict y beyond y's own past? VAR F-test, lag order by AIC."""
    transformed, label = granger_pair(frame, h)
    max_lag = int(h.params.get("max_lag", 14))
    model = VAR(transformed.to_numpy())
    lag = max(1, int(model.select_order(max_lag).selected_orders["aic"]))
    result = model.fit(lag).test_causality(0, [1], kind="f")
    return HypothesisOutcome(float(result.test_statistic), float(result.pvalue),
                       detail={"transformation": label, "lag order (AIC)": lag})


def group_difference_test(frame: pd.DataFrame, h: Hypothesis) -> HypothesisOutcome:
    """Mann-Whitney U between days with flag 1 and 0; effect size: rank-biserial correlation."""
    value, flag = h.variables
    data = require_columns(frame, (value, flag), h.id)
    ones, zeros = data.loc[data[flag] == 1, value], data.loc[data[flag] == 0, value]
    if min(len(ones), len(zeros)) < 5:
        raise NotTestable(f"{h.id} needs at least 5 days in each group, got {len(ones)} and {len(zeros)}")
    result = stats.mannwhitneyu(ones, zeros, alternative="two-sided")
    rank_biserial = 2 * result.statistic / (len(ones) * len(zeros)) - 1
    return HypothesisOutcome(float(result.statistic), float(result.pvalue), float(rank_biserial), "rank-biserial r",
                       {"median (flag 1)": round(float(ones.median()), 2),
                        "median (flag 0)": round(float(zeros.median()), 2), "n": [len(ones), len(zeros)]})


def structural_break_test(frame: pd.DataFrame, h: Hypothesis) -> HypothesisOutcome:
    """CUSUM test on OLS residuals of y on weekday dummies (Ploberger & Kraemer, 1992)."""
    y = require_columns(frame, ("y",), h.id)["y"]
    residuals, k = _weekday_residuals(y)
    statistic, p_value, _ = breaks_cusumolsresid(residuals, ddof=k)
    path = cusum_path(y)
    return HypothesisOutcome(float(statistic), float(p_value),
                       detail={"largest cumulative deviation at": str(path.abs().idxmax().date())})


def cointegration_test(frame: pd.DataFrame, h: Hypothesis) -> HypothesisOutcome:
    """Engle-Granger (p-value for the family) with Johansen's trace test as a cross-check."""
    first, second = h.variables
    data = require_columns(frame, (first, second), h.id)
    statistic, p_value, _ = coint(data[first], data[second])
    johansen = coint_johansen(data[[first, second]].to_numpy(), det_order=0, k_ar_diff=1)
    trace, critical_95 = float(johansen.lr1[0]), float(johansen.cvt[0, 1])
    orders = {c: ("I(0)" if adfuller(data[c], autolag="AIC")[1] < 0.05 else "I(1) or higher") for c in (first, second)}
    return HypothesisOutcome(float(statistic), float(p_value),
                       detail={"johansen trace (r=0)": round(trace, 2), "johansen 95% critical": round(critical_95, 2),
                               "johansen rejects r=0": trace > critical_95, "integration order (ADF)": orders})


def correlation_test(frame: pd.DataFrame, h: Hypothesis) -> HypothesisOutcome:
    """Spearman rank correlation; the coefficient is the effect size."""
    first, second = h.variables
    data = require_columns(frame, (first, second), h.id)
    result = stats.spearmanr(data[first], data[second])
    pearson = stats.pearsonr(data[first], data[second])
    return HypothesisOutcome(float(result.statistic), float(result.pvalue), float(result.statistic), "Spearman rho",
                       {"pearson r": round(float(pearson.statistic), 3), "n": len(data)})


TESTS: dict[str, Callable[[pd.DataFrame, Hypothesis], HypothesisOutcome]] = {
    "weekly_seasonality": weekly_seasonality_test,
    "stationarity": stationarity_test,
    "granger": granger_test,
    "group_difference": group_difference_test,
    "structural_break": structural_break_test,
    "cointegration": cointegration_test,
    "correlation": correlation_test,
}


# -- interpretation -------------------------------------------------------------------------
def interpret(h: Hypothesis, outcome: HypothesisOutcome, p_adjusted: float) -> tuple[str, str, str]:
    """(decision, interpretation, modelling implication) in plain words, from the numbers."""
    reject = p_adjusted < h.alpha
    p_text = f"adjusted {p_clause(p_adjusted)}, {'below' if reject else 'not below'} alpha = {h.alpha}"
    if h.test == "stationarity":
        kpss_p = outcome.detail["kpss_p_value (clipped to [0.01, 0.10])"]
        kpss_reject = kpss_p < h.alpha
        cases = {
            (True, False): ("stationary", "ADF rejects a unit root and KPSS does not reject stationarity: "
                            "the series is stationary around a constant level.",
                            "Model levels; no differencing needed (d = 0)."),
            (False, True): ("unit root", "ADF cannot reject a unit root and KPSS rejects stationarity: "
                            "the series behaves like a random walk.", "Difference once (d = 1) before ARMA terms."),
            (True, True): ("difference-stationary or trending", "Both reject: the series is stationary after "
                           "removing a trend or differencing, but not around one level (often seasonality "
                           "or a slow trend).", "Let the model carry trend/seasonal terms or difference; "
                           "compare d = 0 and d = 1 by cross-validation."),
            (False, False): ("inconclusive", "Neither test rejects: the data cannot tell stationarity from a "
                             "unit root (low power).", "Prefer the simpler model and check forecasts both ways."),
        }
        decision, text, implication = cases[(reject, kpss_reject)]
        return decision, f"{text} ({p_text}; KPSS {p_clause(kpss_p)}).", implication
    decision = "reject H0" if reject else "do not reject H0"
    effect = (f" {outcome.effect_measure} = {number(outcome.effect_size)}." if outcome.effect_size is not None else "")
    a, b = (h.variables + ("", ""))[:2]
    texts = {
        "weekly_seasonality": ("Demand differs by day of the week beyond its weekly mean" if reject
                               else "No evidence that demand differs by day of the week",
                               "Use a seasonal period of 7 (seasonal naive with lag 7, weekly terms) for daily data."
                               if reject else "A weekly seasonal term is not supported by the data."),
        "granger": (f"Past {a} improves the prediction of {b} beyond its own past"
                    if reject else f"Past {a} adds no predictive information about {b}",
                    f"Include {a} (lags) as a regressor; forecasts then need its forecast."
                    if reject else f"{a} lags can be left out of univariate models."),
        "group_difference": (f"{a} differs between {b} = 1 and 0" if reject
                             else f"No evidence that {a} differs by {b}",
                             f"Add {b} as a regressor (or holiday calendar)." if reject
                             else f"{b} is not needed as a regressor."),
        "structural_break": ("The mean level is not stable over the sample (CUSUM crosses its bound)" if reject
                             else "No evidence of a structural break in the mean level",
                             "Weigh recent data more (or model the level shift/annual cycle) and keep several "
                             "CV folds across the year." if reject else "A single model over the whole sample is fine."),
        "cointegration": ("The pair shares a long-run equilibrium (Engle-Granger)" if reject
                          else "No evidence of a long-run equilibrium between the pair",
                          "An error-correction term is worth trying." if reject
                          else "Model the pair without an error-correction term."),
        "correlation": (f"{a} and {b} are monotonically related" if reject
                         else f"No evidence of a monotonic relation between {a} and {b}",
                         f"{b} is a candidate regressor." if reject
                         else f"{b} is unlikely to help a linear model."),
    }
    head, implication = texts[h.test]
    note = ""
    if h.test == "cointegration":
        orders = outcome.detail["integration order (ADF)"]
        if len(set(orders.values())) > 1 or "I(0)" in orders.values():
            note = (" Caution: cointegration presumes both series are I(1), but ADF finds "
                    + ", ".join(f"{k} {v}" for k, v in orders.items())
                    + "; Johansen's trace test then rejects r = 0 merely because a stationary series is present.")
    return decision, f"{head} ({p_text}).{effect}{note}", implication


# -- the registry ---------------------------------------------------------------------------
def registry_hash(path: str | Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def load_registry(path: str | Path) -> tuple[dict[str, Any], list[Hypothesis]]:
    """The family settings and its hypotheses; every entry is checked."""
    try:
        data = yaml.safe_load(Path(path).read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise RegistryError(f"cannot read the registry {path}: {exc}") from exc
    if not isinstance(data, dict) or not isinstance(data.get("hypotheses"), list):
        raise RegistryError(f"{path}: expected a mapping with a 'hypotheses' list")
    family = {"correction": data.get("correction", "holm"), "alpha": float(data.get("alpha", 0.05)),
              "name": data.get("family", Path(path).stem)}
    if family["correction"] not in CORRECTIONS:
        raise RegistryError(f"{path}: correction must be one of {CORRECTIONS}, got {family['correction']!r}")
    hypotheses, seen = [], set()
    for i, entry in enumerate(data["hypotheses"]):
        missing = {"id", "claim", "test", "variables", "transform", "expected"} - set(entry or {})
        if missing:
            raise RegistryError(f"{path}: hypothesis #{i + 1} lacks {sorted(missing)}")
        if entry["test"] not in TESTS:
            raise RegistryError(f"{entry['id']}: unknown test {entry['test']!r}; tests: {sorted(TESTS)}")
        if entry["id"] in seen:
            raise RegistryError(f"duplicate hypothesis id {entry['id']!r}")
        seen.add(entry["id"])
        hypotheses.append(Hypothesis(
            id=entry["id"], claim=entry["claim"], test=entry["test"], variables=tuple(entry["variables"]),
            transform=entry["transform"], alpha=float(entry.get("alpha", family["alpha"])),
            expected=entry["expected"], params=dict(entry.get("params") or {}),
        ))
    return family, hypotheses


def run_registry(frame: pd.DataFrame, hypotheses: list[Hypothesis], correction: Correction = "holm") -> pd.DataFrame:
    """Run every hypothesis on ``frame`` (see :func:`daily_frame`); one row each (:data:`RESULT_COLUMNS`)."""
    outcomes: dict[str, HypothesisOutcome | str] = {}
    for h in hypotheses:
        try:
            outcomes[h.id] = TESTS[h.test](frame, h)
        except NotTestable as exc:
            outcomes[h.id] = str(exc)
    tested = [h for h in hypotheses if isinstance(outcomes[h.id], HypothesisOutcome)]
    adjusted = dict(zip([h.id for h in tested],
                        adjust_p_values([outcomes[h.id].p_value for h in tested], correction)))  # type: ignore[union-attr]
    rows = []
    for h in hypotheses:
        outcome = outcomes[h.id]
        if isinstance(outcome, str):
            rows.append({"id": h.id, "claim": h.claim, "test": h.test, "status": "not tested", "alpha": h.alpha,
                         "interpretation": f"Not tested: {outcome}.", "implication": "", "detail": {}})
            continue
        decision, text, implication = interpret(h, outcome, adjusted[h.id])
        rows.append({"id": h.id, "claim": h.claim, "test": h.test, "status": "tested",
                     "statistic": outcome.statistic, "p_value": outcome.p_value, "p_adjusted": adjusted[h.id],
                     "alpha": h.alpha, "decision": decision, "effect_size": outcome.effect_size,
                     "effect_measure": outcome.effect_measure, "interpretation": text, "implication": implication,
                     "detail": outcome.detail})
    return pd.DataFrame(rows, columns=RESULT_COLUMNS)


# -- the record the reports' landing page reads ------------------------------------------------
def results_record(results: pd.DataFrame, hypotheses: list[Hypothesis], family: dict[str, Any],
                   registry: str | Path) -> dict[str, Any]:
    """What the family found, for the landing page (:mod:`helpers.app.findings`): each
    hypothesis with its claim, whether it was tested, its adjusted p-value and whether H0 was
    rejected at its alpha."""
    by_id = {h.id: h for h in hypotheses}
    rows = []
    for row in results.to_dict("records"):
        h = by_id[row["id"]]
        tested = row["status"] == "tested" and pd.notna(row["p_adjusted"])
        rows.append({"id": h.id, "claim": h.claim, "alpha": h.alpha, "tested": bool(tested),
                     "p_adjusted": float(row["p_adjusted"]) if tested else None,
                     "rejected": bool(tested and row["p_adjusted"] < h.alpha),
                     "decision": str(row["decision"]) if tested else "not tested"})
    return {"family": family.get("name"), "correction": family.get("correction"),
            "registry_sha256": registry_hash(registry), "hypotheses": rows}


def write_results(record: dict[str, Any], path: str | Path) -> Path:
    """:func:`results_record` as JSON, written whole or not at all."""
    import json

    from helpers.core.files import write_atomic

    return write_atomic(path, json.dumps(record, indent=1))
