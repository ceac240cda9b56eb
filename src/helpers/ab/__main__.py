"""Command line: ``python -m helpers.ab load FILE`` or ``python -m helpers.ab generate``."""

from __future__ import annotations

import argparse
import sys

from helpers.ab.store import generate_all, load_experiments
from helpers.core.experiment_specs import ExperimentConfigError, parse_specs
from helpers.core.settings import ConfigError, load_settings
from helpers.data.quality import DataQualityError, read_source
from helpers.warehouse import Warehouse, WarehouseError


def main(argv: list[str] | None = None) -> int:
    """``python -m helpers.ab load FILE [--control EXP=VARIANT ...]`` or ``... generate``.

    Exit codes: 0 loaded, 2 the file or settings were refused (nothing changed), 3 warehouse error.
    """
    parser = argparse.ArgumentParser(prog="python -m helpers.ab", description=main.__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    load = sub.add_parser("load", help="validate and load a CSV/Parquet of experiment users")
    load.add_argument("file")
    load.add_argument("--control", action="append", default=[], metavar="EXPERIMENT=VARIANT")
    sub.add_parser("generate", help="generate the experiments configured in env.yaml")
    args = parser.parse_args(argv)
    try:
        settings = load_settings()
        with Warehouse.from_settings(settings) as warehouse:
            if args.command == "generate":
                report = generate_all(warehouse, parse_specs(settings.ab_experiments), settings.ab_seed,
                                      settings.ab_scale)
            else:
                controls = dict(item.split("=", 1) for item in args.control if "=" in item)
                report = load_experiments(warehouse, read_source(args.file), args.file, controls)
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
