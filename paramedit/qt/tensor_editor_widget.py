"""The right pane's top: the selected tensor as a table and a heatmap of the same 2-D slice.

It also goes to a scan finding (the slice that holds it, the cell or row as the table's current
index, a mark on the heatmap) and, while a comparison is on, shows B − A or A instead of B.
"""

from __future__ import annotations

from PySide6.QtCore import Qt, QTimer, Signal
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
from paramedit.core.errors import ParameditError
from paramedit.core.session import Session
from paramedit.qt.finding_locations import slice_target
from paramedit.qt.heads_bar_widget import HeadsBarWidget
from paramedit.qt.heads_controller import HeadsController
from paramedit.qt.heatmap_feeder import HeatmapFeeder, HeatmapSource
from paramedit.qt.heatmap_view import HeatmapView
from paramedit.qt.kernel_montage_view import KernelMontageView
from paramedit.qt.number_format import NumberFormat
from paramedit.qt.region_box_widget import RegionBoxWidget
from paramedit.qt.region_selection_controller import RegionSelectionController
from paramedit.qt.row_image_view import RowImageView
from paramedit.qt.selection_edit_controller import SelectionEditController
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
        self.heatmap.cellClicked.connect(self.table.select_cell)
        self.row_image = RowImageView(self.model, self.table, self)
        self.region_box = RegionBoxWidget(self)
        self.region_box.setVisible(False)  # shown with a tensor (its height counts before the first show)
        self._region_box_wanted = True
        self.selection = RegionSelectionController(self.model, self.table, self.heatmap, self.slice_controls,
                                                   self.region_box, self)
        self.heads_bar = HeadsBarWidget(self)
        self.heads = HeadsController(self.model, self.selection, self.heads_bar, self)
        self.heads.statusMessage.connect(self.statusMessage)
        self.heads.viewChanged.connect(self._window_changed)
        self.region_box.heads_button.clicked.connect(self.split_into_heads)

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
        self.image_action, self.kernels_action = o.image_action, o.kernels_action
        self.image_action.toggled.connect(self._picture_toggled)
        self.kernels_action.toggled.connect(self._picture_toggled)
        self.montage = KernelMontageView(self)
        self.montage.kernelClicked.connect(self.show_kernel)
        self.montage.outputChannelsSelected.connect(self.select_output_channels)
        self.edits = SelectionEditController(self.model, self.selection, self.row_image, self.image_action, self)
        self.edits.statusMessage.connect(self.statusMessage)
        self.picture_stack = QStackedWidget(self)  # the heatmap, or the current row as an image
        self.picture_stack.addWidget(self.heatmap)
        self.picture_stack.addWidget(self.row_image)
        self.picture_stack.addWidget(self.montage)
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
        layout.addWidget(self.region_box)
        layout.addWidget(self.heads_bar)
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

    def _picture_toggled(self, _on: bool) -> None:
        self._update_picture(new_tensor=False)

    def _shows_kernels(self) -> bool:
        info = self.model.info
        return info is not None and len(info.shape) == 4 and info.shape[2] * info.shape[3] > 1

    def _update_picture(self, *, new_tensor: bool) -> None:
        """The row as an image, the kernel montage (4-D weights with kernels bigger than 1×1), or
        the heatmap."""
        kernels = self._shows_kernels()
        self.options.set_kernels_available(kernels)
        if self.image_action.isChecked():
            self.picture_stack.setCurrentWidget(self.row_image)
            self.row_image.refresh()
        elif kernels and self.kernels_action.isChecked() and self._session is not None:
            if new_tensor or self.picture_stack.currentWidget() is not self.montage:
                self.montage.set_tensor(self._session.tensor(self.model.name), self.model.name)
            self.picture_stack.setCurrentWidget(self.montage)
        else:
            self.picture_stack.setCurrentWidget(self.heatmap)

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
        self.selection.clear()
        self.heads.tensor_changed()
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
        self.region_box.setVisible(self._region_box_wanted)
        self.region_box.heads_button.setVisible(len(info.shape) in (1, 2))  # projections and their biases
        self.table.scrollToTop()
        self._update_header()
        self.refresh_heatmap_now()
        self._update_picture(new_tensor=True)

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
        self.heads.slice_changed()
        self.selection.refresh()

    def _window_changed(self) -> None:
        self._update_header()
        self.refresh_heatmap_now()

    def split_into_heads(self) -> bool:
        """Show the tensor as attention heads (q/k/v × head × head_dim) and pick a head by name."""
        return self.heads.split()

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
        elif self.picture_stack.currentWidget() is self.montage:
            self.montage.refresh()

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
        if self.heads.describe():
            text += f"&nbsp;&nbsp;<b>{self.heads.describe()}</b>"
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
        self.selection.refresh_outline()

    # ------------------------------------------------------------------ scan and comparison
    def set_scan_report(self, report: ScanReport | None) -> None:
        """The findings to mark on the heatmap: on the slice drawn now, unless a redraw is due anyway
        (reading a large tensor's sample again cost the GUI thread ~25 ms after every re-scan)."""
        self.feeder.scan = report
        if self.model.name and not self._heatmap_timer.isActive():
            self.feeder.remark()

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

    # ------------------------------------------------------------------ selection edits
    def show_kernel(self, out_channel: int, in_channel: int) -> None:
        """A tile of the montage: that kernel ``[o, i, :, :]`` in the table."""
        self.slice_controls.set_view(2, 3, {0: out_channel, 1: in_channel})
        self.montage.select_output_channels([])  # the selection is no longer those channels
        self.montage.set_current_kernel(out_channel, in_channel)
        if self.montage.rgb_check.isVisible() and self.montage.rgb_check.isChecked():
            self.statusMessage.emit(f"kernel [{out_channel}, 0]: an RGB tile is 3 kernels; the table shows input "
                                    "channel 0 (dim 1 picks the others, or untick RGB)")

    def select_output_channels(self, channels: list[int]) -> bool:
        """Rows of the montage: whole output channels ``[o, :, :, :]`` as the selection."""
        return self.select_regions("; ".join(f"[{o}, :, :, :]" for o in channels)) if channels else False

    def set_region_box_wanted(self, on: bool) -> None:
        """Show the region box with a tensor (the presentation layout cannot spare its row)."""
        self._region_box_wanted = on
        self.region_box.setVisible(on and bool(self.model.name))

    def go_to_region(self) -> None:
        """Ctrl+G: type a cell or region (several separated by ';') into the region box."""
        if self.model.name:
            self.region_box.setVisible(True)
            self.region_box.focus()
        else:
            self.statusMessage.emit("select a tensor first")

    def select_regions(self, text: str) -> bool:
        """Select the regions ``text`` names, as typing them into the region box and Enter would."""
        self.region_box.edit.setText(text)
        return self.selection.select_text(text)

    def copy_selection(self) -> bool:
        return self.edits.copy_cells()

    def paste(self) -> bool:
        """Stage the clipboard's TSV block at the selection, or into every selected region."""
        return self.edits.paste()

    def edit_selection(self, mode: str) -> bool:
        """Fill / Formula / Init / Copy over every selected region (a dialog asks for the details),
        or over the pixels selected in the row shown as an image."""
        return self.edits.edit(mode)
