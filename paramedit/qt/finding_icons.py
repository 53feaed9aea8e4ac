"""Small icons for scan findings: a warning triangle in the severity's colour, alone or beside
a tensor's gradient dot (the tree's first column has room for one decoration)."""

from __future__ import annotations

from PySide6.QtCore import QPointF, Qt
from PySide6.QtGui import QColor, QFont, QGuiApplication, QIcon, QPainter, QPixmap, QPolygonF

from paramedit.qt.grad_status import GradStatus, status_icon

SEVERITY_COLOURS = {"error": "#d23c3c", "warning": "#d08a00", "info": "#7b8794"}
SEVERITY_RANK = {"error": 0, "warning": 1, "info": 2}
_SIZE = 12
_icons: dict[tuple, QIcon] = {}


def _draw_triangle(painter: QPainter, x: float, colour: str) -> None:
    painter.setPen(Qt.PenStyle.NoPen)
    painter.setBrush(QColor(colour))
    painter.drawPolygon(QPolygonF([QPointF(x + 6, 0.5), QPointF(x + 11.5, 11.5), QPointF(x + 0.5, 11.5)]))
    painter.setPen(QColor("#ffffff"))
    font = QFont()
    font.setPixelSize(9)
    font.setBold(True)
    painter.setFont(font)
    painter.drawText(int(x), 2, _SIZE, 10, int(Qt.AlignmentFlag.AlignCenter), "!")


def severity_icon(severity: str, grad: GradStatus | None = None, *, stale: bool = False) -> QIcon | None:
    """A triangle in the colour of ``severity`` (after the gradient dot of ``grad`` when given).
    None without a QGuiApplication to paint it."""
    key = (severity, grad, stale)
    icon = _icons.get(key)
    if icon is None:
        if QGuiApplication.instance() is None:
            return None
        dot = status_icon(grad, stale=stale) if grad is not None else None
        width = _SIZE * 2 + 2 if dot is not None else _SIZE
        pixmap = QPixmap(width, _SIZE)
        pixmap.fill(Qt.GlobalColor.transparent)
        painter = QPainter(pixmap)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        if dot is not None:
            painter.drawPixmap(0, 0, dot.pixmap(_SIZE, _SIZE))
        _draw_triangle(painter, width - _SIZE, SEVERITY_COLOURS.get(severity, SEVERITY_COLOURS["info"]))
        painter.end()
        icon = _icons[key] = QIcon(pixmap)
    return icon


def worst_severity(severities: list[str]) -> str | None:
    """The most severe of ``severities`` (None for none)."""
    return min(severities, key=lambda s: SEVERITY_RANK.get(s, 9), default=None)
