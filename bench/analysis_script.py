"""The pipeline's analysis as one plain Python script: no kernel, no papermill, no Ploomber.

``bench/run.py --only script_ratio`` times it against ``make run`` (issue 14: the cost of the
notebooks). The script is made from the pipeline's own DAG (:func:`helpers.app.pipeline.make_dag`,
rendered with the current settings), so it runs what a build runs, in the build's order:

- each notebook task becomes a function holding the notebook's code cells, its ``parameters``
  cell followed by the ``injected-parameters`` cell Ploomber renders into it (the same values a
  build injects: the settings, ``upstream`` and ``product`` paths);
- each Python task becomes a call of its function (``helpers.app.tasks.*``) with the params
  Ploomber would pass, products and upstream as plain paths;
- the ``reports`` task (:func:`helpers.app.tasks.render_task`) is left out: it renders executed
  notebooks to HTML, and the script executes none (:data:`LEFT_OUT`).

What a cell's last expression shows in a notebook (a table, a figure) is computed and dropped:
nothing is rendered, serialised or written but the products the code itself writes. The script
prints each task's seconds as one JSON line starting with ``script-seconds:``.

    PYTHONPATH=src python bench/analysis_script.py /tmp/analysis.py [--profile test]
    python /tmp/analysis.py
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import json
import os
import sys
import textwrap
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

os.environ.setdefault("PLOOMBER_STATS_ENABLED", "false")

#: Function tasks the script leaves out, by function, with the reason.
LEFT_OUT = {"helpers.app.tasks.render_task": "renders the executed notebooks to HTML; the script executes none"}
#: The line the script prints its timings on.
MARKER = "script-seconds: "


@contextlib.contextmanager
def environment(overrides: Mapping[str, str | None]) -> Iterator[None]:
    """``os.environ`` with ``overrides`` (``None`` removes a variable) for the block."""
    previous = dict(os.environ)
    for key, value in overrides.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = str(value)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(previous)


def task_params(task: Any) -> dict[str, Any]:
    """The params Ploomber passes a task, with ``product`` and ``upstream`` as plain paths."""
    from ploomber.sources.notebooksource import json_serializable_params

    return json_serializable_params(task.params)


def _literal(value: Any) -> str:
    """``value`` as Python source that evaluates back to it (checked)."""
    text = repr(value)
    if ast.literal_eval(text) != value:
        raise ValueError(f"cannot write {value!r} as a Python literal")
    return text


def _identifier(name: str) -> str:
    """The script's function for task ``name``."""
    return "task_" + "".join(c if c.isalnum() else "_" for c in name)


def _product_dirs(params: dict[str, Any]) -> list[str]:
    """Folders of a task's product files, made before it runs (as Ploomber makes them)."""
    product = params["product"]
    files = product.values() if isinstance(product, dict) else [product]
    return sorted({str(Path(f).parent) for f in files})


def notebook_function(name: str, task: Any) -> str:
    """A function running the rendered notebook's code cells, injected parameters included."""
    cells = [cell for cell in task.source.nb_obj_rendered.cells if cell.cell_type == "code" and cell.source.strip()]
    if not any("injected-parameters" in cell.metadata.get("tags", []) for cell in cells):
        raise ValueError(f"task {name}: the rendered notebook has no injected-parameters cell")
    body = [f"_make_folders({_literal(_product_dirs(task_params(task)))})"]
    for index, cell in enumerate(cells):
        tags = cell.metadata.get("tags", [])
        body += ["", f"# cell {index}" + (f" ({', '.join(tags)})" if tags else ""), cell.source.rstrip()]
    text = "\n".join(body)
    compile(text, f"<{name}>", "exec")
    return f"def {_identifier(name)}():\n    \"\"\"Notebook {task.source.loc}.\"\"\"\n" + textwrap.indent(text, "    ")


def callable_function(name: str, task: Any) -> str:
    """A function calling the task's Python function with the params Ploomber passes it."""
    fn = task.source.primitive
    params = task_params(task)
    return "\n".join([
        f"def {_identifier(name)}():",
        f"    \"\"\"Task {fn.__module__}.{fn.__qualname__}.\"\"\"",
        f"    from {fn.__module__} import {fn.__qualname__}",
        "",
        f"    _make_folders({_literal(_product_dirs(params))})",
        f"    {fn.__qualname__}(**{_literal(params)})",
    ])


@dataclass(frozen=True)
class Script:
    """A script's source, the tasks it runs (in order) and those it leaves out, with why."""

    text: str
    tasks: list[str]
    left_out: dict[str, str]


def script_from_dag(dag: Any, title: str = "") -> Script:
    """The script of a rendered Ploomber DAG: one function per task, run in the DAG's order."""
    from ploomber.tasks import NotebookRunner, PythonCallable

    functions, order, left_out = [], [], {}
    for name, task in dag.items():
        if isinstance(task, NotebookRunner):
            functions.append(notebook_function(name, task))
        elif isinstance(task, PythonCallable):
            fn = task.source.primitive
            dotted = f"{fn.__module__}.{fn.__qualname__}"
            if dotted in LEFT_OUT:
                left_out[name] = LEFT_OUT[dotted]
                continue
            functions.append(callable_function(name, task))
        else:
            raise TypeError(f"task {name}: a {type(task).__name__} task; the script builder knows notebooks and "
                            "Python functions")
        order.append(name)
    body = "\n\n\n".join(functions)
    tasks = ",\n    ".join(f"({name!r}, {_identifier(name)})" for name in order)
    text = f'''"""{title or "A Ploomber DAG"} as a plain script (bench/analysis_script.py).

Left out: {json.dumps(left_out) if left_out else "nothing"}.
"""

import json
import time
from pathlib import Path


def _make_folders(folders: list[str]) -> None:
    """The folders of a task's products, made before it runs (as Ploomber makes them)."""
    for folder in folders:
        Path(folder).mkdir(parents=True, exist_ok=True)


{body}


TASKS = [
    {tasks},
]
LEFT_OUT = {_literal(left_out)}


def main() -> None:
    seconds = {{}}
    for name, run in TASKS:
        started = time.perf_counter()
        run()
        seconds[name] = time.perf_counter() - started
    print({MARKER!r} + json.dumps(seconds), flush=True)


if __name__ == "__main__":
    main()
'''
    compile(text, "<analysis script>", "exec")
    return Script(text, order, left_out)


def pipeline_script(overrides: Mapping[str, str | None] = {}) -> Script:  # noqa: B006 (read only)
    """The script of the pipeline as ``python -m helpers.app.pipeline build`` would build it with
    the environment plus ``overrides`` (the experiment grid reads the settings from it)."""
    from helpers.app.pipeline import make_dag
    from helpers.core.settings import load_settings

    with environment(overrides):
        settings = load_settings()
        dag = make_dag(settings)
        dag.render(show_progress=False)
        return script_from_dag(dag, f"The pipeline ({settings.profile} profile, products in {settings.products})")


def script_seconds(stdout: str) -> dict[str, float]:
    """The per-task seconds a script printed (its last ``script-seconds:`` line)."""
    lines = [line for line in stdout.splitlines() if line.startswith(MARKER)]
    if not lines:
        raise ValueError("the script printed no timings: it did not finish")
    return json.loads(lines[-1][len(MARKER):])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("output", type=Path, help="where to write the script")
    parser.add_argument("--profile", help="settings profile, e.g. 'test' (default: HELPERS_PROFILE or env.yaml's)")
    args = parser.parse_args(argv)
    script = pipeline_script({"HELPERS_PROFILE": args.profile} if args.profile else {})
    args.output.write_text(script.text)
    print(f"wrote {args.output}: run it with `python {args.output}`")
    return 0


if __name__ == "__main__":
    sys.exit(main())
