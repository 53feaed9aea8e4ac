"""GUI figures, measured in one offscreen Qt process: the big table and the heatmap.

Prints one JSON object: {"table": {"ours", "baseline", "extra"}, "heatmap": {...}}.

Both figures go through the code the window runs: the table is a TensorTableView over a
TensorTableModel, the heatmap is TensorEditorWidget.refresh_heatmap_now (which asks core for a
strided sample of the slice about the plot's pixel size and hands it to HeatmapView).
"""

import json
import os
import sys
import time

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import numpy as np
import pyqtgraph as pg
import shiboken6
import torch
from PySide6.QtWidgets import QApplication, QWidget
from torch import nn

import paramedit
from paramedit.qt.tensor_editor_widget import TensorEditorWidget
from paramedit.qt.tensor_table_model import TensorTableModel
from paramedit.qt.tensor_table_view import TensorTableView

DATA_CALLS = {"n": 0}


class CountingModel(TensorTableModel):
    """Counts data() calls; the same signature as the model's, so Qt calls it the same way."""

    def data(self, index, role=0):
        DATA_CALLS["n"] += 1
        return super().data(index, role)


def best_pair(ours, baseline, repeat=15) -> tuple[float, float]:
    """Best wall time of each, run alternately: on a shared machine a burst of load then hits
    both sides alike instead of one side's whole series."""
    times: tuple[list[float], list[float]] = ([], [])
    for _ in range(repeat):
        for fn, out in zip((ours, baseline), times, strict=True):
            t = time.perf_counter()
            fn()
            out.append(time.perf_counter() - t)
    return min(times[0]), min(times[1])


def table_figure(app: QApplication, session, widgets: list[QWidget]) -> dict:
    # One view per tensor, so each keeps its row count between repeats, as when a tensor is
    # shown again; switching views between repeats only spreads the machine's noise evenly.
    views = {}
    for name in ("embed.weight", "small.weight", "screen.weight"):
        view = TensorTableView()
        view.setModel(CountingModel(view))  # parented: it goes when the view goes
        view.resize(900, 600)
        view.show()
        widgets.append(view)
        views[name] = view

    def show(name):
        view = views[name]
        view.model().set_tensor(session, name)
        view.scrollToBottom()
        view.viewport().repaint()
        app.processEvents()

    for name in views:
        show(name)
    ours, base = best_pair(lambda: show("embed.weight"), lambda: show("small.weight"))
    # The same jump on a tensor that just fills the view: painting 200 cells costs more than
    # painting 15 whatever the tensor, so this pair isolates what the tensor's size costs.
    ours_screen, base_screen = best_pair(lambda: show("embed.weight"), lambda: show("screen.weight"))
    DATA_CALLS["n"] = 0
    show("embed.weight")
    view = views["embed.weight"]
    cells = view_cells(view)
    screen_cells = view_cells(views["screen.weight"])
    return {"ours": ours, "baseline": base,
            "extra": f"data() calls {DATA_CALLS['n']} for {cells} visible cells (3 x 5: 15)",
            "screen": {"ours": ours_screen, "baseline": base_screen,
                       "extra": f"{cells} vs {screen_cells} visible cells"}}


def view_cells(view) -> int:
    rows = view.rowAt(view.viewport().height() - 1) - view.rowAt(0) + 1
    cols = view.columnAt(view.viewport().width() - 1) - view.columnAt(0) + 1
    return rows * max(cols, 1)


def heatmap_figure(app: QApplication, session, widgets: list[QWidget]) -> dict:
    editor = TensorEditorWidget()
    editor.set_session(session)
    editor.resize(1100, 560)
    editor.show()
    editor.show_tensor("embed.weight")
    app.processEvents()
    widgets.append(editor)
    heat = editor.heatmap

    screen = np.random.default_rng(0).standard_normal((500, 600)).astype(np.float32)
    plot = pg.PlotWidget()
    item = pg.ImageItem(axisOrder="row-major")
    plot.addItem(item)
    plot.resize(600, 500)
    plot.show()
    widgets.append(plot)

    def paint_ours():
        editor.refresh_heatmap_now()
        heat.repaint()
        app.processEvents()

    def paint_base():
        item.setImage(screen, levels=(-3, 3))
        plot.repaint()
        app.processEvents()

    paint_ours()
    paint_base()
    ours, base = best_pair(paint_ours, paint_base)
    rows, cols = heat.image_item().image.shape
    return {"ours": ours, "baseline": base, "extra": f"image {rows}x{cols}, sampled every {heat.stride()} (row, col)"}


def montage_figure(app: QApplication, widgets: list[QWidget]) -> dict:
    """Issue 13: a 512 x 512 x 3 x 3 conv weight's kernel montage opened (a fresh tensor each
    time, so nothing is reused) and painted, against setImage of an image the montage's size."""
    from paramedit.qt.kernel_montage_view import KernelMontageView

    montage = KernelMontageView()
    montage.resize(600, 600)
    montage.show()
    widgets.append(montage)
    weights = [torch.randn(512, 512, 3, 3) for _ in range(2)]
    turn = [0]

    def open_ours():
        turn[0] += 1
        montage.set_tensor(weights[turn[0] % 2], "conv.weight")
        montage.repaint()
        app.processEvents()

    open_ours()
    shape = montage.montage.shape[:2]
    image = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    plot = pg.PlotWidget()
    item = pg.ImageItem(axisOrder="row-major")
    plot.addItem(item)
    plot.resize(600, 600)
    plot.show()
    widgets.append(plot)

    def paint_base():
        item.setImage(image, levels=(-3, 3))
        plot.repaint()
        app.processEvents()

    paint_base()
    ours, base = best_pair(open_ours, paint_base)
    return {"ours": ours, "baseline": base,
            "extra": f"{ours * 1000:.0f} ms to open (target: well under a second); image {shape[0]}x{shape[1]}, "
                     f"{montage.note.text()}"}


def main() -> None:
    app = QApplication.instance() or QApplication(sys.argv)
    model = nn.Module()
    model.embed = nn.Embedding(50257, 768)
    model.small = nn.Linear(5, 3)
    model.screen = nn.Linear(12, 40)  # 40 x 12: a little more than the 900 x 600 view shows
    session = paramedit.open_session(model)
    widgets: list[QWidget] = []
    try:
        table = table_figure(app, session, widgets)
        figures = {"table": table, "table_screen": table.pop("screen"),
                   "heatmap": heatmap_figure(app, session, widgets), "montage": montage_figure(app, widgets)}
    finally:
        # Delete the widgets now, while Python is whole. Left to PySide's exit-time teardown,
        # a pyqtgraph view's items call back into a finalizing interpreter and crash it
        # ("shared QObject was deleted directly", malloc errors, exit status 134/139).
        for widget in widgets:
            widget.close()
            shiboken6.delete(widget)
    print(json.dumps(figures))


if __name__ == "__main__":
    torch.manual_seed(0)
    main()
