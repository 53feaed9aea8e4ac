"""Issue 13, "a history that tells the truth": the Committed list shows what Undo took back,
greyed out below a line, until Redo brings it back or a new commit drops it."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QPalette

from paramedit.qt.parameter_tree_model import MARKER_ROLE
from paramedit.qt.staged_edits_widget import HISTORY_STATE_ROLE, SEPARATOR_TEXT, undone_colour
from tests.qt.window_helpers import action


def _rows(window) -> list[tuple[str, str, bool]]:
    """(text, state, enabled) of each row of the Committed list, top to bottom."""
    history = window.findChild(type(window.staged_panel.history_list), "commitHistoryList")
    rows = []
    for i in range(history.count()):
        item = history.item(i)
        rows.append((item.text(), item.data(HISTORY_STATE_ROLE), bool(item.flags() & Qt.ItemFlag.ItemIsEnabled)))
    return rows


def _commit(window, target: str, index: str, value: float) -> None:
    window.session.stage(target, index, value)
    action(window, "commitAction").trigger()


def test_undo_and_redo_move_commits_across_the_line(window):
    _commit(window, "mlp.0.weight", "[0, :]", 0.0)
    _commit(window, "mlp.0.bias", "[1]", 2.5)
    _commit(window, "norm.bias", "[...]", 1.0)
    width = window.session.tensor("mlp.0.weight").shape[1]
    norm = window.session.tensor("norm.bias").numel()
    assert _rows(window) == [
        (f"#1  set mlp.0.weight[0, :] = 0.0  ·  {width} values", "applied", True),
        ("#2  set mlp.0.bias[1] = 2.5  ·  1 value", "applied", True),
        (f"#3  set norm.bias = 1.0  ·  {norm} values", "applied", True),
    ]
    assert window.staged_panel.history_label.text() == "<b>Committed</b> (3 commits)"

    action(window, "undoAction").trigger()
    action(window, "undoAction").trigger()
    rows = _rows(window)
    assert [(state, enabled) for _t, state, enabled in rows] == [
        ("applied", True), ("separator", False), ("undone", False), ("undone", False)]
    assert rows[1][0] == SEPARATOR_TEXT
    # The next Redo brings back #2, so it comes first below the line.
    assert rows[2][0].startswith("#2  set mlp.0.bias[1]") and rows[3][0].startswith("#3  set norm.bias")
    history = window.staged_panel.history_list
    assert history.item(2).foreground().color() == undone_colour(history.palette()) != history.palette().color(
        QPalette.ColorRole.Text)
    assert history.item(2).font().italic() and not history.item(0).font().italic()
    assert window.staged_panel.history_label.text() == "<b>Committed</b> (1 commit, 2 undone)"

    action(window, "redoAction").trigger()
    assert [(t[:3], state) for t, state, _e in _rows(window)] == [
        ("#1 ", "applied"), ("#2 ", "applied"), (SEPARATOR_TEXT[:3], "separator"), ("#3 ", "undone")]

    _commit(window, "mlp.2.bias", "[0]", -1.0)  # a new commit drops what Redo could bring back
    assert [(t[:3], state, enabled) for t, state, enabled in _rows(window)] == [
        ("#1 ", "applied", True), ("#2 ", "applied", True), ("#3 ", "applied", True)]
    assert _rows(window)[2][0].startswith("#3  set mlp.2.bias[0] = -1.0")
    assert not window.session.can_redo and not action(window, "redoAction").isEnabled()


def test_a_commit_of_several_edits_lists_each_with_its_count(window):
    window.session.stage("mlp.0.bias", "[0:2]", 0.5)
    window.session.stage("norm.weight", "[0]", 3.0)
    action(window, "commitAction").trigger()
    action(window, "undoAction").trigger()
    texts = [t for t, state, _e in _rows(window) if state == "undone"]
    assert texts == ["#1  set mlp.0.bias[0:2] = 0.5  ·  2 values", "#1  set norm.weight[0] = 3.0  ·  1 value"]


def test_a_tensor_whose_only_commit_was_undone_is_not_marked_edited(window):
    tree = window.tree.tree_model

    def marker(name: str) -> str:
        return tree.data(tree.index_for_name(name), MARKER_ROLE)

    assert marker("mlp.0.bias") == ""
    _commit(window, "mlp.0.bias", "[0]", 9.0)
    assert marker("mlp.0.bias") == "edited"
    action(window, "undoAction").trigger()
    assert marker("mlp.0.bias") == ""
    action(window, "redoAction").trigger()
    assert marker("mlp.0.bias") == "edited"
