"""The model registry on a real MLflow SQLite store: register, promote, roll back, and every
refusal leaves the registry as it was."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import pytest

from helpers.forecast.artifact import load_artifact
from helpers.lifecycle.registry import HISTORY_TAG, LINEAGE, ModelVersion, Registry, RegistryError
from tests.lifecycle.conftest import copy_store, local_store, write_payload

#: The module's store (importing mlflow, four versions logged, MLflow's one-off scan of the installed
#: packages) takes 10-14 s on two busy cores; conftest.py schedules slow files first.
pytestmark = pytest.mark.slow

NAME = "demand-forecast"


@pytest.fixture(scope="module")
def populated(mlflow_store_db, tmp_path_factory):
    """Four versions: 1 champion, 2 challenger, 3 without alias, 4 of another series (no alias).

    Tests copy the database (aliases and tags are in it); the model files stay in this folder."""
    folder = copy_store(mlflow_store_db, tmp_path_factory.mktemp("populated"))
    registry = Registry(local_store(folder), NAME)
    artifacts = {1: write_payload(folder / "a1.json", "2026-01-01T00:00:00"),
                 2: write_payload(folder / "a2.json", "2026-01-02T00:00:00"),
                 3: write_payload(folder / "a3.json", "2026-01-03T00:00:00"),
                 4: write_payload(folder / "a4.json", "2026-01-04T00:00:00", series_id="other")}
    registry.register(artifacts[1], alias="champion")
    registry.register(artifacts[2], alias="challenger")
    registry.register(artifacts[3])
    registry.register(artifacts[4])
    return folder, artifacts


@pytest.fixture
def registry(populated, tmp_path) -> Registry:
    """A registry of its own, holding the four versions of ``populated``."""
    return Registry(local_store(copy_store(populated[0] / "mlflow.db", tmp_path / "mlflow")), NAME)


def state(registry: Registry) -> tuple:
    """Everything an operation may change: versions with their aliases and tags, and the history."""
    return [(v.version, v.aliases, v.lineage) for v in registry.versions()], registry.history()


def aliases(registry: Registry) -> dict[int, tuple[str, ...]]:
    return {v.version: v.aliases for v in registry.versions() if v.aliases}


def test_a_store_never_made_has_no_versions_and_reading_it_makes_nothing(tmp_path):
    registry = Registry(local_store(tmp_path / "mlflow"), NAME)
    assert registry.versions() == [] and registry.get("champion") is None and registry.get(1) is None
    assert registry.history() == []
    assert not (tmp_path / "mlflow").exists()


def test_versions_newest_first_with_aliases_and_lineage(registry, populated):
    versions = registry.versions()
    assert [v.version for v in versions] == [4, 3, 2, 1]
    assert aliases(registry) == {1: ("champion",), 2: ("challenger",)}
    first = registry.get("champion")
    assert isinstance(first, ModelVersion) and first.version == 1
    payload = load_artifact(populated[1][1])
    assert set(LINEAGE) <= set(first.lineage)
    assert first.lineage["run_id"] == first.run_id and first.run_id
    assert first.lineage["created_utc"] == payload["created_utc"] == "2026-01-01T00:00:00"
    assert first.lineage["data_sha256"] == payload["data_sha256"]
    assert float(first.lineage["cv_mae"]) == payload["models"]["a"]["cv"]["mae"] == 8.0
    assert float(first.lineage["cv_rmse"]) == 10.0 and first.lineage["selected_model"] == "a"
    assert (first.lineage["series_id"], first.lineage["frequency"]) == ("s", "1D")
    assert registry.get("challenger").version == 2 and registry.get("3").version == 3 and registry.get(9) is None


def test_each_version_is_a_pyfunc_logged_in_its_run(registry):
    """The run holds the model; the model loads with MLflow alone and serves the artifact's numbers."""
    import mlflow

    version = registry.get("champion")
    run = registry.client.get_run(version.run_id)
    [output] = run.outputs.model_outputs  # the run lists the model it made, and the version is that model
    logged = registry.client.get_logged_model(output.model_id)
    assert registry.client.get_model_version(NAME, "1").source == logged.artifact_location
    assert logged.source_run_id == version.run_id and logged.status.name == "READY"
    model = mlflow.pyfunc.load_model(registry.client.get_model_version_download_uri(NAME, "1"))
    answer = model.predict(pd.DataFrame({"start_date": ["2015-01-02"], "end_date": ["2015-01-03"]}))
    assert answer["ds"].tolist() == ["2015-01-02", "2015-01-03"]
    assert answer["mean"].tolist() == [101.0, 102.0] and answer["hi-95"].tolist() == [110.0, 111.0]
    assert set(answer["model"]) == {"a"}
    ensemble = model.predict(pd.DataFrame({"start_date": ["2015-01-01"], "end_date": ["2015-01-01"],
                                           "model": ["ensemble"]}))
    assert ensemble["mean"].tolist() == [101.0]


def test_artifact_downloads_the_version_s_json(registry, populated, tmp_path):
    path = registry.artifact(2, tmp_path / "served")
    assert path == tmp_path / "served" / "forecast_artifact-v2.json"
    assert json.loads(path.read_text()) == json.loads(populated[1][2].read_text())
    assert [p.name for p in (tmp_path / "served").iterdir()] == [path.name]  # no download folder left behind


def test_the_same_artifact_is_not_registered_twice(registry, populated):
    before = state(registry)
    assert registry.register(populated[1][2], alias="champion").version == 2
    assert state(registry) == before


def test_promote_moves_champion_and_takes_the_challenger_alias(registry):
    promoted = registry.promote(2)
    assert promoted.version == 2 and promoted.aliases == ("champion",)
    assert aliases(registry) == {2: ("champion",)}
    assert registry.history() == [1]
    registry.promote(3)
    assert aliases(registry) == {3: ("champion",)} and registry.history() == [1, 2]


def test_rollback_walks_back_through_the_champions(registry):
    registry.promote(2)
    registry.promote(3)
    assert registry.rollback().version == 2 and registry.history() == [1]
    assert registry.rollback().version == 1 and registry.history() == []
    assert aliases(registry) == {1: ("champion",)}
    with pytest.raises(RegistryError, match="version 1 is the first champion of demand-forecast: there is no "
                                            r"previous champion to roll back to; promote a version instead"):
        registry.rollback()


def test_register_as_challenger_and_as_champion(registry, tmp_path):
    challenger = registry.register(write_payload(tmp_path / "a5.json", "2026-01-05T00:00:00"), alias="challenger")
    assert challenger.version == 5 and aliases(registry) == {1: ("champion",), 5: ("challenger",)}
    champion = registry.register(write_payload(tmp_path / "a6.json", "2026-01-06T00:00:00"), alias="champion")
    assert champion.version == 6 and registry.history() == [1]
    assert registry.rollback().version == 1


def test_register_without_a_run_makes_one(registry, tmp_path):
    version = registry.register(write_payload(tmp_path / "a7.json", "2026-01-07T00:00:00"))
    run = registry.client.get_run(version.run_id)
    assert run.info.run_name == "registration 2026-01-07T00:00:00" and run.data.tags["series_id"] == "s"
    assert version.aliases == ()


@pytest.mark.parametrize("act, message", [
    (lambda r: r.promote(99), "demand-forecast has no version 99 in sqlite:///"),
    (lambda r: r.promote(1), "version 1 is already the champion of demand-forecast; nothing changed"),
    (lambda r: r.promote(4), "version 4 forecasts series_id 'other' but the champion (version 1) 's', so it cannot "
                             "replace it; register another series under its own name"),
    (lambda r: r.promote("two"), "'two' is not a version: give a version number"),
    (lambda r: r.get(0), "0 is not a version"),
    (lambda r: r.artifact(99, Path("/tmp")), "has no version 99"),
])
def test_refusals_change_nothing(registry, act, message):
    before = state(registry)
    with pytest.raises(RegistryError, match=message.replace("(", r"\(").replace(")", r"\)")):
        act(registry)
    assert state(registry) == before


def test_register_refuses_bad_input_and_changes_nothing(registry, tmp_path):
    before = state(registry)
    with pytest.raises(RegistryError, match="alias 'production' is not one of champion, challenger"):
        registry.register(write_payload(tmp_path / "x.json", "2026-02-01T00:00:00"), alias="production")
    with pytest.raises(RegistryError, match="cannot register .*missing.json: no forecast artifact at"):
        registry.register(tmp_path / "missing.json")
    with pytest.raises(RegistryError, match="forecasts frequency '1h' but the champion .* '1D'"):
        registry.register(write_payload(tmp_path / "h.json", "2026-02-02T00:00:00", frequency="1h"), alias="challenger")
    with pytest.raises(RegistryError, match="no MLflow run 'nope' in sqlite:///"):
        registry.register(write_payload(tmp_path / "y.json", "2026-02-03T00:00:00"), run_id="nope")
    assert state(registry) == before


def _stored_file(registry: Registry, version: int) -> Path:
    uri = registry.client.get_model_version_download_uri(NAME, str(version))
    return Path(uri.removeprefix("file://")) / "artifacts" / "forecast_artifact.json"


@pytest.mark.parametrize("damage, message", [
    (lambda path: path.unlink(), "has no readable forecast artifact"),
    (lambda path: path.write_text('{"schema_version": 3, "trunc'), "has an unusable forecast artifact .*corrupt JSON"),
    (lambda path: path.write_text(json.dumps({**json.loads(path.read_text()), "schema_version": 2})),
     "has an unusable forecast artifact .*schema version 2"),
])
def test_a_version_whose_artifact_is_missing_or_bad_is_not_promoted(registry, tmp_path, damage, message):
    version = registry.register(write_payload(tmp_path / "a8.json", "2026-01-08T00:00:00")).version
    damage(_stored_file(registry, version))
    before = state(registry)
    with pytest.raises(RegistryError, match=f"version {version} of demand-forecast {message}"):
        registry.promote(version)
    with pytest.raises(RegistryError, match=message):
        registry.artifact(version, tmp_path / "served")
    assert state(registry) == before
    assert not list((tmp_path / "served").iterdir())


def test_rollback_refuses_a_previous_champion_that_was_deleted_or_is_broken(registry):
    registry.promote(2)
    registry.promote(3)
    registry.client.delete_model_version(NAME, "2")
    before = state(registry)
    with pytest.raises(RegistryError, match="the previous champion, version 2, is no longer in demand-forecast"):
        registry.rollback()
    assert state(registry) == before


def test_rollback_with_no_champion_is_refused(tmp_path, mlflow_store_db):
    registry = Registry(local_store(copy_store(mlflow_store_db, tmp_path / "mlflow")), NAME)
    with pytest.raises(RegistryError, match="demand-forecast has no champion to roll back from; `make run`"):
        registry.rollback()


def test_an_interrupted_promote_is_skipped_by_rollback(registry):
    """promote writes the history before moving the alias: a promote stopped between the two
    leaves the champion at the end of the history, which rollback passes over."""
    registry.promote(2)
    registry.client.set_registered_model_tag(NAME, HISTORY_TAG, "[1, 2]")
    assert registry.rollback().version == 1 and registry.history() == []


def test_a_malformed_history_is_refused_by_name(registry):
    registry.client.set_registered_model_tag(NAME, HISTORY_TAG, '{"not": "a list"}')
    with pytest.raises(RegistryError, match="the tag champion_history of demand-forecast is not a JSON list"):
        registry.rollback()


def test_the_environment_names_a_team_store(monkeypatch, tmp_path):
    settings = SimpleNamespace(mlflow_dir=tmp_path, mlflow_experiment="e", registry_model="m")
    local = Registry.from_settings(settings)
    assert local.store.tracking_uri == f"sqlite:///{tmp_path}/mlflow.db" == local.store.registry_uri
    assert local.store.artifact_root == tmp_path / "artifacts" and local.name == "m"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://mlflow.example:5000")
    team = Registry.from_settings(settings).store
    assert (team.tracking_uri, team.registry_uri, team.artifact_root) == ("http://mlflow.example:5000",) * 2 + (None,)
    monkeypatch.setenv("MLFLOW_REGISTRY_URI", "http://registry.example:5000")
    assert Registry.from_settings(settings).store.registry_uri == "http://registry.example:5000"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path}/team/runs.db")  # a file: artifacts beside it
    assert Registry.from_settings(settings).store.artifact_root == tmp_path / "team" / "artifacts"


# -- the command line: python -m helpers.lifecycle.registry (make models, make promote, make rollback) ------------
@pytest.fixture
def cli(registry, monkeypatch, capsys):
    """``main(argv)`` on the ``registry`` fixture's store: (exit code, stdout, stderr)."""
    from helpers.lifecycle.registry import main

    monkeypatch.setenv("HELPERS_MLFLOW_DIR", str(Path(registry.store.tracking_uri.removeprefix("sqlite:///")).parent))

    def run(*argv: str) -> tuple[int, str, str]:
        code = main(list(argv))
        out, err = capsys.readouterr()
        return code, out.strip(), err.strip()

    return run


def test_list_prints_a_table_of_the_versions(cli, populated):
    code, out, err = cli("list")
    assert code == 0 and err == ""
    header, *rows = out.splitlines()
    assert header.split() == ["version", "aliases", "created", "(UTC)", "training", "selected", "model", "cv_mae",
                              "data", "commit"]
    assert [row.split()[:2] for row in rows] == [["4", "-"], ["3", "-"], ["2", "challenger"], ["1", "champion"]]
    assert rows[-1].split()[2:] == ["2026-01-01", "00:00:00", "2014-01-01", "to", "2014-12-31", "a", "8",
                                    "x" * 12, "abc"]


def test_show_prints_a_version_s_lineage(cli, registry):
    code, out, _ = cli("show", "champion")
    assert code == 0
    lines = out.splitlines()
    assert lines[0].startswith("version 1 of demand-forecast (sqlite:///") and lines[1] == "aliases: champion"
    assert f"run_id: {registry.get(1).run_id}" in lines and "cv_mae: 8.0" in lines and "series_id: s" in lines
    assert lines[-1] == "load it: mlflow.pyfunc.load_model('models:/demand-forecast/1')"


def test_promote_and_rollback_say_what_they_did(cli, registry):
    assert cli("promote", "3") == (0, "version 3 of demand-forecast is now the champion (it was version 1; "
                                      "`make rollback` goes back to it)", "")
    assert registry.get("champion").version == 3
    assert cli("rollback") == (0, "version 1 of demand-forecast is the champion again (it was version 3)", "")
    assert registry.get("champion").version == 1


@pytest.mark.parametrize("argv, message", [
    (("promote", "1"), "refused: version 1 is already the champion of demand-forecast; nothing changed"),
    (("promote", "99"), "refused: demand-forecast has no version 99 in sqlite:///"),
    (("promote", "latest"), "refused: 'latest' is not a version: give a version number (1, 2, ...), champion or"),
    (("show", "7"), "refused: demand-forecast has no version 7 in sqlite:///"),
    (("rollback",), "refused: version 1 is the first champion of demand-forecast: there is no previous champion"),
])
def test_refusals_exit_2_with_one_sentence_and_change_nothing(cli, registry, argv, message):
    before = state(registry)
    code, out, err = cli(*argv)
    assert (code, out) == (2, "") and err.startswith(message) and len(err.splitlines()) == 1
    assert state(registry) == before


def test_a_store_never_made_is_listed_as_empty_and_stays_unmade(monkeypatch, tmp_path, capsys):
    from helpers.lifecycle.registry import main

    monkeypatch.setenv("HELPERS_MLFLOW_DIR", str(tmp_path / "mlflow"))
    assert main(["list"]) == 0
    assert capsys.readouterr().out.strip() == (f"demand-forecast has no versions in sqlite:///{tmp_path}/mlflow/mlflow.db "
                                               "yet; `make run` registers the first as champion")
    assert not (tmp_path / "mlflow").exists()


def test_a_bad_setting_exits_2_and_an_unusable_store_exits_3(monkeypatch, tmp_path, capsys):
    from helpers.lifecycle.registry import main

    monkeypatch.setenv("HELPERS_REGISTRY_MODEL", "demand:forecast")
    assert main(["list"]) == 2
    assert capsys.readouterr().err.startswith("refused: registry_model must be 1 to 256 letters, digits, '.', '_' or "
                                              "'-', starting with a letter or digit (set registry_model in env.yaml")
    monkeypatch.delenv("HELPERS_REGISTRY_MODEL")
    (tmp_path / "mlflow.db").write_text("not a database")
    monkeypatch.setenv("HELPERS_MLFLOW_DIR", str(tmp_path))
    assert main(["list"]) == 3
    assert capsys.readouterr().err.strip() == (
        f"unavailable: the MLflow store sqlite:///{tmp_path}/mlflow.db could not be used ((sqlite3.DatabaseError) file "
        "is not a database); check MLFLOW_TRACKING_URI / mlflow_dir and try again")
    assert (tmp_path / "mlflow.db").read_text() == "not a database"


def test_the_pyfunc_slices_the_artifact_s_paths_and_refuses_what_it_does_not_hold():
    """The model class itself (MLflow runs a copy of its file when it loads a version)."""
    from helpers.lifecycle.forecast_model import ForecastModel
    from tests.support import artifact_payload

    model = ForecastModel()
    model.load(artifact_payload(n=5, models=("a", "ensemble")))
    answer = model.predict(None, pd.DataFrame({"start_date": ["2015-01-04", "2015-01-01"],
                                               "end_date": ["2015-01-05", "2015-01-01"],
                                               "model": [None, "ensemble"]}))
    assert answer.to_dict("list") == {"request": [0, 0, 1], "ds": ["2015-01-04", "2015-01-05", "2015-01-01"],
                                      "model": ["a", "a", "ensemble"], "mean": [103.0, 104.0, 101.0],
                                      "lo-80": [98.0, 99.0, 96.0], "hi-80": [108.0, 109.0, 106.0],
                                      "lo-95": [94.0, 95.0, 92.0], "hi-95": [112.0, 113.0, 110.0]}
    assert model.predict(None, pd.DataFrame({"start_date": [], "end_date": []})).empty
    with pytest.raises(ValueError, match="unknown model 'prophet'; this version forecasts a, ensemble"):
        model.predict(None, pd.DataFrame({"start_date": ["2015-01-01"], "end_date": ["2015-01-01"],
                                          "model": ["prophet"]}))
    with pytest.raises(ValueError, match="start_date 2015-01-04 to end_date 2015-01-09 is outside the forecastable "
                                         r"days 2015-01-01 to 2015-01-05 \(start must not be after end\)"):
        model.predict(None, pd.DataFrame({"start_date": ["2015-01-04"], "end_date": ["2015-01-09"]}))
