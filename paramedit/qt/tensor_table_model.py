"""A virtual table over one 2-D slice of a session's tensor.

Values come from ``session.preview`` in tiles of 64 x 32 cells, fetched (and the cells' texts
formatted, a block at a time) when the view is about to paint them
(:meth:`TensorTableModel.ensure_cells`); ``data()`` only reads that cache, with O(1) work per
role, so a 50257 x 768 embedding costs what its visible cells cost. Edits are staged through
core, never written here.

While a comparison is on (:meth:`TensorTableModel.set_reference`) each tile also holds the
reference checkpoint's values of its cells (A, read through its file), the tooltip says
"A → B (Δ)", and the table can show A instead of B (read-only) on the same colour scale.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from typing import Any

import numpy as np
import torch
from PySide6.QtCore import QAbstractTableModel, QModelIndex, QObject, QPersistentModelIndex, Qt, Signal
from PySide6.QtGui import QBrush, QColor

from paramedit.core.analysis.checkpoint_compare import CompareReport
from paramedit.core.analysis.tensor_views import default_view_dims
from paramedit.core.editing.regions import format_region
from paramedit.core.editing.values import check_scalar, parse_number
from paramedit.core.errors import ParameditError
from paramedit.core.session import Session
from paramedit.core.tensor_tree import TensorInfo
from paramedit.qt.number_format import DEFAULT_FORMAT, NumberFormat, edit_text, format_number, widest_text
from paramedit.qt.region_placement import SliceView
from paramedit.qt.table_tiles import Tile, compare_text, diverging_brushes, format_block, to_numpy

# A tile is a little more than a screenful of rows by a few screens of columns: small enough that
# jumping anywhere reads a few thousand values, big enough that scrolling rarely fetches.
TILE_ROWS = 64
TILE_COLS = 32
MAX_TILES = 256  # ~0.5M cached cells: many screens in every direction
REFRESH_TILES = 9  # after a change, only the most recently painted tiles (a screen) are re-read at once
SCALE_PERCENTILE = 99.5  # "colour by value": |v| at this percentile gets the full colour
SCALE_SAMPLE = 512  # "colour by value" scales by max |v| of a strided sample at most this big per axis
STAGED_BRUSH = QBrush(QColor("#ffe08a"))
EDITED_BRUSH = QBrush(QColor("#b9e6b5"))  # green: apart from the blue-white-red value colours
AnyIndex = QModelIndex | QPersistentModelIndex
Span = tuple[int, int]
# data() compares plain ints: PySide6 passes the role as an int, and enum lookups cost per call.
_DISPLAY, _EDIT, _TOOLTIP, _ALIGNMENT, _BACKGROUND = (int(r) for r in (
    Qt.ItemDataRole.DisplayRole, Qt.ItemDataRole.EditRole, Qt.ItemDataRole.ToolTipRole,
    Qt.ItemDataRole.TextAlignmentRole, Qt.ItemDataRole.BackgroundRole))
_CELL_ROLES = frozenset((_DISPLAY, _EDIT, _TOOLTIP, _BACKGROUND))
_RIGHT = int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
_NO_FLAGS = Qt.ItemFlag.NoItemFlags


class TensorTableModel(QAbstractTableModel):
    """Rows and columns of the selected tensor's current 2-D slice (0-D: 1x1, 1-D: one row)."""

    editRejected = Signal(str)  # why a typed value was refused
    editAccepted = Signal(str)  # the region that was staged, e.g. "fc.weight[0, 1]"

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._session: Session | None = None
        self._name = ""
        self._info: TensorInfo | None = None
        self._row_dim: int | None = None
        self._col_dim: int | None = None
        self._fixed: dict[int, int] = {}
        self._windows: tuple[Span | None, Span | None] = (None, None)  # rows, columns shown of their dims
        self._rows = self._cols = 0
        self._tiles: OrderedDict[tuple[int, int], Tile] = OrderedDict()
        self.style = DEFAULT_FORMAT
        self.decimals = 4
        self.colour_values = False
        self.show_edited = False
        self._abs_max = 1.0
        self._brushes = diverging_brushes()
        self._flags = _NO_FLAGS
        self._edited_names: set[str] = set()
        self._reference: CompareReport | None = None
        self._show_reference = False

    # ------------------------------------------------------------------ what is shown
    @property
    def name(self) -> str:
        return self._name

    @property
    def info(self) -> TensorInfo | None:
        return self._info

    @property
    def session(self) -> Session | None:
        return self._session

    @property
    def row_dim(self) -> int:
        """Tensor dim down the rows (-1: none, a 0-D or 1-D tensor)."""
        return -1 if self._row_dim is None else self._row_dim

    @property
    def col_dim(self) -> int:
        """Tensor dim across the columns (-1: none, a 0-D tensor)."""
        return -1 if self._col_dim is None else self._col_dim

    @property
    def fixed(self) -> dict[int, int]:
        """Index of every other dim in the shown slice."""
        return dict(self._fixed)

    @property
    def windows(self) -> tuple[Span | None, Span | None]:
        """The part (start, stop) of the row dim and of the column dim shown (None: all of it)."""
        return self._windows

    def slice_view(self) -> SliceView:
        """What the table shows, for placing regions on it."""
        shape = tuple(self._info.shape) if self._info is not None else ()
        return SliceView(shape, self._row_dim, self._col_dim, dict(self._fixed), *self._windows)

    @property
    def showing_reference(self) -> bool:
        """True while the cells show the reference checkpoint's values (A), not the model's (B)."""
        return self._show_reference and self._reference_fits()

    @property
    def transposed(self) -> bool:
        return self._row_dim is not None and self._col_dim is not None and self._row_dim > self._col_dim

    def set_tensor(self, session: Session | None, name: str = "", *, row_dim: int | None = None,
                   col_dim: int | None = None, fixed: dict[int, int] | None = None) -> None:
        """Show ``name`` (default slice: :func:`default_view_dims`, others at 0)."""
        self.beginResetModel()
        self._session, self._name = session, name
        self._info = session.info(name) if session is not None and name else None
        self._tiles.clear()
        self._windows = (None, None)
        ndim = len(self._info.shape) if self._info else 0
        if row_dim is None and col_dim is None and ndim >= 2:
            row_dim, col_dim = default_view_dims(self._info.shape)
        elif ndim == 1:
            row_dim, col_dim = None, 0
        self._apply_slice(row_dim, col_dim, fixed)
        self.endResetModel()

    def set_slice(self, row_dim: int | None, col_dim: int | None, fixed: dict[int, int] | None) -> None:
        """Show another 2-D slice of the same tensor (row/column dims and the fixed indices)."""
        self.beginResetModel()
        self._tiles.clear()
        self._windows = (None, None)
        self._apply_slice(row_dim, col_dim, fixed)
        self.endResetModel()

    def set_windows(self, rows: Span | None, cols: Span | None) -> None:
        """Show only rows ``[start, stop)`` of the row dim and columns of the column dim (None:
        all): one attention head's block of a projection, numbered from 0 in the table."""
        self.beginResetModel()
        self._tiles.clear()
        self._windows = (rows, cols)
        self._apply_slice(self._row_dim, self._col_dim, self._fixed)
        self.endResetModel()

    def _apply_slice(self, row_dim: int | None, col_dim: int | None, fixed: dict[int, int] | None) -> None:
        shape = self._info.shape if self._info else ()
        self._row_dim, self._col_dim = row_dim, col_dim
        self._fixed = {d: i for d, i in (fixed or {}).items() if d not in (row_dim, col_dim)}
        for d in range(len(shape)):
            if d not in (row_dim, col_dim):
                self._fixed.setdefault(d, 0)
        if self._info is None:
            self._rows = self._cols = 0
        else:
            (rw, cw) = self._windows
            self._rows = (rw[1] - rw[0] if rw else shape[row_dim]) if row_dim is not None else 1
            self._cols = (cw[1] - cw[0] if cw else shape[col_dim]) if col_dim is not None else 1
        self._refresh_flags()
        self._refresh_scale()

    def _refresh_flags(self) -> None:
        self._flags = Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable
        if self._info is not None and not self._info.read_only and not self.showing_reference:
            self._flags |= Qt.ItemFlag.ItemIsEditable

    def set_reference(self, report: CompareReport | None) -> None:
        """Compare with ``report``'s reference checkpoint (A) (None: stop comparing)."""
        self._reference = report
        if report is None:
            self._show_reference = False
        self.refresh()

    def set_show_reference(self, on: bool) -> None:
        """Show A's values (read-only) instead of B's, on the same colour scale."""
        self._show_reference = on
        for tile in self._tiles.values():
            tile.forget_texts()
        self._refresh_flags()
        self._refresh_scale()
        self._repaint_all()

    def _reference_fits(self) -> bool:
        return self._reference is not None and bool(self._name) and self._reference.reference_tensor(self._name) is not None

    def reference_block(self, rows: tuple[int, int] | None = None, cols: tuple[int, int] | None = None,
                        steps: tuple[int, int] = (1, 1)) -> torch.Tensor | None:
        """A's values of a table rectangle as (rows, cols), read through A's file; None when not comparing."""
        if self._reference is None or not self._name:
            return None
        values = self._reference.reference_values(self._name, self.slice_index(rows, cols, steps))
        return None if values is None else self.to_table_layout(values)

    def _shown(self, tile: Tile) -> np.ndarray:
        return tile.ref if self._show_reference and tile.ref is not None else tile.values

    def refresh(self, *, edited_names: set[str] | None = None) -> None:
        """Values or staged edits changed: re-read the cached tiles and repaint."""
        if edited_names is not None:
            self._edited_names = edited_names
        if self._session is None or not self._name:
            return
        try:
            self._info = self._session.info(self._name)
        except ParameditError:  # the tensor is gone (session switched under us)
            self.set_tensor(None)
            return
        # The view touches the tiles it paints last, so the newest few cover the screen.
        keys = list(self._tiles)[-REFRESH_TILES:]
        self._tiles.clear()
        for key in keys:
            self._tiles[key] = self._fetch(*key)
        self._refresh_flags()
        self._refresh_scale()
        if self._rows and self._cols:
            self.dataChanged.emit(self.index(0, 0), self.index(self._rows - 1, self._cols - 1))

    def widest_text(self) -> str:
        """A text as wide as the widest cell usually is in the format in use (sizes the columns)."""
        return widest_text(self._info.dtype, self.style, self.decimals) if self._info is not None else "0"

    def set_number_format(self, style: NumberFormat, decimals: int | None = None) -> None:
        self.style = style
        if decimals is not None:
            self.decimals = decimals
        for tile in self._tiles.values():
            tile.forget_texts()  # the view formats what it paints next
        self._repaint_all()

    def set_colour_values(self, on: bool) -> None:
        self.colour_values = on
        self._refresh_scale()
        self._repaint_all()

    def set_show_edited(self, on: bool) -> None:
        self.show_edited = on
        self.refresh()

    def _repaint_all(self) -> None:
        if self._rows and self._cols:
            self.dataChanged.emit(self.index(0, 0), self.index(self._rows - 1, self._cols - 1))

    # ------------------------------------------------------------------ regions
    def slice_index(self, rows: tuple[int, int] | None = None, cols: tuple[int, int] | None = None,
                    steps: tuple[int, int] = (1, 1)) -> tuple:
        """The tensor index of a rectangle of the table (half-open row and column ranges).

        ``steps=(row_step, col_step)`` takes every ``row_step``-th row and ``col_step``-th
        column of it (a strided sample, e.g. for the heatmap of a big slice).
        """
        shape = self._info.shape if self._info else ()
        rows = rows or (0, self._rows)
        cols = cols or (0, self._cols)
        row_step, col_step = (None if k == 1 else k for k in steps)
        ro, co = ((w[0] if w else 0) for w in self._windows)
        index: list[Any] = []
        for d in range(len(shape)):
            if d == self._row_dim:
                index.append(slice(rows[0] + ro, rows[1] + ro, row_step))
            elif d == self._col_dim:
                index.append(slice(cols[0] + co, cols[1] + co, col_step))
            else:
                index.append(self._fixed.get(d, 0))
        return tuple(index)

    def region_text(self, rows: tuple[int, int] | None = None, cols: tuple[int, int] | None = None,
                    steps: tuple[int, int] = (1, 1)) -> str:
        """``[0:2, 3, :]``-style region of a table rectangle (``[::50, :]`` with steps), as core takes it."""
        shape = self._info.shape if self._info else ()
        return format_region(self.slice_index(rows, cols, steps), shape=shape)

    def cell_region(self, row: int, col: int) -> str:
        index = [s.start if isinstance(s, slice) else s for s in self.slice_index((row, row + 1), (col, col + 1))]
        return format_region(tuple(index), shape=self._info.shape if self._info else ())

    def to_table_layout(self, values: torch.Tensor) -> torch.Tensor:
        """A region's values (in the tensor's dim order) as (table rows, table columns)."""
        if values.dim() == 2 and self.transposed:
            return values.T
        return values.reshape(-1, values.shape[-1]) if values.dim() == 2 else values.reshape(1, -1)

    def to_region_layout(self, block: torch.Tensor) -> torch.Tensor:
        """The inverse of :meth:`to_table_layout` for a (rows, cols) block of this table."""
        ndim_left = sum(d is not None for d in (self._row_dim, self._col_dim))
        if ndim_left == 2:
            return (block.T if self.transposed else block).contiguous()
        return block.reshape(-1) if ndim_left == 1 else block.reshape(())

    def block_values(self, rows: tuple[int, int], cols: tuple[int, int]) -> torch.Tensor:
        """Current values (staged edits applied) of a table rectangle, as (rows, cols)."""
        assert self._session is not None
        values, _mask = self._session.preview(self._name, self.region_text(rows, cols))
        return self.to_table_layout(values)

    # ------------------------------------------------------------------ cache
    def ensure_cells(self, first_row: int, last_row: int, first_col: int, last_col: int) -> None:
        """Fetch the tiles covering these (inclusive) rows and columns, and format these cells'
        texts, before the view paints them."""
        if self._session is None or self._info is None or not self._rows or not self._cols:
            return
        first_row, first_col = max(first_row, 0), max(first_col, 0)
        last_row, last_col = min(last_row, self._rows - 1), min(last_col, self._cols - 1)
        for tr in range(first_row // TILE_ROWS, last_row // TILE_ROWS + 1):
            for tc in range(first_col // TILE_COLS, last_col // TILE_COLS + 1):
                key = (tr, tc)
                tile = self._tiles.get(key)
                if tile is None:
                    tile = self._tiles[key] = self._fetch(tr, tc)
                    while len(self._tiles) > MAX_TILES:
                        self._tiles.popitem(last=False)
                else:
                    self._tiles.move_to_end(key)
                r0, c0 = tr * TILE_ROWS, tc * TILE_COLS
                block = (slice(max(first_row, r0) - r0, min(last_row, r0 + TILE_ROWS - 1) - r0 + 1),
                         slice(max(first_col, c0) - c0, min(last_col, c0 + TILE_COLS - 1) - c0 + 1))
                assert tile.texts is not None and tile.has_text is not None
                if not tile.has_text[block].all():
                    tile.texts[block] = format_block(self._shown(tile)[block], self._info.dtype, self.style,
                                                     self.decimals)
                    tile.has_text[block] = True

    def _fetch(self, tr: int, tc: int) -> Tile:
        assert self._session is not None
        rows = (tr * TILE_ROWS, min((tr + 1) * TILE_ROWS, self._rows))
        cols = (tc * TILE_COLS, min((tc + 1) * TILE_COLS, self._cols))
        region = self.region_text(rows, cols)
        values, mask = self._session.preview(self._name, region)
        edited = None
        if self.show_edited and self._name in self._edited_names:
            edited = self._edited_mask(rows, cols)
        ref = self.reference_block(rows, cols)
        return Tile(to_numpy(self.to_table_layout(values)), self.to_table_layout(mask).numpy(), edited,
                     None if ref is None else to_numpy(ref))

    def _edited_mask(self, rows: tuple[int, int], cols: tuple[int, int]) -> np.ndarray | None:
        assert self._session is not None
        diff = self._session.changed_mask(self._name, self.region_text(rows, cols))
        return None if diff is None else self.to_table_layout(diff).numpy()

    def _refresh_scale(self) -> None:
        self._abs_max = 1.0
        if not (self.colour_values and self._session is not None and self._info is not None):
            return
        if self._info.read_only or self._info.dtype == torch.bool or not (self._rows and self._cols):
            return
        # A strided sample, not the whole slice: colours are a guide, and a 38M-cell slice would
        # cost a full pass per edit. An outlier between samples just shows at full colour.
        steps = (-(-self._rows // SCALE_SAMPLE), -(-self._cols // SCALE_SAMPLE))
        t, _mask = self._session.preview(self._name, self.region_text(steps=steps))
        ref = self.reference_block(steps=steps)
        if ref is not None:  # B and A on one scale, so flipping between them shows only the change
            t = torch.cat([t.reshape(-1).to(torch.float64), ref.reshape(-1).to(torch.float64)])
        t = t.to(torch.float64) if not t.is_floating_point() else t
        finite = t[torch.isfinite(t)].abs().to(torch.float64)
        if finite.numel():
            # The heatmap's scale: the 99.5th percentile of |v|, so one outlier does not wash the
            # rest out to white (values beyond it get the full colour).
            k = max(1, math.ceil(SCALE_PERCENTILE / 100 * finite.numel()))
            self._abs_max = float(finite.kthvalue(k).values) or float(finite.max()) or 1.0

    def cached_tiles(self) -> int:
        return len(self._tiles)

    # ------------------------------------------------------------------ Qt model
    def rowCount(self, parent: AnyIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else self._rows

    def columnCount(self, parent: AnyIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else self._cols

    def headerData(self, section: int, orientation: Qt.Orientation, role: int = _DISPLAY) -> Any:
        if role not in (_DISPLAY, _TOOLTIP):
            return None
        horizontal = orientation == Qt.Orientation.Horizontal
        window = self._windows[1 if horizontal else 0]
        index = section + (window[0] if window else 0)  # the tensor's own index, in a head's window too
        if role == _DISPLAY:
            return str(index)
        dim = self._col_dim if horizontal else self._row_dim
        return None if dim is None else f"index {index} of dim {dim}"

    def flags(self, index: AnyIndex) -> Qt.ItemFlag:
        return self._flags if index.isValid() else _NO_FLAGS

    def data(self, index: AnyIndex, role: int = _DISPLAY) -> Any:
        # Qt asks for seven roles per painted cell: the ones without an answer return first.
        if role == _ALIGNMENT:
            return _RIGHT if self._info is not None and index.isValid() else None
        if role not in _CELL_ROLES or self._info is None or not index.isValid():
            return None
        r, c = index.row(), index.column()
        tile = self._tiles.get((r // TILE_ROWS, c // TILE_COLS))
        if tile is None:
            return None  # not fetched yet: the view fetches visible tiles before it paints
        i, j = r % TILE_ROWS, c % TILE_COLS
        if role == _DISPLAY:
            if tile.has_text[i, j]:  # type: ignore[index]
                return tile.texts[i, j]  # type: ignore[index]
            return format_number(self._shown(tile)[i, j], self._info.dtype, self.style, self.decimals)
        if role == _BACKGROUND:
            if tile.any_staged and tile.staged[i, j]:
                return STAGED_BRUSH
            if tile.edited is not None and tile.edited[i, j]:
                return EDITED_BRUSH
            if self.colour_values and not self._info.read_only:
                return self._value_brush(self._shown(tile)[i, j])
            return None
        if role == _EDIT:
            return edit_text(self._shown(tile)[i, j], self._info.dtype)
        return self._tooltip(r, c, tile, i, j)

    def _value_brush(self, value: Any) -> QBrush | None:
        v = float(value)
        if not math.isfinite(v):
            return None
        steps = (len(self._brushes) - 1) // 2
        t = max(-1.0, min(1.0, v / self._abs_max))
        return self._brushes[round(t * steps) + steps]

    def _tooltip(self, r: int, c: int, tile: Tile, i: int, j: int) -> str:
        assert self._info is not None
        dtype = self._info.dtype
        text = f"{self._name}{self.cell_region(r, c)} = {edit_text(tile.values[i, j], dtype)}"
        if tile.ref is not None:
            text = f"{self._name}{self.cell_region(r, c)}: {compare_text(tile.ref[i, j], tile.values[i, j], dtype)}"
            text += "\nA is the reference checkpoint, B the model" + (" (A shown)" if self._show_reference else "")
        if tile.staged[i, j]:
            text += "  (staged, not committed)"
        elif tile.edited is not None and tile.edited[i, j]:
            text += "  (differs from the checkpoint)"
        if self._info.read_only:
            text += f"\nread-only: {self._info.read_only}"
        return text

    def setData(self, index: AnyIndex, value: Any, role: int = Qt.ItemDataRole.EditRole) -> bool:
        if role != Qt.ItemDataRole.EditRole or not index.isValid() or self._info is None or self._session is None:
            return False
        region = self.cell_region(index.row(), index.column())
        where = f"{self._name}{region}"
        if self._info.read_only:
            self.editRejected.emit(f"{where}: read-only ({self._info.read_only})")
            return False
        try:
            number = check_scalar(parse_number(str(value)), self._info.dtype)
            self._session.stage(self._name, region, number)
        except ParameditError as exc:
            self.editRejected.emit(f"{where}: {exc.message}")
            return False
        self.refresh()
        self.editAccepted.emit(where)
        return True
