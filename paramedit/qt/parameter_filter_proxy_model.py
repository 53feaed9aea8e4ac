"""Filtering the parameter tree by substring (``mlp``) or glob (``*.bias``, ``embed.*``)."""

from __future__ import annotations

from fnmatch import fnmatchcase

from PySide6.QtCore import QModelIndex, QObject, QPersistentModelIndex, QSortFilterProxyModel

from paramedit.qt.parameter_tree_model import NAME_ROLE

GLOB_CHARS = set("*?[")


def name_matches(name: str, pattern: str) -> bool:
    """Case-insensitive: a glob when the pattern has ``* ? [``, a substring otherwise."""
    pattern = pattern.strip().lower()
    if not pattern:
        return True
    name = name.lower()
    if GLOB_CHARS & set(pattern):
        return fnmatchcase(name, pattern)
    return pattern in name


class ParameterFilterProxyModel(QSortFilterProxyModel):
    """Keeps tensors whose full name matches the pattern, and the modules above them."""

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._pattern = ""
        # A module row stays when any descendant tensor matches; its own name never decides.
        self.setRecursiveFilteringEnabled(True)

    @property
    def pattern(self) -> str:
        return self._pattern

    def set_pattern(self, pattern: str) -> None:
        if hasattr(self, "endFilterChange"):  # Qt >= 6.9; invalidateRowsFilter is deprecated there
            self.beginFilterChange()
            self._pattern = pattern
            self.endFilterChange(QSortFilterProxyModel.Direction.Rows)
        else:
            self._pattern = pattern
            self.invalidateRowsFilter()

    def filterAcceptsRow(self, source_row: int, source_parent: QModelIndex | QPersistentModelIndex) -> bool:
        if not self._pattern.strip():
            return True
        index = self.sourceModel().index(source_row, 0, source_parent)
        name = index.data(NAME_ROLE)
        return isinstance(name, str) and name_matches(name, self._pattern)
