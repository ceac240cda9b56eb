"""The pipeline grid of experiments (helpers.app.tasks.experiment_ids)."""

from __future__ import annotations

from helpers.app import tasks
from tests.ab.builders import file_rows


def test_pipeline_ids_include_the_uploaded_experiments(tmp_path, clean_env, monkeypatch):
    upload = tmp_path / "upload.csv"
    file_rows().to_csv(upload, index=False)
    monkeypatch.setenv("HELPERS_AB_SOURCE_FILE", str(upload))
    ids = tasks.experiment_ids()
    assert ids[-1] == "e1" and "checkout_flow" in ids
