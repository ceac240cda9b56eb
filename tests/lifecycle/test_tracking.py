"""One MLflow run per model comparison, read back with MlflowClient from a real SQLite store; and
the pipeline's register task, which logs that run and registers the artifact in it (one file:
both need the same comparison products)."""

from __future__ import annotations

import json
import math
from types import SimpleNamespace

import pytest

from helpers.forecast.artifact import load_artifact
from helpers.lifecycle.tracking import Store, TrackingError, log_comparison, main, ui_command
from tests.lifecycle.conftest import copy_store, local_store

#: The module's products (a comparison and its artifact) and imports (the pipeline's tasks, mlflow)
#: take 15-20 s on two busy cores; conftest.py schedules slow files first.
pytestmark = pytest.mark.slow


@pytest.fixture
def store(mlflow_store_db, tmp_path) -> Store:
    return local_store(copy_store(mlflow_store_db, tmp_path / "mlflow"))


@pytest.fixture(scope="module")
def logged(comparison_products, mlflow_store_db, tmp_path_factory):
    """The comparison logged once; the client and the run read back."""
    store = local_store(copy_store(mlflow_store_db, tmp_path_factory.mktemp("logged")))
    client = store.client()
    return client, client.get_run(log_comparison(store, *comparison_products, client=client))


def test_the_run_holds_the_comparison_config_and_the_run_settings(logged, comparison_products):
    _, run = logged
    record = json.loads(comparison_products[0].read_text())
    params = run.data.params
    assert params["comparison.models"] == "naive,seasonal_naive,window_average,ses"
    assert params["comparison.n_folds"] == "4" and params["comparison.horizon"] == "7"
    assert params["comparison.season_lengths"] == "7" and params["comparison.grain"] == "daily"
    assert {k.removeprefix("comparison.") for k in params if k.startswith("comparison.")} == set(record["config"])
    assert params["settings.series_id"] == "weekly" and params["settings.profile"] == "test"
    assert params["settings.freq"] == "1h" and "settings.ab_experiments" in params
    assert run.info.status == "FINISHED" and run.info.run_name.startswith("comparison ")


def test_each_model_s_metrics_per_fold_and_pooled(logged, comparison_products):
    client, run = logged
    record = json.loads(comparison_products[0].read_text())
    assert [f["fold"] for f in record["folds"]] == [1, 2, 3, 4]
    assert [f["role"] for f in record["folds"]] == ["selection", "selection", "evaluation", "evaluation"]
    for model in ("naive", "seasonal_naive", "window_average", "ses", "ensemble"):
        history = client.get_metric_history(run.info.run_id, f"fold/{model}/mae")
        assert [m.step for m in sorted(history, key=lambda m: m.step)] == [1, 2, 3, 4], model
        by_step = {m.step: m.value for m in history}
        assert by_step == {f["fold"]: f["metrics"][model]["mae"] for f in record["folds"]}
        # pooled over the evaluation folds: the mean of their MAEs, the numbers the report shows
        assert run.data.metrics[f"cv/{model}/mae"] == pytest.approx((by_step[3] + by_step[4]) / 2)
        assert run.data.metrics[f"cv/{model}/rmse"] == record["metrics"][model]["rmse"]
    selected = record["metrics"][record["selected"]]
    assert run.data.metrics["selected_cv_mae"] == selected["mae"]
    assert run.data.metrics["selected_cv_rmse"] == selected["rmse"]
    logged_values = [v for k, v in run.data.metrics.items()]
    assert all(math.isfinite(v) for v in logged_values)


def test_the_selection_data_hash_commit_and_artifacts(logged, comparison_products, tmp_path):
    client, run = logged
    selection, artifact = comparison_products
    payload = load_artifact(artifact)
    tags = run.data.tags
    assert tags["selected_model"] == payload["selected_model"] == "seasonal_naive"
    assert tags["data_sha256"] == payload["data_sha256"] and tags["git_commit"] == payload["git_commit"]
    assert tags["mlflow.source.git.commit"] == payload["git_commit"].removesuffix("-dirty")
    assert tags["series_id"] == "weekly" and tags["frequency"] == "1D"
    assert (tags["training_start"], tags["training_end"]) == (payload["training_start"], payload["training_end"])
    assert tags["artifact_created_utc"] == payload["created_utc"]
    assert [f["cutoff"] for f in json.loads(tags["folds"])] == [f["cutoff"] for f in
                                                                json.loads(selection.read_text())["folds"]]
    assert "selected `seasonal_naive`" in tags["mlflow.note.content"]
    assert sorted(a.path for a in client.list_artifacts(run.info.run_id)) == ["forecast_artifact.json",
                                                                             "selection.json"]
    back = client.download_artifacts(run.info.run_id, "forecast_artifact.json", str(tmp_path))
    assert load_artifact(back) == payload


def test_products_that_do_not_belong_together_are_refused(store, comparison_products, tmp_path):
    selection, artifact = comparison_products
    old = json.loads(selection.read_text())
    (tmp_path / "old.json").write_text(json.dumps({k: v for k, v in old.items() if k != "folds"}))
    with pytest.raises(TrackingError, match="old.json has no per-fold metrics .* `make run` writes it again"):
        log_comparison(store, tmp_path / "old.json", artifact)
    (tmp_path / "other.json").write_text(json.dumps({**old, "selected": "ses"}))
    with pytest.raises(TrackingError, match="other.json and .*forecast_artifact.json come from different model"):
        log_comparison(store, tmp_path / "other.json", artifact)
    assert store.client().search_runs([store.experiment_id(store.client())]) == []


def test_a_run_that_fails_part_way_is_marked_failed(comparison_products, tmp_path, mlflow_store_db):
    """The artifact root is under a file, so storing the artifacts fails after the metrics."""
    (tmp_path / "not-a-folder").write_text("")
    store = Store(f"sqlite:///{copy_store(mlflow_store_db, tmp_path / 'mlflow')}/mlflow.db",
                  f"sqlite:///{tmp_path}/mlflow/mlflow.db", "e", tmp_path / "not-a-folder" / "artifacts")
    with pytest.raises(OSError):
        log_comparison(store, *comparison_products)
    client = store.client()
    [run] = client.search_runs([store.experiment_id(client)])
    assert run.info.status == "FAILED" and run.data.metrics["selected_cv_mae"] > 0


def test_a_deleted_experiment_is_refused_by_name(store):
    client = store.client()
    client.delete_experiment(store.experiment_id(client))
    with pytest.raises(TrackingError, match="the MLflow experiment 'demand-forecast' in sqlite:.* was deleted; "
                                            "restore it in the MLflow UI or choose another name"):
        store.experiment_id(client)


def test_a_store_is_made_only_when_written(tmp_path):
    store = local_store(tmp_path / "mlflow")
    assert not store.exists()
    store.make_folders()
    assert (tmp_path / "mlflow").is_dir() and not store.exists()


def test_the_ui_serves_the_local_store_on_localhost(tmp_path, monkeypatch, capsys):
    store = local_store(tmp_path)
    command = ui_command(store, 5123)
    assert command[1:4] == ["-m", "mlflow", "ui"]
    assert command[command.index("--backend-store-uri") + 1] == f"sqlite:///{tmp_path}/mlflow.db"
    assert command[command.index("--host") + 1] == "127.0.0.1" and command[command.index("--port") + 1] == "5123"
    assert command[command.index("--artifacts-destination") + 1] == str(tmp_path / "artifacts")
    assert command[command.index("--workers") + 1] == "1"
    monkeypatch.setenv("HELPERS_MLFLOW_DIR", str(tmp_path))
    assert main(["uri"]) == 0 and capsys.readouterr().out.strip() == f"sqlite:///{tmp_path}/mlflow.db"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://mlflow.example:5000")
    assert main(["ui"]) == 2
    assert capsys.readouterr().err.strip() == (
        "refused: MLFLOW_TRACKING_URI points at http://mlflow.example:5000: open that server's own UI; make mlflow-ui "
        "serves a local store only (unset the variable to use it)")
    monkeypatch.setenv("HELPERS_REGISTRY_MODEL", "bad/name")
    assert main(["uri"]) == 2 and "registry_model must be 1 to 256 letters" in capsys.readouterr().err


# -- the pipeline's register task: log the comparison, register its artifact --------------------------------------
def register(folder, selection, artifact, product=None):
    """``register_task`` as Ploomber calls it; returns the record it wrote."""
    from helpers.app.tasks import check_registration, register_task

    product = product or folder / "registration.json"
    register_task(product, {"model_comparison": {"selection": str(selection)}, "fit_final": str(artifact)},
                  mlflow_dir=str(folder), registry_model="demand-forecast", mlflow_experiment="demand-forecast")
    check_registration(product)
    return json.loads(product.read_text())


def variant(artifact, path, **changes):
    """The artifact as another build would have written it (another creation time, another series)."""
    path.write_text(json.dumps({**json.loads(artifact.read_text()), **changes}))
    return path


@pytest.fixture
def folder(mlflow_store_db, tmp_path):
    return copy_store(mlflow_store_db, tmp_path / "mlflow")


def test_the_first_build_registers_version_1_as_champion_in_the_comparison_s_run(folder, comparison_products):
    from helpers.lifecycle.registry import Registry

    record = register(folder, *comparison_products)
    payload = load_artifact(comparison_products[1])
    assert (record["version"], record["aliases"], record["new"]) == (1, ["champion"], True)
    assert record["note"] == "this run registered version 1 of demand-forecast as champion (the first)"
    assert (record["created_utc"], record["data_sha256"]) == (payload["created_utc"], payload["data_sha256"])
    assert record["registry_uri"] == record["tracking_uri"] == f"sqlite:///{folder}/mlflow.db"
    registry = Registry(local_store(folder), "demand-forecast")
    run = registry.client.get_run(record["run_id"])
    assert run.data.metrics["selected_cv_mae"] == float(registry.get("champion").lineage["cv_mae"])
    assert len(run.outputs.model_outputs) == 1  # the comparison's run holds the registered model


def test_a_rebuild_of_the_same_artifact_registers_nothing(folder, comparison_products):
    first = register(folder, *comparison_products)
    again = register(folder, *comparison_products)
    assert (again["version"], again["new"], again["run_id"]) == (1, False, first["run_id"])
    assert again["note"].endswith("is already version 1 of demand-forecast; nothing was registered")
    store = local_store(folder)
    client = store.client()
    assert len(client.search_runs([store.experiment_id(client)])) == 1


def test_later_builds_register_challengers_and_another_series_without_alias(folder, comparison_products, tmp_path):
    selection, artifact = comparison_products
    register(folder, selection, artifact)
    later = register(folder, selection, variant(artifact, tmp_path / "later.json", created_utc="2099-01-01T00:00:00"))
    assert (later["version"], later["aliases"], later["new"]) == (2, ["challenger"], True)
    assert later["note"] == ("this run registered version 2 of demand-forecast as challenger; the champion is still "
                             "version 1 (`make promote VERSION=2` serves it)")
    client = local_store(folder).client()
    assert sorted(a.path for a in client.list_artifacts(later["run_id"])) == ["forecast_artifact.json",
                                                                             "selection.json"]  # whatever the paths
    other = register(folder, selection, variant(artifact, tmp_path / "other.json", created_utc="2099-01-02T00:00:00",
                                                series_id="site_b"))
    assert (other["version"], other["aliases"]) == (3, [])
    assert other["note"].startswith("this run registered version 3 of demand-forecast without an alias: this artifact "
                                    "forecasts series_id 'site_b' but the champion (version 1) 'weekly'")


def test_a_first_registration_stopped_before_its_alias_is_finished(folder, comparison_products):
    from helpers.lifecycle.registry import Registry

    Registry(local_store(folder), "demand-forecast").register(comparison_products[1])  # no alias, as if stopped
    record = register(folder, *comparison_products)
    assert (record["version"], record["aliases"], record["new"]) == (1, ["champion"], False)


def test_the_registration_check_fails_when_the_store_it_names_is_gone_or_changed(folder, comparison_products,
                                                                                  monkeypatch):
    from helpers.app.tasks import ProductError, check_registration

    register(folder, *comparison_products)
    product = folder / "registration.json"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://user:secret@mlflow.example:5000")
    with pytest.raises(ProductError, match="was registered in sqlite:///.*, but the environment now names "
                                           "http://mlflow.example:5000;") as caught:
        check_registration(product)
    assert "secret" not in str(caught.value)  # messages and files never show the password
    record = json.loads(product.read_text())
    product.write_text(json.dumps({**record, "registry_uri": "http://mlflow.example:5000"}))
    check_registration(product)  # the server it names, the password left out of the file
    monkeypatch.delenv("MLFLOW_TRACKING_URI")
    with pytest.raises(ProductError, match="but MLFLOW_TRACKING_URI is no longer set"):
        check_registration(product)
    product.write_text(json.dumps(record))
    (folder / "mlflow.db").unlink()
    with pytest.raises(ProductError, match=r"mlflow.db, which no longer exists; `make run` makes it again"):
        check_registration(product)
    product.write_text("{")
    with pytest.raises(ProductError, match="not a readable registration record"):
        check_registration(product)


def test_a_parameter_longer_than_mlflow_allows_is_left_out_and_named(store, comparison_products, tmp_path):
    selection, artifact = comparison_products
    payload = json.loads(artifact.read_text())
    long = variant(artifact, tmp_path / "long.json",
                   parameters={**payload["parameters"], "ab_experiments": "x" * 7000})
    client = store.client()
    run = client.get_run(log_comparison(store, selection, long, client=client))
    assert "settings.ab_experiments" not in run.data.params and "settings.series_id" in run.data.params
    assert run.data.tags["params_left_out"] == ("settings.ab_experiments (longer than 6000 characters; see parameters "
                                                "in forecast_artifact.json)")


def test_the_register_task_refuses_an_artifact_that_fails_its_check(folder, comparison_products, tmp_path):
    from helpers.lifecycle.registry import RegistryError

    broken = tmp_path / "broken.json"
    broken.write_text('{"schema_version": 3, "trunc')
    with pytest.raises(RegistryError, match="cannot register .*broken.json: .*corrupt JSON"):
        register(folder, comparison_products[0], broken)
    assert not (folder / "registration.json").exists()
