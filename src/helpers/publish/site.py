"""Render the executed notebooks and the problem statement as a browsable website.

One layout whatever renders it: ``reports/index.html`` linking every page, and one page
per source, named after its pipeline task (``eda.html``, ``bayesian_ab-checkout_flow.html``,
``problem_statement.html``). Every page carries the run's provenance (run time, git
commit, data hash, parameters, package versions): a one-line stamp at the top and the full
record, folded, at the bottom.

When the ``quarto`` binary is on PATH, the pages are assembled in a staging folder (the
project's ``_quarto.yml``, a generated ``index.md``, the notebooks under their page names
and the provenance fragment) and ``quarto render`` builds the site there (code folded, a
table of contents, the fragment after every page body). Otherwise nbconvert renders the
same pages with code hidden, a table of contents built from the headings, plotly figures
embedded (interactive, no network needed) and the same provenance block.
"""

from __future__ import annotations

import html
import re
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import nbformat

from helpers.core.paths import project_root

GROUPS = {"bayesian_ab": "A/B experiments"}
DEFAULT_GROUP = "Demand forecasting"
STYLE = ("<style>.run-stamp{font:13px sans-serif;color:#555;background:#f6f6f6;padding:.4em .8em;margin:0 0 1em}"
         ".run-provenance{font:13px sans-serif;margin:2em 0;padding:1em;border-top:1px solid #ccc}"
         ".run-provenance table{border-collapse:collapse}.run-provenance td{border:1px solid #ddd;padding:.1em .5em;"
         "vertical-align:top;word-break:break-all}nav.page-toc{font:14px sans-serif;margin:0 0 1.5em}"
         "nav.page-toc ul{margin:.2em 0}.run-stamp a,nav.page-toc a{color:#0645ad;text-decoration:underline}"
         # the site's navigation: a sidebar on a wide screen, a block above the page on a narrow one
         "nav.site-nav{font:14px/1.4 sans-serif;background:#f4f5f7;border-right:1px solid #ddd;padding:1em;"
         "box-sizing:border-box}nav.site-nav ul{list-style:none;margin:.2em 0 .8em;padding:0}"
         "nav.site-nav li{margin:.15em 0}nav.site-nav a{color:#0645ad;text-decoration:none}"
         "nav.site-nav a:hover{text-decoration:underline}nav.site-nav .nav-heading{margin:.6em 0 .1em;color:#555;"
         "font-size:12px;text-transform:uppercase;letter-spacing:.04em}nav.site-nav .site-home{font-weight:bold;"
         "font-size:15px}nav.site-nav a.current{font-weight:bold;color:#000;border-left:3px solid #0645ad;"
         "padding-left:.4em}nav.site-nav .unpublished{color:#777}"
         "@media (min-width:900px){nav.site-nav{position:fixed;top:0;left:0;bottom:0;width:16em;overflow-y:auto}"
         "body{margin-left:17em!important}}"
         ".findings section{margin:.6em 0 1em}.findings h3{margin:.2em 0;font-size:1.05em}.findings p{margin:.2em 0}"
         "</style>")


def notebook_title(notebook: nbformat.NotebookNode, default: str) -> str:
    """The first Markdown heading of a notebook, without the leading ``#``."""
    for cell in notebook.cells:
        if cell.cell_type == "markdown":
            for line in cell.source.splitlines():
                if line.startswith("#"):
                    return line.lstrip("#").strip()
    return default


def markdown_title(path: Path) -> str:
    text = path.read_text(encoding="utf-8")
    return next((line.lstrip("#").strip() for line in text.splitlines() if line.startswith("#")), path.stem)


# -- provenance ----------------------------------------------------------------------------------------------
def provenance_html(stamp: dict[str, Any] | None) -> tuple[str, str]:
    """(top stamp, bottom block) for a :func:`helpers.core.provenance.stamp` record; empty without one."""
    if not stamp:
        return "", ""
    sha = stamp.get("data_sha256") or "n/a"
    commit = stamp.get("git_commit") or "unknown"
    profile = stamp.get("parameters", {}).get("profile", "")
    top = (f'<div class="run-stamp">Run {html.escape(stamp["run_time_utc"])} UTC &middot; profile '
           f'{html.escape(profile)} &middot; commit <code>{html.escape(commit[:12])}</code> &middot; data SHA-256 '
           f'<code>{html.escape(sha[:12])}</code> &middot; <a href="#run-provenance">provenance</a></div>')

    def rows(items: dict[str, Any]) -> str:
        return "".join(f"<tr><td>{html.escape(str(k))}</td><td>{html.escape(str(v))}</td></tr>" for k, v in items.items())

    basics = {"run time (UTC)": stamp["run_time_utc"], "git commit": commit,
              "data file": stamp.get("data_file") or "n/a", "data SHA-256": sha}
    bottom = (f'<section class="run-provenance" id="run-provenance"><h2>Provenance of this run</h2>'
              f"<table>{rows(basics)}</table>"
              f"<details><summary>Parameters</summary><table>{rows(stamp.get('parameters', {}))}</table></details>"
              f"<details><summary>Package versions</summary><table>{rows(stamp.get('packages', {}))}</table>"
              "</details></section>")
    return top, bottom


def _decorate(page: str, top: str, bottom: str, toc: str = "", nav: str = "") -> str:
    """Add the style, the site's navigation, the stamp and table of contents at the top and the
    provenance at the bottom."""
    page = page.replace("</head>", STYLE + "</head>", 1)
    page = re.sub(r"(<body[^>]*>)", lambda m: m.group(1) + nav, page, count=1)
    page = re.sub(r"(<body[^>]*>\s*(?:<nav class=\"site-nav\".*?</nav>)?\s*(?:<main>)?)",
                  lambda m: m.group(1) + top + toc, page, count=1, flags=re.DOTALL)
    return page.replace("</body>", bottom + "</body>", 1) if "</main>" not in page else \
        page.replace("</main>", bottom + "</main>", 1)


def table_of_contents(body: str) -> str:
    """A nested list of the page's level-2 and level-3 headings (nbconvert gives them ids)."""
    items = []
    for level, anchor, text in re.findall(r'<h([23]) id="([^"]+)">(.*?)(?:<a class="anchor-link"|</h[23]>)', body):
        label = re.sub(r"<[^>]+>", "", text).strip()
        if anchor != "Provenance":
            items.append((int(level), anchor, label))
    if not items:
        return ""
    lines = []
    for level, anchor, label in items:
        indent = ' style="margin-left:1.5em"' if level == 3 else ""
        lines.append(f'<li{indent}><a href="#{html.escape(anchor)}">{label}</a></li>')
    return f'<nav class="page-toc"><strong>Contents</strong><ul>{"".join(lines)}</ul></nav>'


# -- navigation ----------------------------------------------------------------------------------------------
#: The landing page's entry in every page's navigation.
HOME = ("index", "Findings")


def navigation(sections: list[tuple[str, list]], current: str | None = None, prefix: str = "",
               home: str = HOME[1]) -> str:
    """Every page of the site as a sidebar: the landing page first, then ``sections``
    ((heading, [(page name without ``.html``, title)])); ``current`` is marked (``aria-current``).
    ``prefix`` is the way from the page to the site's folder (``../`` for a page in a subfolder).
    An entry whose name is ``None`` (a site not published yet) is shown without a link;
    ``home`` is the landing page's title."""

    def entry(name: str | None, title: str) -> str:
        if name is None:
            return f'<li><span class="unpublished">{html.escape(title)}</span></li>'
        mark = ' class="current" aria-current="page"' if name == current else ""
        return f'<li><a href="{html.escape(prefix + name)}.html"{mark}>{html.escape(title)}</a></li>'

    parts = [f'<nav class="site-nav" aria-label="All pages"><a class="site-home" href="{prefix}index.html">'
             "Demand analytics</a>", f"<ul>{entry(HOME[0], home)}</ul>"]
    for heading, items in sections:
        parts.append(f'<p class="nav-heading">{html.escape(heading)}</p><ul>'
                     + "".join(entry(name, title) for name, title in items) + "</ul>")
    return "".join(parts) + "</nav>"


def add_navigation(page: str, nav: str) -> str:
    """A page made elsewhere (an intake file's page) with the site's navigation and its style."""
    page = page.replace("</head>", STYLE + "</head>", 1) if "</head>" in page else STYLE + page
    return re.sub(r"(<body[^>]*>)", lambda m: m.group(1) + nav, page, count=1)


# -- nbconvert -----------------------------------------------------------------------------------------------
def render_notebook(path: Path, out_dir: Path, name: str | None = None,
                    stamp: dict[str, Any] | None = None, nav: str = "") -> tuple[Path, str]:
    """One executed notebook to ``out_dir/<name>.html`` (default: its stem) with code hidden; returns (file, title)."""
    from nbconvert import HTMLExporter

    notebook = nbformat.read(path, as_version=4)
    for cell in notebook.cells:  # ploomber-engine leaves an empty result after a figure it displayed
        if cell.cell_type == "code":
            cell.outputs = [out for out in cell.outputs
                            if out.output_type not in ("execute_result", "display_data") or out.get("data")]
    exporter = HTMLExporter(template_name="lab")
    exporter.exclude_input = True
    exporter.exclude_input_prompt = True
    exporter.exclude_output_prompt = True
    body, _ = exporter.from_notebook_node(notebook)
    top, bottom = provenance_html(stamp)
    target = out_dir / f"{name or path.stem}.html"
    target.write_text(_decorate(body, top, bottom, table_of_contents(body), nav), encoding="utf-8")
    return target, notebook_title(notebook, path.stem)


def _plain_page(title: str, body: str, top: str, bottom: str, nav: str = "") -> str:
    return _decorate(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head><meta charset=\"utf-8\">"
        f"<title>{html.escape(title)}</title>"
        "<style>body{max-width:48em;margin:2em auto;padding:0 1em;font-family:sans-serif;line-height:1.5}"
        "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.2em .5em}</style></head>\n"
        f"<body>\n{body}\n</body>\n</html>\n", top, bottom, nav=nav)


def render_markdown(path: Path, out_dir: Path, stamp: dict[str, Any] | None = None, nav: str = "") -> tuple[Path, str]:
    """A Markdown page to ``out_dir/<stem>.html``; returns (file, title)."""
    from nbconvert.filters.markdown import markdown2html

    title = markdown_title(path)
    target = out_dir / f"{path.stem}.html"
    target.write_text(_plain_page(title, markdown2html(path.read_text(encoding="utf-8")), *provenance_html(stamp),
                                  nav=nav), encoding="utf-8")
    return target, title


def index_sections(pages: list[tuple[str, str]], notebooks: list[tuple[str, str]]) -> list[tuple[str, list]]:
    """(heading, [(page name, title)]) in reading order: background, analyses, experiments.

    Pages of one notebook run over a grid (``bayesian_ab-<id>``) share a title: the grid
    value is added to tell them apart.
    """
    sections: dict[str, list[tuple[str, str]]] = {"Background": list(pages)}
    for name, title in notebooks:
        group, _, value = name.partition("-")
        label = f"{title}: {value}" if value else title
        sections.setdefault(GROUPS.get(group, DEFAULT_GROUP), []).append((name, label))
    return [(heading, items) for heading, items in sections.items() if items]


def _link(name: str | None, title: str) -> str:
    if name is None:
        return f'<span class="unpublished">{html.escape(title)}</span>'
    return f'<a href="{html.escape(name)}.html">{html.escape(title)}</a>'


def findings_html(findings: list[Any]) -> str:
    """The landing page's findings (:class:`helpers.app.findings.Finding`: topic, text, link),
    each with a link to its report."""
    if not findings:
        return ""
    items = []
    for finding in findings:
        more = f' <a href="{html.escape(finding.link)}">Read the report</a>' if finding.link else ""
        text = re.sub(r"`([^`]+)`", r"<code>\1</code>", html.escape(finding.text))  # `make operate`
        items.append(f'  <section><h3>{html.escape(finding.topic)}</h3><p>{text}{more}</p></section>')
    return '  <div class="findings">\n  <h2>Findings</h2>\n' + "\n".join(items) + "\n  </div>"


def write_index(sections: list[tuple[str, list]], index: Path, stamp: dict[str, Any] | None = None,
                notes: list[str] | None = None, findings: list[Any] | None = None, title: str | None = None,
                home: str = HOME[1]) -> Path:
    """An ``index.html`` stating the ``findings`` and linking every page (relative links, so the
    folder can move), with the site's navigation (``home``: the index's title in it); ``notes``
    are sentences shown under the title."""
    title = title or "Demand analytics reports"
    parts = [f'  <p class="run-note">{html.escape(note)}</p>' for note in notes or []]
    if findings:
        parts.append(findings_html(findings))
        parts.append("  <h2>All reports</h2>" if sections else "")
    for heading, items in sections:
        links = "\n".join(f"    <li>{_link(name, label)}</li>" for name, label in items)
        tag = "h3" if findings else "h2"
        parts.append(f"  <{tag}>{html.escape(heading)}</{tag}>\n  <ul>\n{links}\n  </ul>")
    body = f"  <h1>{html.escape(title)}</h1>\n" + "\n".join(parts)
    index.write_text(_plain_page(title, body, *provenance_html(stamp), nav=navigation(sections, "index", home=home)),
                     encoding="utf-8")
    return index


# -- quarto --------------------------------------------------------------------------------------------------
def quarto_project(notebooks: dict[str, Path], pages: list[Path], stamp: dict[str, Any] | None,
                   staging: Path, more: list[tuple[str, list]] | None = None, notes: list[str] | None = None,
                   findings: list[Any] | None = None) -> Path:
    """The staging folder ``quarto render`` builds: same page names as the nbconvert path."""
    staging.mkdir(parents=True, exist_ok=True)
    top, bottom = provenance_html(stamp)
    (staging / "_stamp.html").write_text(STYLE + top, encoding="utf-8")
    (staging / "_provenance.html").write_text(bottom, encoding="utf-8")
    for page in pages:
        shutil.copy(page, staging / page.name)
    titles = []
    for name, path in notebooks.items():
        shutil.copy(path, staging / f"{name}.ipynb")
        titles.append((name, notebook_title(nbformat.read(path, as_version=4), name)))
    sections = index_sections([(p.stem, markdown_title(p)) for p in pages], titles) + (more or [])
    sources = {p.stem: p.name for p in pages} | {name: f"{name}.ipynb" for name in notebooks}
    (staging / "_quarto.yml").write_text(quarto_config(sections, sources), encoding="utf-8")
    lines = ["---", 'title: "Demand analytics reports"', "---", ""] + [f"{note}\n" for note in notes or []]
    if findings:
        lines += ["## Findings", ""]
        for finding in findings:
            more = f" [Read the report]({finding.link})" if finding.link else ""
            lines += [f"### {finding.topic}", "", f"{finding.text}{more}", ""]
        lines += ["## All reports", ""]
    level = "###" if findings else "##"
    for heading, items in sections:
        lines += [f"{level} {heading}", ""] + [f"- [{title}]({name}.html)" if name else f"- {title}"
                                               for name, title in items] + [""]
    (staging / "index.md").write_text("\n".join(lines), encoding="utf-8")
    return staging


def quarto_config(sections: list[tuple[str, list]], sources: dict[str, str]) -> str:
    """The project's ``_quarto.yml`` with the sidebar the nbconvert pages have: the landing page
    first, then each section's pages in the same order under the same headings (``sources``:
    page name -> the file Quarto renders it from; a link to a sibling site stays a link, one not
    published yet is left out)."""
    import yaml

    config = yaml.safe_load((project_root() / "_quarto.yml").read_text(encoding="utf-8"))
    contents: list[Any] = [{"href": "index.md", "text": HOME[1]}]
    for heading, items in sections:
        entries = [{"href": sources.get(name, f"{name}.html"), "text": title} for name, title in items if name]
        if entries:
            contents.append({"section": heading, "contents": entries})
    config.setdefault("website", {}).setdefault("sidebar", {})["contents"] = contents
    return yaml.safe_dump(config, sort_keys=False, allow_unicode=True)


def render_reports(notebooks: list[Path] | dict[str, Path], out_dir: Path, index: Path | None = None,
                   pages: list[Path] | None = None, stamp: dict[str, Any] | None = None,
                   more: list[tuple[str, list]] | None = None, notes: list[str] | None = None,
                   findings: list[Any] | None = None) -> Path:
    """Render Markdown ``pages`` and ``notebooks`` into ``out_dir``; returns the index page.

    ``notebooks`` maps page names to executed notebooks (a list uses the file stems);
    ``stamp`` is the run's :func:`helpers.core.provenance.stamp`, shown on every page;
    ``more`` adds index sections (heading, [(link without ``.html``, title)]) after the pages,
    for sites published beside this one (:func:`site_link`); ``notes`` are sentences under the
    index's title (which registry version the run made); ``findings`` (topic, text, link) are
    stated at the top of the index. Every page carries the navigation of the whole site.
    """
    if not isinstance(notebooks, dict):
        notebooks = {path.stem: path for path in notebooks}
    pages = pages or []
    out_dir.mkdir(parents=True, exist_ok=True)
    index = index or out_dir / "index.html"
    quarto = shutil.which("quarto")
    if quarto:
        with tempfile.TemporaryDirectory(prefix="quarto-site-") as tmp:
            staging = quarto_project(notebooks, pages, stamp, Path(tmp), more, notes, findings)
            subprocess.run([quarto, "render", str(staging), "--output-dir", str(out_dir.resolve())], check=True)
        return index
    titles = [(name, notebook_title(nbformat.read(path, as_version=4), name)) for name, path in notebooks.items()]
    sections = index_sections([(path.stem, markdown_title(path)) for path in pages], titles) + (more or [])
    for path in pages:
        render_markdown(path, out_dir, stamp, navigation(sections, path.stem))
    for name, path in notebooks.items():
        render_notebook(path, out_dir, name, stamp, navigation(sections, name))
    return write_index(sections, index, stamp, notes, findings)


def monitoring_site(reports: str | Path) -> Path:
    """Where the operating cycle publishes its monitoring site: ``monitoring`` beside ``reports``."""
    return Path(reports).with_name("monitoring")


def site_link(site: str | Path, title: str, made_by: str) -> tuple[str, str]:
    """An index entry for the site published at the link ``site``, a sibling of the one being
    rendered (both links sit in one folder, so ``../<name>/index.html`` resolves from either the
    link or the dated folder behind it). A site not published yet has no link (``None``) and
    says that ``made_by`` makes it."""
    site = Path(site)
    if (site / "index.html").exists():
        return f"../{site.name}/index", title
    return None, f"{title} (not published yet: {made_by} makes it)"
