"""The Findings tab: what the health scan found, one row per finding, most severe first.

Activating a row (double-click, Enter) asks the window to show it: the tensor, the slice that
holds it, the cell (or row) as the table's current index and a mark on the heatmap.
"""

from __future__ import annotations

from PySide6.QtCore import QModelIndex, Qt, Signal
from PySide6.QtGui import QAction
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QTableView,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from paramedit.core.analysis.health_scan import Finding, ScanReport
from paramedit.qt.findings_table_model import FindingsTableModel

NOT_SCANNED = ("Not scanned yet. Scan (Analyze > Scan for NaN, Inf and Outliers) reads every value once and "
               "lists each NaN, Inf, outlier, all-zero row or column and constant tensor with where it is.")


FIT_ROWS = 200


class FindingsPanel(QWidget):
    """A summary line and the ``findingsTable`` view over a :class:`FindingsTableModel`."""

    findingActivated = Signal(object)  # Finding

    def __init__(self, scan_action: QAction, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.summary = QLabel(NOT_SCANNED, objectName="findingsSummary", wordWrap=True)
        self.summary.setTextFormat(Qt.TextFormat.RichText)
        button = QToolButton(objectName="findingsScanButton")
        button.setDefaultAction(scan_action)
        button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextOnly)
        top = QHBoxLayout()
        top.addWidget(self.summary, 1)
        top.addWidget(button, 0, Qt.AlignmentFlag.AlignTop)

        self.model = FindingsTableModel(self)
        self.view = QTableView(self, objectName="findingsTable")
        self.view.setModel(self.model)
        self.view.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.view.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.view.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.view.verticalHeader().setVisible(False)
        self.view.verticalHeader().setDefaultSectionSize(self.fontMetrics().height() + 8)
        self.view.setAlternatingRowColors(True)
        self.view.setShowGrid(False)
        self.view.setWordWrap(False)
        header = self.view.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.Interactive)
        header.setStretchLastSection(True)
        self.view.activated.connect(self._activated)

        # Fitting the tensor column reads the first rows only: a model with thousands of findings
        # made every re-scan after a commit cost the window 30 ms for this alone.
        self.view.horizontalHeader().setResizeContentsPrecision(FIT_ROWS)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)
        layout.addLayout(top)
        layout.addWidget(self.view, 1)

    def set_report(self, report: ScanReport | None, note: str = "") -> None:
        """Show ``report`` (None: not scanned, ``note`` says why)."""
        self.model.set_report(report)
        if report is None:
            self.summary.setText(note or NOT_SCANNED)
            return
        counts = report.counts()
        colour = "#b3261e" if counts["error"] else "#9a6700" if counts["warning"] else "#2e7d32"
        mark = "✘" if counts["error"] else "⚠" if counts["warning"] else "✔"
        text = f"<span style='color:{colour}; font-weight:600'>{mark} {report.summary()}</span>"
        if report.skipped:
            text += f"<br><span style='color:#666'>{len(report.skipped)} not scanned (not floating point)</span>"
        if note:
            text += f"<br><span style='color:#666'>{note}</span>"
        self.summary.setText(text)
        self.view.resizeColumnToContents(1)

    def activate_row(self, row: int) -> bool:
        """Select ``row`` and show its finding, as a double-click does; False when there is none."""
        index = self.model.index(row, 0)
        if not index.isValid():
            return False
        self.view.setCurrentIndex(index)
        self.view.activated.emit(index)
        return True

    def _activated(self, index: QModelIndex) -> None:
        finding: Finding | None = self.model.finding(index.row())
        if finding is not None:
            self.findingActivated.emit(finding)
