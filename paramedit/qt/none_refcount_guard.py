"""A guard against a PySide6 bug that crashes long sessions on Python 3.11 and older.

PySide6 6.12 (seen with 6.12.0 on CPython 3.11) drops one reference to ``None`` on every call
of a Qt method that returns nothing (``label.setText``, ``painter.drawRect``, every Python
``paint`` override called by Qt). ``None`` is an ordinary object before Python 3.12, so after
some ten thousand such calls its count reaches zero and the interpreter aborts with "Fatal
Python error: none_dealloc" — in the window after a few hundred tensor switches, in a test run
at exit. Python 3.12 made ``None`` immortal, which is why the bug only bites older versions.

:func:`protect_none` measures the leak once (a few calls on a throwaway QObject) and, only
where it is there, gives ``None`` enough extra references to outlast any session: what Python
3.12 does for it.
"""

from __future__ import annotations

import ctypes
import platform
import sys

__all__ = ["leaked_per_call", "protect_none"]

_BALLAST = 1 << 40  # ~1e12 calls returning nothing: years of painting
_protected = False


def leaked_per_call(calls: int = 64) -> float:
    """References to None lost per call of a Qt method that returns nothing (0 where fine)."""
    from PySide6.QtCore import QObject

    probe = QObject()
    probe.setObjectName("probe")
    before = sys.getrefcount(None)
    for _ in range(calls):
        probe.setObjectName("probe")
    return (before - sys.getrefcount(None)) / calls


def protect_none() -> bool:
    """Give ``None`` extra references when this PySide6 leaks them; True when it did."""
    global _protected
    if _protected or sys.version_info >= (3, 12) or platform.python_implementation() != "CPython":
        return False
    if leaked_per_call() < 0.5:
        return False
    # ob_refcnt is the first field of every CPython object (a Py_ssize_t).
    ctypes.c_ssize_t.from_address(id(None)).value += _BALLAST
    _protected = True
    return True
