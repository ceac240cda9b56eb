"""A build with nothing changed skips Ploomber (helpers.app.pipeline.up_to_date), but never when
Ploomber would have run a task."""

from __future__ import annotations

import shutil

from helpers.app import pipeline
from helpers.core.settings import load_settings
from tests.reliability.conftest import HERE

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


def test_the_source_of_a_python_task_counts_wherever_its_module_is(project, tmp_path, monkeypatch):
    """The project root (HELPERS_ROOT) need not hold the code the tasks run (an installed package,
    the tests' small project): the fingerprint reads the modules pipeline.yaml names."""
    code = tmp_path / "code"
    code.mkdir()
    module = code / "noop_probe_tasks.py"
    shutil.copy(HERE / "project" / "tasks.py", module)
    spec = project.root / "pipeline.yaml"
    spec.write_text(spec.read_text().replace("tests.reliability.project.tasks.fit_final", "noop_probe_tasks.fit_final"))
    monkeypatch.syspath_prepend(str(code))
    settings = load_settings()
    before = pipeline.build_fingerprint(settings, [])
    assert pipeline.build_fingerprint(settings, []) == before
    module.write_text(module.read_text().replace("n=7", "n=8"))
    assert pipeline.build_fingerprint(settings, []) != before


def test_the_task_modules_are_read_from_the_spec(tmp_path):
    from pathlib import Path

    assert pipeline.task_modules(Path(pipeline.project_root() / "pipeline.yaml")) == ["helpers.app.tasks"]
    spec = tmp_path / "pipeline.yaml"
    (tmp_path / "eda.ipynb").write_text("{}")
    spec.write_text("tasks:\n  - source: eda.ipynb\n  - source: a.b.task\n    on_finish: c.check\n"
                    "    grid: {x: d.e::values, y: [1, 2]}\n  - just text\n")
    assert pipeline.task_modules(spec) == ["a.b", "c", "d.e"]  # the notebook file is not a module
    spec.write_text("tasks: [unclosed")
    assert pipeline.task_modules(spec) == []  # Ploomber says what is wrong with the spec
    assert pipeline.task_modules(tmp_path / "absent.yaml") == []
    assert pipeline._module_file("no_such_package_here.tasks") is None
