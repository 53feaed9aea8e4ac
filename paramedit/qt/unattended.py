"""Runs with no one to answer a question: ``paramedit open --screenshot`` and ``--self-test``.

While such a run is active every question in :mod:`paramedit.qt.prompts` answers itself with
the safe choice (refuse, do not run, do not trust, cancel) without showing a dialog, and the
run learns why (:attr:`Unattended.declined`), so the command can exit 2 and say it. A
:class:`Watchdog` ends the process if the run still has not finished after its timeout, from a
plain thread: a QTimer cannot end a run stuck in a nested modal loop or in model code.

``PARAMEDIT_UNATTENDED_TIMEOUT`` (seconds) overrides the default timeout of every such run.
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TextIO

__all__ = ["TIMEOUT_ENV", "Unattended", "Watchdog", "current", "running_unattended", "timeout_from_env"]

TIMEOUT_ENV = "PARAMEDIT_UNATTENDED_TIMEOUT"
EXIT_CODE = 2


@dataclass
class Unattended:
    """One run that no one watches; ``on_declined`` hears each question as it is declined."""

    what: str  # the command, for messages: "paramedit open"
    declined: list[str] = field(default_factory=list)
    on_declined: Callable[[str], None] | None = None

    def decline(self, reason: str) -> None:
        self.declined.append(reason)
        if self.on_declined is not None:
            self.on_declined(reason)


_current: Unattended | None = None


def current() -> Unattended | None:
    """The unattended run in progress, or None when a person is there to answer."""
    return _current


@contextmanager
def running_unattended(what: str) -> Iterator[Unattended]:
    """Every prompt inside this block answers itself with its safe choice."""
    global _current
    previous, _current = _current, Unattended(what)
    try:
        yield _current
    finally:
        _current = previous


def timeout_from_env(default: float) -> float:
    """The timeout in seconds: ``PARAMEDIT_UNATTENDED_TIMEOUT`` when it is a positive number."""
    text = os.environ.get(TIMEOUT_ENV, "").strip()
    try:
        value = float(text) if text else default
    except ValueError:
        return default
    return value if value > 0 else default


class Watchdog:
    """Prints ``message`` and ends the process with exit code 2 unless cancelled in time.

    ``os._exit``, from a daemon thread: nothing on the GUI thread (a modal dialog, a forward
    pass that never returns, a deadlock) can keep it from firing. ``message`` may be a function,
    called when it fires (to say which step the run was stuck in).
    """

    def __init__(self, timeout_s: float, message: str | Callable[[], str], *, stream: TextIO | None = None) -> None:
        self.timeout_s = timeout_s
        self.message = message
        self._stream = stream
        self._timer = threading.Timer(timeout_s, self._fire)
        self._timer.daemon = True
        self._timer.name = "paramedit-watchdog"

    def start(self) -> Watchdog:
        self._timer.start()
        return self

    def cancel(self) -> None:
        self._timer.cancel()

    def __enter__(self) -> Watchdog:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.cancel()

    def _fire(self) -> None:
        stream = self._stream or sys.stderr
        try:
            message = self.message() if callable(self.message) else self.message
            print(f"{message} (gave up after {self.timeout_s:g} s; set {TIMEOUT_ENV} to wait longer)",
                  file=stream, flush=True)
            sys.stdout.flush()
        finally:
            os._exit(EXIT_CODE)
