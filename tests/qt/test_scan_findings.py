"""Issue 10: the Scan action, the Findings panel, going to a finding, the tree's marks, and
the scan that runs by itself after opening and after each commit, undo and redo."""

from __future__ import annotations

import threading
import time

import pytest
import torch
from PySide6.QtCore import QItemSelectionModel, Qt

import paramedit
from paramedit.core.session import Session
from paramedit.qt import scan_controller
from paramedit.qt.findings_table_model import FINDING_ROLE, FindingsTableModel
from paramedit.qt.parameter_tree_model import FINDINGS_ROLE
from tests.qt.window_helpers import action

#: The faults of the issue, planted in a 3-layer GPT-2: (tensor, kind, table row, table column).
PLANTED = [
    ("transformer.wte.weight", "nan", 31337, 17),
    ("transformer.h.0.attn.c_attn.weight", "inf", 5, 1234),
    ("transformer.h.1.mlp.c_proj.weight", "dead_row", 777, None),
    ("transformer.h.2.mlp.c_fc.weight", "outlier", 100, 517),
]


@pytest.fixture(scope="module")
def faulty_gpt2():
    transformers = pytest.importorskip("transformers")
    torch.manual_seed(0)
    model = transformers.GPT2LMHeadModel(transformers.GPT2Config(n_layer=3))
    t = model.transformer
    with torch.no_grad():
        t.wte.weight[31337, 17] = float("nan")
        t.h[2].mlp.c_fc.weight[100, 517] = 1e4
        t.h[1].mlp.c_proj.weight[777, :] = 0.0
        t.h[0].attn.c_attn.weight[5, 1234] = float("inf")
    return model


def _scanned(window, qtbot) -> None:
    qtbot.waitUntil(lambda: window.analysis.scans.report is not None and not window.analysis.scans.running,
                    timeout=20000)


def _row(panel, tensor: str, kind: str) -> int:
    row = panel.model.row_of(tensor, kind)
    assert row >= 0, (tensor, kind, [f.describe() for f in window_findings(panel)])
    return row


def window_findings(panel) -> list:
    return [panel.model.finding(i) for i in range(panel.model.rowCount())]


def test_scan_action_finds_every_planted_fault_and_each_row_shows_its_cell(make_window, qtbot, faulty_gpt2):
    window = make_window(paramedit.open_session(faulty_gpt2))
    _scanned(window, qtbot)  # the automatic scan after opening: GPT-2 with 3 layers is small enough
    scan = action(window, "scanAction")
    assert scan.shortcut().toString() == "Ctrl+Shift+H"
    progress: list[tuple[int, int]] = []
    window.jobs.jobProgressed.connect(lambda done, total, _what: progress.append((done, total)))
    with qtbot.waitSignal(window.analysis.scans.scanFinished, timeout=20000) as blocker:
        scan.trigger()
        assert window.busy and window.status_info.cancel_button.isVisible()  # progress bar and Cancel
    assert blocker.args[1] is True  # the user's scan
    total = len(window.session.names())
    assert progress[0] == (0, total) and progress[-1] == (total, total)  # a step per tensor
    panel = window.analysis.findings_panel
    assert window.bottom_tabs.currentWidget() is panel
    table = window.findChild(type(panel.view), "findingsTable")
    assert table is panel.view
    severities = [f.severity for f in window_findings(panel)]
    assert severities == sorted(severities, key=["error", "warning", "info"].index)  # most severe first
    found = {(f.tensor, f.kind): f.index for f in window_findings(panel)}
    assert found[("transformer.wte.weight", "nan")] == "[31337, 17]"
    assert found[("transformer.h.0.attn.c_attn.weight", "inf")] == "[5, 1234]"
    assert found[("transformer.h.1.mlp.c_proj.weight", "dead_row")] == "[777, :]"
    assert found[("transformer.h.2.mlp.c_fc.weight", "outlier")] == "[100, 517]"

    editor, heat = window.editor, window.editor.heatmap
    for tensor, kind, row, col in PLANTED:
        with qtbot.waitSignal(window.analysis.findingShown, timeout=5000):
            panel.activate_row(_row(panel, tensor, kind))
        assert window.tree.current_name() == tensor and editor.model.name == tensor
        current = editor.table.currentIndex()
        assert (current.row(), current.column()) == (row, 0 if col is None else col), kind
        assert heat.markers().focus() == (row, col)
        if col is None:  # a dead row: the whole row is selected, and drawn as a line
            assert editor.table.selectionModel().isRowSelected(row)
            assert ("row", row) in heat.markers().lines()
        else:
            assert editor.table.selectionModel().selectedIndexes() == [current]
            assert (kind, row, col) in heat.markers().spots()
        word = {"nan": "NaN", "inf": "Inf", "dead_row": "dead row", "outlier": "outlier"}[kind]
        assert heat.findings_text().startswith(f"1 {word} at {found[(tensor, kind)]}")  # counted first
        visible = editor.table.viewport().rect()
        assert visible.contains(editor.table.visualRect(current).center())  # scrolled to it


def test_enter_on_a_finding_row_shows_it(make_window, qtbot, faulty_gpt2):
    window = make_window(paramedit.open_session(faulty_gpt2))
    _scanned(window, qtbot)
    panel = window.analysis.findings_panel
    view = panel.view
    view.setFocus()
    view.setCurrentIndex(panel.model.index(_row(panel, "transformer.wte.weight", "nan"), 1))
    with qtbot.waitSignal(window.analysis.findingShown, timeout=5000):
        qtbot.keyClick(view, Qt.Key.Key_Return)
    current = window.editor.table.currentIndex()
    assert (current.row(), current.column()) == (31337, 17)


def test_the_tree_marks_every_tensor_with_an_error_or_warning(make_window, qtbot, faulty_gpt2):
    window = make_window(paramedit.open_session(faulty_gpt2))
    _scanned(window, qtbot)
    tree = window.tree.tree_model
    for tensor, kind, _row, _col in PLANTED:
        index = tree.index_for_name(tensor)
        assert index.data(FINDINGS_ROLE) == ("error" if kind in ("nan", "inf") else "warning")
        assert index.data(Qt.ItemDataRole.DecorationRole) is not None
        assert "scan:" in index.data(Qt.ItemDataRole.ToolTipRole)
    clean = tree.index_for_name("transformer.h.0.ln_1.weight")  # constant: info only, no mark
    assert clean.data(FINDINGS_ROLE) is None
    assert clean.data(Qt.ItemDataRole.DecorationRole) is None
    assert window.bottom_tabs.tabText(window.bottom_tabs.indexOf(window.analysis.findings_panel)) == "Findings (4)"


def test_findings_model_passes_the_model_tester(qapp, qtmodeltester):
    net = torch.nn.Linear(40, 8)
    with torch.no_grad():
        net.weight[3, 4] = float("nan")
        net.weight[5].zero_()
    report = paramedit.open_session(net).scan()
    model = FindingsTableModel()
    qtmodeltester.check(model)
    model.set_report(report)
    qtmodeltester.check(model)
    assert model.rowCount() == len(report.findings) >= 2
    assert model.index(0, 0).data(FINDING_ROLE) is report.findings[0]
    assert model.index(0, 2).data() == "NaN" and model.index(0, 3).data() == "[3, 4]"


def test_a_finding_in_a_conv_weight_opens_the_slice_that_holds_it(make_window, qtbot):
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3), torch.nn.ReLU())
    with torch.no_grad():
        net[0].weight[2, 1, 0, 2] = float("nan")
        net[0].weight[5].zero_()  # output channel 5 is dead: [5, :, :, :]
    window = make_window(paramedit.open_session(net))
    _scanned(window, qtbot)
    panel, editor = window.analysis.findings_panel, window.editor
    with qtbot.waitSignal(window.analysis.findingShown, timeout=5000):
        panel.activate_row(_row(panel, "0.weight", "nan"))
    assert (editor.model.row_dim, editor.model.col_dim) == (0, 1)
    assert editor.slice_controls.fixed() == {2: 0, 3: 2} and editor.model.fixed == {2: 0, 3: 2}
    assert editor.model.region_text() == "[:, :, 0, 2]"
    current = editor.table.currentIndex()
    assert (current.row(), current.column()) == (2, 1)
    assert ("nan", 2, 1) in editor.heatmap.markers().spots()
    editor.table.prefetch_visible()  # the table reads the cells it is about to paint
    assert editor.model.data(current) == "nan"
    # The dead channel: row 5 of every slice.
    with qtbot.waitSignal(window.analysis.findingShown, timeout=5000):
        panel.activate_row(_row(panel, "0.weight", "dead_row"))
    current = editor.table.currentIndex()
    assert (current.row(), current.column()) == (5, 0)
    assert editor.table.selectionModel().isRowSelected(5)
    assert ("row", 5) in editor.heatmap.markers().lines()
    # In a slice without the NaN, it is listed as elsewhere and not drawn.
    editor.slice_controls.set_fixed_indices({3: 0})
    assert ("nan", 2, 1) not in editor.heatmap.markers().spots()
    assert "1 NaN at [2, 1, 0, 2] (in another slice)" in editor.heatmap.findings_text()


def test_a_cancelled_scan_leaves_everything_as_it_was(make_window, qtbot, monkeypatch):
    net = torch.nn.Linear(64, 32)
    window = make_window(paramedit.open_session(net))
    _scanned(window, qtbot)
    before = window.analysis.scans.report
    assert before is not None and not before.findings
    with torch.no_grad():  # behind the window's back: a new scan would find it
        net.weight[3, 4] = float("nan")
    calls: list = []
    original = Session.scan

    def recording(self, *args, **kwargs):
        calls.append(kwargs.get("cancelled"))
        return original(self, *args, **kwargs)

    monkeypatch.setattr(Session, "scan", recording)
    with qtbot.waitSignal(window.analysis.scans.scanCancelled, timeout=5000):
        action(window, "scanAction").trigger()
        assert window.busy and window.status_info.cancel_button.isVisible()
        window.status_info.cancel_button.click()
    window.jobs.wait_for_threads()
    qtbot.wait(50)  # a result that comes after the cancel must be dropped
    assert window.analysis.scans.report is before
    assert window.analysis.findings_panel.model.rowCount() == 0
    assert window.tree.tree_model.index_for_name("weight").data(FINDINGS_ROLE) is None
    assert calls and calls[0]() is True  # the worker was told to stop
    assert not window.busy


def test_automatic_scan_after_opening_and_rescan_after_commit_and_undo(make_window, qtbot, monkeypatch):
    names_scanned: list = []
    original = Session.scan

    def recording(self, *args, **kwargs):
        names_scanned.append(kwargs.get("names"))
        return original(self, *args, **kwargs)

    monkeypatch.setattr(Session, "scan", recording)
    net = torch.nn.Sequential(torch.nn.Linear(16, 8), torch.nn.Linear(8, 4))
    session = paramedit.open_session(net)
    window = make_window(session)
    _scanned(window, qtbot)
    assert names_scanned == [None]  # the whole model, by itself
    assert window.analysis.scans.whole and not window.analysis.scans.report.findings
    assert not window.busy  # it never held the window up

    session.stage("0.weight", "[1, 2]", float("nan"))
    with qtbot.waitSignal(window.analysis.scans.reportChanged, timeout=5000):
        window.commit()
    assert names_scanned[-1] == ["0.weight"]  # only what the commit wrote
    report = window.analysis.scans.report
    assert [(f.tensor, f.kind, f.index) for f in report.findings] == [("0.weight", "nan", "[1, 2]")]
    assert window.tree.tree_model.index_for_name("0.weight").data(FINDINGS_ROLE) == "error"

    with qtbot.waitSignal(window.analysis.scans.reportChanged, timeout=5000):
        window.undo()
    assert names_scanned[-1] == ["0.weight"]
    assert not window.analysis.scans.report.findings
    assert window.tree.tree_model.index_for_name("0.weight").data(FINDINGS_ROLE) is None

    with qtbot.waitSignal(window.analysis.scans.reportChanged, timeout=5000):
        window.redo()
    assert [f.kind for f in window.analysis.scans.report.findings] == ["nan"]


def test_a_model_too_big_to_scan_by_itself_waits_for_the_scan_action(make_window, qtbot, monkeypatch):
    monkeypatch.setattr(scan_controller, "AUTO_SCAN_ELEMENTS", 100)
    window = make_window(paramedit.open_session(torch.nn.Linear(64, 32)))
    qtbot.wait(50)
    assert window.analysis.scans.report is None and not window.analysis.scans.running
    assert "more than" in window.analysis.findings_panel.summary.text()
    with qtbot.waitSignal(window.analysis.scans.scanFinished, timeout=5000):
        action(window, "scanAction").trigger()
    assert window.analysis.scans.report.tensors_scanned == 2


def test_a_job_started_during_the_automatic_scan_goes_first_and_the_scan_runs_after(
        make_window, qtbot, monkeypatch, demo_session):
    started, calls = threading.Event(), []
    original = Session.scan

    def slow_first(self, *args, **kwargs):
        calls.append(kwargs.get("names"))
        if len(calls) == 1:  # the first scan waits until it is told to stop
            started.set()
            while not kwargs["cancelled"]():
                time.sleep(0.005)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(Session, "scan", slow_first)
    window = make_window(demo_session)
    scans = window.analysis.scans
    qtbot.waitUntil(started.is_set, timeout=5000)
    assert scans.running and not window.busy  # an automatic scan does not hold the window up
    assert window.main_splitter.isEnabled() and action(window, "backwardAction").isEnabled()
    with qtbot.waitSignal(window.backwardShown, timeout=20000):
        action(window, "backwardAction").trigger()  # goes first
    _scanned(window, qtbot)  # and the scan runs again after it
    assert calls == [None, None] and scans.whole


def test_select_in_the_table_moves_the_focus_mark_with_the_tensor(make_window, qtbot):
    """The focus mark belongs to the tensor it was set for."""
    net = torch.nn.Sequential(torch.nn.Linear(16, 8), torch.nn.Linear(8, 4))
    with torch.no_grad():
        net[0].weight[1, 2] = float("inf")
    window = make_window(paramedit.open_session(net))
    _scanned(window, qtbot)
    window.analysis.findings_panel.activate_row(0)
    assert window.editor.heatmap.markers().focus() == (1, 2)
    tree = window.tree
    index = tree.proxy.mapFromSource(tree.tree_model.index_for_name("1.weight"))
    tree.view.selectionModel().setCurrentIndex(index, QItemSelectionModel.SelectionFlag.ClearAndSelect)
    qtbot.waitUntil(lambda: window.editor.model.name == "1.weight", timeout=2000)
    assert window.editor.heatmap.markers().focus() is None
