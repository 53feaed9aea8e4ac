"""Driving the main window as a user would (issue 3's GUI tests share these)."""

from __future__ import annotations

from PySide6.QtCore import QItemSelectionModel, QPointF, Qt
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QLineEdit

from paramedit.qt.main_window import MainWindow


def select_tensor(window: MainWindow, qtbot, name: str) -> None:
    """Pick ``name`` in the parameter tree through its selection model, as a click would."""
    tree = window.tree
    index = tree.proxy.mapFromSource(tree.tree_model.index_for_name(name))
    assert index.isValid(), name
    tree.view.selectionModel().setCurrentIndex(index, QItemSelectionModel.SelectionFlag.ClearAndSelect)
    qtbot.waitUntil(lambda: window.editor.model.name == name, timeout=2000)


def table_text(window: MainWindow, row: int, col: int) -> str | None:
    """What the cell shows (in the number format in use: compact by default)."""
    model = window.editor.model
    window.editor.table.prefetch_visible()
    return model.data(model.index(row, col))


def cell_edit_text(window: MainWindow, row: int, col: int) -> str | None:
    """What the cell's editor starts with: the stored value, every digit."""
    model = window.editor.model
    window.editor.table.prefetch_visible()
    return model.data(model.index(row, col), Qt.ItemDataRole.EditRole)


def type_into_cell(window: MainWindow, qtbot, row: int, col: int, text: str) -> None:
    """Open the cell's editor, type ``text`` and press Enter."""
    table = window.editor.table
    index = table.model().index(row, col)
    table.setCurrentIndex(index)
    table.scrollTo(index)
    table.edit(index)
    qtbot.waitUntil(lambda: _open_editor(table) is not None, timeout=2000)
    editor = _open_editor(table)
    assert editor is not None
    editor.selectAll()
    qtbot.keyClicks(editor, text)
    qtbot.keyClick(editor, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: _open_editor(table) is None, timeout=2000)


def _open_editor(table) -> QLineEdit | None:
    editors = [e for e in table.findChildren(QLineEdit) if e.isVisible()]
    return editors[0] if editors else None


def action(window: MainWindow, name: str) -> QAction:
    found = window.findChild(QAction, name)
    assert found is not None, name
    return found


def select_cells(window: MainWindow, rows: tuple[int, int], cols: tuple[int, int]) -> None:
    """Select the half-open block rows x cols in the table."""
    from PySide6.QtCore import QItemSelection

    table, model = window.editor.table, window.editor.model
    selection = QItemSelection(model.index(rows[0], cols[0]), model.index(rows[1] - 1, cols[1] - 1))
    table.selectionModel().setCurrentIndex(model.index(rows[0], cols[0]), QItemSelectionModel.SelectionFlag.NoUpdate)
    table.selectionModel().select(selection, QItemSelectionModel.SelectionFlag.ClearAndSelect)


def heatmap_click(window: MainWindow, qtbot, row: int, col: int) -> None:
    """Click the heatmap pixel of tensor cell (row, col) of the shown slice."""
    heatmap = window.editor.heatmap
    qtbot.wait(1)
    heatmap.grab()  # view boxes apply their geometry lazily, on paint
    scene = heatmap.image_item().mapToScene(QPointF(col + 0.5, row + 0.5))
    pos = heatmap.graphics_view().mapFromScene(scene)
    qtbot.mouseClick(heatmap.graphics_view().viewport(), Qt.MouseButton.LeftButton, pos=pos)
