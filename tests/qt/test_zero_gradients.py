"""Issue 9: a gradient that arrives but is exactly zero is its own status, in the tree and the panel.

After zeroing the last layer of a model (a typical ablation) every earlier layer gets a gradient
of exactly 0; the window called that "ok" with a green tick.
"""

from __future__ import annotations

from pathlib import Path

import torch
from PySide6.QtCore import Qt
from PySide6.QtGui import QColor
from torch import nn

import paramedit
from paramedit.qt.grad_status import COLORS, GradStatus
from paramedit.qt.parameter_tree_model import GRAD_STATUS_ROLE
from tests.qt.window_helpers import action

SHOTS = Path("/tmp/paramedit_shots")


def _ablated_session():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3))
    with torch.no_grad():
        model[2].weight.zero_()  # nothing flows back past the last layer now
    session = paramedit.open_session(model)
    session.example_inputs = (torch.randn(5, 4),)
    return session


def _run_check(window, qtbot):
    with qtbot.waitSignal(window.backwardShown, timeout=20000):
        action(window, "backwardAction").trigger()
    return window.session.last_backward


def test_zero_gradients_get_their_own_dot_and_words_in_the_tree(make_window, qtbot):
    window = make_window(_ablated_session())
    report = _run_check(window, qtbot)
    assert sorted(report.zero_grad) == ["0.bias", "0.weight"]
    tree = window.tree.tree_model
    for name in ("0.weight", "0.bias"):
        index = tree.index_for_name(name)
        assert index.data(GRAD_STATUS_ROLE) is GradStatus.ZERO
        assert "connected, but this input and loss give it no signal" in index.data(Qt.ItemDataRole.ToolTipRole)
        icon = index.data(Qt.ItemDataRole.DecorationRole)
        colour = icon.pixmap(12, 12).toImage().pixelColor(6, 6)
        assert colour.name() == QColor(COLORS[GradStatus.ZERO]).name()  # the amber dot, not the green one
    assert tree.index_for_name("2.weight").data(GRAD_STATUS_ROLE) is GradStatus.OK
    assert tree.index_for_name("2.bias").data(GRAD_STATUS_ROLE) is GradStatus.OK


def test_the_panel_does_not_call_zero_gradients_a_pass(make_window, qtbot):
    window = make_window(_ablated_session())
    window.resize(1100, 760)
    _run_check(window, qtbot)
    panel = window.backward_panel
    assert window.bottom_tabs.currentWidget() is panel
    text = panel.verdict_text()
    assert "✔" not in text and "⚠" in text
    assert COLORS[GradStatus.OK] not in text and COLORS[GradStatus.ZERO] in text
    assert "exactly zero" in text and "0.weight" in text
    assert panel.verdict.property("verdictStatus") == GradStatus.ZERO.value
    rows = {panel.table.item(r, 0).text(): panel.table.item(r, 1) for r in range(panel.table.rowCount())}
    assert rows["0.weight"].text() == "zero" and rows["2.weight"].text() == "ok"
    assert "no signal" in rows["0.weight"].toolTip()
    assert rows["0.weight"].foreground().color().name() == QColor(COLORS[GradStatus.ZERO]).name()
    assert "non-zero" not in window.statusBar().currentMessage()
    SHOTS.mkdir(exist_ok=True)
    window.grab().save(str(SHOTS / "window_zero_gradients.png"))


def test_a_check_with_signal_everywhere_stays_green(make_window, qtbot):
    session = _ablated_session()
    with torch.no_grad():
        session.model[2].weight.fill_(0.5)
    window = make_window(session)
    report = _run_check(window, qtbot)
    assert report.zero_grad == []
    text = window.backward_panel.verdict_text()
    assert "✔" in text and COLORS[GradStatus.OK] in text and "non-zero gradients" in text
