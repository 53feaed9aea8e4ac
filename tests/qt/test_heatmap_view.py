"""HeatmapView: data shape, levels, odd inputs, hover, clicks, selection outline, screenshots."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtWidgets import QLabel

from paramedit.qt.heatmap_reduce import block_extreme
from paramedit.qt.heatmap_view import DIVERGING, SEQUENTIAL, HeatmapView

SHOTS = Path("/tmp/paramedit_shots")


@pytest.fixture
def view(qtbot) -> HeatmapView:
    w = HeatmapView()
    qtbot.addWidget(w)
    w.resize(500, 400)
    w.show()
    qtbot.waitExposed(w)
    return w


def _settle(view: HeatmapView, qtbot) -> None:
    """Let layouts and the view box apply their geometry (it updates lazily, on paint)."""
    qtbot.wait(1)
    view.grab()


def _viewport_pos(view: HeatmapView, px: float, py: float):
    """Viewport position of ImageItem pixel coordinates (px = column, py = row)."""
    scene_pt = view.image_item().mapToScene(QPointF(px, py))
    return view.graphics_view().mapFromScene(scene_pt)


def _shown(view: HeatmapView) -> np.ndarray:
    return view.image_item().image


def test_image_shape_and_symmetric_percentile_levels(view):
    values = torch.linspace(-1.0, 3.0, 1000).reshape(20, 50)
    view.set_values(values)
    assert _shown(view).shape == (20, 50)
    assert _shown(view).dtype == np.float32
    m = float(np.percentile(np.abs(values.numpy()), 99.5))
    assert view.levels() == pytest.approx((-m, m))
    assert tuple(view.image_item().getLevels()) == pytest.approx((-m, m))

    view.set_clip(False)
    assert view.levels() == pytest.approx((-3.0, 3.0))

    view.set_colour_mode(SEQUENTIAL)
    assert view.levels() == pytest.approx((-1.0, 3.0))
    view.set_clip(True)
    lo, hi = np.percentile(values.numpy(), [0.25, 99.75])
    assert view.levels() == pytest.approx((lo, hi))


def test_outlier_is_clipped_but_kept_in_the_image(view):
    torch.manual_seed(0)
    values = torch.randn(100, 40) * 0.02
    values[5, 5] = 100.0
    view.set_values(values)
    lo, hi = view.levels()
    assert lo == -hi and 0.03 < hi < 0.2
    assert _shown(view)[5, 5] == pytest.approx(100.0)  # clipping is the LUT's job, not the data's


def test_colour_bar_rounding_suits_small_weights(view):
    view.set_values(torch.randn(30, 30) * 1e-4)
    lo, hi = view.levels()
    rounding = view._cbar.rounding
    assert 0 < rounding <= (hi - lo) / 100
    assert view._cbar.levels() == pytest.approx((lo, hi))


@pytest.mark.parametrize(
    ("values", "shape"),
    [
        (torch.tensor([[1.0, float("nan")], [float("inf"), -float("inf")]]), (2, 2)),
        (torch.full((3, 4), float("nan")), (3, 4)),
        (torch.zeros(5, 5), (5, 5)),
        (torch.full((5, 5), 5.0), (5, 5)),
        (torch.rand(6, 7) > 0.5, (6, 7)),
        (torch.randn(6, 7, dtype=torch.bfloat16), (6, 7)),
        (torch.randn(6, 7, dtype=torch.float16), (6, 7)),
        (torch.arange(12, dtype=torch.int64).reshape(3, 4), (3, 4)),
        (torch.tensor(3.5), (1, 1)),
        (torch.arange(9, dtype=torch.uint8), (1, 9)),
        (np.array([[1e300, -1e300]]), (1, 2)),
        (torch.randn(3, 3, requires_grad=True), (3, 3)),
    ],
    ids=[
        "nan-inf",
        "all-nan",
        "zeros",
        "fives",
        "bool",
        "bf16",
        "f16",
        "int64",
        "0d",
        "1d-uint8",
        "f64-huge",
        "grad",
    ],
)
@pytest.mark.parametrize("mode", [DIVERGING, SEQUENTIAL])
def test_odd_inputs_render_without_warnings(view, qtbot, values, shape, mode):
    view.set_colour_mode(mode)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        view.set_values(values)
        _settle(view, qtbot)
        view.set_clip(False)
        view.set_selection((0, 1), (0, 1))
        view.grab()
    shown = _shown(view)
    assert shown.shape == shape
    assert np.isfinite(shown).all()
    lo, hi = view.levels()
    assert np.isfinite([lo, hi]).all() and lo < hi
    if mode == DIVERGING:
        assert lo == -hi


def test_constant_levels(view):
    view.set_values(torch.zeros(4, 4))
    assert view.levels() == (-1.0, 1.0)
    view.set_values(torch.full((4, 4), 5.0))
    assert view.levels() == (-5.0, 5.0)
    view.set_colour_mode(SEQUENTIAL)
    assert view.levels() == (2.5, 7.5)


def test_nan_gets_its_own_colour_and_inf_goes_to_the_level_ends(view):
    values = torch.ones(4, 4)
    values[1, 2] = float("nan")
    values[0, 0] = float("inf")
    values[3, 3] = -float("inf")
    view.set_values(values)
    lo, hi = view.levels()
    shown = _shown(view)
    assert shown[0, 0] >= hi and shown[3, 3] <= lo
    overlay = view._nan_overlay
    assert overlay.isVisible()
    alpha = overlay.image[..., 3]
    assert alpha[1, 2] == 255 and alpha.sum() == 255


def test_large_input_is_block_reduced_keeping_outliers(view):
    values = torch.zeros(5000, 30)
    values[4000, 7] = -9.0
    values[4999, 0] = float("nan")
    view.set_values(values)
    assert view.downsample_factor() == (3, 1)
    assert _shown(view).shape == (1667, 30)
    assert _shown(view)[4000 // 3, 7] == -9.0
    assert view._nan_overlay.image[1666, 0, 3] == 255  # the partial last block keeps its NaN
    assert view.levels() == (-9.0, 9.0)  # 1 non-zero of 150000: the percentile is 0, so max |v|
    assert view.image_item().autoDownsample


@pytest.mark.parametrize(
    ("shape", "fr", "fc"), [((50, 300), 3, 20), ((7, 9), 2, 2), ((5, 40), 1, 9), ((31, 5), 4, 1)]
)
def test_block_extreme_matches_brute_force(shape, fr, fc):
    rng = np.random.default_rng(0)
    a = rng.standard_normal(shape).astype(np.float32)
    a[0, 0], a[-1, -1] = np.nan, -np.inf
    out = block_extreme(a, fr, fc)
    assert out.shape == (-(-shape[0] // fr), -(-shape[1] // fc))
    for i, j in np.ndindex(*out.shape):
        block = a[i * fr : (i + 1) * fr, j * fc : (j + 1) * fc].ravel()
        if np.isnan(block).any():  # NaN is never hidden by downsampling
            assert np.isnan(out[i, j])
        else:
            assert out[i, j] == block[np.argmax(np.abs(block))]


def test_click_maps_to_tensor_indices_with_offsets_and_downsampling(view, qtbot):
    torch.manual_seed(1)
    view.set_values(torch.randn(5000, 30), row_offset=10, col_offset=2)
    assert view.downsample_factor() == (3, 1)
    viewport = view.graphics_view().viewport()
    _settle(view, qtbot)
    # Zoomed out, one screen pixel spans several display rows: the row is floor(y * 3) of the
    # image-pixel position the click really landed on.
    pos = _viewport_pos(view, 7.5, 100.5)
    landed = view.image_item().mapFromScene(view.graphics_view().mapToScene(pos))
    with qtbot.waitSignal(view.cellClicked, timeout=1000) as blocker:
        qtbot.mouseClick(viewport, Qt.MouseButton.LeftButton, pos=pos)
    assert blocker.args == [10 + int(np.floor(landed.y() * 3)), 2 + int(np.floor(landed.x()))]
    assert abs(blocker.args[0] - (10 + 301)) <= 3 * 3

    # Zoomed in, display pixel (row 100, col 7) covers tensor rows 10 + [300, 303): its centre
    # is tensor row 10 + floor(100.5 * 3) = 311, column 2 + 7.
    view._plot.getViewBox().setRange(xRange=(2, 32), yRange=(290, 340), padding=0)
    _settle(view, qtbot)
    with qtbot.waitSignal(view.cellClicked, timeout=1000) as blocker:
        qtbot.mouseClick(viewport, Qt.MouseButton.LeftButton, pos=_viewport_pos(view, 7.5, 100.5))
    assert blocker.args == [311, 9]


def test_click_without_downsampling(view, qtbot):
    view.set_values(torch.randn(8, 6), row_offset=4)
    _settle(view, qtbot)
    with qtbot.waitSignal(view.cellClicked, timeout=1000) as blocker:
        qtbot.mouseClick(
            view.graphics_view().viewport(), Qt.MouseButton.LeftButton, pos=_viewport_pos(view, 5.5, 0.5)
        )
    assert blocker.args == [4, 5]


def test_row_zero_is_at_the_top(view, qtbot):
    view.set_values(torch.randn(8, 6))
    _settle(view, qtbot)
    assert _viewport_pos(view, 0.5, 0.5).y() < _viewport_pos(view, 0.5, 7.5).y()
    # Index ticks sit at pixel centres, also for a single row on the inverted axis.
    assert view._plot.getAxis("left").tickValues(1.0, 0.0, 200) == [(1.0, [0.5])]
    assert view._plot.getAxis("left").tickStrings([0.5, 7.5], 1.0, 1.0) == ["0", "7"]


def test_hover_shows_true_index_and_undownsampled_value(view, qtbot):
    values = torch.arange(5000 * 3, dtype=torch.int64).reshape(5000, 3)
    view.set_values(values, row_offset=100)
    view._plot.getViewBox().setRange(xRange=(0, 3), yRange=(120, 145), padding=0)  # zoom in
    _settle(view, qtbot)
    qtbot.mouseMove(view.graphics_view().viewport(), _viewport_pos(view, 1.5, 10.5))
    qtbot.waitUntil(lambda: view.hover_text().startswith("row"), timeout=1000)
    # floor(10.5 * 3) = 31 -> tensor row 131, value read from the int64 data, exact.
    assert view.hover_text() == f"row 131, col 1: {31 * 3 + 1}"


def test_selection_rect_covers_expected_scene_rect(view, qtbot):
    view.set_values(torch.randn(20, 10), row_offset=5, col_offset=3)
    view.set_selection((7, 11), (4, 9))
    _settle(view, qtbot)
    assert view.selection_rect() == QRectF(4, 7, 5, 4)
    outline = view._sel_items[0]
    expected = view.image_item().mapRectToScene(QRectF(4 - 3, 7 - 5, 5, 4))
    actual = outline.mapRectToScene(outline.rect())
    for a, b in zip(actual.getCoords(), expected.getCoords(), strict=True):
        assert a == pytest.approx(b, abs=1e-6)
    assert outline.pen().isCosmetic() and outline.isVisible()
    view.set_selection(None, None)
    assert view.selection_rect() is None


def test_mode_label_clear_and_bad_shape(view, qtbot):
    view.set_mode_label("gradient")
    assert view.findChild(QLabel, "heatmapModeLabel").text() == "gradient"
    view.set_values(torch.randn(3, 3), title="fc.weight")
    assert not view.findChild(QLabel, "heatmapEmpty").isVisible()
    view.clear()
    empty = view.findChild(QLabel, "heatmapEmpty")
    assert empty.isVisible() and empty.text() == "select a tensor"
    assert view.image_item().image is None
    with pytest.raises(ValueError, match="2-D"):
        view.set_values(torch.zeros(2, 2, 2))


def test_screenshots(view, qtbot):
    SHOTS.mkdir(parents=True, exist_ok=True)
    gen = torch.Generator().manual_seed(0)
    weight = torch.randn(64, 16, generator=gen) * 0.05
    weight[:, 3] *= 4  # one strong input feature, as trained layers often have
    weight[10, 2] = float("nan")
    view.set_mode_label("values")
    view.set_values(weight, title="encoder.fc1.weight  [:, :]")
    view.set_selection((8, 16), (2, 6))
    _settle(view, qtbot)
    assert view.grab().save(str(SHOTS / "heatmap_64x16.png"))

    big = torch.randn(3000, 768, generator=gen) * 0.02
    view.set_values(big, title="lm_head.weight  [0:3000, :]")
    view.set_selection(None, None)
    _settle(view, qtbot)
    assert view.downsample_factor() == (2, 1)
    assert view.grab().save(str(SHOTS / "heatmap_3000x768.png"))


# ---------------------------------------------------------------- strided samples (issue 4)


def test_strided_sample_maps_clicks_and_hover_to_the_tensor_rows_it_samples(view, qtbot):
    """A sample of every 7th row and 3rd column: image pixel (i, j) is tensor row 20 + 7i, col 3j."""
    full = torch.arange(700 * 60, dtype=torch.float32).reshape(700, 60)
    view.set_values(full[20::7, ::3], row_offset=20, stride=(7, 3), full_shape=(680, 60))
    assert view.stride() == (7, 3) and view.downsample_factor() == (1, 1)
    assert _shown(view).shape == (98, 20)  # rows 20, 27, ..., 699
    _settle(view, qtbot)
    pos = _viewport_pos(view, 4.5, 10.5)
    # The pixel the (integer) mouse position really lands on: (10, 4), or a neighbour when the
    # plot is small enough that rounding moves it.
    landed = view.image_item().mapFromScene(view.graphics_view().mapToScene(pos))
    i, j = int(np.floor(landed.y())), int(np.floor(landed.x()))
    assert abs(i - 10) <= 1 and abs(j - 4) <= 1
    row, col = 20 + i * 7, j * 3
    qtbot.mouseMove(view.graphics_view().viewport(), pos)
    qtbot.waitUntil(lambda: view.hover_text().startswith("row"), timeout=1000)
    assert view.hover_text() == f"row {row}, col {col}: {float(full[row, col]):.6g}"
    with qtbot.waitSignal(view.cellClicked, timeout=1000) as blocker:
        qtbot.mouseClick(view.graphics_view().viewport(), Qt.MouseButton.LeftButton, pos=pos)
    assert blocker.args == [row, col]
    # The image spans the whole block in tensor coordinates, so axes and outlines line up.
    rect = view.image_item().mapRectToParent(view.image_item().boundingRect())
    assert (rect.left(), rect.top(), rect.width(), rect.height()) == (0, 20, 60, 98 * 7)
    # The stats line says that it shows a sample, and of what.
    assert "sample 1/7 rows, 1/3 cols" in view._stats_label.text()
    assert "every 7th row and every 3rd column" in view._stats_label.toolTip()


def test_sampling_limits_follow_the_plot_size(view, qtbot):
    view.set_values(torch.randn(3000, 3000)[::10, ::10], stride=(10, 10))
    _settle(view, qtbot)
    small = view.sampling_limits()
    with qtbot.waitSignal(view.resampleWanted, timeout=1000):  # the sample is now too coarse
        view.resize(1400, 1100)
        _settle(view, qtbot)
    big = view.sampling_limits()
    assert big[0] > small[0] and big[1] > small[1]
    assert all(256 <= n <= 1024 for n in small + big)
