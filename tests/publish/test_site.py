from __future__ import annotations

import re
import stat

import nbformat
import yaml
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

from helpers.core.provenance import stamp
from helpers.app.findings import Finding
from helpers.publish.site import add_navigation, navigation, notebook_title, quarto_project, render_reports, site_link

STAMP = stamp({"profile": "test", "freq": "30min"}, None) | {"data_sha256": "ab" * 32}


def _notebook(path, title="# A title\n\ntext"):
    nb = new_notebook(cells=[new_markdown_cell(title), new_markdown_cell("## First part\n\nx"),
                             new_markdown_cell("### A detail"), new_code_cell(
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
    b = _notebook(tmp_path / "beta-7.ipynb", "no heading")
    statement = tmp_path / "statement.md"
    statement.write_text("# The problem\n\n| a | b |\n| --- | --- |\n| 1 | 2 |\n")
    index = render_reports({"alpha": a, "bayesian_ab-beta": b}, tmp_path / "site", pages=[statement])
    html = index.read_text()
    body = html.split("</nav>", 1)[1]  # after the site's navigation
    assert re.findall(r'href="([^"#]+)"', body) == ["statement.html", "alpha.html", "bayesian_ab-beta.html"]
    assert html.index("<h2>Background</h2>") < html.index("<h2>Demand forecasting</h2>") \
        < html.index("<h2>A/B experiments</h2>")
    assert "<table>" in (tmp_path / "site" / "statement.html").read_text()
    assert '<a href="alpha.html">Alpha &lt;report&gt;</a>' in html
    assert '<a href="bayesian_ab-beta.html">First part: beta</a>' in html  # the grid value tells pages apart
    page = (tmp_path / "site" / "alpha.html").read_text()
    assert "42" in page and "secret_code" not in page
    assert not (tmp_path / "site" / "beta-7.html").exists()


def test_every_page_carries_the_run_provenance_and_notebooks_a_toc(tmp_path, monkeypatch):
    monkeypatch.setattr("shutil.which", lambda name: None)
    statement = tmp_path / "statement.md"
    statement.write_text("# The problem\n")
    render_reports([_notebook(tmp_path / "alpha.ipynb")], tmp_path / "site", pages=[statement], stamp=STAMP)
    for name in ("index", "statement", "alpha"):
        page = (tmp_path / "site" / f"{name}.html").read_text()
        assert page.count('class="run-stamp"') == 1 and page.count('id="run-provenance"') == 1, name
        assert STAMP["data_sha256"] in page and STAMP["git_commit"] in page and "<td>freq</td><td>30min</td>" in page
        assert f"<td>pandas</td><td>{STAMP['packages']['pandas']}</td>" in page
    page = (tmp_path / "site" / "alpha.html").read_text()
    toc = re.search(r'<nav class="page-toc">.*?</nav>', page).group(0)
    assert re.findall(r'href="#([^"]+)"', toc) == ["First-part", "A-detail"]
    assert 'id="First-part"' in page


def test_quarto_gets_the_same_pages_under_the_same_names(tmp_path, monkeypatch):
    a = _notebook(tmp_path / "bayesian_ab-x-0.ipynb", "# Bayesian A/B analysis")
    statement = tmp_path / "problem_statement.md"
    statement.write_text("# The problem\n")
    staging = quarto_project({"bayesian_ab-x": a}, [statement], STAMP, tmp_path / "staging")
    assert sorted(p.name for p in staging.iterdir()) == [
        "_provenance.html", "_quarto.yml", "_stamp.html", "bayesian_ab-x.ipynb", "index.md", "problem_statement.md"]
    index = (staging / "index.md").read_text()
    assert "- [The problem](problem_statement.html)" in index
    assert "## A/B experiments\n\n- [Bayesian A/B analysis: x](bayesian_ab-x.html)" in index
    assert STAMP["data_sha256"] in (staging / "_provenance.html").read_text()
    config = (staging / "_quarto.yml").read_text()
    assert "include-after-body: _provenance.html" in config and "code-fold: true" in config
    sidebar = yaml.safe_load(config)["website"]["sidebar"]  # the nbconvert pages' navigation
    assert sidebar["style"] == "docked" and sidebar["contents"] == [
        {"href": "index.md", "text": "Findings"},
        {"section": "Background", "contents": [{"href": "problem_statement.md", "text": "The problem"}]},
        {"section": "A/B experiments", "contents": [{"href": "bayesian_ab-x.ipynb",
                                                     "text": "Bayesian A/B analysis: x"}]}]

    # With a quarto binary on PATH, render_reports hands it the staging folder and the output folder.
    fake = tmp_path / "bin" / "quarto"
    fake.parent.mkdir()
    fake.write_text('#!/bin/sh\n# quarto render <dir> --output-dir <out>\nls "$2" > "$4/index.html"\n')
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{fake.parent}:/usr/bin:/bin")
    index_page = render_reports({"bayesian_ab-x": a}, tmp_path / "site", pages=[statement], stamp=STAMP)
    assert "bayesian_ab-x.ipynb" in index_page.read_text().split()


def _nav_links(page):
    nav = re.search(r'<nav class="site-nav".*?</nav>', page, flags=re.DOTALL).group(0)
    return re.findall(r'href="([^"]+)"', nav), re.findall(r'href="([^"]+)" class="current" aria-current="page"', nav)


def test_every_page_has_the_navigation_of_the_whole_site_with_itself_marked(tmp_path, monkeypatch):
    monkeypatch.setattr("shutil.which", lambda name: None)
    statement = tmp_path / "statement.md"
    statement.write_text("# The problem\n")
    render_reports({"alpha": _notebook(tmp_path / "alpha.ipynb"), "bayesian_ab-x": _notebook(tmp_path / "x.ipynb")},
                   tmp_path / "site", pages=[statement], stamp=STAMP,
                   more=[("Operations", [site_link(tmp_path / "monitoring", "Monitoring", "`make operate`")])])
    for name in ("index", "statement", "alpha", "bayesian_ab-x"):
        page = (tmp_path / "site" / f"{name}.html").read_text()
        links, current = _nav_links(page)
        assert links == ["index.html", "index.html", "statement.html", "alpha.html", "bayesian_ab-x.html"], name
        assert current == [f"{name}.html"], name
        assert "Monitoring (not published yet: `make operate` makes it)</span>" in page  # no link to nothing
        assert page.index('class="site-nav"') < page.index('class="run-stamp"')


def test_navigation_of_a_page_in_a_subfolder_and_of_a_page_made_elsewhere():
    nav = navigation([("Files", [("files/a", "A <file>")]), ("Analysis", [(None, "Reports (not yet)")])],
                     "files/a", prefix="../", home="Overview")
    assert '<a href="../index.html" class="current"' not in nav and '>Overview</a>' in nav
    assert '<a href="../files/a.html" class="current" aria-current="page">A &lt;file&gt;</a>' in nav
    page = add_navigation("<html><head><title>t</title></head><body><h1>x</h1></body></html>", nav)
    assert page.index("<style>") < page.index("</head>") and page.index(nav) == page.index("<body>") + len("<body>")
    assert add_navigation("<body>bare</body>", nav).startswith("<style>")


def test_the_landing_page_states_the_findings_each_linked(tmp_path, monkeypatch):
    monkeypatch.setattr("shutil.which", lambda name: None)
    found = [Finding("Forecast model", "ets was selected: RMSE 13.9 <ratio 0.647>.", "alpha.html"),
             Finding("Monitoring", "No operating cycle has run yet: `make operate` monitors it.", None)]
    index = render_reports({"alpha": _notebook(tmp_path / "alpha.ipynb")}, tmp_path / "site", findings=found)
    html = index.read_text()
    findings = html[html.index("<h2>Findings</h2>"):html.index("<h2>All reports</h2>")]
    assert ('<h3>Forecast model</h3><p>ets was selected: RMSE 13.9 &lt;ratio 0.647&gt;. '
            '<a href="alpha.html">Read the report</a></p>') in findings
    assert "<p>No operating cycle has run yet: <code>make operate</code> monitors it.</p>" in findings
    assert "<h3>Demand forecasting</h3>" in html  # the page list, one level down


def test_quarto_index_states_the_findings_too(tmp_path):
    a = _notebook(tmp_path / "alpha.ipynb")
    found = [Finding("Hypotheses", "5 of 7 rejected.", "hypothesis_tests.html"),
             Finding("Monitoring", "None ran.", None)]
    staging = quarto_project({"alpha": a}, [], STAMP, tmp_path / "staging",
                             more=[("Operations", [(None, "Monitoring (not published yet)")])], findings=found)
    index = (staging / "index.md").read_text()
    assert "## Findings\n\n### Hypotheses\n\n5 of 7 rejected. [Read the report](hypothesis_tests.html)" in index
    assert "### Monitoring\n\nNone ran.\n" in index and "## All reports" in index
    assert "### Operations\n\n- Monitoring (not published yet)" in index
