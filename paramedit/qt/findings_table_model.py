"""A thin table model over a :class:`ScanReport`: one row per finding, most severe first."""

from __future__ import annotations

import math
from typing import Any

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QObject, QPersistentModelIndex, Qt
from PySide6.QtGui import QBrush, QColor

from paramedit.core.analysis.health_scan import Finding, ScanReport
from paramedit.qt.finding_icons import SEVERITY_COLOURS, severity_icon

COLUMNS = ("Severity", "Tensor", "What", "Where", "Count", "Value")
FINDING_ROLE = Qt.ItemDataRole.UserRole + 1  # the Finding of the row
WHAT = {"nan": "NaN", "inf": "Inf", "outlier": "outlier", "dead_row": "dead row", "dead_column": "dead column",
        "constant": "constant"}  # fmt: skip
AnyIndex = QModelIndex | QPersistentModelIndex
_RIGHT = int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)


def value_text(finding: Finding) -> str:
    """The finding's value as a cell shows it (NaN, ±inf, 1e+04, 0)."""
    v = finding.value
    if v is None:
        return ""
    if math.isnan(v):
        return "NaN"
    if math.isinf(v):
        return "inf" if v > 0 else "-inf"
    return f"{v:.4g}"


class FindingsTableModel(QAbstractTableModel):
    """Severity, tensor, what, where, count and value of every finding, in the report's order
    (errors, then warnings, then info)."""

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._findings: list[Finding] = []

    def set_report(self, report: ScanReport | None) -> None:
        self.beginResetModel()
        self._findings = list(report.findings) if report is not None else []
        self.endResetModel()

    def finding(self, row: int) -> Finding | None:
        return self._findings[row] if 0 <= row < len(self._findings) else None

    def row_of(self, tensor: str, kind: str) -> int:
        """The row of the first finding of ``kind`` in ``tensor`` (-1 when there is none)."""
        return next((i for i, f in enumerate(self._findings) if f.tensor == tensor and f.kind == kind), -1)

    # ------------------------------------------------------------------ Qt model
    def rowCount(self, parent: AnyIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self._findings)

    def columnCount(self, parent: AnyIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(COLUMNS)

    def headerData(self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole and 0 <= section < len(COLUMNS):
            return COLUMNS[section]
        return None

    def flags(self, index: AnyIndex) -> Qt.ItemFlag:
        if not index.isValid():
            return Qt.ItemFlag.NoItemFlags
        return Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable

    def data(self, index: AnyIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or not 0 <= index.row() < len(self._findings):
            return None
        f, col = self._findings[index.row()], index.column()
        if role == Qt.ItemDataRole.DisplayRole:
            return (f.severity, f.tensor, WHAT.get(f.kind, f.kind), f.index, f"{f.count:,}", value_text(f))[col]
        if role == FINDING_ROLE:
            return f
        if role == Qt.ItemDataRole.ToolTipRole:
            return f.describe() + "\nDouble-click or press Enter to show it"
        if role == Qt.ItemDataRole.DecorationRole and col == 0:
            return severity_icon(f.severity)
        if role == Qt.ItemDataRole.ForegroundRole and col == 0:
            return QBrush(QColor(SEVERITY_COLOURS.get(f.severity, SEVERITY_COLOURS["info"])))
        if role == Qt.ItemDataRole.TextAlignmentRole and col in (4, 5):
            return _RIGHT
        return None
