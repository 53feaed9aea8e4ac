"""Issue 12: presenting. Zoom keys scale the working area's fonts together and are remembered;
the presentation layout (F11) fits a 1280×720 projector, also at a 1.5 scale factor, and goes
back exactly; compact numbers give ten columns in a 1400 px window; the tree never cuts names
it has room for."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QGuiApplication

from paramedit.qt.settings import app_settings
from tests.qt.window_helpers import action, select_tensor

ROOT = Path(__file__).resolve().parents[2]


def fully_visible_columns(window) -> list[int]:
    """Table columns shown whole, each wide enough for every text it shows."""
    table, model = window.editor.table, window.editor.model
    table.prefetch_visible()
    fm, width = table.fontMetrics(), table.viewport().width()
    shown = []
    for c in range(model.columnCount()):
        x = table.columnViewportPosition(c)
        if x < 0 or x + table.columnWidth(c) > width:
            continue
        rows = range(max(table.rowAt(0), 0), min(model.rowCount(), 30))
        assert all(fm.horizontalAdvance(model.index(r, c).data() or "") + 4 <= table.columnWidth(c) for r in rows), c
        shown.append(c)
    return shown


def _fonts(window) -> dict[str, float]:
    heat = window.editor.heatmap
    return {"tree": window.tree.view.font().pointSizeF(), "table": window.editor.table.font().pointSizeF(),
            "axis": heat._plot.getAxis("left").style["tickFont"].pointSizeF(),
            "stats": heat._stats_label.font().pointSizeF(), "outputs": window.outputs_panel.view.font().pointSizeF(),
            "options": window.editor.format_button.font().pointSizeF()}


def _press(window, qtbot, key: Qt.Key) -> None:
    window.activateWindow()
    window.editor.table.setFocus()
    qtbot.waitUntil(lambda: QGuiApplication.focusWindow() is not None, timeout=2000)
    qtbot.keyClick(window.editor.table, key, Qt.KeyboardModifier.ControlModifier)


def test_zoom_keys_scale_every_font_together_and_are_remembered(window, make_window, demo_session, qtbot):
    base = _fonts(window)
    assert len(set(base.values())) == 1  # one size to start with
    column = window.editor.table.horizontalHeader().defaultSectionSize()
    _press(window, qtbot, Qt.Key.Key_Equal)  # Ctrl+=
    bigger = _fonts(window)
    assert all(v == pytest.approx(base["table"] * 1.15) for v in bigger.values()), bigger
    assert window.editor.table.horizontalHeader().defaultSectionSize() > column  # columns fit the bigger text
    _press(window, qtbot, Qt.Key.Key_Equal)
    assert _fonts(window)["table"] == pytest.approx(base["table"] * 1.3)
    assert float(app_settings().value("view/zoom")) == pytest.approx(1.3)  # this machine's settings

    window.close()  # a new window on this machine starts at the same zoom
    again = make_window(demo_session)
    assert all(v == pytest.approx(base["table"] * 1.3) for v in _fonts(again).values())
    _press(again, qtbot, Qt.Key.Key_Minus)  # Ctrl+-
    assert _fonts(again)["table"] == pytest.approx(base["table"] * 1.15)
    _press(again, qtbot, Qt.Key.Key_0)  # Ctrl+0
    assert _fonts(again) == pytest.approx(base)
    assert action(again, "zoomInAction").shortcut().toString() == "Ctrl+="


def test_the_presentation_layout_fits_1280x720_and_goes_back_exactly(window, qtbot):
    window.resize(1280, 720)
    select_tensor(window, qtbot, "mlp.0.weight")
    header = window.tree.view.header()
    before = (window.main_splitter.sizes(), window.right_splitter.sizes(), window.editor.splitter.sizes(),
              [header.isSectionHidden(c) for c in range(header.count())], window.bottom_tabs.currentIndex())
    present = action(window, "presentAction")
    assert present.shortcut().toString() == "F11" and present.isCheckable()
    present.trigger()
    qtbot.waitUntil(lambda: window.presentation.presenting and present.isChecked(), timeout=2000)
    window.grab()  # lay out at the new sizes
    assert window.right_splitter.orientation() == Qt.Orientation.Horizontal  # outputs beside the editor
    assert window.editor.splitter.orientation() == Qt.Orientation.Vertical  # table above the heatmap
    assert all(header.isSectionHidden(c) for c in range(1, header.count()))  # the tree is a list of names
    assert window.tree.width() <= 0.2 * window.width()
    assert window.tree.view.sizeHintForColumn(0) <= window.tree.view.columnWidth(0)  # names whole
    assert not window.main_toolbar.isVisible() and window.present_toolbar.isVisible()
    assert {a.objectName() for a in window.present_toolbar.actions() if a.objectName()} >= {
        "fillAction", "commitAction", "undoAction", "redoAction", "presentAction"}
    assert window.bottom_tabs.currentWidget() is window.outputs_panel
    assert len(fully_visible_columns(window)) >= 6
    graphics = window.editor.heatmap.graphics_view()
    assert graphics.width() >= 400 and graphics.height() >= 250  # the heatmap takes the space
    assert window.outputs_panel.width() >= 300

    present.trigger()  # and back, exactly
    assert not window.presentation.presenting and not present.isChecked()
    assert window.right_splitter.orientation() == Qt.Orientation.Vertical
    assert window.editor.splitter.orientation() == Qt.Orientation.Horizontal
    assert (window.main_splitter.sizes(), window.right_splitter.sizes(), window.editor.splitter.sizes(),
            [header.isSectionHidden(c) for c in range(header.count())], window.bottom_tabs.currentIndex()) == before
    assert window.main_toolbar.isVisible() and not window.present_toolbar.isVisible()


def test_the_saved_layout_is_the_normal_one_even_when_closed_presenting(window, make_window, demo_session):
    normal = (window.main_splitter.saveState(), window.right_splitter.saveState())
    window.presentation.set_presenting(True)
    window.close()
    stored = app_settings()
    assert (stored.value("window/main_splitter"), stored.value("window/right_splitter")) == normal
    again = make_window(demo_session)
    assert not again.presentation.presenting and again.right_splitter.orientation() == Qt.Orientation.Vertical
    assert again.main_toolbar.isVisible() and not again.present_toolbar.isVisible()


def test_a_1400px_window_shows_ten_compact_float32_columns_and_whole_names(window, qtbot):
    window.resize(1400, 900)
    select_tensor(window, qtbot, "embed.weight")  # 64×16 float32
    window.grab()
    assert window.editor.format_button.text().startswith("Compact")
    assert len(fully_visible_columns(window)) >= 10
    model = window.editor.model
    index = model.index(0, 0)
    value = window.session.tensor("embed.weight")[0, 0].item()
    assert float(index.data(Qt.ItemDataRole.EditRole)) == pytest.approx(value, rel=1e-7)  # every digit to edit
    assert index.data(Qt.ItemDataRole.EditRole) in index.data(Qt.ItemDataRole.ToolTipRole)
    view = window.tree.view
    assert view.sizeHintForColumn(0) <= view.columnWidth(0)  # no name is cut while the pane has room


SCALED = textwrap.dedent("""
    import json, sys, time
    from PySide6.QtWidgets import QApplication
    app = QApplication([])
    import torch
    from torch import nn
    import paramedit
    from paramedit.qt import settings
    settings.use_settings_file(sys.argv[1])
    from paramedit.qt.main_window import MainWindow
    from paramedit.qt.job_runner import JobRunner
    torch.manual_seed(0)
    session = paramedit.open_session(nn.Sequential(nn.Linear(784, 32), nn.ReLU(), nn.Linear(32, 10)))
    session.example_inputs = (torch.randn(4, 784),)
    w = MainWindow(session)
    w.resize(853, 480)  # 1280x720 device pixels at a 1.5 scale factor
    w.show()
    w.tree.select_name("2.weight")
    w.presentation.set_presenting(True)
    end = time.monotonic() + 1.0
    while time.monotonic() < end:
        app.processEvents()
    shot = w.grab()
    shot.save(sys.argv[2])
    t, m = w.editor.table, w.editor.model
    t.prefetch_visible()
    fm, vw = t.fontMetrics(), t.viewport().width()
    whole = [c for c in range(m.columnCount()) if t.columnViewportPosition(c) >= 0
             and t.columnViewportPosition(c) + t.columnWidth(c) <= vw
             and all(fm.horizontalAdvance(m.index(r, c).data() or "") + 4 <= t.columnWidth(c) for r in range(10))]
    g = w.editor.heatmap.graphics_view()
    print(json.dumps({"size": [w.width(), w.height()], "shot": [shot.width(), shot.height()], "columns": len(whole),
                      "heatmap": [g.width(), g.height()], "outputs": w.outputs_panel.width(),
                      "tree_names_whole": w.tree.view.sizeHintForColumn(0) <= w.tree.view.columnWidth(0)}))
    w.probes.stop()
    JobRunner.wait_for_threads()
""")


def test_the_presentation_layout_at_a_1_5_scale_factor(tmp_path):
    env = {**os.environ, "QT_SCALE_FACTOR": "1.5", "QT_QPA_PLATFORM": "offscreen"}
    shot = tmp_path / "present-1.5.png"
    run = subprocess.run([sys.executable, "-c", SCALED, str(tmp_path / "settings.ini"), str(shot)], cwd=ROOT,
                         env=env, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    found = json.loads(run.stdout.strip().splitlines()[-1])
    assert found["size"] == [853, 480] and found["shot"] == [1280, 720]  # the window fits the projector
    assert found["columns"] >= 6 and found["tree_names_whole"]
    assert found["heatmap"][0] >= 250 and found["heatmap"][1] >= 150 and found["outputs"] >= 200
    assert shot.stat().st_size > 0
