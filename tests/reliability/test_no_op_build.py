"""A build with nothing changed skips Ploomber (helpers.app.pipeline.up_to_date), but never when
Ploomber would have run a task."""

from __future__ import annotations

from helpers.app import pipeline
from helpers.core.settings import load_settings

# The analysis cell, run by the build, edits the notebook's source as someone would while the build runs.
EDITS_ITSELF = '''import os
import nbformat
path = Path(os.environ["HELPERS_ROOT"], "notebooks", "summary.ipynb")
notebook = nbformat.read(path, as_version=4)
notebook.cells[-1].source = 'print("edited during the build", series_id)'
nbformat.write(notebook, path)
print("editing", series_id)'''


def test_a_notebook_edited_while_the_build_ran_is_run_by_the_next_build(project):
    project.write_notebook(EDITS_ITSELF)
    first = pipeline.build(load_settings())
    assert "summary" in set(first.loc[first["ran"], "task"])
    assert "edited during the build" in (project.root / "notebooks" / "summary.ipynb").read_text()

    assert pipeline.up_to_date(load_settings()) is None  # Ploomber recorded the source it ran, not the edit
    second = pipeline.build(load_settings())
    assert "summary" in set(second.loc[second["ran"], "task"])
    assert pipeline.up_to_date(load_settings()) is not None  # now nothing changed

