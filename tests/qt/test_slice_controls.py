"""SliceControlsWidget: dim choice, fixed indices, region text and the sliceChanged signal."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from PySide6.QtWidgets import QComboBox, QSlider, QSpinBox

from paramedit.core.editing.regions import parse_region
from paramedit.qt.slice_controls_widget import SliceControlsWidget

SHOTS = Path("/tmp/paramedit_shots")


@pytest.fixture
def controls(qtbot) -> SliceControlsWidget:
    w = SliceControlsWidget()
    qtbot.addWidget(w)
    w.show()
    return w


def _combo(w: SliceControlsWidget, name: str) -> QComboBox:
    return w.findChild(QComboBox, name)


def _spin(w: SliceControlsWidget, dim: int) -> QSpinBox:
    return w.findChild(QSpinBox, f"sliceIndex{dim}")


def _slice_via_api(w: SliceControlsWidget, t: torch.Tensor, rows=None, cols=None) -> torch.Tensor:
    """The 2-D block the caller shows, built from row_dim/col_dim/fixed (no text involved)."""
    index = []
    for d in range(t.ndim):
        if d == w.row_dim():
            index.append(slice(*rows) if rows else slice(None))
        elif d == w.col_dim():
            index.append(slice(*cols) if cols else slice(None))
        else:
            index.append(w.fixed()[d])
    block = t[tuple(index)]
    return block.T if w.transposed() else block


@pytest.mark.parametrize("shape", [(), (7,), (3, 4)])
def test_small_shapes_hide_the_widget(controls, shape):
    controls.set_shape(shape)
    assert controls.isHidden()
    assert controls.fixed() == {}
    assert not controls.transposed()


def test_small_shape_conventions(controls):
    controls.set_shape(())
    assert (controls.row_dim(), controls.col_dim(), controls.region_text()) == (-1, -1, "[...]")
    controls.set_shape((7,))
    assert (controls.row_dim(), controls.col_dim()) == (-1, 0)
    assert controls.region_text() == "[:]"
    assert controls.region_text(None, (2, 5)) == "[2:5]"
    controls.set_shape((3, 4))
    assert (controls.row_dim(), controls.col_dim()) == (0, 1)
    assert controls.region_text((0, 2), (1, 3)) == "[0:2, 1:3]"


def test_defaults_for_a_conv_weight(controls):
    """Issue 9: the two largest dims, the earlier of equal ones: out x kernel height here."""
    controls.set_shape((8, 3, 5, 5))
    assert controls.isVisible()
    assert (controls.row_dim(), controls.col_dim()) == (0, 2)
    assert controls.fixed() == {1: 0, 3: 0}
    assert _spin(controls, 1).maximum() == 2 and _spin(controls, 3).maximum() == 4
    assert _spin(controls, 0) is None and _spin(controls, 2) is None
    assert controls.region_text() == "[:, 0, :, 0]"
    assert not controls.transposed()


@pytest.mark.parametrize(("shape", "dims", "block"), [
    ((64, 3, 1, 1), (0, 1), (64, 3)),  # a 1x1 conv (ResNet downsample) opens as out x in
    ((1, 64, 1, 1), (0, 1), (1, 64)),  # LPIPS's trained [1, 64, 1, 1]: one row of its 64 values
    ((1024, 1, 512, 1), (0, 2), (1024, 512)),  # CREPE's first conv
    ((8, 3, 3, 3), (0, 1), (8, 3)),  # a 3x3 conv: out x in, the kernel as index controls
    ((64, 1, 1), (1, 0), (1, 64)),  # one dim larger than 1: it is the columns
])
def test_n_d_tensors_open_on_their_two_largest_dims(controls, shape, dims, block):
    """Issue 9: a 1x1 conv showed one number (its last two dims were rows and columns)."""
    controls.set_shape(shape)
    assert (controls.row_dim(), controls.col_dim()) == dims
    t = torch.arange(torch.Size(shape).numel()).reshape(shape)
    shown = _slice_via_api(controls, t)
    assert tuple(shown.shape) == block
    assert shown.numel() == max(block[0] * block[1], 1) and len(shown.unique()) == shown.numel()
    region = parse_region(controls.region_text(), shape)  # the region the editor reads agrees
    assert t[region.index].numel() == shown.numel()


def test_region_text_example_from_the_brief(controls, qtbot):
    controls.set_shape((4, 5, 6))
    _combo(controls, "sliceRowDim").setCurrentIndex(0)  # rows = dim 0, cols stays dim 2
    _spin(controls, 1).setValue(3)
    assert (controls.row_dim(), controls.col_dim(), controls.fixed()) == (0, 2, {1: 3})
    text = controls.region_text((0, 2))
    assert text == "[0:2, 3, :]"
    t = torch.arange(4 * 5 * 6).reshape(4, 5, 6)
    region = parse_region(text, t.shape)  # core's safe parser: the contract region_text feeds
    assert torch.equal(t[region.index], t[0:2, 3, :])
    assert torch.equal(_slice_via_api(controls, t, rows=(0, 2)), t[0:2, 3, :])


def test_choosing_the_column_dim_as_rows_swaps_them(controls, qtbot):
    controls.set_shape((2, 3, 4))  # rows 1, cols 2
    with qtbot.waitSignal(controls.sliceChanged, timeout=500):
        _combo(controls, "sliceRowDim").setCurrentIndex(2)
    assert (controls.row_dim(), controls.col_dim()) == (2, 1)
    assert _combo(controls, "sliceColDim").currentIndex() == 1
    assert controls.transposed()
    assert controls.region_text((1, 3), (0, 2)) == "[0, 0:2, 1:3]"
    t = torch.arange(24).reshape(2, 3, 4)
    block = _slice_via_api(controls, t, rows=(1, 3), cols=(0, 2))
    assert block.shape == (2, 2)
    assert torch.equal(block, t[0, 0:2, 1:3].T)
    assert torch.equal(t[parse_region(controls.region_text((1, 3), (0, 2)), t.shape).index].T, block)


def test_choosing_rows_as_columns_swaps_them(controls):
    controls.set_shape((2, 3, 4))
    _combo(controls, "sliceColDim").setCurrentIndex(1)
    assert (controls.row_dim(), controls.col_dim()) == (2, 1)
    assert _combo(controls, "sliceRowDim").currentIndex() == 2


def test_new_fixed_dim_and_kept_indices(controls):
    controls.set_shape((5, 6, 7, 8))
    _spin(controls, 0).setValue(4)
    _spin(controls, 1).setValue(2)
    _combo(controls, "sliceColDim").setCurrentIndex(1)  # cols dim 3 -> dim 1; dim 3 becomes fixed
    assert (controls.row_dim(), controls.col_dim()) == (2, 1)
    assert controls.fixed() == {0: 4, 3: 0}
    assert _spin(controls, 1) is None and _spin(controls, 3).maximum() == 7
    assert controls.region_text((0, 3), None) == "[4, :, 0:3, 0]"


def test_spin_box_emits_once_and_syncs_the_slider(controls, qtbot):
    controls.set_shape((4, 5, 6))
    emitted = []
    controls.sliceChanged.connect(lambda: emitted.append(1))
    _spin(controls, 0).setValue(3)
    assert len(emitted) == 1
    assert controls.findChild(QSlider, "sliceSlider0").value() == 3
    controls.findChild(QSlider, "sliceSlider0").setValue(1)
    assert len(emitted) == 2
    assert _spin(controls, 0).value() == 1
    _spin(controls, 0).setValue(1)  # unchanged: no signal
    assert len(emitted) == 2
    assert controls.fixed() == {0: 1}


def test_set_shape_is_silent_and_keeps_choices_for_the_same_shape(controls, qtbot):
    emitted = []
    controls.sliceChanged.connect(lambda: emitted.append(1))
    controls.set_shape((4, 5, 6))
    _spin(controls, 0).setValue(2)
    emitted.clear()
    controls.set_shape((4, 5, 6))
    assert controls.fixed() == {0: 2}
    controls.set_shape((3, 5, 6))
    assert controls.fixed() == {0: 0}
    assert emitted == []


def test_singleton_dim_is_disabled(controls):
    controls.set_shape((1, 4, 4))
    assert not _spin(controls, 0).isEnabled()


def test_screenshot_conv_weight(controls, qtbot):
    SHOTS.mkdir(parents=True, exist_ok=True)
    controls.set_shape((64, 3, 7, 7))
    _spin(controls, 1).setValue(2)
    _spin(controls, 3).setValue(4)
    controls.resize(420, controls.sizeHint().height())
    qtbot.wait(1)
    assert controls.grab().save(str(SHOTS / "slice_controls_conv.png"))
