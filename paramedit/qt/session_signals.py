"""The one bridge from a core :class:`Session`'s plain-Python events to Qt signals.

Core emits events from whatever thread did the work (a backward check runs in a worker); this
object lives on the GUI thread, so every signal it re-emits arrives there.
"""

from __future__ import annotations

from functools import partial
from typing import Any

from PySide6.QtCore import QObject, Signal

from paramedit.core.session import Session

EVENTS = ("staged", "discarded", "committed", "undone", "redone", "device_changed", "backward_done", "saved",
          "changed_outside")


class SessionSignals(QObject):
    """Typed Qt signals for one session's events; call :meth:`detach` before dropping it."""

    editStaged = Signal(object)  # the Edit
    stagedDiscarded = Signal()
    committed = Signal(object, object)  # CommitRecord, list[IdentityCheck]
    undone = Signal(object, object)
    redone = Signal(object, object)
    deviceChanged = Signal(str)
    backwardFinished = Signal(object)  # BackwardReport
    saved = Signal(str)
    changedOutside = Signal(object)  # set of tensor names a notebook (or other code) changed in place
    #: Anything that changes what a view of the tensors shows: values, staged state, device.
    valuesChanged = Signal()

    # Emitted from the core listener; AutoConnection makes it queued when that runs in a worker.
    _received = Signal(str, object)

    def __init__(self, session: Session, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.session = session
        self._listeners = {event: partial(self._on_event, event) for event in EVENTS}
        self._received.connect(self._dispatch)
        for event, listener in self._listeners.items():
            session.events.connect(event, listener)

    def detach(self) -> None:
        """Stop listening to the session (the window is switching to another one)."""
        for event, listener in self._listeners.items():
            self.session.events.disconnect(event, listener)

    def _on_event(self, event: str, **payload: Any) -> None:
        self._received.emit(event, payload)

    def _dispatch(self, event: str, payload: dict[str, Any]) -> None:
        if event == "staged":
            self.editStaged.emit(payload.get("edit"))
        elif event == "discarded":
            self.stagedDiscarded.emit()
        elif event in ("committed", "undone", "redone"):
            signal = {"committed": self.committed, "undone": self.undone, "redone": self.redone}[event]
            signal.emit(payload.get("record"), payload.get("checks", []))
        elif event == "device_changed":
            self.deviceChanged.emit(str(payload.get("device", "")))
        elif event == "backward_done":
            self.backwardFinished.emit(payload.get("report"))
            return  # gradients are not values
        elif event == "saved":
            self.saved.emit(str(payload.get("path", "")))
            return
        elif event == "changed_outside":
            self.changedOutside.emit(set(payload.get("names", ())))
        self.valuesChanged.emit()
