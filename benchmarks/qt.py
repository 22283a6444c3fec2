"""Qt helpers of the studio section and ``scripts/screenshots.py``: run the GUI's event loop
until something has happened."""

from __future__ import annotations

from collections.abc import Callable

POLL_MS = 20
"""How often :func:`wait_until` looks at its condition. The times measured come from the
signals' handlers, not from this poll; a 1 ms poll would itself slow the engine thread (the GUI
thread would take the GIL a thousand times a second: the fast render took ~1.5 s instead of
~0.35 s)."""


def wait_until(
    condition: Callable[[], object], timeout_s: float = 600.0, message: str = "timed out"
) -> None:
    """Run the event loop until ``condition()`` holds; ``TimeoutError(message)`` after
    ``timeout_s`` seconds."""
    from PySide6.QtCore import QEventLoop, QTimer

    loop = QEventLoop()
    poll = QTimer()
    poll.setInterval(POLL_MS)
    poll.timeout.connect(lambda: condition() and loop.quit())
    poll.start()
    limit = QTimer()
    limit.setSingleShot(True)
    limit.timeout.connect(loop.quit)
    limit.start(int(timeout_s * 1000))
    if not condition():
        loop.exec()
    poll.stop()
    if not condition():
        raise TimeoutError(message)
