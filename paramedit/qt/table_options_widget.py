"""The editor's option bar: how the table writes numbers, colouring by value, highlighting
changed cells, and what the heatmap shows instead of the values (the gradient, B − A, A).

The toggles are actions, shared with the View menu and the compare bar.
"""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QAction, QActionGroup
from PySide6.QtWidgets import QHBoxLayout, QSpinBox, QToolButton, QWidget

from paramedit.qt.heatmap_feeder import HeatmapSource
from paramedit.qt.number_format import DEFAULT_FORMAT, NumberFormat

#: What the format button says for each style.
SHORT_FORMAT_NAMES = {NumberFormat.COMPACT: "Compact", NumberFormat.STORED: "Stored", NumberFormat.GENERAL: "6 digits",
                      NumberFormat.FIXED: "Fixed", NumberFormat.SCIENTIFIC: "Scientific"}


def _toggle(parent: QWidget, text: str, name: str, short: str, tip: str = "") -> QAction:
    action = QAction(text, parent, checkable=True, objectName=name)
    action.setIconText(short)
    if tip:
        action.setToolTip(tip)
    return action


class TableOptionsWidget(QWidget):
    """Format button, decimals and the toggle buttons of the editor's top row."""

    formatChanged = Signal(object, int)  # NumberFormat, decimals
    sourceChanged = Signal(object)  # HeatmapSource: what the heatmap shows

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.colour_action = _toggle(self, "Colour cells by value", "colourCellsAction", "Colour")
        self.edited_action = _toggle(self, "Highlight cells changed from checkpoint", "showEditedAction", "Changed",
                                     "Highlight (green) the cells whose value differs from the checkpoint")
        self.gradient_action = _toggle(self, "Show gradient in heatmap", "gradientAction", "Gradient",
                                       "Run the backward check (F5) first")
        self.gradient_action.setEnabled(False)
        self.difference_action = _toggle(self, "Show difference B − A", "differenceAction", "B − A",
                                         "Heatmap of B − A (the model minus the reference checkpoint), on one "
                                         "colour scale centred on 0 for every tensor of the comparison")
        self.reference_action = _toggle(self, "Show reference A", "showReferenceAction", "Show A",
                                        "Show the reference checkpoint's values (A) in the table and heatmap "
                                        "instead of the model's (B), on the same colour scale")
        self.image_action = _toggle(self, "View Row as Image", "rowImageAction", "Image",
                                    "Show the current row (or column) as an image, e.g. a 784-long row as 28×28; "
                                    "click a pixel to go to its cell, drag over pixels and Fill (Ctrl+F) them")
        self.kernels_action = _toggle(self, "View Kernels as Montage", "kernelsAction", "Kernels",
                                      "Show every kernel of a 4-D weight as tiles (output channels as rows): click "
                                      "a tile to see it in the table, click an output channel to select it whole")
        self.kernels_action.setChecked(True)
        self.kernels_action.setEnabled(False)
        self.picture_group = QActionGroup(self)  # the row as an image, or the kernels, or neither
        self.picture_group.setExclusionPolicy(QActionGroup.ExclusionPolicy.ExclusiveOptional)
        self.picture_group.addAction(self.image_action)
        self.picture_group.addAction(self.kernels_action)
        self.source_group = QActionGroup(self)
        self.source_group.setExclusionPolicy(QActionGroup.ExclusionPolicy.ExclusiveOptional)
        for action in (self.gradient_action, self.difference_action, self.reference_action):
            self.source_group.addAction(action)
            action.toggled.connect(self._source_toggled)
        self._source = HeatmapSource.VALUES
        self.format_group = QActionGroup(self)
        self.format_actions: dict[NumberFormat, QAction] = {}
        for style in NumberFormat:
            action = QAction(style.value, self.format_group, checkable=True)
            action.setChecked(style is DEFAULT_FORMAT)
            self.format_actions[style] = action
        self.format_group.triggered.connect(self._format_triggered)
        self.style = DEFAULT_FORMAT

        row = QHBoxLayout(self)
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
        for action in (self.colour_action, self.edited_action, self.gradient_action, self.image_action,
                       self.kernels_action):
            button = QToolButton(objectName="tableToggle")
            button.setDefaultAction(action)  # shows the action's short iconText
            row.addWidget(button)
            if action is self.kernels_action:
                self.kernels_button = button
                button.setVisible(False)
        # A toggle that is on must look on: the platform style only tints it faintly.
        self.setStyleSheet("QToolButton#tableToggle:checked { background: palette(highlight); "
                           "color: palette(highlighted-text); border-radius: 3px; }"
                           "QToolButton#numberFormatButton::menu-indicator { image: none; width: 0; }")
        self._show_number_format(DEFAULT_FORMAT)
        self.set_comparing(False)

    def set_kernels_available(self, available: bool) -> None:
        """The Kernels toggle, shown only for a 4-D weight (it stays on or off for the next one)."""
        self.kernels_action.setEnabled(available)
        self.kernels_button.setVisible(available)

    @property
    def source(self) -> HeatmapSource:
        return self._source

    def set_number_format(self, style: NumberFormat) -> None:
        self.format_actions[style].setChecked(True)
        self.style = style
        self._show_number_format(style)
        self.formatChanged.emit(style, self.decimals_spin.value())

    def set_compact(self, compact: bool) -> None:
        """Presenting: without the decimals box, so the row fits a narrow editor."""
        self.decimals_spin.setVisible(not compact)

    def set_comparing(self, on: bool) -> None:
        """B − A and A are there to choose only while a comparison is on."""
        for action in (self.difference_action, self.reference_action):
            if not on:
                action.setChecked(False)
            action.setEnabled(on)

    def _show_number_format(self, style: NumberFormat) -> None:
        self.format_button.setText(SHORT_FORMAT_NAMES[style] + " ▾")
        # Decimals mean something only for the fixed and scientific styles.
        self.decimals_spin.setEnabled(style in (NumberFormat.FIXED, NumberFormat.SCIENTIFIC))

    def _format_triggered(self, action: QAction) -> None:
        self.set_number_format(next(s for s, a in self.format_actions.items() if a is action))

    def _decimals_changed(self, decimals: int) -> None:
        self.formatChanged.emit(self.style, decimals)

    def _source_toggled(self, _on: bool) -> None:
        source = {self.gradient_action: HeatmapSource.GRADIENT, self.difference_action: HeatmapSource.DIFFERENCE,
                  self.reference_action: HeatmapSource.REFERENCE}.get(self.source_group.checkedAction(),
                                                                      HeatmapSource.VALUES)
        if source is not self._source:
            self._source = source
            self.sourceChanged.emit(source)
