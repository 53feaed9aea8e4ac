"""Gradient status of a parameter after a backward check, with the colours the GUI shows it in."""

from __future__ import annotations

from enum import Enum

from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QGuiApplication, QIcon, QPainter, QPen, QPixmap

from paramedit.core.model.backward_check import BackwardReport, ParamGrad


class GradStatus(Enum):
    OK = "ok"
    ZERO = "zero"
    NO_GRAD = "no grad"
    NOT_FINITE = "not finite"
    FROZEN = "frozen"


COLORS = {
    GradStatus.OK: "#2e9d57",
    GradStatus.ZERO: "#d08a00",  # amber: connected, but not the green of a gradient with signal
    GradStatus.NO_GRAD: "#d23c3c",
    GradStatus.NOT_FINITE: "#b04ad0",
    GradStatus.FROZEN: "#9aa0a6",
}

#: What each status means, in words (tooltips of the tree's dot and of the results panel).
MEANINGS = {
    GradStatus.OK: "received a finite, non-zero gradient",
    GradStatus.ZERO: "exactly zero gradient: connected, but this input and loss give it no signal",
    GradStatus.NO_GRAD: "received no gradient: it is not connected to the loss",
    GradStatus.NOT_FINITE: "the gradient has NaN or Inf values",
    GradStatus.FROZEN: "requires_grad=False: not part of the check",
}

_icons: dict[tuple[GradStatus, bool], QIcon] = {}


def grad_status(param: ParamGrad) -> GradStatus:
    if not param.requires_grad:
        return GradStatus.FROZEN
    if not param.has_grad:
        return GradStatus.NO_GRAD
    if not param.finite:
        return GradStatus.NOT_FINITE
    return GradStatus.ZERO if param.zero else GradStatus.OK


def verdict_status(report: BackwardReport) -> GradStatus:
    """The colour of a whole check: red when a gradient is missing or not finite (or a parameter
    was replaced), amber when all arrived but some are exactly zero or the check ran on weights
    that did not come from the checkpoint, green only when all carry signal on the checkpoint's
    own weights."""
    if not report.ok:
        return GradStatus.NO_GRAD
    return GradStatus.ZERO if report.zero_grad or report.not_loaded else GradStatus.OK


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
