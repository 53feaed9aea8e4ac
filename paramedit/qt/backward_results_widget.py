"""The backward check's result: a verdict sentence and, per parameter, gradient status and norm."""

from __future__ import annotations

from html import escape

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QColor, QIcon
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHeaderView,
    QLabel,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from paramedit.core.model.backward_check import BackwardReport
from paramedit.qt.grad_status import COLORS, MEANINGS, GradStatus, grad_status, status_icon, verdict_status

HEADERS = ("Parameter", "Status", "Grad norm")
MARKS = {GradStatus.OK: "✔", GradStatus.ZERO: "⚠"}


class BackwardResultsWidget(QWidget):
    """Results panel; double-clicking a row asks to show that parameter."""

    parameterActivated = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.verdict = QLabel("Run the backward check (Model > Run Backward Check, F5) to see whether every "
                              "trainable parameter receives a gradient.", objectName="backwardVerdict", wordWrap=True)
        self.verdict.setTextFormat(Qt.TextFormat.RichText)
        self.table = QTableWidget(0, len(HEADERS), self, objectName="backwardTable")
        self.table.setHorizontalHeaderLabels(list(HEADERS))
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.verticalHeader().setVisible(False)
        self.table.setAlternatingRowColors(True)
        self.table.setShowGrid(False)
        self.table.verticalHeader().setDefaultSectionSize(self.fontMetrics().height() + 8)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(2, QHeaderView.ResizeMode.ResizeToContents)
        self.table.cellDoubleClicked.connect(lambda row, _col: self.parameterActivated.emit(self.table.item(row, 0).text()))
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)
        layout.addWidget(self.verdict)
        layout.addWidget(self.table, 1)
        self._stale = False

    def set_report(self, report: BackwardReport | None) -> None:
        # The previous check's figures stay beside the new ones (issue 12).
        self._previous, self._current = getattr(self, "_current", None), report
        self.table.setRowCount(0)
        self._stale = False
        if report is None:
            return
        overall = verdict_status(report)
        colour = COLORS[overall]
        mark = MARKS.get(overall, "✘")
        zero = report.zero_grad
        # Zero is not a pass: say what usually causes it, under the verdict that names them.
        explain = (f"<br><span style='color:{COLORS[GradStatus.ZERO]}'>'{GradStatus.ZERO.value}': a step on this "
                   "input would not change them. Usual causes: a zeroed layer after them, dead activations, "
                   "an output the loss ignores.</span>") if zero else ""
        self.verdict.setText(f"<span style='color:{colour}; font-weight:600'>{mark} {escape(report.verdict())}</span>"
                             + explain
                             + f"<br><span style='color:#666'>loss {report.loss:.6g} "
                             f"({escape(report.objective or report.reduction + ' of the outputs')}) on {report.device}"
                             + (f"; the check before: loss {self._previous.loss:.6g}, "
                                f"{len(self._previous.missing_grad)} without a gradient, {len(self._previous.zero_grad)} zero"
                                if self._previous is not None and self._previous is not report else "")
                             + "</span>"
                             + "".join(f"<br><span style='color:#666'>note: {escape(n)}</span>" for n in report.notes))
        self.verdict.setProperty("verdictStatus", overall.value)
        self.table.setRowCount(len(report.params))
        for row, param in enumerate(report.params):
            status = grad_status(param)
            name = QTableWidgetItem(param.name)
            state = QTableWidgetItem(status.value)
            state.setIcon(status_icon(status) or QIcon())
            state.setForeground(QColor(COLORS[status]))
            state.setToolTip(MEANINGS[status])
            norm = QTableWidgetItem("—" if param.grad_norm is None else f"{param.grad_norm:.4g}")
            norm.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
            for col, item in enumerate((name, state, norm)):
                self.table.setItem(row, col, item)

    def mark_stale(self) -> None:
        """The weights changed after this check: say so, once, above the (kept) results."""
        if self.table.rowCount() == 0 or self._stale:
            return
        self._stale = True
        self.verdict.setText("<span style='color:#9a6700; font-weight:600'>⚠ The weights changed since this "
                             "check: these results are from before. Run it again (F5).</span><br>"
                             + self.verdict.text())

    def is_stale(self) -> bool:
        return self._stale

    def verdict_text(self) -> str:
        return self.verdict.text()
