"""Issue 10: the heatmap never hides what the scan knows; the pixel reduction is a choice."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import paramedit
from paramedit.core.analysis.health_scan import Finding
from paramedit.qt.finding_locations import marks_in_slice, slice_target
from paramedit.qt.heatmap_reduce import MAX_ABS, MEAN, MIN_ABS, SAMPLE, block_reduce
from paramedit.qt.heatmap_view import HeatmapView
from tests.qt.window_helpers import select_tensor


@pytest.fixture
def view(qtbot) -> HeatmapView:
    w = HeatmapView()
    qtbot.addWidget(w)
    w.resize(500, 400)
    w.show()
    qtbot.waitExposed(w)
    return w


def test_a_nan_and_a_dead_row_the_sample_skips_are_marked_and_counted_first(make_window, qtbot):
    torch.manual_seed(0)
    net = torch.nn.Embedding(20000, 64)
    session = paramedit.open_session(net)
    window = make_window(session)
    select_tensor(window, qtbot, "weight")
    heat = window.editor.heatmap
    dead = 9973  # a prime: no sampling stride of 2..9972 rows reaches it, nor row 1
    with torch.no_grad():
        net.weight[1, 3] = float("nan")
        net.weight[dead].zero_()
    with qtbot.waitSignal(window.analysis.scans.scanFinished, timeout=10000):
        window.analysis.scan()
    qtbot.waitUntil(lambda: heat.findings_text() != "", timeout=3000)
    assert 1 < heat.stride()[0] < dead  # still a sample: neither row is among the drawn values
    assert not heat._nan_overlay.isVisible() and np.isfinite(heat.image_item().image).all()
    assert ("nan", 1, 3) in heat.markers().spots()
    assert ("row", dead) in heat.markers().lines()
    text = heat.findings_text()
    assert text.startswith("1 NaN at [1, 3]") and f"1 dead row at [{dead}, :]" in text
    assert text not in heat.stats_line()  # a line of its own: the stats line may be cut, this is not
    assert "sample 1/" in heat.stats_line()
    # Marks stay whatever the reduction.
    for how in (MEAN, MAX_ABS, MIN_ABS):
        heat.set_reduction(how)
        qtbot.waitUntil(lambda: heat.stride() == (1, 1), timeout=5000)
        assert ("nan", 1, 3) in heat.markers().spots() and ("row", dead) in heat.markers().lines()
        assert heat.findings_text().startswith("1 NaN at [1, 3]")
        assert f"{how} of" in heat.stats_line()


def test_nan_and_inf_among_the_drawn_values_are_marked_without_a_scan(view):
    values = torch.zeros(30, 40)
    values[4, 7] = float("nan")
    values[20, 1] = float("inf")
    view.set_values(values, row_offset=100, stride=(3, 1), full_shape=(90, 40))
    assert ("shown_nan", 100 + 4 * 3, 7) in view.markers().spots()
    assert ("shown_inf", 100 + 20 * 3, 1) in view.markers().spots()
    assert view.findings_text() == "1 NaN (magenta) · 1 ±Inf shown"


def _data() -> np.ndarray:
    rng = np.random.default_rng(0)
    data = (rng.standard_normal((2000, 64)) * 0.02).astype(np.float32)
    data[10] = 0.0  # a dead row
    data[500, 5] = 50.0  # an outlier
    return data


def test_the_reduction_changes_what_a_block_shows(view, qtbot):
    data = _data()
    view.set_reduction(MAX_ABS)
    view.set_values(data)
    fr, fc = view.downsample_factor()
    assert fr > 1  # 2000 rows into a plot a few hundred pixels high
    shown = view.image_item().image
    assert shown[500 // fr, 5 // fc] == 50.0  # the outlier shows in max |v|
    assert shown[10 // fr].min() != 0.0 or fr == 1  # ... and the dead row does not
    view.set_reduction(MIN_ABS)
    shown = view.image_item().image
    assert (shown[10 // fr] == 0.0).all()  # the dead row shows in min |v|
    assert shown[500 // fr, 5 // fc] != 50.0
    view.set_reduction(MEAN)
    shown = view.image_item().image
    block = data[(500 // fr) * fr:(500 // fr + 1) * fr, (5 // fc) * fc:(5 // fc + 1) * fc]
    assert shown[500 // fr, 5 // fc] == pytest.approx(block.mean(), rel=1e-5)
    assert "mean of" in view.stats_line()
    view.set_reduction(SAMPLE)  # a direct caller's big array in sample mode: max |v| to MAX_DISPLAY
    assert view.downsample_factor() == (1, 1) and "every value" in view.stats_line()


@pytest.mark.parametrize(("shape", "fr", "fc"), [((50, 300), 3, 20), ((7, 9), 2, 2), ((31, 5), 4, 1)])
@pytest.mark.parametrize("how", [MEAN, MIN_ABS])
def test_block_reduce_matches_brute_force(shape, fr, fc, how):
    rng = np.random.default_rng(1)
    a = rng.standard_normal(shape).astype(np.float32)
    a[0, 0] = np.nan
    out = block_reduce(a, fr, fc, how)
    assert out.shape == (-(-shape[0] // fr), -(-shape[1] // fc))
    for i, j in np.ndindex(*out.shape):
        block = a[i * fr:(i + 1) * fr, j * fc:(j + 1) * fc].ravel().astype(np.float64)
        if np.isnan(block).any():
            assert np.isnan(out[i, j])  # no reduction hides a NaN
        elif how == MEAN:
            assert out[i, j] == pytest.approx(block.mean(), rel=1e-5)
        else:
            assert out[i, j] == block[np.argmin(np.abs(block))]


def test_finding_positions_map_onto_any_slice():
    nan = Finding("w", "nan", "error", "[2, 1, 0, 2]", 1, float("nan"), (2, 1, 0, 2))
    dead = Finding("w", "dead_row", "warning", "[5, :, :, :]", 1, 0.0, (5,))
    column = Finding("w", "dead_column", "warning", "[:, 1, :, :]", 1, 0.0, (1,))
    # rows dim 0, columns dim 1, dims 2 and 3 fixed at 0
    target = slice_target(nan, 4, 0, 1, {2: 0, 3: 0})
    assert (target.fixed, target.row, target.col) == ({2: 0, 3: 2}, 2, 1)
    assert (slice_target(dead, 4, 0, 1, {2: 0, 3: 0}).row, slice_target(dead, 4, 0, 1, {2: 0, 3: 0}).col) == (5, None)
    # transposed (rows dim 3, columns dim 0): the dead channel is a column of the table
    target = slice_target(dead, 4, 3, 0, {1: 0, 2: 0})
    assert (target.row, target.col) == (None, 5)
    marks = marks_in_slice([nan, dead, column], 4, 0, 1, {2: 0, 3: 2})
    assert [(m.kind, m.row, m.col, m.in_slice) for m in marks] == [
        ("nan", 2, 1, True), ("dead_row", 5, None, True), ("dead_column", None, 1, True)]
    elsewhere = marks_in_slice([nan], 4, 0, 1, {2: 1, 3: 2})[0]
    assert not elsewhere.in_slice and elsewhere.label.endswith("(in another slice)")
