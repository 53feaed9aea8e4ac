"""The heatmap's header: what is shown and of which tensor, and how it is coloured and reduced."""

from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QCheckBox, QComboBox, QHBoxLayout, QLabel, QVBoxLayout, QWidget
from superqt import QElidingLabel

from paramedit.qt.heatmap_data import DIVERGING, SEQUENTIAL
from paramedit.qt.heatmap_reduce import REDUCTIONS

REDUCTION_TIP = (
    "What a pixel of a big slice shows.\nsample: an even sample of rows and columns (fast; values between "
    "samples are not drawn, but the scan's findings are always marked).\nmean, max |v|, min |v|: every value "
    "is read and each pixel shows its block's mean, its largest magnitude (an outlier shows) or its smallest "
    "magnitude (a zero row shows).")


class HeatmapControlsWidget(QWidget):
    """Mode caption and title on one line (a long slice title stays readable), colour mode,
    clipping and the pixel reduction on the next."""

    levelsOptionChanged = Signal()  # colour mode or clipping
    reductionChanged = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.mode_label = QLabel("values", objectName="heatmapModeLabel", styleSheet="font-weight: bold;")
        self.title_label = QElidingLabel("", objectName="heatmapTitle")
        self.mode_combo = QComboBox(objectName="heatmapColourMode")
        self.mode_combo.addItems([DIVERGING, SEQUENTIAL])
        self.mode_combo.setToolTip("Diverging: white is 0, levels ±m. Sequential: min..max.")
        self.clip_check = QCheckBox("clip 99.5%", objectName="heatmapClip", checked=True)
        self.clip_check.setToolTip("Levels at the 99.5th percentile of |values| (off: the extremes)")
        self.reduction_combo = QComboBox(objectName="heatmapReduction")
        self.reduction_combo.addItems(list(REDUCTIONS))
        self.reduction_combo.setToolTip(REDUCTION_TIP)
        title_row = QHBoxLayout()
        title_row.setSpacing(8)
        title_row.addWidget(self.mode_label)
        title_row.addWidget(self.title_label, 1)
        controls = self._controls_row = QHBoxLayout()
        controls.setSpacing(8)
        controls.addStretch(1)
        controls.addWidget(self.mode_combo)
        controls.addWidget(self.clip_check)
        pixel = QLabel("pixel:")
        pixel.setToolTip(REDUCTION_TIP)
        controls.addWidget(pixel)
        controls.addWidget(self.reduction_combo)
        top = QVBoxLayout(self)
        top.setContentsMargins(4, 2, 4, 0)
        top.setSpacing(2)
        top.addLayout(title_row)
        top.addLayout(controls)
        self.mode_combo.currentTextChanged.connect(self.levelsOptionChanged)
        self.clip_check.toggled.connect(self.levelsOptionChanged)
        self.reduction_combo.currentTextChanged.connect(self.reductionChanged)

    def set_compact(self, compact: bool) -> None:
        """Only the title line (presenting)."""
        for i in range(self._controls_row.count()):
            widget = self._controls_row.itemAt(i).widget()
            if widget is not None:
                widget.setVisible(not compact)

    def set_title(self, title: str) -> None:
        self.title_label.setText(title)
        self.title_label.setToolTip(title)

    def colour_mode(self) -> str:
        return self.mode_combo.currentText()

    def clip(self) -> bool:
        return self.clip_check.isChecked()
