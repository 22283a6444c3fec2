"""The benchmark sections, one module each, all with ``run(ctx: Context) -> list[Measure]``."""
