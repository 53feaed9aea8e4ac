"""Comparing the open model (B) with a reference checkpoint (A) for the window, in the background.

The reference is a file the user picks, or the checkpoint the session was opened from ("what
did my edits do"). The comparison is an ordinary job (progress, Cancel); a cancelled one leaves
whatever comparison was on as it was. A pickle that needs trust is asked about, as when opening.
"""

from __future__ import annotations

import threading
from pathlib import Path

from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import QWidget

from paramedit.core.analysis.checkpoint_compare import CompareReport
from paramedit.core.errors import ParameditError, UntrustedCheckpointError
from paramedit.core.session import Session
from paramedit.qt import prompts
from paramedit.qt.job_runner import JobRunner


class CompareController(QObject):
    """Keeps the window's :class:`CompareReport` (None when not comparing)."""

    comparisonChanged = Signal(object)  # CompareReport | None
    staleChanged = Signal(bool)  # the model changed since the comparison was made
    compareFailed = Signal(object)  # exception
    compareCancelled = Signal()

    def __init__(self, jobs: JobRunner, dialog_parent: QWidget, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._jobs, self._dialog_parent = jobs, dialog_parent
        self._session: Session | None = None
        self.report: CompareReport | None = None
        self.reference: str | None = None  # the path compared with; None: the checkpoint as opened
        self.stale = False
        self._stop: threading.Event | None = None

    def attach(self, session: Session | None) -> None:
        self._session = session
        self.clear()

    @property
    def label(self) -> str:
        """What A is, in words."""
        if self.report is None:
            return ""
        return "the checkpoint as opened" if self.reference is None else Path(self.reference).name

    def ask_and_compare(self, folder: str) -> bool:
        """Ask for a reference checkpoint and compare with it; False when nothing started."""
        if self._session is None or self._jobs.busy:
            return False
        path = prompts.ask_compare_checkpoint(self._dialog_parent, folder)
        return bool(path) and self.compare_with(path)

    def compare_with(self, path: str | None, *, trust: bool = False) -> bool:
        """Compare with ``path`` (None: the checkpoint the session was opened from) in a worker."""
        s = self._session
        if s is None or self._jobs.busy:
            return False
        if path is None and s.checkpoint is None:
            self.compareFailed.emit(ParameditError("this model was not opened from a checkpoint: there is no "
                                                   "'as opened' to compare with; pick a file instead"))
            return False
        stop = self._stop = threading.Event()
        what = "the checkpoint as opened" if path is None else Path(path).name
        self._jobs.run(f"Comparing with {what}", s.compare, path, trust=trust, cancelled=stop.is_set,
                       on_result=lambda report: self._finished(s, path, report),
                       on_error=lambda exc: self._failed(path, exc, trust),
                       on_cancel=lambda: self._cancelled(stop), cancellable=True, with_progress=True)
        return True

    def compare_again(self) -> bool:
        """Run the same comparison on the model as it is now."""
        return self.report is not None and self.compare_with(self.reference)

    def clear(self) -> None:
        """Stop comparing."""
        changed = self.report is not None
        self.report, self.reference = None, None
        self._set_stale(False)
        if changed:
            self.comparisonChanged.emit(None)

    def mark_stale(self) -> None:
        """The model's values changed: the figures are from before (the views read B live)."""
        if self.report is not None:
            self._set_stale(True)

    def _set_stale(self, stale: bool) -> None:
        if stale != self.stale:
            self.stale = stale
            self.staleChanged.emit(stale)

    def _finished(self, session: Session, path: str | None, report: CompareReport) -> None:
        if session is not self._session:
            return
        self.report, self.reference = report, path
        self._set_stale(False)
        self.comparisonChanged.emit(report)

    def _failed(self, path: str | None, exc: BaseException, trusted: bool) -> None:
        if isinstance(exc, UntrustedCheckpointError) and not trusted and path is not None:
            if prompts.ask_trust_checkpoint(self._dialog_parent, path, exc.globals, exc.message):
                self.compare_with(path, trust=True)
            else:
                self.compareCancelled.emit()
            return
        self.compareFailed.emit(exc)

    def _cancelled(self, stop: threading.Event) -> None:
        stop.set()
        self.compareCancelled.emit()
