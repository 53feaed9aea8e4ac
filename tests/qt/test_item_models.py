"""Issue 3: the tree, filter and table models are valid Qt models; the table is virtual."""

from __future__ import annotations

import numpy as np
import torch
from PySide6.QtCore import Qt

import paramedit
from paramedit.qt.number_format import compact_text
from paramedit.qt.parameter_filter_proxy_model import ParameterFilterProxyModel, name_matches
from paramedit.qt.parameter_tree_model import NAME_ROLE, ParameterTreeModel
from paramedit.qt.tensor_table_model import MAX_TILES, TensorTableModel
from tests.qt.window_helpers import select_tensor


def _visible_names(proxy, parent=None) -> list[str]:
    from PySide6.QtCore import QModelIndex

    parent = parent or QModelIndex()
    names = []
    for row in range(proxy.rowCount(parent)):
        index = proxy.index(row, 0, parent)
        name = index.data(NAME_ROLE)
        names += [name] if name else _visible_names(proxy, index)
    return names


def test_tree_model_and_filter_proxy_pass_the_model_tester(qapp, qtmodeltester, demo_session):
    tree = ParameterTreeModel()
    tree.set_session(demo_session)
    qtmodeltester.check(tree)
    proxy = ParameterFilterProxyModel()
    proxy.setSourceModel(tree)
    proxy.set_pattern("*.bias")
    qtmodeltester.check(proxy)
    tree.refresh_markers()
    tree.set_backward_report(demo_session.run_backward())
    qtmodeltester.check(tree)


def test_filter_by_substring_and_glob(demo_session):
    tree = ParameterTreeModel()
    tree.set_session(demo_session)
    proxy = ParameterFilterProxyModel()
    proxy.setSourceModel(tree)
    proxy.set_pattern("*.bias")
    assert _visible_names(proxy) == ["mix.bias", "mlp.0.bias", "mlp.2.bias", "norm.bias"]
    proxy.set_pattern("MLP.0")
    assert _visible_names(proxy) == ["mlp.0.weight", "mlp.0.bias"]
    proxy.set_pattern("")
    assert len(_visible_names(proxy)) == len(demo_session.names())
    assert name_matches("embed.weight", "embed.*") and not name_matches("embed.weight", "*.bias")


def test_table_model_passes_the_model_tester(qapp, qtmodeltester, demo_session):
    model = TensorTableModel()
    for name, shape in (("mlp.0.weight", (32, 16)), ("mix.bias", (1, 16)), ("steps_trained", (1, 1))):
        model.set_tensor(demo_session, name)
        model.ensure_cells(0, 100, 0, 100)
        assert (model.rowCount(), model.columnCount()) == shape
        qtmodeltester.check(model)
    model.set_tensor(demo_session, "mix.weight", row_dim=0, col_dim=2, fixed={1: 4})
    model.ensure_cells(0, 100, 0, 100)
    value = demo_session.tensor("mix.weight")[3, 4, 1].detach()
    assert model.data(model.index(3, 1), Qt.ItemDataRole.EditRole) == str(value.numpy())  # every digit to edit
    assert model.data(model.index(3, 1)) == compact_text(float(value))  # a compact display (issue 12)
    qtmodeltester.check(model)


def test_big_embedding_costs_only_its_visible_cells(make_window, qtbot, monkeypatch):
    """A 50257 x 768 table: data() calls stay proportional to the cells on screen, even at the end."""
    calls = {"n": 0}
    original = TensorTableModel.data

    def counting(self, index, role=Qt.ItemDataRole.DisplayRole):
        calls["n"] += 1
        return original(self, index, role)

    # Patched before the model exists: PySide6 resolves the Python override when it wraps the object.
    monkeypatch.setattr(TensorTableModel, "data", counting)
    net = torch.nn.Embedding(50257, 768)
    window = make_window(paramedit.open_session(net))
    select_tensor(window, qtbot, "weight")
    table, model = window.editor.table, window.editor.model
    assert (model.rowCount(), model.columnCount()) == (50257, 768)

    table.grab()
    assert calls["n"] > 0
    calls["n"] = 0
    table.scrollToBottom()
    last = model.index(50256, 0)
    qtbot.waitUntil(lambda: original(model, last) is not None, timeout=5000)
    table.grab()  # one more full paint of the viewport
    visible_rows = table.rowAt(table.viewport().height() - 1) - table.rowAt(0) + 1
    visible_cols = table.columnAt(table.viewport().width() - 1) - max(table.columnAt(0), 0) + 1
    visible = max(visible_rows, 1) * max(visible_cols, 1)
    assert 0 < calls["n"] < 60 * visible  # a few roles per cell per paint, never per cell of the tensor
    assert model.cached_tiles() <= MAX_TILES
    assert original(model, last, Qt.ItemDataRole.EditRole) == str(net.weight[50256, 0].detach().numpy())


def test_big_embedding_heatmap_reads_a_sample_about_the_plot_size(make_window, qtbot, monkeypatch):
    """Issue 4: the heatmap of a 50257 x 768 embedding reads a strided sample, never the slice."""
    from paramedit.core.session import Session

    reads: list[tuple[str, tuple[int, ...]]] = []
    original = Session.preview

    def recording(self, name, index="[...]"):
        values, mask = original(self, name, index)
        reads.append((index if isinstance(index, str) else "?", tuple(values.shape)))
        return values, mask

    monkeypatch.setattr(Session, "preview", recording)
    net = torch.nn.Embedding(50257, 768)
    window = make_window(paramedit.open_session(net))
    reads.clear()
    select_tensor(window, qtbot, "weight")
    window.editor.refresh_heatmap_now()
    heat = window.editor.heatmap
    limits = heat.sampling_limits()
    rows, cols = heat.image_item().image.shape
    assert rows <= limits[0] and cols <= limits[1]
    assert heat.stride()[0] > 1
    assert reads and all(np.prod(shape) <= limits[0] * limits[1] for _index, shape in reads)
    # Every pixel is the tensor's own value at the row and column the stride says.
    sr, sc = heat.stride()
    expected = net.weight.detach()[::sr, ::sc].numpy()
    assert np.array_equal(heat.image_item().image, expected)


def test_max_abs_reduction_shows_an_outlier_the_sample_skips(make_window, qtbot):
    """A NaN row and an outlier between sampled rows: drawn once a reduction reads every value
    (issue 4; issue 10 made "every row" the "max |v|" choice of the pixel reduction)."""
    from paramedit.qt.heatmap_view import MAX_ABS, SAMPLE

    torch.manual_seed(0)
    net = torch.nn.Embedding(20000, 64)
    window = make_window(paramedit.open_session(net))
    select_tensor(window, qtbot, "weight")
    editor, heat = window.editor, window.editor.heatmap
    editor.refresh_heatmap_now()
    step = heat.stride()[0]
    assert step > 1
    with torch.no_grad():  # rows the sample skips, in different blocks of the reduced image
        net.weight[1].fill_(float("nan"))
        net.weight[10 * step + 1, 3] = 1000.0
    editor.refresh_heatmap_now()
    assert not heat._nan_overlay.isVisible()
    assert float(np.nanmax(heat.image_item().image)) < 1000.0
    heat.set_reduction(MAX_ABS)  # as the "pixel" combo does; the editor fetches the whole slice again
    qtbot.waitUntil(lambda: heat.stride() == (1, 1), timeout=3000)
    assert heat._nan_overlay.isVisible()
    assert float(np.nanmax(heat.image_item().image)) == 1000.0  # kept by the block-extreme reduction
    assert "sample" not in heat.stats_line() and "max 1000" in heat.stats_line()
    assert "max |v| of" in heat.stats_line()  # the line says which reduction is on
    heat.set_reduction(SAMPLE)
    qtbot.waitUntil(lambda: heat.stride() != (1, 1), timeout=3000)
