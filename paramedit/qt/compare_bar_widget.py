"""The bar above the editor while a comparison is on: what A is, how much differs, and the
toggles for the difference view, for showing A, comparing again and clearing."""

from __future__ import annotations

from html import escape

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QToolButton, QWidget

from paramedit.core.analysis.checkpoint_compare import CompareReport


class CompareBarWidget(QFrame):
    """``compareBar``: hidden while nothing is compared."""

    def __init__(self, actions: list[QAction], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("compareBar")
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.setStyleSheet("QFrame#compareBar { background: #eef3fb; border: 1px solid #b8c9e6; border-radius: 4px; }"
                           "QToolButton:checked { background: palette(highlight); color: palette(highlighted-text);"
                           " border-radius: 3px; }")
        self.label = QLabel("", objectName="compareSummary", wordWrap=True)
        self.label.setTextFormat(Qt.TextFormat.RichText)
        row = QHBoxLayout(self)
        row.setContentsMargins(8, 4, 8, 4)
        row.addWidget(self.label, 1)
        self.buttons: list[QToolButton] = []
        for action in actions:
            button = QToolButton(objectName="compareBarButton")
            button.setDefaultAction(action)
            button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextOnly)
            row.addWidget(button)
            self.buttons.append(button)
        self.setVisible(False)

    def show_report(self, report: CompareReport | None, what: str, *, stale: bool = False) -> None:
        """Say what B is compared with (``what``: A in words) and how much differs."""
        self.setVisible(report is not None)
        if report is None:
            self.label.setText("")
            return
        c = report.summary_counts()
        parts = [f"{c['changed']} changed", f"{c['same']} same"]
        parts += [f"{c['only_a']} only in A"] * bool(c["only_a"]) + [f"{c['only_b']} not in A"] * bool(c["only_b"])
        text = (f"<b>Comparing with A = {escape(what)}</b> (B is the model): {', '.join(parts)}; "
                f"largest |B − A| {report.scale():.3g}")
        if stale:
            text += "<br><span style='color:#9a6700'>⚠ The model changed since: the tree's figures are from before "
            text += "(the heatmap and table read B as it is now). Compare again to update them.</span>"
        self.label.setText(text)
        self.label.setToolTip(f"A: {report.a}\nB: {report.b}")
