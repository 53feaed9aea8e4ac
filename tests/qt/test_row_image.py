"""Issue 12: a row of the shown slice as an image (a 784-long row as 28×28), with the shape
offered from the model's input; clicking a pixel selects its cell, and Fill over selected pixels
stages exactly those elements of the row."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

import paramedit
from paramedit.qt import prompts
from paramedit.qt.row_image_view import offered_shapes, parse_shape
from paramedit.qt.selection_edit_dialog import SelectionEdit
from tests.qt.test_outputs_panel import outputs_settled
from tests.qt.window_helpers import action, select_tensor


def _click_pixel(view, qtbot, row: int, col: int) -> None:
    from PySide6.QtCore import QPointF, Qt

    view.graphics.grab()  # the view box applies its geometry on paint
    scene = view.image.mapToScene(QPointF(col + 0.5, row + 0.5))
    pos = view.graphics.mapFromScene(scene)
    qtbot.mouseClick(view.graphics.viewport(), Qt.MouseButton.LeftButton, pos=pos)


@pytest.fixture
def mnist_window(make_window, qtbot):
    torch.manual_seed(0)
    net = nn.Sequential(nn.Flatten(), nn.Linear(784, 8), nn.ReLU(), nn.Linear(8, 10))
    session = paramedit.open_session(net)
    session.example_inputs = (torch.rand(2, 1, 14, 56),)  # 784 values, not a square picture
    window = make_window(session)
    outputs_settled(window, qtbot)  # the probe knows the input's shape
    select_tensor(window, qtbot, "1.weight")  # 8 × 784
    window.editor.table.select_cell(3, 0)
    action(window, "rowImageAction").trigger()
    return window, net


def test_shapes_are_typed_or_offered():
    assert parse_shape("28×28") == (28, 28) == parse_shape("28x28") == parse_shape(" 28, 28 ")
    assert parse_shape("28") is None and parse_shape("0×4") is None and parse_shape("a×b") is None
    assert offered_shapes(784, []) == [(28, 28), (1, 784)]
    assert offered_shapes(784, [(2, 1, 14, 56)])[0] == (14, 56)  # the model's input first
    assert offered_shapes(32, [])[0] == (4, 8) and offered_shapes(7, []) == [(1, 7)]


def test_a_row_is_drawn_as_an_image_of_the_models_input_shape(mnist_window, qtbot):
    window, net = mnist_window
    view = window.editor.row_image
    assert window.editor.picture_stack.currentWidget() is view and view.isVisible()
    assert view.index == 3 and view.shape == (14, 56)  # offered from the model's input
    offers = [view.shape_combo.itemText(i) for i in range(view.shape_combo.count())]
    assert offers[:2] == ["14×56", "28×28"]
    np.testing.assert_allclose(view.image.image, net[1].weight[3].detach().numpy().reshape(14, 56))
    view.shape_combo.setCurrentText("28×28")  # typed
    assert view.shape == (28, 28)
    np.testing.assert_allclose(view.image.image, net[1].weight[3].detach().numpy().reshape(28, 28))
    view.shape_combo.setCurrentText("27×27")  # does not fit: said, not drawn
    assert "do not fill" in view.title.text()
    view.shape_combo.setCurrentText("28×28")
    window.editor.table.select_cell(5, 10)  # another row of the table: the image follows
    assert view.index == 5
    np.testing.assert_allclose(view.image.image, net[1].weight[5].detach().numpy().reshape(28, 28))


def test_clicking_a_pixel_selects_its_cell(mnist_window, qtbot):
    window, _net = mnist_window
    view = window.editor.row_image
    view.shape_combo.setCurrentText("28×28")
    _click_pixel(view, qtbot, 5, 7)
    current = window.editor.table.currentIndex()
    assert (current.row(), current.column()) == (3, 5 * 28 + 7)
    assert view.pixel_selection == ((5, 6), (7, 8))


def test_fill_over_selected_pixels_stages_the_right_row_regions(mnist_window, qtbot, monkeypatch):
    window, net = mnist_window
    view = window.editor.row_image
    view.shape_combo.setCurrentText("28×28")
    row_before = net[1].weight[3].detach().clone()
    view.select_pixels((5, 10), (6, 9))  # 5 image rows × 3 pixels
    asked = []

    def answer(_parent, where, _dtype, apply, mode, **_kw):
        asked.append((where, mode))
        apply(SelectionEdit("fill", value=0.5))
        return True

    monkeypatch.setattr(prompts, "ask_selection_edit", answer)
    action(window, "fillAction").trigger()
    assert asked and "row 3" in asked[0][0] and "28×28" in asked[0][0]
    assert [e.index for e in window.session.staged] == [f"[3, {r * 28 + 6}:{r * 28 + 9}]" for r in range(5, 10)]
    action(window, "commitAction").trigger()
    expected = row_before.reshape(28, 28).clone()
    expected[5:10, 6:9] = 0.5
    assert torch.equal(net[1].weight[3].detach(), expected.reshape(-1))  # those pixels, nothing else
    np.testing.assert_allclose(view.image.image, expected.numpy())  # the image shows the edit
    assert not (net[1].weight[[0, 1, 2, 4, 5, 6, 7]] == 0.5).any()  # no other row

    window.session.discard()
    view.select_pixels((2, 4), (0, 28))  # whole image rows: one run of the row
    assert view.regions() == [f"[3, {2 * 28}:{4 * 28}]"]


def test_a_selection_made_in_the_table_is_not_replaced_by_old_pixels(mnist_window, qtbot, monkeypatch):
    from tests.qt.window_helpers import select_cells

    window, _net = mnist_window
    view = window.editor.row_image
    view.select_pixels((0, 2), (0, 2))
    select_cells(window, (3, 4), (100, 104))  # the user picks cells in the table instead
    assert view.pixel_selection is None
    regions = []
    monkeypatch.setattr(prompts, "ask_selection_edit", lambda _p, where, *_a, **_k: regions.append(where) or False)
    action(window, "fillAction").trigger()
    assert regions == ["1.weight[3:4, 100:104]"]  # the table's own rectangle
