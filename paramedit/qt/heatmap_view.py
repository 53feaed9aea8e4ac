"""A heatmap of one 2-D block of a tensor, with a colour bar, a value histogram and hover/click.

Display only: the caller hands over a CPU tensor or array (already sliced to 2-D, and for a big
tensor already a strided sample of it, see ``stride``) and this view turns it into float32 for
pyqtgraph.  Scene (view-box) coordinates are *tensor indices*: the image rectangle is placed at
``(col_offset, row_offset)`` and scaled by the sampling stride times the block-reduction factor,
so axes, hover, clicks and the selection outline all speak the tensor's own row/column numbers.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QPointF, QRectF, Qt, Signal
from PySide6.QtGui import QColor, QImage, QPen, QResizeEvent
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QGraphicsRectItem,
    QHBoxLayout,
    QLabel,
    QSizePolicy,
    QStackedLayout,
    QVBoxLayout,
    QWidget,
)
from superqt import QElidingLabel

from paramedit.qt.heatmap_data import (
    DIVERGING,
    MAX_DISPLAY,
    MAX_SAMPLE,
    SEQUENTIAL,
    ValueSummary,
    bin_colours,
    block_extreme,
    compute_levels,
    finite_display,
    format_value,
    histogram,
    histogram_image,
    nice_rounding,
    stats_text,
    summarize,
    to_display_array,
)

__all__ = ["DIVERGING", "MAX_DISPLAY", "SEQUENTIAL", "HeatmapView", "block_extreme"]

_CMAPS = {DIVERGING: "CET-D1", SEQUENTIAL: "viridis"}
#: Fewest samples per axis asked for, however small the plot: zooming in should still show detail.
_MIN_SAMPLE = 256
_EMPTY_SUMMARY = ValueSummary(np.empty(0, np.float32), None, 0, 0)


class _IndexAxisItem(pg.AxisItem):
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


class _ImageItem(pg.ImageItem):
    """ImageItem that reports hover and left clicks in its own (display pixel) coordinates."""

    sigHovered = Signal(object)  # QPointF in pixel coordinates, or None on exit
    sigClicked = Signal(object)  # QPointF in pixel coordinates

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

    def mouseClickEvent(self, ev) -> None:
        if ev.button() == Qt.MouseButton.LeftButton:
            ev.accept()
            self.sigClicked.emit(QPointF(ev.pos()))
        else:
            super().mouseClickEvent(ev)


class HeatmapView(QWidget):
    """Heatmap of a 2-D block with colour bar, histogram, hover readout and selection outline.

    ``cellClicked(row, col)`` carries tensor indices (offsets, sampling and downsampling undone).
    ``resampleWanted`` says the plot grew or shrank enough that a sampled block should be
    fetched again at the new :meth:`sampling_limits`, or that "every row" was switched.
    """

    cellClicked = Signal(int, int)
    resampleWanted = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("heatmap")
        self._raw: np.ndarray | None = None  # the block as handed over, native dtype where possible
        self._summary = _EMPTY_SUMMARY
        self._display: np.ndarray | None = None
        self._factor = (1, 1)  # block reduction of _raw into _display
        self._stride = (1, 1)  # tensor rows/columns between two rows/columns of _raw
        self._full_shape = (0, 0)  # rows x columns of the tensor block that _raw samples
        self._offset = (0, 0)
        self._sampled_at: tuple[int, int] | None = None  # sampling_limits() when a sample was shown
        self._levels = (-1.0, 1.0)
        self._bar_state: tuple[str, float, float] | None = None  # what the colour bar shows
        self._selection: tuple[tuple[int, int], tuple[int, int]] | None = None
        self._build()
        self.clear()

    # ----- construction ---------------------------------------------------------------------
    def _build(self) -> None:
        pal = self.palette()
        bg, fg = pal.color(pal.ColorRole.Window), pal.color(pal.ColorRole.WindowText)
        muted = f"color: {pal.color(pal.ColorRole.PlaceholderText).name()};"

        self._mode_label = QLabel("values", objectName="heatmapModeLabel", styleSheet="font-weight: bold;")
        self._title_label = QElidingLabel("", objectName="heatmapTitle")
        self._mode_combo = QComboBox(objectName="heatmapColourMode")
        self._mode_combo.addItems([DIVERGING, SEQUENTIAL])
        self._mode_combo.setToolTip("Diverging: white is 0, levels ±m. Sequential: min..max.")
        self._clip_check = QCheckBox("clip 99.5%", objectName="heatmapClip", checked=True)
        self._clip_check.setToolTip("Levels at the 99.5th percentile of |values| (off: the extremes)")
        self._all_rows_check = QCheckBox("every row", objectName="heatmapEveryRow", checked=False)
        self._all_rows_check.setToolTip(
            "Off: a big tensor is drawn from an even sample of its rows and columns (fast, but a lone "
            "outlier between samples is not drawn).\nOn: every value is read and each pixel shows the "
            "largest |v| of its block, so no outlier or NaN is hidden (reads the whole slice).")
        # The title on a line of its own: a slice such as "encoder.0.weight[3, :, 1, :]" must be
        # readable whole, and the colour controls would squeeze it down to "encoder.0.we…".
        title_row = QHBoxLayout()
        title_row.setSpacing(8)
        title_row.addWidget(self._mode_label)
        title_row.addWidget(self._title_label, 1)
        controls = QHBoxLayout()
        controls.setSpacing(8)
        controls.addStretch(1)
        controls.addWidget(self._mode_combo)
        controls.addWidget(self._clip_check)
        controls.addWidget(self._all_rows_check)
        top = QVBoxLayout()
        top.setContentsMargins(4, 2, 4, 0)
        top.setSpacing(2)
        top.addLayout(title_row)
        top.addLayout(controls)

        self._graphics = pg.GraphicsLayoutWidget()
        self._graphics.setObjectName("heatmapGraphics")
        self._graphics.setBackground(bg)
        self._graphics.ci.layout.setContentsMargins(2, 2, 2, 2)
        self._graphics.ci.layout.setSpacing(2)
        axes = {"left": _IndexAxisItem("left"), "top": _IndexAxisItem("top")}
        self._plot: pg.PlotItem = self._graphics.addPlot(row=0, col=0, axisItems=axes)
        self._plot.hideAxis("bottom")
        self._plot.setLabels(left="row", top="column")
        self._plot.invertY(True)  # row 0 at the top, like the table
        self._plot.setMenuEnabled(False)
        self._plot.hideButtons()
        self._plot.getViewBox().setDefaultPadding(0.0)
        self._plot.getViewBox().setBackgroundColor(QColor(bg).darker(115))

        self._image = _ImageItem(axisOrder="row-major", autoDownsample=True)
        self._nan_overlay = pg.ImageItem(axisOrder="row-major")
        self._nan_overlay.setZValue(1)
        for item in (self._image, self._nan_overlay):
            self._plot.addItem(item)
        self._image.sigHovered.connect(self._on_hover)
        self._image.sigClicked.connect(self._on_click)

        # A black outline under a dashed yellow one stays visible on every colour of both maps.
        self._sel_items: list[QGraphicsRectItem] = []
        for z, (colour, width, style) in enumerate(
            (("#000000", 3.5, Qt.PenStyle.SolidLine), ("#ffd400", 1.8, Qt.PenStyle.DashLine))
        ):
            pen = QPen(QColor(colour), width, style)
            pen.setCosmetic(True)
            item = QGraphicsRectItem()
            item.setPen(pen)
            item.setZValue(10 + z)
            item.setVisible(False)
            self._plot.addItem(item, ignoreBounds=True)
            self._sel_items.append(item)

        self._cbar = pg.ColorBarItem(
            colorMap=_CMAPS[DIVERGING], interactive=False, colorMapMenu=False, width=14, rounding=1e-3
        )
        self._cbar.setImageItem(self._image, insert_in=self._plot)

        self._hist: pg.PlotItem = self._graphics.addPlot(row=1, col=0)
        self._hist.setMaximumHeight(78)
        self._hist.setMouseEnabled(x=False, y=False)
        self._hist.setMenuEnabled(False)
        self._hist.hideButtons()
        self._hist.hideAxis("left")
        self._hist.setToolTip("Histogram over the colour levels; the end bins include clipped values")
        # Bars as one small RGBA image (a bin per column, coloured like the map): drawing it
        # costs a fraction of a filled pyqtgraph curve, which rebuilds a path on every update.
        self._hist_image = pg.ImageItem(axisOrder="row-major")
        self._hist.addItem(self._hist_image)
        self._hist.setYRange(0, 1, padding=0.05)
        for item in (self._plot, self._hist, self._cbar):
            for name in ("left", "top", "right", "bottom"):
                axis = item.getAxis(name)
                axis.setPen(fg)
                axis.setTextPen(fg)
                axis.enableAutoSIPrefix(False)  # "(x0.001)" labels are easy to miss

        self._hover_label = QLabel(" ", objectName="heatmapHover")
        self._stats_label = QElidingLabel("", objectName="heatmapStats", styleSheet=muted)
        self._stats_label.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        self._stats_label.setWordWrap(True)  # two lines rather than cut, where there is room
        bottom = QHBoxLayout()
        bottom.setContentsMargins(4, 0, 4, 0)
        bottom.addWidget(self._hover_label)
        bottom.addWidget(self._stats_label, 1)

        plot_page = QWidget()
        page = QVBoxLayout(plot_page)
        page.setContentsMargins(0, 0, 0, 0)
        page.setSpacing(2)
        page.addLayout(top)
        page.addWidget(self._graphics, 1)
        page.addLayout(bottom)
        self._empty_label = QLabel("select a tensor", objectName="heatmapEmpty")
        self._empty_label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self._empty_label.setStyleSheet(muted + " font-size: 14pt;")
        # A long message wraps inside the pane instead of widening it (and squeezing the table).
        self._empty_label.setWordWrap(True)
        self._empty_label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self._empty_label.setMargin(16)
        self._stack = QStackedLayout(self)
        self._stack.addWidget(self._empty_label)
        self._stack.addWidget(plot_page)

        # Bound methods, not lambdas: a lambda holding ``self`` in a child's connection keeps
        # this widget alive until PySide tears Qt down at interpreter exit, and deleting a
        # pyqtgraph view that late crashes (its items call back into a finalizing Python).
        self._mode_combo.currentTextChanged.connect(self._refresh_levels)
        self._clip_check.toggled.connect(self._refresh_levels)
        self._all_rows_check.toggled.connect(self._every_row_toggled)

    # ----- public API -----------------------------------------------------------------------
    def set_values(
        self,
        values: Any,
        *,
        title: str = "",
        row_offset: int = 0,
        col_offset: int = 0,
        stride: tuple[int, int] = (1, 1),
        full_shape: tuple[int, int] | None = None,
    ) -> None:
        """Show ``values`` (0-D, 1-D as one row, or 2-D; tensor or array of any dtype).

        ``row_offset``/``col_offset`` are the tensor indices of the block's first row/column.
        ``stride=(row_step, col_step)`` says ``values`` samples every ``row_step``-th row and
        ``col_step``-th column of a block of ``full_shape``: row ``i`` of ``values`` is tensor
        row ``row_offset + i * row_step``.  Arrays still larger than ``MAX_DISPLAY`` per axis are
        block-reduced here, keeping each block's value of largest magnitude.
        """
        raw = to_display_array(values)
        with np.errstate(over="ignore"):  # float64 beyond float32 range shows as +/-Inf
            data = raw.astype(np.float32, copy=False)
        self._summary = summarize(data)
        rows, cols = data.shape
        fr, fc = -(-rows // MAX_DISPLAY), -(-cols // MAX_DISPLAY)
        rs, cs = max(1, int(stride[0])), max(1, int(stride[1]))
        self._raw = raw
        self._display = block_extreme(data, fr, fc)
        self._factor, self._stride, self._offset = (fr, fc), (rs, cs), (int(row_offset), int(col_offset))
        self._full_shape = tuple(full_shape) if full_shape is not None else (rows * rs, cols * cs)
        self._sampled_at = self.sampling_limits() if (rs, cs) != (1, 1) else None
        self._title_label.setText(title)
        self._title_label.setToolTip(title)
        self._stack.setCurrentIndex(1)
        self._hover_label.setText(" ")
        self._refresh_levels()
        rect = self._image_rect()
        self._plot.getViewBox().setRange(xRange=(rect.left(), rect.right()), yRange=(rect.top(), rect.bottom()),
                                         padding=0)
        self._update_selection_items()

    def sampling_limits(self) -> tuple[int, int]:
        """Most (rows, columns) worth fetching for this plot: about its size in device pixels.

        A caller with a bigger block hands over a strided sample of it this size (see
        ``set_values(stride=...)``); more rows than pixels would only be averaged away.
        """
        ratio = self.devicePixelRatioF()
        size = self._plot.getViewBox().size()  # the image's area, in (logical) pixels
        clamp = lambda n: min(MAX_SAMPLE, max(_MIN_SAMPLE, math.ceil(n * ratio)))  # noqa: E731
        return clamp(size.height()), clamp(size.width())

    def set_selection(self, rows: tuple[int, int] | None, cols: tuple[int, int] | None) -> None:
        """Outline tensor rows ``[r0, r1)`` x columns ``[c0, c1)``; ``None`` for either clears it."""
        self._selection = None if rows is None or cols is None else (tuple(rows), tuple(cols))
        self._update_selection_items()

    def set_mode_label(self, text: str) -> None:
        """Caption above the plot saying what is shown, e.g. ``"values"`` or ``"gradient"``."""
        self._mode_label.setText(text)

    def clear(self, message: str = "select a tensor") -> None:
        """Drop the data and show ``message`` instead of the plot."""
        self._empty_label.setText(message)
        self._raw, self._display = None, None
        self._summary, self._sampled_at = _EMPTY_SUMMARY, None
        self._image.clear()
        self._nan_overlay.clear()
        self._hist_image.clear()
        self._selection = None
        self._update_selection_items()
        self._stats_label.setText("")
        self._hover_label.setText(" ")
        self._stack.setCurrentIndex(0)

    def set_colour_mode(self, mode: str) -> None:
        """``DIVERGING`` (levels symmetric about 0) or ``SEQUENTIAL`` (min..max)."""
        self._mode_combo.setCurrentText(mode)

    def set_clip(self, clip: bool) -> None:
        """Clip levels at the 99.5th percentile (True) or use the extreme values (False)."""
        self._clip_check.setChecked(clip)

    def every_row(self) -> bool:
        """Whether the caller should hand over every value of the block (no strided sample)."""
        return self._all_rows_check.isChecked()

    def set_every_row(self, on: bool) -> None:
        """Ask for every value (True) or a sample about the plot's size (False); see :meth:`every_row`."""
        self._all_rows_check.setChecked(on)

    def _every_row_toggled(self, _on: bool) -> None:
        self.resampleWanted.emit()  # the caller fetches the block again, whole or sampled

    def levels(self) -> tuple[float, float]:
        """The current colour levels ``(low, high)``."""
        return self._levels

    def downsample_factor(self) -> tuple[int, int]:
        """Rows/columns of the handed-over block per displayed pixel (1, 1 when not reduced)."""
        return self._factor

    def stride(self) -> tuple[int, int]:
        """Tensor rows/columns between two rows/columns of the handed-over block (1, 1: all)."""
        return self._stride

    def image_item(self) -> pg.ImageItem:
        """The pyqtgraph ImageItem holding the displayed (possibly downsampled) data."""
        return self._image

    def graphics_view(self) -> pg.GraphicsLayoutWidget:
        """The pyqtgraph widget, e.g. to map scene positions to its viewport."""
        return self._graphics

    def hover_text(self) -> str:
        """The text of the hover readout under the plot."""
        return self._hover_label.text()

    def cell_at(self, pixel: QPointF) -> tuple[int, int] | None:
        """Tensor ``(row, col)`` under ``pixel`` (ImageItem coordinates), or None outside the data.

        The block row is ``i = floor(y * fr)`` (the true row under the cursor even inside a
        block-reduced pixel), and the tensor row is ``row_offset + i * row_step``; likewise columns.
        """
        ij = self._block_index_at(pixel)
        if ij is None:
            return None
        return self._offset[0] + ij[0] * self._stride[0], self._offset[1] + ij[1] * self._stride[1]

    def _block_index_at(self, pixel: QPointF) -> tuple[int, int] | None:
        if self._raw is None:
            return None
        i = math.floor(pixel.y() * self._factor[0])
        j = math.floor(pixel.x() * self._factor[1])
        if not (0 <= i < self._raw.shape[0] and 0 <= j < self._raw.shape[1]):
            return None
        return i, j

    # ----- internals ------------------------------------------------------------------------
    def _refresh_levels(self, *_args: object) -> None:
        if self._display is None:
            return
        with np.errstate(over="ignore", invalid="ignore"):  # spans near the float32 limit
            self._apply_levels()

    def _apply_levels(self) -> None:
        assert self._display is not None
        mode = self._mode_combo.currentText()
        summary = self._summary
        lo, hi = compute_levels(summary.finite_sample, mode, self._clip_check.isChecked(), extremes=summary.extremes)
        self._levels = (lo, hi)
        shown, overlay = finite_display(self._display, summary, lo, hi)
        rect = self._image_rect()
        cmap = pg.colormap.get(_CMAPS[mode])
        self._image.setImage(shown, autoLevels=False, levels=(lo, hi), rect=rect)
        if self._bar_state != (mode, lo, hi):  # else its axis would be laid out again for nothing
            self._bar_state = (mode, lo, hi)
            self._cbar.rounding = nice_rounding(lo, hi)
            self._cbar.setColorMap(cmap)
            self._cbar.setLevels((lo, hi))
        self._nan_overlay.setVisible(overlay is not None)
        if overlay is not None:
            self._nan_overlay.setImage(overlay, autoLevels=False, levels=(0, 255), rect=rect)
        self._update_histogram(lo, hi, cmap)
        text, tooltip = stats_text(summary, self._full_shape, self._factor, self._stride)
        self._stats_label.setText(text)
        self._stats_label.setToolTip(tooltip)

    def _update_histogram(self, lo: float, hi: float, cmap: pg.ColorMap) -> None:
        bars = histogram_image(histogram(self._summary.finite_sample, lo, hi), bin_colours(cmap))
        self._hist_image.setImage(bars, levels=(0, 255), rect=QRectF(lo, 0.0, hi - lo, 1.0))
        self._hist.setXRange(lo, hi, padding=0.02)

    def _image_rect(self) -> QRectF:
        """Where the displayed image lies in tensor-index coordinates."""
        assert self._display is not None
        rows, cols = self._display.shape
        (fr, fc), (rs, cs) = self._factor, self._stride
        return QRectF(self._offset[1], self._offset[0], cols * fc * cs, rows * fr * rs)

    def _update_selection_items(self) -> None:
        sel = self._selection if self._raw is not None else None
        for item in self._sel_items:
            if sel is not None:
                (r0, r1), (c0, c1) = sel
                item.setRect(QRectF(c0, r0, c1 - c0, r1 - r0))
            item.setVisible(sel is not None)

    def selection_rect(self) -> QRectF | None:
        """The outline's rectangle in view (tensor index) coordinates, or None when hidden."""
        item = self._sel_items[0]
        return item.rect() if item.isVisible() else None

    def _on_hover(self, pixel: QPointF | None) -> None:
        ij = None if pixel is None else self._block_index_at(pixel)
        if ij is None or self._raw is None:
            self._hover_label.setText(" ")
            return
        r, c = self._offset[0] + ij[0] * self._stride[0], self._offset[1] + ij[1] * self._stride[1]
        self._hover_label.setText(f"row {r}, col {c}: {format_value(self._raw[ij])}")

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        if self._sampled_at is None:
            return
        # A sample fetched for a much smaller (or bigger) plot looks blocky (or costs too much).
        now = self.sampling_limits()
        if any(abs(a - b) > 0.25 * b for a, b in zip(now, self._sampled_at, strict=True)):
            self._sampled_at = now
            self.resampleWanted.emit()

    def _on_click(self, pixel: QPointF) -> None:
        cell = self.cell_at(pixel)
        if cell is not None:
            self.cellClicked.emit(*cell)
