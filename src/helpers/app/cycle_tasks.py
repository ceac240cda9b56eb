"""The tasks of one operating cycle (``pipeline.operate.yaml``); see :mod:`helpers.app.cycle`.

Each reads the settings as ``load_settings`` does (the cycle runs with the same environment)
and writes a small JSON record as its product.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import nbformat

from helpers.core.files import write_atomic
from helpers.core.provenance import stamp
from helpers.core.settings import load_settings
from helpers.forecast.artifact import write_artifact
from helpers.lifecycle import retrain
from helpers.lifecycle.champion import StoreUnavailable, champion_artifact
from helpers.lifecycle.registry import RegistryError
from helpers.operate import alerts, forecast_log, intake, monitoring, refit, signal_snapshot
from helpers.publish import release
from helpers.publish.site import add_navigation, navigation, notebook_title, render_notebook, site_link, write_index
from helpers.warehouse import Warehouse


def _write(product: Any, record: dict[str, Any]) -> None:
    write_atomic(Path(str(product)), json.dumps(record, indent=1, default=str))


def intake_task(product: Any, cycle_id: str, now: str) -> None:
    """Take in the inbox (:func:`helpers.operate.intake.process_inbox`)."""
    settings = load_settings()
    with Warehouse.from_settings(settings) as warehouse:
        result = intake.process_inbox(settings, warehouse, cycle_id, now=datetime.fromisoformat(now))
    print(result.summary())
    _write(product, {"cycle_id": cycle_id, "taken_in": [asdict(f) for f in result.taken_in],
                     "files": [asdict(f) for f in result.files], "rows_loaded": result.rows_loaded})


def forecast_task(product: Any, upstream: Any, artifact: str, refit_artifact: str, now: str) -> None:
    """Refit the production model on all data, log its forecasts and fold the service's log."""
    settings = load_settings()
    issued = datetime.fromisoformat(now)
    with Warehouse.from_settings(settings) as warehouse:
        payload = refit.refit(settings, warehouse, artifact, now=issued)
        write_artifact(Path(refit_artifact), payload)
        # A refit is new data for the same model: its version is the artifact the comparison made.
        rows = forecast_log.artifact_forecasts(payload, issued_at=issued).assign(model_version=payload["refit_of"])
        logged = forecast_log.log_scheduled(warehouse, rows)
        folded = forecast_log.fold_logs(warehouse, settings.forecast_log_dir)
        forecast_log.write_predictions_snapshot(warehouse, settings.forecast_log_dir / forecast_log.SNAPSHOT_NAME)
    _write(product, {"model": payload["selected_model"], "model_version": payload["refit_of"],
                     "fitted_until": payload["training_end"], "logged": int(logged), "folded": int(folded),
                     "artifact": refit_artifact})



def conditions(signals: list[Any], files: list[dict[str, Any]], monitoring_site: str) -> list[alerts.Condition]:
    """What the people on call are told about: every orange or red signal, and every file of high
    criticality among ``files`` (the records of those taken in during the monitoring window: the
    alert holds while the file is in the window, then clears)."""
    page = f"{monitoring_site}/monitoring.html"
    found = [alerts.Condition(key=s.key, severity=s.status, title=f"{s.key} is {s.status}", message=s.message,
                              link=page) for s in signals if s.status in ("orange", "red")]
    for f in files:
        if f["criticality"] != "high":
            continue
        what = (f"none of its {f['rows_read']} rows could be loaded" if f["rows_loaded"] == 0 else
                f"{f['rows_quarantined']} of its {f['rows_read']} rows are bad")
        bad_rows = f", its bad rows in {f['bad_rows_file']}" if isinstance(f.get("bad_rows_file"), str) else ""
        reason = f" ({f['reason']})" if isinstance(f.get("reason"), str) else ""
        found.append(alerts.Condition(
            key=f"file:{f['file_sha256']}", severity="high", title=f"data file {f['file_name']}: high criticality",
            message=f"{f['file_name']}: {what}{reason}. The file is in {f['archived_as']}{bad_rows}. Fix the source "
                    "and drop a corrected file in the inbox.",
            link=f"{monitoring_site}/files/{Path(f['archived_as']).name}.html"))
    return found


def alerts_task(product: Any, upstream: Any, monitoring_site: str, reference_artifact: str, now: str) -> None:
    """Open, update or clear alerts from the monitoring signals and the files taken in; send the weekly summary.
    The signals also go to ``<forecast_log_dir>/signals.json`` for the service's ``GET /metrics``.

    ``reference_artifact`` (the production artifact: the registry's champion, or the model
    comparison's) gives the cross-validated error and the training window the signals are
    judged against."""
    settings = load_settings()
    moment = datetime.fromisoformat(now)
    channels = alerts.channels_from_settings(settings)
    with Warehouse.from_settings(settings) as warehouse:
        state = monitoring.current_state(warehouse, settings, reference_artifact)
        signals = state.signals
        # for the service's GET /metrics, before any alert is sent (a channel may be slow)
        signal_snapshot.write_signal_snapshot(
            settings.forecast_log_dir / signal_snapshot.SIGNALS_NAME, signals, series_id=settings.series_id,
            as_of=moment, last_actual=state.last_actual, drift_ks_pvalues=state.drift_ks_pvalues)
        files = monitoring.intake_files(warehouse, settings.series_id)
        recent = files[files["processed_at"] > moment - timedelta(days=settings.monitor_window_days)]
        outcome = alerts.reconcile(warehouse, conditions(signals, recent.to_dict("records"), monitoring_site), moment,
                                   channels)
        summary = alerts.send_weekly_summary(warehouse, settings, moment, f"{monitoring_site}/index.html")
    print(outcome.summary())
    _write(product, {"signals": [asdict(s) for s in signals], "opened": outcome.opened, "worsened": outcome.worsened,
                     "updated": outcome.updated, "cleared": outcome.cleared, "not_delivered": outcome.failures,
                     "weekly_summary": None if summary is None else summary.results})


def retrain_task(product: Any, upstream: Any, monitoring_site: str, now: str) -> None:
    """Run the retraining rule (:func:`helpers.lifecycle.retrain.run_rule`) on the cycle's signals
    (the ``alerts`` record): a challenger trained, scored against the champion and promoted or kept
    when due, the decision recorded and sent; one line when not due."""
    settings = load_settings()
    signals = json.loads(Path(str(upstream["alerts"])).read_text(encoding="utf-8"))["signals"]
    done = retrain.run_rule(settings, datetime.fromisoformat(now), signals, settings.products / "operate" / "retrain",
                            link=f"{monitoring_site}/monitoring.html")
    print(done.summary())
    if done.decision is not None:
        # The decision wrote the registry. Looking the champion up again now, while MLflow is
        # imported, records it for the next cycle, which then finds it without importing MLflow
        # (~1.7 s of a cycle's start); a store that cannot be read now is asked again then.
        try:
            champion_artifact(settings, settings.products / "operate" / "champion")
        except (StoreUnavailable, RegistryError) as exc:
            print(f"the champion after the decision could not be looked up now ({exc}); the next cycle asks again")
    _write(product, done.as_record())


def render_task(product: Any, upstream: Any, monitoring_site: str, reports: str, archive_dir: str,
                run_parameters: str | dict) -> None:
    """Render the monitoring notebook and link the files' data-quality pages and the analysis
    reports (published at ``reports`` by ``make run``); publish at ``monitoring_site``."""
    link = Path(monitoring_site)
    folder = release.new_folder(link)
    parameters = json.loads(run_parameters) if isinstance(run_parameters, str) else run_parameters
    record = stamp(parameters)
    notebook = Path(str(upstream["monitoring"]["nb"]))
    title = notebook_title(nbformat.read(notebook, as_version=4), "monitoring")
    pages = sorted((Path(archive_dir) / "pages").glob("*.html"), reverse=True)
    files = [(f"files/{page.stem}", f"Data quality: {page.stem}") for page in pages]
    sections = ([("Monitoring", [("monitoring", title)])] + ([("Files taken in", files)] if files else [])
                + [("Analysis", [site_link(reports, "Analysis reports of the last full run", "`make run`")])])
    render_notebook(notebook, folder, "monitoring", record, navigation(sections, "monitoring", home="Overview"))
    (folder / "files").mkdir()
    for page in pages:  # each file's page (helpers.operate.intake) with the site's navigation
        nav = navigation(sections, f"files/{page.stem}", "../", home="Overview")
        (folder / "files" / page.name).write_text(add_navigation(page.read_text(encoding="utf-8"), nav),
                                                  encoding="utf-8")
    write_index(sections, folder / "index.html", record, title="Monitoring of the served forecast", home="Overview")
    release.publish(link, folder)
    _write(product, {"monitoring": str(link), "folder": str(folder), "pages": 1 + len(pages)})
