from __future__ import annotations

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

from helpers.reports import notebook_title, render_reports


def _notebook(path, title="# A title\n\ntext"):
    nb = new_notebook(cells=[new_markdown_cell(title), new_code_cell(
        "secret_code = 1", outputs=[new_output("execute_result", {"text/plain": "42"}, execution_count=1)])])
    nbformat.write(nb, path)
    return path


def test_title_is_first_heading():
    nb = new_notebook(cells=[new_markdown_cell("intro"), new_markdown_cell("## Second *title*")])
    assert notebook_title(nb, "fallback") == "Second *title*"
    assert notebook_title(new_notebook(), "fallback") == "fallback"


def test_render_writes_pages_without_code_and_an_index(tmp_path, monkeypatch):
    monkeypatch.setattr("shutil.which", lambda name: None)  # no quarto here: nbconvert path
    a = _notebook(tmp_path / "alpha.ipynb", "# Alpha <report>")
    b = _notebook(tmp_path / "beta.ipynb", "no heading")
    statement = tmp_path / "statement.md"
    statement.write_text("# The problem\n\n| a | b |\n| --- | --- |\n| 1 | 2 |\n")
    index = render_reports([a, b], tmp_path / "site", pages=[statement])
    html = index.read_text()
    assert html.index("statement.html") < html.index("alpha.html")
    assert "<table>" in (tmp_path / "site" / "statement.html").read_text()
    assert '<a href="alpha.html">Alpha &lt;report&gt;</a>' in html
    assert '<a href="beta.html">beta</a>' in html
    page = (tmp_path / "site" / "alpha.html").read_text()
    assert "42" in page and "secret_code" not in page
