"""Prometheus metrics of the forecast service, served at ``GET /metrics`` (:mod:`helpers.app.service`).

A request only adds to plain ints and floats (:class:`ServiceMetrics`: 1.2 to 2.5 us for the
usual ``POST /predict``, against 5.0 to 8.1 us for prometheus-client's own counter and histogram
children, in two runs of ``bench_metrics_recording`` in ``bench/run.py`` on a loaded machine);
a scrape turns them into metric families (:meth:`ServiceMetrics.collect`). Everything runs in the event loop's thread, so
nothing needs a lock. Exposed, in the text format 0.0.4:

- ``http_requests_total{route, status}``: requests answered; ``route`` is one of
  :data:`ROUTES`, any other path is ``other``;
- ``http_request_duration_seconds{route}``: a histogram of the time from the request reaching
  the app to its response handed to the server (:data:`BUCKETS`, 50 us to 5 s; the network,
  HTTP parsing and waiting for the event loop are not in it);
- ``forecast_predictions_total{model}`` and ``forecast_days_served_total{model}``: ``POST
  /predict`` answers served (200) and the days they forecast, by model;
- ``forecast_model_info{model, version, registry_version, series_id} 1``: the served artifact
  (read at each scrape, so a model swapped at run time shows at once); ``version`` is its
  ``created_utc``, ``registry_version`` the registered model's version (empty for a file);
- ``forecast_last_data_timestamp_seconds{source}``: ``artifact``, the last day the served
  model was fitted on; ``actuals``, the last day with an actual value in the warehouse (from
  the last cycle's signals);
- the last cycle's monitoring signals (:mod:`helpers.operate.signal_snapshot`), absent until
  a cycle wrote them and for a signal not judged (grey):
  ``forecast_rolling_error_ratio{model}`` (the window's MAE over the cross-validated MAE),
  ``forecast_interval_coverage_ratio{model, level}``, ``forecast_drift_psi{variable}``,
  ``forecast_drift_ks_pvalue{variable}``, ``forecast_data_invalid_ratio`` (invalid rows in
  the window's files), ``forecast_data_quality_criticality`` (the worst file of the window:
  0 low, 1 medium, 2 high), ``forecast_monitoring_signal_status{signal}`` (0 green, 1 orange,
  2 red) and ``forecast_monitoring_snapshot_timestamp_seconds`` (when the cycle wrote them);
- prometheus-client's ``process_*`` and ``python_*`` metrics of the service's process.
"""

from __future__ import annotations

import os
from bisect import bisect_left
from collections.abc import Callable, Iterator
from time import perf_counter
from typing import Any

from prometheus_client import CollectorRegistry, GCCollector, PlatformCollector, ProcessCollector
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4, generate_latest
from prometheus_client.utils import floatToGoString

from helpers.operate.signal_snapshot import SignalSnapshot, SignalSnapshotReader, epoch_seconds

#: The ``route`` label's values: the service's paths; any other path counts as :data:`OTHER`.
ROUTES = ("/predict", "/predictions", "/models", "/health", "/metrics", "/docs", "/docs/oauth2-redirect",
          "/openapi.json", "/redoc")
OTHER = "other"
#: Upper bounds of the latency histogram (seconds): the usual /predict takes about 50 us in the app,
#: the bar is a p99 of 5 ms, and a GET /predictions over a long log can take a second.
BUCKETS = (0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
_LE = tuple(floatToGoString(b) for b in (*BUCKETS, float("inf")))
CONTENT_TYPE = CONTENT_TYPE_PLAIN_0_0_4
#: ``forecast_monitoring_signal_status`` and ``forecast_data_quality_criticality`` by status (grey: absent).
STATUS_LEVELS = {"green": 0, "orange": 1, "red": 2}


class _Route:
    """One route's counts: answers by status, latency histogram buckets (not cumulative), their sum."""

    __slots__ = ("statuses", "buckets", "seconds")

    def __init__(self) -> None:
        self.statuses: dict[int, int] = {}
        self.buckets = [0] * (len(BUCKETS) + 1)
        self.seconds = 0.0


class ServiceMetrics:
    """The service's counts, and the collector that exposes them with the served model and the signals.

    ``forecasts`` returns the served :class:`helpers.app.service.Forecasts` (None before the
    service started); ``signals`` is the path of the last cycle's ``signals.json``.
    """

    def __init__(self, forecasts: Callable[[], Any], signals: str | os.PathLike[str]) -> None:
        self.forecasts = forecasts
        self.signals = SignalSnapshotReader(signals)
        self.routes = {name: _Route() for name in (*ROUTES, OTHER)}
        self._predict, self._other = self.routes["/predict"], self.routes[OTHER]
        self._predict.statuses[200] = 0  # present from the start, so rates and ratios have a series
        self.predictions: dict[str, int] = {}
        self.days: dict[str, int] = {}
        self.registry = CollectorRegistry()
        self.registry.register(self)
        for collector in (ProcessCollector, PlatformCollector, GCCollector):
            collector(registry=self.registry)

    # -- per request ---------------------------------------------------------------------
    def answered(self, started: float) -> None:
        """A ``POST /predict`` answered 200 by the direct path, which began at ``perf_counter()`` ``started``."""
        seconds = perf_counter() - started
        route = self._predict
        route.statuses[200] += 1
        route.buckets[bisect_left(BUCKETS, seconds)] += 1
        route.seconds += seconds

    def served(self, model: str, days: int) -> None:
        """A forecast of ``days`` days from ``model`` served by ``POST /predict``."""
        self.predictions[model] = self.predictions.get(model, 0) + 1
        self.days[model] = self.days.get(model, 0) + days

    def observe(self, path: str, status: int, seconds: float) -> None:
        """A request to ``path`` answered with ``status`` after ``seconds``."""
        route = self.routes.get(path, self._other)
        route.statuses[status] = route.statuses.get(status, 0) + 1
        route.buckets[bisect_left(BUCKETS, seconds)] += 1
        route.seconds += seconds

    async def count(self, app: Callable[..., Any], scope: dict[str, Any], receive: Any, send: Any,
                    started: float) -> None:
        """Run the ASGI ``app`` on the request and count it with the status it answered; an
        exception before any answer counts as 500 (the server answers that) and is raised again."""
        status = None

        async def sending(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await app(scope, receive, sending)
        except Exception:
            self.observe(scope["path"], status or 500, perf_counter() - started)
            raise
        if status is not None:  # else the client left before an answer: nothing was served
            self.observe(scope["path"], status, perf_counter() - started)

    # -- per scrape ----------------------------------------------------------------------
    def exposition(self) -> bytes:
        """Every metric in the Prometheus text format 0.0.4 (:data:`CONTENT_TYPE`)."""
        return generate_latest(self.registry)

    def collect(self) -> Iterator[Metric]:
        requests = CounterMetricFamily("http_requests", "HTTP requests answered, by route (paths outside the "
                                       "service's own are 'other') and status", labels=("route", "status"))
        latency = HistogramMetricFamily("http_request_duration_seconds", "Time from a request reaching the app to "
                                        "its response handed to the server", labels=("route",))
        for name, route in self.routes.items():
            if not route.statuses:
                continue
            for status, n in sorted(route.statuses.items()):
                requests.add_metric((name, str(status)), n)
            cumulative, buckets = 0, []
            for le, n in zip(_LE, route.buckets):
                cumulative += n
                buckets.append((le, cumulative))
            latency.add_metric((name,), buckets, route.seconds)
        yield requests
        yield latency
        predictions = CounterMetricFamily("forecast_predictions", "POST /predict answers served, by model",
                                          labels=("model",))
        days = CounterMetricFamily("forecast_days_served", "Days forecast in the answers of POST /predict, by model",
                                   labels=("model",))
        for model in sorted(self.predictions):
            predictions.add_metric((model,), self.predictions[model])
            days.add_metric((model,), self.days[model])
        if self.predictions:
            yield predictions
            yield days
        last_data = GaugeMetricFamily("forecast_last_data_timestamp_seconds", "The last day of data (UTC midnight): "
                                      "the served model's last training day (artifact), the last day with an actual "
                                      "value in the warehouse as of the last cycle (actuals)", labels=("source",))
        forecasts = self.forecasts()
        if forecasts is not None:
            info = GaugeMetricFamily("forecast_model_info", "The served forecast artifact: selected model, version "
                                     "(its created_utc), registry version (empty when serving a file), series",
                                     labels=("model", "version", "registry_version", "series_id"))
            registry_version = "" if forecasts.version is None else str(forecasts.version)
            info.add_metric((forecasts.selected, forecasts.last_updated, registry_version, forecasts.series_id), 1)
            yield info
            last_data.add_metric(("artifact",), epoch_seconds(forecasts.training_end))
        snapshot = self.signals.read()
        if snapshot is not None:
            if snapshot.last_actual is not None:
                last_data.add_metric(("actuals",), snapshot.last_actual)
            yield from _signal_families(snapshot)
        if last_data.samples:
            yield last_data


def _signal_families(snapshot: SignalSnapshot) -> Iterator[Metric]:
    """The monitoring signals of ``snapshot`` as gauges (a signal without a value is left out)."""
    error = GaugeMetricFamily("forecast_rolling_error_ratio", "MAE over the monitoring window divided by the "
                              "model's cross-validated MAE (monitor_accuracy_*)", labels=("model",))
    coverage = GaugeMetricFamily("forecast_interval_coverage_ratio", "Share of the window's actual values inside the "
                                 "model's interval at this level (monitor_coverage_*)", labels=("model", "level"))
    psi = GaugeMetricFamily("forecast_drift_psi", "Population stability index of the deseasonalised variable, "
                            "window against training data (monitor_psi_*)", labels=("variable",))
    ks = GaugeMetricFamily("forecast_drift_ks_pvalue", "Two-sample KS p-value of the same comparison "
                           "(monitor_ks_alpha)", labels=("variable",))
    invalid = GaugeMetricFamily("forecast_data_invalid_ratio", "Share of invalid rows in the files taken in over the "
                                "window (monitor_invalid_*)")
    criticality = GaugeMetricFamily("forecast_data_quality_criticality", "The worst criticality of a file taken in "
                                    "over the window: 0 low, 1 medium, 2 high")
    status = GaugeMetricFamily("forecast_monitoring_signal_status", "Each judged signal's status as the last cycle "
                               "judged it: 0 green, 1 orange, 2 red", labels=("signal",))
    for signal in snapshot.signals:
        if signal.value is None or signal.status not in STATUS_LEVELS:
            continue
        status.add_metric((signal.key,), STATUS_LEVELS[signal.status])
        kind, _, name = signal.key.partition(":")
        if kind == "accuracy":
            error.add_metric((name,), signal.value)
        elif kind.startswith("coverage_"):
            coverage.add_metric((name, kind.removeprefix("coverage_")), signal.value)
        elif kind == "drift":
            psi.add_metric((name,), signal.value)
            if name in snapshot.drift_ks_pvalues:
                ks.add_metric((name,), snapshot.drift_ks_pvalues[name])
        elif signal.key == "data_quality:invalid_share":
            invalid.add_metric((), signal.value)
        elif signal.key == "data_quality:criticality":
            criticality.add_metric((), STATUS_LEVELS[signal.status])
    yield from (family for family in (error, coverage, psi, ks, invalid, criticality, status) if family.samples)
    yield GaugeMetricFamily("forecast_monitoring_snapshot_timestamp_seconds", "When the last cycle wrote the "
                            "monitoring signals (signals.json)", value=snapshot.created)
