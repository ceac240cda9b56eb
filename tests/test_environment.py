"""environment.yml (conda) and pyproject.toml (pip) pin the same packages at the same versions."""

from __future__ import annotations

import re
import tomllib

import yaml

from helpers.core.paths import project_root

#: conda-forge package name -> PyPI name, where they differ.
CONDA_TO_PYPI = {"python-duckdb": "duckdb", "prometheus_client": "prometheus-client"}


def _pyproject_pins() -> dict[str, str]:
    data = tomllib.loads((project_root() / "pyproject.toml").read_text())
    specs = data["project"]["dependencies"] + data["project"]["optional-dependencies"]["dev"]
    pins = {}
    for spec in specs:
        match = re.fullmatch(r"([A-Za-z0-9_.\-]+)(?:\[[^\]]+\])?==([^;\s]+)", spec)
        assert match, f"pyproject dependency {spec!r} is not pinned with =="
        pins[match[1].lower()] = match[2]
    return pins


def _environment_pins() -> dict[str, str]:
    data = yaml.safe_load((project_root() / "environment.yml").read_text())
    pins = {}
    for item in data["dependencies"]:
        if isinstance(item, dict):
            for spec in item["pip"]:
                if spec.startswith("-e"):
                    continue
                name, version = spec.split("==")
                pins[name.lower()] = version
        elif item.split("=")[0] not in ("python", "pip"):
            name, version = item.split("=")
            pins[CONDA_TO_PYPI.get(name, name).lower()] = version
    return pins


def test_environment_yml_and_pyproject_agree():
    assert _environment_pins() == _pyproject_pins()


def test_constraints_lock_agrees_with_pins():
    lock = {}
    for line in (project_root() / "requirements" / "constraints.txt").read_text().splitlines():
        if "==" in line:
            name, version = line.split("==")
            lock[name.lower().replace("_", "-")] = version
    for name, version in _pyproject_pins().items():
        assert lock.get(name) == version, f"{name}: pyproject {version}, constraints {lock.get(name)}"


def test_known_traps_are_avoided():
    pins = _pyproject_pins()
    major = {name: int(v.split(".")[0]) for name, v in pins.items()}
    assert major["snowflake-connector-python"] < 5  # fakesnow cannot import with 5
    assert tuple(map(int, pins["networkx"].split(".")[:2])) < (3, 6)  # ploomber plot
    assert major["pymc"] < 6 and major["arviz"] < 1
    assert major["pandas"] < 3  # statsforecast
    assert tuple(map(int, pins["statsmodels"].split(".")[:2])) < (0, 15)  # grangercausalitytests(verbose=)
