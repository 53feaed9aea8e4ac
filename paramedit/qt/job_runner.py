"""Long work (loading, moving to a device, backward, saving) off the GUI thread, one job at a time.

Results come back as calls on the GUI thread. Cancelling cannot stop torch mid-call, so it
abandons the job: the window is usable at once and whatever the job returns later is dropped.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, QThreadPool, Signal
from superqt.utils import FunctionWorker, create_worker

log = logging.getLogger("paramedit.qt")


class JobRunner(QObject):
    """Runs one function at a time in Qt's thread pool and reports on the GUI thread."""

    jobStarted = Signal(str, bool)  # label, cancellable
    jobFinished = Signal(str)  # label; after a result, an error or a cancel

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._worker: FunctionWorker | None = None
        self._label = ""
        self._on_cancel: Callable[[], None] | None = None

    @property
    def busy(self) -> bool:
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
        **kwargs: Any,
    ) -> None:
        """Start ``fn(*args, **kwargs)`` in a worker thread; refuses while another job runs."""
        if self._worker is not None:
            raise RuntimeError(f"already busy: {self._label}")
        worker = create_worker(fn, *args, _start_thread=False, _ignore_errors=True, **kwargs)
        self._worker, self._label, self._on_cancel = worker, label, on_cancel

        def returned(result: Any) -> None:
            if self._worker is worker:
                self._end()
                on_result(result)

        def errored(exc: BaseException) -> None:
            if self._worker is worker:
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

    def _end(self) -> None:
        label = self._label
        self._worker, self._label, self._on_cancel = None, "", None
        self.jobFinished.emit(label)

    @staticmethod
    def wait_for_threads(msecs: int = 30000) -> bool:
        """Block until abandoned jobs have really stopped (app exit, test teardown)."""
        return QThreadPool.globalInstance().waitForDone(msecs)
