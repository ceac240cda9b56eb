"""Tests of the bench tooling. bench/ is a folder of scripts (``python bench/run.py``), not a
package: its folder goes on ``sys.path`` here, as it is when one of its scripts runs."""

import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "bench"
if str(BENCH) not in sys.path:
    sys.path.insert(0, str(BENCH))
