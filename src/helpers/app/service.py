"""The forecast endpoint: a FastAPI app serving the artifact of the model comparison.

``make serve`` (``python -m helpers.app.service``) starts it with uvicorn on 127.0.0.1:8000.
The app serves the model registry's ``champion`` (or the file ``--artifact`` /
``HELPERS_ARTIFACT``): it loads the artifact in its lifespan and turns every model's forecast
path into ready-to-slice lists, so a request only validates its input, slices and serialises.
It follows the registry (or the file) without a restart (:mod:`helpers.app.model_source`): a
new champion is loaded off the event loop and swapped in with one assignment, a corrupt or
incompatible one is refused while the old one keeps serving.

- ``POST /predict``: ``{"start_date", "end_date", "model", "include_confidence"}`` to the
  forecast for those days with its 95% interval (and its 80% one) (as the model comparison chose it: calibrated
  on the backtest folds, or the model's own where that came closer to 95%) and the model's cross-validated RMSE and MAE, the numbers the
  model-comparison report shows;
- ``GET /models``: the models, their metrics, each interval's nominal and achieved coverage
  on the evaluation folds, the forecastable date range, the served version with its lineage,
  and the registry's challenger;
- ``GET /predictions?start_date=&end_date=&source=api|scheduled|webapp|all``: the forecasts
  issued for target days in that range, by the endpoint (api, or webapp for the dashboard's
  requests) and by the cycles (scheduled), with the actual value where the last cycle knew it
  (``helpers.operate.forecast_log``);
- ``GET /health``: liveness, which artifact (version) is served, what the service follows
  (its last check and last refusal), and the forecast log's counts;
- ``GET /metrics``: Prometheus metrics (:mod:`helpers.app.metrics`): requests by route and
  status, latency, predictions served, the served model, the last data and the last cycle's
  monitoring signals. ``--no-metrics`` turns them off (benchmarks).

Every forecast ``/predict`` serves is logged (``helpers.operate.forecast_log``), as source
``api``, or ``webapp`` when the request carries the header ``X-Request-Source: webapp`` (the
dashboard's; any other value is a 422 naming the allowed ones): the request only queues it; a task of the app writes the queue every ``forecast_log_flush_seconds`` to
the service's own files in ``forecast_log_dir``, which each cycle folds into the warehouse.
The service never opens the warehouse. ``--no-forecast-log`` turns the log off (benchmarks).

The usual ``POST /predict`` (a JSON object of the right fields, all valid) is answered before
FastAPI's stack (:class:`ForecastService`), from answers serialised once per model and day
range (:meth:`Forecasts.answer`), and uvicorn writes each response in one write
(:class:`OneWrite`); anything else goes through FastAPI and pydantic as before.

Input that cannot be served (a date that does not parse, start after end, a range outside
the forecastable window, an unknown model, a field or query parameter that is not part of
the request) gets a 422 whose ``detail`` says what is allowed. A body larger than
``max_request_bytes`` (64 KiB) gets 413 before it is read. Without a valid artifact the
service does not start, and says which command builds one.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import signal
import sys
import threading
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from time import perf_counter
from typing import Any, Literal

import orjson
from fastapi import FastAPI, Header, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field

from helpers.app.metrics import CONTENT_TYPE, ServiceMetrics
from helpers.app.model_source import ARTIFACT_ENV, ARTIFACT_LINEAGE, ModelFollower, source_for
from helpers.forecast.artifact import LEVELS, ArtifactError, load_artifact
from helpers.operate.forecast_log import (
    REQUEST_SOURCES, SOURCES, ForecastLogWriter, ForecastPath, PredictionReader,
)
from helpers.operate.signal_snapshot import SIGNALS_NAME

INTERVAL = ("lo-95", "hi-95")
#: The header a client of POST /predict names its source with (lower case, as ASGI gives it).
SOURCE_HEADER = b"x-request-source"
#: Its allowed values as the direct path compares them.
_REQUEST_SOURCES = frozenset(source.encode() for source in REQUEST_SOURCES)
#: Serialised /predict answers kept (1 to 3 kB each for a 28-day horizon); a model with a
#: horizon of n days has n(n+1) of them (every day range, with and without the interval).
ANSWER_CACHE = 4096


class PredictRequest(BaseModel):
    """One forecast request; dates are ISO 8601 days (``YYYY-MM-DD``)."""

    model_config = ConfigDict(extra="forbid")

    start_date: date = Field(description="first day to forecast, ISO 8601 (YYYY-MM-DD)")
    end_date: date = Field(description="last day to forecast (inclusive), not before start_date")
    model: str | None = Field(None, max_length=100,
                              description="a model name from GET /models; omitted: the selected model")
    include_confidence: bool = Field(True, description="add the 95% prediction interval (the served one, see GET /models)")


class PredictResponse(BaseModel):
    dates: list[date]
    forecast: list[float]
    confidence_lower: list[float] | None
    confidence_upper: list[float] | None
    confidence_lower_80: list[float] | None = Field(description="the served 80% interval (the dashboard draws both)")
    confidence_upper_80: list[float] | None
    model_used: str
    rmse: float
    mae: float
    last_updated: str


class Problem(BaseModel):
    detail: str


class Prediction(BaseModel):
    prediction_id: str
    source: Literal["api", "scheduled", "webapp"]
    series_id: str
    issued_at: str = Field(description="UTC, ISO 8601")
    model: str
    model_version: str = Field(description="the artifact's created_utc")
    fitted_until: date = Field(description="the last day of data the model was fitted on")
    target_date: date
    horizon_step: int = Field(description="days from fitted_until to target_date")
    forecast: float
    lower_80: float | None
    upper_80: float | None
    lower_95: float | None
    upper_95: float | None
    actual: float | None = Field(description="the day's mean of the series (daily_series.y_mean); null until a "
                                             "cycle has it")


class PredictionsResponse(BaseModel):
    snapshot_utc: str | None = Field(description="when a cycle last folded the log and joined the actual values")
    count: int
    predictions: list[Prediction]


class ORJSONBytes(Response):
    """A JSON response from orjson; ``content`` is any orjson-serialisable value."""

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


@dataclass(frozen=True)
class ServedModel:
    name: str
    first: date
    dates: list[str]
    mean: list[float]
    lower: list[float]
    upper: list[float]
    metrics: dict[str, float]
    members: list[str] | None
    intervals: dict[str, dict[str, Any]]  # by level: nominal and achieved coverage, the calibration
    issued: ForecastPath  # what the forecast log records of a slice
    index: dict[str, int]  # position of each day (YYYY-MM-DD) in ``dates``


@dataclass(frozen=True)
class Forecasts:
    """The artifact, reshaped once for slicing."""

    path: Path
    models: dict[str, ServedModel]
    selected: str
    last_updated: str
    training_end: str
    series_id: str
    window: tuple[str, str]  # the days every model can forecast (the shortest path decides)
    frequency: str = ""
    version: int | None = None  # the registry version; None for a file
    lineage: dict[str, str] = field(default_factory=dict)  # the version's tags, or the artifact's own
    origin: str = ""  # what is served, as a user names it: the file, or models:/<name>/<version>
    #: serialised answers by (model, first index, end index, include_confidence), least recently
    #: used first; the artifact does not change while loaded, and a new load starts an empty one
    answers: dict[tuple[str, int, int, bool], bytes] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def load(cls, path: str | Path, version: int | None = None, lineage: dict[str, str] | None = None,
             origin: str | None = None) -> "Forecasts":
        """Read and reshape the artifact at ``path``; ``version``, ``lineage`` (default: the
        artifact's :data:`~helpers.app.model_source.ARTIFACT_LINEAGE`) and ``origin`` (default:
        ``path``) are what the service reports about it."""
        payload = load_artifact(path)
        models = {}
        fitted_until = datetime.fromisoformat(payload["training_end"]).date()
        for name, model in payload["models"].items():
            path_ = model["forecast"]
            days = [datetime.fromisoformat(ds).date() for ds in path_["ds"]]
            if any(b - a != timedelta(days=1) for a, b in zip(days, days[1:])):
                raise ArtifactError(f"{path}: model {name!r} forecast is not one row per consecutive day; "
                                    "rebuild the artifact with `make run`.")
            dates, mean = [d.isoformat() for d in days], list(path_["mean"])
            lower, upper = list(path_[INTERVAL[0]]), list(path_[INTERVAL[1]])
            issued = ForecastPath(
                series_id=payload["series_id"], model=name, model_version=payload["created_utc"],
                fitted_until=fitted_until.isoformat(), target_date=dates,
                horizon_step=[(d - fitted_until).days for d in days], forecast=mean,
                lower_80=list(path_["lo-80"]), upper_80=list(path_["hi-80"]), lower_95=lower, upper_95=upper)
            models[name] = ServedModel(
                name=name, first=days[0], dates=dates, mean=mean, lower=lower, upper=upper,
                metrics={k: float(v) for k, v in model["cv"].items()}, members=model.get("members"),
                intervals=_intervals(model), issued=issued, index={d: k for k, d in enumerate(dates)})
        window = (max(m.dates[0] for m in models.values()), min(m.dates[-1] for m in models.values()))
        if lineage is None:
            lineage = {key: str(payload[key]) for key in ARTIFACT_LINEAGE}
        return cls(path=Path(path), models=models, selected=payload["selected_model"],
                   last_updated=payload["created_utc"], training_end=payload["training_end"],
                   series_id=payload["series_id"], window=window, frequency=str(payload["frequency"]),
                   version=version, lineage=lineage, origin=str(path) if origin is None else origin)

    def answer(self, served: ServedModel, i: int, j: int, include_confidence: bool) -> bytes:
        """The JSON body of ``POST /predict`` for days ``i`` to ``j - 1`` of ``served`` (a checked
        request), serialised once and kept among the :data:`ANSWER_CACHE` most recently used."""
        key = (served.name, i, j, include_confidence)
        answers = self.answers
        body = answers.pop(key, None)
        if body is None:
            body = orjson.dumps({
                "dates": served.dates[i:j], "forecast": served.mean[i:j],
                "confidence_lower": served.lower[i:j] if include_confidence else None,
                "confidence_upper": served.upper[i:j] if include_confidence else None,
                "confidence_lower_80": served.issued.lower_80[i:j] if include_confidence else None,
                "confidence_upper_80": served.issued.upper_80[i:j] if include_confidence else None,
                "model_used": served.name, "rmse": served.metrics["rmse"], "mae": served.metrics["mae"],
                "last_updated": self.last_updated,
            })
            if len(answers) >= ANSWER_CACHE:
                del answers[next(iter(answers))]  # the least recently used
        answers[key] = body  # (re)inserted last: the most recently used
        return body


def _intervals(model: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Per level: the nominal coverage, the coverage achieved on the evaluation folds by the
    served interval, by the conformal one and by the model's own, and the calibration served."""
    cv, calibration = model["cv"], model["calibration"]
    return {lv: {"nominal": int(lv) / 100, "achieved": float(cv[f"coverage_{lv}"]),
                 "calibrated": float(cv[f"calibrated_coverage_{lv}"]),
                 "uncalibrated": float(cv[f"raw_coverage_{lv}"]),
                 "method": calibration[lv]["method"], "factor": float(calibration[lv]["factor"])}
            for lv in LEVELS}


def default_artifact() -> Path:
    """``HELPERS_ARTIFACT`` if set, else the last build's ``<products>/model/forecast_artifact.json``
    (the benchmarks serve it; without ``--artifact`` the service serves the registry's champion)."""
    if os.environ.get(ARTIFACT_ENV):
        return Path(os.environ[ARTIFACT_ENV])
    from helpers.core.settings import load_settings

    return load_settings().products / "model" / "forecast_artifact.json"


def _log_stats(api: ForecastLogWriter | None, webapp: ForecastLogWriter | None) -> dict[str, Any] | None:
    """``GET /health``'s forecast log: rows written, dropped and pending summed over the writers
    of both request sources, the latest error, and each writer's own counts (``by_source``)."""
    if api is None or webapp is None:
        return None
    by_source = {"api": api.stats(), "webapp": webapp.stats()}
    errors = [s["last_error"] for s in by_source.values() if s["last_error"]]
    return {"dir": str(api.log_dir), **{key: sum(s[key] for s in by_source.values())
                                        for key in ("written_rows", "dropped_rows", "pending_forecasts")},
            "last_error": errors[-1] if errors else None, "by_source": by_source}


def _problem(message: str) -> ORJSONBytes:
    return ORJSONBytes({"detail": message}, status_code=422)


#: Query parameters of GET /predictions.
PREDICTIONS_QUERY = ("start_date", "end_date", "source")


def _describe(errors: list[dict[str, Any]]) -> str:
    """Pydantic's errors as one sentence per field, with what the field accepts."""
    allowed = {
        "start_date": "an ISO 8601 day such as 2015-01-01",
        "end_date": "an ISO 8601 day such as 2015-01-14",
        "model": "a model name from GET /models (or leave it out for the selected model)",
        "include_confidence": "true or false",
    }
    accepts = {**allowed, "source": f"one of {', '.join(SOURCES)}, all",
               SOURCE_HEADER.decode(): f"one of {', '.join(REQUEST_SOURCES)} (the header X-Request-Source; "
                                       "leave it out for api)"}
    parts = []
    for error in errors:
        loc = [str(x) for x in error.get("loc", ()) if x not in ("body", "query", "header")]
        field = loc[0] if loc else "body"
        if error.get("type") == "extra_forbidden":
            parts.append(f"unknown field {field!r}; allowed fields: {', '.join(allowed)}")
        elif field in accepts:
            parts.append(f"{field}: {error.get('msg', 'invalid')}; expected {accepts[field]}")
        else:
            parts.append(f"request body: {error.get('msg', 'invalid')}; expected a JSON object with "
                         f"start_date and end_date (optional: model, include_confidence)")
    return "; ".join(parts)


class _BodyTooLarge(Exception):
    """Raised into the app by :class:`BodyLimit`'s ``receive`` when a body passes the limit."""


class BodyLimit:
    """ASGI middleware: a request body larger than ``max_bytes`` gets 413 before it is read.

    A declared ``Content-Length`` above the limit is refused before a byte of the body is
    read; a body without one (chunked) is counted as it arrives and refused at the first
    chunk past the limit, so the server never holds more than the limit plus one chunk. The
    413 closes the connection, so the rest of a large upload is not read either.
    """

    def __init__(self, app: Any, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length", b"")
        if declared.isdigit() and int(declared) > self.max_bytes:
            await self.refuse(send, int(declared))
            return
        state = {"received": 0, "too_large": False, "started": False}

        async def counting_receive() -> dict[str, Any]:
            message = await receive()
            if message["type"] == "http.request":
                state["received"] += len(message.get("body", b""))
                if state["received"] > self.max_bytes:
                    state["too_large"] = True
                    raise _BodyTooLarge
            return message

        async def guarded_send(message: dict[str, Any]) -> None:
            if state["too_large"]:  # whatever the app answers to the cut body, the client gets the 413
                return
            state["started"] |= message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counting_receive, guarded_send)
        except _BodyTooLarge:
            pass
        if state["too_large"] and not state["started"]:
            await self.refuse(send, None)

    async def refuse(self, send: Any, declared: int | None) -> None:
        size = f"{declared} bytes" if declared is not None else "more than that (counted as it arrived)"
        body = orjson.dumps({"detail": f"request body too large: the limit is {self.max_bytes} bytes "
                                       f"(max_request_bytes), this one is {size}; POST /predict takes a JSON object "
                                       "of a few hundred bytes"})
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                                (b"connection", b"close")]})
        await send({"type": "http.response.body", "body": body})


#: The fields of a /predict body (:class:`PredictRequest`).
PREDICT_FIELDS = frozenset(PredictRequest.model_fields)
MODEL_MAX_LENGTH = 100  # PredictRequest.model's max_length


class ForecastService(FastAPI):
    """The app: FastAPI, with the usual ``POST /predict`` answered before FastAPI's own stack.

    A request with ``Content-Type: application/json``, a declared ``Content-Length`` within
    ``max_request_bytes`` and a body that is a JSON object of the request's fields, each right
    (two days of the forecastable window as ``YYYY-MM-DD``, in order; a known model or none;
    ``include_confidence`` a boolean), is answered by :meth:`predict_directly`: its answer
    comes from :meth:`Forecasts.answer` and it is queued for the forecast log, as the route
    does. Everything else, an error of any kind included, goes through FastAPI (the body
    read so far is handed on), so every 413 and 422 is still written by :class:`BodyLimit`,
    the pydantic model and the route, with the same words.

    FastAPI's stack (its telemetry check, the middleware, routing, the dependency solver,
    pydantic, a Response object) was most of the request's time in the process: the bench's
    in-process call took 263 us through it and 64 us this way, of which about 32 us is the
    bench's own event-loop round trip. The direct path is off when FastAPI's OpenTelemetry
    instrumentation is configured when the service starts, so traced services keep their
    spans.
    """

    max_request_bytes: int = 64 << 10
    direct: bool = True  # the lifespan turns it off where FastAPI's telemetry is on
    metrics: ServiceMetrics | None = None  # create_app's, unless metrics are off

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        started = perf_counter()
        metrics = self.metrics if scope["type"] == "http" else None  # both paths count (the direct one by hand)
        if self.direct and scope["type"] == "http" and scope["path"] == "/predict" and scope["method"] == "POST":
            receive = await self.predict_directly(scope, receive, send)
            if receive is None:
                if metrics is not None:
                    metrics.answered(started)
                return
        if metrics is None:
            await super().__call__(scope, receive, send)
        else:
            await metrics.count(super().__call__, scope, receive, send, started)

    async def predict_directly(self, scope: dict[str, Any], receive: Any, send: Any) -> Any:
        """Answer the request if it is an ordinary one (see the class); otherwise return the
        ``receive`` FastAPI should read it with (the messages read here first)."""
        length = content_type = source = None
        for name, value in scope["headers"]:
            if name == b"content-length":
                if length is not None:
                    return receive
                length = value
            elif name == b"content-type":
                if content_type is not None:
                    return receive
                content_type = value
            elif name == b"transfer-encoding":
                return receive
            elif name == SOURCE_HEADER:
                if source is not None or value not in _REQUEST_SOURCES:
                    return receive  # FastAPI's path answers it (422 for a value not allowed)
                source = value
        if content_type != b"application/json" or length is None or not 0 < len(length) < 10 \
                or not length.isdigit() or int(length) > self.max_request_bytes:
            return receive
        messages, chunks = [], []
        while True:
            message = await receive()
            messages.append(message)
            if message["type"] != "http.request":
                return _replay(messages, receive)
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        try:
            checked = self.check(b"".join(chunks))
        except Exception:  # noqa: BLE001 - whatever it is, FastAPI's path answers it as before
            checked = None
        if checked is None:
            return _replay(messages, receive)
        body, issued, i, j = checked
        log: ForecastLogWriter | None = self.state.log if source is None or source == b"api" else self.state.webapp_log
        if log is not None:
            log.record(issued, i, j)  # queued only: written by the flusher
        if self.metrics is not None:
            self.metrics.served(issued.model, j - i)
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-length", b"%d" % len(body)), (b"content-type", b"application/json")]})
        await send({"type": "http.response.body", "body": body})
        return None

    def check(self, raw: bytes) -> tuple[bytes, ForecastPath, int, int] | None:
        """For a body the route would answer with 200: the answer and the slice to log; else ``None``."""
        if len(raw) > self.max_request_bytes:
            return None
        request = orjson.loads(raw)
        if type(request) is not dict or not request.keys() <= PREDICT_FIELDS:
            return None
        start, end = request.get("start_date"), request.get("end_date")
        model, include = request.get("model"), request.get("include_confidence", True)
        if type(start) is not str or type(end) is not str or type(include) is not bool:
            return None
        f: Forecasts = self.state.forecasts
        if model is None:
            served = f.models[f.selected]
        elif type(model) is str and len(model) <= MODEL_MAX_LENGTH:
            served = f.models.get(model)
            if served is None:
                return None
        else:
            return None
        # a day of the model's path is a valid YYYY-MM-DD, parsed by pydantic to that same day
        i, j = served.index.get(start), served.index.get(end)
        if i is None or j is None or i > j or start < f.window[0] or end > f.window[1]:
            return None
        return f.answer(served, i, j + 1, include), served.issued, i, j + 1


def _replay(messages: list[dict[str, Any]], receive: Any) -> Any:
    """A ``receive`` that returns ``messages`` first, then what ``receive`` returns."""
    pending = list(reversed(messages))

    async def replay() -> dict[str, Any]:
        return pending.pop() if pending else await receive()

    return replay


def create_app(artifact: str | Path | None = None, max_request_bytes: int | None = None,
               forecast_log_dir: str | Path | None = None, flush_seconds: float | None = None,
               log_forecasts: bool = True, freeze_gc: bool = False, poll_seconds: float | None = None,
               follower: ModelFollower | None = None, metrics: bool = True) -> FastAPI:
    """The app; what it serves is loaded when it starts: ``artifact``, else ``HELPERS_ARTIFACT``,
    else the registry's champion (:func:`helpers.app.model_source.source_for`), or what the
    ``follower`` already loaded (:func:`main`). It checks that source again every
    ``poll_seconds`` (default: the setting ``registry_poll_seconds``), and at once on SIGHUP
    when it runs in the main thread.

    Request bodies above ``max_request_bytes`` (default: the setting) get 413 (:class:`BodyLimit`).
    Served forecasts are logged to ``forecast_log_dir`` every ``flush_seconds`` (default: the
    settings ``forecast_log_dir`` and ``forecast_log_flush_seconds``) unless ``log_forecasts``
    is false; ``GET /predictions`` reads that folder either way. ``metrics`` counts requests and
    serves ``GET /metrics``, with the monitoring signals the cycles write to that folder.

    ``freeze_gc`` (the service's own process, :func:`main`): once the artifact is loaded, the
    objects that exist then (modules, the app, the artifact's lists) are moved out of the
    garbage collector's reach (``gc.freeze``), so a full collection walks only what requests
    left behind: in this process one took 55-67 ms before (the event loop stopped for that
    long) and under 3 ms after. Not in tests or an embedding process, whose objects it would
    keep for good.
    """
    if max_request_bytes is None or forecast_log_dir is None or flush_seconds is None or poll_seconds is None:
        # these settings only: the others' checks import pandas (100 MB)
        from helpers.core.settings import forecast_log_settings, raw_settings, request_limit
        from helpers.core.settings import poll_seconds as poll_setting

        raw = raw_settings()
        max_request_bytes = request_limit(raw) if max_request_bytes is None else max_request_bytes
        default_dir, default_flush = forecast_log_settings(raw)
        forecast_log_dir = default_dir if forecast_log_dir is None else forecast_log_dir
        flush_seconds = default_flush if flush_seconds is None else flush_seconds
        poll_seconds = poll_setting(raw) if poll_seconds is None else poll_seconds

    @asynccontextmanager
    async def lifespan(app: ForecastService):
        source = follower or ModelFollower(source_for(artifact), Forecasts.load, poll_seconds)
        app.state.model_source = source
        app.state.forecasts = source.served if source.served is not None else source.start()
        app.state.predictions = PredictionReader(forecast_log_dir)
        app.state.log = ForecastLogWriter(forecast_log_dir, flush_seconds) if log_forecasts else None
        app.state.webapp_log = (ForecastLogWriter(forecast_log_dir, flush_seconds, source="webapp")
                                if log_forecasts else None)
        telemetry = getattr(app, "_native_telemetry", None)  # FastAPI's OpenTelemetry bridge
        app.direct = telemetry is None or not telemetry.enabled()  # see ForecastService
        if freeze_gc:
            gc.collect()
            gc.freeze()

        def swap(new: Forecasts) -> None:
            app.state.forecasts = new  # one assignment: a request reads the old object or the new one

        loop = asyncio.get_running_loop()
        sighup = threading.current_thread() is threading.main_thread()  # signals reach the main thread only
        if sighup:
            loop.add_signal_handler(signal.SIGHUP, source.wake)
        tasks = [asyncio.create_task(source.run(swap))]
        for log in (app.state.log, app.state.webapp_log):
            if log is not None:
                tasks.append(asyncio.create_task(log.run()))
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            if sighup:
                loop.remove_signal_handler(signal.SIGHUP)
            source.close()
            for log in (app.state.log, app.state.webapp_log):
                if log is not None:
                    log.close()  # what is left, and the file closed for the fold (a no-op if the flusher did it)

    app = ForecastService(title="Demand forecast", version="1", lifespan=lifespan,
                          description="Daily electricity demand forecasts from the model-comparison artifact.")
    app.max_request_bytes = max_request_bytes
    app.add_middleware(BodyLimit, max_bytes=max_request_bytes)
    if metrics:
        app.metrics = ServiceMetrics(lambda: getattr(app.state, "forecasts", None),
                                     Path(forecast_log_dir) / SIGNALS_NAME)

        @app.get("/metrics", include_in_schema=False)
        async def prometheus_metrics(request: Request) -> Response:
            """Prometheus metrics in the text format 0.0.4 (:mod:`helpers.app.metrics`)."""
            return Response(request.app.metrics.exposition(), media_type=CONTENT_TYPE)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> ORJSONBytes:
        return _problem(_describe(list(exc.errors())))

    @app.get("/health", response_class=ORJSONBytes)
    async def health(request: Request) -> ORJSONBytes:
        """Liveness, which artifact (registry version) is being served, what the service follows
        (mode, last check, last refusal), and the forecast log's counts (null when off): rows
        written, rows dropped because they could not be written, and the last error."""
        f: Forecasts = request.app.state.forecasts
        return ORJSONBytes({"status": "ok", "artifact": f.origin, "series_id": f.series_id,
                            "selected_model": f.selected, "last_updated": f.last_updated, "served_version": f.version,
                            "model_source": request.app.state.model_source.status(),
                            "forecast_log": _log_stats(request.app.state.log, request.app.state.webapp_log)})

    @app.get("/models", response_class=ORJSONBytes)
    async def models(request: Request) -> ORJSONBytes:
        """Every served model with its cross-validated metrics and interval coverage, the days
        that can be forecast, the served version with its lineage, and the registry's challenger
        (its version, lineage and pooled CV metrics; null when there is none or no registry)."""
        f: Forecasts = request.app.state.forecasts
        first, last = f.window
        return ORJSONBytes({
            "served": {"version": f.version, "artifact": f.origin, "lineage": f.lineage},
            "challenger": request.app.state.model_source.challenger,
            "selected_model": f.selected,
            "forecastable": {"start_date": first, "end_date": last},
            "training_end": f.training_end,
            "last_updated": f.last_updated,
            "models": [{"name": m.name, "selected": m.name == f.selected, "members": m.members, **m.metrics,
                        "intervals": m.intervals} for m in f.models.values()],
        })

    @app.post("/predict", response_class=ORJSONBytes, response_model=PredictResponse,
              responses={422: {"model": Problem, "description": "the request cannot be served; detail says why"}})
    async def predict(body: PredictRequest, request: Request,
                      x_request_source: Literal["api", "webapp"] = Header(
                          "api", description="who asks: webapp for the dashboard; logged as the forecast's source"),
                      ) -> ORJSONBytes:
        """The forecast for ``start_date`` to ``end_date`` (inclusive) from one model."""
        f: Forecasts = request.app.state.forecasts
        name = f.selected if body.model is None else body.model
        served = f.models.get(name)
        if served is None:
            return _problem(f"unknown model {name!r}; allowed: {', '.join(sorted(f.models))}")
        if body.start_date > body.end_date:
            return _problem(f"start_date {body.start_date} is after end_date {body.end_date}")
        first, last = f.window
        i = (body.start_date - served.first).days
        j = (body.end_date - served.first).days + 1
        if body.start_date.isoformat() < first or body.end_date.isoformat() > last:
            return _problem(f"the range {body.start_date}..{body.end_date} is outside the forecastable window "
                            f"{first}..{last}")
        log = request.app.state.log if x_request_source == "api" else request.app.state.webapp_log
        if log is not None:
            log.record(served.issued, i, j)  # queued only: written by the flusher
        if request.app.metrics is not None:
            request.app.metrics.served(served.name, j - i)
        return Response(f.answer(served, i, j, body.include_confidence), media_type="application/json")

    @app.get("/predictions", response_class=ORJSONBytes, response_model=PredictionsResponse,
             responses={422: {"model": Problem, "description": "the request cannot be served; detail says why"}})
    async def predictions(
        request: Request,
        start_date: date | None = Query(None, description="first target day, ISO 8601 (omitted: no lower bound)"),
        end_date: date | None = Query(None, description="last target day, inclusive (omitted: no upper bound)"),
        source: Literal["api", "scheduled", "webapp", "all"] = Query("all", description="who issued the forecasts"),
    ) -> ORJSONBytes:
        """Past predictions for target days from ``start_date`` to ``end_date``, with the actual
        value where known (as of the last cycle), by target day then issue time."""
        unknown = sorted(set(request.query_params) - set(PREDICTIONS_QUERY))
        if unknown:
            return _problem(f"unknown query parameter {unknown[0]!r}; allowed: {', '.join(PREDICTIONS_QUERY)}")
        if start_date and end_date and start_date > end_date:
            return _problem(f"start_date {start_date} is after end_date {end_date}")
        for log in (request.app.state.log, request.app.state.webapp_log):
            if log is not None:
                log.flush()  # what this service served until now is in its files
        reader: PredictionReader = request.app.state.predictions
        # file reads and parsing: in a thread, so a large log does not hold up /predict
        return ORJSONBytes(await asyncio.to_thread(reader.select, start_date, end_date, source))

    return app


class OneWrite:
    """A transport that writes what it is given in one iteration of the event loop as one write.

    uvicorn writes a response's status line and headers, then its body, each with its own
    ``write``, and uvloop sends each at once: two ``write`` system calls and two TCP segments
    per response, which took about half of the server's system time under load. This
    transport keeps the first write of an iteration and schedules the flush with
    ``call_soon``; the writes that follow in that iteration join it, so the head and body of a
    response leave together, and nothing waits longer than that iteration. ``close`` and
    ``write_eof`` flush first; the rest of the transport is the one wrapped.
    """

    __slots__ = ("transport", "loop", "pending")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self.transport, self.loop, self.pending = transport, loop, None

    def write(self, data: bytes) -> None:
        if self.pending is None:
            self.pending = [data]
            self.loop.call_soon(self.flush)
        else:
            self.pending.append(data)

    def writelines(self, lines: list[bytes]) -> None:
        self.write(b"".join(lines))

    def flush(self) -> None:
        pending, self.pending = self.pending, None
        if pending and not self.transport.is_closing():  # a peer gone meanwhile: nothing to send to
            self.transport.write(pending[0] if len(pending) == 1 else b"".join(pending))

    def get_write_buffer_size(self) -> int:
        return self.transport.get_write_buffer_size() + sum(map(len, self.pending or ()))

    def write_eof(self) -> None:
        self.flush()
        self.transport.write_eof()

    def close(self) -> None:
        self.flush()
        self.transport.close()

    def abort(self) -> None:
        self.pending = None
        self.transport.abort()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.transport, name)


def http_protocol() -> type:
    """uvicorn's httptools protocol, writing each response through :class:`OneWrite`."""
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

    class OneWriteHttpTools(HttpToolsProtocol):
        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)  # flow control and addresses: the socket's own transport
            self.transport = OneWrite(transport, self.loop)  # type: ignore[assignment]

    return OneWriteHttpTools


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m helpers.app.service",
                                     description="Serve the registry's champion (or an artifact file), following it.")
    parser.add_argument("--artifact", type=Path, help=f"serve this artifact file, reloaded when it is replaced "
                        f"(default: ${ARTIFACT_ENV}, else the model registry's champion)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--no-forecast-log", action="store_true",
                        help="do not log served forecasts (to measure what logging costs)")
    parser.add_argument("--no-metrics", action="store_true",
                        help="do not count requests nor serve GET /metrics (to measure what metrics cost)")
    args = parser.parse_args(argv)
    from helpers.core.settings import poll_seconds, raw_settings

    try:  # refuse to start, with the reason, before binding the port
        follower = ModelFollower(source_for(args.artifact), Forecasts.load, poll_seconds(raw_settings()))
        follower.start()
    except (ArtifactError, ValueError) as exc:  # ValueError: a setting (ConfigError) or the registry's refusal
        print(f"error: cannot serve forecasts: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:  # noqa: BLE001 - the registry's client raises its own kinds when its store is down
        print(f"error: cannot serve forecasts: the model registry cannot be read ({type(exc).__name__}: {exc}); "
              "try again when it is back, or serve a file with --artifact FILE", file=sys.stderr)
        return 3
    import uvicorn

    app = create_app(log_forecasts=not args.no_forecast_log, freeze_gc=True, follower=follower,
                     metrics=not args.no_metrics)
    uvicorn.run(app, host=args.host, port=args.port, loop="uvloop", http=http_protocol(), log_level="warning",
                access_log=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
