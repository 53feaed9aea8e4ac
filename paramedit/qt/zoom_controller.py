"""Zoom: Ctrl+= / Ctrl+- / Ctrl+0 scale the fonts of the window's working area together (tree,
table, heatmap axes and stats, outputs), remembered on this machine.

The font is set on the root widgets; their children follow by Qt's font propagation, except
those a style sheet governs (Qt stops propagating to them), which are given the font directly.
The views that size themselves from their font (the table's columns, the heatmap's axes) do so
again on their ``FontChange``.
"""

from __future__ import annotations

from PySide6.QtCore import QObject, QSettings, Signal
from PySide6.QtGui import QFont
from PySide6.QtWidgets import QWidget

#: The zoom factors Ctrl+= and Ctrl+- step through.
ZOOM_STEPS = (0.7, 0.8, 0.9, 1.0, 1.15, 1.3, 1.5, 1.75, 2.0, 2.5)
SETTINGS_KEY = "view/zoom"


class ZoomController(QObject):
    """Scales the font of ``roots`` (and so of their children) by :attr:`factor`."""

    zoomChanged = Signal(float)  # the new factor

    def __init__(self, roots: list[QWidget], settings: QSettings, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._roots = list(roots)
        self._settings = settings
        self._base = QFont(roots[0].font())  # the platform's font: 100 %
        try:
            remembered = float(settings.value(SETTINGS_KEY, 1.0))
        except (TypeError, ValueError):
            remembered = 1.0
        self.factor = 1.0
        self.set_factor(remembered, remember=False)

    def zoom_in(self) -> None:
        self.set_factor(next((z for z in ZOOM_STEPS if z > self.factor + 1e-6), ZOOM_STEPS[-1]))

    def zoom_out(self) -> None:
        self.set_factor(next((z for z in reversed(ZOOM_STEPS) if z < self.factor - 1e-6), ZOOM_STEPS[0]))

    def reset(self) -> None:
        self.set_factor(1.0)

    def set_factor(self, factor: float, *, remember: bool = True) -> None:
        factor = min(ZOOM_STEPS[-1], max(ZOOM_STEPS[0], float(factor)))
        changed = abs(factor - self.factor) > 1e-6
        self.factor = factor
        font = QFont(self._base)
        if self._base.pointSizeF() > 0:
            font.setPointSizeF(self._base.pointSizeF() * factor)
        else:
            font.setPixelSize(max(6, round(self._base.pixelSize() * factor)))
        for root in self._roots:
            # 100 %: no font of our own, so the platform's (and a later change of it) applies.
            root.setFont(font if abs(factor - 1.0) > 1e-6 else QFont())
            size = root.font().pointSizeF()
            for child in root.findChildren(QWidget):
                if not child.isWindow() and abs(child.font().pointSizeF() - size) > 0.01:
                    child.setFont(font)  # a style sheet's widget, which propagation skips
        if remember:
            self._settings.setValue(SETTINGS_KEY, factor)
        if changed:
            self.zoomChanged.emit(factor)

    def font(self) -> QFont:
        """The zoomed font (what the roots' children use)."""
        return QFont(self._roots[0].font())
