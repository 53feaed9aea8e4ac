"""The right pane's top: the selected tensor as a table and a heatmap of the same 2-D slice."""

from __future__ import annotations

from PySide6.QtCore import QItemSelection, QItemSelectionModel, Qt, QTimer, Signal
from PySide6.QtGui import QAction, QActionGroup, QGuiApplication
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QSizePolicy,
    QSpinBox,
    QSplitter,
    QStackedWidget,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from paramedit.core.editing.values import format_tsv, tsv_to_values
from paramedit.core.errors import ParameditError
from paramedit.core.session import Session
from paramedit.qt import prompts
from paramedit.qt.heatmap_data import sampling_steps
from paramedit.qt.heatmap_view import HeatmapView
from paramedit.qt.number_format import NumberFormat
from paramedit.qt.selection_edit_dialog import SelectionEdit
from paramedit.qt.slice_controls_widget import SliceControlsWidget
from paramedit.qt.tensor_table_model import TensorTableModel
from paramedit.qt.tensor_table_view import TensorTableView

HEATMAP_DELAY_MS = 120  # typing into cells should not re-render a big heatmap per keystroke


#: What the format button says for each style.
SHORT_FORMAT_NAMES = {NumberFormat.STORED: "Stored", NumberFormat.GENERAL: "6 digits",
                      NumberFormat.FIXED: "Fixed", NumberFormat.SCIENTIFIC: "Scientific"}

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
        # Slots are bound methods, never lambdas holding self: a lambda in a child's connection
        # keeps this widget (and its pyqtgraph heatmap) alive until Qt is torn down at exit.
        self.model.editRejected.connect(self.statusMessage)
        self.model.editAccepted.connect(self._edit_accepted)
        self.table.copyRequested.connect(self.copy_selection)
        self.table.pasteRequested.connect(self.paste)
        self.table.selectionRectChanged.connect(self._selection_changed)
        self.heatmap.cellClicked.connect(self.table.select_cell)

        self._build_actions()
        self.splitter = QSplitter(Qt.Orientation.Horizontal, self)
        self.splitter.setObjectName("tableHeatmapSplitter")
        self.splitter.addWidget(self.table)
        self.splitter.addWidget(self.heatmap)
        self.splitter.setStretchFactor(0, 3)
        self.splitter.setStretchFactor(1, 2)
        self.splitter.setSizes([550, 440])
        self.splitter.setChildrenCollapsible(False)

        editor = QWidget()
        layout = QVBoxLayout(editor)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(4)
        top = QHBoxLayout()
        top.addWidget(self.header, 1)
        top.addWidget(self._options_bar())
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

    # ------------------------------------------------------------------ actions and options
    def _build_actions(self) -> None:
        self.colour_action = QAction("Colour cells by value", self, checkable=True, objectName="colourCellsAction")
        self.colour_action.setIconText("Colour")
        self.colour_action.toggled.connect(self.model.set_colour_values)
        self.edited_action = QAction("Highlight cells changed from checkpoint", self, checkable=True,
                                     objectName="showEditedAction")
        self.edited_action.setIconText("Changed")
        self.edited_action.setToolTip("Highlight (green) the cells whose value differs from the checkpoint")
        self.edited_action.toggled.connect(self.model.set_show_edited)
        self.gradient_action = QAction("Show gradient in heatmap", self, checkable=True, objectName="gradientAction")
        self.gradient_action.setIconText("Gradient")
        self.gradient_action.setEnabled(False)
        self.gradient_action.setToolTip("Run the backward check (F5) first")
        self.gradient_action.toggled.connect(self._gradient_toggled)
        self.format_group = QActionGroup(self)
        self.format_actions: dict[NumberFormat, QAction] = {}
        for style in NumberFormat:
            action = QAction(style.value, self.format_group, checkable=True)
            action.setChecked(style is NumberFormat.STORED)
            self.format_actions[style] = action
        self.format_group.triggered.connect(self._format_triggered)

    def _options_bar(self) -> QWidget:
        bar = QWidget()
        row = QHBoxLayout(bar)
        row.setContentsMargins(0, 0, 0, 0)
        row.setSpacing(2)
        fmt = QToolButton(objectName="numberFormatButton")
        fmt.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        fmt.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextOnly)
        fmt.setToolTip("How the table writes numbers")
        fmt.addActions(list(self.format_actions.values()))
        self.format_button = fmt
        self.decimals_spin = QSpinBox(objectName="decimalsSpin", minimum=0, maximum=12, value=4)
        self.decimals_spin.setToolTip("Decimals for the fixed and scientific formats")
        self.decimals_spin.setSuffix(" dp")
        self.decimals_spin.valueChanged.connect(self._decimals_changed)
        row.addWidget(fmt)
        row.addWidget(self.decimals_spin)
        for action in (self.colour_action, self.edited_action, self.gradient_action):
            button = QToolButton(objectName="tableToggle")
            button.setDefaultAction(action)  # shows the action's short iconText
            row.addWidget(button)
        # A toggle that is on must look on: the platform style only tints it faintly.
        bar.setStyleSheet("QToolButton#tableToggle:checked { background: palette(highlight); "
                          "color: palette(highlighted-text); border-radius: 3px; }"
                          "QToolButton#numberFormatButton::menu-indicator { image: none; width: 0; }")
        self._show_number_format(NumberFormat.STORED)
        return bar

    def set_number_format(self, style: NumberFormat) -> None:
        self.format_actions[style].setChecked(True)
        self.model.set_number_format(style, self.decimals_spin.value())
        self._show_number_format(style)

    def _show_number_format(self, style: NumberFormat) -> None:
        self.format_button.setText(SHORT_FORMAT_NAMES[style] + " ▾")
        # Decimals mean something only for the fixed and scientific styles.
        self.decimals_spin.setEnabled(style in (NumberFormat.FIXED, NumberFormat.SCIENTIFIC))

    def _format_triggered(self, action: QAction) -> None:
        style = next(s for s, a in self.format_actions.items() if a is action)
        self.set_number_format(style)

    def _decimals_changed(self, decimals: int) -> None:
        self.model.set_number_format(self.model.style, decimals)

    def _gradient_toggled(self, _on: bool) -> None:
        self.refresh_heatmap_now()

    def _edit_accepted(self, where: str) -> None:
        self.statusMessage.emit(f"staged {where}")

    # ------------------------------------------------------------------ what is shown
    def set_session(self, session: Session | None) -> None:
        self._session = session
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
        self.header.setText(text)
        self.header.setToolTip(text)

    def refresh_heatmap_now(self) -> None:
        self._heatmap_timer.stop()
        session, name = self._session, self.model.name
        if session is None or not name:
            self.heatmap.clear()
            return
        region = self.model.region_text()
        title = name if region == "[...]" else f"{name}{region}"
        # Unless the user asks for every row: a strided sample about the plot's size in pixels (a
        # 50257 x 768 embedding is read as every 126th row and 2nd column), so the cost is the screen's.
        shape = (self.model.rowCount(), self.model.columnCount())
        steps = (1, 1) if self.heatmap.every_row() else sampling_steps(shape, self.heatmap.sampling_limits())
        try:
            if self.gradient_action.isChecked():
                grad = session.tensor(name).grad
                if grad is None:
                    self.heatmap.set_mode_label("gradient")
                    why = "it is frozen" if not session.tensor(name).requires_grad else "none reached it"
                    self.heatmap.clear(f"{name} has no gradient from the last backward check ({why})")
                    self.statusMessage.emit(f"{name} has no gradient from the last backward check")
                    return
                sample = grad.detach()[self.model.slice_index(steps=steps)].to("cpu", copy=True)
                self.heatmap.set_mode_label("gradient")
            else:
                sample, _mask = session.preview(name, self.model.region_text(steps=steps))
                self.heatmap.set_mode_label("values")
        except ParameditError as exc:
            self.statusMessage.emit(exc.message)
            return
        self.heatmap.set_values(self.model.to_table_layout(sample), title=title, stride=steps, full_shape=shape)
        self._selection_changed(self.table.selection_rect())

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
        """Fill / Formula / Init / Copy over the selection's rectangle (a dialog asks for the details)."""
        rect = self._selection()
        if rect is None or self.model.info is None or self._session is None:
            return False
        region = self.model.region_text(*rect)
        checkpoint = self._session.checkpoint
        folder = str(checkpoint.path.parent) if checkpoint is not None else ""
        return prompts.ask_selection_edit(self, f"{self.model.name}{region}", self.model.info.dtype,
                                          lambda edit: self.stage_selection_edit(edit, region), mode,
                                          tensor_name=self.model.name, folder=folder)

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
