"""The heatmap's own pyqtgraph items: index axes with ticks at pixel centres, and an image item
that reports hover and clicks."""

from __future__ import annotations

import math

import pyqtgraph as pg
from PySide6.QtCore import QPointF, Qt, Signal
from PySide6.QtGui import QImage


class IndexAxisItem(pg.AxisItem):
    """Integer index ticks placed at pixel centres (index ``i`` spans ``[i, i+1)``)."""

    def tickValues(self, minVal: float, maxVal: float, size: float) -> list:
        levels = super().tickValues(minVal - 0.5, maxVal - 0.5, size)
        levels = [(sp, [v + 0.5 for v in vals if float(v).is_integer()]) for sp, vals in levels if sp >= 1]
        if not any(vals for _sp, vals in levels):  # a range of one or two indices
            lo, hi = sorted((minVal, maxVal))  # an inverted axis passes them reversed
            levels = [(1.0, [i + 0.5 for i in range(math.ceil(lo - 0.5), math.floor(hi - 0.5) + 1)])]
        return levels

    def tickStrings(self, values: list[float], scale: float, spacing: float) -> list[str]:
        return [str(round(v - 0.5)) for v in values]


class HoverImageItem(pg.ImageItem):
    """ImageItem that reports hover and left clicks in its own (display pixel) coordinates."""

    sigHovered = Signal(object)  # QPointF in pixel coordinates, or None on exit
    sigClicked = Signal(object)  # QPointF in pixel coordinates
    sigDragged = Signal(object, object)  # start, current QPointF of a left drag (when drag_selects)

    #: A left drag selects pixels (reported by sigDragged) instead of panning the view.
    drag_selects = False

    def hoverEvent(self, ev) -> None:
        if ev.isExit():
            self.sigHovered.emit(None)
            return
        ev.acceptClicks(Qt.MouseButton.LeftButton)
        self.sigHovered.emit(QPointF(ev.pos()))

    def render(self) -> None:
        super().render()
        # pyqtgraph makes an 8-bit indexed image of float data + LUT; Qt then scales that through
        # a slow generic path on every paint. One conversion per new image makes each paint ~4x
        # cheaper (the data handed to pyqtgraph stays float32 with explicit levels).
        if self.qimage is not None and self.qimage.format() == QImage.Format.Format_Indexed8:
            self.qimage = self.qimage.convertToFormat(QImage.Format.Format_ARGB32_Premultiplied)

    def mouseDragEvent(self, ev) -> None:
        if not self.drag_selects or ev.button() != Qt.MouseButton.LeftButton:
            super().mouseDragEvent(ev)  # the view box pans
            return
        ev.accept()
        self.sigDragged.emit(QPointF(ev.buttonDownPos()), QPointF(ev.pos()))

    def mouseClickEvent(self, ev) -> None:
        if ev.button() == Qt.MouseButton.LeftButton:
            ev.accept()
            self.sigClicked.emit(QPointF(ev.pos()))
        else:
            super().mouseClickEvent(ev)
