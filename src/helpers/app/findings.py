"""What the reports found, in sentences with their numbers: the landing page's findings.

Every number is read from the pipeline's products and the warehouse (read-only), none is
typed: the ingest report (``ingest/report.json``), the hypothesis family's results
(``hypotheses/results.json``), the model selection (``model/selection.json``) and its
registry version (``model/registration.json``), each experiment's verdict
(``ab/verdict-<id>.json``), the last operating cycle's monitoring signals
(``<forecast_log_dir>/signals.json``) and the last retraining decision (``model_decisions``).
A product that is missing or unreadable gives a sentence that says so, never a failed page.

:func:`findings` returns them in reading order; :func:`helpers.publish.site.write_index`
writes them at the top of ``reports/index.html``, each linked to its report.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from helpers.core.formatting import number, p_clause, percent, points, when

#: Plain words for the HDI + ROPE decisions (helpers.ab.bayesian).
DECISIONS = {"better": "ship it", "worse": "do not ship it", "equivalent": "no practical difference",
             "undecided": "undecided"}


#: The family corrections (helpers.core.stats) by name.
CORRECTIONS = {"holm": "Holm", "fdr_bh": "Benjamini-Hochberg"}


@dataclass(frozen=True)
class Finding:
    """One finding: its topic, the sentence with its numbers, and the page it comes from
    (relative to the reports folder, ``None`` when there is none to link)."""

    topic: str
    text: str
    link: str | None


@dataclass
class Sources:
    """Where the findings are read from (the build's products; any may be missing)."""

    ingest: Path | None = None
    hypotheses: Path | None = None
    selection: Path | None = None
    registration: Path | None = None
    verdicts: dict[str, Path] = field(default_factory=dict)  # experiment id -> verdict file
    signals: Path | None = None
    monitoring_link: str | None = None  # the monitoring page, relative to the reports folder
    decisions: Callable[[], list[dict[str, Any]]] | None = None  # the model_decisions rows, oldest first


def _read(path: Path | None) -> dict[str, Any] | list[Any] | None:
    if path is None or not Path(path).is_file():
        return None
    return json.loads(Path(path).read_text(encoding="utf-8"))


def _guarded(topic: str, link: str | None, make: Callable[[], str]) -> Finding:
    """The finding ``make`` writes; a product that cannot be read is a sentence, not a failure."""
    try:
        text = make()
    except Exception as exc:  # noqa: BLE001 - a finding that cannot be read says so; the page is still made
        text = f"Could not be read ({type(exc).__name__}: {exc})."
    return Finding(topic, text, link)


def data_quality(report: dict[str, Any]) -> str:
    read, quarantined = int(report["rows_read"]), int(report["rows_quarantined"])
    problems = {kind: int(n) for kind, n in report.get("counts", {}).items() if int(n)}
    share = f" ({percent(quarantined / read)})" if read else ""
    found = ("; problems found: " + ", ".join(f"{n:,} {kind.replace('_', ' ')}" for kind, n in problems.items())
             if problems else "; no problem found")
    return (f"The latest ingest ({when(report.get('finished_at', '')[:10])}, {Path(report['source_file']).name}) "
            f"read {read:,} rows: {int(report['rows_loaded']):,} loaded, {quarantined:,} quarantined{share}{found}.")


def hypotheses(record: dict[str, Any]) -> str:
    rows = record["hypotheses"]
    tested = [h for h in rows if h["tested"]]
    rejected = [h for h in tested if h["rejected"]]
    kept = [h for h in tested if not h["rejected"]]

    def named(items: list[dict[str, Any]]) -> str:
        return ", ".join(f"{h['id']} ({p_clause(h['p_adjusted'])})" for h in items)

    correction = CORRECTIONS.get(record.get("correction"), record.get("correction") or "family")
    text = f"{len(rejected)} of {len(tested)} tested null hypotheses rejected after {correction} adjustment"
    text += f": {named(rejected)}" if rejected else ""
    text += f". Not rejected: {named(kept)}" if kept else ""
    untested = [h["id"] for h in rows if not h["tested"]]
    text += f". Not tested (the series lacks their data): {', '.join(untested)}" if untested else ""
    return text + "."


def model(selection: dict[str, Any], registration: dict[str, Any] | None) -> str:
    selected = selection["selected"]
    metrics = selection["metrics"]
    rmse = float(metrics[selected]["rmse"])
    text = f"{selected} was selected: RMSE {number(rmse)} on the evaluation folds"
    baseline = metrics.get("seasonal_naive", {}).get("rmse")
    if baseline:
        ratio = rmse / float(baseline)
        margin = f"{percent(abs(1 - ratio))} {'lower' if ratio <= 1 else 'higher'}"
        text += f" against {number(baseline)} for seasonal naive, {margin} (ratio {number(ratio)})"
    else:
        text += " (seasonal naive was not compared)"
    text += "."
    if registration and registration.get("note"):
        text += f" Model registry: {registration['note']}."
    return text


def experiment(verdict: dict[str, Any]) -> str:
    if verdict.get("sample_ratio_mismatch"):
        return "Sample ratio mismatch: the assignment is broken and no result can be trusted."
    if not verdict.get("analysable", True):
        return f"Not analysable: {verdict.get('message') or 'no conversion analysis'}."
    parts = [f"{v['variant']}: {DECISIONS.get(v['decision'], v['decision'])} (P(beat {verdict['control']}) "
             f"{percent(v['p_beat_control'])}, lift {points(v['lift_low'])} to {points(v['lift_high'])})"
             for v in verdict["variants"]]
    return "; ".join(parts) + "." if parts else "No variant besides the control."


def monitoring(snapshot: dict[str, Any]) -> str:
    signals = snapshot["signals"]
    counts = {status: [s for s in signals if s["status"] == status] for status in ("red", "orange", "green", "grey")}
    grey = " (not judged: no data yet, or too little)"
    tally = ", ".join(f"{len(items)} {status}" + (grey if status == "grey" else "")
                      for status, items in counts.items() if items)
    alerting = counts["red"] + counts["orange"]
    moment = when(snapshot["as_of"][:16].replace("T", " "))
    text = f"The last operating cycle ({moment}) gave {len(signals)} monitoring signals: {tally}"
    if alerting:
        text += ". Needing attention: " + ", ".join(f"{s['key']} ({s['status']}, {number(s['value'])})"
                                                   for s in alerting)
    return text + "."


def retraining(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return "No retraining decision yet."
    last = rows[-1]
    message = str(last["message"])
    return (f"{when(last['decided_at'])}: {last['outcome']} (triggered by {last['triggered_by']}): "
            f"{message[0].upper() + message[1:]}.")


def findings(sources: Sources) -> list[Finding]:
    """The landing page's findings, in reading order (module docstring); a product the pipeline
    does not make (``None``) has no finding, one it makes but is missing says so."""
    found: list[Finding] = []

    def stated(path: Path, describe: Callable[[Any], str], missing: str) -> Callable[[], str]:
        def text() -> str:
            data = _read(path)
            return describe(data) if data else missing
        return text

    if sources.ingest is not None:
        found.append(_guarded("Data quality", "data_quality.html",
                              stated(sources.ingest, data_quality, "No ingest report was found.")))
    if sources.hypotheses is not None:
        found.append(_guarded("Hypotheses", "hypothesis_tests.html",
                              stated(sources.hypotheses, hypotheses, "No hypothesis results were found.")))
    if sources.selection is not None:
        found.append(_guarded("Forecast model", "model_comparison.html", stated(
            sources.selection, lambda selection: model(selection, _read(sources.registration)),
            "No model selection was found.")))
    for experiment_id, path in sorted(sources.verdicts.items()):
        found.append(_guarded(f"A/B experiment {experiment_id}", f"bayesian_ab-{experiment_id}.html",
                              stated(path, experiment, "No verdict was found.")))
    try:
        snapshot = _read(sources.signals)
    except (OSError, ValueError) as exc:
        found.append(Finding("Monitoring", f"The last cycle's signals could not be read ({type(exc).__name__}: "
                                           f"{exc}).", None))
        return found
    no_cycle = "No operating cycle has run yet: `make operate` monitors the served forecast."
    found.append(_guarded("Monitoring", sources.monitoring_link if snapshot else None,
                          lambda: monitoring(snapshot) if snapshot else no_cycle))
    found.append(_guarded("Retraining", sources.monitoring_link if snapshot else None,
                          lambda: retraining(sources.decisions() if sources.decisions else [])
                          if snapshot else "No operating cycle has run yet, so no retraining decision."))
    return found


def warehouse_decisions(settings: Any) -> Callable[[], list[dict[str, Any]]]:
    """The ``model_decisions`` rows of the settings' series, read-only, oldest first."""

    def read() -> list[dict[str, Any]]:
        from helpers.lifecycle.decisions import read_decisions
        from helpers.warehouse import Warehouse

        with Warehouse.from_settings(settings, read_only=True) as warehouse:
            return read_decisions(warehouse, settings.series_id).to_dict("records")

    return read
