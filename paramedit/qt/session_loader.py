"""Opening a model and/or checkpoint off the GUI thread, with the three safety questions.

Before a model file's code runs for the first time the user is asked, and before a Hugging Face
folder's own code (``auto_map``) builds its architecture; a checkpoint that needs
more than tensors (a pickle asking for Python globals, a TorchScript archive, a pickled model) is
refused by core, and the user may then trust that one file and load it again.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import QWidget

from paramedit.core.errors import UntrustedCheckpointError
from paramedit.core.model.hf_folder import remote_code_files
from paramedit.core.opening import open_session
from paramedit.core.session import Session
from paramedit.demo import resource_path
from paramedit.qt import prompts
from paramedit.qt.job_runner import JobRunner
from paramedit.qt.load_request import LoadRequest
from paramedit.qt.settings import is_model_file_known, remember_model_file


def open_request(request: LoadRequest) -> Session:
    """The worker's job: core's open_session with the request's arguments."""
    return open_session(request.model, request.checkpoint, device=request.device,
                        model_kwargs=request.model_kwargs or None, trust=request.trust,
                        container_key=request.container_key, architecture=request.architecture,
                        trust_remote_code=request.trust_remote_code)


def _is_bundled(path: str) -> bool:
    try:
        return Path(path).resolve().is_relative_to(resource_path().resolve())
    except (OSError, ValueError):
        return False


class SessionLoader(QObject):
    """Runs :func:`open_request` on a :class:`JobRunner`; reports on the GUI thread."""

    loaded = Signal(object, object)  # Session, LoadRequest
    failed = Signal(object, object)  # exception, LoadRequest
    cancelled = Signal()

    def __init__(self, jobs: JobRunner, window: QWidget) -> None:
        super().__init__(window)
        self._jobs = jobs
        self._window = window

    def load(self, request: LoadRequest) -> bool:
        """Start loading; False when the user declined to run the model's code."""
        model_file = request.model_file()
        if model_file and not _is_bundled(model_file) and not is_model_file_known(model_file):
            if not prompts.ask_run_model_file(self._window, str(Path(model_file).resolve())):
                return False
            remember_model_file(model_file)
        if request.model is None and request.checkpoint and request.architecture and not request.trust_remote_code:
            files = remote_code_files(request.checkpoint)
            if files and prompts.ask_run_remote_code(self._window, str(request.checkpoint), files):
                request = replace(request, trust_remote_code=True)
        self._jobs.run(
            f"Opening {request.describe()}",
            open_request,
            request,
            on_result=lambda session: self.loaded.emit(session, request),
            on_error=lambda exc: self._failed(exc, request),
            on_cancel=self.cancelled.emit,
            cancellable=True,
        )
        return True

    def _failed(self, exc: BaseException, request: LoadRequest) -> None:
        if isinstance(exc, UntrustedCheckpointError) and not request.trust:
            path = request.checkpoint or ""
            if prompts.ask_trust_checkpoint(self._window, path, exc.globals, exc.message):
                self.load(request.trusted())
            else:
                self.cancelled.emit()
            return
        self.failed.emit(exc, request)
