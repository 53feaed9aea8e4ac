"""Issue 13: regions typed into the region box, several at once, Ctrl+G, paste into an N-D region
and the formula templates, driven through the window's widgets."""

from __future__ import annotations

import pytest
import torch
from PySide6.QtCore import Qt
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QDialogButtonBox

import paramedit
from paramedit.core.editing.values import format_tsv
from paramedit.qt import prompts
from paramedit.qt.selection_edit_dialog import SelectionEdit, SelectionEditDialog
from tests.qt.window_helpers import action, select_cells, select_tensor

SOBEL = torch.tensor([[1.0, 0.0, -1.0], [2.0, 0.0, -2.0], [1.0, 0.0, -1.0]])


@pytest.fixture
def attention_window(make_window):
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(768, 256))  # weight 256×768: a c_attn-shaped block of columns
    return make_window(paramedit.open_session(net))


@pytest.fixture
def conv_window(make_window):
    torch.manual_seed(0)
    return make_window(paramedit.open_session(torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3))))


def type_region(window, qtbot, text: str) -> None:
    box = window.editor.region_box.edit
    box.selectAll()
    qtbot.keyClicks(box, text)
    qtbot.keyClick(box, Qt.Key.Key_Return)


def fill_with(monkeypatch, value: float) -> list[str]:
    asked: list[str] = []

    def answer(_parent, where, _dtype, apply, *_args, **_kwargs):
        asked.append(where)
        apply(SelectionEdit("fill", value=value))
        return True

    monkeypatch.setattr(prompts, "ask_selection_edit", answer)
    return asked


def selected_blocks(window) -> list[tuple[tuple[int, int], tuple[int, int]]]:
    return sorted(((r.top(), r.bottom() + 1), (r.left(), r.right() + 1))
                  for r in window.editor.table.selectionModel().selection())


def test_two_typed_blocks_are_selected_outlined_filled_and_committed_as_one_step(attention_window, qtbot, monkeypatch):
    w = attention_window
    select_tensor(w, qtbot, "0.weight")
    weight = w.session.tensor("0.weight")
    before = weight.detach().clone()
    type_region(w, qtbot, "[:, 128:192]; [:, 384:448]")
    assert selected_blocks(w) == [((0, 256), (128, 192)), ((0, 256), (384, 448))]
    rects = sorted((r.left(), r.width()) for r in w.editor.heatmap.selection_rects())
    assert rects == [(128.0, 64.0), (384.0, 64.0)]  # both outlined on the heatmap
    assert "2 regions" in w.editor.region_box.note.text()

    asked = fill_with(monkeypatch, 0.0)
    action(w, "fillAction").trigger()
    assert asked == ["0.weight: 2 regions, [:, 128:192]; [:, 384:448]"]
    action(w, "commitAction").trigger()
    assert w.session.tensor("0.weight") is weight and len(w.session.history.records) == 1
    assert [e["index"] for e in w.session.edit_log()["edits"]] == ["[:, 128:192]", "[:, 384:448]"]
    zeroed = torch.zeros(768, dtype=torch.bool)
    zeroed[128:192] = zeroed[384:448] = True
    assert torch.all(weight[:, zeroed] == 0) and torch.equal(weight[:, ~zeroed], before[:, ~zeroed])
    action(w, "undoAction").trigger()
    assert torch.equal(weight.detach(), before)  # one undo step undoes both


def test_the_mouse_selection_shows_as_text_in_the_box(attention_window, qtbot):
    w = attention_window
    select_tensor(w, qtbot, "0.weight")
    select_cells(w, (2, 5), (10, 12))
    assert w.editor.region_box.edit.text() == "[2:5, 10:12]"


@pytest.mark.parametrize(("text", "bad", "words"), [
    ("[:, 900:1000]", "[:, 900:1000]", "dim 1 has 768"),
    ("[:, 0:4]; [300, :]", "[300, :]", "300"),
    ("[:, 1:", "[:, 1:", ""),
])
def test_a_bad_region_says_where_selects_nothing_and_stages_nothing(attention_window, qtbot, monkeypatch, text, bad,
                                                                     words):
    w = attention_window
    select_tensor(w, qtbot, "0.weight")
    select_cells(w, (0, 1), (0, 1))
    type_region(w, qtbot, text)
    box = w.editor.region_box
    assert box.error and words in box.error and box.edit.selectedText() == bad
    assert box.edit.text() == text  # left in place to be fixed
    assert selected_blocks(w) == [] and w.editor.heatmap.selection_rects() == []
    asked = fill_with(monkeypatch, 0.0)
    action(w, "fillAction").trigger()
    assert asked == [] and not w.session.staged


def test_ctrl_g_goes_to_the_region_box_and_a_cell(attention_window, qtbot):
    w = attention_window
    select_tensor(w, qtbot, "0.weight")
    go = action(w, "goToAction")
    assert go.shortcut().toString() == "Ctrl+G"
    w.activateWindow()
    go.trigger()
    qtbot.waitUntil(lambda: w.editor.region_box.edit.hasFocus(), timeout=2000)
    qtbot.keyClicks(w.editor.region_box.edit, "[200, 700]")
    qtbot.keyClick(w.editor.region_box.edit, Qt.Key.Key_Return)
    current = w.editor.table.currentIndex()
    assert (current.row(), current.column()) == (200, 700)
    assert selected_blocks(w) == [((200, 201), (700, 701))]


def test_a_sobel_kernel_pasted_once_fills_every_input_channel_of_output_channel_2(conv_window, qtbot):
    w = conv_window
    select_tensor(w, qtbot, "0.weight")
    weight = w.session.tensor("0.weight")
    before = weight.detach().clone()
    type_region(w, qtbot, "[2, :, :, :]")
    assert "edits act on all of it" in w.editor.region_box.note.text()
    QGuiApplication.clipboard().setText(format_tsv(SOBEL))
    action(w, "pasteAction").trigger()
    action(w, "commitAction").trigger()
    assert w.session.tensor("0.weight") is weight and len(w.session.history.records) == 1
    for c in range(3):
        assert torch.equal(weight[2, c].detach(), SOBEL)
    others = torch.ones(8, dtype=torch.bool)
    others[2] = False
    assert torch.equal(weight[others].detach(), before[others])


def test_a_pasted_block_that_fits_no_selected_region_is_refused_before_anything_is_staged(conv_window, qtbot):
    w = conv_window
    select_tensor(w, qtbot, "0.weight")
    type_region(w, qtbot, "[2, :, :, :]")
    QGuiApplication.clipboard().setText("1\t2\n3\t4\n")
    action(w, "pasteAction").trigger()
    assert "paste refused" in w.statusBar().currentMessage() and not w.session.staged


def test_the_zero_every_nth_block_template_ablates_head_2_in_q_k_and_v(attention_window, qtbot, monkeypatch):
    w = attention_window
    select_tensor(w, qtbot, "0.weight")
    weight = w.session.tensor("0.weight")
    before = weight.detach().clone()
    type_region(w, qtbot, "[:, :]")
    explained = []

    def answer(parent, region, dtype, apply, mode, **kwargs):
        dialog = SelectionEditDialog(parent, region, dtype, apply, mode, **kwargs)
        qtbot.addWidget(dialog)
        combo = dialog.template_combo
        index = next(i for i in range(combo.count()) if combo.itemText(i).startswith("Zero every"))
        combo.setCurrentIndex(index)
        explained.append(dialog.template_help.text())
        qtbot.mouseClick(dialog.findChild(QDialogButtonBox).button(QDialogButtonBox.StandardButton.Ok),
                         Qt.MouseButton.LeftButton)
        return True

    monkeypatch.setattr(prompts, "ask_selection_edit", answer)
    action(w, "formulaAction").trigger()
    assert w.session.staged[0].expr == "where((arange(768) // 64) % 4 == 2, 0, x)"
    assert "where()" in explained[0]
    action(w, "commitAction").trigger()
    head = ((torch.arange(768) // 64) % 4) == 2  # columns 128:192, 384:448, 640:704
    assert torch.all(weight[:, head] == 0) and torch.equal(weight[:, ~head], before[:, ~head])


def test_the_kernel_montage_shows_a_clicked_kernel_and_pastes_into_a_selected_output_channel(conv_window, qtbot):
    from tests.qt.test_kernel_montage import _click_row_label, _click_tile

    w = conv_window
    select_tensor(w, qtbot, "0.weight")
    montage = w.editor.montage
    assert w.editor.picture_stack.currentWidget() is montage and action(w, "kernelsAction").isEnabled()
    assert not w.editor.region_box.heads_button.isVisible()  # a conv weight has no heads to split
    montage.rgb_check.setChecked(False)  # one tile per kernel: output channels as rows, input channels across
    weight = w.session.tensor("0.weight")
    before = weight.detach().clone()

    _click_tile(montage, qtbot, 5, 1)
    model = w.editor.model
    assert (model.row_dim, model.col_dim, model.fixed) == (2, 3, {0: 5, 1: 1}) and montage.current_kernel() == (5, 1)
    w.editor.table.prefetch_visible()
    assert float(model.data(model.index(2, 1), Qt.ItemDataRole.EditRole)) == pytest.approx(float(weight[5, 1, 2, 1]))

    _click_row_label(montage, qtbot, 2)
    assert w.editor.region_box.edit.text() == "[2, :, :, :]"
    QGuiApplication.clipboard().setText(format_tsv(SOBEL))
    action(w, "pasteAction").trigger()
    action(w, "commitAction").trigger()
    assert all(torch.equal(weight[2, c].detach(), SOBEL) for c in range(3))
    assert torch.equal(weight[:2].detach(), before[:2]) and torch.equal(weight[3:].detach(), before[3:])
    assert montage.sample[2, 0, 1, 0] == pytest.approx(2.0)  # the montage shows the committed values
    assert montage.selected_output_channels() == [2]
    _click_tile(montage, qtbot, 4, 0)
    assert montage.selected_output_channels() == [] and montage.current_kernel() == (4, 0)

    select_tensor(w, qtbot, "0.bias")  # not 4-D: the heatmap again
    assert w.editor.picture_stack.currentWidget() is w.editor.heatmap and not action(w, "kernelsAction").isEnabled()


def test_typing_a_value_into_the_fill_dialog_goes_into_the_value_field(qtbot):
    staged = []
    dialog = SelectionEditDialog(None, "w[:, 128:192]; [:, 384:448]; [:, 640:704]", torch.float32,
                                 staged.append, "fill")
    qtbot.addWidget(dialog)
    dialog.show()
    qtbot.waitExposed(dialog)
    qtbot.keyClicks(dialog.focusWidget(), "0.5")  # found by review: typing went to the tab bar, 0 was staged
    qtbot.keyClick(dialog.focusWidget(), Qt.Key.Key_Return)
    assert [(e.op, e.value) for e in staged] == [("fill", 0.5)]


def test_a_typed_block_starts_at_the_left_and_an_end_past_the_size_is_said(attention_window, qtbot):
    w = attention_window
    select_tensor(w, qtbot, "0.weight")
    type_region(w, qtbot, "[:, 384:448]")
    table = w.editor.table
    assert table.columnAt(0) == 384  # the block's first column at the left edge, not the right
    type_region(w, qtbot, "[:, 700:900]")
    assert selected_blocks(w) == [((0, 256), (700, 768))]
    assert "ends past dim 1 (768): cut to [:, 700:]" in w.editor.region_box.note.text()
    type_region(w, qtbot, "[:, -4:]")
    assert "ends past" not in w.editor.region_box.note.text()
