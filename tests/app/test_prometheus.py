"""The alerting rules under ``promtool``, and a real Prometheus scraping the running service.

Debian's ``prometheus`` package provides both binaries (``make tools`` installs it); the tests
that run them are skipped, saying so, when they are missing.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import pytest
import yaml
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from helpers.app import service
from helpers.forecast import artifact
from helpers.operate.monitoring import Signal
from helpers.operate.signal_snapshot import SIGNALS_NAME, write_signal_snapshot
from tests.servers import free_port
from tests.support import artifact_payload, stop_process

ROOT = Path(__file__).resolve().parents[2]
OPS = ROOT / "ops" / "prometheus"
DASHBOARD = ROOT / "ops" / "grafana" / "forecast-service.json"
PAYLOAD = artifact_payload(n=30, models=("ets", "holt_winters", "ensemble"))
ORDINARY = b'{"start_date": "2015-01-01", "end_date": "2015-01-14", "model": "ensemble", "include_confidence": true}'
T = TypeVar("T")


def binary(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.skip(f"`{name}` is not installed; `make tools` installs it (Debian package prometheus)")
    return path


def every_signal() -> list[Signal]:
    """One judged signal of each kind; the rolling error of ets is red."""
    return [Signal("accuracy:ets", "red", 2.0, "", ""), Signal("coverage_80:ets", "green", 0.81, "", ""),
            Signal("coverage_95:ets", "green", 0.94, "", ""), Signal("drift:y_mean", "green", 0.05, "", ""),
            Signal("data_quality:invalid_share", "green", 0.001, "", ""),
            Signal("data_quality:criticality", "green", 0.0, "", "")]


def write_signals(log_dir: Path) -> Path:
    return write_signal_snapshot(log_dir / SIGNALS_NAME, every_signal(), series_id="s", as_of=datetime.now(),
                                 last_actual=date.today() - timedelta(days=1), drift_ks_pvalues={"y_mean": 0.6})


@pytest.fixture(scope="module")
def artifact_file(tmp_path_factory) -> Path:
    return artifact.write_artifact(tmp_path_factory.mktemp("model") / "forecast_artifact.json", PAYLOAD)


def test_the_rules_pass_their_unit_tests():
    done = subprocess.run([binary("promtool"), "test", "rules", str(OPS / "rules.test.yml")], capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS" in done.stdout


def test_the_rules_and_the_example_configuration_pass_promtool_checks():
    promtool = binary("promtool")
    rules = subprocess.run([promtool, "check", "rules", str(OPS / "rules.yml")], capture_output=True, text=True,
                           timeout=60)
    assert rules.returncode == 0 and "SUCCESS: 13 rules found" in rules.stdout, rules.stdout + rules.stderr
    config = subprocess.run([promtool, "check", "config", str(OPS / "prometheus.yml")], capture_output=True,
                            text=True, timeout=60)
    assert config.returncode == 0, config.stdout + config.stderr


def _metric_names(text: str) -> set[str]:
    return set(re.findall(r"\b(?:forecast|http)_[a-z0-9_]+", text))


def test_the_rules_and_the_dashboard_query_only_metrics_the_service_exposes(artifact_file, tmp_path):
    """promtool's tests feed the rules series of their own: a name misspelt in both would pass there."""
    write_signals(tmp_path / "log")
    with TestClient(service.create_app(artifact_file, forecast_log_dir=tmp_path / "log")) as client:
        client.post("/predict", content=ORDINARY, headers={"content-type": "application/json"})
        exposed = {sample.name for family in text_string_to_metric_families(client.get("/metrics").text)
                   for sample in family.samples}
    rules = yaml.safe_load((OPS / "rules.yml").read_text())
    in_rules = _metric_names(" ".join(rule["expr"] for group in rules["groups"] for rule in group["rules"]))
    dashboard = json.loads(DASHBOARD.read_text())
    in_dashboard = _metric_names(" ".join(target["expr"] for panel in dashboard["panels"]
                                          for target in panel.get("targets", ())))
    assert len(in_rules) >= 10 and len(in_dashboard) >= 10
    assert in_rules - exposed == set()
    assert in_dashboard - exposed == set()


# -- a real Prometheus --------------------------------------------------------------------------
def wait_for(what: str, probe: Callable[[], T | None], seconds: float) -> T:
    """``probe()``'s first result that is not None, asked every 50 ms for at most ``seconds``."""
    deadline = time.monotonic() + seconds
    while True:
        result = probe()
        if result is not None:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {seconds} s")
        time.sleep(0.05)


def get(url: str) -> Any:
    """The JSON at ``url``; None while nothing answers there."""
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return json.loads(response.read())
    except OSError:
        return None


@pytest.fixture
def prometheus(tmp_path) -> Iterator[tuple[str, int]]:
    """Prometheus on a free loopback port, scraping the job forecast-service on another every
    250 ms with ops/prometheus/rules.yml loaded: its URL and the port it scrapes."""
    executable = binary("prometheus")
    port, target = free_port(), free_port()
    config = tmp_path / "prometheus.yml"
    config.write_text(yaml.safe_dump({
        "global": {"scrape_interval": "250ms", "scrape_timeout": "200ms", "evaluation_interval": "250ms"},
        "rule_files": [str(OPS / "rules.yml")],
        "scrape_configs": [{"job_name": "forecast-service", "static_configs": [{"targets": [f"127.0.0.1:{target}"]}]}],
    }))
    log = (tmp_path / "prometheus.log").open("w")
    process = subprocess.Popen([executable, f"--config.file={config}", f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                                f"--web.listen-address=127.0.0.1:{port}", "--log.level=warn"],
                               stdout=log, stderr=subprocess.STDOUT)
    try:
        yield f"http://127.0.0.1:{port}", target
    finally:
        stop_process(process)
        log.close()


def query(url: str, promql: str) -> list[dict[str, Any]]:
    answer = get(f"{url}/api/v1/query?{urllib.parse.urlencode({'query': promql})}")
    assert answer is not None and answer["status"] == "success", answer
    return answer["data"]["result"]


def test_a_real_prometheus_scrapes_the_service_and_answers_through_its_query_api(prometheus, artifact_file,
                                                                                  tmp_path):
    url, port = prometheus  # started first: it syncs its targets only every 5 s, so the service starts meanwhile
    write_signals(tmp_path / "log")
    served = subprocess.Popen([sys.executable, "-m", "helpers.app.service", "--artifact", str(artifact_file),
                               "--port", str(port)],
                              env={**os.environ, "HELPERS_FORECAST_LOG_DIR": str(tmp_path / "log")})
    try:
        wait_for("the service's /health", lambda: get(f"http://127.0.0.1:{port}/health"), 30)
        for body in (ORDINARY, ORDINARY, ORDINARY, b'{"start_date": "2015-01-03", "end_date": "2015-01-02"}'):
            request = urllib.request.Request(f"http://127.0.0.1:{port}/predict", data=body,
                                             headers={"Content-Type": "application/json"})
            try:
                urllib.request.urlopen(request, timeout=5).read()
            except urllib.error.HTTPError as error:
                assert error.code == 422

        def served_three() -> list | None:
            result = query(url, 'forecast_predictions_total{job="forecast-service"}')
            return result if result and result[0]["value"][1] == "3" else None

        predictions = wait_for("3 predictions in Prometheus", served_three, 20)
        assert [p["metric"]["model"] for p in predictions] == ["ensemble"]
        assert query(url, 'up{job="forecast-service"}')[0]["value"][1] == "1"
        assert query(url, 'http_requests_total{route="/predict", status="422"}')[0]["value"][1] == "1"
        assert query(url, 'http_request_duration_seconds_count{route="/predict"}')[0]["value"][1] == "4"
        info = query(url, "forecast_model_info")[0]["metric"]
        assert (info["model"], info["version"], info["series_id"]) == ("ets", PAYLOAD["created_utc"], "s")
        assert query(url, 'forecast_rolling_error_ratio{model="ets"}')[0]["value"][1] == "2"

        # the rules evaluate on what was scraped: the red rolling error is pending (it fires after 5 minutes)
        def pending() -> list | None:
            alerts = get(f"{url}/api/v1/alerts")["data"]["alerts"]
            return [a for a in alerts if a["labels"]["alertname"] == "ForecastRollingErrorRed"] or None

        alert = wait_for("the rolling error alert", pending, 5)[0]
        assert alert["state"] == "pending" and alert["labels"]["model"] == "ets"
        rules = [rule for group in get(f"{url}/api/v1/rules")["data"]["groups"] for rule in group["rules"]]
        assert len(rules) == 13 and {rule["health"] for rule in rules} == {"ok"}, rules
        # and nothing else but the served model's age: the test artifact was fitted on data of 2014,
        # while the service is up, its signals were just written and its last actual is yesterday's
        alerts = {a["labels"]["alertname"]: a for a in get(f"{url}/api/v1/alerts")["data"]["alerts"]}
        assert set(alerts) == {"ForecastRollingErrorRed", "ForecastServedModelStale"}
        assert alerts["ForecastServedModelStale"]["labels"]["source"] == "artifact"
    finally:
        stop_process(served)
