"""Under the heatmap: what the scan found in the shown block (and NaN/Inf drawn) on a line of
its own that wraps and is never cut, then the hover readout and the stats line (elided)."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QHBoxLayout, QLabel, QSizePolicy, QVBoxLayout, QWidget
from superqt import QElidingLabel

SEVERITY_COLOURS = {"error": "#b3261e", "warning": "#9a6700", "info": "#5f6368"}


class HeatmapFooterWidget(QWidget):
    """``heatmapFindings``, ``heatmapHover`` and ``heatmapStats``."""

    def __init__(self, muted: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.findings_label = QLabel("", objectName="heatmapFindings", wordWrap=True)
        self.findings_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.findings_label.setContentsMargins(4, 0, 4, 0)
        self.findings_label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.findings_label.setVisible(False)
        self.hover_label = QLabel(" ", objectName="heatmapHover")
        self.stats_label = QElidingLabel("", objectName="heatmapStats", styleSheet=muted)
        self.stats_label.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        self.stats_label.setWordWrap(True)  # two lines rather than cut, where there is room
        bottom = QHBoxLayout()
        bottom.setContentsMargins(4, 0, 4, 0)
        bottom.addWidget(self.hover_label)
        bottom.addWidget(self.stats_label, 1)
        column = QVBoxLayout(self)
        column.setContentsMargins(0, 0, 0, 0)
        column.setSpacing(2)
        column.addWidget(self.findings_label)
        column.addLayout(bottom)

    def set_findings(self, text: str, severity: str = "info") -> None:
        # Only what changed: most redraws have nothing to say and should cost no Qt call here.
        label = self.findings_label
        if label.text() != text:
            label.setText(text)
            label.setVisible(bool(text))
        style = f"color: {SEVERITY_COLOURS.get(severity, SEVERITY_COLOURS['info'])}; font-weight: 600;"
        if text and label.styleSheet() != style:
            label.setStyleSheet(style)

    def set_stats(self, text: str, tooltip: str = "") -> None:
        self.stats_label.setText(text)
        self.stats_label.setToolTip(tooltip)

    def set_hover(self, text: str) -> None:
        self.hover_label.setText(text or " ")
