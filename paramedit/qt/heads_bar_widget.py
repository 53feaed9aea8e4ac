"""The bar that picks an attention head by name: part (q, k, v or all) and head number."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QComboBox, QHBoxLayout, QLabel, QSizePolicy, QToolButton, QWidget

from paramedit.core.model.heads import HeadLayout

ALL_PARTS = "all"


class HeadsBarWidget(QWidget):
    """``headsBar``: the layout in words, a part combo (``headPart``) and a head combo (``headIndex``)."""

    headChosen = Signal()  # the part or the head changed
    closed = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("headsBar")
        self.layout_label = QLabel("", objectName="headsLayout")
        self.layout_label.setTextFormat(Qt.TextFormat.PlainText)
        self.layout_label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.part_combo = QComboBox(objectName="headPart")
        self.part_combo.setToolTip("Which projection's head: q, k or v of a fused weight, or all of them at once")
        self.head_combo = QComboBox(objectName="headIndex")
        self.head_combo.setToolTip("The head to show and select; Fill (Ctrl+F) then writes exactly its blocks")
        self.close_button = QToolButton(objectName="headsClose", text="Whole tensor")
        self.close_button.setToolTip("Show the whole tensor again")
        row = QHBoxLayout(self)
        row.setContentsMargins(0, 0, 0, 0)
        row.setSpacing(6)
        row.addWidget(QLabel("Heads"))
        row.addWidget(self.part_combo)
        row.addWidget(self.head_combo)
        row.addWidget(self.layout_label, 1)
        row.addWidget(self.close_button)
        self._layout: HeadLayout | None = None
        self.part_combo.currentIndexChanged.connect(self._part_changed)
        self.head_combo.currentIndexChanged.connect(self._head_changed)
        self.close_button.clicked.connect(self.closed)

    def set_layout(self, layout: HeadLayout) -> None:
        """Offer ``layout``'s parts and heads (all parts first where they have as many heads)."""
        self._layout = layout
        counts = (f"{layout.heads[0]} heads" if layout.parts == ("head",)
                  else "/".join(f"{h} {p}" for p, h in zip(layout.parts, layout.heads, strict=True)) + " heads")
        axes = " × ".join(layout.axis_names()[layout.dim:layout.dim + (2 if layout.parts == ("head",) else 3)])
        self.layout_label.setText(f"{axes} of dim {layout.dim}: {counts} × {layout.head_dim}, from {layout.source}")
        self.layout_label.setToolTip(self.layout_label.text())
        self.part_combo.blockSignals(True)
        self.part_combo.clear()
        if len(layout.parts) > 1 and len(set(layout.heads)) == 1:
            self.part_combo.addItem(f"{'/'.join(layout.parts)} (all)", ALL_PARTS)
        for part in layout.parts:
            self.part_combo.addItem(part, part)
        self.part_combo.setVisible(self.part_combo.count() > 1)
        self.part_combo.setCurrentIndex(0)
        self.part_combo.blockSignals(False)
        self._fill_heads()

    @property
    def part(self) -> str | None:
        """The part chosen, or None for all of them."""
        part = self.part_combo.currentData()
        return None if part == ALL_PARTS else part

    @property
    def head(self) -> int:
        return max(0, self.head_combo.currentIndex())

    def choose(self, head: int, part: str | None = None) -> None:
        """Pick a head (and part) as the combos would."""
        self.part_combo.setCurrentIndex(max(0, self.part_combo.findData(ALL_PARTS if part is None else part)))
        self.head_combo.setCurrentIndex(head)

    def _fill_heads(self) -> None:
        layout = self._layout
        assert layout is not None
        part = self.part
        count = layout.heads[layout.parts.index(part)] if part is not None else layout.heads[0]
        keep = self.head_combo.currentIndex()
        self.head_combo.blockSignals(True)
        self.head_combo.clear()
        self.head_combo.addItems([f"head {h}" for h in range(count)])
        self.head_combo.setCurrentIndex(min(max(keep, 0), count - 1))
        self.head_combo.blockSignals(False)

    def _part_changed(self, _index: int) -> None:
        if self._layout is not None:
            self._fill_heads()
            self.headChosen.emit()

    def _head_changed(self, _index: int) -> None:
        self.headChosen.emit()
