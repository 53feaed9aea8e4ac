"""``paramedit --self-test``: prove an installation (or a frozen bundle) works end to end.

It opens the bundled demo in a real ``MainWindow`` offscreen, commits one edit through core,
checks the parameter kept its identity, runs the backward check and prints one PASS summary
with the versions a bug report needs. Every step that fails says which, and the exit code is 1.

No one is there to answer a question: every prompt takes its safe answer (a step that asks
fails, naming the question), and a watchdog ends a run still going after :data:`TIMEOUT_S`
(``PARAMEDIT_UNATTENDED_TIMEOUT``) with exit code 2 and the step it was stuck in on stderr.
"""

from __future__ import annotations

import os
import platform
import sys
import tempfile
import time
from typing import TYPE_CHECKING, TextIO

from paramedit import __version__

if TYPE_CHECKING:
    from paramedit.core.session import Session
    from paramedit.qt.main_window import MainWindow
    from paramedit.qt.unattended import Unattended

EDIT_TARGET = "mlp.0.bias"  # a small trainable parameter of the demo model
EDIT_INDEX = "[0]"
EDIT_VALUE = 0.625  # exactly representable, so the check can compare with ==
TIMEOUT_S = 300.0  # a cold start of a frozen bundle on a slow disk takes well under a minute


class SelfTestFailure(Exception):
    """A step of the self-test did not do what it must; the message says what."""


def _require(condition: bool, reason: str) -> None:
    if not condition:
        raise SelfTestFailure(reason)


def versions() -> dict[str, str]:
    """Versions of paramedit and what it runs on (imports torch and Qt)."""
    import numpy
    import pyqtgraph
    import PySide6
    import torch
    from PySide6.QtCore import qVersion

    return {
        "paramedit": __version__,
        "torch": torch.__version__,
        "PySide6": PySide6.__version__,
        "Qt": qVersion(),
        "pyqtgraph": pyqtgraph.__version__,
        "numpy": numpy.__version__,
        "Python": platform.python_version(),
    }


def _ensure_platform() -> str:
    # The self-test must run on a build server or over ssh, and never flash a window on a
    # desktop; an explicit QT_QPA_PLATFORM (e.g. xcb, to test that plugin) is respected.
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    return os.environ["QT_QPA_PLATFORM"]


def _check_window(session: Session, lines: list[str]) -> MainWindow:
    from PySide6.QtWidgets import QApplication, QTableView, QTreeView, QWidget

    from paramedit.app_icon import ICON_SIZES, application_icon
    from paramedit.qt import MainWindow
    from paramedit.qt.app import application

    app = application()  # as the app makes it: named, with its icon, Qt's offscreen noise filtered
    window = MainWindow(session)
    window.resize(1200, 800)
    window.show()
    app.processEvents()
    for name, kind in (("parameterTree", QTreeView), ("tensorTable", QTableView), ("heatmap", QWidget)):
        _require(window.findChild(kind, name) is not None, f"the window has no {name} widget")
    # Resources are what a frozen or installed copy most often loses; the icon is one of them.
    icon = application_icon()
    _require(len(icon.availableSizes()) == len(ICON_SIZES), "the application icon's PNG files are missing")
    picture = window.grab()
    _require(not picture.isNull() and picture.width() > 0, "the window could not be drawn")
    lines.append(f"window: {picture.width()}x{picture.height()} drawn on the "
                 f"{QApplication.platformName()!r} platform")
    return window


def _check_commit(session: Session, lines: list[str]) -> None:
    import torch
    from PySide6.QtWidgets import QApplication
    from torch import nn

    before = session.tensor(EDIT_TARGET)
    identity = (id(before), before.data_ptr(), before.device, before.dtype, before.requires_grad)
    _require(isinstance(before, nn.Parameter), f"{EDIT_TARGET} is not an nn.Parameter before the edit")
    session.stage(EDIT_TARGET, EDIT_INDEX, EDIT_VALUE)
    checks = session.commit()
    QApplication.processEvents()  # let the window react to the commit, as it would for a user
    _require(bool(checks) and all(c.ok for c in checks), f"commit reported an identity problem: {checks}")
    after = session.tensor(EDIT_TARGET)
    _require(after is before and isinstance(after, nn.Parameter),
             f"{EDIT_TARGET} was replaced by the commit (it must be written in place)")
    # The session's view and the model itself must agree: the model is what trains.
    _require(session.model.get_parameter(EDIT_TARGET) is before,
             f"the model's {EDIT_TARGET} is no longer the parameter the session edited")
    _require((id(after), after.data_ptr(), after.device, after.dtype, after.requires_grad) == identity,
             f"{EDIT_TARGET} changed identity, storage, device, dtype or requires_grad")
    with torch.no_grad():
        value = float(after[0])
    _require(value == EDIT_VALUE, f"{EDIT_TARGET}{EDIT_INDEX} is {value}, not {EDIT_VALUE} after the commit")
    lines.append(f"commit: {EDIT_TARGET}{EDIT_INDEX} = {EDIT_VALUE} written in place (same nn.Parameter)")


def _check_backward(session: Session, lines: list[str]) -> None:
    report = session.run_backward()
    _require(report.ok, f"backward check failed: {report.verdict()}")
    lines.append(f"backward: {report.verdict()} (loss {report.loss:.4g} on {report.device})")


def run_self_test(out: TextIO | None = None, *, timeout_s: float | None = None) -> int:
    """Run every step; print PASS with versions (exit code 0) or FAIL and the reason (1).

    Past ``timeout_s`` (default :data:`TIMEOUT_S`, or ``PARAMEDIT_UNATTENDED_TIMEOUT``) the
    process ends with exit code 2, whatever the step is stuck in.
    """
    from paramedit.qt.unattended import Watchdog, running_unattended, timeout_from_env

    out = out or sys.stdout
    state = {"step": "starting"}
    watchdog = Watchdog(timeout_s or timeout_from_env(TIMEOUT_S),
                        lambda: f"paramedit self-test: FAIL: stuck while {state['step']}")
    with watchdog, running_unattended("paramedit --self-test") as run:
        return _run_steps(out, state, run)


def _run_steps(out: TextIO, state: dict[str, str], run: Unattended) -> int:
    started = time.perf_counter()
    lines: list[str] = []
    step = state["step"] = "starting"
    window: MainWindow | None = None
    try:
        qpa = _ensure_platform()
        step = state["step"] = "importing torch and Qt"
        info = versions()
        step = state["step"] = "opening the demo"
        import paramedit
        from paramedit.demo import demo_checkpoint, demo_model_spec
        from paramedit.qt import settings

        session = paramedit.open_session(demo_model_spec(), demo_checkpoint())
        lines.append(f"demo: {len(session.names())} tensors from {demo_checkpoint().name}")
        # A self-test must leave the user's recent files and window layout alone.
        previous_settings = settings._settings_file
        with tempfile.TemporaryDirectory(prefix="paramedit-self-test-") as scratch:
            settings.use_settings_file(os.path.join(scratch, "settings.ini"))
            try:
                step = state["step"] = "building the window"
                window = _check_window(session, lines)
                step = state["step"] = "committing an edit"
                _check_commit(session, lines)
                step = state["step"] = "running the backward check"
                _check_backward(session, lines)
                # A question no one could answer took its safe answer: the run did not do what it says.
                _require(not run.declined, f"a step asked a question: {run.declined[0] if run.declined else ''}")
            finally:
                if window is not None:
                    window.hide()  # not close(): that would ask about the unsaved edit
                    window.deleteLater()
                settings.use_settings_file(previous_settings)
    except Exception as exc:
        reason = str(exc) if isinstance(exc, SelfTestFailure) else f"{type(exc).__name__}: {exc}"
        print(f"paramedit self-test: FAIL while {step}: {reason}", file=out)
        return 1
    frozen = " (frozen app)" if getattr(sys, "frozen", False) else ""
    print(f"paramedit self-test: PASS in {time.perf_counter() - started:.1f} s{frozen}", file=out)
    print("  " + ", ".join(f"{k} {v}" for k, v in info.items()) + f", QT_QPA_PLATFORM={qpa}", file=out)
    for line in lines:
        print(f"  {line}", file=out)
    return 0
