"""Build the Ploomber pipeline with the project settings: ``python -m helpers.app.pipeline build``.

Ploomber reads ``pipeline.yaml``; this wrapper hands it the merged settings (``env.yaml``,
the profile file, ``HELPERS_*`` variables) so the command line, the tests and a scheduled
run all use one mechanism. Ploomber skips tasks whose source and parameters did not
change, so a second build with nothing changed executes nothing.

What a build replaces, and when:

- Products that fail their check are made again. Before the build, each task's
  ``on_finish`` check (``pipeline.yaml``) runs on the products already there; a product
  that fails (a truncated artifact, an unreadable notebook) is deleted, so Ploomber, which
  trusts its own records and not the file, builds it again (:func:`heal`).
- A failed task never overwrites its last good product. The products of every task about to
  run are copied aside first; when the build fails or is stopped, what each unfinished task
  wrote is moved to ``<products>.failed-<time>/`` (the message names it) and its last good
  product is put back (:func:`keep_last_good`). Ploomber has not recorded the failed run, so
  the task runs again next time.
- The reports are published only by a build in which every task succeeded, atomically: the
  ``reports`` task runs last, renders into a fresh folder and swaps the ``reports`` symlink
  to it (:mod:`helpers.publish.release`). A failed build leaves the last good reports.

A build with nothing to do does not load Ploomber (:func:`up_to_date`): each build in which
every task succeeded records a fingerprint of what its outcome depends on in
``<products>/.last-build.json``; when the next build (not forced) finds the same fingerprint, it
says that no task ran and stops, in well under a second instead of the ~4 s Ploomber takes to
import itself, load the DAG and compare every task. Anything that differs, or a record that
cannot be read, goes the whole way through Ploomber.

Exit status: 0 built, 1 a task failed (or the build was stopped), 2 refused input (a
setting, or a source file the data-quality checks refuse), 3 the warehouse or the MLflow store
was unavailable.
"""

from __future__ import annotations

import argparse
import ast
import hashlib
import json
import os
import re
import shutil
import signal
import sys
import tempfile
import warnings
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator

from helpers.core.collector import frozen_survivors
from helpers.core.files import write_atomic
from helpers.core.paths import project_root
from helpers.core.provenance import RUN_TIME_FORMAT, utc_now
from helpers.core.settings import ConfigError, Settings, load_settings

if TYPE_CHECKING:
    import pandas as pd

os.environ.setdefault("PLOOMBER_STATS_ENABLED", "false")  # no telemetry, before ploomber is imported

EXIT_FAILED = 1
EXIT_REFUSED = 2
EXIT_UNAVAILABLE = 3
#: Errors that mean the input was refused (exit 2) or the warehouse could not be used (exit 3).
REFUSED = ("helpers.data.quality.DataQualityError", "helpers.core.settings.ConfigError",
           "helpers.core.experiment_specs.ExperimentConfigError", "helpers.lifecycle.registry.RegistryError",
           "helpers.lifecycle.tracking.TrackingError")
UNAVAILABLE = ("helpers.warehouse.client.WarehouseError", "helpers.warehouse.client.WarehouseBusy",
               "mlflow.exceptions.MlflowException")  # the MLflow store (a team's server) could not be used


class BuildFailed(RuntimeError):
    """A task failed; the message names the tasks, the error and where their partial output went."""

    def __init__(self, message: str, code: int = EXIT_FAILED):
        super().__init__(message)
        self.code = code


class Stopped(BaseException):
    """The build was told to stop (SIGTERM). Not an ``Exception``: Ploomber and papermill
    catch those per task and go on with the next one."""


def source_normal_form(code: str | None) -> str | None:
    """Python source as Ploomber should compare it: formatting, comments and docstrings taken
    out (an ``ast`` round trip). Text that does not parse is compared as it is."""
    if code is None:
        return None
    try:
        tree = ast.parse(code)
    except SyntaxError:
        return code
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if (isinstance(node, (ast.Module, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and body
                and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant)
                and isinstance(body[0].value.value, str)):
            node.body = body[1:] or [ast.Pass()]
    return ast.unparse(tree)


def load_dag(spec_file: str, env: dict[str, str]) -> Any:
    """A Ploomber DAG from ``spec_file`` (in the project root) with its placeholders from ``env``.

    Ploomber decides whether a Python task's code changed by formatting both versions with
    autopep8 first: ~0.4 s a task, on every build, even one with nothing to do. The DAG
    compares :func:`source_normal_form` instead, which ignores the same things (layout, comments,
    the docstring) in a few milliseconds.
    """
    from ploomber.codediffer import CodeDiffer
    from ploomber.spec import DAGSpec

    class SourceDiffer(CodeDiffer):
        NORMALIZERS = {**CodeDiffer.NORMALIZERS, "py": source_normal_form}

    with warnings.catch_warnings():
        # Ploomber also reads env.yaml beside the spec and warns about keys no task names; here env.yaml is
        # the settings file, and some settings change how a run behaves, not what it makes (warehouse_wait_seconds).
        warnings.filterwarnings("ignore", "The following placeholders are declared in the environment but unused",
                                UserWarning)
        dag = DAGSpec(str(project_root() / spec_file), env=env).to_dag()
    dag.differ = SourceDiffer()
    return dag


def make_dag(settings: Settings) -> Any:
    """The pipeline as a Ploomber DAG, its placeholders filled from ``settings``."""
    env = settings.as_env()
    env["run_parameters"] = json.dumps(env, sort_keys=True)  # every setting, for the reports' provenance
    return load_dag("pipeline.yaml", env)


def product_files(task: Any) -> list[Path]:
    """The files of a task's product (one, or each of a multi-product's)."""
    files = task.product.to_json_serializable()
    return [Path(p) for p in (files.values() if isinstance(files, dict) else [files])]


def heal(dag: Any) -> list[str]:
    """Run each task's ``on_finish`` check on its existing products; delete those that fail.

    Must run before the DAG is rendered (a rendered DAG keeps the status it computed).
    Returns one note per product deleted.
    """
    from helpers.app.tasks import ProductError  # the tasks import the analysis stack: only when building

    notes = []
    for task in dag.values():
        if task.on_finish is None or not all(path.exists() for path in product_files(task)):
            continue
        try:
            task.on_finish(product=task.product)
        except ProductError as exc:
            exc.path.unlink(missing_ok=True)
            notes.append(f"{exc}\n  -> removed it; this build makes it again (task {task.name}).")
    return notes


def _signature(path: Path) -> tuple[int, int] | None:
    try:
        stat = path.stat()
    except FileNotFoundError:
        return None
    return stat.st_size, stat.st_mtime_ns


@contextmanager
def keep_last_good(tasks: list[Any], products: Path) -> Iterator[None]:
    """Copy the products of ``tasks`` aside for the block; when it raises, restore them.

    For every task that did not finish (failed, stopped, never started), a product it changed
    is moved to ``<products>.failed-<time>/`` and the copy of the last good one is put back
    (one rename each). A note on stderr names both places.
    """
    products.parent.mkdir(parents=True, exist_ok=True)
    spare = Path(tempfile.mkdtemp(prefix=f".{products.name}.last-good-", dir=products.parent))
    saved: dict[Path, tuple[Path, tuple[int, int]]] = {}
    before: dict[Path, tuple[int, int] | None] = {}
    try:
        for task in tasks:
            for path in product_files(task):
                before[path] = _signature(path)
                if before[path] is not None:
                    copy = spare / str(len(saved))
                    shutil.copy2(path, copy)
                    saved[path] = (copy, before[path])
        yield
    except BaseException:
        from ploomber.constants import TaskStatus

        failed = products.with_name(f"{products.name}.failed-{utc_now():{RUN_TIME_FORMAT}}Z")
        moved, restored = [], []
        for task in tasks:
            if task.exec_status == TaskStatus.Executed:
                continue
            for path in product_files(task):
                if _signature(path) != before.get(path) and path.exists():
                    name = path.relative_to(products) if path.is_relative_to(products) else Path(path.name)
                    (failed / name).parent.mkdir(parents=True, exist_ok=True)
                    os.replace(path, failed / name)
                    moved.append(task.name)
                if path in saved and not path.exists():
                    os.replace(saved[path][0], path)
                    restored.append(str(path))
        if moved:
            print(f"note: the output of the unfinished tasks ({', '.join(dict.fromkeys(moved))}) is in {failed}; "
                  f"their last good products are in place ({len(restored)} restored).", file=sys.stderr)
        raise
    finally:
        shutil.rmtree(spare, ignore_errors=True)


def exit_code(text: str) -> int:
    """The exit status a build failure's text calls for (module docstring)."""
    if any(name in text for name in REFUSED):
        return EXIT_REFUSED
    if any(name in text for name in UNAVAILABLE):
        return EXIT_UNAVAILABLE
    return EXIT_FAILED


#: The record of the last build in which every task succeeded (:func:`up_to_date`), in the products folder.
LAST_BUILD = ".last-build.json"
#: What the tasks run, read or publish, besides the settings and the files they name: hashed by content.
CODE = ("pipeline.yaml", "hypotheses.yaml", "_quarto.yml", "docs", "notebooks", "src/helpers")


def _stat(path: Path) -> list[int] | None:
    try:
        stat = path.stat()
    except OSError:
        return None
    return [stat.st_ino, stat.st_size, stat.st_mtime_ns]


#: Settings naming a file the build itself writes (the warehouse): compared as the build left it.
WRITTEN = ("warehouse_path",)
_DOTTED = re.compile(r"[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)+")


def task_modules(spec: Path) -> list[str]:
    """The modules of the spec's dotted-path task sources, ``on_finish`` checks and grid functions:
    where Ploomber reads a Python task's source, wherever the package is installed."""
    import yaml

    try:
        tasks = (yaml.safe_load(spec.read_text(encoding="utf-8")) or {}).get("tasks") or []
    except (OSError, yaml.YAMLError, AttributeError):  # Ploomber says what is wrong with the spec
        return []
    names = set()
    for task in tasks if isinstance(tasks, list) else []:
        if not isinstance(task, dict):
            continue
        grid = task.get("grid") if isinstance(task.get("grid"), dict) else {}
        for value in (task.get("source"), task.get("on_finish"), *grid.values()):
            if isinstance(value, str) and "::" in value:
                names.add(value.split("::")[0])
            elif isinstance(value, str) and _DOTTED.fullmatch(value) and not (spec.parent / value).exists():
                names.add(value.rsplit(".", 1)[0])
    return sorted(names)


def _module_file(name: str) -> Path | None:
    from importlib.util import find_spec

    try:
        found = find_spec(name)
    except (ImportError, ValueError):
        return None
    return Path(found.origin) if found is not None and found.origin and found.has_location else None


def input_digest(settings: Settings) -> str:
    """A digest of what the build reads and does not write (:func:`build_fingerprint`): taken
    before the build loads the DAG, so that an edit made while it runs (a notebook, the data)
    sends the next build through Ploomber, which recorded what it read."""
    digest = hashlib.sha256()

    def add(*parts: Any) -> None:
        digest.update(json.dumps(parts, default=str).encode())

    env = settings.as_env()
    add("settings", sorted(env.items()))
    root = project_root()
    for name in CODE:
        base = root / name
        files = sorted(p for p in base.rglob("*") if p.is_file() and "__pycache__" not in p.parts) \
            if base.is_dir() else [base]
        for path in files:
            add("code", str(path.relative_to(root)))
            digest.update(path.read_bytes() if path.is_file() else b"(absent)")
    for module in task_modules(root / "pipeline.yaml"):
        path = _module_file(module)
        add("module", module, str(path))
        digest.update(path.read_bytes() if path is not None and path.is_file() else b"(absent)")
    for key, value in sorted(env.items()):
        if key not in WRITTEN and value and "\n" not in value and len(value) < 4096 \
                and (path := Path(value)).is_absolute() and path.is_file():
            add("input", key, _stat(path))
    add("quarto", shutil.which("quarto"))
    return digest.hexdigest()


def build_fingerprint(settings: Settings, products: list[str], inputs: str | None = None) -> str:
    """A digest of what decides whether a build has work, in a few milliseconds.

    More than Ploomber compares, never less: what the build reads (:func:`input_digest`, or
    ``inputs``, the one taken before the build): the settings (every placeholder), the content of
    the code, notebooks and published documents (:data:`CODE`) and of the modules of the Python
    tasks and checks, the files the settings name (the source data; size and modification time);
    then what the build leaves: the warehouse file, each product of the last build and its Ploomber
    record, and what the products' checks look at (the published reports folder, the MLflow store
    the environment names and whether its database file is the same one). Equal digests: Ploomber
    would run nothing. A change that cannot alter the outcome (a comment in a helper, a cycle
    writing the registry) only costs the longer way through Ploomber.
    """
    from helpers.lifecycle.tracking import REGISTRY_ENV, TRACKING_ENV, Store, sqlite_file

    digest = hashlib.sha256()

    def add(*parts: Any) -> None:
        digest.update(json.dumps(parts, default=str).encode())

    add("inputs", inputs if inputs is not None else input_digest(settings))
    env = settings.as_env()
    for key in WRITTEN:
        add("written", key, _stat(Path(env[key])) if env.get(key) else None)
    for product in products:
        path = Path(product)
        add("product", product, _stat(path), _stat(path.with_name(f".{path.name}.metadata")))
    reports = Path(settings.reports)
    add("reports", str(reports.resolve()), _stat(reports / "index.html"))
    uri = Store.from_settings(settings).registry_uri
    db = sqlite_file(uri)
    add("mlflow", os.environ.get(TRACKING_ENV, ""), os.environ.get(REGISTRY_ENV, ""), uri,
        None if db is None else (_stat(db) or [None])[0])
    return digest.hexdigest()


def up_to_date(settings: Settings) -> list[str] | None:
    """The tasks of the last build when nothing its outcome depends on changed since
    (:func:`build_fingerprint`); None when Ploomber must look."""
    try:
        record = json.loads((Path(settings.products) / LAST_BUILD).read_text(encoding="utf-8"))
        tasks, products, recorded = list(record["tasks"]), list(record["products"]), str(record["fingerprint"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return tasks if build_fingerprint(settings, products) == recorded else None


def _record_build(settings: Settings, dag: Any, inputs: str) -> None:
    products = [str(path) for task in dag.values() for path in product_files(task)]
    record = {"fingerprint": build_fingerprint(settings, products, inputs), "tasks": list(dag.keys()),
              "products": products, "built_utc": utc_now().strftime(RUN_TIME_FORMAT)}
    write_atomic(Path(settings.products) / LAST_BUILD, json.dumps(record, indent=1))


def build(settings: Settings, force: bool = False) -> pd.DataFrame:
    """Build the outdated tasks (all with ``force``); one row per task: name, ran, seconds.

    Nothing changed since the last build in which every task succeeded (:func:`up_to_date`):
    no task runs and Ploomber is not loaded. Raises :class:`BuildFailed` when a task fails,
    after putting back the last good products (module docstring).
    """
    import pandas as pd

    if not force and (tasks := up_to_date(settings)) is not None:
        return pd.DataFrame({"task": tasks, "ran": [False] * len(tasks), "seconds": [0.0] * len(tasks)})
    from ploomber.constants import TaskStatus
    from ploomber.exceptions import DAGBuildError

    (Path(settings.products) / LAST_BUILD).unlink(missing_ok=True)
    inputs = input_digest(settings)  # before Ploomber reads the sources: an edit during the build is a change
    dag = make_dag(settings)
    for note in heal(dag):
        print(f"note: {note}", file=sys.stderr)
    dag.render(force=force, show_progress=False)
    running = [task for task in dag.values() if task.exec_status != TaskStatus.Skipped]
    try:
        with keep_last_good(running, settings.products):
            report = dag.build(force=force, show_progress=False)
    except DAGBuildError as exc:
        failed = [task.name for task in running if task.exec_status == TaskStatus.Errored]
        raise BuildFailed(f"pipeline failed in task {', '.join(failed) or '(unknown)'}:\n{failure_summary(exc)}",
                          exit_code(str(exc))) from exc
    _record_build(settings, dag, inputs)
    table = report.to_pandas().rename(columns={"name": "task", "Ran?": "ran", "Elapsed (s)": "seconds"})
    return table[["task", "ran", "seconds"]].astype({"ran": bool, "seconds": float})


def failure_summary(exc: BaseException) -> str:
    """The project's own error lines from a Ploomber build failure, else the underlying error line."""
    text = str(exc)
    ours = re.findall(r"^helpers\.[\w.]+Error: .*$", text, flags=re.MULTILINE)
    if ours:
        return "\n".join(dict.fromkeys(ours))
    errors = [line for line in re.findall(r"^[A-Za-z_][\w.]*(?:Error|Exception): .*$", text, flags=re.MULTILINE)
              if not line.startswith("ploomber.exceptions.")]
    if errors:
        return "\n".join(dict.fromkeys(errors))
    lines = [line for line in text.splitlines()
             if line.strip(" =-") and not re.search(r"DAG (build|render) failed", line)]
    return lines[0] if lines else type(exc).__name__


def _stop(signum: int, frame: Any) -> None:
    raise Stopped(signal.Signals(signum).name)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m helpers.app.pipeline",
                                     epilog="exit status: 0 built, 1 a task failed or the build was stopped, "
                                            "2 refused input, 3 warehouse or MLflow store unavailable")
    parser.add_argument("command", choices=["build", "status"])
    parser.add_argument("--profile", help="settings profile, e.g. 'test' for env.test.yaml")
    parser.add_argument("--force", action="store_true", help="run every task, changed or not")
    args = parser.parse_args(argv)
    if args.profile:  # the experiment grid reads the settings itself (helpers.ab.store)
        os.environ["HELPERS_PROFILE"] = args.profile
    try:
        settings = load_settings(args.profile)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_REFUSED
    for note in settings.notes:  # what reading the settings decided that the user did not set
        print(f"note: {note}", file=sys.stderr)
    if args.command == "status":
        print(make_dag(settings).status())
        return 0
    previous = signal.signal(signal.SIGTERM, _stop)
    try:
        with frozen_survivors():  # helpers.core.collector: full collections walk only new objects
            table = build(settings, force=args.force)
    except BuildFailed as exc:
        print(f"{exc}\n{settings.reports} still shows the last good reports. Fix the cause and run `make run` "
              "again.", file=sys.stderr)
        return exc.code
    except Exception as exc:  # Ploomber's render error; imported only here, so a build with nothing to do skips it
        from ploomber.exceptions import DAGRenderError

        if not isinstance(exc, DAGRenderError):
            raise
        print(f"the pipeline could not start:\n{failure_summary(exc)}\nnothing ran. Fix it and run `make run` again.",
              file=sys.stderr)
        return exit_code(str(exc))
    except (Stopped, KeyboardInterrupt) as exc:
        print(f"build stopped ({exc or 'interrupted'}); {settings.reports} still shows the last good reports. "
              "Run `make run` to finish it.", file=sys.stderr)
        return EXIT_FAILED
    finally:
        signal.signal(signal.SIGTERM, previous)
    print(table.to_string(index=False))
    ran = int(table["ran"].sum())
    print(f"{ran} of {len(table)} tasks ran; reports in {settings.reports}/index.html")
    return 0


if __name__ == "__main__":
    sys.exit(main())
