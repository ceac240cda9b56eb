"""One experiment's whole analysis, as the ``bayesian_ab`` notebook shows it.

:func:`analyse` runs every part and keeps going when one part cannot be computed: the
reason goes to ``messages`` in plain language and that part stays ``None``, so a report
reader sees a sentence, never a traceback.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from helpers.ab import bayesian as ab
from helpers.ab import frequentist as fq
from helpers.ab import mcmc, power, sequential
from helpers.ab import store as ex
from helpers.ab.inputs import ABConfig, NotAnalysable
from helpers.ab.srm import sample_ratio_mismatch
from helpers.core.experiment_specs import ExperimentPlan
from helpers.warehouse import Warehouse


@dataclass
class ExperimentData:
    info: dict[str, Any]
    summary: pd.DataFrame
    cumulative: pd.DataFrame
    users: pd.DataFrame

    @property
    def control(self) -> str:
        return str(self.info["control"])

    @property
    def plan(self) -> ExperimentPlan:
        """What was fixed before the experiment ran (stored with it; defaults when absent)."""
        return self.info.get("plan") or ExperimentPlan(str(self.info["experiment_id"]), self.control)


def read_experiment(warehouse: Warehouse, experiment_id: str) -> ExperimentData:
    info = ex.experiment_info(warehouse, experiment_id)
    return ExperimentData(info, ex.variant_summary(warehouse, experiment_id, info["control"]),
                          ex.daily_cumulative(warehouse, experiment_id), ex.user_revenue(warehouse, experiment_id))


def data_hash(data: ExperimentData) -> str:
    """SHA-256 of the rows the analysis reads (summary, daily cumulative counts, per-user revenue)."""
    import hashlib

    digest = hashlib.sha256()
    for frame in (data.summary, data.cumulative, data.users):
        digest.update(pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes())
    return digest.hexdigest()


def provenance_rows(data: ExperimentData, load_report: str | None = None) -> dict[str, str]:
    """Provenance of the experiment's data; ``load_report`` (the pipeline's ``experiments``
    product) adds the load run that wrote it."""
    import json
    from pathlib import Path

    rows = {"experiment": str(data.info["experiment_id"]), "experiment source": str(data.info["source"]),
            "experiment loaded (UTC)": str(data.info["updated_at"]), "experiment data SHA-256": data_hash(data)}
    if load_report:
        for load in json.loads(Path(load_report).read_text()):
            if data.info["experiment_id"] in load["experiments"]:
                rows["load run"] = (f"{load['run_id']} ({load['rows_loaded']} rows loaded, "
                                    f"{load['rows_quarantined']} quarantined)")
    return rows


@dataclass
class ABReport:
    data: ExperimentData
    config: ABConfig
    srm: dict[str, Any]
    parts: dict[str, Any] = field(default_factory=dict)
    messages: list[str] = field(default_factory=list)

    def get(self, name: str) -> Any:
        return self.parts.get(name)

    def show(self, name: str) -> Any:
        """The part, or the sentence saying why it is missing (for a notebook cell)."""
        from IPython.display import Markdown

        part = self.parts.get(name)
        if part is None:
            reasons = [m for m in self.messages if m.startswith(f"{name}:")] or [f"{name}: not computed"]
            return Markdown("\n\n".join(f"*{r.split(': ', 1)[1]}*" for r in reasons))
        return part


def analyse(data: ExperimentData, config: ABConfig) -> ABReport:
    """Every closed-form, frequentist, sequential and power result of one experiment.

    A part the data cannot answer (:class:`NotAnalysable`) becomes a sentence in
    ``messages``; any other exception is a bug and propagates, so the report fails loudly.
    """
    users = data.summary.set_index("variant")["users"]
    plan = data.plan
    report = ABReport(data, config, sample_ratio_mismatch(users, pd.Series(plan.shares(list(users.index))),
                                                          planned=plan.allocation is not None))
    baseline = plan.baseline_rate
    steps = {
        "conversion": lambda: ab.conversion_analysis(data.summary, config),
        "revenue": lambda: ab.revenue_analysis(data.summary, config),
        "lift_draws": lambda: ab.lift_draws(data.summary, config),
        "beat_over_time": lambda: ab.beat_control_over_time(data.cumulative, data.control),
        "conversion_tests": lambda: fq.conversion_tests(data.summary, config),
        "chi_square": lambda: pd.DataFrame([fq.chi_square_all(data.summary)]),
        "revenue_tests": lambda: fq.revenue_tests(data.summary, data.users, config),
        "sequential": lambda: sequential.sequential_monitoring(data.cumulative, data.control, config, baseline),
        "power": lambda: power.power_table(data.summary, config, baseline),
    }
    for name, step in steps.items():
        try:
            report.parts[name] = step()
        except NotAnalysable as exc:
            report.messages.append(f"{name}: {exc}")
    conversion = report.parts.get("conversion")
    if conversion is not None:
        report.messages += [f"conversion: {note}" for note in conversion.attrs.get("notes", [])]
    return report


def run_pymc(report: ABReport) -> None:
    """The PyMC cross-check of the conversion model and the PyMC revenue model (slow part)."""
    summary, config = report.data.summary, report.config
    if not config.pymc:
        why = ("the PyMC models were not fitted (ab_pymc is false; set ab_pymc: true in env.yaml or "
               "HELPERS_AB_PYMC=true to fit them)")
        report.messages += [f"{part}: {why}" for part in ("conversion_diagnostics", "cross_check", "pymc_conversion",
                                                          "revenue_diagnostics")]
        return
    try:
        idata = mcmc.pymc_conversion(summary, config)
        report.parts["pymc_conversion"] = idata
        report.parts["conversion_diagnostics"] = mcmc.diagnostics(idata, ["p"])
        report.parts["cross_check"] = mcmc.cross_check(summary, idata, config)
    except NotAnalysable as exc:
        report.messages.append(f"cross_check: {exc}")
    try:
        few = summary.loc[summary["payers"] < max(config.min_payers, 3), "variant"].tolist()
        if few:
            raise NotAnalysable(f"{', '.join(map(repr, few))} have fewer than {max(config.min_payers, 3)} paying "
                                "users (ab_min_payers); the revenue model is not fitted")
        idata = mcmc.pymc_revenue(summary, config)
        report.parts["pymc_revenue"] = idata
        table = mcmc.diagnostics(idata, ["revenue_per_user", "pay", "mu", "sigma"])
        # medians, as the closed form reports them: the revenue posterior has no mean
        medians = idata.posterior["revenue_per_user"].median(dim=("chain", "draw"))
        table["median"] = np.nan
        for variant in medians["variant"].to_numpy():
            table.loc[f"revenue_per_user[{variant}]", "median"] = float(medians.sel(variant=variant))
        closed = report.parts.get("revenue")
        if closed is not None:
            table["closed-form median"] = np.nan
            for variant, median in closed.set_index("variant")["posterior median"].items():
                table.loc[f"revenue_per_user[{variant}]", "closed-form median"] = median
        report.parts["revenue_diagnostics"] = table
    except NotAnalysable as exc:
        report.messages.append(f"revenue_diagnostics: {exc}")


def decision_summary(report: ABReport) -> str:
    """The experiment's verdict in plain language (Markdown)."""
    lines = []
    if report.srm["mismatch"]:
        lines.append(f"> ⚠️ **{report.srm['message']}**")
    conversion = report.get("conversion")
    if conversion is None:
        lines += [f"This experiment cannot be analysed: {m.split(': ', 1)[1]}" for m in report.messages
                  if m.startswith("conversion:")]
        return "\n\n".join(lines)
    lines += [f"- {s}" for s in ab.explain(conversion, report.config.rope)]
    revenue = report.get("revenue")
    if revenue is not None:
        for row in revenue.iloc[1:].to_dict("records"):
            lines.append(f"- Revenue per user of **{row['variant']}** differs from control by "
                         f"{row['lift HDI low']:+.2f} to {row['lift HDI high']:+.2f} (95% credible interval, median "
                         f"{row['lift']:+.2f}; P(higher) = {row['P(beat control)']:.1%}).")
    best = conversion.loc[conversion["P(best)"].idxmax()]
    lines.append(f"- Most likely best converter: **{best['variant']}** (P(best) = {best['P(best)']:.1%}).")
    power = report.get("power")
    if power is not None:
        row = power.iloc[0]
        lines.append(f"- Each variant needed {int(row['users needed per variant']):,} users to detect a "
                     f"{row['MDE (relative)']:.0%} relative lift with {row['target power']:.0%} power; the smallest "
                     f"has {int(row['smallest variant']):,} (power {row['achieved power']:.0%}).")
    lines += [f"- Note: {m.split(': ', 1)[1]}" for m in report.messages if m.startswith("conversion:")]
    return "\n".join(lines)


# -- figures ----------------------------------------------------------------------------------------------
def plot_lift(report: ABReport):
    """Posterior of each variant's absolute conversion lift, with the ROPE shaded."""
    import plotly.express as px

    draws = report.get("lift_draws")
    sample = draws.groupby("variant").head(5_000).assign(lift=lambda d: d["lift"] * 100)
    fig = px.histogram(sample, x="lift", color="variant", nbins=120, barmode="overlay", histnorm="probability density",
                       opacity=0.6, height=380, labels={"lift": "lift over control (percentage points)"},
                       title="Posterior of the conversion lift over control")
    rope = report.config.rope * 100
    fig.add_vrect(x0=-rope, x1=rope, fillcolor="grey", opacity=0.2, line_width=0, annotation_text="ROPE")
    fig.add_vline(x=0, line_dash="dot")
    return fig


def plot_beat_over_time(report: ABReport):
    import plotly.express as px

    frame = report.get("beat_over_time")
    fig = px.line(frame, x="day", y="P(beat control)", color="variant", markers=True, height=350,
                  title="Probability to beat control, day by day (cumulative data)")
    fig.update_yaxes(range=[0, 1])
    return fig


def plot_sequential(report: ABReport):
    """SPRT log-likelihood ratio against Wald's boundaries, and the mSPRT always-valid p-value."""
    from plotly.subplots import make_subplots

    paths = report.get("sequential").paths
    fig = make_subplots(rows=1, cols=2, subplot_titles=("SPRT log-likelihood ratio", "mSPRT always-valid p-value"))
    for variant, path in paths.groupby("variant"):
        fig.add_scatter(x=path["day"], y=path["llr"], name=f"{variant} LLR", mode="lines+markers", row=1, col=1)
        fig.add_scatter(x=path["day"], y=path["msprt_p"], name=f"{variant} p", mode="lines+markers", row=1, col=2)
    first = paths.iloc[0]
    fig.add_hline(y=first["reject_bound"], line_dash="dash", annotation_text="stop: lift", row=1, col=1)
    fig.add_hline(y=first["accept_bound"], line_dash="dash", annotation_text="stop: no lift", row=1, col=1)
    fig.add_hline(y=report.config.alpha, line_dash="dash", annotation_text="alpha", row=1, col=2)
    fig.update_yaxes(type="log", row=1, col=2)
    fig.update_layout(height=380, title="Sequential monitoring against control")
    return fig


def plot_posterior(report: ABReport):
    """ArviZ's posterior plot of the PyMC conversion rates (95% HDI marked)."""
    import warnings

    import matplotlib.pyplot as plt

    az = mcmc.arviz()
    with warnings.catch_warnings():
        # ArviZ 0.23 calls a matplotlib 3.11 helper in a deprecated way; the plot is unaffected.
        warnings.filterwarnings("ignore", message="Passing a dict or None as alias_mapping")
        axes = az.plot_posterior(report.get("pymc_conversion"), var_names=["p"], hdi_prob=0.95, figsize=(12, 3))
    figure = np.atleast_1d(axes).ravel()[0].figure
    plt.close(figure)  # shown once, as the cell's value
    return figure


# -- the record the reports' landing page reads ----------------------------------------------------
def verdict(report: ABReport) -> dict[str, Any]:
    """The experiment's verdict for the landing page (:mod:`helpers.app.findings`): the
    sample-ratio check and, per variant, the decision of the HDI + ROPE rule with the
    probability to beat the control and the 95% HDI of the lift (shares, not percentages)."""
    conversion = report.get("conversion")
    record: dict[str, Any] = {"experiment_id": str(report.data.info["experiment_id"]), "control": report.data.control,
                              "sample_ratio_mismatch": bool(report.srm["mismatch"]),
                              "analysable": conversion is not None,
                              "variants": []}
    if conversion is None:
        record["message"] = "; ".join(m.split(": ", 1)[1] for m in report.messages if m.startswith("conversion:"))
        return record
    for row in conversion.iloc[1:].to_dict("records"):
        record["variants"].append({"variant": str(row["variant"]), "decision": str(row["decision"]),
                                   "p_beat_control": float(row["P(beat control)"]), "lift": float(row["lift"]),
                                   "lift_low": float(row["lift HDI low"]), "lift_high": float(row["lift HDI high"])})
    return record


def write_verdict(report: ABReport, path: str | Path) -> Path:
    """:func:`verdict` as JSON, written whole or not at all."""
    import json

    from helpers.core.files import write_atomic

    return write_atomic(path, json.dumps(verdict(report), indent=1))
