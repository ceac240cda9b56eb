"""What a cycle refits: the registry's champion, downloaded, or the pipeline's artifact when the
registry has none; a champion that cannot be used refuses the cycle, a store that cannot be read
makes it busy (exit 3). On a real MLflow SQLite store."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from helpers.app import cycle
from helpers.core.settings import ConfigError, load_settings
from helpers.lifecycle.champion import StoreUnavailable, champion_artifact
from helpers.lifecycle.registry import Registry
from tests.lifecycle.conftest import copy_store, write_payload
from tests.support import DQ, cycle_settings


@pytest.fixture
def settings(tmp_path, clean_env):
    return cycle_settings(tmp_path)


@pytest.fixture
def registry(settings, mlflow_store_db) -> Registry:
    copy_store(mlflow_store_db, settings.mlflow_dir)
    return Registry.from_settings(settings)


def test_no_store_no_champion_the_pipeline_s_artifact(settings, registry, tmp_path):
    assert champion_artifact(load_settings("test", mlflow_dir=str(tmp_path / "none")), tmp_path / "dl") is None
    assert not (tmp_path / "none").exists()
    registry.register(write_payload(tmp_path / "a1.json", "2026-01-01T00:00:00"))  # a version, no alias
    assert champion_artifact(settings, tmp_path / "dl") is None
    assert cycle.production_artifact(settings) == settings.products / "model" / "forecast_artifact.json"


def test_a_cycle_refits_the_champion_and_follows_a_promotion(settings, registry, tmp_path):
    first = write_payload(tmp_path / "a1.json", "2026-01-01T00:00:00")
    second = write_payload(tmp_path / "a2.json", "2026-01-02T00:00:00")
    registry.register(first, alias="champion")
    registry.register(second, alias="challenger")
    path = cycle.production_artifact(settings)
    assert path == settings.products / "operate" / "champion" / "forecast_artifact-v1.json"
    assert json.loads(path.read_text()) == json.loads(first.read_text())
    registry.promote(2)
    assert json.loads(cycle.production_artifact(settings).read_text()) == json.loads(second.read_text())


def test_a_champion_whose_artifact_is_gone_refuses_the_cycle(settings, registry, tmp_path):
    version = registry.register(write_payload(tmp_path / "a1.json", "2026-01-01T00:00:00"), alias="champion")
    uri = registry.client.get_model_version_download_uri(registry.name, str(version.version))
    (Path(uri.removeprefix("file://")) / "artifacts" / "forecast_artifact.json").unlink()
    with pytest.raises(ConfigError, match="a cycle refits the registry's champion, and it cannot be used: version 1 "
                                          "of demand-forecast has no readable forecast artifact"):
        cycle.production_artifact(settings)


def test_a_store_that_cannot_be_read_makes_the_cycle_busy(settings, tmp_path, capsys):
    settings.mlflow_dir.mkdir()
    (settings.mlflow_dir / "mlflow.db").write_text("not a database")
    with pytest.raises(StoreUnavailable, match="could not be read for the champion .*check MLFLOW_TRACKING_URI"):
        champion_artifact(settings, tmp_path / "dl")
    (tmp_path / "inbox").mkdir()
    (tmp_path / "inbox" / "new.csv").write_bytes((DQ / "clean.csv").read_bytes())
    assert cycle.operate(settings, tmp_path / "runs") == cycle.EXIT_BUSY
    err = capsys.readouterr().err
    assert err.startswith("model registry unavailable: the MLflow store sqlite:///") and "Traceback" not in err
    assert (tmp_path / "inbox" / "new.csv").exists()
    assert (settings.mlflow_dir / "mlflow.db").read_text() == "not a database"


def test_an_unwritten_store_is_not_asked_again(settings, registry, tmp_path):
    """The second lookup finds the champion from its record: the store has not been written since
    (so even with the registry's files gone, it gives the file downloaded before); a promotion
    writes the store, and the next lookup asks again."""
    registry.register(write_payload(tmp_path / "a1.json", "2026-01-01T00:00:00"), alias="champion")
    second = write_payload(tmp_path / "a2.json", "2026-01-02T00:00:00")
    registry.register(second, alias="challenger")
    folder = tmp_path / "dl"
    first = champion_artifact(settings, folder)
    assert first.name == "forecast_artifact-v1.json" and (folder / "champion.json").exists()
    artifacts = settings.mlflow_dir / "artifacts"
    artifacts.rename(tmp_path / "moved")  # a lookup that asked the registry would fail to download now
    assert champion_artifact(settings, folder) == first
    first.write_text("{")  # spoilt: downloaded again, which needs the registry's files
    with pytest.raises(Exception, match="no readable forecast artifact"):
        champion_artifact(settings, folder)
    (tmp_path / "moved").rename(artifacts)
    assert champion_artifact(settings, folder) == first and json.loads(first.read_text())
    registry.promote(2)
    assert json.loads(champion_artifact(settings, folder).read_text()) == json.loads(second.read_text())
