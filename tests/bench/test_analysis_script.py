"""bench/analysis_script.py: the pipeline as a plain script, with the parameters Ploomber injects."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

import analysis_script  # noqa: E402  (bench/analysis_script.py; tests/bench/__init__.py puts bench/ on sys.path)


#: A Python task of the small DAG below, in a module of its own (the script imports it).
SHOUT = """from pathlib import Path


def shout(product, upstream, suffix):
    text = Path(upstream["first"]["data"]).read_text()
    Path(str(product)).write_text(text.upper() + suffix)
"""


def notebook(path: Path, parameters: str, code: str) -> Path:
    cells = [nbformat.v4.new_code_cell(parameters, metadata={"tags": ["parameters"]}), nbformat.v4.new_code_cell(code)]
    nb = nbformat.v4.new_notebook(cells=cells, metadata={"kernelspec": {"name": "python3", "language": "python",
                                                                        "display_name": "Python 3"}})
    nbformat.write(nb, path)
    return path


def test_a_small_dag_runs_as_the_script_with_its_injected_parameters(tmp_path, monkeypatch, request):
    import importlib

    from ploomber import DAG
    from ploomber.products import File
    from ploomber.tasks import NotebookRunner, PythonCallable

    first = notebook(tmp_path / "first.ipynb", "upstream = None\nproduct = None\ngreeting = None",
                     "from pathlib import Path\n\nPath(product['data']).write_text(f'{greeting}, world')\ngreeting")
    dag = DAG()
    out = tmp_path / "out"
    task = NotebookRunner(first, {"nb": File(out / "first.ipynb"), "data": File(out / "data" / "first.txt")}, dag,
                          name="first", params={"greeting": "hello"})
    (tmp_path / "small_tasks.py").write_text(SHOUT)
    monkeypatch.syspath_prepend(str(tmp_path))
    shout = importlib.import_module("small_tasks").shout
    request.addfinalizer(lambda: sys.modules.pop("small_tasks", None))
    PythonCallable(shout, File(out / "more" / "shout.txt"), dag, name="shout", params={"suffix": "!"})
    task >> dag["shout"]
    dag.render(show_progress=False)

    made = analysis_script.script_from_dag(dag, "A small DAG")
    script = tmp_path / "script.py"
    script.write_text(made.text)
    done = subprocess.run([sys.executable, str(script)], cwd=tmp_path, capture_output=True, text=True, timeout=120,
                          env={"PYTHONPATH": str(tmp_path), "PATH": "/usr/bin:/bin"})

    assert done.returncode == 0, done.stderr
    assert (out / "data" / "first.txt").read_text() == "hello, world"
    assert (out / "more" / "shout.txt").read_text() == "HELLO, WORLD!"
    assert list(analysis_script.script_seconds(done.stdout)) == made.tasks == ["first", "shout"]
    assert not (out / "first.ipynb").exists()  # the script writes no executed notebook


@pytest.fixture(scope="module")
def pipeline_script(tmp_path_factory) -> tuple[analysis_script.Script, Path]:
    folder = tmp_path_factory.mktemp("script")
    made = analysis_script.pipeline_script({
        "HELPERS_PROFILE": "test", "HELPERS_PRODUCTS": str(folder / "products"),
        "HELPERS_REPORTS": str(folder / "reports"), "HELPERS_WAREHOUSE_PATH": str(folder / "w.duckdb"),
        "HELPERS_MLFLOW_DIR": str(folder / "mlflow")})
    return made, folder


def test_the_pipeline_script_runs_every_task_but_the_reports_in_the_build_order(pipeline_script):
    made, _ = pipeline_script
    order = made.tasks

    assert order[0] == "ingest" and set(order) >= {"data_quality", "eda", "hypothesis_tests", "model_comparison"}
    assert order.index("model_comparison") < order.index("fit_final") < order.index("register")
    assert order.index("experiments") < min(order.index(t) for t in order if t.startswith("bayesian_ab-"))
    assert [t for t in order if t.startswith("bayesian_ab-")] == ["bayesian_ab-checkout_flow",
                                                                  "bayesian_ab-pricing_page"]
    assert "reports" not in order and list(made.left_out) == ["reports"]
    assert "LEFT_OUT = {'reports': 'renders the executed notebooks to HTML" in made.text
    assert "('ingest', task_ingest)" in made.text


def test_the_pipeline_script_has_the_parameters_the_build_injects(pipeline_script):
    made, folder = pipeline_script
    text = made.text
    comparison = text[text.index("def task_model_comparison():"):text.index("def task_experiments():")]

    assert "# cell 1 (injected-parameters)" in comparison
    assert f'warehouse_path = "{folder / "w.duckdb"}"' in comparison and "daily_folds = 4" in comparison
    assert f'"selection": "{folder / "products" / "model" / "selection.json"}"' in comparison
    assert comparison.index("daily_folds = None") < comparison.index("daily_folds = 4")  # after the notebook's own
    fit_final = text[text.index("def task_fit_final():"):text.index("def task_bayesian_ab_checkout_flow():")]
    assert "fit_final_task(**{" in fit_final and f"'selection': '{folder / 'products' / 'model' / 'selection.json'}'" \
        in fit_final and "'profile': 'test'" in fit_final
