"""Choose a 2-D slice of an N-D tensor: which dims are rows and columns, and an index for the rest.

Conventions for small tensors, where the widget hides itself because there is nothing to choose:

* 0-D: ``row_dim() == col_dim() == -1``, ``fixed() == {}``, ``region_text()`` is ``"[...]"``.
* 1-D: the single dim is the columns (the heatmap and table show one row):
  ``row_dim() == -1``, ``col_dim() == 0``; ``region_text(None, (2, 5))`` is ``"[2:5]"``.
* 2-D: ``row_dim() == 0``, ``col_dim() == 1``, never transposed.

For N >= 3 the view opens on the tensor's two largest dims (never a size-1 dim while two are
larger; a 1x1 conv ``[out, in, 1, 1]`` opens as out x in): see
:func:`paramedit.core.analysis.tensor_views.default_view_dims`.

``set_shape`` never emits ``sliceChanged``: the caller reads the state right after calling it.
"""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QSlider,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)
from superqt.utils import signals_blocked

from paramedit.core.analysis.tensor_views import default_view_dims

__all__ = ["SliceControlsWidget"]


def _range_text(span: tuple[int, int] | None) -> str:
    return ":" if span is None else f"{int(span[0])}:{int(span[1])}"


class SliceControlsWidget(QWidget):
    """Row/column dim pickers plus a slider and spin box for every other dim of an N-D shape.

    ``sliceChanged`` fires once per user change of the row dim, the column dim or a fixed index.
    """

    sliceChanged = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("sliceControls")
        self._shape: tuple[int, ...] = ()
        self._row_dim, self._col_dim = -1, -1
        self._fixed: dict[int, int] = {}
        self._index_widgets: dict[int, tuple[QSlider, QSpinBox]] = {}

        self._row_combo = QComboBox(objectName="sliceRowDim")
        self._col_combo = QComboBox(objectName="sliceColDim")
        self._row_combo.setToolTip("Tensor dimension shown down the rows")
        self._col_combo.setToolTip("Tensor dimension shown across the columns")
        dims = QHBoxLayout()
        dims.setContentsMargins(0, 0, 0, 0)
        dims.addWidget(QLabel("rows"))
        dims.addWidget(self._row_combo, 1)
        dims.addSpacing(8)
        dims.addWidget(QLabel("columns"))
        dims.addWidget(self._col_combo, 1)

        self._grid = QGridLayout()
        self._grid.setContentsMargins(0, 0, 0, 0)
        self._grid.setColumnStretch(1, 1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.setSpacing(4)
        layout.addLayout(dims)
        layout.addLayout(self._grid)

        self._row_combo.currentIndexChanged.connect(lambda i: self._on_dim_chosen(is_row=True, dim=i))
        self._col_combo.currentIndexChanged.connect(lambda i: self._on_dim_chosen(is_row=False, dim=i))
        self.set_shape(())

    # ----- public API -----------------------------------------------------------------------
    def set_shape(self, shape: tuple[int, ...]) -> None:
        """Show controls for a tensor of ``shape``; hidden for 0-D, 1-D and 2-D shapes.

        For N >= 3 the defaults are the two largest dims (:func:`default_view_dims`), every other
        index 0.
        Setting the shape already shown keeps the current choices.  Never emits ``sliceChanged``.
        """
        shape = tuple(int(n) for n in shape)
        want_visible = len(shape) >= 3
        # Only hide a parentless widget: showing it would pop up a top-level window.
        if self.parentWidget() is not None or not want_visible:
            self.setVisible(want_visible)
        if shape == self._shape and (self._row_combo.count() == len(shape) or len(shape) < 3):
            return
        self._shape = shape
        ndim = len(shape)
        self._row_dim, self._col_dim = default_view_dims(shape)
        self._fixed = {d: 0 for d in range(ndim) if d not in (self._row_dim, self._col_dim)}
        labels = [f"dim {d}  (size {n})" for d, n in enumerate(shape)] if ndim >= 3 else []
        for combo, dim in ((self._row_combo, self._row_dim), (self._col_combo, self._col_dim)):
            with signals_blocked(combo):
                combo.clear()
                combo.addItems(labels)
                combo.setCurrentIndex(dim if labels else -1)
        self._rebuild_index_rows()

    def shape(self) -> tuple[int, ...]:
        """The shape last given to :meth:`set_shape`."""
        return self._shape

    def row_dim(self) -> int:
        """Dim shown down the rows; -1 for 0-D and 1-D tensors."""
        return self._row_dim

    def col_dim(self) -> int:
        """Dim shown across the columns; -1 for a 0-D tensor."""
        return self._col_dim

    def fixed(self) -> dict[int, int]:
        """Index chosen for every dim that is neither rows nor columns (dim -> index)."""
        return dict(self._fixed)

    def transposed(self) -> bool:
        """True when ``row_dim > col_dim``: ``tensor[region]`` is (cols, rows) and needs ``.T``."""
        return self._row_dim >= 0 and self._row_dim > self._col_dim

    def region_text(
        self, row_range: tuple[int, int] | None = None, col_range: tuple[int, int] | None = None
    ) -> str:
        """NumPy-style index of the current slice, e.g. ``"[0:2, 3, :]"``.

        Ranges are half-open ``(start, stop)`` along the row/column dims; ``None`` is the whole
        dim.  For a 1-D tensor only ``col_range`` is used; a 0-D tensor is ``"[...]"``.
        """
        if not self._shape:
            return "[...]"
        parts = []
        for d in range(len(self._shape)):
            if d == self._row_dim:
                parts.append(_range_text(row_range))
            elif d == self._col_dim:
                parts.append(_range_text(col_range))
            else:
                parts.append(str(self._fixed[d]))
        return "[" + ", ".join(parts) + "]"

    def set_fixed_index(self, dim: int, index: int) -> None:
        """Set the index of a fixed dim programmatically (emits ``sliceChanged`` when it changes)."""
        _slider, spin = self._index_widgets[dim]
        spin.setValue(index)

    def set_fixed_indices(self, indices: dict[int, int]) -> None:
        """Set several fixed indices at once (dims that are rows or columns are ignored); emits
        ``sliceChanged`` once when anything changed."""
        changed = False
        for dim, index in indices.items():
            widgets = self._index_widgets.get(dim)
            if widgets is None or self._fixed.get(dim) == index:
                continue
            for w in widgets:
                with signals_blocked(w):
                    w.setValue(index)
            self._fixed[dim] = index
            changed = True
        if changed:
            self.sliceChanged.emit()

    def set_view(self, row_dim: int, col_dim: int, indices: dict[int, int]) -> None:
        """Show ``row_dim`` down the rows and ``col_dim`` across (N-D tensors), every other dim at
        its index in ``indices`` (else 0); emits ``sliceChanged`` once when anything changed."""
        ndim = len(self._shape)
        if ndim < 3 or not (0 <= row_dim < ndim and 0 <= col_dim < ndim) or row_dim == col_dim:
            return
        fixed = {d: int(indices.get(d, 0)) for d in range(ndim) if d not in (row_dim, col_dim)}
        if (row_dim, col_dim, fixed) == (self._row_dim, self._col_dim, self._fixed):
            return
        for combo, value in ((self._row_combo, row_dim), (self._col_combo, col_dim)):
            with signals_blocked(combo):
                combo.setCurrentIndex(value)
        self._row_dim, self._col_dim, self._fixed = row_dim, col_dim, fixed
        self._rebuild_index_rows()
        self.sliceChanged.emit()

    # ----- internals ------------------------------------------------------------------------
    def _on_dim_chosen(self, *, is_row: bool, dim: int) -> None:
        if dim < 0 or len(self._shape) < 3:
            return
        old_row, old_col = self._row_dim, self._col_dim
        if is_row:
            if dim == old_row:
                return
            new_row, new_col = dim, (old_row if dim == old_col else old_col)
        else:
            if dim == old_col:
                return
            new_row, new_col = (old_col if dim == old_row else old_row), dim
        # Choosing the other combo's dim swaps the two, so rows and columns never coincide.
        for combo, value in ((self._row_combo, new_row), (self._col_combo, new_col)):
            with signals_blocked(combo):
                combo.setCurrentIndex(value)
        # A dim that stops being rows/columns starts at the index it had before, or 0.
        previous = self._fixed
        self._row_dim, self._col_dim = new_row, new_col
        self._fixed = {d: previous.get(d, 0) for d in range(len(self._shape)) if d not in (new_row, new_col)}
        self._rebuild_index_rows()
        self.sliceChanged.emit()

    def _rebuild_index_rows(self) -> None:
        while self._grid.count():
            item = self._grid.takeAt(0)
            widget = item.widget() if item is not None else None
            if widget is not None:
                widget.setParent(None)  # gone from findChild now, not at the next event loop
                widget.deleteLater()
        self._index_widgets.clear()
        for row, (dim, index) in enumerate(sorted(self._fixed.items())):
            size = self._shape[dim]
            label = QLabel(f"dim {dim}")
            label.setToolTip(f"index along dim {dim} (size {size})")
            slider = QSlider(Qt.Orientation.Horizontal, objectName=f"sliceSlider{dim}")
            spin = QSpinBox(objectName=f"sliceIndex{dim}")
            spin.setKeyboardTracking(False)  # typing "12" should not visit index 1 first
            for w in (slider, spin):
                w.setRange(0, size - 1)
                w.setValue(index)
                w.setEnabled(size > 1)
            spin.setSuffix(f" / {size - 1}")
            slider.valueChanged.connect(lambda v, d=dim: self._on_index_changed(d, v, source="slider"))
            spin.valueChanged.connect(lambda v, d=dim: self._on_index_changed(d, v, source="spin"))
            self._grid.addWidget(label, row, 0)
            self._grid.addWidget(slider, row, 1)
            self._grid.addWidget(spin, row, 2)
            self._index_widgets[dim] = (slider, spin)

    def _on_index_changed(self, dim: int, value: int, *, source: str) -> None:
        if self._fixed.get(dim) == value:
            return
        slider, spin = self._index_widgets[dim]
        other = spin if source == "slider" else slider
        with signals_blocked(other):
            other.setValue(value)
        self._fixed[dim] = value
        self.sliceChanged.emit()
