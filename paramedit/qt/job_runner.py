"""Long work (loading, moving to a device, backward, saving, scans) off the GUI thread, one job at a time.

Results come back as calls on the GUI thread. Cancelling cannot stop torch mid-call, so it
abandons the job: the window is usable at once and whatever the job returns later is dropped.

A *preemptible* job (a health scan the window started by itself) does not make the runner
busy: any other job started meanwhile abandons it first (its ``on_preempted`` is called), so an
automatic scan never refuses or delays what the user asked for.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, QThreadPool, Signal
from shiboken6 import isValid
from superqt.utils import FunctionWorker, create_worker

log = logging.getLogger("paramedit.qt")


class JobRunner(QObject):
    """Runs one function at a time in Qt's thread pool and reports on the GUI thread."""

    jobStarted = Signal(str, bool)  # label, cancellable
    jobFinished = Signal(str)  # label; after a result, an error, a cancel or a preemption
    jobProgressed = Signal(int, int, str)  # done, total, what (from a job run with_progress)

    # Emitted from the worker thread; queued to the GUI thread, where the token drops stale ones.
    _progress_from_worker = Signal(int, int, int, str)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._worker: FunctionWorker | None = None
        self._label = ""
        self._on_cancel: Callable[[], None] | None = None
        self._on_preempted: Callable[[], None] | None = None
        self._preemptible = False
        self._token = 0
        self._progress_from_worker.connect(self._progressed)

    @property
    def busy(self) -> bool:
        """A job the user waits for is running (a preemptible one does not count)."""
        return self._worker is not None and not self._preemptible

    @property
    def running(self) -> bool:
        """Any job is running, preemptible or not."""
        return self._worker is not None

    @property
    def label(self) -> str:
        return self._label

    def run(
        self,
        label: str,
        fn: Callable[..., Any],
        *args: Any,
        on_result: Callable[[Any], None],
        on_error: Callable[[BaseException], None],
        on_cancel: Callable[[], None] | None = None,
        cancellable: bool = False,
        preemptible: bool = False,
        on_preempted: Callable[[], None] | None = None,
        with_progress: bool = False,
        **kwargs: Any,
    ) -> None:
        """Start ``fn(*args, **kwargs)`` in a worker thread; refuses while another job runs,
        unless that one is preemptible (it is abandoned first).

        ``with_progress`` passes ``progress=callback(done, total, what)`` to ``fn``; calls
        from the worker arrive as :attr:`jobProgressed` on the GUI thread.
        """
        if self._worker is not None:
            if not self._preemptible:
                raise RuntimeError(f"already busy: {self._label}")
            self._preempt()
        self._token += 1
        token = self._token
        if with_progress:
            kwargs["progress"] = lambda done, total, what="": self._progress_from_worker.emit(
                token, int(done), int(total), str(what))
        worker = create_worker(fn, *args, _start_thread=False, _ignore_errors=True, **kwargs)
        self._worker, self._label, self._on_cancel = worker, label, on_cancel
        self._preemptible, self._on_preempted = preemptible, on_preempted

        # A job abandoned by a runner that is gone since (its window closed) reports to no one.
        def returned(result: Any) -> None:
            if isValid(self) and self._worker is worker:
                self._end()
                on_result(result)

        def errored(exc: BaseException) -> None:
            if isValid(self) and self._worker is worker:
                self._end()
                on_error(exc)
            else:
                log.info("abandoned job %r failed afterwards: %s", label, exc)

        worker.returned.connect(returned)
        worker.errored.connect(errored)
        self.jobStarted.emit(label, cancellable)
        worker.start()

    def cancel(self) -> None:
        """Abandon the running job; its result, when it comes, is dropped."""
        worker, on_cancel = self._worker, self._on_cancel
        if worker is None:
            return
        worker.quit()
        self._end()
        if on_cancel is not None:
            on_cancel()

    def _preempt(self) -> None:
        worker, on_preempted = self._worker, self._on_preempted or self._on_cancel
        assert worker is not None
        worker.quit()
        self._end()
        if on_preempted is not None:
            on_preempted()

    def _end(self) -> None:
        label = self._label
        self._worker, self._label, self._on_cancel, self._on_preempted = None, "", None, None
        self._preemptible = False
        self.jobFinished.emit(label)

    def _progressed(self, token: int, done: int, total: int, what: str) -> None:
        if token == self._token and self._worker is not None:
            self.jobProgressed.emit(done, total, what)

    @staticmethod
    def wait_for_threads(msecs: int = 30000) -> bool:
        """Block until abandoned jobs have really stopped (app exit, test teardown)."""
        return QThreadPool.globalInstance().waitForDone(msecs)
