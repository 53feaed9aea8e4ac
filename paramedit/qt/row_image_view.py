"""A row (or column) of the shown slice as an image: a 784-long row as 28×28, the classic picture
of what a first-layer neuron looks at.

The shape is typed or picked from what is offered (the model's input's height × width when it
fits, a square, the closest factor pair). Pixel (i, j) is element ``i * width + j`` of the row:
clicking it makes that cell the table's current one, and a selected block of pixels is the list
of row regions an edit (Fill, Formula, Init) is staged over, one region per image row.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QPointF, QRectF, Qt, Signal
from PySide6.QtGui import QColor, QPen
from PySide6.QtWidgets import QComboBox, QGraphicsRectItem, QHBoxLayout, QLabel, QVBoxLayout, QWidget

from paramedit.core.editing.regions import format_region
from paramedit.core.errors import ParameditError
from paramedit.qt.heatmap_data import format_value, to_display_array
from paramedit.qt.heatmap_items import HoverImageItem
from paramedit.qt.tensor_table_model import TensorTableModel
from paramedit.qt.tensor_table_view import TensorTableView

Shape = tuple[int, int]
Pixels = tuple[tuple[int, int], tuple[int, int]]  # (row0, row1), (col0, col1) of the image, half-open
MAX_IMAGE_VALUES = 1 << 20  # a longer row is not drawn as an image (it would not be one)


def parse_shape(text: str) -> Shape | None:
    """``"28×28"``, ``"28x28"``, ``"28, 28"`` -> (28, 28); None when it is not two positive integers."""
    parts = [p for p in re.split(r"[×xX*, ]+", text.strip()) if p]
    if len(parts) != 2 or not all(p.isdigit() and int(p) > 0 for p in parts):
        return None
    return int(parts[0]), int(parts[1])


def offered_shapes(length: int, input_shapes: list[tuple[int, ...]]) -> list[Shape]:
    """Shapes a row of ``length`` values could be: the model input's last two dims when they hold
    exactly that many, a square, the factor pair closest to a square, and one row."""
    offers: list[Shape] = []
    for shape in input_shapes:
        if len(shape) >= 2 and shape[-2] * shape[-1] == length:
            offers.append((shape[-2], shape[-1]))
    root = math.isqrt(length)
    if root * root == length:
        offers.append((root, root))
    for h in range(root, 0, -1):
        if length % h == 0:
            offers.append((h, length // h))
            break
    offers.append((1, length))
    return list(dict.fromkeys(o for o in offers if o[0] * o[1] == length))


class RowImageView(QWidget):
    """The table's current row (or column) drawn as an image of a chosen shape."""

    shownChanged = Signal()  # another row, shape or values are drawn

    def __init__(self, model: TensorTableModel, table: TensorTableView, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("rowImageView")
        self._model, self._table = model, table
        self._input_shapes: Callable[[], list[tuple[int, ...]]] = list
        self._values: np.ndarray | None = None
        self._index = 0  # the row (or column) of the table shown
        self._shape: Shape | None = None
        self._selection: Pixels | None = None
        self._selecting_cell = False  # the table's selection changes because a pixel was clicked
        self.axis_combo = QComboBox(objectName="rowImageAxis")
        self.axis_combo.addItems(["row", "column"])
        self.axis_combo.setToolTip("Show the current cell's row or its column as an image")
        self.shape_combo = QComboBox(objectName="rowImageShape", editable=True)
        self.shape_combo.setToolTip("Height × width of the image (typed, e.g. 28×28, or one of those offered)")
        self.title = QLabel("", objectName="rowImageTitle")
        self.hover = QLabel(" ", objectName="rowImageHover")
        self.graphics = pg.GraphicsLayoutWidget()
        pal = self.palette()
        self.graphics.setBackground(pal.color(pal.ColorRole.Window))
        self.plot = self.graphics.addPlot()
        for name in ("left", "bottom"):
            self.plot.getAxis(name).setPen(pal.color(pal.ColorRole.WindowText))
            self.plot.getAxis(name).setTextPen(pal.color(pal.ColorRole.WindowText))
        self.plot.invertY(True)
        self.plot.setAspectLocked(True)
        self.plot.setMenuEnabled(False)
        self.plot.hideButtons()
        self.image = HoverImageItem(axisOrder="row-major")
        self.image.drag_selects = True
        self.plot.addItem(self.image)
        pen = QPen(QColor("#ffd400"), 2, Qt.PenStyle.DashLine)
        pen.setCosmetic(True)
        self.outline = QGraphicsRectItem()
        self.outline.setPen(pen)
        self.outline.setZValue(10)
        self.outline.setVisible(False)
        self.plot.addItem(self.outline, ignoreBounds=True)
        top = QHBoxLayout()
        top.addWidget(QLabel("as image:"))
        top.addWidget(self.axis_combo)
        top.addWidget(self.shape_combo)
        top.addWidget(self.title, 1)
        column = QVBoxLayout(self)
        column.setContentsMargins(4, 2, 4, 2)
        column.addLayout(top)
        column.addWidget(self.graphics, 1)
        column.addWidget(self.hover)
        self.axis_combo.currentIndexChanged.connect(self._axis_changed)
        self.shape_combo.currentTextChanged.connect(self._shape_typed)
        self.image.sigClicked.connect(self._clicked)
        self.image.sigHovered.connect(self._hovered)
        self.image.sigDragged.connect(self._dragged)
        table.selectionRectChanged.connect(self._table_selection_changed)

    def set_input_shapes(self, shapes: Callable[[], list[tuple[int, ...]]]) -> None:
        """Where the model's input shapes come from (offered as image shapes)."""
        self._input_shapes = shapes

    @property
    def columns(self) -> bool:
        """True: a column of the table is shown; False: a row."""
        return self.axis_combo.currentIndex() == 1

    @property
    def shape(self) -> Shape | None:
        return self._shape

    @property
    def index(self) -> int:
        return self._index

    @property
    def pixel_selection(self) -> Pixels | None:
        return self._selection

    # ------------------------------------------------------------------ what is shown
    def refresh(self) -> None:
        """Read the current row (or column) again and draw it."""
        m = self._model
        length = m.rowCount() if self.columns else m.columnCount()
        current = self._table.currentIndex()
        index = (current.column() if self.columns else current.row()) if current.isValid() else 0
        if not m.name or length == 0 or length > MAX_IMAGE_VALUES:
            self._clear("select a tensor" if not m.name else f"{length} values are too many for an image")
            return
        if index != self._index:
            self._selection = None
        self._index = index
        rows, cols = ((0, m.rowCount()), (index, index + 1)) if self.columns else ((index, index + 1), (0, length))
        try:
            self._values = to_display_array(m.block_values(rows, cols)).reshape(-1).astype(np.float32)
        except ParameditError as exc:
            self._clear(exc.message)
            return
        self._offer_shapes(length)
        self._draw()

    def _offer_shapes(self, length: int) -> None:
        offers = [f"{h}×{w}" for h, w in offered_shapes(length, self._input_shapes())]
        current = parse_shape(self.shape_combo.currentText())
        if [self.shape_combo.itemText(i) for i in range(self.shape_combo.count())] != offers:
            self.shape_combo.blockSignals(True)
            self.shape_combo.clear()
            self.shape_combo.addItems(offers)
            keep = current is not None and current[0] * current[1] == length
            self.shape_combo.setCurrentText(f"{current[0]}×{current[1]}" if keep and current else offers[0])
            self.shape_combo.blockSignals(False)
        self._shape = parse_shape(self.shape_combo.currentText())

    def _draw(self) -> None:
        values, shape = self._values, self._shape
        what = f"{'column' if self.columns else 'row'} {self._index} of {self._model.name}"
        if values is None or shape is None or shape[0] * shape[1] != values.size:
            self.image.clear()
            self.title.setText(f"{what}: {values.size if values is not None else 0} values do not fill "
                               f"{self.shape_combo.currentText() or 'that shape'}")
            return
        picture = values.reshape(shape)
        finite = picture[np.isfinite(picture)]
        peak = float(np.abs(finite).max()) if finite.size else 1.0
        self.image.setImage(picture, levels=(-(peak or 1.0), peak or 1.0))
        self.image.setLookupTable(pg.colormap.get("CET-D1").getLookupTable(nPts=256))
        self.image.setRect(QRectF(0, 0, shape[1], shape[0]))
        self.title.setText(f"{what} as {shape[0]}×{shape[1]}")
        self._show_selection()
        self.shownChanged.emit()

    def _clear(self, message: str) -> None:
        self._values, self._selection = None, None
        self.image.clear()
        self.title.setText(message)
        self._show_selection()

    # ------------------------------------------------------------------ pixels and cells
    def element(self, row: int, col: int) -> int:
        """Which element of the row (or column) pixel (row, col) is."""
        assert self._shape is not None
        return row * self._shape[1] + col

    def cell(self, row: int, col: int) -> tuple[int, int]:
        """The table cell of pixel (row, col)."""
        k = self.element(row, col)
        return (k, self._index) if self.columns else (self._index, k)

    def select_pixels(self, rows: tuple[int, int], cols: tuple[int, int]) -> None:
        """Select a block of pixels (half-open): what an edit of the image is staged over."""
        if self._shape is None:
            return
        h, w = self._shape
        r0, r1 = sorted((max(0, min(rows)), min(h, max(rows))))
        c0, c1 = sorted((max(0, min(cols)), min(w, max(cols))))
        self._selection = ((r0, r1), (c0, c1)) if r1 > r0 and c1 > c0 else None
        self._show_selection()

    def regions(self) -> list[str]:
        """The selected pixels as regions of the tensor, one per image row (contiguous in the row)."""
        if self._selection is None or self._shape is None:
            return []
        (r0, r1), (c0, c1) = self._selection
        if c0 == 0 and c1 == self._shape[1]:  # a block as wide as the image is one run of the row
            return [self._region((self.element(r0, 0), self.element(r1 - 1, c1 - 1) + 1))]
        return [self._region((self.element(r, c0), self.element(r, c1 - 1) + 1)) for r in range(r0, r1)]

    def _region(self, span: tuple[int, int]) -> str:
        """``[3, 145:150]``: elements ``span`` of the shown row (or column), as core takes a region."""
        m, one = self._model, (self._index, self._index + 1)
        index = list(m.slice_index(one, span) if not self.columns else m.slice_index(span, one))
        dim = m.col_dim if self.columns else m.row_dim
        if dim >= 0:
            index[dim] = self._index
        return format_region(tuple(index), shape=m.info.shape if m.info is not None else ())

    def describe_selection(self) -> str:
        if self._selection is None or self._shape is None:
            return ""
        (r0, r1), (c0, c1) = self._selection
        return (f"{self._model.name} {'column' if self.columns else 'row'} {self._index} as "
                f"{self._shape[0]}×{self._shape[1]}, pixels [{r0}:{r1}, {c0}:{c1}]")

    def _show_selection(self) -> None:
        sel = self._selection
        if sel is not None:
            self.outline.setRect(QRectF(sel[1][0], sel[0][0], sel[1][1] - sel[1][0], sel[0][1] - sel[0][0]))
        self.outline.setVisible(sel is not None)

    def _pixel(self, pos: QPointF) -> tuple[int, int] | None:
        if self._shape is None or self._values is None:
            return None
        r, c = math.floor(pos.y()), math.floor(pos.x())
        return (r, c) if 0 <= r < self._shape[0] and 0 <= c < self._shape[1] else None

    def _clicked(self, pos: QPointF) -> None:
        pixel = self._pixel(pos)
        if pixel is None:
            return
        self._selecting_cell = True
        try:
            self._table.select_cell(*self.cell(*pixel))
        finally:
            self._selecting_cell = False
        self.select_pixels((pixel[0], pixel[0] + 1), (pixel[1], pixel[1] + 1))

    def _dragged(self, start: QPointF, end: QPointF) -> None:
        a, b = self._pixel(start), self._pixel(end)
        if a is not None and b is not None:
            self.select_pixels((a[0], b[0] + 1) if b[0] >= a[0] else (b[0], a[0] + 1),
                               (a[1], b[1] + 1) if b[1] >= a[1] else (b[1], a[1] + 1))

    def _hovered(self, pos: QPointF | None) -> None:
        pixel = None if pos is None else self._pixel(pos)
        if pixel is None or self._values is None:
            self.hover.setText(" ")
            return
        row, col = self.cell(*pixel)
        value = self._values[self.element(*pixel)]
        self.hover.setText(f"pixel ({pixel[0]}, {pixel[1]}) = cell [{row}, {col}]: {format_value(value)}")

    def _table_selection_changed(self, _rect: object) -> None:
        if not self._selecting_cell:
            self._selection = None  # cells picked in the table: the pixels picked before are not meant
        if self.isVisible():
            self.refresh()

    def _axis_changed(self, _index: int) -> None:
        self._selection = None
        self.refresh()

    def _shape_typed(self, text: str) -> None:
        shape = parse_shape(text)
        if shape is not None and shape != self._shape:
            self._shape, self._selection = shape, None
            self._draw()
