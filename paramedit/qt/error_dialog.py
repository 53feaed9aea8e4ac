"""Showing errors readably, and keeping the app alive when something unexpected raises.

Dialogs here are opened window-modal and non-blocking (``open()``, not ``exec()``): the user
still has to dismiss them, but no slot waits on them, so an error inside a worker callback or
a test cannot freeze the event loop.
"""

from __future__ import annotations

import functools
import inspect
import logging
import re
import sys
import traceback
from collections.abc import Callable
from types import TracebackType
from typing import Any, TypeVar

import shiboken6
from PySide6.QtWidgets import QApplication, QMessageBox, QWidget

from paramedit.core.errors import ParameditError, UntrustedCheckpointError

log = logging.getLogger("paramedit.qt")

F = TypeVar("F", bound=Callable[..., Any])

#: Every dialog opened by :func:`show_error`, newest last (tests read it; dialogs drop out when closed).
open_error_dialogs: list[QMessageBox] = []


def error_text(exc: BaseException) -> tuple[str, str | None]:
    """(message, details) for any exception: ours keep their own, others get the traceback."""
    if isinstance(exc, ParameditError):
        details = exc.details
        if isinstance(exc, UntrustedCheckpointError) and exc.globals:
            details = "Globals the file asks for:\n  " + "\n  ".join(exc.globals) + ("\n\n" + details if details else "")
        return exc.message, details
    tb = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    return f"Unexpected {type(exc).__name__}: {exc}", tb


def show_error(parent: QWidget | None, title: str, error: BaseException | str,
               details: str | None = None) -> QMessageBox:
    """Show an error with an optional "Show Details…" section; log it; return the dialog."""
    if isinstance(error, BaseException):
        message, exc_details = error_text(error)
        details = details or exc_details
    else:
        message = error
    log.error("%s: %s", title, message)
    # A failure in painting code repeats on every paint: one dialog says how often, not hundreds.
    # (A dialog whose parent window was deleted is gone without a "finished": forget it.)
    open_error_dialogs[:] = [box for box in open_error_dialogs if shiboken6.isValid(box)]
    for box in open_error_dialogs:
        if box.property("errorKey") == (title, message):
            count = int(box.property("errorCount")) + 1
            box.setProperty("errorCount", count)
            box.setInformativeText(f"This happened {count} times.")
            return box
    box = QMessageBox(QMessageBox.Icon.Critical, title, message, QMessageBox.StandardButton.Close, parent)
    box.setObjectName("errorDialog")
    box.setProperty("errorKey", (title, message))
    box.setProperty("errorCount", 1)
    if details:
        box.setDetailedText(details)
    open_error_dialogs.append(box)
    box.finished.connect(lambda _result: open_error_dialogs.remove(box) if box in open_error_dialogs else None)
    box.open()
    return box


def reports_errors(title: str) -> Callable[[F], F]:
    """Decorate a slot that calls core: a ParameditError becomes a readable dialog, not a crash.

    The wrapper passes a signal only as many arguments as the slot takes, because PySide6 reads
    the argument count of the function it is given (``triggered`` sends ``checked``).
    """

    def decorate(fn: F) -> F:
        params = list(inspect.signature(fn).parameters.values())
        takes_varargs = any(p.kind is p.VAR_POSITIONAL for p in params)
        n_positional = sum(1 for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD))

        @functools.wraps(fn)
        def wrapper(self, *args, **kwargs):
            if not takes_varargs:
                args = args[: max(n_positional - 1, 0)]
            try:
                return fn(self, *args, **kwargs)
            except ParameditError as exc:
                show_error(self if isinstance(self, QWidget) else None, title, exc)
                return None

        return wrapper  # type: ignore[return-value]

    return decorate


ExceptHook = Callable[[type[BaseException], BaseException, TracebackType | None], Any]


def unexpected_error_hook(exc_type: type[BaseException], exc: BaseException,
                          tb: TracebackType | None) -> None:
    """A ``sys.excepthook`` that logs the error and shows it in a dialog instead of dying."""
    if issubclass(exc_type, KeyboardInterrupt):
        sys.__excepthook__(exc_type, exc, tb)
        return
    text = "".join(traceback.format_exception(exc_type, exc, tb))
    log.error("unhandled exception:\n%s", text)
    if QApplication.instance() is None:
        sys.__excepthook__(exc_type, exc, tb)
        return
    parent = QApplication.activeWindow()
    if isinstance(exc, ParameditError):
        show_error(parent, "paramedit", exc)
    else:
        show_error(parent, "Unexpected error",
                   f"Something went wrong: {exc_type.__name__}: {_root_cause(str(exc))}\n\n"
                   "paramedit is still running, and this error undid none of your commits; check the last "
                   "change before you save.", text)


_OVERRIDE_ERROR = re.compile(r"Error calling Python override of (\S+?)\(\): ")


def _root_cause(text: str) -> str:
    """The first error of a PySide6 chain, where it happened.

    An exception in a Python override (``data()``) stays pending and is re-raised wrapped by the
    next override Qt calls: "Error calling Python override of QTableView::viewportEvent(): Error
    calling Python override of QAbstractTableModel::rowCount(): ... data(): boom". A different
    text on every paint would defeat the de-duplication of dialogs, and it is unreadable.
    """
    found = list(_OVERRIDE_ERROR.finditer(text))
    if not found:
        return text
    return f"{text[found[-1].end():]} (in {found[-1].group(1)}())"


def install_excepthook() -> ExceptHook:
    """Route uncaught exceptions (including ones raised in Qt slots) to a dialog; return the old hook."""
    previous = sys.excepthook
    sys.excepthook = unexpected_error_hook
    return previous
