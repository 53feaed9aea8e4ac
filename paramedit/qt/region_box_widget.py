"""The region box above the table: type ``[:, 128:192]`` (several separated by ``;``) and Enter
to select it; it shows the selection the mouse makes as the same text.

A region that is refused stays in the box, red, with the reason as its tooltip and beside it,
and the part that is wrong selected, so it can be fixed in place.
"""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QHBoxLayout, QLabel, QLineEdit, QSizePolicy, QToolButton, QWidget

ERROR_STYLE = "QLineEdit#regionEdit { border: 1.5px solid #b3261e; background: #fdecea; }"
HINT = "Region: [:, 128:192] or several, [0, :]; [5:9, ::2]  (Enter selects, Ctrl+G comes here)"


class RegionBoxWidget(QWidget):
    """``regionEdit`` and a note saying what the selection is (or why a region was refused)."""

    regionsEntered = Signal(str)  # the text, when Enter is pressed

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("regionBox")
        self.edit = QLineEdit(objectName="regionEdit")
        self.edit.setPlaceholderText(HINT)
        self.edit.setClearButtonEnabled(True)
        self.edit.setToolTip("The selection as a region of the tensor. Type one, or several separated by ';', "
                             "and press Enter to select them; fill, formula, init, paste and copy then act on "
                             "every one of them as one commit")
        self.edit.returnPressed.connect(self._entered)
        self.edit.textEdited.connect(self._edited)
        self.note = QLabel("", objectName="regionNote")
        self.note.setTextFormat(Qt.TextFormat.PlainText)
        self.note.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.note.setMinimumWidth(60)
        self.heads_button = QToolButton(objectName="splitHeadsButton", text="Split into heads")
        self.heads_button.setToolTip("Show this tensor as attention heads (q/k/v × head × head_dim) and pick "
                                     "a head by name")
        row = QHBoxLayout(self)
        row.setContentsMargins(0, 0, 0, 0)
        row.setSpacing(6)
        row.addWidget(QLabel("Region"))
        row.addWidget(self.edit, 3)
        row.addWidget(self.note, 2)
        row.addWidget(self.heads_button)
        self._error = ""

    @property
    def error(self) -> str:
        """Why the last region typed was refused ("" when it was not)."""
        return self._error

    def show_selection(self, text: str, note: str = "") -> None:
        """The selection as text (unless the user is typing), and a note about it."""
        self._clear_error()
        if not self.edit.hasFocus() or not self.edit.isModified():
            self.edit.setText(text)
            self.edit.setModified(False)
            self.edit.setCursorPosition(0)
        self._set_note(note)

    def show_error(self, message: str, bad_part: str = "") -> None:
        """Refuse in place: red, the reason as tooltip and note, the bad part selected."""
        self._error = message
        self.edit.setStyleSheet(ERROR_STYLE)
        self.edit.setToolTip(message)
        self._set_note(message, error=True)
        start = self.edit.text().find(bad_part) if bad_part else -1
        if start >= 0:
            self.edit.setSelection(start, len(bad_part))

    def focus(self) -> None:
        """Ctrl+G: type a cell or region here."""
        self.edit.setFocus(Qt.FocusReason.ShortcutFocusReason)
        self.edit.selectAll()

    def _set_note(self, text: str, *, error: bool = False) -> None:
        self.note.setText(text)
        self.note.setToolTip(text)
        self.note.setStyleSheet("color: #b3261e;" if error else "color: palette(placeholder-text);")

    def _clear_error(self) -> None:
        if self._error:
            self._error = ""
            self.edit.setStyleSheet("")
            self.edit.setToolTip("")

    def _edited(self, _text: str) -> None:
        self._clear_error()

    def _entered(self) -> None:
        self.edit.setModified(False)
        self.regionsEntered.emit(self.edit.text())
