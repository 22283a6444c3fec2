"""Talkstudio's benchmarks: ``python -m benchmarks [SECTION ...]`` from the repository root
(or ``python build_scripts/bench.py``). The runner is :mod:`benchmarks.bench`; each section is a
module of :mod:`benchmarks.sections` with a function ``run(ctx: Context) -> list[Measure]``."""
