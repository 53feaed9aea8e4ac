"""Every kernel of a 4-D weight ``[out, in, kh, kw]`` as a grid of tiles on one colour scale.

Output channels are rows, input channels columns; a weight with 3 input channels can show one RGB
tile per output channel instead (the first layer of an image model). The montage is one image
(:mod:`paramedit.qt.kernel_montage_data`) drawn from a strided sample of the channels when there
are too many to see: only the sampled channels are read from the tensor, in one conversion.
"""

from __future__ import annotations

import math

import numpy as np
import pyqtgraph as pg
import torch
from PySide6.QtCore import QPointF, QRectF, Qt, Signal
from PySide6.QtGui import QBrush, QColor, QPainter, QPainterPath, QPen
from PySide6.QtWidgets import (
    QCheckBox,
    QGraphicsPathItem,
    QGraphicsRectItem,
    QHBoxLayout,
    QLabel,
    QStackedLayout,
    QVBoxLayout,
    QWidget,
)

from paramedit.qt import kernel_montage_data as km
from paramedit.qt.heatmap_data import DIVERGING, compute_levels, format_value, nice_rounding, summarize
from paramedit.qt.heatmap_graphics import CMAPS
from paramedit.qt.heatmap_items import HoverImageItem

__all__ = ["KernelMontageView"]

_GAP = QColor("#3a3a3a")  # gaps between tiles: darker than any diverging colour near zero
_GREYS = pg.ColorMap([0.0, 1.0], [(0, 0, 0), (255, 255, 255)])
_TILE_HINT = ("Click: show this kernel in the table · Ctrl+click: add or remove its output channel "
              "from the selection · Shift+click: select the output channels from the last one picked")
_AXIS_HINT = "Click an output channel to select its row of tiles (Ctrl+click adds, Shift+click a range)"


class TileAxisItem(pg.AxisItem):
    """Ticks at tile centres, labelled with channels, as dense as fits; reports clicks on a tile."""

    sigTileClicked = Signal(int, object)  # tile row (or column), Qt.KeyboardModifier

    def __init__(self, orientation: str) -> None:
        super().__init__(orientation)
        self.pitch, self.names = 1, [""]

    def set_tiles(self, pitch: int, names: list[str]) -> None:
        self.pitch, self.names = pitch, names
        self.picture = None
        self.update()

    def tickValues(self, minVal: float, maxVal: float, size: float) -> list:
        vertical = self.orientation in ("left", "right")
        need = 16 if vertical else 8 * max(map(len, self.names)) + 10
        return [km.tile_ticks(len(self.names), self.pitch, *sorted((minVal, maxVal)), size, need)]

    def tickStrings(self, values: list[float], scale: float, spacing: float) -> list[str]:
        return [self.names[round(v) // self.pitch] for v in values]

    def mouseClickEvent(self, event) -> None:
        view = self.linkedView()
        if event.button() != Qt.MouseButton.LeftButton or view is None:
            return super().mouseClickEvent(event)
        event.accept()
        at = view.mapSceneToView(event.scenePos())
        tile = math.floor((at.y() if self.orientation in ("left", "right") else at.x()) / self.pitch)
        if 0 <= tile < len(self.names):
            self.sigTileClicked.emit(tile, event.modifiers())


class _TileImageItem(HoverImageItem):
    """Keeps the keyboard modifiers of the last click (HoverImageItem reports only where)."""

    modifiers = Qt.KeyboardModifier.NoModifier

    def mouseClickEvent(self, ev) -> None:
        self.modifiers = ev.modifiers()
        super().mouseClickEvent(ev)

    def paint(self, painter, *args) -> None:
        # Under two screen pixels per pixel (a big sample in a small pane), nearest-pixel scaling
        # draws gaps 0, 1 or 2 pixels wide: a moiré. Smoothing greys them evenly; larger, tiles stay crisp.
        painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, painter.transform().m11() < 2.0)
        super().paint(painter, *args)


class KernelMontageView(QWidget):
    """The kernels of a 4-D weight as tiles, on one symmetric colour scale with a colour bar.

    ``kernelClicked(out, in)`` carries weight channels (``in`` is 0 for an RGB tile);
    ``outputChannelsSelected(list)`` the output channels the user selected (sorted).
    """

    kernelClicked = Signal(int, int)
    outputChannelsSelected = Signal(list)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("kernelMontage")
        self._tensor: torch.Tensor | None = None
        self._name = ""
        self._layout: km.MontageLayout | None = None
        #: The values drawn, ``[shown out, shown in, kh, kw]`` float32: all that was read.
        self.sample: np.ndarray | None = None
        #: The image handed to pyqtgraph: NaN in the gaps; RGB mode (H, W, 3) in 0..1.
        self.montage: np.ndarray | None = None
        self._selected: list[int] = []
        self._anchor: int | None = None  # the last output channel picked (Shift+click ranges from it)
        self._current: tuple[int, int] | None = None
        self._build()
        self.clear()

    def _build(self) -> None:
        pal = self.palette()
        fg = pal.color(pal.ColorRole.WindowText)
        self.title = QLabel("", objectName="kernelMontageTitle")
        self.note = QLabel("", objectName="kernelMontageNote")
        self.note.setStyleSheet(f"color: {pal.color(pal.ColorRole.PlaceholderText).name()};")
        self.note.setWordWrap(True)  # a long note wraps instead of widening the pane
        self.rgb_check = QCheckBox("RGB", objectName="kernelMontageRgb", checked=True)
        self.rgb_check.setToolTip("3 input channels: one tile per output channel, its channels as red, "
                                  "green, blue (each scaled by the shared ±max |v| around mid-grey)")
        self.clip_check = QCheckBox("clip 99.5%", objectName="kernelMontageClip", checked=True)
        self.clip_check.setToolTip("Colour scale to the 99.5th percentile of |v|, as the heatmap's, so one large "
                                   "kernel does not wash out the others; off: to max |v|")
        self.hover = QLabel(" ", objectName="kernelMontageHover")
        self.graphics = pg.GraphicsLayoutWidget()
        self.graphics.setBackground(pal.color(pal.ColorRole.Window))
        self._left, self._top = TileAxisItem("left"), TileAxisItem("top")
        self.plot: pg.PlotItem = self.graphics.addPlot(row=0, col=0, axisItems={"left": self._left, "top": self._top})
        self.plot.hideAxis("bottom")
        self.plot.invertY(True)  # output channel 0 at the top, like the table
        self.plot.setAspectLocked(True)  # square pixels, so square kernels are square tiles
        self.plot.setMenuEnabled(False)
        self.plot.hideButtons()
        self.plot.getViewBox().setDefaultPadding(0.01)
        self._backdrop = QGraphicsRectItem()  # shows through the gaps (NaN) as grid lines
        self._backdrop.setBrush(QBrush(_GAP))
        self._backdrop.setPen(QPen(Qt.PenStyle.NoPen))
        self._backdrop.setZValue(-1)
        self.plot.addItem(self._backdrop)
        self._left.setToolTip(_AXIS_HINT)
        self.image = _TileImageItem(axisOrder="row-major")
        self.image.setToolTip(_TILE_HINT)
        self.plot.addItem(self.image)
        # Black under colour stays visible on every colour of both maps (as the heatmap's outline).
        self._selection_items = self._outline("#ffd400", Qt.PenStyle.DashLine)
        self._current_items = self._outline("#00e5ff", Qt.PenStyle.SolidLine)
        self.cbar = pg.ColorBarItem(colorMap=CMAPS[DIVERGING], interactive=False, colorMapMenu=False, width=14)
        self.graphics.addItem(self.cbar, row=0, col=1)
        for item in (self.plot, self.cbar):
            for side in ("left", "top", "right"):
                item.getAxis(side).setPen(fg)
                item.getAxis(side).setTextPen(fg)
                item.getAxis(side).enableAutoSIPrefix(False)
        header = QHBoxLayout()
        header.addWidget(self.title)
        header.addWidget(self.note, 1)
        header.addWidget(self.clip_check)
        header.addWidget(self.rgb_check)
        page = QWidget()
        column = QVBoxLayout(page)
        column.setContentsMargins(4, 2, 4, 2)
        column.addLayout(header)
        column.addWidget(self.graphics, 1)
        column.addWidget(self.hover)
        self.message = QLabel("", objectName="kernelMontageMessage", alignment=Qt.AlignmentFlag.AlignCenter)
        self.message.setWordWrap(True)
        self._stack = QStackedLayout(self)
        self._stack.addWidget(self.message)
        self._stack.addWidget(page)
        self.rgb_check.toggled.connect(self.refresh)
        self.clip_check.toggled.connect(self.refresh)
        self.image.sigClicked.connect(self._clicked)
        self.image.sigHovered.connect(self._hovered)
        self._left.sigTileClicked.connect(self._row_clicked)

    def _outline(self, colour: str, style: Qt.PenStyle) -> list[QGraphicsPathItem]:
        items = []
        for z, (c, width, s) in enumerate((("#000000", 3.5, Qt.PenStyle.SolidLine), (colour, 1.8, style))):
            pen = QPen(QColor(c), width, s)
            pen.setCosmetic(True)
            item = QGraphicsPathItem()
            item.setPen(pen)
            item.setZValue(10 + z)
            self.plot.addItem(item, ignoreBounds=True)
            items.append(item)
        return items

    # ----- public API -----------------------------------------------------------------------
    def set_tensor(self, values: torch.Tensor | None, name: str = "") -> None:
        """Show the kernels of ``values`` (4-D); anything else clears the view with a message."""
        if values is not self._tensor:
            self._selected, self._anchor, self._current = [], None, None
        if values is None:
            self.clear()
            return
        if values.dim() != 4 or values.numel() == 0 or values.is_meta:
            shape = "×".join(map(str, values.shape)) or "a scalar"
            why = "no values to draw" if values.dim() == 4 else "kernels need a 4-D weight [out, in, kh, kw]"
            self.clear(f"{name or 'this tensor'} is {shape}: {why}")
            return
        self._tensor, self._name = values, name
        self.refresh()

    def refresh(self) -> None:
        """Read the shown channels of the tensor again (values changed in place) and draw them."""
        t = self._tensor
        if t is None:
            return
        shape = tuple(t.shape)
        self.rgb_check.setVisible(shape[1] == 3)
        layout = km.plan_montage(shape, shape[1] == 3 and self.rgb_check.isChecked())
        view = t.detach()[:: layout.steps[0], :: layout.steps[1]]  # a view: nothing copied yet
        view = view.abs() if view.is_complex() else view
        self.sample = view.to("cpu", torch.float32).numpy()  # the one conversion, of the sample only
        self._layout = layout
        summary = summarize(self.sample)
        _lo, m = compute_levels(summary.finite_sample, DIVERGING, self.clip_check.isChecked(),
                                extremes=summary.extremes)
        self.montage = km.build_montage(self.sample, layout, m)
        if layout.rgb:
            self.image.setImage(self.montage, autoLevels=False, levels=(0.0, 1.0), lut=None)
        else:
            lut = pg.colormap.get(CMAPS[DIVERGING]).getLookupTable(0.0, 1.0, 256)
            self.image.setImage(self.montage, autoLevels=False, levels=(-m, m), lut=lut)
        self.cbar.rounding = nice_rounding(-m, m)
        self.cbar.setColorMap(_GREYS if layout.rgb else pg.colormap.get(CMAPS[DIVERGING]))
        self.cbar.setLevels((-m, m))
        self.cbar.getAxis("right").setLabel("each of R, G, B" if layout.rgb else "")
        self._left.set_tiles(layout.pitch[0], layout.row_labels())
        self._top.set_tiles(layout.pitch[1], layout.column_labels())
        self.plot.setLabels(left="output channel", top="+ output channel" if layout.rgb else "input channel")
        self.title.setText(f"{self._name}  {'×'.join(map(str, shape))}".strip())
        self.note.setText(layout.sampling_note())
        h, w = layout.image_shape
        self._backdrop.setRect(QRectF(-1, -1, w + 2, h + 2))
        self.plot.getViewBox().autoRange(padding=0.01)
        self._draw_outlines()
        self._stack.setCurrentIndex(1)

    def clear(self, message: str = "select a 4-D weight to see its kernels") -> None:
        """Nothing shown but ``message``."""
        self._tensor = self._layout = self.sample = self.montage = None
        self.image.clear()
        self.message.setText(message)
        self._stack.setCurrentIndex(0)

    def select_output_channels(self, channels: list[int]) -> None:
        """Outline the rows (RGB: tiles) of these output channels, without emitting."""
        self._selected = sorted(set(channels))
        self._draw_outlines()

    def selected_output_channels(self) -> list[int]:
        return list(self._selected)

    def current_kernel(self) -> tuple[int, int] | None:
        """The (output, input) channels of the kernel outlined as the table's current one."""
        return self._current

    def set_current_kernel(self, o: int, i: int) -> None:
        """Outline kernel ``[o, i]`` (the one the table shows); not drawn when it is not sampled."""
        self._current = (o, i)
        self._draw_outlines()

    def tile_centre(self, o: int, i: int) -> QPointF:
        """The centre of kernel ``[o, i]``'s tile in image coordinates (it must be sampled)."""
        assert self._layout is not None
        x, y, w, h = self._layout.tile_rect(o // self._layout.steps[0], i // self._layout.steps[1])
        return QPointF(x + w / 2, y + h / 2)

    # ----- internals ------------------------------------------------------------------------
    def _draw_outlines(self) -> None:
        rows, tile = self._layout.outline_rects(self._selected, self._current) if self._layout else ([], None)
        selected, current = QPainterPath(), QPainterPath()
        for rect in rows:
            selected.addRect(QRectF(*rect))
        if tile is not None:
            current.addRect(QRectF(*tile))
        for items, path in ((self._selection_items, selected.simplified()), (self._current_items, current)):
            for item in items:
                item.setPath(path)

    def _kernel_at(self, pixel: QPointF | None) -> tuple[int, int, int, int] | None:
        """``(a, b, ky, kx)``: sample indices of the kernel under ``pixel`` and where in it."""
        return None if self._layout is None or pixel is None else self._layout.tile_at(pixel.x(), pixel.y())

    def _clicked(self, pixel: QPointF) -> None:
        tile = self._kernel_at(pixel)
        if tile is None or self._layout is None:
            return
        o, i = tile[0] * self._layout.steps[0], tile[1] * self._layout.steps[1]
        mods = self.image.modifiers
        if mods & (Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier):
            self._pick_outputs([o], mods)
            return
        self._anchor = o
        self.set_current_kernel(o, i)
        self.kernelClicked.emit(o, i)

    def _row_clicked(self, row: int, mods: Qt.KeyboardModifier) -> None:
        if self._layout is not None:
            self._pick_outputs(self._layout.outputs_in_row(row), mods)

    def _pick_outputs(self, channels: list[int], mods: Qt.KeyboardModifier) -> None:
        ctrl, shift = (bool(mods & m) for m in (Qt.KeyboardModifier.ControlModifier, Qt.KeyboardModifier.ShiftModifier))
        self.select_output_channels(km.picked_outputs(self._selected, self._anchor, channels, ctrl, shift))
        self._anchor = channels[0]
        self.outputChannelsSelected.emit(list(self._selected))

    def _hovered(self, pixel: QPointF | None) -> None:
        tile = self._kernel_at(pixel)
        if tile is None or self._layout is None or self.sample is None:
            self.hover.setText(" ")
            return
        (a, b, ky, kx), (so, si) = tile, self._layout.steps
        kernel = self.sample[a] if self._layout.rgb else self.sample[a, b]  # RGB: its three channels
        if self._layout.rgb:
            where, value = f"[{a * so}, :, {ky}, {kx}]", f"({', '.join(map(format_value, kernel[:, ky, kx]))})"
        else:
            where, value = f"[{a * so}, {b * si}, {ky}, {kx}]", format_value(kernel[ky, kx])
        kernel_name = where.rsplit(",", 2)[0] + "]"  # [o, i] (RGB: [o, :])
        text = f"{where} = {value}  ·  kernel {kernel_name} max |v| {format_value(np.abs(kernel).max())}"
        self.hover.setText(text)
        self.image.setToolTip(f"{text}\n{_TILE_HINT}")
