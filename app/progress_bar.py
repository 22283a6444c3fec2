"""A one-line text progress bar for the command line (no dependencies)."""

from __future__ import annotations

import sys
import time

from talkstudio.core.progress import Progress


class ProgressBar:
    """Redraws ``[#####.....] 12/50 message  ETA 3 s`` on stderr (a line per 10 % when piped)."""

    def __init__(self, width: int = 30) -> None:
        self.width = width
        self.start = time.monotonic()
        self.tty = sys.stderr.isatty()
        self._last_decile = -1

    def __call__(self, p: Progress) -> None:
        frac = p.fraction
        filled = int(frac * self.width)
        elapsed = time.monotonic() - self.start
        eta = f"  ETA {elapsed / frac * (1 - frac):.0f} s" if 0 < frac < 1 else ""
        line = f"[{'#' * filled}{'.' * (self.width - filled)}] {p.step}/{p.total} {p.message}{eta}"
        if self.tty:
            sys.stderr.write("\r" + line[:150].ljust(150))
            if p.step >= p.total:
                sys.stderr.write("\n")
        elif int(frac * 10) != self._last_decile or p.step >= p.total:
            self._last_decile = int(frac * 10)
            sys.stderr.write(line + "\n")
        sys.stderr.flush()
