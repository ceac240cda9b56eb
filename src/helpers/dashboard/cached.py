"""The pages' glue to Streamlit: the settings, reads kept for ``dashboard_cache_seconds``
(``st.cache_data``), and errors shown as a sentence on the page instead of a traceback."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import streamlit as st

from helpers.core.settings import ConfigError, Settings, load_settings
from helpers.dashboard import data
from helpers.dashboard.client import DashboardError, ServiceClient


@st.cache_resource(show_spinner=False)
def _settings(environment: tuple[tuple[str, str], ...]) -> Settings:
    return load_settings()


def settings() -> Settings:
    """The project settings (env.yaml, the profile and ``HELPERS_*``), read again when a variable changes."""
    return _settings(tuple(sorted((k, v) for k, v in os.environ.items() if k.startswith("HELPERS_"))))


def client() -> ServiceClient:
    return ServiceClient.from_settings(settings())


def _service_models(settings: Settings) -> dict[str, Any]:
    return ServiceClient.from_settings(settings).models()


#: The reads a page may keep for ``dashboard_cache_seconds``, by name.
READS: dict[str, Callable[..., Any]] = {
    "actuals": data.actuals, "monitoring": data.monitoring_view, "data_quality": data.data_quality_view,
    "retraining": data.retraining, "versions": data.registry_versions, "service_models": _service_models,
}


def _read(name: str, key: tuple[str, ...], _settings: Settings, args: tuple[Any, ...]) -> Any:
    return READS[name](_settings, *args)


def read(name: str, *args: Any) -> Any:
    """``READS[name](settings, *args)``, kept for ``dashboard_cache_seconds`` (0: read every time).
    An error is not kept: the next rerun tries again."""
    current = settings()
    if current.dashboard_cache_seconds == 0:
        return READS[name](current, *args)
    key = (str(current.warehouse_path), current.series_id, str(current.mlflow_dir), str(current.products),
           current.dashboard_service_url, current.registry_model)
    cached = st.cache_data(ttl=current.dashboard_cache_seconds, show_spinner=False)(_read)
    return cached(name, key, current, args)


@contextmanager
def shown_errors() -> Iterator[None]:
    """Inside: a :class:`DashboardError` or a bad setting ends the page with its sentence as
    ``st.error`` (never a traceback)."""
    try:
        yield
    except (DashboardError, ConfigError) as exc:
        st.error(str(exc))
        st.stop()
