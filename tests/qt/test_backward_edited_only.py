"""Issue 11: the window checks the edited parameters alone, when asked, and by itself when the
whole model's check would not fit in memory (it used to refuse, or run out)."""

from __future__ import annotations

import torch
from torch import nn

import paramedit
from paramedit.core.model import check_memory
from tests.qt.window_helpers import action

MIB = 1 << 20


def _session():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(512, 512), nn.ReLU(), nn.Linear(512, 4))  # ~1 MiB of float32 gradients
    session = paramedit.open_session(model)
    session.example_inputs = (torch.randn(2, 512),)
    return session


def _check(window, qtbot, name: str):
    with qtbot.waitSignal(window.backwardShown, timeout=20000):
        action(window, name).trigger()
    return window.session.last_backward


def test_a_check_that_would_not_fit_checks_the_edited_parameters_alone_and_says_so(make_window, qtbot, monkeypatch):
    window = make_window(_session())
    s = window.session
    s.stage("2.bias", "[0]", 0.5)
    s.commit()
    monkeypatch.setattr(check_memory, "free_bytes", lambda _device: MIB // 2)  # the whole check needs ~1 MiB
    weight = s.tensor("0.weight")
    report = _check(window, qtbot, "backwardAction")
    assert report.only == ["2.bias"] and [p.name for p in report.params] == ["2.bias"] and report.ok
    assert any("checked alone" in n and "is free" in n for n in report.notes)
    assert "checked 1 of 4 parameters" in window.statusBar().currentMessage()
    assert weight.requires_grad and s.tensor("0.weight") is weight  # frozen for the check only

    monkeypatch.setattr(check_memory, "free_bytes", lambda _device: 1 << 40)
    assert _check(window, qtbot, "backwardAction").only == []  # it fits: the whole model again


def test_the_edited_only_action_and_nothing_edited(make_window, qtbot):
    window = make_window(_session())
    action(window, "backwardEditedAction").trigger()
    assert "no parameter differs" in window.statusBar().currentMessage() and window.session.last_backward is None
    window.session.stage("0.weight", "[1, :]", 0.0)
    window.session.commit()
    report = _check(window, qtbot, "backwardEditedAction")
    assert report.only == ["0.weight"] and report.ok and action(window, "backwardEditedAction").shortcut().toString() == "Ctrl+F5"


def test_with_nothing_edited_a_check_that_would_not_fit_is_refused_with_the_estimate(make_window, qtbot, monkeypatch):
    window = make_window(_session())
    monkeypatch.setattr(check_memory, "free_bytes", lambda _device: MIB // 2)
    with qtbot.waitSignal(window.jobFailed, timeout=20000) as failed:
        action(window, "backwardAction").trigger()
    assert "not started" in failed.args[0] and "--only" in failed.args[0] and window.session.last_backward is None


def test_no_two_actions_of_the_window_share_a_shortcut(make_window):
    """Qt fires neither of two actions with one shortcut (Shift+F5 was given twice)."""
    from PySide6.QtGui import QAction

    window = make_window()
    seen: dict[str, str] = {}
    for found in window.findChildren(QAction):
        for key in (k.toString() for k in found.shortcuts() if not k.isEmpty()):
            assert key not in seen, f"{key}: {seen[key]} and {found.objectName() or found.text()}"
            seen[key] = found.objectName() or found.text()
    assert len(seen) > 20
