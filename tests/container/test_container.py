"""The image builds, and its container serves the registry's champion as a non-root user
(issue 16; `make container-test`, which CI runs after `make cov`).

Slow (a build of the image, minutes the first time; podman's layer cache after), so not part of
`make test`: the module is skipped unless podman is on PATH and ``HELPERS_CONTAINER_TEST=1``
(the make target sets it). The base image is ``HELPERS_CONTAINER_BASE`` when given (e.g.
``python:3.11-slim`` where a registry is reachable), else the Debian image
``ops/container/base-image.sh`` makes from the apt mirror (cached in podman's store).
podman reads ``ops/container/containers.conf`` (runc, cgroupfs, file events, the host's
ulimits) unless ``CONTAINERS_CONF`` names another. Containers listen on 127.0.0.1 on a free
port, every wait is bounded, and every container the test starts is removed.
"""

from __future__ import annotations

import http.client
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from tests.support import artifact_payload, wait_until

ROOT = Path(__file__).resolve().parents[2]
IMAGE = os.environ.get("HELPERS_CONTAINER_IMAGE", "localhost/demand-analytics:test")
CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
BUILD_TIMEOUT = 3600  # seconds: the first build downloads and installs the locked dependencies
RUN_TIMEOUT = 180  # seconds: one short command in a container (a registry operation, a refusal)
START_TIMEOUT = 90  # seconds: the service answers /health (imports, loading the champion)

pytestmark = pytest.mark.skipif(
    not (shutil.which("podman") and os.environ.get("HELPERS_CONTAINER_TEST") == "1"),
    reason="the container test runs with `make container-test` (podman, and HELPERS_CONTAINER_TEST=1)")

ENV = {**os.environ, "CONTAINERS_CONF": os.environ.get("CONTAINERS_CONF")
       or str(ROOT / "ops" / "container" / "containers.conf")}


def podman(*args: str, timeout: float = RUN_TIMEOUT, check: bool = True) -> subprocess.CompletedProcess:
    done = subprocess.run(["podman", *args], capture_output=True, text=True, timeout=timeout, env=ENV)
    if check and done.returncode != 0:
        raise AssertionError(f"podman {' '.join(args)} exited with {done.returncode}:\n{done.stdout}\n{done.stderr}")
    return done


def pip_build_args() -> list[str]:
    """The host's pip settings a build needs to reach the same index: its index URLs (http(s)
    only: a file:// index of the host is not in the build) and, where the host trusts its own CA
    bundle (an intercepting proxy), that bundle, mounted read-only: verification stays on."""
    def config(key: str) -> str:
        done = subprocess.run([sys.executable, "-m", "pip", "config", "get", key], capture_output=True, text=True)
        return done.stdout.strip() if done.returncode == 0 else ""

    args = []
    for variable, key in (("PIP_INDEX_URL", "global.index-url"), ("PIP_EXTRA_INDEX_URL", "global.extra-index-url")):
        urls = [u for u in (os.environ.get(variable) or config(key)).split() if u.startswith(("http://", "https://"))]
        if urls:
            args += ["--build-arg", f"{variable}={' '.join(urls) if variable != 'PIP_INDEX_URL' else urls[0]}"]
    if CA_BUNDLE.is_file():
        args += ["--volume", f"{CA_BUNDLE}:{CA_BUNDLE}:ro", "--build-arg", f"PIP_CERT={CA_BUNDLE}"]
    return args


def base_image() -> str:
    if os.environ.get("HELPERS_CONTAINER_BASE"):
        return os.environ["HELPERS_CONTAINER_BASE"]
    python = os.environ.get("PYTHON") or shutil.which("python3.11") or "python3"
    done = subprocess.run([str(ROOT / "ops" / "container" / "base-image.sh")], capture_output=True, text=True,
                          timeout=900, env={**ENV, "PYTHON": python})
    sys.stderr.write(done.stderr)
    assert done.returncode == 0, f"ops/container/base-image.sh exited with {done.returncode}:\n{done.stderr}"
    return done.stdout.strip().splitlines()[-1]


@pytest.fixture(scope="module")
def image() -> str:
    base = base_image()
    start = time.monotonic()
    done = podman("build", "--format", "docker", "--tag", IMAGE, "--build-arg", f"BASE={base}", *pip_build_args(),
                  "--file", str(ROOT / "Containerfile"), str(ROOT), timeout=BUILD_TIMEOUT, check=False)
    seconds = time.monotonic() - start
    assert done.returncode == 0, f"the image did not build (podman build exited with {done.returncode}):\n" \
        f"{done.stdout[-4000:]}\n{done.stderr[-4000:]}"
    size = int(podman("image", "inspect", "--format", "{{.Size}}", IMAGE).stdout)
    print(f"\nimage {IMAGE} on {base}: built in {seconds:.0f} s, {size / 1e6:.0f} MB", file=sys.stderr)
    return IMAGE


@pytest.fixture
def volume(tmp_path) -> Path:
    """The folder mounted as /data: writable by the image's user (uid 10001), as a named volume is."""
    data = tmp_path / "data"
    data.mkdir()
    data.chmod(0o777)
    return data


def run(image: str, volume: Path, *command: str, env: dict[str, str] | None = None,
        check: bool = True) -> subprocess.CompletedProcess:
    """``command`` in a container of ``image`` removed when it exits, with ``volume`` as /data."""
    flags = [f"--env={key}={value}" for key, value in (env or {}).items()]
    return podman("run", "--rm", "--init", "--no-healthcheck", "--volume", f"{volume}:/data", *flags, image, *command,
                  check=check)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def call(port: int, method: str, path: str, body: dict | None = None) -> tuple[int, dict]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        connection.request(method, path, body=json.dumps(body) if body is not None else None,
                           headers={"Content-Type": "application/json"})
        response = connection.getresponse()
        return response.status, json.loads(response.read())
    finally:
        connection.close()


def answers(port: int) -> dict | None:
    try:
        status, body = call(port, "GET", "/health")
    except (OSError, http.client.HTTPException, ValueError):
        return None
    return body if status == 200 else None


def register_champion(image: str, volume: Path) -> dict:
    """A forecast artifact written on the host by the project's code, registered as the champion in
    the registry under /data/mlflow by the image's own code (the store records its artifacts'
    absolute paths, so it is made where the container sees it)."""
    from helpers.forecast.artifact import write_artifact

    payload = artifact_payload(n=30, models=("ets", "holt_winters", "ensemble"))
    payload["series_id"] = "elecdemand"
    write_artifact(volume / "champion.json", payload)
    script = ("from pathlib import Path; from helpers.core.settings import load_settings; "
              "from helpers.lifecycle.registry import Registry; "
              "print(Registry.from_settings(load_settings()).register(Path('/data/champion.json'), "
              "alias='champion').version)")
    assert run(image, volume, "python", "-c", script).stdout.split()[-1] == "1"
    return payload


def test_the_image_keeps_nothing_a_run_writes_and_runs_as_a_user(image):
    config = json.loads(podman("image", "inspect", "--format", "{{json .Config}}", image).stdout)
    assert config["User"] == "app" and config["Entrypoint"] == ["entrypoint"] and config["Cmd"] == ["serve"]
    assert "/data" in config["Volumes"]
    health = json.loads(podman("image", "inspect", image).stdout)[0]["Healthcheck"]
    assert health["Test"] == ["CMD", "entrypoint", "healthcheck"]  # kept by --format docker (OCI has none)
    listing = podman("run", "--rm", "--no-healthcheck", "--entrypoint", "sh", image, "-c",
                     "id -u; ls -A /data; ls -ld /app/runs; test -w /app && echo app-writable || true").stdout
    uid, rest = listing.split("\n", 1)
    assert uid != "0" and int(uid) == 10001
    assert rest.splitlines()[0].endswith("/app/runs -> /data/runs")  # /data itself is empty
    assert "app-writable" not in rest
    assert not any(key.startswith(("SMTP_PASSWORD", "FETCH_TOKEN", "MLFLOW_TRACKING_URI")) for key in config["Env"])


def test_the_container_serves_the_champion_from_a_mounted_registry(image, volume):
    payload = register_champion(image, volume)
    listed = run(image, volume, "models").stdout
    assert "champion" in listed, listed
    port, name = free_port(), f"helpers-test-{uuid.uuid4().hex[:8]}"
    podman("run", "--detach", "--init", "--name", name, "--publish", f"127.0.0.1:{port}:8000",
           "--volume", f"{volume}:/data", image)
    try:
        def up() -> dict | None:
            state = podman("inspect", "--format", "{{.State.Status}}", name).stdout.strip()
            assert state == "running", f"the container stopped ({state}):\n{podman('logs', name).stderr}"
            return answers(port)

        health = wait_until(up, timeout=START_TIMEOUT, what="the container's /health", every=0.5)
        assert health["served_version"] == 1
        assert health["model_source"]["mode"] == "registry"
        assert health["model_source"]["follows"] == "models:/demand-forecast@champion"

        status, body = call(port, "POST", "/predict", {"start_date": "2015-01-01", "end_date": "2015-01-07",
                                                       "model": "ensemble", "include_confidence": True})
        forecast = payload["models"]["ensemble"]["forecast"]
        assert status == 200, body
        assert body["forecast"] == forecast["mean"][:7] and body["confidence_upper"] == forecast["hi-95"][:7]
        assert body["dates"][0] == "2015-01-01" and body["model_used"] == "ensemble"

        users = podman("top", name, "user", "args").stdout.splitlines()[1:]
        assert users and all(not line.split()[0] in ("root", "0") for line in users), users
        assert podman("healthcheck", "run", name, check=False).returncode == 0  # the image's HEALTHCHECK
        wait_until(lambda: any((volume / "forecast_log").glob("*")), timeout=15, what="the forecast log on /data",
                   every=0.2)  # the service wrote its log to the volume, as the image's user
        assert (volume / "forecast_log").stat().st_uid == int(podman("exec", name, "id", "-u").stdout)

        start = time.monotonic()
        podman("stop", "--time", "20", name)  # SIGTERM, passed on by --init
        assert time.monotonic() - start < 15, "the service did not stop on SIGTERM"
    finally:
        podman("rm", "--force", "--ignore", name, check=False)


def test_commands_refuse_what_they_cannot_do_with_a_message(image, volume):
    empty = run(image, volume, "serve", check=False)
    assert empty.returncode == 2 and "error: cannot serve forecasts" in empty.stderr, empty.stderr
    assert "Traceback" not in empty.stderr
    loop = run(image, volume, "schedule", env={"WEEKLY_DAY": "8"}, check=False)
    assert loop.returncode == 2
    assert "error: WEEKLY_DAY must be 1 (Monday) to 7 (Sunday), got 8" in loop.stderr.splitlines(), loop.stderr
