"""Atomic writes leave files others can read; a file that cannot be read is named in a sentence."""

from __future__ import annotations

import os
import stat

import pytest

from helpers.core import files


@pytest.fixture
def umask():
    """Set the process umask for one test and put the old one back."""
    old = os.umask(0o022)
    yield lambda mask: os.umask(mask)
    os.umask(old)


def test_current_umask_reads_without_changing_it(umask):
    umask(0o027)
    assert files.current_umask() == 0o027
    assert files.current_umask() == 0o027  # reading twice: still the same


@pytest.mark.parametrize("mask, mode", [(0o022, 0o644), (0o027, 0o640), (0o077, 0o600), (0o002, 0o664)])
def test_written_files_follow_the_umask_like_open_does(tmp_path, umask, mask, mode):
    umask(mask)
    path = files.write_atomic(tmp_path / "sub" / "out.json", '{"a": 1}')
    assert stat.S_IMODE(path.stat().st_mode) == mode
    plain = tmp_path / "plain.txt"
    plain.write_text("x")  # what a plain open() gives under the same umask
    assert stat.S_IMODE(plain.stat().st_mode) == mode
    assert path.read_text() == '{"a": 1}'


def test_replacing_keeps_no_temporary_file_and_a_failure_keeps_the_old_file(tmp_path):
    path = files.write_atomic(tmp_path / "out.txt", "old")
    files.write_atomic(path, b"new bytes")
    assert path.read_bytes() == b"new bytes"
    with pytest.raises(TypeError):
        files.write_atomic(path, 42)  # type: ignore[arg-type]
    assert path.read_bytes() == b"new bytes"
    assert [p.name for p in tmp_path.iterdir()] == ["out.txt"]


def test_unreadable_says_what_to_do(tmp_path):
    folder = tmp_path / "a_folder"
    folder.mkdir()
    assert files.unreadable(folder, IsADirectoryError(21, "Is a directory")) == (
        f"{folder} is a folder, not a file; give the path of the file itself")
    secret = tmp_path / "secret.json"
    secret.write_text("{}")
    secret.chmod(0o600)
    message = files.unreadable(secret, PermissionError(13, "Permission denied"))
    assert message.startswith(f"{secret} cannot be read: permission denied (the file belongs to ")
    assert "mode 0600" in message and f"`chmod a+r {secret}`" in message
    assert files.unreadable(tmp_path / "gone", OSError(5, "Input/output error")) == (
        f"{tmp_path / 'gone'} cannot be read: Input/output error")
