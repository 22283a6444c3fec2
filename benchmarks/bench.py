"""Talkstudio's one benchmark runner.

    python build_scripts/bench.py                # every section
    python build_scripts/bench.py media stage1   # some sections
    python build_scripts/bench.py --list

Each section is a module ``build_scripts/benches/<name>.py`` with a function
``run(reps: int) -> list[Measure]``. A measure carries several samples; the runner prints their
median (and min/max) in a table, and writes all of it to ``bench_results/<section>.json`` with
the device it ran on. Benchmarks measure; tests never time anything.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
SECTIONS = HERE / "benches"
RESULTS = HERE.parent / "bench_results"


@dataclass
class Measure:
    """One benchmarked quantity: its samples, unit and notes."""

    name: str
    unit: str
    samples: list[float]
    note: str = ""
    extra: dict[str, object] = field(default_factory=dict)

    @property
    def median(self) -> float:
        return float(statistics.median(self.samples))


def time_call(fn: Callable[[], object], reps: int, warmup: int = 1) -> list[float]:
    """Wall-clock milliseconds of ``reps`` calls of ``fn`` after ``warmup`` untimed calls."""
    for _ in range(warmup):
        fn()
    out = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t0) * 1000.0)
    return out


def device_description() -> str:
    """CPU model and core count, plus the GPU when torch sees one."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    desc = f"{cpu}, {os.cpu_count()} cores"
    try:
        import torch

        desc += f", torch {torch.__version__} threads={torch.get_num_threads()}"
        if torch.cuda.is_available():
            desc += f", GPU {torch.cuda.get_device_name(0)}"
    except ImportError:
        pass
    return desc


def available_sections() -> list[str]:
    return sorted(p.stem for p in SECTIONS.glob("*.py") if not p.stem.startswith("_"))


def load_section(name: str):
    path = SECTIONS / f"{name}.py"
    if not path.is_file():
        raise SystemExit(f"no benchmark section {name!r}; have: {', '.join(available_sections())}")
    spec = importlib.util.spec_from_file_location(f"talkstudio_bench_{name}", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def print_table(section: str, measures: list[Measure]) -> None:
    rows = [("measure", "median", "min", "max", "unit", "n", "note")]
    for m in measures:
        rows.append(
            (
                m.name,
                f"{m.median:.4g}",
                f"{min(m.samples):.4g}",
                f"{max(m.samples):.4g}",
                m.unit,
                str(len(m.samples)),
                m.note,
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    print(f"\n## {section}")
    for k, r in enumerate(rows):
        print("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip())
        if k == 0:
            print("  ".join("-" * w for w in widths))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("sections", nargs="*", help="sections to run (default: all)")
    parser.add_argument("--reps", type=int, default=5, help="repetitions per measure")
    parser.add_argument("--list", action="store_true", help="list the sections and exit")
    args = parser.parse_args(argv)
    if args.list:
        print("\n".join(available_sections()))
        return 0
    device = device_description()
    print(f"device: {device}")
    RESULTS.mkdir(exist_ok=True)
    for name in args.sections or available_sections():
        measures = load_section(name).run(args.reps)
        print_table(name, measures)
        payload = {
            "section": name,
            "device": device,
            "time": time.strftime("%Y-%m-%dT%H:%M:%S"),
            "measures": [asdict(m) | {"median": m.median} for m in measures],
        }
        (RESULTS / f"{name}.json").write_text(json.dumps(payload, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
