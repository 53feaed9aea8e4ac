"""The Outputs panel's table: the top-k of each sample before and after, side by side.

A top-level row is a sample's top-1 class (or next token) before and after; its children are
ranks 2..k. A sample whose top-1 changed is highlighted. An output that is not classes shows
its shape and statistics instead, one row each. A thin adapter over two core ``ProbeResult`` s.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QAbstractItemModel, QModelIndex, QObject, QPersistentModelIndex, Qt
from PySide6.QtGui import QBrush, QColor, QFont

from paramedit.core.model.probe import ProbeResult

AnyIndex = QModelIndex | QPersistentModelIndex
PROB_ROLE = int(Qt.ItemDataRole.UserRole) + 1  # float probability of the cell, for its bar
CHANGED_ROLE = int(Qt.ItemDataRole.UserRole) + 2  # True on a sample whose top-1 changed
HEADERS = ("", "Before", "After")
CHANGED_BRUSH = QBrush(QColor("#fff0b3"))  # light: the bars stay readable on it


def entry_label(entry: dict[str, Any]) -> str:
    """How a class or token is written: its label quoted (spaces show), else its index."""
    label = entry.get("label")
    return repr(label) if isinstance(label, str) else str(entry["index"])


class ProbeTableModel(QAbstractItemModel):
    """Samples (top-1) with their ranks 2..k as children; columns: sample, before, after."""

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._before: ProbeResult | None = None
        self._after: ProbeResult | None = None

    def set_results(self, before: ProbeResult | None, after: ProbeResult | None) -> None:
        self.beginResetModel()
        self._before, self._after = before, after
        self.endResetModel()

    @property
    def classes(self) -> bool:
        return self._after is not None and self._after.classes

    def samples(self) -> int:
        return len(self._after.top_k) if self.classes and self._after is not None else 0

    def changed_samples(self) -> list[int]:
        """Samples whose top-1 differs between before and after."""
        return [i for i in range(self.samples()) if self._changed(i)]

    def _changed(self, sample: int) -> bool:
        b, a = self._entry(self._before, sample, 0), self._entry(self._after, sample, 0)
        return b is not None and a is not None and b["index"] != a["index"]

    @staticmethod
    def _entry(result: ProbeResult | None, sample: int, rank: int) -> dict[str, Any] | None:
        if result is None or not result.classes or sample >= len(result.top_k) or rank >= len(result.top_k[sample]):
            return None
        return result.top_k[sample][rank]

    # ------------------------------------------------------------------ Qt model
    def index(self, row: int, column: int, parent: AnyIndex = QModelIndex()) -> QModelIndex:  # noqa: B008
        if not self.hasIndex(row, column, parent):
            return QModelIndex()
        # internalId: 0 for a top-level row, sample + 1 for a rank under that sample.
        return self.createIndex(row, column, parent.row() + 1 if parent.isValid() else 0)

    def parent(self, index: AnyIndex = QModelIndex()) -> QModelIndex:  # type: ignore[override]  # noqa: B008
        if not index.isValid() or index.internalId() == 0:
            return QModelIndex()
        return self.createIndex(index.internalId() - 1, 0, 0)

    def rowCount(self, parent: AnyIndex = QModelIndex()) -> int:  # noqa: B008
        if self._after is None or parent.column() > 0:
            return 0
        if not parent.isValid():
            return self.samples() if self.classes else 1 + len(self._after.stats)
        if parent.internalId() != 0 or not self.classes:
            return 0
        return max(0, len(self._after.top_k[parent.row()]) - 1)

    def columnCount(self, parent: AnyIndex = QModelIndex()) -> int:  # noqa: B008
        return len(HEADERS)

    def headerData(self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole and 0 <= section < len(HEADERS):
            return HEADERS[section]
        return None

    def flags(self, index: AnyIndex) -> Qt.ItemFlag:
        return Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable if index.isValid() else Qt.ItemFlag.NoItemFlags

    def data(self, index: AnyIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or self._after is None:
            return None
        if not self.classes:
            return self._stats_data(index.row(), index.column(), role)
        top = index.internalId() == 0
        sample = index.row() if top else index.internalId() - 1
        rank = 0 if top else index.row() + 1
        col = index.column()
        changed = top and self._changed(sample)
        if role == CHANGED_ROLE:
            return changed
        if role == Qt.ItemDataRole.BackgroundRole:
            return CHANGED_BRUSH if changed else None
        if role == Qt.ItemDataRole.FontRole and changed:
            font = QFont()
            font.setBold(True)
            return font
        if col == 0:
            if role == Qt.ItemDataRole.DisplayRole:
                return f"sample {sample}" if top else f"#{rank + 1}"
            if role == Qt.ItemDataRole.ToolTipRole and changed:
                return "the top-1 prediction of this sample changed"
            return None
        entry = self._entry(self._before if col == 1 else self._after, sample, rank)
        if entry is None:
            return None
        if role == Qt.ItemDataRole.DisplayRole:
            return f"{entry_label(entry)}  {entry['prob']:.1%}"
        if role == PROB_ROLE:
            return float(entry["prob"])
        if role == Qt.ItemDataRole.ToolTipRole:
            label = f" {entry['label']!r}" if isinstance(entry.get("label"), str) else ""
            return f"class {entry['index']}{label}: p = {entry['prob']:.6g}"
        return None

    def _stats_data(self, row: int, col: int, role: int) -> Any:
        if role != Qt.ItemDataRole.DisplayRole:
            return None
        names = ["shape", *self._after.stats] if self._after is not None else []
        if row >= len(names):
            return None
        name = names[row]
        if col == 0:
            return name
        result = self._before if col == 1 else self._after
        if result is None:
            return None
        if name == "shape":
            return "×".join(map(str, result.shape))
        value = result.stats.get(name)
        return None if value is None else f"{value:.6g}"
