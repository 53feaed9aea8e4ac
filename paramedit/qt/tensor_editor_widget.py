"""The right pane's top: the selected tensor as a table and a heatmap of the same 2-D slice.

It also goes to a scan finding (the slice that holds it, the cell or row as the table's current
index, a mark on the heatmap) and, while a comparison is on, shows B − A or A instead of B.
"""

from __future__ import annotations

from PySide6.QtCore import QItemSelection, QItemSelectionModel, Qt, QTimer, Signal
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QSizePolicy,
    QSplitter,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from paramedit.core.analysis.checkpoint_compare import CompareReport
from paramedit.core.analysis.health_scan import Finding, ScanReport
from paramedit.core.editing.values import format_tsv, tsv_to_values
from paramedit.core.errors import ParameditError
from paramedit.core.session import Session
from paramedit.qt import prompts
from paramedit.qt.finding_locations import slice_target
from paramedit.qt.heatmap_feeder import HeatmapFeeder, HeatmapSource
from paramedit.qt.heatmap_view import HeatmapView
from paramedit.qt.number_format import NumberFormat
from paramedit.qt.row_image_view import RowImageView
from paramedit.qt.selection_edit_dialog import SelectionEdit
from paramedit.qt.slice_controls_widget import SliceControlsWidget
from paramedit.qt.table_options_widget import TableOptionsWidget
from paramedit.qt.tensor_table_model import TensorTableModel
from paramedit.qt.tensor_table_view import TensorTableView

HEATMAP_DELAY_MS = 120  # typing into cells should not re-render a big heatmap per keystroke


class TensorEditorWidget(QWidget):
    """Table + heatmap + N-D slice controls for one tensor of a session."""

    statusMessage = Signal(str)  # something the status bar should say (refusals, copies, pastes)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._session: Session | None = None
        self.header = QLabel("", objectName="tensorHeader", textFormat=Qt.TextFormat.RichText)
        self.header.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        # It may be cut on a narrow window rather than make the whole window wider (its full text
        # is its tooltip).
        self.header.setMinimumWidth(120)
        self.header.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.slice_controls = SliceControlsWidget(self)
        self.slice_controls.sliceChanged.connect(self._slice_changed)

        self.model = TensorTableModel(self)
        self.table = TensorTableView(self)
        self.table.setModel(self.model)
        self.heatmap = HeatmapView(self)
        self.feeder = HeatmapFeeder(self.model, self.heatmap, self)
        self.feeder.statusMessage.connect(self.statusMessage)
        # Slots are bound methods, never lambdas holding self: a lambda in a child's connection
        # keeps this widget (and its pyqtgraph heatmap) alive until Qt is torn down at exit.
        self.model.editRejected.connect(self.statusMessage)
        self.model.editAccepted.connect(self._edit_accepted)
        self.table.copyRequested.connect(self.copy_selection)
        self.table.pasteRequested.connect(self.paste)
        self.table.selectionRectChanged.connect(self._selection_changed)
        self.heatmap.cellClicked.connect(self.table.select_cell)
        self.row_image = RowImageView(self.model, self.table, self)

        self.options = TableOptionsWidget(self)
        o = self.options  # its actions are the window's too (View menu, compare bar)
        self.colour_action, self.edited_action, self.gradient_action = o.colour_action, o.edited_action, o.gradient_action
        self.difference_action, self.reference_action = o.difference_action, o.reference_action
        self.format_actions, self.format_button, self.decimals_spin = o.format_actions, o.format_button, o.decimals_spin
        self.colour_action.toggled.connect(self.model.set_colour_values)
        self.edited_action.toggled.connect(self.model.set_show_edited)
        o.formatChanged.connect(self.model.set_number_format)
        o.formatChanged.connect(self._format_changed)
        o.sourceChanged.connect(self._source_changed)
        self.image_action = o.image_action
        self.image_action.toggled.connect(self._image_toggled)
        self.picture_stack = QStackedWidget(self)  # the heatmap, or the current row as an image
        self.picture_stack.addWidget(self.heatmap)
        self.picture_stack.addWidget(self.row_image)
        self.splitter = QSplitter(Qt.Orientation.Horizontal, self)
        self.splitter.setObjectName("tableHeatmapSplitter")
        self.splitter.addWidget(self.table)
        self.splitter.addWidget(self.picture_stack)
        self.splitter.setStretchFactor(0, 3)
        self.splitter.setStretchFactor(1, 2)
        self.splitter.setSizes([620, 400])
        self.splitter.setChildrenCollapsible(False)

        editor = QWidget()
        layout = QVBoxLayout(editor)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(4)
        top = QHBoxLayout()
        top.addWidget(self.header, 1)
        top.addWidget(self.options)
        layout.addLayout(top)
        layout.addWidget(self.slice_controls)
        layout.addWidget(self.splitter, 1)

        placeholder = QLabel("Select a tensor in the tree to see and edit its values.", objectName="editorPlaceholder")
        placeholder.setAlignment(Qt.AlignmentFlag.AlignCenter)
        placeholder.setStyleSheet("color: palette(placeholder-text); font-size: 13pt;")
        self.stack = QStackedWidget(self)
        self.stack.addWidget(placeholder)
        self.stack.addWidget(editor)
        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        outer.addWidget(self.stack)

        self._heatmap_timer = QTimer(self, singleShot=True, interval=HEATMAP_DELAY_MS)
        self._heatmap_timer.timeout.connect(self.refresh_heatmap_now)
        self.heatmap.resampleWanted.connect(self._heatmap_timer.start)

    # ------------------------------------------------------------------ options
    def set_number_format(self, style: NumberFormat) -> None:
        self.options.set_number_format(style)

    def _format_changed(self, _style: NumberFormat, _decimals: int) -> None:
        self.table.fit_columns()

    def _image_toggled(self, on: bool) -> None:
        self.picture_stack.setCurrentWidget(self.row_image if on else self.heatmap)
        if on:
            self.row_image.refresh()

    def _source_changed(self, source: HeatmapSource) -> None:
        self.feeder.source = source
        self.model.set_show_reference(source is HeatmapSource.REFERENCE)
        self._update_header()
        self.refresh_heatmap_now()

    def _edit_accepted(self, where: str) -> None:
        self.statusMessage.emit(f"staged {where}")

    # ------------------------------------------------------------------ what is shown
    def set_session(self, session: Session | None) -> None:
        self._session = session
        self.feeder.scan, self.feeder.focus = None, None
        self.set_comparison(None)
        self.gradient_action.setChecked(False)
        self.set_backward_available(session is not None and session.last_backward is not None)
        self.show_tensor(None)

    @property
    def current_name(self) -> str:
        return self.model.name

    def show_tensor(self, name: str | None) -> None:
        """Show ``name`` from its first slice (None: the placeholder)."""
        if self._session is None or not name:
            self.model.set_tensor(None)
            self.heatmap.clear()
            self.stack.setCurrentIndex(0)
            return
        if self.feeder.focus is not None and self.feeder.focus[0] != name:
            self.feeder.focus = None
        try:
            info = self._session.info(name)
            self.slice_controls.set_shape(info.shape)
            self._apply_slice(reset=True, name=name)
        except ParameditError as exc:
            self.statusMessage.emit(exc.message)
            return
        self.stack.setCurrentIndex(1)
        self.table.scrollToTop()
        self._update_header()
        self.refresh_heatmap_now()
        if self.image_action.isChecked():
            self.row_image.refresh()

    def _apply_slice(self, *, reset: bool = False, name: str | None = None) -> None:
        sc = self.slice_controls
        row_dim = sc.row_dim() if sc.row_dim() >= 0 else None
        col_dim = sc.col_dim() if sc.col_dim() >= 0 else None
        if reset:
            self.model.set_tensor(self._session, name or self.model.name, row_dim=row_dim, col_dim=col_dim,
                                  fixed=sc.fixed())
        else:
            self.model.set_slice(row_dim, col_dim, sc.fixed())

    def _slice_changed(self) -> None:
        self._apply_slice()
        self._update_header()
        self.refresh_heatmap_now()

    def refresh(self, edited_names: set[str] | None = None) -> None:
        """The session's values or staged edits changed."""
        if not self.model.name:
            return
        try:
            self.model.refresh(edited_names=edited_names)
        except ParameditError as exc:
            self.statusMessage.emit(exc.message)
        self._update_header()
        self._heatmap_timer.start()
        if self.image_action.isChecked():
            self.row_image.refresh()

    def set_backward_available(self, available: bool) -> None:
        self.gradient_action.setEnabled(available)
        self.gradient_action.setToolTip("Show the gradient of the last backward check instead of the values"
                                        if available else "Run the backward check (F5) first")
        if not available:
            self.gradient_action.setChecked(False)

    def _update_header(self) -> None:
        info = self.model.info
        if info is None or self._session is None:
            self.header.setText("")
            return
        shape = "×".join(map(str, info.shape)) or "scalar"
        bits = [info.kind + (" (frozen)" if info.frozen else ""), str(info.dtype).removeprefix("torch."), shape,
                str(info.device)]
        text = f"<b>{info.name}</b>&nbsp;&nbsp;<span style='color:#666'>{' · '.join(bits)}</span>"
        if len(info.shape) >= 3:
            text += f"&nbsp;&nbsp;slice <code>{self.model.region_text()}</code>"
        if info.aliases:
            text += f"&nbsp;&nbsp;<span style='color:#666'>tied: {', '.join(info.aliases)}</span>"
        if info.read_only:
            text += f"&nbsp;&nbsp;<span style='color:#b3261e'>read-only: {info.read_only}</span>"
        if self.model.showing_reference:
            text += "&nbsp;&nbsp;<span style='color:#8a4baf; font-weight:600'>showing A (read-only)</span>"
        self.header.setText(text)
        self.header.setToolTip(text)

    def refresh_heatmap_now(self) -> None:
        self._heatmap_timer.stop()
        self.feeder.refresh()
        self._selection_changed(self.table.selection_rect())

    # ------------------------------------------------------------------ scan and comparison
    def set_scan_report(self, report: ScanReport | None) -> None:
        """The findings to mark on the heatmap (redrawn soon)."""
        self.feeder.scan = report
        if self.model.name:
            self._heatmap_timer.start()

    def set_comparison(self, report: CompareReport | None) -> None:
        """Compare with ``report``'s reference (A): B − A and A become available (None: stop)."""
        self.feeder.comparison = report
        self.options.set_comparing(report is not None)
        self.model.set_reference(report)
        self._update_header()
        if self.model.name:
            self._heatmap_timer.start()

    def show_finding(self, finding: Finding) -> bool:
        """Show the slice that holds ``finding``, make its cell (or row, or column) the table's
        current index and point at it on the heatmap; False when its tensor is not shown."""
        if self._session is None:
            return False
        if self.model.name != finding.tensor:
            self.show_tensor(finding.tensor)
        if self.model.name != finding.tensor or self.model.info is None:
            return False
        ndim = len(self.model.info.shape)
        target = slice_target(finding, ndim, self.model.row_dim, self.model.col_dim, self.model.fixed)
        self.slice_controls.set_fixed_indices(target.fixed)  # redraws once when the slice changes
        self.feeder.focus = (finding.tensor, target.row, target.col)
        self.table.go_to(target.row, target.col)
        self.heatmap.set_focus(target.row, target.col)
        return True

    def _selection_changed(self, rect: tuple[tuple[int, int], tuple[int, int]] | None) -> None:
        if rect is None:
            self.heatmap.set_selection(None, None)
        else:
            self.heatmap.set_selection(rect[0], rect[1])

    # ------------------------------------------------------------------ selection edits
    def _selection(self) -> tuple[tuple[int, int], tuple[int, int]] | None:
        """The selection rectangle, or None after telling the user why it cannot be used."""
        if self._session is None or not self.model.name:
            self.statusMessage.emit("select a tensor first")
            return None
        rect = self.table.selection_rect()
        if rect is None:
            self.statusMessage.emit("select one or more cells first")
            return None
        if not self.table.selection_is_rectangle():
            self.statusMessage.emit("the selection is not a rectangle: select one block of cells")
            return None
        return rect

    def copy_selection(self) -> bool:
        rect = self._selection()
        if rect is None:
            return False
        try:
            text = format_tsv(self.model.block_values(*rect))
        except ParameditError as exc:
            self.statusMessage.emit(exc.message)
            return False
        QGuiApplication.clipboard().setText(text)
        rows, cols = rect[0][1] - rect[0][0], rect[1][1] - rect[1][0]
        self.statusMessage.emit(f"copied {rows}×{cols} cells as tab-separated text")
        return True

    def paste(self) -> bool:
        """Stage the clipboard's TSV block at the selection (whose shape it must match when it is bigger than one cell)."""
        rect = self._selection()
        if rect is None or self.model.info is None or self._session is None:
            return False
        (r0, r1), (c0, c1) = rect
        name, where = self.model.name, self.model.name
        try:
            block = tsv_to_values(QGuiApplication.clipboard().text(), self.model.info.dtype)
            h, w = block.shape
            if (r1 - r0, c1 - c0) != (1, 1) and (r1 - r0, c1 - c0) != (h, w):
                raise ParameditError(f"pasted {h}×{w} cells, but the selection is {r1 - r0}×{c1 - c0}")
            if r0 + h > self.model.rowCount() or c0 + w > self.model.columnCount():
                raise ParameditError(f"pasted {h}×{w} cells do not fit from row {r0}, column {c0} of a "
                                     f"{self.model.rowCount()}×{self.model.columnCount()} table")
            region = self.model.region_text((r0, r0 + h), (c0, c0 + w))
            where = f"{name}{region}"
            self._session.stage(name, region, self.model.to_region_layout(block))
        except ParameditError as exc:
            self.statusMessage.emit(f"paste refused: {exc.message}")
            return False
        self._select_rect((r0, r0 + h), (c0, c0 + w))
        self.statusMessage.emit(f"staged paste of {h}×{w} cells into {where}")
        return True

    def _select_rect(self, rows: tuple[int, int], cols: tuple[int, int]) -> None:
        top_left = self.model.index(rows[0], cols[0])
        selection = QItemSelection(top_left, self.model.index(rows[1] - 1, cols[1] - 1))
        self.table.selectionModel().select(selection, QItemSelectionModel.SelectionFlag.ClearAndSelect)

    def edit_selection(self, mode: str) -> bool:
        """Fill / Formula / Init / Copy over the selection's rectangle (a dialog asks for the details),
        or over the pixels selected in the row shown as an image."""
        if self.image_action.isChecked() and self.row_image.pixel_selection is not None:
            return self._edit_pixels(mode)
        rect = self._selection()
        if rect is None or self.model.info is None or self._session is None:
            return False
        region = self.model.region_text(*rect)
        checkpoint = self._session.checkpoint
        folder = str(checkpoint.path.parent) if checkpoint is not None else ""
        return prompts.ask_selection_edit(self, f"{self.model.name}{region}", self.model.info.dtype,
                                          lambda edit: self.stage_selection_edit(edit, region), mode,
                                          tensor_name=self.model.name, folder=folder)

    def _edit_pixels(self, mode: str) -> bool:
        if self._session is None or self.model.info is None or mode == "copy":
            self.statusMessage.emit("copy works on a table selection, not on pixels of an image")
            return False
        regions = "; ".join(self.row_image.regions())
        return prompts.ask_selection_edit(self, self.row_image.describe_selection(), self.model.info.dtype,
                                          lambda edit: self.stage_pixels_edit(edit, regions), mode,
                                          tensor_name=self.model.name)

    def stage_pixels_edit(self, edit: SelectionEdit, regions: str) -> None:
        """Stage a fill/formula/init over ``regions`` (one per image row), all or none (raises ParameditError)."""
        assert self._session is not None
        name = self.model.name
        if edit.op == "fill":
            self._session.stage_regions(name, regions, edit.value)
        elif edit.op == "formula":
            self._session.stage_regions(name, regions, op="formula", expr=edit.expr or "", seed=edit.seed)
        else:
            self._session.stage_regions(name, regions, op="init", method=edit.method or "", args=edit.args,
                                        seed=edit.seed)
        self.statusMessage.emit(f"staged {edit.op} of {name}{regions}")

    def stage_selection_edit(self, edit: SelectionEdit, region: str) -> None:
        """Stage a fill/formula/init/copy over ``region`` of the shown tensor (raises ParameditError)."""
        assert self._session is not None
        name = self.model.name
        if edit.op == "fill":
            self._session.stage(name, region, edit.value)
        elif edit.op == "formula":
            self._session.stage_formula(name, region, edit.expr or "", seed=edit.seed)
        elif edit.op == "copy":
            self._session.stage_copy(name, region, source=edit.source, source_name=edit.source_name,
                                     source_index=edit.source_index)
        else:
            self._session.stage_init(name, region, edit.method or "", edit.args, seed=edit.seed)
        self.statusMessage.emit(f"staged {edit.op} of {name}{region}")
