"""A blue note over the tensor view that stays until it is closed: what a recovery restored.

The status bar forgets a message at the next one (opening a checkpoint writes its own right
after); something a user must read, once, goes here instead.
"""

from __future__ import annotations

from html import escape

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QToolButton, QWidget

NOTICE_STYLE = """
QFrame#noticeBanner { background: #e8f1fb; border: 1px solid #8fb3de; border-radius: 4px; }
QFrame#noticeBanner QLabel { color: #0b2a4a; background: transparent; border: none; }
"""


class NoticeBannerWidget(QFrame):
    """Hidden until :meth:`show_notice`; the ✕ hides it again."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("noticeBanner")
        self.setStyleSheet(NOTICE_STYLE)
        self.text = QLabel("", objectName="noticeBannerText", wordWrap=True)
        self.text.setTextFormat(Qt.TextFormat.RichText)
        self.text.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.close_button = QToolButton(objectName="noticeBannerClose", text="✕", autoRaise=True)
        self.close_button.setToolTip("Hide this note")
        self.close_button.clicked.connect(self.clear)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(10, 6, 6, 6)
        layout.addWidget(self.text, 1)
        layout.addWidget(self.close_button, 0, Qt.AlignmentFlag.AlignTop)
        self.message = ""  # the plain text shown; '' when hidden
        self.setVisible(False)

    def show_notice(self, message: str) -> None:
        self.message = message
        self.text.setText(f"<b>ℹ</b> {escape(message)}")
        self.setVisible(True)

    def clear(self) -> None:
        self.message = ""
        self.text.clear()
        self.setVisible(False)
