"""The ``tensorTable`` view: fetches visible tiles before painting, and knows its selection rectangle."""

from __future__ import annotations

from PySide6.QtCore import QEvent, QItemSelection, QItemSelectionModel, QObject, QSize, Qt, Signal
from PySide6.QtGui import QKeyEvent, QKeySequence
from PySide6.QtWidgets import (
    QAbstractItemDelegate,
    QAbstractItemView,
    QHeaderView,
    QStyledItemDelegate,
    QTableView,
    QWidget,
)

from paramedit.qt.tensor_table_model import TensorTableModel

Rect = tuple[tuple[int, int], tuple[int, int]]  # (row0, row1), (col0, col1), half-open


class _CellDelegate(QStyledItemDelegate):
    """Ctrl+Return in a cell editor stages the typed value and asks for a commit at once.

    (The Commit action cannot catch it: it is disabled until something is staged.)
    """

    commitRequested = Signal()

    def eventFilter(self, editor: QObject, event: QEvent) -> bool:
        if (event.type() == QEvent.Type.KeyPress and isinstance(event, QKeyEvent)
                and event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter)
                and event.modifiers() & Qt.KeyboardModifier.ControlModifier and isinstance(editor, QWidget)):
            self.commitData.emit(editor)
            self.closeEditor.emit(editor, QAbstractItemDelegate.EndEditHint.NoHint)
            self.commitRequested.emit()
            return True
        return super().eventFilter(editor, event)


class _IndexHeaderView(QHeaderView):
    """Row or column numbers, sized from the longest number alone.

    QHeaderView's own size hint reads the header data of the first and last 100 sections (a
    thousand Python calls) after every model reset; the longest label here is the last index.
    """

    def __init__(self, orientation: Qt.Orientation, parent: QWidget | None = None) -> None:
        super().__init__(orientation, parent)
        self.setSectionsClickable(True)  # as QTableView's own headers: a click selects the row/column
        self.setHighlightSections(True)
        self._hint: tuple[tuple, QSize] | None = None

    def sizeHint(self) -> QSize:
        n = self.count()
        if n == 0:
            return super().sizeHint()
        key = (n, self.font().key())
        if self._hint is None or self._hint[0] != key:
            hint = self.sectionSizeFromContents(n - 1)
            if self.orientation() == Qt.Orientation.Vertical:
                fm, last = self.fontMetrics(), str(n - 1)
                widest = max(fm.horizontalAdvance(d * len(last)) for d in "0123456789")
                hint.setWidth(hint.width() + max(0, widest - fm.horizontalAdvance(last)))
            self._hint = (key, hint)
        return QSize(self._hint[1])


class TensorTableView(QTableView):
    """A table whose model is a :class:`TensorTableModel`; Ctrl+C / Ctrl+V copy and paste TSV."""

    copyRequested = Signal()
    pasteRequested = Signal()
    commitRequested = Signal()  # Ctrl+Return while typing into a cell
    selectionRectChanged = Signal(object)  # Rect | None

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("tensorTable")
        self.setVerticalHeader(_IndexHeaderView(Qt.Orientation.Vertical, self))
        self.setHorizontalHeader(_IndexHeaderView(Qt.Orientation.Horizontal, self))
        delegate = _CellDelegate(self)
        delegate.commitRequested.connect(self.commitRequested)
        self.setItemDelegate(delegate)
        self.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.setEditTriggers(QAbstractItemView.EditTrigger.DoubleClicked
                             | QAbstractItemView.EditTrigger.EditKeyPressed
                             | QAbstractItemView.EditTrigger.AnyKeyPressed)
        self.setWordWrap(False)
        self.setTextElideMode(Qt.TextElideMode.ElideRight)
        self.setHorizontalScrollMode(QAbstractItemView.ScrollMode.ScrollPerPixel)
        self.setVerticalScrollMode(QAbstractItemView.ScrollMode.ScrollPerItem)
        for header in (self.horizontalHeader(), self.verticalHeader()):
            # Fixed sizes: computing sizes from contents would visit every row of a huge tensor.
            header.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
            header.setHighlightSections(True)
        self.horizontalHeader().setMinimumSectionSize(24)
        self.verticalHeader().setDefaultAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        self.fit_columns()

    def setModel(self, model: QObject | None) -> None:  # type: ignore[override]
        super().setModel(model)
        if self.selectionModel() is not None:
            # A bound method, not a lambda holding self: that would keep the view alive until exit.
            self.selectionModel().selectionChanged.connect(self._emit_selection_rect)
        if isinstance(model, TensorTableModel):
            model.modelReset.connect(self.fit_columns)

    def fit_columns(self) -> None:
        """Columns as wide as the number format in use needs (compact: many columns; stored: every
        digit), rows as tall as the font: after a new tensor, format or zoom."""
        model = self.table_model()
        text = model.widest_text() if model is not None else "-0.000895577660"
        fm = self.fontMetrics()
        header = self.horizontalHeader()
        width = max(fm.horizontalAdvance(text), fm.horizontalAdvance("0" * len(str(max(0, header.count() - 1))))) + 8
        header.setDefaultSectionSize(width)
        self.verticalHeader().setDefaultSectionSize(fm.height() + 8)

    def changeEvent(self, event: QEvent) -> None:
        super().changeEvent(event)
        if event.type() == QEvent.Type.FontChange:  # zoom
            self.fit_columns()

    def _emit_selection_rect(self, _selected: QItemSelection, _deselected: QItemSelection) -> None:
        self.selectionRectChanged.emit(self.selection_rect())

    def table_model(self) -> TensorTableModel | None:
        model = self.model()
        return model if isinstance(model, TensorTableModel) else None

    # ------------------------------------------------------------------ lazy fetching
    def viewportEvent(self, event: QEvent) -> bool:
        if event.type() == QEvent.Type.Paint:
            self.prefetch_visible()
        return super().viewportEvent(event)

    def prefetch_visible(self) -> None:
        """Make sure the cells about to be painted are in the model's cache."""
        model = self.table_model()
        if model is None or model.rowCount() == 0 or model.columnCount() == 0:
            return
        rect = self.viewport().rect()
        first_row = max(self.rowAt(0), 0)
        last_row = self.rowAt(rect.height() - 1)
        first_col = max(self.columnAt(0), 0)
        last_col = self.columnAt(rect.width() - 1)
        last_row = model.rowCount() - 1 if last_row < 0 else last_row
        last_col = model.columnCount() - 1 if last_col < 0 else last_col
        model.ensure_cells(first_row, last_row, first_col, last_col)

    # ------------------------------------------------------------------ selection
    def selection_rect(self) -> Rect | None:
        """The selection's bounding rectangle, or None when nothing is selected."""
        ranges = self.selectionModel().selection() if self.selectionModel() else []
        if not ranges:
            current = self.currentIndex()
            if not current.isValid():
                return None
            return (current.row(), current.row() + 1), (current.column(), current.column() + 1)
        top = min(r.top() for r in ranges)
        bottom = max(r.bottom() for r in ranges)
        left = min(r.left() for r in ranges)
        right = max(r.right() for r in ranges)
        return (top, bottom + 1), (left, right + 1)

    def select_cell(self, row: int, col: int) -> None:
        """Make (row, col) the current, only selected cell and scroll to it."""
        model = self.model()
        if model is None or not (0 <= row < model.rowCount() and 0 <= col < model.columnCount()):
            return
        index = model.index(row, col)
        self.selectionModel().setCurrentIndex(index, QItemSelectionModel.SelectionFlag.ClearAndSelect)
        self.scrollTo(index, QAbstractItemView.ScrollHint.PositionAtCenter)

    def go_to(self, row: int | None, col: int | None) -> None:
        """Select a cell (both given), a whole row (``col`` None) or a whole column (``row``
        None), make its first cell the current index and scroll to it."""
        model = self.model()
        r, c = (0 if row is None else row), (0 if col is None else col)
        if model is None or not (0 <= r < model.rowCount() and 0 <= c < model.columnCount()):
            return
        flags = QItemSelectionModel.SelectionFlag.ClearAndSelect
        if row is not None and col is None:
            flags |= QItemSelectionModel.SelectionFlag.Rows
        elif col is not None and row is None:
            flags |= QItemSelectionModel.SelectionFlag.Columns
        index = model.index(r, c)
        self.selectionModel().setCurrentIndex(index, flags)
        self.scrollTo(index, QAbstractItemView.ScrollHint.PositionAtCenter)
        # Scrolled by pixels, the centred column leaves a cut column at the left edge whose
        # right-aligned numbers run into the row numbers: start at a whole column instead.
        first = self.columnAt(0)
        if first >= 0 and first != c and self.columnViewportPosition(first) < 0:
            bar = self.horizontalScrollBar()
            bar.setValue(bar.value() + self.columnViewportPosition(first + 1))

    def commit_open_editor(self) -> None:
        """Hand a cell editor's text to the model now (Ctrl+Return commits while a cell is open)."""
        if self.state() != QAbstractItemView.State.EditingState:
            return
        # Cell editors are the viewport's visible child widgets.
        for editor in self.viewport().findChildren(QWidget, options=Qt.FindChildOption.FindDirectChildrenOnly):
            if editor.isVisible():
                self.commitData(editor)
                self.closeEditor(editor, QAbstractItemDelegate.EndEditHint.NoHint)

    def keyPressEvent(self, event: QKeyEvent) -> None:
        if event.matches(QKeySequence.StandardKey.Copy):
            self.copyRequested.emit()
            return
        if event.matches(QKeySequence.StandardKey.Paste):
            self.pasteRequested.emit()
            return
        super().keyPressEvent(event)
