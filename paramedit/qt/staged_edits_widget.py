"""Staged edits waiting for a commit, the committed history, and the last commit's proof."""

from __future__ import annotations

from collections.abc import Sequence

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QListWidget,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from paramedit.core.session import IdentityCheck, Session

OK_COLOUR, BAD_COLOUR = "#2e7d32", "#b3261e"


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
        self.history_list = _list("commitHistoryList", "Committed edits (Undo takes back the last commit)")
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
            return
        self.staged_list.addItems([e.describe() for e in session.staged])
        self.staged_label.setText(f"<b>Staged</b> ({len(session.staged)})")
        records = session.history.records
        for number, record in enumerate(records, start=1):
            for edit in record.edits:
                self.history_list.addItem(f"#{number}  {edit.describe()}")
        self.history_list.scrollToBottom()
        self.history_label.setText(f"<b>Committed</b> ({len(records)} commit{'s' if len(records) != 1 else ''})")

    def show_verification(self, title: str, checks: Sequence[IdentityCheck]) -> None:
        lines = verification_lines(checks)
        ok = all(c.ok for c in checks)
        colour = OK_COLOUR if ok else BAD_COLOUR
        body = "<br>".join(lines) or "nothing was written"
        self.verification.setText(f"<span style='color:{colour}'><b>{title}</b> — verified in place:<br>{body}</span>")
