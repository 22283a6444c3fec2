"""Handlers of the built subcommands, one module per area.

Every module in this package registers its handlers with :mod:`talkstudio.app.cli` when imported;
importing the package imports them all.
"""

from __future__ import annotations

import importlib
import pkgutil

for _info in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_info.name}")
