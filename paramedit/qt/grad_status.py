"""Gradient status of a parameter after a backward check, with the colours the GUI shows it in."""

from __future__ import annotations

from enum import Enum

from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QGuiApplication, QIcon, QPainter, QPen, QPixmap

from paramedit.core.backward_check import BackwardReport, ParamGrad


class GradStatus(Enum):
    OK = "ok"
    NO_GRAD = "no grad"
    NOT_FINITE = "not finite"
    FROZEN = "frozen"


COLORS = {
    GradStatus.OK: "#2e9d57",
    GradStatus.NO_GRAD: "#d23c3c",
    GradStatus.NOT_FINITE: "#b04ad0",
    GradStatus.FROZEN: "#9aa0a6",
}

_icons: dict[tuple[GradStatus, bool], QIcon] = {}


def grad_status(param: ParamGrad) -> GradStatus:
    if not param.requires_grad:
        return GradStatus.FROZEN
    if not param.has_grad:
        return GradStatus.NO_GRAD
    return GradStatus.OK if param.finite else GradStatus.NOT_FINITE


def statuses(report: BackwardReport | None) -> dict[str, GradStatus]:
    """Name -> status for every parameter in a report (empty without one)."""
    return {} if report is None else {p.name: grad_status(p) for p in report.params}


def status_icon(status: GradStatus, *, stale: bool = False) -> QIcon | None:
    """A small dot in the status colour: filled, or a ring when ``stale`` (the weights changed
    since the check). None without a QGuiApplication to paint it."""
    icon = _icons.get((status, stale))
    if icon is None:
        if QGuiApplication.instance() is None:
            return None
        pixmap = QPixmap(12, 12)
        pixmap.fill(Qt.GlobalColor.transparent)
        painter = QPainter(pixmap)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        colour = QColor(COLORS[status])
        if stale:
            painter.setPen(QPen(colour, 2))
            painter.setBrush(Qt.BrushStyle.NoBrush)
            painter.drawEllipse(2, 2, 8, 8)
        else:
            painter.setPen(Qt.PenStyle.NoPen)
            painter.setBrush(colour)
            painter.drawEllipse(1, 1, 10, 10)
        painter.end()
        icon = _icons[status, stale] = QIcon(pixmap)
    return icon
