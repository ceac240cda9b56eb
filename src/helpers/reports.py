"""Render executed notebooks as HTML reports with an index page.

``quarto render`` (the project in ``_quarto.yml``) is used when the ``quarto`` binary is on
PATH; otherwise nbconvert writes the same pages into the same folder, so a run always
leaves a browsable ``reports/index.html``.
"""

from __future__ import annotations

import html
import shutil
import subprocess
from pathlib import Path

import nbformat

from helpers.paths import project_root


def notebook_title(notebook: nbformat.NotebookNode, default: str) -> str:
    """The first Markdown heading of a notebook, without the leading ``#``."""
    for cell in notebook.cells:
        if cell.cell_type == "markdown":
            for line in cell.source.splitlines():
                if line.startswith("#"):
                    return line.lstrip("#").strip()
    return default


def render_notebook(path: Path, out_dir: Path, name: str | None = None) -> tuple[Path, str]:
    """One executed notebook to ``out_dir/<name>.html`` (default: its stem) with code hidden; returns (file, title)."""
    from nbconvert import HTMLExporter

    notebook = nbformat.read(path, as_version=4)
    exporter = HTMLExporter(template_name="lab")
    exporter.exclude_input = True
    exporter.exclude_input_prompt = True
    exporter.exclude_output_prompt = True
    body, _ = exporter.from_notebook_node(notebook)
    target = out_dir / f"{name or path.stem}.html"
    target.write_text(body, encoding="utf-8")
    return target, notebook_title(notebook, path.stem)


def render_markdown(path: Path, out_dir: Path) -> tuple[Path, str]:
    """A Markdown page to ``out_dir/<stem>.html``; returns (file, title)."""
    from nbconvert.filters.markdown import markdown2html

    text = path.read_text(encoding="utf-8")
    title = next((line.lstrip("#").strip() for line in text.splitlines() if line.startswith("#")), path.stem)
    target = out_dir / f"{path.stem}.html"
    target.write_text(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head><meta charset=\"utf-8\">"
        f"<title>{html.escape(title)}</title>"
        "<style>body{max-width:48em;margin:2em auto;padding:0 1em;font-family:sans-serif;line-height:1.5}"
        "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.2em .5em}</style></head>\n"
        f"<body>\n{markdown2html(text)}\n</body>\n</html>\n",
        encoding="utf-8",
    )
    return target, title


def write_index(pages: list[tuple[Path, str]], index: Path) -> Path:
    """An ``index.html`` linking every page (relative links, so the folder can move)."""
    items = "\n".join(
        f'    <li><a href="{html.escape(page.relative_to(index.parent).as_posix())}">{html.escape(title)}</a></li>'
        for page, title in pages
    )
    index.write_text(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head><meta charset=\"utf-8\">"
        "<title>Demand analytics reports</title></head>\n<body>\n"
        "  <h1>Demand analytics reports</h1>\n  <ul>\n"
        f"{items}\n  </ul>\n</body>\n</html>\n",
        encoding="utf-8",
    )
    return index


def render_reports(notebooks: list[Path] | dict[str, Path], out_dir: Path, index: Path | None = None,
                   pages: list[Path] | None = None) -> Path:
    """Render Markdown ``pages`` and ``notebooks`` into ``out_dir``; returns the index page.

    ``notebooks`` maps page names to executed notebooks (a list uses the file stems).
    """
    if not isinstance(notebooks, dict):
        notebooks = {path.stem: path for path in notebooks}
    out_dir.mkdir(parents=True, exist_ok=True)
    index = index or out_dir / "index.html"
    quarto = shutil.which("quarto")
    if quarto:
        subprocess.run([quarto, "render", "--output-dir", str(out_dir)], cwd=project_root(), check=True)
        if index.exists():
            return index
    rendered = [render_markdown(path, out_dir) for path in pages or []]
    rendered += [render_notebook(path, out_dir, name) for name, path in notebooks.items()]
    return write_index(rendered, index)
