"""What is selected, as regions of the tensor: the blocks the mouse selects in the table, or
the regions typed into the region box (or picked as a head, or as tiles of the kernel montage).

Typed regions may span more than the 2-D slice shows (``[2, :, :, :]`` of a conv weight): the
slice moves to one that holds part of the first region, the table selects that part, the note
says what it cannot show, and the typed regions stay the selection that edits act on until the
mouse selects something else. The heatmap outlines every selected block.
"""

from __future__ import annotations

from PySide6.QtCore import QItemSelection, QItemSelectionModel, QObject, Signal
from PySide6.QtWidgets import QAbstractItemView

from paramedit.core.editing.regions import Region, parse_region, parse_regions
from paramedit.core.errors import ParameditError
from paramedit.qt.heatmap_view import HeatmapView
from paramedit.qt.region_box_widget import RegionBoxWidget
from paramedit.qt.region_placement import Block, merge_blocks, place_region
from paramedit.qt.slice_controls_widget import SliceControlsWidget
from paramedit.qt.tensor_table_model import TensorTableModel
from paramedit.qt.tensor_table_view import TensorTableView

#: More table blocks than this (a strided region in both dims) are selected as their bounding block.
MAX_BLOCKS = 4096
#: More outlines than this are drawn as one around them all.
MAX_OUTLINES = 64


def _bounding(blocks: list[Block]) -> list[Block]:
    if not blocks:
        return []
    return [((min(b[0][0] for b in blocks), max(b[0][1] for b in blocks)),
             (min(b[1][0] for b in blocks), max(b[1][1] for b in blocks)))]


def _empty_reason(typed: str, region: Region, shape: tuple[int, ...]) -> str:
    """Why ``typed`` selects nothing: the dimension it misses, with that dimension's size."""
    for d, entry in enumerate(region.index):
        if isinstance(entry, slice) and not len(range(*entry.indices(shape[d]))):
            return (f"{typed} selects nothing: dim {d} has {shape[d]} (indices 0 to {shape[d] - 1}), "
                    f"of a tensor of shape {tuple(shape)}")
    return f"{typed} selects no values of a tensor of shape {tuple(shape)}"


_NO_END = 1 << 62


def _clipped(text: str, regions: list[Region], shape: tuple[int, ...]) -> str:
    """Say so when a typed slice ends past its dimension (NumPy's rule cuts it at the end)."""
    for part, region in zip((p.strip() for p in text.split(";") if p.strip()), regions, strict=False):
        typed = parse_region(part, (_NO_END,) * len(shape)).index  # as typed: no end to cut at
        for d, entry in enumerate(typed):
            # An open or negative end reads as (near) _NO_END here; only a typed end past the size counts.
            if isinstance(entry, slice) and shape[d] < entry.stop < _NO_END // 2:
                return f"{part} ends past dim {d} ({shape[d]}): cut to {region.text}"
    return ""


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


class RegionSelectionController(QObject):
    """Keeps the table, the heatmap's outlines and the region box showing one selection."""

    selectionChanged = Signal(object)  # list[str]: the regions selected now

    def __init__(self, model: TensorTableModel, table: TensorTableView, heatmap: HeatmapView,
                 slice_controls: SliceControlsWidget, box: RegionBoxWidget, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.model, self.table, self.heatmap, self.slice_controls, self.box = model, table, heatmap, slice_controls, box
        self._typed: list[Region] | None = None
        self._extra_note = ""
        self._blocks: list[Block] = []  # what the heatmap outlines
        self._applying = False  # the table's selection changes because of a typed region
        box.regionsEntered.connect(self.select_text)
        table.selectionRectChanged.connect(self._table_selection_changed)

    # ------------------------------------------------------------------ what is selected
    @property
    def typed(self) -> bool:
        """Whether the selection is typed regions (or heads, or tiles), not the mouse's blocks."""
        return self._typed is not None

    def regions(self) -> list[str]:
        """The selection as region texts of the tensor (none when nothing is selected)."""
        if self._typed is not None:
            return [r.text for r in self._typed]
        if self.model.info is None:
            return []
        return [self.model.region_text(*b) for b in self.table_blocks()]

    def table_blocks(self) -> list[Block]:
        """The table's selected blocks, merged into as few rectangles as they make (the current
        cell when nothing is selected)."""
        sm = self.table.selectionModel()
        ranges = list(sm.selection()) if sm is not None else []
        if not ranges:
            current = self.table.currentIndex()
            if not current.isValid():
                return []
            return [((current.row(), current.row() + 1), (current.column(), current.column() + 1))]
        return merge_blocks(((r.top(), r.bottom() + 1), (r.left(), r.right() + 1)) for r in ranges)

    # ------------------------------------------------------------------ typed regions
    def select_text(self, text: str, note: str = "") -> bool:
        """Select the regions ``text`` names (``;``-separated); a bad one is refused in place and
        nothing is selected."""
        info = self.model.info
        if info is None:
            self.box.show_error("select a tensor first")
            return False
        shape = tuple(info.shape)
        try:
            regions = parse_regions(text, shape)
        except ParameditError as exc:
            self._refuse(exc.message, self._bad_part(text, shape))
            return False
        empty = next((r for r in regions if r.numel == 0), None)
        if empty is not None:
            bad = self._bad_part(text, shape) or empty.text
            self._refuse(_empty_reason(bad, empty, shape), bad)
            return False
        self._extra_note = " · ".join(n for n in (note, _clipped(text, regions, shape)) if n)
        first = place_region(regions[0].index, self.model.slice_view(), move=True)
        self._typed = regions
        if first.fixed:
            self.slice_controls.set_fixed_indices(first.fixed)  # the editor shows that slice, then refresh()
        self._show(scroll=True)
        return True

    def clear(self) -> None:
        """A new tensor: nothing selected."""
        self._typed, self._blocks, self._extra_note = None, [], ""
        self.box.show_selection("", "")

    def refresh(self) -> None:
        """The slice or the window changed: select the typed regions' part of it again (or drop
        them when none of them is in it), or outline the table's blocks."""
        if self._typed is not None:
            view = self.model.slice_view()
            if all(place_region(r.index, view, move=False).outside for r in self._typed):
                self._typed = None
            else:
                self._show(scroll=False)
                return
        self._table_selection_changed(None)

    def refresh_outline(self) -> None:
        """The heatmap was drawn again: outline the selection on it."""
        self.heatmap.set_selections(self._outlines())

    def _bad_part(self, text: str, shape: tuple[int, ...]) -> str:
        for part in (p.strip() for p in text.split(";")):
            if not part:
                continue
            try:
                if parse_region(part, shape).numel == 0:
                    return part
            except ParameditError:
                return part
        return ""

    def _refuse(self, message: str, bad_part: str) -> None:
        self._typed, self._blocks = None, []
        self._applying = True
        try:
            self.table.clearSelection()
            self.table.selectionModel().clearCurrentIndex()
        finally:
            self._applying = False
        self.heatmap.set_selections([])
        self.box.show_error(message, bad_part)
        self.selectionChanged.emit([])

    def _show(self, *, scroll: bool) -> None:
        assert self._typed is not None
        view = self.model.slice_view()
        blocks: list[Block] = []
        outside, spans = 0, []
        bounded = False
        for region in self._typed:
            place = place_region(region.index, view, move=False)
            if place.outside:
                outside += 1
                continue
            blocks += place.blocks
            bounded |= place.bounded
            spans += [f"{region.text} spans {', '.join(place.spans)}"] if place.spans else []
        if len(blocks) > MAX_BLOCKS:
            blocks, bounded = _bounding(blocks), True
        self._select_blocks(blocks, scroll=scroll)
        self._blocks = blocks
        self.refresh_outline()
        texts = [r.text for r in self._typed]
        notes = [self._extra_note] if self._extra_note else []
        if len(texts) > 1:
            notes.append(_plural(len(texts), "region"))
        if spans:
            notes.append(f"{'; '.join(spans)}: the table shows {self.model.region_text()} of it; "
                         "edits act on all of it")
        if outside:
            notes.append(f"{outside} of {len(texts)} not in the shown slice" if len(texts) > 1
                         else "not in the shown slice")
        if bounded:
            notes.append("strided: the table selects the block around it")
        self.box.show_selection("; ".join(texts), " · ".join(notes))
        self.selectionChanged.emit(texts)

    def _select_blocks(self, blocks: list[Block], *, scroll: bool) -> None:
        model, sm = self.model, self.table.selectionModel()
        selection = QItemSelection()
        for (r0, r1), (c0, c1) in blocks:
            selection.select(model.index(r0, c0), model.index(r1 - 1, c1 - 1))
        self._applying = True
        try:
            if blocks:
                first = model.index(blocks[0][0][0], blocks[0][1][0])
                sm.setCurrentIndex(first, QItemSelectionModel.SelectionFlag.NoUpdate)
                if scroll:
                    self.table.scrollTo(first, QAbstractItemView.ScrollHint.PositionAtTop)
                    # Horizontally Qt only makes the column visible, at the right edge: start the
                    # block at the left, so its columns are in sight.
                    header = self.table.horizontalHeader()
                    self.table.horizontalScrollBar().setValue(header.sectionPosition(first.column()))
            sm.select(selection, QItemSelectionModel.SelectionFlag.ClearAndSelect)
        finally:
            self._applying = False

    def _outlines(self) -> list[Block]:
        return self._blocks if len(self._blocks) <= MAX_OUTLINES else _bounding(self._blocks)

    # ------------------------------------------------------------------ the mouse
    def select_blocks(self, blocks: list[Block]) -> None:
        """Select table blocks as the mouse would (a pasted block)."""
        selection = QItemSelection()
        for (r0, r1), (c0, c1) in blocks:
            selection.select(self.model.index(r0, c0), self.model.index(r1 - 1, c1 - 1))
        self.table.selectionModel().select(selection, QItemSelectionModel.SelectionFlag.ClearAndSelect)

    def _table_selection_changed(self, _rect: object) -> None:
        if self._applying:
            return
        self._typed, self._extra_note = None, ""
        self._blocks = self.table_blocks() if self.model.info is not None else []
        self.refresh_outline()
        texts = [self.model.region_text(*b) for b in self._blocks]
        self.box.show_selection("; ".join(texts), _plural(len(texts), "block") if len(texts) > 1 else "")
        self.selectionChanged.emit(texts)
