"""Draws a probability as a bar behind the cell's text (the Outputs panel's class bars)."""

from __future__ import annotations

from PySide6.QtCore import QModelIndex, QPersistentModelIndex, QRect, Qt
from PySide6.QtGui import QBrush, QColor, QPainter
from PySide6.QtWidgets import QApplication, QStyle, QStyledItemDelegate, QStyleOptionViewItem

from paramedit.qt.probe_table_model import PROB_ROLE

BEFORE_COLOUR = QColor(66, 133, 244, 120)  # blue, see-through: the text stays readable on it
AFTER_COLOUR = QColor(234, 110, 0, 140)  # orange


class ProbeBarDelegate(QStyledItemDelegate):
    """A bar as wide as the probability, under the text; before in blue, after in orange."""

    def paint(self, painter: QPainter, option: QStyleOptionViewItem,
              index: QModelIndex | QPersistentModelIndex) -> None:
        opt = QStyleOptionViewItem(option)
        self.initStyleOption(opt, index)
        prob = index.data(PROB_ROLE)
        if isinstance(prob, float) and not opt.state & QStyle.StateFlag.State_Selected:
            if opt.backgroundBrush.style() != Qt.BrushStyle.NoBrush:  # a changed sample keeps its highlight
                painter.fillRect(opt.rect, opt.backgroundBrush)
                opt.backgroundBrush = QBrush()
            r = opt.rect.adjusted(1, 2, -1, -2)
            bar = QRect(r.left(), r.top(), round(r.width() * max(0.0, min(1.0, prob))), r.height())
            painter.fillRect(bar, BEFORE_COLOUR if index.column() == 1 else AFTER_COLOUR)
        style = opt.widget.style() if opt.widget is not None else QApplication.style()
        style.drawControl(QStyle.ControlElement.CE_ItemViewItem, opt, painter, opt.widget)
