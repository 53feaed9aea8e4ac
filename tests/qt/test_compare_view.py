"""Issue 10: Compare with…: the tree's change columns, the difference view on one shared scale,
the A/B toggle, the "A → B (Δ)" tooltip, and clearing."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PySide6.QtCore import QModelIndex, Qt

import paramedit
from paramedit.core.analysis.checkpoint_compare import CompareReport
from paramedit.qt import prompts
from paramedit.qt.parameter_tree_model import COMPARE_COLUMNS, NAME_ROLE, SORT_ROLE
from tests.qt.window_helpers import action, cell_edit_text, select_tensor, table_text

CHANGED = 1.5  # written into 0.weight[1, 2]


@pytest.fixture
def compared(make_window, qtbot, tmp_path):
    """A small MLP opened from checkpoint A, two edits committed (B), compared with A as opened."""
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(6, 5), torch.nn.ReLU(), torch.nn.Linear(5, 3))
    a = {k: v.detach().clone() for k, v in net.state_dict().items()}
    torch.save(a, tmp_path / "a.pt")
    session = paramedit.open_session(net, tmp_path / "a.pt")
    window = make_window(session)
    session.stage("0.weight", "[1, 2]", CHANGED)
    session.stage("2.bias", "[...]", 0.25)
    window.commit()
    with qtbot.waitSignal(window.analysis.compares.comparisonChanged, timeout=10000):
        action(window, "compareOpenedAction").trigger()
    qtbot.waitUntil(lambda: not window.busy, timeout=5000)
    return window, session, a


def test_the_tree_gets_sortable_change_columns_equal_to_the_report(compared, qtbot, qtmodeltester):
    window, _session, _a = compared
    report: CompareReport = window.analysis.compares.report
    tree, header = window.tree, window.tree.view.header()
    assert all(not header.isSectionHidden(c) for c in COMPARE_COLUMNS)
    assert [tree.tree_model.headerData(c, Qt.Orientation.Horizontal) for c in COMPARE_COLUMNS] == [
        "max |Δ|", "rel. change", "changed"]
    for d in report.tensors:
        index = tree.tree_model.index_for_name(d.name)
        assert index.isValid()
        cells = [index.siblingAtColumn(c) for c in COMPARE_COLUMNS]
        assert cells[0].data() == f"{d.max_abs_diff:.3g}"
        assert cells[1].data() == ("∞" if d.rel_change == float("inf") else f"{d.rel_change:.3g}")
        assert cells[2].data() == f"{d.changed_cells:,}"
        assert [c.data(SORT_ROLE) for c in cells] == [d.max_abs_diff, d.rel_change, float(d.changed_cells)]
    assert report.by_name()["0.weight"].changed_cells == 1 and report.by_name()["0.bias"].changed_cells == 0
    # Sorting by max |Δ|, largest first, through the proxy: "2.bias" changed and "2.weight" did not.
    module = tree.proxy.mapFromSource(tree.tree_model.index_for_name("2.weight").parent())
    order = [tree.proxy.index(r, 0, module).data(NAME_ROLE) for r in range(tree.proxy.rowCount(module))]
    assert order == ["2.weight", "2.bias"]  # the model's own order first
    tree.sort_by(COMPARE_COLUMNS[0], Qt.SortOrder.DescendingOrder)
    order = [tree.proxy.index(r, 0, module).data(NAME_ROLE) for r in range(tree.proxy.rowCount(module))]
    assert order == ["2.bias", "2.weight"]
    top = [tree.proxy.index(r, COMPARE_COLUMNS[0]).data(SORT_ROLE) for r in range(tree.proxy.rowCount())]
    assert top == sorted(top, reverse=True)
    qtmodeltester.check(tree.tree_model)


def test_difference_mode_draws_b_minus_a_on_one_symmetric_scale_for_every_tensor(compared, qtbot):
    window, session, a = compared
    report = window.analysis.compares.report
    scale = report.scale()
    assert scale == pytest.approx(max(abs(CHANGED - float(a["0.weight"][1, 2])),
                                      float((0.25 - a["2.bias"]).abs().max())))
    editor, heat = window.editor, window.editor.heatmap
    select_tensor(window, qtbot, "0.weight")
    assert editor.difference_action.isEnabled()
    editor.difference_action.setChecked(True)
    assert heat.levels() == pytest.approx((-scale, scale))
    expected = (session.tensor("0.weight").detach() - a["0.weight"]).numpy()
    assert np.allclose(heat.image_item().image, expected, atol=1e-7)
    assert heat.findChild(type(heat._controls.mode_label), "heatmapModeLabel").text() == "B − A"
    select_tensor(window, qtbot, "2.bias")  # another tensor: the same scale
    assert heat.levels() == pytest.approx((-scale, scale))
    select_tensor(window, qtbot, "0.bias")  # unchanged: all zero, still the shared scale
    assert heat.levels() == pytest.approx((-scale, scale)) and not heat.image_item().image.any()


def test_the_a_b_toggle_shows_a_on_the_same_scale_and_read_only(compared, qtbot):
    window, session, a = compared
    editor, heat = window.editor, window.editor.heatmap
    select_tensor(window, qtbot, "0.weight")
    editor.refresh_heatmap_now()  # the commit's redraw waits on a short timer
    b_levels = heat.levels()
    assert np.allclose(heat.image_item().image, session.tensor("0.weight").detach().numpy())
    assert table_text(window, 1, 2) == "1.5"
    editor.reference_action.setChecked(True)
    assert np.allclose(heat.image_item().image, a["0.weight"].numpy())
    assert heat.levels() == pytest.approx(b_levels)  # one scale for A and B
    assert float(cell_edit_text(window, 1, 2)) == pytest.approx(float(a["0.weight"][1, 2]))
    assert not editor.model.flags(editor.model.index(1, 2)) & Qt.ItemFlag.ItemIsEditable
    assert "showing A" in editor.header.text()
    editor.reference_action.setChecked(False)
    assert table_text(window, 1, 2) == "1.5"
    assert editor.model.flags(editor.model.index(1, 2)) & Qt.ItemFlag.ItemIsEditable
    assert heat.levels() == pytest.approx(b_levels)


def test_the_table_tooltip_says_a_to_b_and_the_difference(compared, qtbot):
    window, _session, a = compared
    select_tensor(window, qtbot, "0.weight")
    before = float(a["0.weight"][1, 2])
    window.editor.table.prefetch_visible()
    model = window.editor.model
    tip = model.data(model.index(1, 2), Qt.ItemDataRole.ToolTipRole)
    assert tip.startswith("0.weight[1, 2]: ")
    a_text, rest = tip.split(": ", 1)[1].split(" → ")
    assert float(a_text) == pytest.approx(before) and rest.startswith("1.5 (Δ +")
    assert float(rest.split("Δ ")[1].split(")")[0]) == pytest.approx(CHANGED - before, rel=1e-5)
    same = model.data(model.index(0, 0), Qt.ItemDataRole.ToolTipRole)
    assert "(Δ 0)" in same


def test_clearing_the_comparison_puts_everything_back(compared, qtbot):
    window, _session, _a = compared
    editor = window.editor
    select_tensor(window, qtbot, "0.weight")
    editor.difference_action.setChecked(True)
    assert window.analysis.compare_bar.isVisible()
    action(window, "clearCompareAction").trigger()
    assert window.analysis.compares.report is None
    assert all(window.tree.view.header().isSectionHidden(c) for c in COMPARE_COLUMNS)
    assert not window.analysis.compare_bar.isVisible()
    assert not editor.difference_action.isChecked() and not editor.difference_action.isEnabled()
    assert not editor.reference_action.isEnabled()
    assert editor.heatmap.findChild(type(editor.heatmap._controls.mode_label), "heatmapModeLabel").text() == "values"
    window.editor.table.prefetch_visible()
    assert "→" not in editor.model.data(editor.model.index(1, 2), Qt.ItemDataRole.ToolTipRole)
    assert not action(window, "clearCompareAction").isEnabled()


def test_compare_with_a_file_asks_for_it_and_a_commit_makes_the_figures_stale(compared, qtbot, tmp_path,
                                                                              monkeypatch):
    window, session, a = compared
    other = {k: v + 1.0 for k, v in a.items()}
    torch.save(other, tmp_path / "c.pt")
    asked: list[str] = []
    monkeypatch.setattr(prompts, "ask_compare_checkpoint",
                        lambda parent, folder: asked.append(folder) or str(tmp_path / "c.pt"))
    with qtbot.waitSignal(window.analysis.compares.comparisonChanged, timeout=10000):
        action(window, "compareAction").trigger()
    assert asked
    report = window.analysis.compares.report
    assert report.by_name()["0.bias"].max_abs_diff == pytest.approx(1.0)
    assert "c.pt" in window.analysis.compare_bar.label.text()
    session.stage("0.bias", "[0]", 9.0)
    window.commit()
    assert window.analysis.compares.stale and "changed since" in window.analysis.compare_bar.label.text()
    with qtbot.waitSignal(window.analysis.compares.comparisonChanged, timeout=10000):
        action(window, "compareAgainAction").trigger()
    assert not window.analysis.compares.stale
    assert window.analysis.compares.report.by_name()["0.bias"].max_abs_diff == pytest.approx(
        abs(9.0 - float(other["0.bias"][0])))


def test_a_cancelled_comparison_keeps_the_one_that_was_on(compared, qtbot, tmp_path, monkeypatch):
    window, _session, a = compared
    before = window.analysis.compares.report
    torch.save(a, tmp_path / "c.pt")
    monkeypatch.setattr(prompts, "ask_compare_checkpoint", lambda parent, folder: str(tmp_path / "c.pt"))
    with qtbot.waitSignal(window.analysis.compares.compareCancelled, timeout=5000):
        action(window, "compareAction").trigger()
        assert window.busy
        window.status_info.cancel_button.click()
    window.jobs.wait_for_threads()
    qtbot.wait(50)  # a result after the cancel is dropped
    assert window.analysis.compares.report is before
    assert not window.tree.view.header().isSectionHidden(COMPARE_COLUMNS[0])


def test_the_difference_view_reads_only_the_sampled_region_of_a(make_window, qtbot, tmp_path, monkeypatch):
    torch.manual_seed(0)
    net = torch.nn.Embedding(20000, 64)
    torch.save({"weight": net.weight.detach().clone()}, tmp_path / "a.pt")
    session = paramedit.open_session(net, tmp_path / "a.pt")
    window = make_window(session)
    with qtbot.waitSignal(window.analysis.compares.comparisonChanged, timeout=10000):
        action(window, "compareOpenedAction").trigger()
    reads: list[tuple[int, ...]] = []
    original = CompareReport.reference_values

    def recording(self, name, index):
        values = original(self, name, index)
        reads.append(tuple(values.shape))
        return values

    monkeypatch.setattr(CompareReport, "reference_values", recording)
    select_tensor(window, qtbot, "weight")
    window.editor.difference_action.setChecked(True)
    heat = window.editor.heatmap
    limits = heat.sampling_limits()
    assert heat.stride()[0] > 1 and reads
    assert all(np.prod(shape) <= max(limits[0] * limits[1], 64 * 32) for shape in reads)  # a sample or a tile
    assert not heat.image_item().image.any()  # nothing changed yet


def test_tree_index_of_module_rows_sums_changed_cells(compared):
    window, _session, _a = compared
    report = window.analysis.compares.report
    module = window.tree.tree_model.index_for_name("0.weight").parent()
    assert module != QModelIndex()
    total = report.by_name()["0.weight"].changed_cells + report.by_name()["0.bias"].changed_cells
    assert module.siblingAtColumn(COMPARE_COLUMNS[2]).data() == f"{total:,}"
