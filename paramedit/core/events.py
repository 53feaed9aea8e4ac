"""Plain-Python notifications from core objects; the Qt layer turns them into signals."""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)


class EventEmitter:
    """A tiny observer registry: ``connect("committed", fn)``, ``emit("committed", names=[...])``.

    A failing listener is logged and does not stop the others or the core operation.
    """

    def __init__(self) -> None:
        self._listeners: dict[str, list[Callable[..., Any]]] = defaultdict(list)

    def connect(self, event: str, listener: Callable[..., Any]) -> None:
        self._listeners[event].append(listener)

    def disconnect(self, event: str, listener: Callable[..., Any]) -> None:
        if listener in self._listeners.get(event, []):
            self._listeners[event].remove(listener)

    def emit(self, event: str, **payload: Any) -> None:
        for listener in list(self._listeners.get(event, [])):
            try:
                listener(**payload)
            except Exception:
                log.exception("listener %r of %r failed", listener, event)
