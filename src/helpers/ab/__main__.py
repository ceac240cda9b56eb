"""Command line: ``python -m helpers.ab load FILE`` or ``python -m helpers.ab generate``."""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace

from helpers.ab.store import generate_all, load_experiments, read_plans
from helpers.core.experiment_specs import ExperimentConfigError, ExperimentPlan, parse_specs
from helpers.core.settings import ConfigError, load_settings
from helpers.data.quality import DataQualityError, read_source
from helpers.warehouse import Warehouse, WarehouseError


def main(argv: list[str] | None = None) -> int:
    """``python -m helpers.ab load FILE [--plan PLAN.yaml] [--control EXP=VARIANT ...]`` or ``... generate``.

    Exit codes: 0 loaded, 2 the file or settings were refused (nothing changed), 3 warehouse error.
    """
    parser = argparse.ArgumentParser(prog="python -m helpers.ab", description=main.__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    load = sub.add_parser("load", help="validate and load a CSV/Parquet of experiment users")
    load.add_argument("file")
    load.add_argument("--control", action="append", default=[], metavar="EXPERIMENT=VARIANT",
                      help="the control variant of an experiment (overrides the plan's)")
    load.add_argument("--plan", metavar="PLAN.yaml",
                      help="YAML plans by experiment id: control, allocation {variant: share}, baseline_rate, "
                           "description (what was fixed before the experiment ran)")
    sub.add_parser("generate", help="generate the experiments configured in env.yaml")
    args = parser.parse_args(argv)
    try:
        settings = load_settings()
        with Warehouse.from_settings(settings) as warehouse:
            if args.command == "generate":
                report = generate_all(warehouse, parse_specs(settings.ab_experiments), settings.ab_seed,
                                      settings.ab_scale)
            else:
                plans = read_plans(args.plan) if args.plan else {}
                for item in args.control:
                    experiment_id, _, control = item.partition("=")
                    if not control:
                        raise ExperimentConfigError(f"--control {item!r} must be EXPERIMENT=VARIANT")
                    plan = plans.get(experiment_id) or ExperimentPlan(experiment_id)
                    plans[experiment_id] = replace(plan, control=control)
                report = load_experiments(warehouse, read_source(args.file, settings.encoding), args.file,
                                          plans)
    except (DataQualityError, ExperimentConfigError, ConfigError) as exc:
        print(f"refused: {exc}", file=sys.stderr)
        return 2
    except WarehouseError as exc:
        print(f"warehouse error: {exc}", file=sys.stderr)
        return 3
    print(report.summary())
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
