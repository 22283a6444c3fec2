"""Talkstudio's one benchmark runner.

    python -m benchmarks                     # every section (or: python build_scripts/bench.py)
    python -m benchmarks media stage1        # some sections
    python -m benchmarks --list
    python -m benchmarks --quick --out DIR   # every section once, on tiny inputs

Each section is a module ``benchmarks/sections/<name>.py`` with a function
``run(ctx: Context) -> list[Measure]``. A measure carries several samples; the runner prints
their median (and min/max) in a table, and writes all of it to ``bench_results/<section>.json``
with the device it ran on. Benchmarks measure; tests never time anything.

``--quick`` runs each section's real code paths once on tiny inputs (short clips, small images,
a few training steps) and writes into ``--out`` (a scratch folder by default): its figures mean
nothing, it only shows that every section still runs (``tests/test_benchmarks.py``).
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TypeVar

from benchmarks.common import RESULTS

SECTIONS = Path(__file__).resolve().parent / "sections"
T = TypeVar("T")


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


@dataclass(frozen=True)
class Context:
    """What a section is asked to do: ``reps`` repetitions per measure; ``quick``: tiny inputs
    and one pass (see the module docstring); ``results``: the folder for what it keeps."""

    reps: int = 5
    quick: bool = False
    results: Path = RESULTS

    def pick(self, full: T, quick: T) -> T:
        """``quick`` in a quick run, else ``full``."""
        return quick if self.quick else full


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
    name = name.replace("-", "_")  # ``render-profile`` names ``sections/render_profile.py``
    if name not in available_sections():
        raise SystemExit(f"no benchmark section {name!r}; have: {', '.join(available_sections())}")
    return importlib.import_module(f"benchmarks.sections.{name}")


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
        prog="python -m benchmarks",
        description=__doc__,
        formatter_class=argparse.RawTextHelpFormatter,
    )
    parser.add_argument("sections", nargs="*", help="sections to run (default: all)")
    parser.add_argument("--reps", type=int, default=5, help="repetitions per measure")
    parser.add_argument("--list", action="store_true", help="list the sections and exit")
    parser.add_argument(
        "--quick", action="store_true", help="one repetition on tiny inputs (a smoke run)"
    )
    parser.add_argument(
        "--out",
        type=Path,
        help="folder for the results (default: bench_results/, or a scratch folder with --quick)",
    )
    args = parser.parse_args(argv)
    if args.list:
        print("\n".join(available_sections()))
        return 0
    if args.reps < 1:
        parser.error(f"--reps must be at least 1, got {args.reps}")
    names = [n.replace("-", "_") for n in args.sections] or available_sections()
    modules = [load_section(name) for name in names]
    out = args.out
    if out is None:
        out = Path(tempfile.mkdtemp(prefix="talkstudio-bench-quick-")) if args.quick else RESULTS
    out.mkdir(parents=True, exist_ok=True)
    ctx = Context(reps=1 if args.quick else args.reps, quick=args.quick, results=out)
    device = device_description()
    print(f"device: {device}" + (f"; quick run into {out}" if args.quick else ""))
    for name, module in zip(names, modules):
        measures = module.run(ctx)
        print_table(name, measures)
        payload = {
            "section": name,
            "device": device,
            "time": time.strftime("%Y-%m-%dT%H:%M:%S"),
            "quick": ctx.quick,
            "measures": [asdict(m) | {"median": m.median} for m in measures],
        }
        (out / f"{name}.json").write_text(json.dumps(payload, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
