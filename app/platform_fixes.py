"""Process-level guards the studio applies before it shows a window.

1. :func:`guard_none_refcount` — a reference-count defect of the installed PySide6 on Python 3.11.

PySide6 6.12.0 (as installed here, with CPython 3.11) returns ``None`` from every *void* C++
method without taking a reference to it: each call such as ``widget.update()``,
``label.setText(...)``, ``timer.start()`` or ``QCoreApplication.processEvents()`` lowers the
reference count of ``None`` by one. On Python 3.12+ ``None`` is immortal and nothing happens; on
3.11 the count — some 70 000 in the studio's process — reaches zero after that many calls and
the interpreter aborts ("Fatal Python error: none_dealloc"), e.g. after a minute or two of
playback. :func:`guard_none_refcount` detects the defect with a few probe calls and, only when
it is present and ``None`` is mortal, raises the reference counts of ``None``, ``True`` and
``False`` by 2⁴⁰ — what Python 3.12 does for them by design (immortal objects). Idempotent.

2. :func:`block_triton` — Triton's LLVM next to Mesa's. When an OpenGL context exists (the 3D
landmark view) on a Mesa driver (llvmpipe under Xvfb, and the LLVM-based hardware drivers), loading
``triton/_C/libtriton.so`` afterwards crashes the process (segmentation fault). torch imports
Triton only to probe for ``torch.compile`` support (``torchvision.ops`` → ``torch._dynamo``), which
the studio never uses; so the studio marks ``triton`` as not importable (``sys.modules["triton"] =
None``) before torch loads, and torch then reports it absent. Nothing changes when Triton was
already imported (then it was loaded before the GL context, which is safe).
"""

from __future__ import annotations

import ctypes
import sys

PROBE_CALLS = 64
"""Void calls made to detect the defect."""
BOOST = 1 << 40
"""Added to the reference counts: ~10¹² void calls before the count could reach zero."""

_applied: bool | None = None


def void_call_leaks_none() -> bool:
    """True when a void PySide6 method lowers the reference count of ``None``."""
    from PySide6.QtCore import QObject

    probe = QObject()
    before = sys.getrefcount(None)
    for _ in range(PROBE_CALLS):
        probe.setObjectName("")  # a void method
    return sys.getrefcount(None) < before - PROBE_CALLS // 2


def guard_none_refcount() -> bool:
    """Apply the guard when needed (see the module docstring); True when it was applied."""
    global _applied
    if _applied is not None:
        return _applied
    _applied = False
    if sys.version_info >= (3, 12) or sys.implementation.name != "cpython":
        return False  # immortal singletons, or another object layout
    if not void_call_leaks_none():
        return False
    for obj in (None, True, False):
        # ob_refcnt is the first field of every PyObject (Py_ssize_t) in CPython 3.11
        ctypes.c_ssize_t.from_address(id(obj)).value += BOOST
    _applied = True
    return True


def block_triton() -> bool:
    """Make ``import triton`` fail in this process unless it is already imported (see above)."""
    if "triton" in sys.modules:
        return False
    sys.modules["triton"] = None  # type: ignore[assignment]
    return True
