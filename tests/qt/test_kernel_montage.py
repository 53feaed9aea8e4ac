"""Issue 13: every kernel of a 4-D weight as a montage of tiles, RGB tiles for 3 input channels,
clicks naming the kernel, row selection, and a strided sample for large layers."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PySide6.QtCore import QPointF, Qt
from PySide6.QtWidgets import QApplication

from paramedit.qt.kernel_montage_data import MAX_TILES, plan_montage
from paramedit.qt.kernel_montage_view import KernelMontageView

LEFT, CTRL, SHIFT = Qt.MouseButton.LeftButton, Qt.KeyboardModifier.ControlModifier, Qt.KeyboardModifier.ShiftModifier


def sobel_like() -> torch.Tensor:
    """8 × 3 × 3 × 3: Sobel edges in four directions, two strengths, one channel sign-flipped."""
    sx = torch.tensor([[-1.0, 0, 1], [-2, 0, 2], [-1, 0, 1]])
    w = torch.zeros(8, 3, 3, 3)
    for o in range(8):
        for i in range(3):
            w[o, i] = torch.rot90(sx, o % 4) * (0.5 if o >= 4 else 1.0) * (1 if (o + i) % 3 else -0.5)
    return w


@pytest.fixture
def view(qtbot):
    v = KernelMontageView()
    qtbot.addWidget(v)
    v.resize(700, 500)
    v.show()
    qtbot.waitExposed(v)
    return v


def _settle(view: KernelMontageView) -> None:
    """Until the image stops moving: the view box applies its geometry on paint, and painting
    new tick labels can widen an axis, which moves the view box again."""
    def where():
        return [view.graphics.mapFromScene(view.image.mapToScene(QPointF(p, p))) for p in (0.0, 1.0)]

    for _ in range(5):
        before = where()
        QApplication.processEvents()
        view.graphics.grab()
        if where() == before:
            return


def _tile_pos(view: KernelMontageView, o: int, i: int):
    _settle(view)
    return view.graphics.mapFromScene(view.image.mapToScene(view.tile_centre(o, i)))


def _click_tile(view, qtbot, o: int, i: int, modifier=Qt.KeyboardModifier.NoModifier) -> None:
    qtbot.mouseClick(view.graphics.viewport(), LEFT, modifier, _tile_pos(view, o, i))


def _click_row_label(view, qtbot, o: int, modifier=Qt.KeyboardModifier.NoModifier) -> None:
    """Click the left axis beside the row of output channel ``o``."""
    _settle(view)
    scene_y = view.image.mapToScene(view.tile_centre(o, 0)).y()
    axis_x = view.plot.getAxis("left").sceneBoundingRect().center().x()
    pos = view.graphics.mapFromScene(QPointF(axis_x, scene_y))
    qtbot.mouseClick(view.graphics.viewport(), LEFT, modifier, pos)


def test_clicking_a_tile_names_its_kernel_rgb_or_not(view, qtbot):
    view.set_tensor(sobel_like(), "conv1.weight")
    assert view.rgb_check.isVisible() and view.rgb_check.isChecked()  # 3 input channels: RGB by default
    assert view.montage is not None and view.montage.ndim == 3  # one RGB tile per output channel
    with qtbot.waitSignal(view.kernelClicked) as blocker:
        _click_tile(view, qtbot, 2, 1)  # in RGB mode the tile of output channel 2
    assert blocker.args == [2, 0]
    assert view.current_kernel() == (2, 0)

    view.rgb_check.setChecked(False)
    assert view.montage is not None and view.montage.shape == (8 * 4 - 1, 3 * 4 - 1)
    with qtbot.waitSignal(view.kernelClicked) as blocker:
        _click_tile(view, qtbot, 2, 1)
    assert blocker.args == [2, 1]
    with qtbot.assertNotEmitted(view.kernelClicked):
        _click_tile(view, qtbot, 2, 1, CTRL)  # selects its row instead


def test_rows_are_selected_from_the_labels_or_by_ctrl_click(view, qtbot):
    view.set_tensor(sobel_like(), "conv1.weight")
    view.rgb_check.setChecked(False)
    with qtbot.waitSignal(view.outputChannelsSelected) as blocker:
        _click_row_label(view, qtbot, 2)
    assert blocker.args == [[2]]
    with qtbot.waitSignal(view.outputChannelsSelected) as blocker:
        _click_row_label(view, qtbot, 4, SHIFT)
    assert blocker.args == [[2, 3, 4]]
    with qtbot.waitSignal(view.outputChannelsSelected) as blocker:
        _click_tile(view, qtbot, 3, 2, CTRL)  # toggles row 3 off
    assert blocker.args == [[2, 4]]
    with qtbot.assertNotEmitted(view.outputChannelsSelected):
        view.select_output_channels([6, 1])
    assert view.selected_output_channels() == [1, 6]
    view.set_current_kernel(5, 2)
    assert view.current_kernel() == (5, 2)


def test_a_large_layer_is_drawn_from_a_strided_sample_of_its_channels(view, qtbot):
    torch.manual_seed(0)
    weight = torch.randn(512, 512, 3, 3, dtype=torch.float16)  # a conversion copies: only the sample
    view.set_tensor(weight, "layer4.0.conv2.weight")
    montage, sample = view.montage, view.sample
    assert montage is not None and sample is not None
    assert montage.shape[0] <= 2048 and montage.shape[1] <= 2048
    assert "sample" in view.note.text() and "every 4th of 512" in view.note.text()
    # Everything read from the weight is the sampled channels' kernels, nothing more.
    assert sample.shape == (MAX_TILES, MAX_TILES, 3, 3) and sample.size * 16 == weight.numel()
    np.testing.assert_array_equal(montage[4:7, 8:11], weight[4, 8].float().numpy())  # tile (1, 2)
    with qtbot.waitSignal(view.kernelClicked) as blocker:
        _click_tile(view, qtbot, 4, 8)
    assert blocker.args == [4, 8]  # weight channels, not sample indices


def test_a_tensor_that_is_not_4d_clears_with_a_message(view):
    view.set_tensor(sobel_like(), "conv1.weight")
    view.set_tensor(torch.zeros(3, 4), "fc.weight")
    assert view.montage is None and view.image.image is None
    assert view.message.isVisible() and "4-D" in view.message.text() and "fc.weight" in view.message.text()
    view.set_tensor(None)
    assert view.message.isVisible() and view.montage is None


def test_refresh_shows_values_changed_in_place(view):
    weight = sobel_like()
    view.set_tensor(weight, "conv1.weight")
    view.rgb_check.setChecked(False)
    with torch.no_grad():
        weight[3, 2] = 5.0
    view.refresh()
    assert view.montage is not None
    np.testing.assert_array_equal(view.montage[12:15, 8:11], np.full((3, 3), 5.0, np.float32))
    assert np.isnan(view.montage[15, 8])  # the gap under it


def test_hover_names_the_element_and_the_kernels_max(view, qtbot):
    view.set_tensor(sobel_like(), "conv1.weight")
    view.rgb_check.setChecked(False)
    qtbot.mouseMove(view.graphics.viewport(), _tile_pos(view, 0, 1))
    qtbot.waitUntil(lambda: view.hover.text().startswith("["), timeout=1000)
    assert view.hover.text() == "[0, 1, 1, 1] = 0  ·  kernel [0, 1] max |v| 2"


def test_rgb_tiles_wrap_into_a_near_square_grid_within_the_limits():
    layout = plan_montage((64, 3, 7, 7), rgb=True)
    assert layout.grid == (8, 8) and layout.steps == (1, 1) and layout.sampling_note() == ""
    assert layout.tile_at(8 * 2 + 3, 8 * 1 + 3) == (8 * 1 + 2, 0, 3, 3)  # row 1, column 2: channel 10
    assert layout.tile_at(7, 3) is None  # a gap
    wide = plan_montage((20000, 3, 1, 15), rgb=True)
    assert max(wide.grid) <= MAX_TILES and max(wide.image_shape) <= 2048
    odd = plan_montage((1000, 64, 5, 5), rgb=False)
    assert odd.steps == (8, 1) and max(odd.image_shape) <= 2048
    assert odd.sampling_note() == "showing every 8th of 1000 output channels: a sample"


def test_one_large_kernel_does_not_wash_out_the_others_unless_clipping_is_off(view):
    torch.manual_seed(0)
    w = torch.randn(256, 3, 3, 3) * 0.01
    w[2] = sobel_like()[0] * 10  # one kernel pasted at full scale among 255 small ones (0.4% of the values)
    view.set_tensor(w, "conv.weight")
    clipped = view.cbar.levels()[1]
    assert clipped < float(w.abs().max()) / 2
    assert np.nanmax(view.montage) <= 1.0 and np.nanmin(view.montage) >= 0.0  # RGB stays in range
    view.clip_check.setChecked(False)
    assert view.cbar.levels()[1] == pytest.approx(float(w.abs().max()))
