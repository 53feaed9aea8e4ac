"""A heatmap of one 2-D block of a tensor, with a colour bar, a value histogram and hover/click.

Display only: the caller hands over a CPU tensor or array (already sliced to 2-D) and this view
turns it into float32 for pyqtgraph.  Scene (view-box) coordinates are *tensor indices*: the
image rectangle is placed at ``(col_offset, row_offset)`` and scaled by the downsampling factor,
so axes, hover, clicks and the selection outline all speak the tensor's own row/column numbers.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pyqtgraph as pg
import torch
from PySide6.QtCore import QPointF, QRectF, Qt, Signal
from PySide6.QtGui import QColor, QPen
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QGraphicsRectItem,
    QHBoxLayout,
    QLabel,
    QStackedLayout,
    QVBoxLayout,
    QWidget,
)
from superqt import QElidingLabel

__all__ = ["DIVERGING", "MAX_DISPLAY", "SEQUENTIAL", "HeatmapView"]

#: Largest number of displayed pixels along one axis; bigger inputs are block-reduced first.
MAX_DISPLAY = 2048
#: Levels and the histogram use at most this many finite values (an even stride through them).
_MAX_STAT_SAMPLES = 2_000_000
DIVERGING = "diverging (centred on 0)"
SEQUENTIAL = "sequential"
_CMAPS = {DIVERGING: "CET-D1", SEQUENTIAL: "viridis"}
_NAN_RGBA = (255, 0, 255, 255)  # magenta: in neither colour map
_HIST_BINS = 64


def to_display_array(values: Any) -> np.ndarray:
    """Return ``values`` (tensor or array, any dtype, 0-D/1-D/2-D) as a 2-D NumPy array.

    The dtype is kept where NumPy has it (so hover shows exact integers); bfloat16 and float8
    become float32, complex becomes its magnitude.
    """
    if isinstance(values, torch.Tensor):
        t = values.detach().cpu().resolve_conj().resolve_neg()
        if t.is_complex():
            t = t.abs()
        if t.dtype == torch.bfloat16 or "float8" in str(t.dtype):
            t = t.float()
        arr = t.numpy()
    else:
        arr = np.asarray(values)
        arr = np.abs(arr) if np.iscomplexobj(arr) else arr
    if arr.ndim > 2:
        raise ValueError(f"HeatmapView shows 2-D data; got shape {tuple(arr.shape)}")
    return arr.reshape(1, -1) if arr.ndim < 2 else arr


def _reduce_rows(a: np.ndarray, f: int, func) -> np.ndarray:
    if f == 1:
        return a
    full = a.shape[0] // f * f
    parts = [func(a[:full].reshape(full // f, f, a.shape[1]), axis=1)] if full else []
    if full < a.shape[0]:
        parts.append(func(a[full:], axis=0, keepdims=True))
    return np.concatenate(parts, axis=0)


def _reduce_cols(a: np.ndarray, f: int, ufunc) -> np.ndarray:
    if f > 8:  # long runs: reduce the inner axis of a reshaped view
        full = a.shape[1] // f * f
        parts = [ufunc.reduce(a[:, :full].reshape(a.shape[0], full // f, f), axis=2)] if full else []
        if full < a.shape[1]:
            parts.append(ufunc.reduce(a[:, full:], axis=1, keepdims=True))
        return np.concatenate(parts, axis=1)
    out = a[:, 0::f].copy()  # short runs: f strided passes beat reducing a tiny inner axis
    for k in range(1, f):
        part = a[:, k::f]
        ufunc(out[:, : part.shape[1]], part, out=out[:, : part.shape[1]])
    return out


def block_extreme(data: np.ndarray, fr: int, fc: int) -> np.ndarray:
    """Reduce float ``data`` by ``fr x fc`` blocks to each block's value of largest magnitude.

    Keeps the sign, so a lone outlier in a huge matrix stays visible, and never hides NaN/Inf:
    a block holding a NaN shows NaN, else one holding +/-Inf shows it.  The last block along
    each axis may be partial.
    """
    hi, lo = _reduce_rows(data, fr, np.max), _reduce_rows(data, fr, np.min)
    if fc > 1:
        hi, lo = _reduce_cols(hi, fc, np.maximum), _reduce_cols(lo, fc, np.minimum)
    return np.where(hi >= -lo, hi, lo)


def compute_levels(
    finite: np.ndarray,
    mode: str,
    clip: bool,
    percentile: float = 99.5,
    extremes: tuple[float, float] | None = None,
) -> tuple[float, float]:
    """Colour levels for finite values: symmetric ``(-m, m)`` or ``(lo, hi)``, never empty.

    ``finite`` may be a sample for the percentiles; ``extremes`` is then the exact (min, max).
    """
    if finite.size == 0:
        return (-1.0, 1.0) if mode == DIVERGING else (0.0, 1.0)
    lo, hi = extremes if extremes is not None else (float(finite.min()), float(finite.max()))
    if mode == DIVERGING:
        top = max(abs(lo), abs(hi))
        m = float(np.percentile(np.abs(finite), percentile)) if clip else top
        if not m > 0:
            m = top if top > 0 else 1.0
        return (-m, m)
    if clip:
        tail = (100.0 - percentile) / 2.0
        plo, phi = (float(v) for v in np.percentile(finite, [tail, 100.0 - tail]))
        if phi > plo:
            lo, hi = plo, phi
    if not hi > lo:  # constant data: centre its colour
        half = abs(lo) * 0.5 if lo != 0 else 1.0
        lo, hi = lo - half, hi + half
    return (lo, hi)


def nice_rounding(lo: float, hi: float) -> float:
    """A power of ten about 1/1000 of the level span, for the colour bar's ``rounding``."""
    span = hi - lo
    if not (span > 0 and math.isfinite(span)):
        return 1e-6
    return 10.0 ** (math.floor(math.log10(span)) - 3)


def format_value(value: Any) -> str:
    """Short readable text for one element: exact ints/bools, 6 significant digits for floats."""
    if isinstance(value, (bool, np.bool_)):
        return str(bool(value))
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    return f"{float(value):.6g}"


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

    def mouseClickEvent(self, ev) -> None:
        if ev.button() == Qt.MouseButton.LeftButton:
            ev.accept()
            self.sigClicked.emit(QPointF(ev.pos()))
        else:
            super().mouseClickEvent(ev)


class HeatmapView(QWidget):
    """Heatmap of a 2-D block with colour bar, histogram, hover readout and selection outline.

    ``cellClicked(row, col)`` carries tensor indices (offsets and downsampling undone).
    """

    cellClicked = Signal(int, int)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("heatmap")
        self._raw: np.ndarray | None = None  # undownsampled block, native dtype where possible
        self._finite: np.ndarray = np.empty(0, np.float32)  # sample of the finite values
        self._extremes: tuple[float, float] | None = None  # exact finite (min, max)
        self._n_nan = self._n_inf = 0
        self._display: np.ndarray | None = None
        self._factor = (1, 1)
        self._offset = (0, 0)
        self._levels = (-1.0, 1.0)
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
        top = QHBoxLayout()
        top.setContentsMargins(4, 2, 4, 0)
        top.setSpacing(8)
        for widget, stretch in ((self._mode_label, 0), (self._title_label, 1), (self._mode_combo, 0)):
            top.addWidget(widget, stretch)
        top.addWidget(self._clip_check)

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
        self._hist_curve = pg.PlotDataItem(stepMode="center", fillLevel=0, pen=pg.mkPen(fg, width=1))
        self._hist.addItem(self._hist_curve)
        for item in (self._plot, self._hist, self._cbar):
            for name in ("left", "top", "right", "bottom"):
                axis = item.getAxis(name)
                axis.setPen(fg)
                axis.setTextPen(fg)
                axis.enableAutoSIPrefix(False)  # "(x0.001)" labels are easy to miss

        self._hover_label = QLabel(" ", objectName="heatmapHover")
        self._stats_label = QElidingLabel("", objectName="heatmapStats", styleSheet=muted)
        self._stats_label.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
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
        self._stack = QStackedLayout(self)
        self._stack.addWidget(self._empty_label)
        self._stack.addWidget(plot_page)

        self._mode_combo.currentTextChanged.connect(lambda _t: self._refresh_levels())
        self._clip_check.toggled.connect(lambda _b: self._refresh_levels())

    # ----- public API -----------------------------------------------------------------------
    def set_values(self, values: Any, *, title: str = "", row_offset: int = 0, col_offset: int = 0) -> None:
        """Show ``values`` (0-D, 1-D as one row, or 2-D; tensor or array of any dtype).

        ``row_offset``/``col_offset`` are the tensor indices of the block's first row/column.
        """
        raw = to_display_array(values)
        with np.errstate(over="ignore"):  # float64 beyond float32 range shows as +/-Inf
            data = raw.astype(np.float32, copy=False)
        finite_mask = np.isfinite(data)
        n_bad = data.size - int(np.count_nonzero(finite_mask))
        finite = data[finite_mask] if n_bad else data.reshape(-1)
        self._n_nan = int(np.isnan(data).sum()) if n_bad else 0
        self._n_inf = n_bad - self._n_nan
        self._extremes = (float(finite.min()), float(finite.max())) if finite.size else None
        # Percentiles and the histogram use an even sample: exact enough, bounded cost.
        self._finite = finite[:: -(-finite.size // _MAX_STAT_SAMPLES)] if finite.size else finite
        rows, cols = data.shape
        fr, fc = -(-rows // MAX_DISPLAY), -(-cols // MAX_DISPLAY)
        self._raw = raw
        self._display = block_extreme(data, fr, fc)
        self._factor, self._offset = (fr, fc), (int(row_offset), int(col_offset))
        self._title_label.setText(title)
        self._title_label.setToolTip(title)
        self._stack.setCurrentIndex(1)
        self._hover_label.setText(" ")
        self._refresh_levels()
        disp_r, disp_c = self._display.shape
        self._plot.getViewBox().setRange(
            xRange=(col_offset, col_offset + disp_c * fc),
            yRange=(row_offset, row_offset + disp_r * fr),
            padding=0,
        )
        self._update_selection_items()

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
        self._finite, self._extremes = np.empty(0, np.float32), None
        self._image.clear()
        self._nan_overlay.clear()
        self._hist_curve.setData([], [])
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

    def levels(self) -> tuple[float, float]:
        """The current colour levels ``(low, high)``."""
        return self._levels

    def downsample_factor(self) -> tuple[int, int]:
        """Tensor rows/columns per displayed pixel (1, 1 when not downsampled)."""
        return self._factor

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

        Row = ``row_offset + floor(y * fr)`` (likewise columns), i.e. the true row under the
        cursor even inside a downsampled pixel.
        """
        if self._raw is None:
            return None
        r = math.floor(pixel.y() * self._factor[0])
        c = math.floor(pixel.x() * self._factor[1])
        if not (0 <= r < self._raw.shape[0] and 0 <= c < self._raw.shape[1]):
            return None
        return r + self._offset[0], c + self._offset[1]

    # ----- internals ------------------------------------------------------------------------
    def _refresh_levels(self) -> None:
        if self._display is None:
            return
        with np.errstate(over="ignore", invalid="ignore"):  # spans near the float32 limit
            self._apply_levels()

    def _apply_levels(self) -> None:
        assert self._display is not None
        mode = self._mode_combo.currentText()
        lo, hi = compute_levels(self._finite, mode, self._clip_check.isChecked(), extremes=self._extremes)
        self._levels = (lo, hi)
        disp = self._display
        nan = np.isnan(disp)
        fmin, fmax = self._extremes or (lo, hi)
        # pyqtgraph gets only finite data: NaN goes under the overlay, Inf to the ends.
        shown = np.nan_to_num(disp, nan=lo, posinf=max(hi, fmax), neginf=min(lo, fmin))
        rows, cols = disp.shape
        rect = QRectF(self._offset[1], self._offset[0], cols * self._factor[1], rows * self._factor[0])
        cmap = pg.colormap.get(_CMAPS[mode])
        self._cbar.rounding = nice_rounding(lo, hi)
        self._image.setImage(shown, autoLevels=False, levels=(lo, hi), rect=rect)
        self._cbar.setColorMap(cmap)
        self._cbar.setLevels((lo, hi))
        self._nan_overlay.setVisible(bool(nan.any()))
        if nan.any():
            overlay = np.zeros((rows, cols, 4), np.uint8)
            overlay[nan] = _NAN_RGBA
            self._nan_overlay.setImage(overlay, autoLevels=False, levels=(0, 255), rect=rect)
        self._update_histogram(lo, hi, cmap)
        self._update_stats()

    def _update_histogram(self, lo: float, hi: float, cmap: pg.ColorMap) -> None:
        counts, edges = np.histogram(np.clip(self._finite, lo, hi), bins=_HIST_BINS, range=(lo, hi))
        self._hist_curve.setData(edges, counts.astype(np.float64))
        self._hist_curve.setFillBrush(cmap.getBrush(span=(lo, hi), orientation="horizontal"))
        self._hist.setXRange(lo, hi, padding=0.02)
        self._hist.setYRange(0, max(1, int(counts.max())), padding=0.05)

    def _update_stats(self) -> None:
        assert self._raw is not None
        raw, (fr, fc) = self._raw, self._factor
        parts = [f"{raw.shape[0]}×{raw.shape[1]}"] + ([f"shown 1:{fr}×{fc}"] if (fr, fc) != (1, 1) else [])
        if self._extremes is not None:
            parts += [f"min {self._extremes[0]:.4g}", f"max {self._extremes[1]:.4g}"]
        parts += [f"{self._n_nan} NaN (magenta)"] * bool(self._n_nan)
        parts += [f"{self._n_inf} ±Inf"] * bool(self._n_inf)
        text = " · ".join(parts)
        self._stats_label.setText(text)
        ds_note = "\neach pixel shows the value of largest |v| in its block"
        self._stats_label.setToolTip(text + (ds_note if self._factor != (1, 1) else ""))

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
        cell = None if pixel is None else self.cell_at(pixel)
        if cell is None or self._raw is None:
            self._hover_label.setText(" ")
            return
        r, c = cell
        value = self._raw[r - self._offset[0], c - self._offset[1]]
        self._hover_label.setText(f"row {r}, col {c}: {format_value(value)}")

    def _on_click(self, pixel: QPointF) -> None:
        cell = self.cell_at(pixel)
        if cell is not None:
            self.cellClicked.emit(*cell)
