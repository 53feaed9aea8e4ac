"""The window's layout: saved and restored across runs, and the presentation layout (F11).

Presenting (a projector at 1280×720, or a 1.5 scale factor): the tree shrinks to a narrow list
of names, the table sits above the heatmap (which drops its histogram and colour controls), the
outputs stand beside them, and the toolbar keeps only what a live demonstration uses. Leaving
puts every splitter, column and toolbar back as it was; the saved layout is always the normal one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from PySide6.QtCore import QByteArray, QEvent, QObject, QSettings, Qt, QTimer, Signal

if TYPE_CHECKING:
    from paramedit.qt.main_window import MainWindow

TREE_SHARE = 0.16  # of the window's width, presenting
TREE_MIN_PX = 120
EDITOR_SHARE = 0.58  # of the right side, presenting; the outputs get the rest
TABLE_SHARE = 0.42  # of the editor's height, presenting; the heatmap gets the rest
TABS_MIN_PX = 200  # presenting, the tabs may be narrower than their widest page (the outputs fit)
HEADER_MIN_PX = 60  # presenting, the tensor's header line may be cut shorter (its tooltip has it all)


@dataclass
class _Saved:
    main: QByteArray
    right: QByteArray
    editor: QByteArray
    hidden_columns: list[bool]
    tab: int


class PresentationController(QObject):
    """Saves and restores the window's layout, and switches the presentation layout on and off."""

    presentingChanged = Signal(bool)

    def __init__(self, window: MainWindow, settings: QSettings) -> None:
        super().__init__(window)
        self._w, self._settings = window, settings
        self._saved: _Saved | None = None
        window.installEventFilter(self)  # a resized window shares its room out again while presenting

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if watched is self._w and event.type() == QEvent.Type.Resize and self.presenting:
            QTimer.singleShot(0, self, self.fit)
        return False

    @property
    def presenting(self) -> bool:
        return self._saved is not None

    # ------------------------------------------------------------------ across runs
    def restore(self) -> None:
        w, s = self._w, self._settings
        for key, restore in (("geometry", w.restoreGeometry), ("state", w.restoreState),
                             ("main_splitter", w.main_splitter.restoreState),
                             ("right_splitter", w.right_splitter.restoreState)):
            value = s.value(f"window/{key}")
            if value is not None:
                restore(value)
        w.present_toolbar.setVisible(False)
        w.main_toolbar.setVisible(True)

    def save(self) -> None:
        """Store the normal layout (leaving the presentation layout first)."""
        saved = self._saved
        self.set_presenting(False)
        w, s = self._w, self._settings
        s.setValue("window/geometry", w.saveGeometry())
        s.setValue("window/state", w.saveState())
        # The splitters as they were before presenting: read back at once, they may not be laid out yet.
        s.setValue("window/main_splitter", saved.main if saved else w.main_splitter.saveState())
        s.setValue("window/right_splitter", saved.right if saved else w.right_splitter.saveState())

    # ------------------------------------------------------------------ presenting
    def toggle(self) -> None:
        self.set_presenting(not self.presenting)

    def set_presenting(self, on: bool) -> None:
        if on == self.presenting:
            self._w.acts.present.setChecked(on)
            return
        if on:
            self._enter()
        else:
            self._leave()
        self._w.acts.present.setChecked(on)
        self.presentingChanged.emit(on)

    def _enter(self) -> None:
        w = self._w
        size = w.size()  # switching splitters over may ask for more height for a moment
        header = w.tree.view.header()
        self._saved = _Saved(w.main_splitter.saveState(), w.right_splitter.saveState(),
                             w.editor.splitter.saveState(),
                             [header.isSectionHidden(c) for c in range(header.count())],
                             w.bottom_tabs.currentIndex())
        for column in range(1, header.count()):
            header.setSectionHidden(column, True)  # a list of names
        w.main_toolbar.setVisible(False)
        w.present_toolbar.setVisible(True)
        self._compact(True)
        w.right_splitter.setOrientation(Qt.Orientation.Horizontal)
        w.editor.splitter.setOrientation(Qt.Orientation.Vertical)
        w.bottom_tabs.setCurrentWidget(w.outputs_panel)
        w.resize(size)
        self.fit()

    def fit(self) -> None:
        """Share the window's room out as the presentation layout does (also after a resize)."""
        if not self.presenting:
            return
        w = self._w
        width = w.main_splitter.width() or w.width()
        tree = max(TREE_MIN_PX, round(width * TREE_SHARE))
        w.main_splitter.setSizes([tree, max(1, width - tree)])
        right = max(1, width - tree)
        w.right_splitter.setSizes([round(right * EDITOR_SHARE), round(right * (1 - EDITOR_SHARE))])
        height = w.editor.splitter.height() or w.right_splitter.height()
        w.editor.splitter.setSizes([round(height * TABLE_SHARE), round(height * (1 - TABLE_SHARE))])

    def _compact(self, on: bool) -> None:
        w = self._w
        w.editor.heatmap.set_compact(on)
        w.editor.options.set_compact(on)
        w.editor.header.setMinimumWidth(HEADER_MIN_PX if on else 120)
        w.editor.set_region_box_wanted(not on)  # a row of height a projector cannot spare; Ctrl+G shows it
        w.bottom_tabs.setMinimumWidth(TABS_MIN_PX if on else 0)

    def _leave(self) -> None:
        w, saved = self._w, self._saved
        assert saved is not None
        self._saved = None
        w.right_splitter.setOrientation(Qt.Orientation.Vertical)
        w.editor.splitter.setOrientation(Qt.Orientation.Horizontal)
        self._compact(False)
        header = w.tree.view.header()
        for column, hidden in enumerate(saved.hidden_columns):
            header.setSectionHidden(column, hidden)
        w.present_toolbar.setVisible(False)
        w.main_toolbar.setVisible(True)
        w.main_splitter.restoreState(saved.main)
        w.right_splitter.restoreState(saved.right)
        w.editor.splitter.restoreState(saved.editor)
        w.bottom_tabs.setCurrentIndex(saved.tab)
        w.tree.fit_name_column()
