"""Fill, formula, init, copy-from, paste and copy over the selection: every selected region at
once, through core's ``stage_regions`` (one staged group: one commit, one undo step, one logged
edit per region), or the pixels selected in a row shown as an image.

A block pasted into a region with more dimensions than it has is repeated along the ones it
lacks, as ``copy_`` would: a 3×3 Sobel kernel pasted into output channel ``[2, :, :, :]`` fills
every input channel of it.
"""

from __future__ import annotations

import torch
from PySide6.QtCore import QObject, Signal
from PySide6.QtGui import QAction, QGuiApplication
from PySide6.QtWidgets import QWidget

from paramedit.core.editing.values import format_tsv, tsv_to_values
from paramedit.core.errors import ParameditError
from paramedit.qt import prompts
from paramedit.qt.region_placement import blocks_overlap
from paramedit.qt.region_selection_controller import RegionSelectionController
from paramedit.qt.row_image_view import RowImageView
from paramedit.qt.selection_edit_dialog import SelectionEdit
from paramedit.qt.tensor_table_model import TensorTableModel

MAX_LABEL = 120


class SelectionEditController(QObject):
    """Stages edits over what :class:`RegionSelectionController` says is selected."""

    statusMessage = Signal(str)

    def __init__(self, model: TensorTableModel, selection: RegionSelectionController, row_image: RowImageView,
                 image_action: QAction, dialog_parent: QWidget) -> None:
        super().__init__(dialog_parent)
        self.model, self.selection, self.row_image, self.image_action = model, selection, row_image, image_action
        self._parent = dialog_parent

    # ------------------------------------------------------------------ the selection
    def _regions(self) -> list[str] | None:
        """The selected regions, or None after telling the user why there are none to use."""
        if self.model.session is None or not self.model.name or self.model.info is None:
            self.statusMessage.emit("select a tensor first")
            return None
        regions = self.selection.regions()
        if not regions:
            self.statusMessage.emit("select one or more cells first, or type a region (Ctrl+G)")
            return None
        if not self.selection.typed and blocks_overlap(self.selection.table_blocks()):
            self.statusMessage.emit("the selected blocks overlap: select blocks that do not, or type the regions")
            return None
        return regions

    def _label(self, regions: list[str]) -> str:
        name = self.model.name
        if len(regions) == 1:
            return f"{name}{regions[0]}"
        text = f"{name}: {len(regions)} regions, {'; '.join(regions)}"
        return text if len(text) <= MAX_LABEL else text[:MAX_LABEL - 1] + "…"

    def _in_slice(self, region: str) -> bool:
        """Whether the region lies in one 2-D slice along the table's rows and columns (then a
        block in table layout is turned back into the tensor's own order)."""
        assert self.model.session is not None
        parsed = self.model.session.region(self.model.name, region)
        shown = (self.model.row_dim, self.model.col_dim)
        return all(isinstance(entry, int) for d, entry in enumerate(parsed.index) if d not in shown)

    # ------------------------------------------------------------------ fill, formula, init, copy from
    def edit(self, mode: str) -> bool:
        """Fill / Formula / Init / Copy over every selected region (a dialog asks for the details),
        or over the pixels selected in the row shown as an image."""
        if self.image_action.isChecked() and self.row_image.pixel_selection is not None:
            return self._edit_pixels(mode)
        regions = self._regions()
        session, info = self.model.session, self.model.info
        if regions is None or session is None or info is None:
            return False
        checkpoint = session.checkpoint
        folder = str(checkpoint.path.parent) if checkpoint is not None else ""
        shape = session.region(self.model.name, regions[0]).shape
        return prompts.ask_selection_edit(self._parent, self._label(regions), info.dtype,
                                          lambda edit: self.stage(edit, regions), mode,
                                          tensor_name=self.model.name, folder=folder, shape=shape)

    def _edit_pixels(self, mode: str) -> bool:
        if self.model.session is None or self.model.info is None or mode == "copy":
            self.statusMessage.emit("copy works on a table selection, not on pixels of an image")
            return False
        regions = self.row_image.regions()
        return prompts.ask_selection_edit(self._parent, self.row_image.describe_selection(), self.model.info.dtype,
                                          lambda edit: self.stage(edit, regions), mode,
                                          tensor_name=self.model.name)

    def stage(self, edit: SelectionEdit, regions: list[str]) -> None:
        """Stage ``edit`` over every one of ``regions``, all or none (raises ParameditError)."""
        session = self.model.session
        assert session is not None
        name, text = self.model.name, "; ".join(regions)
        if edit.op == "fill":
            session.stage_regions(name, text, edit.value)
        elif edit.op == "formula":
            session.stage_regions(name, text, op="formula", expr=edit.expr or "", seed=edit.seed)
        elif edit.op == "copy":
            session.stage_regions(name, text, op="copy", source=edit.source, source_name=edit.source_name,
                                  source_index=edit.source_index)
        else:
            session.stage_regions(name, text, op="init", method=edit.method or "", args=edit.args, seed=edit.seed)
        self.statusMessage.emit(f"staged {edit.op} of {self._label(regions)}")

    # ------------------------------------------------------------------ clipboard
    def copy_cells(self) -> bool:
        """The selected region's values as tab-separated text (one region: a block, or an N-D
        region with its leading dimensions as rows)."""
        regions = self._regions()
        session = self.model.session
        if regions is None or session is None:
            return False
        if len(regions) > 1:
            self.statusMessage.emit(f"copy takes one block; {len(regions)} regions are selected")
            return False
        try:
            values, _mask = session.preview(self.model.name, regions[0])
            table = self.model.to_table_layout(values) if self._in_slice(regions[0]) else \
                values.reshape(-1, values.shape[-1] if values.dim() else 1)
            text = format_tsv(table)
        except ParameditError as exc:
            self.statusMessage.emit(exc.message)
            return False
        QGuiApplication.clipboard().setText(text)
        self.statusMessage.emit(f"copied {table.shape[0]}×{table.shape[1]} cells as tab-separated text")
        return True

    def paste(self) -> bool:
        """Stage the clipboard's TSV block: at the one selected table block (whose shape it must
        match when that is bigger than one cell), or into every selected region, repeated along
        the dimensions it lacks."""
        regions = self._regions()
        session, info = self.model.session, self.model.info
        if regions is None or session is None or info is None:
            return False
        name = self.model.name
        try:
            block = tsv_to_values(QGuiApplication.clipboard().text(), info.dtype)
            if not self.selection.typed and len(regions) == 1:
                return self._paste_at_block(block)
            value = self.model.to_region_layout(block) if all(self._in_slice(r) for r in regions) else block
            session.stage_regions(name, "; ".join(regions), value)
        except ParameditError as exc:
            self.statusMessage.emit(f"paste refused: {exc.message}")
            return False
        h, w = block.shape
        self.statusMessage.emit(f"staged paste of {h}×{w} cells into {self._label(regions)}")
        return True

    def _paste_at_block(self, block: torch.Tensor) -> bool:
        session = self.model.session
        assert session is not None
        (r0, r1), (c0, c1) = self.selection.table_blocks()[0]
        h, w = block.shape
        if (r1 - r0, c1 - c0) != (1, 1) and (r1 - r0, c1 - c0) != (h, w):
            raise ParameditError(f"pasted {h}×{w} cells, but the selection is {r1 - r0}×{c1 - c0}")
        if r0 + h > self.model.rowCount() or c0 + w > self.model.columnCount():
            raise ParameditError(f"pasted {h}×{w} cells do not fit from row {r0}, column {c0} of a "
                                 f"{self.model.rowCount()}×{self.model.columnCount()} table")
        region = self.model.region_text((r0, r0 + h), (c0, c0 + w))
        session.stage(self.model.name, region, self.model.to_region_layout(block))
        self.selection.select_blocks([((r0, r0 + h), (c0, c0 + w))])
        self.statusMessage.emit(f"staged paste of {h}×{w} cells into {self.model.name}{region}")
        return True
