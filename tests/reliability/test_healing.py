"""Products that heal: a product that fails its check is made again by the next build."""

from __future__ import annotations

import pytest

from helpers.app import pipeline
from helpers.core.settings import load_settings
from helpers.forecast.artifact import ArtifactError, load_artifact


def ran(table) -> set[str]:
    return set(table.loc[table["ran"], "task"])


@pytest.mark.slow
def test_a_truncated_artifact_is_refused_then_rebuilt_by_the_next_build(project, capsys):
    pipeline.build(load_settings())
    artifact = project.products / "model" / "forecast_artifact.json"
    notebook = project.products / "summary.ipynb"
    artifact.write_bytes(artifact.read_bytes()[:200])  # a disk that filled up, a copy cut short
    with pytest.raises(ArtifactError, match="`make run`"):
        load_artifact(artifact)

    table = pipeline.build(load_settings())
    assert ran(table) == {"fit_final", "reports"}
    assert load_artifact(artifact)["selected_model"] == "naive"
    assert "removed it; this build makes it again (task fit_final)" in capsys.readouterr().err

    notebook.write_text(notebook.read_text()[:100])  # the same for an executed notebook
    assert ran(pipeline.build(load_settings())) == {"summary", "fit_final", "reports"}
    assert "summary of elecdemand" in notebook.read_text()


def test_reports_that_were_removed_are_published_again(project):
    pipeline.build(load_settings())
    folder = project.reports.resolve()
    project.reports.unlink()  # `make clean` removes the link; a scheduled run may have moved it
    assert ran(pipeline.build(load_settings())) == {"reports"}
    assert (project.reports / "index.html").exists() and not folder.exists()


def test_each_check_names_the_file_and_the_command_that_fixes_it(tmp_path):
    import nbformat

    from helpers.app.tasks import ProductError, check_artifact, check_comparison, check_notebook

    broken = tmp_path / "broken.json"
    broken.write_text('{"schema_version": 2, "mod')
    notebook = tmp_path / "good.ipynb"
    nbformat.write(nbformat.v4.new_notebook(), notebook)
    check_notebook({"nb": notebook})
    for check, product in [(check_artifact, broken), (check_notebook, {"nb": broken}),
                           (check_comparison, {"nb": notebook, "selection": broken})]:
        with pytest.raises(ProductError) as caught:
            check(product)
        assert caught.value.path == broken and str(broken) in str(caught.value) and "`make run`" in str(caught.value)
