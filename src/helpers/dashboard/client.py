"""The dashboard's client of the forecast service (``make serve``): HTTP with a timeout, and a
sentence saying what to do for every way a request can fail.

The dashboard never imports the service: it asks it over HTTP at ``dashboard_service_url``,
each request bounded by ``dashboard_timeout_seconds``. Its ``POST /predict`` requests carry
``X-Request-Source: webapp``, so the service logs them as source ``webapp``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

import httpx

from helpers.core.settings import Settings, where

#: The header and value the service logs the dashboard's forecasts under (helpers.app.service).
SOURCE_HEADERS = {"X-Request-Source": "webapp"}
#: The sources GET /predictions filters by.
PREDICTION_SOURCES = ("webapp", "scheduled", "api", "all")


class DashboardError(RuntimeError):
    """Something a page cannot show; the message says why and what to do (shown as it is)."""


class ServiceError(DashboardError):
    """The forecast service did not answer, or refused the request."""


@dataclass(frozen=True)
class ServiceClient:
    """The forecast service at ``base_url`` (no trailing ``/``), each request within ``timeout`` seconds."""

    base_url: str
    timeout: float = 5.0

    @classmethod
    def from_settings(cls, settings: Settings) -> ServiceClient:
        return cls(settings.dashboard_service_url, settings.dashboard_timeout_seconds)

    def _request(self, method: str, path: str, **kwargs: Any) -> Any:
        url = f"{self.base_url}{path}"
        try:
            response = httpx.request(method, url, timeout=self.timeout, **kwargs)
        except httpx.ConnectError:
            raise ServiceError(
                f"The forecast service at {self.base_url} is not running (nothing answers there). Start it with "
                f"`make serve`, or point the dashboard at it: {where('dashboard_service_url')}.") from None
        except httpx.TimeoutException:
            raise ServiceError(
                f"The forecast service at {self.base_url} did not answer {method} {path} within "
                f"dashboard_timeout_seconds={self.timeout:g} s. Check that it is running (`make serve`) and not "
                f"overloaded, or allow it longer: {where('dashboard_timeout_seconds')}.") from None
        except (httpx.HTTPError, httpx.InvalidURL) as exc:
            raise ServiceError(f"The request to the forecast service at {url} failed ({type(exc).__name__}: {exc}); "
                               f"check dashboard_service_url ({where('dashboard_service_url')}).") from None
        if response.status_code in (413, 422):
            raise ServiceError(f"The forecast service refused the request: {_detail(response)}")
        if response.status_code != 200:
            raise ServiceError(f"The forecast service answered {method} {path} with HTTP {response.status_code} "
                               f"({_detail(response)}); look at the service's output (`make serve`).")
        try:
            return response.json()
        except ValueError:
            raise ServiceError(f"The forecast service answered {method} {path} with something that is not JSON; "
                               f"is {self.base_url} the forecast service (`make serve`)?") from None

    def health(self) -> dict[str, Any]:
        """``GET /health``: what is served and the forecast log's counts."""
        return self._request("GET", "/health")

    def models(self) -> dict[str, Any]:
        """``GET /models``: the models, the forecastable days, the served version and the challenger."""
        return self._request("GET", "/models")

    def predict(self, start: date, end: date, model: str | None = None) -> dict[str, Any]:
        """``POST /predict`` for ``start`` to ``end`` (inclusive), logged by the service as source webapp."""
        body: dict[str, Any] = {"start_date": start.isoformat(), "end_date": end.isoformat()}
        if model:
            body["model"] = model
        return self._request("POST", "/predict", json=body, headers=SOURCE_HEADERS)

    def predictions(self, start: date | None = None, end: date | None = None, source: str = "all") -> dict[str, Any]:
        """``GET /predictions``: the forecasts issued for target days ``start`` to ``end`` by ``source``."""
        if source not in PREDICTION_SOURCES:
            raise ValueError(f"source must be one of {', '.join(PREDICTION_SOURCES)}, got {source!r}")
        params = {"source": source}
        if start is not None:
            params["start_date"] = start.isoformat()
        if end is not None:
            params["end_date"] = end.isoformat()
        return self._request("GET", "/predictions", params=params)


def _detail(response: httpx.Response) -> str:
    """The service's ``detail`` sentence, or the start of the body."""
    try:
        detail = response.json().get("detail")
    except (ValueError, AttributeError):
        detail = None
    return str(detail) if detail else (response.text[:200] or "no detail given")
