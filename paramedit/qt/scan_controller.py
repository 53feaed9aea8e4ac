"""Runs the health scan for the window: on request, by itself after a model opens (when it is
small enough to finish in a few seconds) and, for the edited tensors only, after each commit,
undo and redo, merging what it finds into the report it has.

A scan the user asked for is an ordinary job: a progress bar, Cancel, the editor waits. A scan
the window starts by itself is preemptible: it never makes the window busy, any job the user
starts abandons it (it is run again once that job is done), and Cancel drops it. Nothing a
cancelled scan saw is kept: the report stays as it was.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from PySide6.QtCore import QObject, QTimer, Signal

from paramedit.core.analysis.health_scan import ScanReport
from paramedit.core.session import Session
from paramedit.qt import unattended
from paramedit.qt.job_runner import JobRunner

#: Models with at most this many floating-point values are scanned as soon as they open. The
#: scan reads every value once at about memory speed (a 124M-parameter GPT-2 in ~0.3 s from a
#: warm file), so this is ~2 GB of float32, a second or two, more from a cold disk.
AUTO_SCAN_ELEMENTS = 500_000_000
#: The automatic scan starts this long after a model opens: the window paints the model first
#: (and a ``--screenshot`` run is done before it starts).
AUTO_SCAN_DELAY_MS = 300


@dataclass
class _Run:
    session: Session
    names: list[str] | None  # None: every tensor
    user: bool
    stop: threading.Event = field(default_factory=threading.Event)


def scannable_elements(session: Session) -> int:
    """How many floating-point values a scan of the whole session reads."""
    total = 0
    for name in session.names():
        t = session.tensor(name)
        if t.is_floating_point() and t.device.type != "meta":
            total += t.numel()
    return total


class ScanController(QObject):
    """Keeps the window's :class:`ScanReport` (None until a first scan) up to date."""

    reportChanged = Signal(object)  # ScanReport | None
    scanFinished = Signal(object, bool)  # the new report; True when the user asked for the scan
    scanCancelled = Signal()
    scanFailed = Signal(object, bool)  # exception; True when the user asked for the scan

    def __init__(self, jobs: JobRunner, parent: QObject | None = None, *,
                 auto_scan_elements: int | None = None) -> None:
        super().__init__(parent)
        self._jobs = jobs
        self.auto_scan_elements = AUTO_SCAN_ELEMENTS if auto_scan_elements is None else auto_scan_elements
        self._session: Session | None = None
        self.report: ScanReport | None = None
        self.whole = False  # the report covers every tensor (not only edited ones)
        self._run: _Run | None = None
        self._pending: set[str] | None = None  # names waiting for a re-scan
        self._pending_all = False
        self.note = ""
        jobs.jobFinished.connect(self._job_finished)

    @property
    def running(self) -> bool:
        return self._run is not None

    def attach(self, session: Session | None) -> None:
        """A new session (or none): forget the old report, and scan the new model now when it
        is small enough."""
        self._stop_run()
        self._session, self.report, self.whole = session, None, False
        self._pending, self._pending_all, self.note = None, False, ""
        if session is not None and unattended.current() is not None:
            self.note = "Not scanned: an unattended run (--screenshot, --self-test) does not scan by itself."
        elif session is not None:
            size = scannable_elements(session)
            if size <= self.auto_scan_elements:
                self._pending_all = True
                QTimer.singleShot(AUTO_SCAN_DELAY_MS, self, self._start_pending)
            else:
                self.note = (f"Not scanned when it opened: {size / 1e6:,.0f} M values is more than the "
                             f"{self.auto_scan_elements / 1e6:,.0f} M scanned by themselves. Scan reads each once.")
        self.reportChanged.emit(None)

    def scan_all(self) -> bool:
        """The user's Scan: every tensor, with progress and Cancel. False when nothing started."""
        if self._session is None or self._jobs.busy:
            return False
        self._stop_run()
        self._pending, self._pending_all = None, False
        self._start(_Run(self._session, None, user=True))
        return True

    def rescan(self, names: list[str]) -> None:
        """Scan ``names`` again (after a commit, undo or redo) and merge what is found."""
        if self._session is None:
            return
        known = set(self._session.names())
        wanted = {n for n in names if n in known}
        if not wanted:
            return
        self._pending = (self._pending or set()) | wanted
        QTimer.singleShot(0, self, self._start_pending)

    # ------------------------------------------------------------------ running
    def _start_pending(self) -> None:
        if self._session is None or self._jobs.running or self._run is not None:
            return  # when the job that runs is done (_job_finished)
        if self._pending_all:
            names = None
        elif self._pending:
            names = [n for n in self._session.names() if n in self._pending]
        else:
            return
        self._pending, self._pending_all = None, False
        self._start(_Run(self._session, names, user=False))

    def _start(self, run: _Run) -> None:
        self._run = run
        what = "Scanning every tensor for NaN, Inf and outliers" if run.names is None else (
            f"Scanning {len(run.names)} edited tensor(s)")
        self._jobs.run(what, run.session.scan, names=run.names, cancelled=run.stop.is_set,
                       on_result=lambda report: self._finished(run, report),
                       on_error=lambda exc: self._failed(run, exc),
                       on_cancel=lambda: self._cancelled(run),
                       on_preempted=lambda: self._preempted(run),
                       cancellable=True, preemptible=not run.user, with_progress=True)

    def _finished(self, run: _Run, report: ScanReport) -> None:
        if run is not self._run:
            return
        self._run = None
        if run.session is not self._session:
            return
        if run.names is None:
            self.report, self.whole = report, True
        else:
            self.report = self.report.replace(report) if self.report is not None else report
        self.reportChanged.emit(self.report)
        self.scanFinished.emit(self.report, run.user)

    def _failed(self, run: _Run, exc: BaseException) -> None:
        if run is self._run:
            self._run = None
            self.scanFailed.emit(exc, run.user)

    def _cancelled(self, run: _Run) -> None:
        run.stop.set()
        if run is self._run:
            self._run = None
            self._pending, self._pending_all = None, False  # the user said stop: the report stays as it was
            self.scanCancelled.emit()

    def _preempted(self, run: _Run) -> None:
        """Another job came first: scan these again once it is done."""
        run.stop.set()
        if run is not self._run:
            return
        self._run = None
        if run.session is self._session:
            if run.names is None:
                self._pending_all = True
            else:
                self._pending = (self._pending or set()) | set(run.names)

    def _stop_run(self) -> None:
        run, self._run = self._run, None
        if run is not None:  # then the runner's job is this scan (it clears _run however it ends)
            run.stop.set()
            if self._jobs.running:
                self._jobs.cancel()

    def _job_finished(self, _label: str) -> None:
        if self._pending_all or self._pending:
            QTimer.singleShot(0, self, self._start_pending)  # not now: the runner may be starting its next job
