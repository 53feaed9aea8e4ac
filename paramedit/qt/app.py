"""``paramedit open``: start the window, open what the command line names, or take a screenshot."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from PySide6.QtCore import QEventLoop, QMessageLogContext, QTimer, QtMsgType, qInstallMessageHandler
from PySide6.QtWidgets import QApplication

from paramedit import __version__
from paramedit.app_icon import DESKTOP_FILE_NAME, application_icon
from paramedit.core.model.spec import parse_model_kwargs
from paramedit.demo import demo_checkpoint, demo_model_spec
from paramedit.qt.error_dialog import install_excepthook
from paramedit.qt.job_runner import JobRunner
from paramedit.qt.load_request import LoadRequest
from paramedit.qt.main_window import MainWindow
from paramedit.qt.settings import APPLICATION, ORGANIZATION, remember_model_file
from paramedit.qt.unattended import Unattended, Watchdog, running_unattended, timeout_from_env

SCREENSHOT_SIZE = (1400, 900)
#: A screenshot run that has not saved its picture after this long ends with exit 2 (see
#: :mod:`paramedit.qt.unattended`; ``PARAMEDIT_UNATTENDED_TIMEOUT`` changes it).
SCREENSHOT_TIMEOUT_S = 180.0


def _looks_like_spec(text: str) -> bool:
    module_part, sep, name = text.rpartition(":")
    return bool(sep and module_part and name and "/" not in name and "\\" not in name)


def request_from_args(args: argparse.Namespace) -> LoadRequest:
    """What to open: the demo with ``--demo`` or nothing named, else the model and/or checkpoint.

    A single positional argument that is not ``file.py:NAME`` is taken as a checkpoint, so
    ``paramedit ckpt.safetensors`` opens the tensors on their own.
    """
    model, checkpoint = getattr(args, "model", None), getattr(args, "checkpoint", None)
    device = getattr(args, "device", None) or "cpu"
    if getattr(args, "demo", False) or (not model and not checkpoint):
        return LoadRequest(demo_model_spec(), str(demo_checkpoint()), device=device)
    if model and not checkpoint and not _looks_like_spec(model):
        model, checkpoint = None, model
    return LoadRequest(model, checkpoint, device, parse_model_kwargs(getattr(args, "model_kwargs", None)),
                       trust=bool(getattr(args, "trust", False)),
                       container_key=getattr(args, "container_key", None),
                       architecture=not getattr(args, "tensors_only", False),
                       trust_remote_code=bool(getattr(args, "trust_remote_code", False)))


#: Qt messages that say nothing to a user: the offscreen platform (--screenshot, --self-test,
#: CI) cannot propagate size hints to a window system it does not have.
_QUIET_QT_MESSAGES = ("This plugin does not support propagateSizeHints()",)
_previous_qt_handler = None


def _qt_message(mode: QtMsgType, context: QMessageLogContext, message: str) -> None:
    if message in _QUIET_QT_MESSAGES:
        return
    if _previous_qt_handler is not None:
        _previous_qt_handler(mode, context, message)
    else:
        print(message, file=sys.stderr)


def application() -> QApplication:
    """The running QApplication, or a new one named for QSettings."""
    global _previous_qt_handler
    app = QApplication.instance()
    if app is None:
        _previous_qt_handler = qInstallMessageHandler(_qt_message)
        app = QApplication([sys.argv[0] if sys.argv else "paramedit"])
    app.setOrganizationName(ORGANIZATION)
    app.setApplicationName(APPLICATION)
    app.setApplicationVersion(__version__)
    app.setDesktopFileName(DESKTOP_FILE_NAME)  # Wayland links the window to paramedit.desktop
    app.setWindowIcon(application_icon())  # every window and dialog
    return app  # type: ignore[return-value]


def run_app(args: argparse.Namespace) -> int:
    """Run the window until it closes (or, with ``--screenshot``, until the picture is saved)."""
    logging.basicConfig(level=logging.DEBUG if getattr(args, "verbose", False) else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    app = application()
    request = request_from_args(args)
    model_file = request.model_file()
    if model_file:
        # Naming the file on the command line is the consent the GUI would otherwise ask for.
        remember_model_file(model_file)
    previous_hook = install_excepthook()
    try:
        if getattr(args, "screenshot", None):
            return _screenshot(app, request, Path(args.screenshot))
        window = MainWindow()
        window.show()
        if not window.autosave.offer_recovery():
            window.files.open_request(request)
        code = app.exec()
        JobRunner.wait_for_threads(5000)
        return code
    finally:
        sys.excepthook = previous_hook


def _screenshot(app: QApplication, request: LoadRequest, path: Path) -> int:
    """Open, grab, save: with no one to answer a question, so none is ever shown (each takes
    its safe answer and ends the run with exit 2 and the reason), and a watchdog ends a run
    that takes longer than its timeout, whatever it is stuck in."""
    timeout = timeout_from_env(SCREENSHOT_TIMEOUT_S)
    watchdog = Watchdog(timeout, f"paramedit open: error: the window did not finish loading {request.describe()} "
                        "for the screenshot")
    # The error, if any, is printed once below as the command's own; not also as a log line.
    # Only while loading: main() may be called again in the same process (tests, scripts).
    logger = logging.getLogger("paramedit.qt")
    level = logger.level
    logger.setLevel(logging.CRITICAL)
    try:
        with watchdog, running_unattended("paramedit open") as run:
            window = MainWindow()
            window.resize(*SCREENSHOT_SIZE)
            window.show()
            return _load_and_grab(app, window, request, path, run)
    finally:
        logger.setLevel(level)


def _load_and_grab(app: QApplication, window: MainWindow, request: LoadRequest, path: Path, run: Unattended) -> int:
    loop = QEventLoop()
    outcome: dict[str, str] = {}

    def finish(error: str = "") -> None:
        if error:
            outcome.setdefault("error", error)  # the first reason is the one that matters
        QTimer.singleShot(0, loop.quit)

    run.on_declined = finish
    window.sessionOpened.connect(lambda: finish())
    window.jobFailed.connect(finish)
    window.files.loader.cancelled.connect(lambda: finish("opening was cancelled"))
    if not window.files.open_request(request):
        outcome.setdefault("error", run.declined[0] if run.declined else "nothing was opened")
    elif "error" not in outcome:
        loop.exec()
    if "error" in outcome:
        print(f"paramedit open: error: {outcome['error']}", file=sys.stderr)
        window.jobs.cancel()
        window.hide()
        window.deleteLater()
        return 2
    app.processEvents()
    window.editor.refresh_heatmap_now()
    app.processEvents()
    path.parent.mkdir(parents=True, exist_ok=True)
    saved = window.grab().save(str(path))
    window.hide()
    window.deleteLater()
    if not saved:
        print(f"paramedit open: error: could not write {path}", file=sys.stderr)
        return 2
    return 0
