"""The pyqtgraph half of the heatmap: plot with index axes, image, NaN overlay, selection
outline, finding marks, colour bar and histogram. :class:`HeatmapView` decides what to draw;
this draws it."""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QRectF, Qt
from PySide6.QtGui import QColor, QFont, QPen
from PySide6.QtWidgets import QGraphicsRectItem, QWidget

from paramedit.qt.heatmap_data import (
    DIVERGING,
    SEQUENTIAL,
    bin_colours,
    histogram,
    histogram_image,
    nice_rounding,
)
from paramedit.qt.heatmap_items import HoverImageItem, IndexAxisItem
from paramedit.qt.heatmap_markers import HeatmapMarkers

CMAPS = {DIVERGING: "CET-D1", SEQUENTIAL: "viridis"}


class HeatmapGraphicsWidget(pg.GraphicsLayoutWidget):
    """A plot of tensor rows x columns (row 0 at the top) above a histogram of the levels."""

    def __init__(self, background: QColor, foreground: QColor, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("heatmapGraphics")
        self.setBackground(background)
        self.ci.layout.setContentsMargins(2, 2, 2, 2)
        self.ci.layout.setSpacing(2)
        axes = {"left": IndexAxisItem("left"), "top": IndexAxisItem("top")}
        self.plot: pg.PlotItem = self.addPlot(row=0, col=0, axisItems=axes)
        self.plot.hideAxis("bottom")
        self.plot.setLabels(left="row", top="column")
        self.plot.invertY(True)  # row 0 at the top, like the table
        self.plot.setMenuEnabled(False)
        self.plot.hideButtons()
        self.plot.getViewBox().setDefaultPadding(0.0)
        self.plot.getViewBox().setBackgroundColor(QColor(background).darker(115))

        self.image = HoverImageItem(axisOrder="row-major", autoDownsample=True)
        self.nan_overlay = pg.ImageItem(axisOrder="row-major")
        self.nan_overlay.setZValue(1)
        for item in (self.image, self.nan_overlay):
            self.plot.addItem(item)

        # One pair of outline items per selected block; the first pair is made now (tests read it).
        self._outline_pairs: list[list[QGraphicsRectItem]] = []
        self.sel_items: list[QGraphicsRectItem] = self._outline_pair()
        self.markers = HeatmapMarkers(self.plot)

        self.cbar = pg.ColorBarItem(
            colorMap=CMAPS[DIVERGING], interactive=False, colorMapMenu=False, width=14, rounding=1e-3
        )
        self.cbar.setImageItem(self.image, insert_in=self.plot)
        self._bar_state: tuple[str, float, float] | None = None  # what the colour bar shows

        self.hist: pg.PlotItem = self.addPlot(row=1, col=0)
        self.hist.setMaximumHeight(78)
        self.hist.setMouseEnabled(x=False, y=False)
        self.hist.setMenuEnabled(False)
        self.hist.hideButtons()
        self.hist.hideAxis("left")
        self.hist.setToolTip("Histogram over the colour levels; the end bins include clipped values")
        # Bars as one small RGBA image (a bin per column, coloured like the map): drawing it
        # costs a fraction of a filled pyqtgraph curve, which rebuilds a path on every update.
        self.hist_image = pg.ImageItem(axisOrder="row-major")
        self.hist.addItem(self.hist_image)
        self.hist.setYRange(0, 1, padding=0.05)
        for item in (self.plot, self.hist, self.cbar):
            for name in ("left", "top", "right", "bottom"):
                axis = item.getAxis(name)
                axis.setPen(foreground)
                axis.setTextPen(foreground)
                axis.enableAutoSIPrefix(False)  # "(x0.001)" labels are easy to miss

    def draw(self, shown: np.ndarray, overlay: np.ndarray | None, levels: tuple[float, float], rect: QRectF,
             mode: str, finite_sample: np.ndarray) -> None:
        """The image (finite values), the NaN overlay, the colour bar and the histogram."""
        lo, hi = levels
        cmap = pg.colormap.get(CMAPS[mode])
        self.image.setImage(shown, autoLevels=False, levels=(lo, hi), rect=rect)
        if self._bar_state != (mode, lo, hi):  # else its axis would be laid out again for nothing
            self._bar_state = (mode, lo, hi)
            self.cbar.rounding = nice_rounding(lo, hi)
            self.cbar.setColorMap(cmap)
            self.cbar.setLevels((lo, hi))
        self.nan_overlay.setVisible(overlay is not None)
        if overlay is not None:
            self.nan_overlay.setImage(overlay, autoLevels=False, levels=(0, 255), rect=rect)
        bars = histogram_image(histogram(finite_sample, lo, hi), bin_colours(cmap))
        self.hist_image.setImage(bars, levels=(0, 255), rect=QRectF(lo, 0.0, hi - lo, 1.0))
        self.hist.setXRange(lo, hi, padding=0.02)

    def set_font(self, font: QFont) -> None:
        """Tick numbers and axis titles in ``font`` (zoom): the scene does not follow the widget's font."""
        for item in (self.plot, self.hist, self.cbar):
            for name in ("left", "top", "right", "bottom"):
                axis = item.getAxis(name)
                axis.setTickFont(QFont(font))
                if axis.label is not None:
                    axis.label.setFont(QFont(font))
                    axis.resizeEvent()

    def set_compact(self, compact: bool) -> None:
        """Without the histogram (presenting: the heatmap takes its height)."""
        self.hist.setVisible(not compact)
        self.hist.setMaximumHeight(0 if compact else 78)

    def _outline_pair(self) -> list[QGraphicsRectItem]:
        # A black outline under a dashed yellow one stays visible on every colour of both maps.
        pair = []
        for z, (colour, width, style) in enumerate(
            (("#000000", 3.5, Qt.PenStyle.SolidLine), ("#ffd400", 1.8, Qt.PenStyle.DashLine))
        ):
            pen = QPen(QColor(colour), width, style)
            pen.setCosmetic(True)
            item = QGraphicsRectItem()
            item.setPen(pen)
            item.setZValue(10 + z)
            item.setVisible(False)
            self.plot.addItem(item, ignoreBounds=True)
            pair.append(item)
        self._outline_pairs.append(pair)
        return pair

    def outline(self, rect: QRectF | None) -> None:
        """The selection outline around ``rect`` (tensor index coordinates), or none."""
        self.outlines([] if rect is None else [rect])

    def outlines(self, rects: list[QRectF]) -> None:
        """An outline around each rectangle (several selected blocks), none for an empty list."""
        while len(self._outline_pairs) < len(rects):
            self._outline_pair()
        for i, pair in enumerate(self._outline_pairs):
            for item in pair:
                if i < len(rects):
                    item.setRect(rects[i])
                item.setVisible(i < len(rects))

    def outline_rects(self) -> list[QRectF]:
        """The rectangles outlined now."""
        return [pair[0].rect() for pair in self._outline_pairs if pair[0].isVisible()]

    def clear_all(self) -> None:
        self.image.clear()
        self.nan_overlay.clear()
        self.hist_image.clear()
        self.markers.clear()
        self.outline(None)
