"""The command line: python -m helpers.ab."""

from __future__ import annotations

from helpers.ab import __main__ as ab_cli
from tests.ab.builders import file_rows


def test_command_line_loads_and_refuses(tmp_path, clean_env, monkeypatch, capsys):
    monkeypatch.setenv("HELPERS_WAREHOUSE_PATH", str(tmp_path / "w.duckdb"))
    good = tmp_path / "upload.csv"
    file_rows().to_csv(good, index=False)
    plan = tmp_path / "plans.yaml"
    plan.write_text("e1:\n  allocation: {control: 0.5, treat: 0.5}\n")
    assert ab_cli.main(["load", str(good), "--plan", str(plan), "--control", "e1=treat"]) == 0
    assert "9 quarantined" in capsys.readouterr().out
    assert ab_cli.main(["load", str(good), "--control", "e1"]) == 2
    assert "must be EXPERIMENT=VARIANT" in capsys.readouterr().err
    bad = tmp_path / "bad.csv"
    file_rows().drop(columns="converted").to_csv(bad, index=False)
    assert ab_cli.main(["load", str(bad)]) == 2
    assert "missing required columns ['converted']" in capsys.readouterr().err
    monkeypatch.setenv("HELPERS_AB_SCALE", "0.05")
    assert ab_cli.main(["generate"]) == 0


def test_unreadable_inputs_are_refused_with_exit_2_and_a_sentence(tmp_path, clean_env, monkeypatch, capsys):
    """A plan path that is a folder raised IsADirectoryError; a truncated upload EOFError."""
    from tests.support import UNREADABLE_FILES

    monkeypatch.setenv("HELPERS_WAREHOUSE_PATH", str(tmp_path / "w.duckdb"))
    good = tmp_path / "upload.csv"
    file_rows().to_csv(good, index=False)
    assert ab_cli.main(["load", str(good), "--plan", str(tmp_path)]) == 2
    assert capsys.readouterr().err == (f"refused: plan file {tmp_path} is a folder, not a file; give the path of the "
                                       "file itself\n")
    truncated = UNREADABLE_FILES / "truncated.csv.gz"
    assert ab_cli.main(["load", str(truncated)]) == 2
    assert capsys.readouterr().err.startswith(f"refused: {truncated}: the gzip-compressed data is damaged")
