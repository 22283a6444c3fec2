"""``python build_scripts/bench.py [SECTION ...]``: the benchmark runner, as ``python -m
benchmarks`` from the repository root (see ``benchmarks/bench.py``)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository root

from benchmarks.bench import main

if __name__ == "__main__":
    sys.exit(main())
