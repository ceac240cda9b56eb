"""Build the Ploomber pipeline with the project settings: ``python -m helpers.app.pipeline build``.

Ploomber reads ``pipeline.yaml``; this wrapper hands it the merged settings (``env.yaml``,
the profile file, ``HELPERS_*`` variables) so the command line, the tests and a scheduled
run all use one mechanism. Ploomber skips tasks whose source and parameters did not
change, so a second build with nothing changed executes nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from typing import Any

import pandas as pd

from helpers.core.settings import ConfigError, Settings, load_settings
from helpers.core.paths import project_root

os.environ.setdefault("PLOOMBER_STATS_ENABLED", "false")  # no telemetry, before ploomber is imported


def make_dag(settings: Settings) -> Any:
    """The pipeline as a Ploomber DAG, its placeholders filled from ``settings``."""
    from ploomber.spec import DAGSpec

    env = settings.as_env()
    env["run_parameters"] = json.dumps(env, sort_keys=True)  # every setting, for the reports' provenance
    spec = DAGSpec(str(project_root() / "pipeline.yaml"), env=env)
    return spec.to_dag()


def build(settings: Settings, force: bool = False) -> pd.DataFrame:
    """Build the outdated tasks (all with ``force``); one row per task: name, ran, seconds."""
    dag = make_dag(settings)
    report = dag.build(force=force, show_progress=False)
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
    lines = [line for line in text.splitlines() if line.strip(" =-") and "DAG build failed" not in line]
    return lines[0] if lines else type(exc).__name__


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m helpers.app.pipeline")
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
        return 2
    for note in settings.notes:  # what reading the settings decided that the user did not set
        print(f"note: {note}", file=sys.stderr)
    if args.command == "status":
        print(make_dag(settings).status())
        return 0
    from ploomber.exceptions import DAGBuildError, DAGRenderError

    if settings.reports.is_symlink():  # published by a scheduled run: leave that run's pages alone
        print(f"{settings.reports} pointed to a scheduled run ({os.readlink(settings.reports)}); "
              "this build renders into a fresh folder there.", file=sys.stderr)
        settings.reports.unlink()
    try:
        table = build(settings, force=args.force)
    except (DAGBuildError, DAGRenderError) as exc:
        failed = re.findall(r"\b(?:PythonCallable|NotebookRunner): (\S+) -> ", str(exc))
        print(f"pipeline failed in task {', '.join(dict.fromkeys(failed)) or '(unknown)'}:\n{failure_summary(exc)}\n"
              "products of earlier runs are kept.", file=sys.stderr)
        return 1
    print(table.to_string(index=False))
    ran = int(table["ran"].sum())
    print(f"{ran} of {len(table)} tasks ran; reports in {settings.reports}/index.html")
    return 0


if __name__ == "__main__":
    sys.exit(main())
