from __future__ import annotations

import json
import os
import stat

import pytest

from helpers.forecast import artifact
from tests.support import artifact_payload


def _payload(n=3):
    return artifact_payload(n)


def test_round_trip(tmp_path):
    path = artifact.write_artifact(tmp_path / "model" / "artifact.json", _payload())
    assert artifact.load_artifact(path) == _payload()
    assert [p.name for p in path.parent.iterdir()] == ["artifact.json"]  # no temp file left behind


@pytest.mark.parametrize("mask, mode", [(0o022, 0o644), (0o027, 0o640)])
def test_the_artifact_follows_the_umask_so_a_service_of_another_user_can_read_it(tmp_path, mask, mode):
    """It was written with the temporary file's private mode 0600, whatever the umask."""
    old = os.umask(mask)
    try:
        path = artifact.write_artifact(tmp_path / "artifact.json", _payload())
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == mode


def test_an_unreadable_artifact_is_refused_with_a_sentence(tmp_path):
    folder = tmp_path / "forecast_artifact.json"
    folder.mkdir()
    with pytest.raises(artifact.ArtifactError) as info:
        artifact.load_artifact(folder)
    assert str(info.value) == (f"{folder} is a folder, not a file; give the path of the file itself "
                               "(`make run` writes a new one).")


def test_failed_write_keeps_the_old_artifact(tmp_path):
    path = artifact.write_artifact(tmp_path / "artifact.json", _payload())
    bad = _payload()
    bad["models"]["a"]["forecast"]["mean"][0] = float("nan")
    with pytest.raises(artifact.ArtifactError, match="non-finite"):
        artifact.write_artifact(path, bad)
    assert artifact.load_artifact(path) == _payload()


@pytest.mark.parametrize("mutate, message", [
    (lambda p: p.pop("series_id"), "missing keys"),
    (lambda p: p.update(schema_version=99), "schema version 99"),
    (lambda p: p.update(selected_model="zzz"), "not among"),
    (lambda p: p["models"]["a"]["forecast"]["mean"].pop(), "different or zero length"),
    (lambda p: p["models"]["a"]["forecast"]["ds"].reverse(), "not increasing"),
    (lambda p: p["models"]["a"]["forecast"].update({"lo-80": [11.0] * 3}), "not nested"),
    (lambda p: p["models"]["a"].pop("cv"), "cross-validated metrics"),
    (lambda p: p["models"]["a"]["cv"].pop("raw_coverage_95"), "cross-validated metrics"),
    (lambda p: p.update(models={}), "no models"),
    (lambda p: p.pop("interval_calibration"), r"missing keys \['interval_calibration'\]"),
    (lambda p: p["models"]["a"].pop("calibration"), "lacks an interval calibration"),
    (lambda p: p["models"]["a"]["calibration"].pop("95"), "lacks an interval calibration"),
    (lambda p: p["models"]["a"]["calibration"]["80"].update(factor=-1.0), "lacks an interval calibration"),
    (lambda p: p["models"]["a"]["calibration"]["80"].update(method="magic"), "lacks an interval calibration"),
])
def test_invalid_artifacts_are_refused_with_the_rebuild_command(tmp_path, mutate, message):
    payload = _payload()
    mutate(payload)
    path = tmp_path / "artifact.json"
    path.write_text(json.dumps(payload))
    with pytest.raises(artifact.ArtifactError, match=message) as info:
        artifact.load_artifact(path)
    assert "make run" in str(info.value)


def test_an_artifact_of_the_previous_schema_is_refused_as_such(tmp_path):
    """Version 1 had uncalibrated intervals and no calibration keys: the version is the reason given."""
    old = _payload()
    old["schema_version"] = 1
    del old["interval_calibration"]
    for model in old["models"].values():
        del model["calibration"]
    path = tmp_path / "artifact.json"
    path.write_text(json.dumps(old))
    with pytest.raises(artifact.ArtifactError, match=r"schema version 1, this code reads version 3\. Rebuild the "
                                                     r"artifact with `make run`"):
        artifact.load_artifact(path)


def test_missing_and_corrupt_files(tmp_path):
    with pytest.raises(artifact.ArtifactError, match="no forecast artifact"):
        artifact.load_artifact(tmp_path / "absent.json")
    corrupt = tmp_path / "corrupt.json"
    corrupt.write_text('{"schema_version": 2, "models": {')
    with pytest.raises(artifact.ArtifactError, match="corrupt JSON"):
        artifact.load_artifact(corrupt)
    with pytest.raises(artifact.ArtifactError, match="not a JSON object"):
        artifact.validate_artifact([1, 2])
