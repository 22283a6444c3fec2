"""Scripts that make the project's figures and shipped files, run from the repository root as
``python -m scripts.<name>``: ``make_demo`` (the built-in demo subject), ``screenshots``,
``table3`` (paper Table III at a small budget), ``torso_strip``, ``widget_gallery``."""
