"""Staged edits waiting for a commit, the committed history, and the last commit's proof.

The Committed list reads as a history, oldest first: the commits that are applied, then a line,
then the undone ones greyed out in the order Redo brings them back (what the session's redo
stack holds; a new commit after an undo drops them, as the session does).
"""

from __future__ import annotations

from collections.abc import Sequence

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QColor, QPalette
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from paramedit.core.editing.history import CommitRecord
from paramedit.core.session import IdentityCheck, Session

OK_COLOUR, BAD_COLOUR = "#2e7d32", "#b3261e"
#: What a row of the Committed list is: ``"applied"``, ``"undone"`` or ``"separator"``.
HISTORY_STATE_ROLE = Qt.ItemDataRole.UserRole
SEPARATOR_TEXT = "──── undone · Redo brings them back, top first ────"


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


def undone_colour(palette: QPalette) -> QColor:
    """Greyed out but still readable: halfway between the text and the background (the style's
    disabled text is too faint to read what Redo would bring back)."""
    text, base = palette.color(QPalette.ColorRole.Text), palette.color(QPalette.ColorRole.Base)
    return QColor.fromRgbF(*((a + b) / 2 for a, b in zip(text.getRgbF()[:3], base.getRgbF()[:3], strict=True)))


def commit_lines(number: int, record: CommitRecord) -> list[str]:
    """One line per edit of a commit: ``#2  set fc.weight[0, :] = 0.0  ·  8 values`` (what it
    wrote: the tensor, the region and how many values)."""
    atoms = record.atoms if len(record.atoms) == len(record.edits) else [None] * len(record.edits)
    lines = []
    for edit, atom in zip(record.edits, atoms, strict=True):
        count = f"  ·  {_plural(atom.new.numel(), 'value')}" if atom is not None else ""
        lines.append(f"#{number}  {edit.describe()}{count}")
    return lines


def verification_lines(checks: Sequence[IdentityCheck]) -> list[str]:
    """One line per written tensor: ``fc.weight: same object, same storage, still nn.Parameter``."""
    lines = []
    for c in checks:
        kind = "nn.Parameter" if c.was_parameter else "a plain tensor/buffer"
        if c.ok:
            lines.append(f"{c.name}: same object, same storage, still {kind}")
            continue
        problems = [text for ok, text in ((c.same_object, "a different object"),
                                          (c.same_storage, "different storage"),
                                          (c.same_device, "moved device"),
                                          (c.same_dtype, "changed dtype"),
                                          (c.same_requires_grad, "changed requires_grad"),
                                          (c.is_parameter == c.was_parameter, f"no longer {kind}")) if not ok]
        lines.append(f"{c.name}: {', '.join(problems)}")
    return lines


def _list(object_name: str, placeholder: str) -> QListWidget:
    widget = QListWidget(objectName=object_name)
    widget.setAlternatingRowColors(True)
    widget.setToolTip(placeholder)
    return widget


class StagedEditsWidget(QWidget):
    """Lists of staged and committed edits, with Commit / Discard buttons."""

    def __init__(self, commit: QAction, discard: QAction, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.staged_list = _list("stagedEditsList", "Edits you made that are not written to the model yet")
        self.history_list = _list("commitHistoryList", "Committed edits, oldest first (Undo takes back the last "
                                  "commit); below the line, greyed out, the undone ones Redo brings back")
        self.staged_label = QLabel("<b>Staged</b>")
        self.history_label = QLabel("<b>Committed</b>")
        self.verification = QLabel("", objectName="commitVerification", wordWrap=True)
        self.verification.setTextFormat(Qt.TextFormat.RichText)
        self.verification.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)

        buttons = QHBoxLayout()
        buttons.setContentsMargins(0, 0, 0, 0)
        for action in (commit, discard):
            button = QToolButton()
            button.setDefaultAction(action)
            button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
            buttons.addWidget(button)
        buttons.addStretch(1)

        left = QVBoxLayout()
        head = QHBoxLayout()
        head.addWidget(self.staged_label)
        head.addStretch(1)
        head.addLayout(buttons)
        left.addLayout(head)
        left.addWidget(self.staged_list, 1)
        right = QVBoxLayout()
        right.addWidget(self.history_label)
        right.addWidget(self.history_list, 1)
        lists = QHBoxLayout()
        lists.addLayout(left, 1)
        lists.addLayout(right, 1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)
        layout.addLayout(lists, 1)
        layout.addWidget(self.verification)

    def refresh(self, session: Session | None) -> None:
        self.staged_list.clear()
        self.history_list.clear()
        if session is None:
            self.verification.clear()
            self.staged_label.setText("<b>Staged</b>")
            self.history_label.setText("<b>Committed</b>")
            return
        self.staged_list.addItems([e.describe() for e in session.staged])
        self.staged_label.setText(f"<b>Staged</b> ({len(session.staged)})")
        self._fill_history(session.history.records, session.history.undone_records)

    def _fill_history(self, records: list[CommitRecord], undone: list[CommitRecord]) -> None:
        history = self.history_list
        for number, record in enumerate(records, start=1):
            for line in commit_lines(number, record):
                self._history_item(line, "applied")
        if undone:
            line = self._history_item(SEPARATOR_TEXT, "separator")
            line.setFlags(Qt.ItemFlag.NoItemFlags)
            line.setTextAlignment(Qt.AlignmentFlag.AlignCenter)
            grey = undone_colour(history.palette())
            line.setForeground(grey)
            for number, record in enumerate(undone, start=len(records) + 1):
                for text in commit_lines(number, record):
                    item = self._history_item(text, "undone")
                    # Not enabled: drawn greyed out, and a click cannot make it look current.
                    item.setFlags(item.flags() & ~Qt.ItemFlag.ItemIsEnabled)
                    item.setForeground(grey)
                    font = item.font()
                    font.setItalic(True)
                    item.setFont(font)
                    nxt = " (the next Redo)" if number == len(records) + 1 else ""
                    item.setToolTip(f"Undone. Redo writes it again{nxt}; a new commit drops it.")
            history.scrollToItem(line)  # the line between what is applied and what Redo brings back
        else:
            history.scrollToBottom()
        text = f"<b>Committed</b> ({_plural(len(records), 'commit')}"
        self.history_label.setText(text + (f", {len(undone)} undone)" if undone else ")"))

    def _history_item(self, text: str, state: str) -> QListWidgetItem:
        item = QListWidgetItem(text, self.history_list)
        item.setData(HISTORY_STATE_ROLE, state)
        return item

    def show_verification(self, title: str, checks: Sequence[IdentityCheck]) -> None:
        lines = verification_lines(checks)
        ok = all(c.ok for c in checks)
        colour = OK_COLOUR if ok else BAD_COLOUR
        body = "<br>".join(lines) or "nothing was written"
        self.verification.setText(f"<span style='color:{colour}'><b>{title}</b> — verified in place:<br>{body}</span>")
