"""A heatmap of one 2-D block of a tensor, with a colour bar, a value histogram and hover/click.

Display only: the caller hands over a CPU tensor or array (already sliced to 2-D, and for a big
tensor already a strided sample of it, see ``stride``) and this view turns it into float32 for
pyqtgraph.  Scene (view-box) coordinates are *tensor indices*: the image rectangle is placed at
``(col_offset, row_offset)`` and scaled by the sampling stride times the block-reduction factor,
so axes, hover, clicks and the selection outline all speak the tensor's own row/column numbers.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QEvent, QPointF, QRectF, Qt, Signal
from PySide6.QtGui import QResizeEvent
from PySide6.QtWidgets import (
    QLabel,
    QSizePolicy,
    QStackedLayout,
    QVBoxLayout,
    QWidget,
)

from paramedit.qt.finding_locations import SliceMark
from paramedit.qt.heatmap_controls_widget import HeatmapControlsWidget
from paramedit.qt.heatmap_data import (
    DIVERGING,
    MAX_DISPLAY,
    MAX_SAMPLE,
    SEQUENTIAL,
    ValueSummary,
    compute_levels,
    finite_display,
    format_value,
    nonfinite_positions,
    nonfinite_text,
    stats_text,
    summarize,
    to_display_array,
)
from paramedit.qt.heatmap_footer_widget import HeatmapFooterWidget
from paramedit.qt.heatmap_graphics import HeatmapGraphicsWidget
from paramedit.qt.heatmap_markers import HeatmapMarkers
from paramedit.qt.heatmap_reduce import MAX_ABS, MEAN, MIN_ABS, SAMPLE, block_reduce

__all__ = ["DIVERGING", "MAX_ABS", "MAX_DISPLAY", "MEAN", "MIN_ABS", "SAMPLE", "SEQUENTIAL", "HeatmapView"]

#: Fewest samples per axis asked for, however small the plot: zooming in should still show detail.
_MIN_SAMPLE = 256
_EMPTY_SUMMARY = ValueSummary(np.empty(0, np.float32), None, 0, 0)
#: Most NaN/Inf of the drawn values that get a symbol each (the count is always in the line).
MAX_SHOWN_MARKS = 500


class HeatmapView(QWidget):
    """Heatmap of a 2-D block with colour bar, histogram, hover readout and selection outline.

    ``cellClicked(row, col)`` carries tensor indices (offsets, sampling and downsampling undone).
    ``resampleWanted`` says the plot grew or shrank enough that a sampled block should be
    fetched again at the new :meth:`sampling_limits`, or that the reduction was switched between
    a sample and one that reads every value (:meth:`reads_every_value`).

    The scan's findings in the shown block are drawn as marks over the image whatever is drawn
    (:meth:`set_marks`), and their counts head a line of their own that is never cut.
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
        self._selection: list[tuple[tuple[int, int], tuple[int, int]]] = []
        self._marks: list[SliceMark] = []
        self._shown_marks: list[tuple[str, int, int]] = []  # NaN/Inf among the handed-over values
        self._data: np.ndarray | None = None  # _raw as float32
        self._display_summary = self._level_summary = _EMPTY_SUMMARY
        self._reduced_at: tuple[int, int] | None = None  # sampling_limits() of the last reduction
        self._fixed_levels: tuple[float, float] | None = None  # set_values(levels=...)
        self._scale_with: np.ndarray | None = None  # set_values(scale_with=...)
        self._reduction = SAMPLE
        self._build()
        self.clear()

    # ----- construction ---------------------------------------------------------------------
    def _build(self) -> None:
        pal = self.palette()
        bg, fg = pal.color(pal.ColorRole.Window), pal.color(pal.ColorRole.WindowText)
        muted = f"color: {pal.color(pal.ColorRole.PlaceholderText).name()};"

        self._controls = HeatmapControlsWidget(self)
        self._mode_combo, self._clip_check = self._controls.mode_combo, self._controls.clip_check

        self._graphics = HeatmapGraphicsWidget(bg, fg)
        # Short names for what tests and callers reach into.
        g = self._graphics
        self._plot, self._image, self._nan_overlay, self._cbar = g.plot, g.image, g.nan_overlay, g.cbar
        self._sel_items, self._markers = g.sel_items, g.markers
        g.set_font(self.font())  # explicit, so a zoom changes it (the scene does not follow the widget)
        self._image.sigHovered.connect(self._on_hover)
        self._image.sigClicked.connect(self._on_click)

        self._footer = HeatmapFooterWidget(muted, self)
        self._stats_label = self._footer.stats_label

        plot_page = QWidget()
        page = QVBoxLayout(plot_page)
        page.setContentsMargins(0, 0, 0, 0)
        page.setSpacing(2)
        page.addWidget(self._controls)
        page.addWidget(self._graphics, 1)
        page.addWidget(self._footer)
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
        self._controls.levelsOptionChanged.connect(self._refresh_levels)
        self._controls.reductionChanged.connect(self._reduction_changed)

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
        levels: tuple[float, float] | None = None,
        scale_with: Any | None = None,
    ) -> None:
        """Show ``values`` (0-D, 1-D as one row, or 2-D; tensor or array of any dtype).

        ``row_offset``/``col_offset`` are the tensor indices of the block's first row/column.
        ``stride=(row_step, col_step)`` says ``values`` samples every ``row_step``-th row and
        ``col_step``-th column of a block of ``full_shape``: row ``i`` of ``values`` is tensor
        row ``row_offset + i * row_step``.  With a reduction other than ``sample`` the block is
        reduced here to about the plot's size in pixels, as the reduction says; in ``sample``
        mode an array larger than ``MAX_DISPLAY`` per axis is reduced keeping each block's value
        of largest magnitude.

        ``levels`` fixes the colour levels (one scale for several tensors, e.g. a difference);
        ``scale_with`` is another block whose values join this one's in choosing the levels, so
        two blocks shown in turn (A and B) share one colour scale.
        """
        raw = to_display_array(values)
        with np.errstate(over="ignore"):  # float64 beyond float32 range shows as +/-Inf
            data = raw.astype(np.float32, copy=False)
        self._summary = summarize(data)
        rows, cols = data.shape
        rs, cs = max(1, int(stride[0])), max(1, int(stride[1]))
        self._raw, self._data = raw, data
        self._stride, self._offset = (rs, cs), (int(row_offset), int(col_offset))
        self._full_shape = tuple(full_shape) if full_shape is not None else (rows * rs, cols * cs)
        self._sampled_at = self.sampling_limits() if (rs, cs) != (1, 1) else None
        self._fixed_levels = (float(levels[0]), float(levels[1])) if levels is not None else None
        self._scale_with = None
        if scale_with is not None:
            with np.errstate(over="ignore"):
                self._scale_with = to_display_array(scale_with).astype(np.float32, copy=False)
        self._shown_marks = nonfinite_positions(data, self._summary, self._offset, self._stride, MAX_SHOWN_MARKS)
        self._controls.set_title(title)
        self._stack.setCurrentIndex(1)
        self._footer.set_hover("")
        self._reduce()
        rect = self._image_rect()
        self._plot.getViewBox().setRange(xRange=(rect.left(), rect.right()), yRange=(rect.top(), rect.bottom()),
                                         padding=0)
        self._update_selection_items()

    def set_marks(self, marks: Sequence[SliceMark]) -> None:
        """The scan's findings for the shown block (see :func:`marks_in_slice`): drawn over the
        image, whatever is sampled or reduced, and counted first under it."""
        self._marks = list(marks)
        self._update_marks()

    def set_focus(self, row: int | None, col: int | None) -> None:
        """Point at the cell (both given), row or column a finding is in (``None, None``: no more)."""
        self._markers.set_focus(row, col, self._image_rect() if self._display is not None else None)

    def markers(self) -> HeatmapMarkers:
        """The marks drawn over the image (their positions, for tests and tooltips)."""
        return self._markers

    def findings_text(self) -> str:
        """The line of counts above the stats line (what the scan found, NaN/Inf drawn)."""
        return self._footer.findings_label.text()

    def stats_line(self) -> str:
        return self._stats_label.text()

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
        self.set_selections([] if rows is None or cols is None else [(rows, cols)])

    def set_selections(self, blocks: Sequence[tuple[tuple[int, int], tuple[int, int]]]) -> None:
        """Outline several blocks ``((r0, r1), (c0, c1))`` (several selected regions)."""
        self._selection = [(tuple(r), tuple(c)) for r, c in blocks]  # type: ignore[misc]
        self._update_selection_items()

    def set_mode_label(self, text: str) -> None:
        """Caption above the plot saying what is shown, e.g. ``"values"`` or ``"gradient"``."""
        self._controls.mode_label.setText(text)

    def clear(self, message: str = "select a tensor") -> None:
        """Drop the data and show ``message`` instead of the plot."""
        self._empty_label.setText(message)
        self._raw, self._display = None, None
        self._summary, self._sampled_at = _EMPTY_SUMMARY, None
        self._graphics.clear_all()
        self._selection = []
        self._marks, self._shown_marks, self._data = [], [], None
        self._footer.set_findings("")
        self._footer.set_stats("")
        self._footer.set_hover("")
        self._stack.setCurrentIndex(0)

    def set_colour_mode(self, mode: str) -> None:
        """``DIVERGING`` (levels symmetric about 0) or ``SEQUENTIAL`` (min..max)."""
        self._mode_combo.setCurrentText(mode)

    def set_clip(self, clip: bool) -> None:
        """Clip levels at the 99.5th percentile (True) or use the extreme values (False)."""
        self._clip_check.setChecked(clip)

    def reduction(self) -> str:
        """What a pixel shows: ``sample``, ``mean``, ``max |v|`` or ``min |v|``."""
        return self._reduction

    def set_reduction(self, how: str) -> None:
        """Choose what a pixel shows (as the "pixel" combo does)."""
        self._controls.reduction_combo.setCurrentText(how)

    def reads_every_value(self) -> bool:
        """Whether the caller should hand over every value of the block (not a strided sample)."""
        return self._reduction != SAMPLE

    def _reduction_changed(self, how: str) -> None:
        was_sample, self._reduction = self._reduction == SAMPLE, how
        if self._data is not None:
            self._reduce()  # the values here, reduced the new way, until the caller hands over others
        if was_sample != (how == SAMPLE):
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
        return self._footer.hover_label.text()

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
    def _reduce(self) -> None:
        """Reduce the handed-over block for display, as the reduction says, and draw it."""
        assert self._data is not None
        rows, cols = self._data.shape
        limits = (MAX_DISPLAY, MAX_DISPLAY) if self._reduction == SAMPLE else self.sampling_limits()
        fr, fc = -(-rows // limits[0]), -(-cols // limits[1])
        self._factor = (fr, fc)
        self._reduced_at = None if self._reduction == SAMPLE else limits
        with np.errstate(over="ignore", invalid="ignore"):
            self._display = block_reduce(self._data, fr, fc, self._reduction)
        self._display_summary = self._summary if (fr, fc) == (1, 1) else summarize(self._display)
        self._level_summary = self._display_summary
        if self._scale_with is not None:  # levels from both blocks: A and B shown on one scale
            both = np.concatenate([self._display.reshape(-1), self._scale_with.reshape(-1)])
            self._level_summary = summarize(both)
        self._refresh_levels()
        self._update_marks()

    def _refresh_levels(self, *_args: object) -> None:
        if self._display is None:
            return
        with np.errstate(over="ignore", invalid="ignore"):  # spans near the float32 limit
            self._apply_levels()

    def _apply_levels(self) -> None:
        assert self._display is not None
        mode = self._mode_combo.currentText()
        levels = self._level_summary
        fixed = self._fixed_levels is not None and self._fixed_levels[1] > self._fixed_levels[0]
        if self._clip_check.isEnabled() == fixed:  # clipping means nothing on a scale set from outside
            self._clip_check.setEnabled(not fixed)
        if fixed:
            assert self._fixed_levels is not None
            lo, hi = self._fixed_levels
        else:
            lo, hi = compute_levels(levels.finite_sample, mode, self._clip_check.isChecked(), extremes=levels.extremes)
        self._levels = (lo, hi)
        shown, overlay = finite_display(self._display, self._display_summary, lo, hi)
        self._graphics.draw(shown, overlay, (lo, hi), self._image_rect(), mode, self._display_summary.finite_sample)
        text, tooltip = stats_text(self._summary, self._full_shape, self._factor, self._stride, self._reduction)
        self._footer.set_stats(text, tooltip)

    def _update_marks(self) -> None:
        if self._display is None:
            return
        self._markers.show(self._marks, self._shown_marks, self._image_rect())
        parts = [m.label for m in self._marks]
        shown = nonfinite_text(self._summary)
        if shown:
            parts.append(shown)
        worst = "error" if shown or any(m.severity == "error" for m in self._marks) else (
            "warning" if any(m.severity == "warning" for m in self._marks) else "info")
        self._footer.set_findings(" · ".join(parts), worst)

    def _image_rect(self) -> QRectF:
        """Where the displayed image lies in tensor-index coordinates."""
        assert self._display is not None
        rows, cols = self._display.shape
        (fr, fc), (rs, cs) = self._factor, self._stride
        return QRectF(self._offset[1], self._offset[0], cols * fc * cs, rows * fr * rs)

    def _update_selection_items(self) -> None:
        blocks = self._selection if self._raw is not None else []
        self._graphics.outlines([QRectF(c[0], r[0], c[1] - c[0], r[1] - r[0]) for r, c in blocks])

    def selection_rect(self) -> QRectF | None:
        """The (first) outline's rectangle in view (tensor index) coordinates, or None when hidden."""
        item = self._sel_items[0]
        return item.rect() if item.isVisible() else None

    def selection_rects(self) -> list[QRectF]:
        """Every outlined rectangle (one per selected block)."""
        return self._graphics.outline_rects()

    def _on_hover(self, pixel: QPointF | None) -> None:
        ij = None if pixel is None else self._block_index_at(pixel)
        if ij is None or self._raw is None:
            self._footer.set_hover("")
            return
        r, c = self._offset[0] + ij[0] * self._stride[0], self._offset[1] + ij[1] * self._stride[1]
        self._footer.set_hover(f"row {r}, col {c}: {format_value(self._raw[ij])}")

    def changeEvent(self, event: QEvent) -> None:
        super().changeEvent(event)
        if event.type() == QEvent.Type.FontChange:  # zoom: the axes follow the widget's font
            self._graphics.set_font(self.font())

    def set_compact(self, compact: bool) -> None:
        """Presenting: no colour or pixel controls and no histogram, so the image takes the height."""
        self._controls.set_compact(compact)
        self._graphics.set_compact(compact)

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        now = self.sampling_limits()
        # A block reduced for a much smaller (or bigger) plot looks blocky (or costs too much):
        # reduce the values already here again.
        if self._reduced_at is not None and self._data is not None and _moved(now, self._reduced_at):
            self._reduce()
            return
        # A sample fetched for a much smaller (or bigger) plot: ask for another.
        if self._sampled_at is not None and _moved(now, self._sampled_at):
            self._sampled_at = now
            self.resampleWanted.emit()

    def _on_click(self, pixel: QPointF) -> None:
        cell = self.cell_at(pixel)
        if cell is not None:
            self.cellClicked.emit(*cell)


def _moved(now: tuple[int, int], then: tuple[int, int]) -> bool:
    return any(abs(a - b) > 0.25 * b for a, b in zip(now, then, strict=True))
