"""Issue 3: editing tensors in the window — cells, commit in place, paste, undo/redo, slices, heatmap."""

from __future__ import annotations

import torch
from PySide6.QtCore import Qt
from PySide6.QtGui import QGuiApplication

from paramedit.core.editing.values import format_tsv
from paramedit.qt import prompts
from paramedit.qt.number_format import NumberFormat
from paramedit.qt.selection_edit_dialog import SelectionEdit
from paramedit.qt.tensor_table_model import STAGED_BRUSH
from tests.qt.window_helpers import (
    action,
    cell_edit_text,
    heatmap_click,
    select_cells,
    select_tensor,
    table_text,
    type_into_cell,
)


def test_typed_value_is_staged_then_committed_in_place(window, qtbot):
    session = window.session
    param = session.tensor("mlp.0.weight")
    ptr = param.data_ptr()
    select_tensor(window, qtbot, "mlp.0.weight")
    assert window.editor.model.rowCount() == 32 and window.editor.model.columnCount() == 16

    type_into_cell(window, qtbot, 1, 2, "0.5")
    assert len(session.staged) == 1
    assert param[1, 2].item() != 0.5  # staged only: nothing written yet
    model = window.editor.model
    assert model.data(model.index(1, 2), Qt.ItemDataRole.BackgroundRole) == STAGED_BRUSH
    assert table_text(window, 1, 2) == "0.5"
    assert action(window, "commitAction").isEnabled()

    action(window, "commitAction").trigger()
    assert session.tensor("mlp.0.weight") is param
    assert isinstance(param, torch.nn.Parameter) and param.requires_grad
    assert param.data_ptr() == ptr
    assert param[1, 2].item() == 0.5
    assert not session.staged
    assert model.data(model.index(1, 2), Qt.ItemDataRole.BackgroundRole) != STAGED_BRUSH
    assert "same object" in window.statusBar().currentMessage()
    assert "mlp.0.weight: same object, same storage, still nn.Parameter" in window.staged_panel.verification.text()
    assert not action(window, "commitAction").isEnabled()


def test_bad_text_is_refused_and_the_status_bar_says_why(window, qtbot):
    select_tensor(window, qtbot, "mlp.0.weight")
    before = table_text(window, 0, 0)
    type_into_cell(window, qtbot, 0, 0, "abc")
    assert table_text(window, 0, 0) == before
    assert not window.session.staged
    assert "not a number" in window.statusBar().currentMessage()

    select_tensor(window, qtbot, "steps_trained")  # int64 scalar: no fractions
    type_into_cell(window, qtbot, 0, 0, "2.5")
    assert not window.session.staged
    assert "fractional part" in window.statusBar().currentMessage()


def test_paste_tsv_block_from_the_clipboard_and_copy_it_back(window, qtbot):
    select_tensor(window, qtbot, "mlp.2.weight")
    QGuiApplication.clipboard().setText("1\t2\t3\n4\t5\t6\n")
    select_cells(window, (2, 3), (4, 5))
    qtbot.keyClick(window.editor.table, Qt.Key.Key_V, Qt.KeyboardModifier.ControlModifier)
    assert [e.index for e in window.session.staged] == ["[2:4, 4:7]"]
    action(window, "commitAction").trigger()
    expected = torch.tensor([[1.0, 2, 3], [4, 5, 6]])
    assert torch.equal(window.session.tensor("mlp.2.weight")[2:4, 4:7], expected)

    select_cells(window, (2, 4), (4, 7))
    qtbot.keyClick(window.editor.table, Qt.Key.Key_C, Qt.KeyboardModifier.ControlModifier)
    assert QGuiApplication.clipboard().text() == format_tsv(expected)

    # A 2x3 paste into a 2x2 selection does not fit: refused, nothing staged.
    select_cells(window, (0, 2), (0, 2))
    action(window, "pasteAction").trigger()
    assert not window.session.staged
    assert "paste refused" in window.statusBar().currentMessage()


def test_undo_and_redo_by_action_and_shortcut(window, qtbot):
    select_tensor(window, qtbot, "mlp.0.bias")
    bias = window.session.tensor("mlp.0.bias")
    old = bias[3].item()
    type_into_cell(window, qtbot, 0, 3, "7")
    action(window, "commitAction").trigger()
    assert bias[3].item() == 7.0
    assert window.tree.tree_model.index_for_name("mlp.0.bias").data(Qt.ItemDataRole.BackgroundRole) is not None

    action(window, "undoAction").trigger()
    assert bias[3].item() == old
    assert cell_edit_text(window, 0, 3) == str(torch.tensor(old).numpy())
    assert action(window, "redoAction").isEnabled()

    window.activateWindow()
    window.editor.table.setFocus()
    qtbot.waitUntil(lambda: QGuiApplication.focusWindow() is not None, timeout=2000)
    qtbot.keyClick(window.editor.table, Qt.Key.Key_Z,
                   Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier)
    assert bias[3].item() == 7.0
    assert cell_edit_text(window, 0, 3) == "7.0" and table_text(window, 0, 3) == "7"
    qtbot.keyClick(window.editor.table, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert bias[3].item() == old


def test_discard_drops_staged_edits(window, qtbot):
    select_tensor(window, qtbot, "norm.weight")
    type_into_cell(window, qtbot, 0, 0, "3")
    assert window.staged_panel.staged_list.count() == 1
    action(window, "discardAction").trigger()
    assert not window.session.staged
    assert window.staged_panel.staged_list.count() == 0
    assert window.session.tensor("norm.weight")[0].item() != 3.0


def test_nd_slice_controls_change_the_table(window, qtbot):
    weight = window.session.tensor("mix.weight")  # (16, 16, 3): opens on its two largest dims (issue 9)
    select_tensor(window, qtbot, "mix.weight")
    model = window.editor.model
    assert (model.rowCount(), model.columnCount()) == (16, 16)
    spin = window.editor.slice_controls.findChild(type(window.editor.decimals_spin), "sliceIndex2")
    spin.setValue(2)
    qtbot.waitUntil(lambda: model.region_text() == "[:, :, 2]", timeout=2000)
    assert cell_edit_text(window, 5, 1) == str(weight[5, 1, 2].detach().numpy())

    col_combo = window.editor.slice_controls.findChild(type(window.acts.device_combo), "sliceColDim")
    col_combo.setCurrentIndex(2)  # rows stay dim 0, columns = dim 2, dim 1 fixed
    qtbot.waitUntil(lambda: model.region_text().startswith("[:, "), timeout=2000)
    assert (model.rowCount(), model.columnCount()) == (16, 3)
    fixed = window.editor.slice_controls.fixed()[1]
    assert cell_edit_text(window, 7, 2) == str(weight[7, fixed, 2].detach().numpy())

    type_into_cell(window, qtbot, 7, 2, "1.25")
    assert window.session.staged[-1].index == f"[7, {fixed}, 2]"
    action(window, "commitAction").trigger()
    assert weight[7, fixed, 2].item() == 1.25


def test_heatmap_click_selects_the_table_cell_and_selection_is_outlined(window, qtbot):
    select_tensor(window, qtbot, "mlp.0.weight")
    heatmap_click(window, qtbot, 20, 9)
    current = window.editor.table.currentIndex()
    assert (current.row(), current.column()) == (20, 9)
    assert window.editor.table.selection_rect() == ((20, 21), (9, 10))

    select_cells(window, (1, 4), (2, 6))
    rect = window.editor.heatmap.selection_rect()
    assert rect is not None
    assert (rect.top(), rect.bottom(), rect.left(), rect.right()) == (1, 4, 2, 6)


def test_fill_formula_and_init_on_the_selection(window, qtbot, monkeypatch):
    select_tensor(window, qtbot, "mlp.0.weight")
    queue = [SelectionEdit("fill", value=2.0), SelectionEdit("formula", expr="x * 0 - 1"),
             SelectionEdit("init", method="arange", args={"start": 0.0, "step": 1.0})]

    def answer(parent, region, dtype, apply, mode, **_kwargs):
        apply(queue.pop(0))
        return True

    monkeypatch.setattr(prompts, "ask_selection_edit", answer)
    select_cells(window, (0, 2), (0, 3))
    action(window, "fillAction").trigger()
    select_cells(window, (2, 3), (0, 16))
    action(window, "formulaAction").trigger()
    select_cells(window, (3, 4), (0, 4))
    action(window, "initAction").trigger()
    assert [e.op for e in window.session.staged] == ["set", "formula", "init"]
    action(window, "commitAction").trigger()
    w = window.session.tensor("mlp.0.weight")
    assert torch.all(w[0:2, 0:3] == 2.0)
    assert torch.all(w[2] == -1.0)
    assert torch.equal(w[3, :4], torch.arange(4.0))


def test_copy_the_first_rows_of_a_pretrained_layer_from_the_window(make_window, qtbot, monkeypatch, tmp_path):
    """Issue 3's seed example, by hand: three rows of a pre-trained Linear(10, 5) into a new Linear(10, 3)."""
    from PySide6.QtWidgets import QDialog, QDialogButtonBox

    import paramedit
    from paramedit.qt.selection_edit_dialog import SelectionEditDialog

    torch.manual_seed(0)
    pretrained = torch.nn.Linear(10, 5)
    source = tmp_path / "pretrained.pt"
    torch.save(pretrained.state_dict(), source)
    new = torch.nn.Linear(10, 3)
    bias_before = new.bias.detach().clone()
    window = make_window(paramedit.open_session(new))
    select_tensor(window, qtbot, "weight")
    select_cells(window, (0, 3), (0, 10))
    attempts = []

    def answer(parent, region, dtype, apply, mode, **kwargs):
        dialog = SelectionEditDialog(parent, region, dtype, apply, mode, **kwargs)
        qtbot.addWidget(dialog)
        assert dialog.tabs.tabText(dialog.tabs.currentIndex()) == "Copy"
        assert dialog.source_name_edit.text() == "weight"  # the same name, by default
        dialog.source_edit.setText(str(source))
        stage = dialog.findChild(QDialogButtonBox).button(QDialogButtonBox.StandardButton.Ok)
        for index in ("[:2, :]", "[:3, :]"):  # a wrong shape first: refused, the dialog stays open
            dialog.source_index_edit.clear()
            qtbot.keyClicks(dialog.source_index_edit, index)
            qtbot.mouseClick(stage, Qt.MouseButton.LeftButton)
            attempts.append((dialog.error_label.text(), dialog.result()))
        return dialog.result() == QDialog.DialogCode.Accepted

    monkeypatch.setattr(prompts, "ask_selection_edit", answer)
    action(window, "copyFromAction").trigger()
    assert "shape" in attempts[0][0] and attempts[1][1] == QDialog.DialogCode.Accepted
    assert [(e.op, e.source_index) for e in window.session.staged] == [("copy", "[:3, :]")]
    weight = window.session.tensor("weight")
    action(window, "commitAction").trigger()
    assert window.session.tensor("weight") is weight and isinstance(weight, torch.nn.Parameter)
    assert torch.equal(weight.detach(), pretrained.weight.detach()[:3])
    assert torch.equal(new.bias.detach(), bias_before)
    report = window.session.run_backward(inputs=(torch.randn(2, 10),))
    assert report.ok and weight.grad is not None


def test_blocks_ctrl_clicked_apart_are_regions_and_overlapping_ones_are_refused(window, qtbot, monkeypatch):
    from PySide6.QtCore import QItemSelection, QItemSelectionModel

    select_tensor(window, qtbot, "mlp.0.weight")
    model, sm = window.editor.model, window.editor.table.selectionModel()
    asked = []
    monkeypatch.setattr(prompts, "ask_selection_edit",
                        lambda _p, where, _d, apply, *_a, **_k: asked.append(where) or apply(SelectionEdit("fill", value=0.0))
                        or True)
    sm.select(QItemSelection(model.index(0, 0), model.index(0, 0)), QItemSelectionModel.SelectionFlag.ClearAndSelect)
    sm.select(QItemSelection(model.index(2, 2), model.index(3, 2)), QItemSelectionModel.SelectionFlag.Select)
    assert window.editor.region_box.edit.text() == "[0:1, 0:1]; [2:4, 2:3]"
    action(window, "fillAction").trigger()
    assert asked == ["mlp.0.weight: 2 regions, [0:1, 0:1]; [2:4, 2:3]"]
    assert [e.index for e in window.session.staged] == ["[0:1, 0:1]", "[2:4, 2:3]"]
    action(window, "commitAction").trigger()
    assert len(window.session.history.records) == 1  # one commit, one undo step
    assert [e["index"] for e in window.session.edit_log()["edits"]] == ["[0:1, 0:1]", "[2:4, 2:3]"]
    w = window.session.tensor("mlp.0.weight")
    assert w[0, 0] == 0 and torch.all(w[2:4, 2] == 0) and w[1, 1] != 0

    sm.select(QItemSelection(model.index(0, 0), model.index(1, 1)), QItemSelectionModel.SelectionFlag.ClearAndSelect)
    sm.select(QItemSelection(model.index(1, 1), model.index(2, 2)), QItemSelectionModel.SelectionFlag.Select)
    action(window, "fillAction").trigger()  # blocks that overlap are their union: each cell once
    staged = torch.zeros(4, 4, dtype=torch.int)
    for edit in window.session.staged:
        staged[window.session.region("mlp.0.weight", edit.index).index[:2]] += 1
    assert staged.sum() == 7 and staged.max() == 1 and staged[0:2, 0:2].all() and staged[1:3, 1:3].all()


def test_bfloat16_shows_the_stored_value(make_window, qtbot):
    import paramedit

    net = torch.nn.Linear(3, 2).to(torch.bfloat16)
    window = make_window(paramedit.open_session(net))
    select_tensor(window, qtbot, "weight")
    type_into_cell(window, qtbot, 0, 1, "0.1")
    assert cell_edit_text(window, 0, 1) == "0.10009765625"  # the editor and tooltip: what is stored
    assert "0.10009765625" in window.editor.model.data(window.editor.model.index(0, 1), Qt.ItemDataRole.ToolTipRole)
    window.editor.set_number_format(NumberFormat.STORED)
    assert table_text(window, 0, 1) == "0.10009765625"


def test_read_only_tensor_is_not_editable(make_window, qtbot):
    import paramedit

    net = torch.nn.Linear(2, 2)
    net.register_buffer("phase", torch.zeros(3, dtype=torch.complex64))
    window = make_window(paramedit.open_session(net))
    select_tensor(window, qtbot, "phase")
    model = window.editor.model
    window.editor.table.prefetch_visible()
    index = model.index(0, 1)
    assert not model.flags(index) & Qt.ItemFlag.ItemIsEditable
    assert "read-only" in model.data(index, Qt.ItemDataRole.ToolTipRole)
    assert not model.setData(index, "1")


def test_ctrl_return_commits_the_value_still_being_typed(window, qtbot):
    from PySide6.QtWidgets import QLineEdit

    select_tensor(window, qtbot, "norm.weight")
    table = window.editor.table
    index = table.model().index(0, 4)
    table.setCurrentIndex(index)
    table.edit(index)
    qtbot.waitUntil(lambda: any(e.isVisible() for e in table.findChildren(QLineEdit)), timeout=2000)
    editor = next(e for e in table.findChildren(QLineEdit) if e.isVisible())
    editor.selectAll()
    qtbot.keyClicks(editor, "0.3")
    window.activateWindow()
    qtbot.keyClick(editor, Qt.Key.Key_Return, Qt.KeyboardModifier.ControlModifier)
    assert window.session.tensor("norm.weight")[4].item() == torch.tensor(0.3).item()
    assert not window.session.staged
