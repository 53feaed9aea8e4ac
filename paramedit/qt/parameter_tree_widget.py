"""The left pane: a filter box above the ``parameterTree`` view, with its context menu."""

from __future__ import annotations

from PySide6.QtCore import QEvent, QModelIndex, QPoint, QSize, Qt, QTimer, Signal
from PySide6.QtGui import QGuiApplication, QResizeEvent
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHeaderView,
    QLineEdit,
    QMenu,
    QTreeView,
    QVBoxLayout,
    QWidget,
)

from paramedit.core.analysis.checkpoint_compare import CompareReport
from paramedit.core.analysis.health_scan import ScanReport
from paramedit.core.session import Session
from paramedit.qt.parameter_filter_proxy_model import ParameterFilterProxyModel
from paramedit.qt.parameter_tree_model import COMPARE_COLUMNS, SORT_ROLE, ParameterTreeModel

#: Most of the tree's width the name column takes when even that cuts its names.
NAME_SHARE = 0.8


class ParameterTreeWidget(QWidget):
    """Tree of modules and tensors; emits the name of the tensor the user picks."""

    tensorSelected = Signal(str)
    revertRequested = Signal(str)
    statsRequested = Signal(str)
    nameCopied = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.tree_model = ParameterTreeModel(self)
        self.proxy = ParameterFilterProxyModel(self)
        self.proxy.setSourceModel(self.tree_model)
        self.proxy.setSortRole(SORT_ROLE)
        # Re-sorting and re-filtering on every dataChanged is for a sorted view (a comparison);
        # a filter is re-applied when its text changes.
        self.proxy.setDynamicSortFilter(False)

        self.filter_edit = QLineEdit(self)
        self.filter_edit.setObjectName("treeFilter")
        self.filter_edit.setPlaceholderText("Filter tensors: mlp, *.bias, embed.*")
        self.filter_edit.setClearButtonEnabled(True)
        self.filter_edit.textChanged.connect(self._filter_changed)

        self.view = QTreeView(self)
        self.view.setObjectName("parameterTree")
        self.view.setModel(self.proxy)
        self.view.setUniformRowHeights(True)
        self.view.setIndentation(14)
        self.view.setAlternatingRowColors(True)
        self.view.setIconSize(QSize(26, 12))  # a gradient dot and a finding's triangle side by side
        self.view.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.view.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.view.customContextMenuRequested.connect(self._context_menu)
        self.view.selectionModel().currentChanged.connect(self._current_changed)
        header = self.view.header()
        # Shape, dtype, device and kind take their contents' width (Qt measures only the rows on
        # screen, so this stays cheap for many tensors). The name column is the user's to resize:
        # it takes its contents' width, so no name is cut while the pane has room (the other
        # columns scroll); only in a pane narrower than a name is it cut, at NAME_SHARE.
        header.setStretchLastSection(True)
        # Qt measures up to 1000 rows by default, on every layout: a 7B model's 450 rows cost
        # ~1.5 s before the first paint. 0 measures the rows on screen only.
        header.setResizeContentsPrecision(0)
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Interactive)
        self.show_comparison(None)
        # Marks (bold edited names, icons) widen names: fit the column again once they are drawn.
        self._fit_timer = QTimer(self, singleShot=True, interval=0)
        self._fit_timer.timeout.connect(self.fit_name_column)
        self.tree_model.dataChanged.connect(self._marks_changed)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 0, 6)
        layout.setSpacing(4)
        layout.addWidget(self.filter_edit)
        layout.addWidget(self.view)

    def set_session(self, session: Session | None) -> None:
        self.tree_model.set_session(session)
        self.view.expandAll()
        self.fit_name_column()
        QTimer.singleShot(0, self.fit_name_column)  # again once the window's layout has sized the view

    def show_findings(self, report: ScanReport | None) -> None:
        """Mark the tensors with error or warning findings (None: no marks)."""
        self.tree_model.set_findings(report)
        if report is not None and report.findings:
            self.fit_name_column()  # the marks make some names wider

    def show_comparison(self, report: CompareReport | None) -> None:
        """Show the change columns, sortable by a click on their header (None: hide them and
        go back to the model's own order)."""
        self.tree_model.set_comparison(report)
        header = self.view.header()
        for visual, col in enumerate(COMPARE_COLUMNS, start=1):
            header.setSectionHidden(col, report is None)
            # Right after the name: the figures a comparison is for stay in sight on a narrow tree.
            header.moveSection(header.visualIndex(col), visual)
        self.proxy.setDynamicSortFilter(report is not None)
        if report is None:
            self.view.setSortingEnabled(False)
            self.proxy.sort(-1)  # the model's order again
        elif not self.view.isSortingEnabled():
            # No sort until a header is clicked (-1 is the model's order; descending would reverse it).
            header.setSortIndicator(-1, Qt.SortOrder.AscendingOrder)
            self.view.setSortingEnabled(True)
        self.view.expandAll()

    def sort_by(self, column: int, order: Qt.SortOrder = Qt.SortOrder.DescendingOrder) -> None:
        """Sort by a column, as a click on its header does."""
        self.view.sortByColumn(column, order)

    def fit_name_column(self) -> None:
        """Size the name column to its contents (at most NAME_SHARE of a view too narrow for them)."""
        self.view.resizeColumnToContents(0)
        cap = int(self.view.viewport().width() * NAME_SHARE)
        if cap > 80 and self.view.header().sectionSize(0) > cap:
            self.view.header().resizeSection(0, cap)

    def _marks_changed(self, *_args: object) -> None:
        self._fit_timer.start()

    def changeEvent(self, event: QEvent) -> None:
        super().changeEvent(event)
        if event.type() == QEvent.Type.FontChange:  # zoom: names got wider or narrower
            QTimer.singleShot(0, self, self.fit_name_column)

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        if event.oldSize().width() != event.size().width():
            self.fit_name_column()  # a pane that grew has room for the names it had to cut

    def current_name(self) -> str | None:
        return self.tree_model.name_for_index(self.proxy.mapToSource(self.view.currentIndex()))

    def select_name(self, name: str) -> bool:
        """Make ``name`` the current row (clears the filter if it hides it); False if unknown."""
        source = self.tree_model.index_for_name(name)
        if not source.isValid():
            return False
        index = self.proxy.mapFromSource(source)
        if not index.isValid():
            self.filter_edit.clear()
            index = self.proxy.mapFromSource(source)
        self.view.setCurrentIndex(index)
        self.view.scrollTo(index)
        return True

    def _filter_changed(self, text: str) -> None:
        self.proxy.set_pattern(text)
        self.view.expandAll()

    def _current_changed(self, current: QModelIndex, _previous: QModelIndex) -> None:
        name = self.tree_model.name_for_index(self.proxy.mapToSource(current))
        if name is not None:
            self.tensorSelected.emit(name)

    def _context_menu(self, pos: QPoint) -> None:
        index = self.view.indexAt(pos)
        name = self.tree_model.name_for_index(self.proxy.mapToSource(index))
        if name is None:
            return
        self.context_menu_for(name).popup(self.view.viewport().mapToGlobal(pos))

    def context_menu_for(self, name: str) -> QMenu:
        """The tensor's context menu: revert to checkpoint, copy name, stats."""
        menu = QMenu(self)
        menu.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        menu.addAction("Revert to checkpoint", lambda: self.revertRequested.emit(name))
        menu.addAction("Copy name", lambda: self._copy_name(name))
        menu.addAction("Stats…", lambda: self.statsRequested.emit(name))
        return menu

    def _copy_name(self, name: str) -> None:
        QGuiApplication.clipboard().setText(name)
        self.nameCopied.emit(name)
