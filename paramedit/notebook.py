"""``paramedit.edit(model)``: the window on a live model, from IPython, Jupyter or a script.

In Jupyter it keeps Qt's events flowing from the kernel's own event loop, and in a terminal IPython
it turns on IPython's Qt event loop integration when it is off (said once); either way it
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
    """Keep Qt's events flowing between cells.

    In a Jupyter kernel, Qt's events are pumped from the kernel's own asyncio loop (at most 15 ms
    of ``processEvents`` every 20 ms while the kernel is idle). IPython's ``%gui qt`` is not used
    there: ipykernel's Qt loop (7.4) sleeps in Qt's ``exec`` and, with its subshell threads, a
    cell's reply queued for the asyncio loop can stay unsent while Qt sleeps, so the notebook
    waits forever (1 run in 5 to 10 here; the cell had run, its output was there, no reply came).
    In a terminal IPython, ``%gui qt`` (an input hook) is turned on when it is off.
    """
    global _said_gui
    if getattr(shell, "active_eventloop", None) in ("qt", "qt5", "qt6"):
        return  # the user turned it on: theirs to keep
    if getattr(shell, "kernel", None) is not None:
        _pump_from_asyncio()
        how = "pumps Qt's events from the kernel's event loop"
    else:
        try:
            shell.enable_gui("qt")
        except Exception as exc:  # IPython too old for this PySide6, or no Qt support here
            raise ParameditError(f"IPython could not turn on its Qt event loop ({type(exc).__name__}: {exc}); "
                                 "paramedit needs IPython 9 or newer with PySide6 (pip install "
                                 "'paramedit[notebook]'), or run %gui qt first") from exc
        how = "turned on IPython's Qt event loop (%gui qt)"
        if getattr(shell, "active_eventloop", None) not in ("qt", "qt5", "qt6"):
            # IPython's --simple-prompt cannot run an event loop between inputs.
            how = ("could not turn on IPython's Qt event loop here (is it --simple-prompt?): the window answers "
                   "only while a command runs; start ipython without --simple-prompt, or use block=True")
            if not _said_gui:
                print(f"paramedit: {how}", file=sys.stderr)
                _said_gui = True
            return
    if not _said_gui:
        print(f"paramedit: {how}, so the window stays live between cells", file=sys.stderr)
        _said_gui = True


_pumping = False


def _pump_from_asyncio() -> None:
    global _pumping
    if _pumping:
        return
    import asyncio

    from PySide6.QtCore import QEventLoop

    from paramedit.qt.app import application

    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        loop = asyncio.get_event_loop()
    app = application()
    flags = QEventLoop.ProcessEventsFlag.AllEvents

    def pump() -> None:
        try:
            app.processEvents(flags, 15)  # at most 15 ms, then back to the kernel
        finally:
            loop.call_later(0.02, pump)

    loop.call_soon(pump)
    _pumping = True


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
