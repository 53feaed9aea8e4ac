"""paramedit's window (PySide6 + pyqtgraph). ``from paramedit.qt import MainWindow``.

Importing this package is cheap; Qt, torch and the widgets load on first use of a name.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from paramedit.qt.app import run_app
    from paramedit.qt.main_window import MainWindow

__all__ = ["MainWindow", "run_app"]

_LAZY = {"MainWindow": "paramedit.qt.main_window", "run_app": "paramedit.qt.app"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        from importlib import import_module

        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'paramedit.qt' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
