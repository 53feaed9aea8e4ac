"""``paramedit.edit(model)``: the window on a live model, from IPython, Jupyter or a script.

In IPython or Jupyter it turns on IPython's Qt event loop integration when it is off (said once),
shows the window on that very ``nn.Module`` and returns the session at once: the next cell runs
while the window stays live, commits in the window are seen by the notebook's ``model`` (same
objects, same storage; an optimizer keeps holding the same parameters), and in-place changes the
notebook makes (an optimizer step) appear in the window the next time it looks (version counters,
polled while it is visible). In a plain script it blocks until the window closes, like
``matplotlib.pyplot.show()``, unless ``block=False``. Qt is imported only when ``edit`` is called.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from paramedit.core.errors import ParameditError

if TYPE_CHECKING:
    from paramedit.core.session import Session

__all__ = ["edit"]

#: Windows opened by edit(): kept referenced so they outlive the cell that made them.
_windows: list[Any] = []
_said_gui = False


def _ipython() -> Any | None:
    shell = sys.modules.get("IPython")
    get = getattr(shell, "get_ipython", None) if shell is not None else None
    return get() if callable(get) else None


def _close_at_exit() -> None:
    """Close the windows before Python tears Qt down (a QApplication destroyed before its
    widgets crashes the interpreter on exit)."""
    global _registered
    if _registered:
        return
    import atexit

    def close_all() -> None:
        from PySide6.QtWidgets import QApplication

        from paramedit.qt.job_runner import JobRunner

        for window in list(_windows):
            window.setProperty("closingForExit", True)
            window.hide()
            window.deleteLater()
        _windows.clear()
        app = QApplication.instance()
        if app is not None:
            app.processEvents()
        JobRunner.wait_for_threads(5000)

    atexit.register(close_all)
    _registered = True


_registered = False


def _check_binding() -> None:
    """A second Qt binding in the process cannot share its event loop with PySide6."""
    for other in ("PyQt5.QtWidgets", "PyQt6.QtWidgets", "PySide2.QtWidgets"):
        module = sys.modules.get(other)
        app = getattr(getattr(module, "QApplication", None), "instance", lambda: None)() if module else None
        if app is not None:
            raise ParameditError(f"a {other.split('.')[0]} QApplication is already running in this process; paramedit's "
                                 "window uses PySide6 and cannot share it. Start paramedit in a fresh kernel, or use "
                                 "its API without the window (paramedit.open_session)")


def _enable_ipython_gui(shell: Any) -> None:
    global _said_gui
    hooks = getattr(shell, "active_eventloop", None)
    if hooks in ("qt", "qt5", "qt6"):
        return
    try:
        shell.enable_gui("qt")
    except Exception as exc:  # IPython too old for this PySide6, or no Qt support in this kernel
        raise ParameditError(f"IPython could not turn on its Qt event loop ({type(exc).__name__}: {exc}); "
                             "paramedit needs IPython 9 or newer with PySide6 (pip install 'paramedit[notebook]'), "
                             "or run %gui qt in the notebook first") from exc
    _watch_missed_messages(shell)
    if not _said_gui:
        print("paramedit: turned on IPython's Qt event loop (%gui qt) so the window stays live between cells",
              file=sys.stderr)
        _said_gui = True


def _watch_missed_messages(shell: Any) -> None:
    """Guard against a cell that never starts.

    ipykernel's Qt loop sleeps in Qt until the shell socket's file descriptor signals, and that
    descriptor is edge-triggered: a message that arrives while the kernel is between leaving and
    re-entering the loop (with ipykernel 7's subshells it is forwarded by another thread through a
    socket pair) raises no new edge, so the loop sleeps on with the message queued: the next cell
    is never started (2 of 7 notebook runs here when a cell was sent the instant the previous one
    replied). A level check of the socket every 50 ms wakes the loop whenever a message waits,
    as the descriptor's edge should have.
    """
    kernel = getattr(shell, "kernel", None)
    app = getattr(kernel, "app", None)
    loop = getattr(app, "qt_event_loop", None)
    if kernel is None or loop is None or getattr(kernel, "_paramedit_wake_timer", None) is not None:
        return
    try:
        import zmq
        from ipykernel.eventloops import get_shell_stream
        from PySide6.QtCore import QTimer

        stream = get_shell_stream(kernel)
    except Exception:  # another ipykernel: its own wake-up is all there is
        return

    def wake_if_waiting() -> None:
        try:
            waiting = stream.getsockopt(zmq.EVENTS) & zmq.POLLIN
        except Exception:
            return
        if waiting and getattr(app, "_in_event_loop", False):
            notifier = getattr(kernel, "_qt_notifier", None)
            if notifier is not None:
                notifier.setEnabled(False)
            loop.quit()  # back to the kernel, which handles the message and re-enters the loop

    timer = QTimer(loop)
    timer.setInterval(50)
    timer.timeout.connect(wake_if_waiting)
    timer.start()
    kernel._paramedit_wake_timer = timer


def _session_for(model_or_session: Any, checkpoint: str | Path | None, device: str | None) -> Session:
    from torch import nn

    from paramedit.core.opening import open_session
    from paramedit.core.session import Session

    if isinstance(model_or_session, Session):
        if checkpoint is not None:
            raise ParameditError("a session already has its checkpoint; pass the model, or no checkpoint")
        return model_or_session
    if not isinstance(model_or_session, nn.Module):
        raise ParameditError(f"paramedit.edit takes an nn.Module or a paramedit Session, not "
                             f"{type(model_or_session).__name__}")
    if next(model_or_session.parameters(), None) is None and next(model_or_session.buffers(), None) is None:
        raise ParameditError(f"the {type(model_or_session).__name__} has no parameters or buffers to show")
    first = next(model_or_session.parameters(), None)
    return open_session(model_or_session, checkpoint, device=device or (str(first.device) if first is not None
                                                                         else "cpu"))


def edit(model_or_session: Any, checkpoint: str | Path | None = None, *, block: bool | None = None,
         device: str | None = None) -> Session:
    """Show the window on ``model_or_session`` (an ``nn.Module``, used as it is, or a session) and
    return the session. ``checkpoint`` is loaded into the module first (its tensors become the
    module's, in place). ``block`` (default: False in IPython/Jupyter, True in a script) waits
    until the window is closed."""
    _check_binding()
    session = _session_for(model_or_session, checkpoint, device)
    shell = _ipython()
    if shell is not None:
        _enable_ipython_gui(shell)
    from paramedit.qt.app import application
    from paramedit.qt.live_model_watcher import LiveModelWatcher
    from paramedit.qt.main_window import MainWindow

    app = application()
    window = MainWindow(session)
    watcher = LiveModelWatcher(window)
    window.setProperty("liveModel", True)
    window.show()
    if app.platformName() != "offscreen":
        window.raise_()
    _windows.append(window)
    _close_at_exit()
    window.destroyed.connect(lambda *_: _windows.remove(window) if window in _windows else None)
    if block is None:
        block = shell is None
    if block:
        from PySide6.QtCore import QEventLoop

        loop = QEventLoop()
        watcher.windowClosed.connect(loop.quit)
        loop.exec()
    else:
        app.processEvents()
    return session
