from __future__ import annotations

import hashlib
import re

from helpers.core.provenance import file_sha256, git_commit, package_versions, stamp


def test_sha256_matches_hashlib(tmp_path):
    path = tmp_path / "data.bin"
    payload = b"x" * 3_000_000
    path.write_bytes(payload)
    assert file_sha256(path, chunk_size=1024) == hashlib.sha256(payload).hexdigest()


def test_package_versions_reports_missing_packages():
    versions = package_versions(("pandas", "surely-not-a-package"))
    assert re.fullmatch(r"\d+\.\d+\.\d+", versions["pandas"])
    assert versions["surely-not-a-package"] == "not installed"


def test_git_commit_outside_a_repository(tmp_path):
    assert git_commit(tmp_path) == "unknown"
    assert re.fullmatch(r"([0-9a-f]{40}(-dirty)?|unknown)", git_commit())


def test_stamp_has_everything_a_reader_needs(tmp_path):
    data = tmp_path / "d.csv"
    data.write_text("a\n1\n")
    info = stamp({"freq": "30min"}, data)
    assert info["data_sha256"] == hashlib.sha256(b"a\n1\n").hexdigest()
    assert info["parameters"] == {"freq": "30min"}
    assert {"pandas", "duckdb", "ploomber"} <= set(info["packages"])
    assert stamp({}, None)["data_sha256"] is None
