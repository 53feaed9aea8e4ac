"""Watching a live model: in-place changes made outside the window (a notebook's optimizer step)
appear in it the next time it looks.

While the window is visible, a cheap poll asks the session which tensors' version counters moved
(:meth:`Session.changed_outside`: no values are read); the session then says so through its
events, and every view refreshes as it does after a commit. The window also reports when it is
closed, for ``paramedit.edit(model, block=True)``.
"""

from __future__ import annotations

from PySide6.QtCore import QEvent, QObject, QTimer, Signal
from PySide6.QtWidgets import QMainWindow

__all__ = ["LiveModelWatcher"]

POLL_MS = 400


class LiveModelWatcher(QObject):
    """Polls the window's session for changes made outside it; ``windowClosed`` when it closes."""

    windowClosed = Signal()
    changesSeen = Signal(object)  # set of tensor names

    def __init__(self, window: QMainWindow, interval_ms: int = POLL_MS) -> None:
        super().__init__(window)
        self._window = window
        self._timer = QTimer(self, interval=interval_ms)
        self._timer.timeout.connect(self.look)
        window.installEventFilter(self)
        self._timer.start()

    def look(self) -> set[str]:
        """Ask the session now (the timer does this while the window is visible)."""
        session = getattr(self._window, "session", None)
        if session is None or not self._window.isVisible() or getattr(self._window, "busy", False):
            return set()
        changed = session.changed_outside()
        if changed:
            self.changesSeen.emit(changed)
            if hasattr(self._window, "show_message"):
                shown = ", ".join(sorted(changed)[:3]) + (", …" if len(changed) > 3 else "")
                self._window.show_message(f"changed outside the window: {shown}")
        return changed

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if watched is self._window and event.type() == QEvent.Type.Close:
            QTimer.singleShot(0, self._closed_if_hidden)
        return False

    def _closed_if_hidden(self) -> None:
        if not self._window.isVisible():  # the close was accepted (not cancelled by a question)
            self._timer.stop()
            self.windowClosed.emit()
