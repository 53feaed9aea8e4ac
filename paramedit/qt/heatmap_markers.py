"""Marks drawn over the heatmap so that no sample or block reduction hides what is known.

The scan's findings in the shown slice (NaN ×, Inf ▲, outlier ○, dead rows and columns as
dashed lines), the NaN and Inf of the values drawn, and the finding the user went to (a large
ring, or a thick line for a row or column). Symbols are sized in screen pixels, so a single cell
of a 50257-row slice is as visible as a cell of a 10-row one. Coordinates are the view's tensor
indices: cell ``(r, c)`` is centred on ``(c + 0.5, r + 0.5)``.

Items are touched only when what they draw changes: a heatmap redrawn without findings makes no
call on them (each call into Qt costs, and PySide6 6.12 on Python 3.11 leaks a reference to
None per call returning nothing).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QRectF, Qt
from PySide6.QtGui import QColor, QPen

from paramedit.qt.finding_locations import SliceMark

__all__ = ["MARK_STYLES", "HeatmapMarkers"]

#: kind -> (symbol, size in pixels, fill colour or None, outline colour)
MARK_STYLES = {
    "nan": ("x", 15, "#ff00ff", "#000000"),
    "inf": ("t", 14, "#ff6a00", "#000000"),
    "outlier": ("o", 17, None, "#ffd400"),
    "shown_nan": ("x", 10, "#ff00ff", "#000000"),  # NaN among the drawn values (scan or not)
    "shown_inf": ("t", 10, "#ff6a00", "#000000"),
}
LINE_COLOURS = {"dead_row": "#00c8ff", "dead_column": "#00c8ff"}
FOCUS_COLOUR = "#ffd400"


def _pen(colour: str, width: float, style: Qt.PenStyle = Qt.PenStyle.SolidLine) -> QPen:
    pen = QPen(QColor(colour), width, style)
    pen.setCosmetic(True)
    return pen


class HeatmapMarkers:
    """Owns the marker items of one heatmap plot (added above the image, below the selection)."""

    def __init__(self, plot: pg.PlotItem) -> None:
        self._points = pg.ScatterPlotItem(pxMode=True)
        self._under = pg.PlotCurveItem(connect="pairs", pen=_pen("#000000", 4.0))
        self._lines = pg.PlotCurveItem(connect="pairs", pen=_pen(LINE_COLOURS["dead_row"], 2.0, Qt.PenStyle.DashLine))
        self._focus_under = pg.ScatterPlotItem(pxMode=True)
        self._focus = pg.ScatterPlotItem(pxMode=True)
        self._focus_line_under = pg.PlotCurveItem(connect="pairs", pen=_pen("#000000", 6.0))
        self._focus_line = pg.PlotCurveItem(connect="pairs", pen=_pen(FOCUS_COLOUR, 3.0))
        items = (self._under, self._lines, self._points, self._focus_line_under, self._focus_line,
                 self._focus_under, self._focus)
        for z, item in enumerate(items):
            item.setZValue(3 + z * 0.1)
            item.setVisible(False)  # until there is something to draw: no paint calls for nothing
            plot.addItem(item, ignoreBounds=True)
        self._spots: list[tuple[str, int, int]] = []
        self._line_list: list[tuple[str, int]] = []
        self._focus_at: tuple[int | None, int | None] | None = None
        self._drawn: tuple = ((), ((), None), (None, None))  # (spots, lines with rect, focus with rect) last drawn

    # ----- what is shown ------------------------------------------------------------------------
    def show(self, marks: Sequence[SliceMark], shown: Sequence[tuple[str, int, int]], rect: QRectF) -> None:
        """Draw ``marks`` (the scan's, in this slice) and ``shown`` ((kind, row, col) of NaN/Inf
        among the drawn values) over an image covering ``rect``."""
        spots = [(m.kind, m.row, m.col) for m in marks
                 if m.in_slice and m.row is not None and m.col is not None and m.kind in MARK_STYLES]
        spots += [(kind, r, c) for kind, r, c in shown]
        self._spots = [(k, int(r), int(c)) for k, r, c in spots]  # type: ignore[arg-type]
        self._line_list = []
        for m in marks:  # a dead row is a column of the table when the view is transposed
            if m.in_slice and m.kind in LINE_COLOURS and (m.row is None) != (m.col is None):
                self._line_list.append(("row", m.row) if m.row is not None else ("column", m.col))  # type: ignore[arg-type]
        self._redraw(rect)

    def set_focus(self, row: int | None, col: int | None, rect: QRectF | None) -> None:
        """Point at one cell (both given), one row or one column; ``None, None`` hides it."""
        self._focus_at = None if row is None and col is None else (row, col)
        self._redraw(rect)

    def clear(self) -> None:
        self._spots, self._line_list, self._focus_at = [], [], None
        self._redraw(None)

    def _redraw(self, rect: QRectF | None) -> None:
        box = None if rect is None else rect.getRect()
        spots, lines = tuple(self._spots), (tuple(self._line_list), box if self._line_list else None)
        focus = (self._focus_at, box if self._focus_at is not None else None)
        old_spots, old_lines, old_focus = self._drawn
        self._drawn = (spots, lines, focus)
        if spots != old_spots:
            self._points.setData([self._spot(k, r, c) for k, r, c in spots])
            self._points.setVisible(bool(spots))
        if lines != old_lines:
            if self._line_list and rect is not None:
                x, y = self._line_coords(self._line_list, rect)
                for item in (self._under, self._lines):
                    item.setData(x, y)
            for item in (self._under, self._lines):
                item.setVisible(bool(self._line_list) and rect is not None)
        if focus != old_focus:
            self._draw_focus(rect)

    # ----- for tests and tooltips ---------------------------------------------------------------
    def spots(self) -> list[tuple[str, int, int]]:
        """(kind, row, col) of every symbol drawn."""
        return list(self._spots)

    def lines(self) -> list[tuple[str, int]]:
        """("row", r) or ("column", c) of every dead line drawn."""
        return list(self._line_list)

    def focus(self) -> tuple[int | None, int | None] | None:
        return self._focus_at

    # ----- internals ----------------------------------------------------------------------------
    @staticmethod
    def _spot(kind: str, row: int, col: int) -> dict:
        symbol, size, fill, outline = MARK_STYLES[kind]
        width = 2.5 if fill is None else 1.0
        return {"pos": (col + 0.5, row + 0.5), "symbol": symbol, "size": size,
                "brush": pg.mkBrush(fill) if fill else pg.mkBrush(None), "pen": pg.mkPen(outline, width=width)}

    @staticmethod
    def _line_coords(lines: Sequence[tuple[str, int]], rect: QRectF) -> tuple[np.ndarray, np.ndarray]:
        x, y = [], []
        for axis, i in lines:
            if axis == "row":
                x += [rect.left(), rect.right()]
                y += [i + 0.5, i + 0.5]
            else:
                x += [i + 0.5, i + 0.5]
                y += [rect.top(), rect.bottom()]
        return np.asarray(x, float), np.asarray(y, float)

    def _draw_focus(self, rect: QRectF | None) -> None:
        at = self._focus_at
        cell = at is not None and at[0] is not None and at[1] is not None
        if cell:
            assert at is not None
            pos = [(at[1] + 0.5, at[0] + 0.5)]
            self._focus_under.setData(pos=pos, symbol="o", size=30, brush=pg.mkBrush(None), pen=pg.mkPen("#000000", width=5))
            self._focus.setData(pos=pos, symbol="o", size=30, brush=pg.mkBrush(None), pen=pg.mkPen(FOCUS_COLOUR, width=2.5))
        for item in (self._focus_under, self._focus):
            item.setVisible(cell)
        line = at is not None and not cell and rect is not None
        if line:
            assert at is not None and rect is not None
            lines = [("row", at[0])] if at[0] is not None else [("column", at[1])]
            x, y = self._line_coords(lines, rect)  # type: ignore[arg-type]
            for item in (self._focus_line_under, self._focus_line):
                item.setData(x, y)
        for item in (self._focus_line_under, self._focus_line):
            item.setVisible(bool(line))
